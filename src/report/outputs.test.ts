import { buildManifest } from '../publish/manifest.js'
import { buildOutputs, OUTPUTS_BUDGET_BYTES } from './outputs.js'
import type { PublishedFile } from '../common/types.js'
import { noInvalidation, publishedFile, URL_BASE } from '../../__fixtures__/published.js'

const BASE = URL_BASE
const published = (relativePath: string, overrides: Partial<PublishedFile> = {}) =>
  publishedFile(relativePath, { size: 100, sha256: 'c'.repeat(64), ...overrides })

function manifestOf(files: PublishedFile[]) {
  return buildManifest({
    versionPrefix: 'v3',
    bucket: 'acme-models',
    files,
    metadata: {},
    distribution: null,
    git: {},
    createdAt: new Date(Date.UTC(2026, 10, 20))
  })
}

/** buildOutputs of v3 with no invalidation; `withManifest` adds the files' manifest and its URL. */
function outputsOf(files: PublishedFile[], withManifest: boolean, bytesUploaded = 0) {
  const manifest = withManifest ? manifestOf(files) : null
  const built = buildOutputs({
    versionPrefix: 'v3',
    files,
    manifest,
    manifestUrl: withManifest ? `${BASE}/v3/manifest.json` : '',
    invalidation: noInvalidation(),
    bytesUploaded
  })
  return { ...built, manifest }
}

describe('buildOutputs', () => {
  it('sets every output named in action.yml', () => {
    const files = [published('model.onnx'), published('tokenizer.json', { action: 'skip' })]
    const manifest = manifestOf(files)
    const { outputs, warnings } = buildOutputs({
      versionPrefix: 'v3',
      files,
      manifest,
      manifestUrl: `${BASE}/v3/manifest.json`,
      invalidation: {
        reason: 'overwritten keys',
        paths: ['/v3/model.onnx'],
        ids: ['I2J0I21PCUYOIK', 'I3ABCDEF'],
        status: 'Completed',
        waitedMs: 61_000
      },
      bytesUploaded: 1_234_567_890
    })

    expect(outputs).toEqual({
      'version-prefix': 'v3',
      urls: `{"model.onnx":"${BASE}/v3/model.onnx","tokenizer.json":"${BASE}/v3/tokenizer.json"}`,
      manifest: JSON.stringify(manifest),
      'manifest-url': `${BASE}/v3/manifest.json`,
      uploaded: '1',
      copied: '0',
      skipped: '1',
      'bytes-uploaded': '1234567890',
      'invalidation-ids': '["I2J0I21PCUYOIK","I3ABCDEF"]',
      'invalidation-status': 'Completed',
      // Nothing signed, verified or aliased in this run.
      'signed-urls': '',
      'signed-cookies': '',
      'signed-urls-expire-at': '',
      verified: '',
      'alias-urls': ''
    })
    expect(warnings).toEqual([])
  })

  it('sorts urls by path, including names a JS object would reorder', () => {
    const files = [published('b.bin'), published('10'), published('a.bin'), published('9')]
    const { outputs } = outputsOf(files, false)
    expect(outputs.urls).toBe(
      `{"10":"${BASE}/v3/10","9":"${BASE}/v3/9","a.bin":"${BASE}/v3/a.bin","b.bin":"${BASE}/v3/b.bin"}`
    )
    expect(Object.keys(JSON.parse(outputs.urls))).toHaveLength(4)
  })

  it('leaves manifest empty when there is none and reports no invalidation', () => {
    const { outputs, warnings } = outputsOf(
      [published('a "quoted" name.bin', { action: 'skip' })],
      false
    )
    expect(outputs.manifest).toBe('')
    expect(outputs['manifest-url']).toBe('')
    expect(outputs['invalidation-ids']).toBe('[]')
    expect(outputs['invalidation-status']).toBe('none')
    expect(outputs.uploaded).toBe('0')
    expect(outputs.skipped).toBe('1')
    expect(JSON.parse(outputs.urls)).toEqual({
      'a "quoted" name.bin': `${BASE}/v3/a "quoted" name.bin`
    })
    expect(warnings).toEqual([])
  })

  it('drops the manifest, keeps urls and warns when together they would exceed the budget', () => {
    // 1,500 files with 225-byte paths: urls alone ≈ 730 KB, the manifest about twice that.
    const files = Array.from({ length: 1500 }, (_, i) =>
      published(`shards/${String(i).padStart(5, '0')}-${'x'.repeat(200)}.safetensors`)
    )
    const { outputs, warnings, manifest } = outputsOf(files, true, 150_000)

    const urlsBytes = Buffer.byteLength(outputs.urls)
    expect(urlsBytes).toBeLessThan(OUTPUTS_BUDGET_BYTES)
    expect(urlsBytes + Buffer.byteLength(JSON.stringify(manifest))).toBeGreaterThan(
      OUTPUTS_BUDGET_BYTES
    )
    expect(outputs.manifest).toBe('')
    expect(Object.keys(JSON.parse(outputs.urls))).toHaveLength(1500)
    expect(outputs['manifest-url']).toBe(`${BASE}/v3/manifest.json`)
    const kb = Math.ceil((urlsBytes + Buffer.byteLength(JSON.stringify(manifest))) / 1000)
    expect(warnings).toEqual([
      `The manifest output is empty: with urls it would take ${kb} KB, over the 900 KB this ` +
        'action keeps for urls and manifest (GitHub allows 1 MB of outputs per job); read it ' +
        `from manifest-url (${BASE}/v3/manifest.json) instead.`
    ])
  })

  it('keeps the manifest when urls and manifest take the budget exactly, and not a byte more', () => {
    const total = (files: PublishedFile[]) =>
      Buffer.byteLength(outputsOf(files, true).outputs.urls) +
      Buffer.byteLength(JSON.stringify(manifestOf(files)))
    // ~330 bytes a file: 2,730 files come a few KB under the budget.
    const base = Array.from({ length: 2730 }, (_, i) => published(`shards/é-${i}.bin`))
    // A character more in the last path adds 5 bytes (path and URL in urls; path, key and URL in
    // the manifest); a digit more in its size, 1 (the manifest only).
    const gap = OUTPUTS_BUDGET_BYTES - total(base)
    expect(gap).toBeGreaterThan(0)
    const last = (digits: number) =>
      published(`shards/é-2729${'x'.repeat(Math.floor(gap / 5))}.bin`, { size: 10 ** (2 + digits) })
    const exact = [...base.slice(0, -1), last(gap % 5)]
    expect(total(exact)).toBe(OUTPUTS_BUDGET_BYTES)
    expect(outputsOf(exact, true).outputs.manifest).toBe(JSON.stringify(manifestOf(exact)))

    const over = [...base.slice(0, -1), last((gap % 5) + 1)]
    expect(outputsOf(over, true).outputs.manifest).toBe('')
  })

  it('measures UTF-8 bytes, not characters', () => {
    // 600 paths of 150 CJK characters: ~630 k characters in all, but over 1.5 MB of UTF-8.
    const files = Array.from({ length: 600 }, (_, i) => published(`${i}-${'模'.repeat(150)}.gguf`))
    const { outputs, warnings, manifest } = outputsOf(files, true)
    expect(outputs.urls.length + JSON.stringify(manifest).length).toBeLessThan(OUTPUTS_BUDGET_BYTES)
    expect(outputs.manifest).toBe('')
    expect(warnings).toHaveLength(1)
  })

  it('also warns when urls alone is over the budget', () => {
    const files = Array.from({ length: 4000 }, (_, i) => published(`${i}-${'y'.repeat(200)}.bin`))
    const { outputs, warnings } = outputsOf(files, false)
    expect(Buffer.byteLength(outputs.urls)).toBeGreaterThan(OUTPUTS_BUDGET_BYTES)
    expect(outputs.manifest).toBe('')
    expect(warnings).toEqual([
      `The urls output takes ${Math.ceil(Buffer.byteLength(outputs.urls) / 1000)} KB, over the ` +
        '900 KB this action keeps for urls and manifest (GitHub allows 1 MB of outputs per job), ' +
        'so it may not reach other jobs; set manifest to true and read the file list from ' +
        'manifest-url instead.'
    ])
  })
})
