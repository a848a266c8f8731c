import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { InputError } from '../common/errors.js'
import { checkKeys, defaultRoot, discoverFiles } from './files.js'
import { objectKey } from '../common/paths.js'

let workspace: string
let outside: string

function write(rel: string, bytes = 'x'): void {
  const file = path.join(workspace, rel)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, bytes)
}

beforeEach(() => {
  workspace = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'mcd-files-')))
  outside = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'mcd-outside-')))
  write('models/resnet50.onnx', 'onnx-bytes')
  write('models/tokenizer/tokenizer.json', '{}')
  write('models/weights v2.safetensors', 'st')
  write('models/modèles/日本語.gguf', 'gguf')
  write('models/empty.bin', '')
  write('models/tmp-scratch.onnx', 'tmp')
  write('logs/train.log', 'log')
})

afterEach(() => {
  fs.rmSync(workspace, { recursive: true, force: true })
  fs.rmSync(outside, { recursive: true, force: true })
})

const relPaths = (files: { relativePath: string }[]) => files.map((f) => f.relativePath).sort()

describe('discoverFiles', () => {
  it('keys files relative to the search path of a directory pattern, with exclusions', async () => {
    const { root, files } = await discoverFiles(['models/**', '!models/tmp-*'], { workspace })
    expect(root).toBe(path.join(workspace, 'models'))
    expect(relPaths(files)).toEqual([
      'empty.bin',
      'modèles/日本語.gguf',
      'resnet50.onnx',
      'tokenizer/tokenizer.json',
      'weights v2.safetensors'
    ])
    const empty = files.find((f) => f.relativePath === 'empty.bin')
    expect(empty?.size).toBe(0)
    expect(files.find((f) => f.relativePath === 'resnet50.onnx')?.size).toBe(10)
  })

  it('matches hidden files, a directory named alone matches everything under it, and an excluded directory drops its files', async () => {
    write('models/.hidden/config.json', '{}')
    write('models/.gitattributes', '*')
    const { root, files } = await discoverFiles(['models', '!models/tokenizer'], { workspace })
    expect(root).toBe(path.join(workspace, 'models'))
    expect(relPaths(files)).toEqual([
      '.gitattributes',
      '.hidden/config.json',
      'empty.bin',
      'modèles/日本語.gguf',
      'resnet50.onnx',
      'tmp-scratch.onnx',
      'weights v2.safetensors'
    ])
  })

  it('takes braces and parentheses literally, as @actions/glob does, and skips broken links', async () => {
    write('models/{a,b}.bin', 'braces')
    write('models/a.bin', 'a')
    fs.symlinkSync(path.join(workspace, 'gone.bin'), path.join(workspace, 'models', 'broken.bin'))
    const { files } = await discoverFiles(['models/{a,b}.bin', 'models/*.bin'], { workspace })
    expect(relPaths(files)).toEqual(['a.bin', 'empty.bin', '{a,b}.bin'])
  })

  it('prints nothing while matching (a command line keeps stdout for its own output)', async () => {
    const writes: string[] = []
    const stdout = process.stdout.write.bind(process.stdout)
    process.stdout.write = ((chunk: string) => writes.push(String(chunk)) > 0) as typeof stdout
    try {
      await discoverFiles(['models/**', '!models/tmp-*'], { workspace })
    } finally {
      process.stdout.write = stdout
    }
    expect(writes).toEqual([])
  })

  it('uses the common ancestor of several patterns', async () => {
    const { root, files } = await discoverFiles(['models/*.onnx', 'logs/*.log'], { workspace })
    expect(root).toBe(workspace)
    expect(relPaths(files)).toEqual([
      'logs/train.log',
      'models/resnet50.onnx',
      'models/tmp-scratch.onnx'
    ])
  })

  it('keys a single literal file by its name', async () => {
    const { root, files } = await discoverFiles(['models/resnet50.onnx'], { workspace })
    expect(root).toBe(path.join(workspace, 'models'))
    expect(relPaths(files)).toEqual(['resnet50.onnx'])
  })

  it('honours an explicit root and never returns directories', async () => {
    const { files } = await discoverFiles(['models/tokenizer'], {
      workspace,
      root: workspace
    })
    expect(relPaths(files)).toEqual(['models/tokenizer/tokenizer.json'])
  })

  it('rejects files outside an explicit root', async () => {
    await expect(
      discoverFiles(['models/*.onnx', 'logs/*'], {
        workspace,
        root: path.join(workspace, 'models')
      })
    ).rejects.toThrow(/logs\/train\.log is not inside `root` models/)
  })

  it('names the patterns when nothing matches', async () => {
    const err = await discoverFiles(['dist/*.onnx', 'out/**'], { workspace }).catch((e) => e)
    expect(err).toBeInstanceOf(InputError)
    expect(err.message).toContain(
      'No files matched the artifact patterns:\n- dist/*.onnx\n- out/**'
    )
  })

  it('refuses symlinks that lead out of the workspace, but allows links inside it', async () => {
    fs.writeFileSync(path.join(outside, 'credentials'), 'secret')
    fs.symlinkSync(path.join(outside, 'credentials'), path.join(workspace, 'models', 'creds.onnx'))
    fs.symlinkSync(outside, path.join(workspace, 'models', 'linked-dir'))
    const err = await discoverFiles(['models/**'], { workspace }).catch((e) => e)
    expect(err).toBeInstanceOf(InputError)
    expect(err.message).toContain(`creds.onnx -> ${path.join(outside, 'credentials')}`)
    expect(err.message).toContain(`linked-dir${path.sep}credentials`)

    fs.rmSync(path.join(workspace, 'models', 'creds.onnx'))
    fs.rmSync(path.join(workspace, 'models', 'linked-dir'))
    fs.symlinkSync(
      path.join(workspace, 'models', 'resnet50.onnx'),
      path.join(workspace, 'models', 'alias.onnx')
    )
    const { files } = await discoverFiles(['models/*.onnx'], { workspace })
    expect(relPaths(files)).toEqual(['alias.onnx', 'resnet50.onnx', 'tmp-scratch.onnx'])
  })
})

describe('defaultRoot', () => {
  it('is the segment-wise common ancestor, not a string prefix', () => {
    expect(
      defaultRoot(
        ['/w/models/a.onnx', '/w/models-extra/b.onnx'],
        [{ absolutePath: '/w/models/a.onnx' }, { absolutePath: '/w/models-extra/b.onnx' }]
      )
    ).toBe('/w')
  })
})

describe('checkKeys', () => {
  it('accepts ordinary names', () => {
    expect(() =>
      checkKeys([{ relativePath: 'a.onnx' }, { relativePath: 'dir/b c.json' }], 'v1', {
        manifest: true
      })
    ).not.toThrow()
    expect(objectKey('v1', 'dir/b c.json')).toBe('v1/dir/b c.json')
  })

  it('rejects case-insensitive collisions, long keys, control characters and the manifest name', () => {
    const err = (() => {
      try {
        checkKeys(
          [
            { relativePath: 'Model.onnx' },
            { relativePath: 'model.onnx' },
            { relativePath: `${'a'.repeat(1030)}.bin` },
            { relativePath: 'bad\tname.bin' },
            { relativePath: 'manifest.json' }
          ],
          'v1',
          { manifest: true }
        )
      } catch (e) {
        return e as Error
      }
      return undefined
    })()
    expect(err).toBeInstanceOf(InputError)
    expect(err?.message).toContain('Model.onnx and model.onnx map to keys that differ only in case')
    expect(err?.message).toContain('S3 allows 1024')
    expect(err?.message).toContain('"bad\\tname.bin" contains control characters')
    expect(err?.message).toContain('would overwrite the manifest')
  })

  it('allows a file named manifest.json when the manifest is off', () => {
    expect(() =>
      checkKeys([{ relativePath: 'manifest.json' }], 'v1', { manifest: false })
    ).not.toThrow()
  })
})
