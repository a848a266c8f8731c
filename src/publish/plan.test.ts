import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type GetObjectCommandOutput
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { AwsError, DeployError, ImmutableVersionError, InputError } from '../common/errors.js'
import { HASH_WORKERS, hashFile } from './hash.js'
import { HASH_LOOKAHEAD_BYTES, planDeploy, type PlanInputs } from './plan.js'
import type { LocalFile } from '../common/types.js'
import { silentLogger } from '../../__fixtures__/logger.js'

const s3Mock = mockClient(S3Client)
const s3 = new S3Client({ region: 'us-east-1' })
let dir: string
let files: LocalFile[]

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const inputs: PlanInputs = {
  bucket: 'models',
  versionPrefix: 'v3',
  contentType: undefined,
  overwrite: false,
  manifest: true,
  multipartThresholdBytes: 16 * 1024 * 1024,
  partSizeBytes: undefined,
  cacheControl: 'public, max-age=31536000, immutable',
  metadata: { framework: 'onnx' },
  dryRun: false
}
/** What HEAD returns for an object this action stored with `inputs`. */
const storedHeaders = (content: string) => ({
  ContentLength: Buffer.byteLength(content),
  ContentType: 'application/octet-stream',
  CacheControl: inputs.cacheControl,
  Metadata: { framework: 'onnx', sha256: sha(content) }
})

function localFile(rel: string, content: string): LocalFile {
  const absolutePath = path.join(dir, rel)
  fs.mkdirSync(path.dirname(absolutePath), { recursive: true })
  fs.writeFileSync(absolutePath, content)
  return { absolutePath, relativePath: rel, size: Buffer.byteLength(content) }
}

beforeEach(() => {
  s3Mock.reset()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcd-plan-'))
  files = [
    localFile('same.onnx', 'same bytes'),
    localFile('new.safetensors', 'new bytes'),
    localFile('changed.gguf', 'changed!'),
    localFile('resized.json', '{"a":1}')
  ]
})
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }))

function storeExisting(): void {
  s3Mock.on(ListObjectsV2Command).resolves({
    Contents: [
      { Key: 'v3/same.onnx', Size: 10 },
      { Key: 'v3/changed.gguf', Size: 8 },
      { Key: 'v3/resized.json', Size: 100 },
      { Key: 'v3/other.bin', Size: 1 }
    ]
  })
  s3Mock.on(HeadObjectCommand, { Key: 'v3/same.onnx' }).resolves(storedHeaders('same bytes'))
  s3Mock
    .on(HeadObjectCommand, { Key: 'v3/changed.gguf' })
    .resolves({ ...storedHeaders('changed!'), Metadata: { framework: 'onnx', sha256: sha('old') } })
}

describe('planDeploy', () => {
  it('uploads new keys, skips keys holding the same SHA-256, and hashes every file', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({
      Contents: [{ Key: 'v3/same.onnx', Size: 10 }]
    })
    s3Mock.on(HeadObjectCommand).resolves(storedHeaders('same bytes'))
    const plan = await planDeploy(s3, files.slice(0, 2), inputs, { logger: silentLogger() })
    const hashed = await plan.hashed(plan.files)
    expect(hashed.map((f) => [f.key, f.action, f.existed, f.sha256, f.contentType])).toEqual([
      ['v3/same.onnx', 'skip', true, sha('same bytes'), 'application/octet-stream'],
      ['v3/new.safetensors', 'upload', false, sha('new bytes'), 'application/octet-stream']
    ])
    expect(await plan.hashesOf(plan.files[1])).toEqual({
      sha256: sha('new bytes'),
      partCrc32: []
    })
    expect(s3Mock.commandCalls(ListObjectsV2Command)[0].args[0].input).toMatchObject({
      Bucket: 'models',
      Prefix: 'v3/'
    })
    // Only the key that exists with the same size needs a HEAD.
    expect(s3Mock.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.Key)).toEqual([
      'v3/same.onnx'
    ])
  })

  it('refuses to overwrite different bytes without `overwrite`, naming each key', async () => {
    storeExisting()
    const err = await planDeploy(s3, files, inputs, { logger: silentLogger() }).catch((e) => e)
    expect(err).toBeInstanceOf(ImmutableVersionError)
    expect(err.message).toContain('2 key(s) already hold a different object')
    expect(err.message).toContain(
      'changed.gguf → s3://models/v3/changed.gguf (different bytes: SHA-256 differs)'
    )
    expect(err.message).toContain(
      'resized.json → s3://models/v3/resized.json (different bytes: 100 bytes stored, 7 bytes here)'
    )
    expect(err.message).not.toContain('same.onnx')
    expect(err.hint).toContain('overwrite: true')
    // A size mismatch is proof enough: no HEAD for resized.json.
    expect(
      s3Mock
        .commandCalls(HeadObjectCommand)
        .map((c) => c.args[0].input.Key)
        .sort()
    ).toEqual(['v3/changed.gguf', 'v3/same.onnx'])
  })

  it('plans overwrites when allowed, marking them as existing', async () => {
    storeExisting()
    const plan = await planDeploy(
      s3,
      files,
      { ...inputs, overwrite: true },
      { logger: silentLogger() }
    )
    expect(
      Object.fromEntries(plan.files.map((f) => [f.relativePath, [f.action, f.existed]]))
    ).toEqual({
      'same.onnx': ['skip', true],
      'new.safetensors': ['upload', false],
      'changed.gguf': ['upload', true],
      'resized.json': ['upload', true]
    })
    expect([...plan.existing.keys()]).toContain('v3/other.bin')
  })

  it('treats the same bytes with other headers as a different object', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'v3/same.onnx', Size: 10 }] })
    s3Mock.on(HeadObjectCommand).resolves(storedHeaders('same bytes'))
    const changedInputs = {
      ...inputs,
      cacheControl: 'public, max-age=60',
      metadata: { framework: 'onnx', task: 'vision' },
      contentType: 'application/x-onnx'
    }
    const err = await planDeploy(s3, files.slice(0, 1), changedInputs, {
      logger: silentLogger()
    }).catch((e) => e)
    expect(err).toBeInstanceOf(ImmutableVersionError)
    expect(err.message).toContain('same bytes, different headers')
    expect(err.message).toContain('content-type application/octet-stream → application/x-onnx')
    expect(err.message).toContain(
      'cache-control public, max-age=31536000, immutable → public, max-age=60'
    )
    expect(err.message).toContain(
      'metadata {"framework":"onnx"} → {"framework":"onnx","task":"vision"}'
    )

    const plan = await planDeploy(
      s3,
      files.slice(0, 1),
      { ...changedInputs, overwrite: true },
      { logger: silentLogger() }
    )
    expect(plan.files[0]).toMatchObject({ action: 'upload', existed: true })
  })

  it('explains an object without a recorded SHA-256', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'v3/same.onnx', Size: 10 }] })
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, Metadata: {} })
    const err = await planDeploy(s3, files.slice(0, 1), inputs, { logger: silentLogger() }).catch(
      (e) => e
    )
    expect(err.message).toContain('stored without x-amz-meta-sha256')
  })

  it('follows list pagination', async () => {
    s3Mock
      .on(ListObjectsV2Command)
      .resolvesOnce({
        Contents: [{ Key: 'v3/a', Size: 1 }],
        IsTruncated: true,
        NextContinuationToken: 't1'
      })
      .resolvesOnce({ Contents: [{ Key: 'v3/b', Size: 1 }], IsTruncated: false })
    const plan = await planDeploy(s3, files.slice(1, 2), inputs, { logger: silentLogger() })
    expect([...plan.existing.keys()]).toEqual(['v3/a', 'v3/b'])
    expect(s3Mock.commandCalls(ListObjectsV2Command)[1].args[0].input.ContinuationToken).toBe('t1')
  })

  it('explains a missing bucket', async () => {
    s3Mock.on(ListObjectsV2Command).rejects(
      Object.assign(new Error('The specified bucket does not exist'), {
        name: 'NoSuchBucket',
        $metadata: { httpStatusCode: 404 }
      })
    )
    const err = await planDeploy(s3, files, inputs, { logger: silentLogger() }).catch((e) => e)
    expect(err).toBeInstanceOf(AwsError)
    expect(err.message).toContain('listing s3://models/v3/')
    expect(err.message).toContain('NoSuchBucket')
    expect(err.hint).toContain('Bucket "models" does not exist')
  })

  it('rejects a part size too small for a file before any request', async () => {
    const big: LocalFile = {
      absolutePath: '/nonexistent',
      relativePath: 'big.gguf',
      size: 60 * 1024 ** 3
    }
    const err = await planDeploy(
      s3,
      [big],
      { ...inputs, partSizeBytes: 5 * 1024 * 1024 },
      { logger: silentLogger() }
    ).catch((e) => e)
    expect(err).toBeInstanceOf(InputError)
    expect(s3Mock.calls()).toHaveLength(0)
  })

  it('reads each multipart file once for its SHA-256 and the CRC32 of every part', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({})
    const bytes = Buffer.alloc(12 * 1024 * 1024 + 3, 7)
    const big = localFile('big.onnx', bytes.toString('latin1'))
    const crc = (part: Buffer) => {
      const out = Buffer.alloc(4)
      out.writeUInt32BE(crc32(part))
      return out.toString('base64')
    }
    const mib = 1024 * 1024
    const multipart = { ...inputs, multipartThresholdBytes: 5 * mib, partSizeBytes: 5 * mib }
    const plan = await planDeploy(s3, [big, files[0]], multipart, { logger: silentLogger() })
    const planned = await plan.hashed(plan.files)
    expect(planned[0].sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
    expect(planned[0].partCrc32).toEqual([
      crc(bytes.subarray(0, 5 * mib)),
      crc(bytes.subarray(5 * mib, 10 * mib)),
      crc(bytes.subarray(10 * mib))
    ])
    // One PutObject, signed with its SHA-256: no part checksums.
    expect(planned[1].partCrc32).toBeUndefined()
  })

  it('makes every request while the files are still being hashed', async () => {
    // Each file's hash is held back until the plan has sent one particular request: a request
    // that waited for the hashes would wait forever.
    const held = new Map<string, () => void>()
    const release = (rel: string) => held.get(path.join(dir, rel))?.()
    const hash: typeof hashFile = async (filePath, opts) => {
      await new Promise<void>((resolve) => held.set(filePath, resolve))
      return hashFile(filePath, opts)
    }
    const shardBytes = Buffer.alloc(1024 * 1024, 3)
    const local = [
      localFile('same.onnx', 'same bytes'),
      localFile('shard.bin', shardBytes.toString('latin1')),
      localFile('config.json', '{}')
    ]
    const storedManifest = { schemaVersion: 1, versionPrefix: 'v3', files: [] }
    s3Mock.on(ListObjectsV2Command, { Prefix: 'v3/' }).resolves({
      Contents: [
        { Key: 'v3/same.onnx', Size: 10 },
        { Key: 'v3/manifest.json', Size: 60 }
      ]
    })
    s3Mock
      .on(ListObjectsV2Command, { Prefix: '' })
      .resolves({ Contents: [{ Key: 'v2/shard.bin', Size: shardBytes.length, ETag: '"e2"' }] })
    s3Mock.on(HeadObjectCommand, { Key: 'v3/same.onnx' }).callsFake(async () => {
      release('same.onnx')
      return storedHeaders('same bytes')
    })
    s3Mock.on(HeadObjectCommand, { Key: 'v2/shard.bin' }).callsFake(async () => {
      release('shard.bin')
      return { Metadata: { sha256: createHash('sha256').update(shardBytes).digest('hex') } }
    })
    s3Mock.on(GetObjectCommand, { Key: 'v3/manifest.json' }).callsFake(async () => {
      release('config.json')
      return {
        Body: {
          transformToString: async () => JSON.stringify(storedManifest)
        } as unknown as GetObjectCommandOutput['Body']
      }
    })
    const logger = silentLogger()

    const plan = await planDeploy(s3, local, inputs, {
      logger,
      hash,
      reuse: { bucket: 'models', versionPrefix: 'v3', searchPrefixes: [''], logger }
    })

    expect(plan.files.map((f) => [f.relativePath, f.action, f.copyFrom])).toEqual([
      ['same.onnx', 'skip', undefined],
      ['shard.bin', 'copy', { key: 'v2/shard.bin', eTag: '"e2"' }],
      ['config.json', 'upload', undefined]
    ])
    expect(plan.storedManifest).toEqual(storedManifest)
    // The candidate's SHA-256 was read once, while hashing, and not again to match it.
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(2)
  }, 5_000)

  it('waits only for the hashes a decision needs; the rest are read after the plan', async () => {
    const held = new Map<string, () => void>()
    const started: string[] = []
    const hash: typeof hashFile = async (filePath, opts) => {
      started.push(path.basename(filePath))
      if (filePath.endsWith('same.onnx')) return hashFile(filePath, opts)
      // New keys: nothing decides on their bytes, so the plan must not wait for them.
      await new Promise<void>((resolve) => held.set(path.basename(filePath), resolve))
      return hashFile(filePath, opts)
    }
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'v3/same.onnx', Size: 10 }] })
    s3Mock.on(HeadObjectCommand).resolves(storedHeaders('same bytes'))
    const logger = silentLogger()
    const plan = await planDeploy(s3, files.slice(0, 2), inputs, { logger, hash })

    expect(plan.files.map((f) => [f.relativePath, f.action, f.sha256])).toEqual([
      ['same.onnx', 'skip', sha('same bytes')],
      ['new.safetensors', 'upload', undefined]
    ])
    expect(logger.lines).toContainEqual(
      expect.stringContaining('Hashed 1 of 2 file(s) (the others are hashed as they are uploaded)')
    )
    // Hashing goes on after the plan, and its result is the file's.
    expect(started).toContain('new.safetensors')
    const pending = plan.hashesOf(plan.files[1])
    held.get('new.safetensors')!()
    expect((await pending).sha256).toBe(sha('new bytes'))
  })

  it('hashes the files a decision needs before the others', async () => {
    const held: { name: string; release: () => void }[] = []
    const hash: typeof hashFile = async (filePath, opts) => {
      await new Promise<void>((release, reject) => {
        held.push({ name: path.basename(filePath), release })
        opts?.signal?.addEventListener('abort', () => reject(opts.signal!.reason))
      })
      return { sha256: sha(fs.readFileSync(filePath, 'latin1')), partCrc32: [] }
    }
    const settle = () => new Promise((resolve) => setTimeout(resolve, 20))
    const local = ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => localFile(`${name}.bin`, name))
    // f.bin is the only key that exists with its size: its hash decides skip or conflict.
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'v3/f.bin', Size: 1 }] })
    s3Mock.on(HeadObjectCommand).resolves(storedHeaders('f'))
    const planning = planDeploy(s3, local, inputs, { logger: silentLogger(), hash })
    // One hash per worker, in file order, until the listing says which one decides.
    const inFlight = local.slice(0, HASH_WORKERS).map((f) => f.relativePath)
    await settle()
    expect(held.map((h) => h.name)).toEqual(inFlight)
    held[0].release()
    await settle()
    expect(held.map((h) => h.name)).toEqual([...inFlight, 'f.bin'])
    held[HASH_WORKERS].release()
    const plan = await planning
    // Only f.bin's hash was needed; the others come through hashesOf.
    expect(plan.files.map((f) => f.sha256 !== undefined)).toEqual([
      false,
      false,
      false,
      false,
      false,
      true
    ])
    expect((await plan.hashesOf(plan.files[0])).sha256).toBe(sha('a'))
    plan.stopHashing(new Error('done'))
    await expect(plan.hashesOf(plan.files[4])).rejects.toThrow('done')
  })

  it('hashes new files only HASH_LOOKAHEAD_BYTES ahead of the uploads asking for them', async () => {
    const started: string[] = []
    const hash: typeof hashFile = async (filePath) => {
      started.push(path.basename(filePath))
      return { sha256: sha(fs.readFileSync(filePath, 'latin1')), partCrc32: [] }
    }
    // Listed as shards the size of the lookahead; nothing is read but the few bytes written.
    const local = ['a', 'b', 'c'].map((name) => ({
      ...localFile(`${name}.safetensors`, name),
      size: HASH_LOOKAHEAD_BYTES
    }))
    s3Mock.on(ListObjectsV2Command).resolves({})
    const plan = await planDeploy(s3, local, inputs, { logger: silentLogger(), hash })
    await new Promise((resolve) => setTimeout(resolve, 20))
    // The first shard fills the lookahead, however many workers are idle.
    expect(started).toEqual(['a.safetensors'])
    expect((await plan.hashesOf(plan.files[0])).sha256).toBe(sha('a'))
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(started).toEqual(['a.safetensors', 'b.safetensors'])
    expect((await plan.hashesOf(plan.files[2])).sha256).toBe(sha('c'))
  })

  it('reads every SHA-256 in a dry run', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({})
    const plan = await planDeploy(
      s3,
      files,
      { ...inputs, dryRun: true },
      { logger: silentLogger() }
    )
    expect(plan.files.map((f) => f.sha256)).toEqual([
      sha('same bytes'),
      sha('new bytes'),
      sha('changed!'),
      sha('{"a":1}')
    ])
  })

  it('fails when a file whose hash it does not wait for cannot be read', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({})
    // Hashes never end here: the plan must find the missing file without them.
    const hash: typeof hashFile = () => new Promise(() => undefined)
    fs.rmSync(files[1].absolutePath)
    const err = await planDeploy(s3, files, inputs, { logger: silentLogger(), hash }).catch(
      (e) => e
    )
    expect(err).toBeInstanceOf(DeployError)
    expect(err.message).toBe(
      `Cannot read ${files[1].absolutePath} (new.safetensors): ENOENT: no such file or directory, access '${files[1].absolutePath}'`
    )
    expect(err.hint).toContain('Nothing was uploaded')
  })

  it('stops hashing when a request fails', async () => {
    s3Mock.on(ListObjectsV2Command).rejects(
      Object.assign(new Error('Access Denied'), {
        name: 'AccessDenied',
        $metadata: { httpStatusCode: 403 }
      })
    )
    const signals: AbortSignal[] = []
    // A hash that ends only when it is cancelled, like a multi-GB file's.
    const hash: typeof hashFile = (_path, opts) =>
      new Promise((_resolve, reject) => {
        signals.push(opts!.signal!)
        opts!.signal!.addEventListener('abort', () => reject(opts!.signal!.reason))
      })
    const err = await planDeploy(s3, files, inputs, { logger: silentLogger(), hash }).catch(
      (e) => e
    )
    expect(err).toBeInstanceOf(AwsError)
    expect(err.message).toContain('AccessDenied')
    // One hash per worker was started (the rest never are), and each was cancelled.
    expect(signals).toHaveLength(Math.min(files.length, HASH_WORKERS))
    expect(signals.every((signal) => signal.aborted)).toBe(true)
  })

  it('searches for identical objects only when a file may be new', async () => {
    // Big enough to be searched for, and already in place.
    const bytes = Buffer.alloc(2 * 1024 * 1024, 1)
    const shard = localFile('shard.bin', bytes.toString('latin1'))
    s3Mock
      .on(ListObjectsV2Command)
      .resolves({ Contents: [{ Key: 'v3/shard.bin', Size: bytes.length }] })
    s3Mock.on(HeadObjectCommand).resolves({
      ...storedHeaders(''),
      ContentLength: bytes.length,
      Metadata: { framework: 'onnx', sha256: createHash('sha256').update(bytes).digest('hex') }
    })
    const logger = silentLogger()
    const plan = await planDeploy(s3, [shard], inputs, {
      logger,
      reuse: { bucket: 'models', versionPrefix: 'v3', searchPrefixes: [''], logger }
    })
    expect(plan.files[0].action).toBe('skip')
    // Only the version's own listing: a re-deploy lists nothing else.
    expect(s3Mock.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input.Prefix)).toEqual([
      'v3/'
    ])
  })
})
