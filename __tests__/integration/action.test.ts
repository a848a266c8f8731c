/**
 * The committed dist/index.js, run as a GitHub runner runs it, against a real moto_server
 * (S3 + CloudFront). Every scenario checks what is STORED (bytes, SHA-256, metadata, versions,
 * invalidations), not only what the action logs. The scenarios build on each other, in order:
 * first deploy → re-run → changed file refused → overwrite → dry run → no distribution → no bucket.
 */
import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { HeadObjectCommand } from '@aws-sdk/client-s3'
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import type { S3Client } from '@aws-sdk/client-s3'
import type { World } from '../../scripts/lib/emulator.mjs'
import { LOCK_FILE_NAME } from '../../src/aws/publish-lock.js'
import {
  bucketNames,
  getStored,
  listInvalidations,
  sha256,
  versionSnapshot
} from '../helpers/emulator-state.js'
import { startTestWorld, writeFiles, type TestWorld } from '../helpers/emulator-world.js'
import {
  expectFailure,
  expectSuccess,
  runAction,
  type RunActionResult
} from '../helpers/run-action.js'

const MiB = 1024 * 1024
const BUCKET = 'model-cdn-it'
const PREFIX = 'v1'
const IMMUTABLE = 'public, max-age=31536000, immutable'
const JP = 'modèles/日本語 model.onnx'
const JP_INVALIDATION_PATH = '/v1/mod%C3%A8les/%E6%97%A5%E6%9C%AC%E8%AA%9E%20model.onnx'
/** `~` is RFC 1738-unsafe (encoded); `+`, `(`, `)` are not, and CloudFront wants them as they are. */
const SPECIAL = 'special/v1.0~rc+1 (final).bin'
const SPECIAL_INVALIDATION_PATH = '/v1/special/v1.0%7Erc+1%20(final).bin'

interface LocalFile {
  rel: string
  bytes: Buffer
  contentType: string
}

/** Paths relative to the root (`models/`), as the `urls` output and the manifest name them. */
const initialFiles = (): LocalFile[] => [
  { rel: JP, bytes: randomBytes(300 * 1024), contentType: 'application/octet-stream' },
  {
    rel: 'weights v2.safetensors',
    bytes: randomBytes(200 * 1024),
    contentType: 'application/octet-stream'
  },
  {
    rel: 'tokenizer.json',
    bytes: Buffer.from(JSON.stringify({ vocab: { a: 1, b: 2 }, note: 'ünïcode' })),
    contentType: 'application/json'
  },
  { rel: 'empty.bin', bytes: Buffer.alloc(0), contentType: 'application/octet-stream' },
  { rel: SPECIAL, bytes: randomBytes(4096), contentType: 'application/octet-stream' },
  // 12 MiB with 5 MiB parts: a three-part multipart upload.
  {
    rel: 'big/llama.Q4_K_M.gguf',
    bytes: randomBytes(12 * MiB),
    contentType: 'application/octet-stream'
  }
]

let moto: TestWorld | undefined
let world: World
let s3: S3Client
let cloudfront: CloudFrontClient
let workspace: string
let files: LocalFile[]
let firstRun: RunActionResult

const keyOf = (rel: string, prefix = PREFIX) => `${prefix}/${rel}`
const byRel = (rel: string) => files.find((f) => f.rel === rel)!

const writeLocal = (rel: string, bytes: Buffer) =>
  writeFiles(join(workspace, 'models'), { [rel]: bytes })

/** The inputs of a release step: every test changes only what it is about. */
function deploy(inputs: Record<string, string | number | boolean | undefined> = {}) {
  return runAction({
    cwd: workspace,
    endpoint: moto!.emulator.endpoint,
    inputs: {
      artifacts: 'models/**\n!models/**/*.tmp',
      bucket: BUCKET,
      'version-prefix': PREFIX,
      'distribution-id': world.distributionId,
      'multipart-threshold-mb': 5,
      'part-size-mb': 5,
      metadata: 'model-version=2.0.1\nframework=onnx',
      // The emulator's CloudFront domain does not resolve (private-models.test.ts verifies).
      verify: false,
      ...inputs
    }
  })
}

async function expectStored(file: LocalFile, prefix = PREFIX) {
  const stored = await getStored(s3, BUCKET, keyOf(file.rel, prefix))
  expect(stored.sha256).toBe(sha256(file.bytes))
  expect(stored.bytes.equals(file.bytes)).toBe(true)
  expect(stored.metadata['sha256']).toBe(sha256(file.bytes))
  expect(stored.metadata['model-version']).toBe('2.0.1')
  expect(stored.metadata['framework']).toBe('onnx')
  expect(stored.contentType).toBe(file.contentType)
  expect(stored.cacheControl).toBe(IMMUTABLE)
  return stored
}

beforeAll(async () => {
  moto = await startTestWorld({
    bucket: BUCKET,
    requireDist: true,
    workspacePrefix: 'model-cdn-workspace-'
  })
  ;({ world, s3, cloudfront, workspace } = moto)
  files = initialFiles()
  for (const f of files) await writeLocal(f.rel, f.bytes)
  await writeLocal('scratch.tmp', Buffer.from('excluded by !models/**/*.tmp'))
}, 60_000)

afterAll(() => moto?.stop())

describe('model-cdn-deploy against moto_server, run as a GitHub runner runs it', () => {
  it('1. first deploy stores every file byte-for-byte (spaces, non-ASCII, 0 bytes, multipart)', async () => {
    firstRun = await deploy()
    expectSuccess(firstRun)
    const { outputs } = firstRun

    for (const f of files) await expectStored(f)
    // The 12 MiB file went up in three 5 MiB parts (moto's multipart ETag is "<md5>-<parts>"),
    // the others in one PutObject.
    expect((await getStored(s3, BUCKET, keyOf('big/llama.Q4_K_M.gguf'))).etag).toMatch(/-3"?$/)
    expect((await getStored(s3, BUCKET, keyOf('weights v2.safetensors'))).etag).not.toMatch(
      /-\d+"?$/
    )
    await expect(
      s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: keyOf('scratch.tmp') }))
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } })

    const totalBytes = files.reduce((n, f) => n + f.bytes.length, 0)
    expect(outputs['version-prefix']).toBe(PREFIX)
    expect(outputs['uploaded']).toBe(String(files.length))
    expect(outputs['skipped']).toBe('0')
    expect(outputs['bytes-uploaded']).toBe(String(totalBytes))
    // auto: every key is new, so no edge cache can hold a stale copy: nothing to invalidate.
    expect(outputs['invalidation-status']).toBe('none')
    expect(JSON.parse(outputs['invalidation-ids'])).toEqual([])
    expect(await listInvalidations(cloudfront, world.distributionId)).toEqual([])

    // urls: relative path → CloudFront URL, each segment percent-encoded.
    const urls = JSON.parse(outputs['urls']) as Record<string, string>
    expect(Object.keys(urls).sort()).toEqual(files.map((f) => f.rel).sort())
    for (const [rel, url] of Object.entries(urls)) {
      const parsed = new URL(url)
      expect(parsed.origin).toBe(`https://${world.domain}`)
      expect(parsed.href).toBe(url) // a valid URL as written: no raw spaces or non-ASCII
      expect(decodeURIComponent(parsed.pathname)).toBe(`/${keyOf(rel)}`)
    }
    expect(urls[JP]).toBe(`https://${world.domain}${JP_INVALIDATION_PATH}`)

    // The manifest output and the stored manifest agree, and describe every file.
    expect(outputs['manifest-url']).toBe(`https://${world.domain}/${PREFIX}/manifest.json`)
    const manifest = JSON.parse(outputs['manifest'])
    const stored = await getStored(s3, BUCKET, `${PREFIX}/manifest.json`)
    expect(JSON.parse(stored.bytes.toString('utf8'))).toEqual(manifest)
    expect(stored.contentType).toMatch(/^application\/json/)
    expect(manifest).toMatchObject({
      schemaVersion: 1,
      versionPrefix: PREFIX,
      bucket: BUCKET,
      git: {
        sha: firstRun.env['GITHUB_SHA'],
        ref: firstRun.env['GITHUB_REF'],
        repository: firstRun.env['GITHUB_REPOSITORY'],
        runId: firstRun.env['GITHUB_RUN_ID']
      },
      distribution: { id: world.distributionId, domain: world.domain }
    })
    expect(manifest.files).toHaveLength(files.length)
    for (const f of files) {
      expect(manifest.files).toContainEqual(
        expect.objectContaining({
          path: f.rel,
          key: keyOf(f.rel),
          url: urls[f.rel],
          size: f.bytes.length,
          sha256: sha256(f.bytes),
          contentType: f.contentType,
          metadata: expect.objectContaining({ 'model-version': '2.0.1', framework: 'onnx' })
        })
      )
    }

    // The job summary lists the files (these names appear only as link texts: the URLs encode them).
    expect(Buffer.byteLength(firstRun.summary)).toBeLessThan(MiB)
    expect(firstRun.summary).toContain('日本語 model.onnx')
    expect(firstRun.summary).toContain('weights v2.safetensors')
  })

  it('2. re-running skips everything and writes nothing', async () => {
    const before = await versionSnapshot(s3, BUCKET)
    const r = await deploy()
    expectSuccess(r)
    expect(r.outputs['uploaded']).toBe('0')
    expect(r.outputs['skipped']).toBe(String(files.length))
    expect(r.outputs['bytes-uploaded']).toBe('0')
    expect(r.outputs['invalidation-status']).toBe('none')
    expect(JSON.parse(r.outputs['invalidation-ids'])).toEqual([])
    expect(JSON.parse(r.outputs['urls'])).toEqual(JSON.parse(firstRun.outputs['urls']))
    // No object, the manifest included, got a new version.
    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
    // The manifest output is the document manifest-url serves.
    const stored = await getStored(s3, BUCKET, `${PREFIX}/manifest.json`)
    expect(JSON.parse(r.outputs['manifest'])).toEqual(JSON.parse(stored.bytes.toString('utf8')))
    expect(await listInvalidations(cloudfront, world.distributionId)).toEqual([])
  })

  it('3. a changed file without overwrite fails, names the file, and changes nothing', async () => {
    const old = byRel(JP).bytes
    const changed = randomBytes(old.length) // same size: only the SHA-256 can tell
    await writeLocal(JP, changed)
    const before = await versionSnapshot(s3, BUCKET)

    const r = await deploy()
    expectFailure(r)
    const message = r.errors.join('\n')
    expect(message).toContain('日本語 model.onnx')
    expect(message).toMatch(/overwrite/)

    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
    expect((await getStored(s3, BUCKET, keyOf(JP))).bytes.equals(old)).toBe(true)
    expect(await listInvalidations(cloudfront, world.distributionId)).toEqual([])
    byRel(JP).bytes = changed // the workspace now holds the new bytes
  })

  it('4. overwrite: true uploads only the changed key and invalidates exactly its path, encoded', async () => {
    const before = await versionSnapshot(s3, BUCKET)
    const r = await deploy({ overwrite: true })
    expectSuccess(r)
    expect(r.outputs['uploaded']).toBe('1')
    expect(r.outputs['skipped']).toBe(String(files.length - 1))
    expect(r.outputs['bytes-uploaded']).toBe(String(byRel(JP).bytes.length))
    for (const f of files) await expectStored(f)

    // Only the changed key (and the manifest describing it) got a new version; besides them
    // the version's lock, taken for the writes and removed after (a version and a delete marker).
    const after = await versionSnapshot(s3, BUCKET)
    const rewritten = Object.keys(after).filter(
      (k) => JSON.stringify(after[k]) !== JSON.stringify(before[k])
    )
    const lock = `${PREFIX}/${LOCK_FILE_NAME}`
    expect(rewritten.sort()).toEqual([`${PREFIX}/manifest.json`, keyOf(JP), lock].sort())
    const lockWrites = after[lock].filter((id) => !(before[lock] ?? []).includes(id))
    expect(lockWrites.map((id) => (id.startsWith('delete:') ? 'delete' : 'put')).sort()).toEqual([
      'delete',
      'put'
    ])
    const manifest = JSON.parse(r.outputs['manifest'])
    const storedManifest = await getStored(s3, BUCKET, `${PREFIX}/manifest.json`)
    expect(JSON.parse(storedManifest.bytes.toString('utf8'))).toEqual(manifest)
    expect(manifest.files.find((f: { path: string }) => f.path === JP).sha256).toBe(
      sha256(byRel(JP).bytes)
    )

    // One invalidation, for exactly the overwritten keys, each path percent-encoded as
    // CloudFront requires (moto accepts anything, so the encoding is checked here).
    const invalidations = await listInvalidations(cloudfront, world.distributionId)
    expect(invalidations).toHaveLength(1)
    const [invalidation] = invalidations
    expect(JSON.parse(r.outputs['invalidation-ids'])).toEqual([invalidation.id])
    expect(invalidation.paths.sort()).toEqual(
      [JP_INVALIDATION_PATH, `/${PREFIX}/manifest.json`].sort()
    )
    // moto reports COMPLETED; the action waited and reports it as AWS spells it.
    expect(invalidation.status.toLowerCase()).toBe('completed')
    expect(r.outputs['invalidation-status']).toBe('Completed')
    expect(r.summary).toContain(invalidation.id)
  })

  it('4b. an overwritten key with `~`, `+`, `(`, space is invalidated as CloudFront encodes it', async () => {
    const changed = randomBytes(byRel(SPECIAL).bytes.length)
    await writeLocal(SPECIAL, changed)
    byRel(SPECIAL).bytes = changed
    const known = new Set(
      (await listInvalidations(cloudfront, world.distributionId)).map((i) => i.id)
    )
    const r = await deploy({ overwrite: true })
    expectSuccess(r)
    expect(r.outputs['uploaded']).toBe('1')
    await expectStored(byRel(SPECIAL))
    const created = (await listInvalidations(cloudfront, world.distributionId)).filter(
      (i) => !known.has(i.id)
    )
    expect(created).toHaveLength(1)
    expect(created[0].paths.sort()).toEqual(
      [SPECIAL_INVALIDATION_PATH, `/${PREFIX}/manifest.json`].sort()
    )
    expect(r.outputs['invalidation-status']).toBe('Completed')
  })

  it('5. dry-run: true prints the plan and changes nothing', async () => {
    const changed = randomBytes(byRel('weights v2.safetensors').bytes.length)
    await writeLocal('weights v2.safetensors', changed)
    await writeLocal('new-model.onnx', randomBytes(1024))
    const before = await versionSnapshot(s3, BUCKET)
    const invalidationsBefore = await listInvalidations(cloudfront, world.distributionId)

    const r = await deploy({ overwrite: true, 'dry-run': true, invalidate: 'all' })
    expectSuccess(r)
    expect(r.stdout).toContain('weights v2.safetensors')
    expect(r.stdout).toContain('new-model.onnx')

    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
    expect(await listInvalidations(cloudfront, world.distributionId)).toEqual(invalidationsBefore)
    expect(await bucketNames(s3)).toEqual([BUCKET])

    // Back to the deployed state for the next scenarios.
    await writeLocal('weights v2.safetensors', byRel('weights v2.safetensors').bytes)
    await rm(join(workspace, 'models', 'new-model.onnx'))
  })

  it('6. without distribution-id: S3 URLs and no invalidation', async () => {
    const invalidationsBefore = await listInvalidations(cloudfront, world.distributionId)
    const r = await deploy({ 'distribution-id': undefined, 'version-prefix': 'v2' })
    expectSuccess(r)
    // The 12 MiB file (the only one of 1 MiB or more) is already in v1/: copied in S3, not sent.
    const big = files.filter((f) => f.bytes.length >= 1024 * 1024)
    expect(big).toHaveLength(1)
    expect(r.outputs['copied']).toBe('1')
    expect(r.outputs['uploaded']).toBe(String(files.length - 1))
    expect(Number(r.outputs['bytes-uploaded'])).toBe(
      files.reduce((sum, f) => sum + f.bytes.length, 0) - big[0].bytes.length
    )
    expect(r.stdout).toContain(`server-side from ${keyOf(big[0].rel, 'v1')}`)
    expect(r.summary).toContain('copied in S3')
    for (const f of files) await expectStored(f, 'v2')
    expect(r.outputs['invalidation-status']).toBe('none')
    expect(JSON.parse(r.outputs['invalidation-ids'])).toEqual([])
    expect(await listInvalidations(cloudfront, world.distributionId)).toEqual(invalidationsBefore)

    const urls = JSON.parse(r.outputs['urls']) as Record<string, string>
    expect(Object.keys(urls).sort()).toEqual(files.map((f) => f.rel).sort())
    for (const [rel, url] of Object.entries(urls)) {
      expect(url).not.toContain('cloudfront')
      expect(url).toContain(BUCKET)
      expect(new URL(url).href).toBe(url)
      expect(decodeURIComponent(new URL(url).pathname).endsWith(`/${keyOf(rel, 'v2')}`)).toBe(true)
    }
    // With endpoint-url the S3 URL is the store's own: it serves the stored bytes.
    const response = await fetch(urls[JP])
    expect(response.status).toBe(200)
    expect(Buffer.from(await response.arrayBuffer()).equals(byRel(JP).bytes)).toBe(true)
    expect(JSON.parse(r.outputs['manifest']).distribution).toBeNull()
  })

  it('7. a bucket that does not exist fails with a message naming it, and writes nothing', async () => {
    const missing = 'no-such-model-bucket'
    const before = await versionSnapshot(s3, BUCKET)
    const invalidationsBefore = await listInvalidations(cloudfront, world.distributionId)
    const r = await deploy({ bucket: missing, 'version-prefix': 'v3' })
    expectFailure(r)
    expect(r.errors.join('\n')).toContain(missing)
    expect(await bucketNames(s3)).toEqual([BUCKET])
    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
    expect(await listInvalidations(cloudfront, world.distributionId)).toEqual(invalidationsBefore)
  })
})
