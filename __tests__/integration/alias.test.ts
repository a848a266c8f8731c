/**
 * Release aliases and server-side copies against moto_server (issue 6 points 1 and 2): promote
 * v1 → latest, v2 → latest (stale file removed, one `/latest/*` invalidation, latest's manifest
 * is v2's bytes), rollback to v1; multipart copies and keys with spaces and non-ASCII. Every
 * check reads what S3 and CloudFront stored.
 */
import { randomBytes } from 'node:crypto'
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import { GetObjectTaggingCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { promote, type AliasResult } from '../../src/release/alias.js'
import { copyObject } from '../../src/publish/copy.js'
import { createInvalidations, toBatches, waitForInvalidations } from '../../src/cdn/invalidation.js'
import { buildManifest, serializeManifest } from '../../src/publish/manifest.js'
import { writeManifest } from '../../src/publish/manifest-store.js'
import type { PublishedFile } from '../../src/common/types.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import type { World } from '../../scripts/lib/emulator.mjs'
import {
  getStored,
  listInvalidations,
  listKeys,
  openUploads,
  sha256,
  versionSnapshot
} from '../helpers/emulator-state.js'
import { startTestWorld, type TestWorld } from '../helpers/emulator-world.js'

const MiB = 1024 * 1024
const BUCKET = 'model-cdn-alias'
const VERSION_CACHE_CONTROL = 'public, max-age=31536000, immutable'
const ALIAS_CACHE_CONTROL = 'public, max-age=60'
const METADATA = { framework: 'onnx' }

let moto: TestWorld | undefined
let world: World
let s3: S3Client
let cloudfront: CloudFrontClient

/** Stores a version as a deploy does: objects with sha256 metadata, then its manifest. */
async function publish(version: string, files: Record<string, Buffer>): Promise<void> {
  const published: PublishedFile[] = []
  for (const [path, bytes] of Object.entries(files)) {
    const file: PublishedFile = {
      absolutePath: `/workspace/${path}`,
      relativePath: path,
      size: bytes.length,
      key: `${version}/${path}`,
      sha256: sha256(bytes),
      contentType: path.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      action: 'upload',
      existed: false,
      url: `https://${world.domain}/${version}/${path}`
    }
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: file.key,
        Body: bytes,
        ContentType: file.contentType,
        CacheControl: VERSION_CACHE_CONTROL,
        Metadata: { ...METADATA, sha256: file.sha256! },
        // A preview tag on the version must not follow the copies into the alias.
        Tagging: 'stage=preview'
      })
    )
    published.push(file)
  }
  const manifest = buildManifest({
    versionPrefix: version,
    bucket: BUCKET,
    files: published,
    metadata: METADATA,
    distribution: { id: world.distributionId, domain: world.domain },
    git: { sha: `sha-${version}` },
    createdAt: new Date('2025-06-01T00:00:00Z')
  })
  await writeManifest(s3, BUCKET, `${version}/manifest.json`, serializeManifest(manifest))
}

const keysUnder = (prefix: string) => listKeys(s3, BUCKET, `${prefix}/`)

/** What the lead's deploy does with the result: invalidate the paths and wait. */
async function invalidate(result: AliasResult): Promise<string[]> {
  if (result.invalidationPaths.length === 0) return []
  const sleep = async (): Promise<void> => undefined
  const ids = await createInvalidations(
    cloudfront,
    world.distributionId,
    toBatches(result.invalidationPaths),
    { runId: `alias-${Date.now()}`, runAttempt: '1', logger: silentLogger(), sleep }
  )
  const waited = await waitForInvalidations(cloudfront, world.distributionId, ids, {
    timeoutMs: 60_000,
    logger: silentLogger(),
    sleep
  })
  expect(waited.status).toBe('Completed')
  return ids
}

/** Checks that `latest/` holds exactly the version's files (bytes, sha256, headers) and manifest. */
async function expectAliasIs(version: string, files: Record<string, Buffer>): Promise<void> {
  expect(await keysUnder('latest')).toEqual(
    [...Object.keys(files).map((p) => `latest/${p}`), 'latest/manifest.json'].sort()
  )
  for (const [path, bytes] of Object.entries(files)) {
    const stored = await getStored(s3, BUCKET, `latest/${path}`)
    expect(stored.sha256).toBe(sha256(bytes))
    expect(stored.metadata).toEqual({ ...METADATA, sha256: sha256(bytes) })
    expect(stored.cacheControl).toBe(ALIAS_CACHE_CONTROL)
    expect(stored.contentType).toBe(
      path.endsWith('.json') ? 'application/json' : 'application/octet-stream'
    )
  }
  const manifest = await getStored(s3, BUCKET, 'latest/manifest.json')
  const original = await getStored(s3, BUCKET, `${version}/manifest.json`)
  expect(manifest.bytes.equals(original.bytes)).toBe(true)
  expect(JSON.parse(manifest.bytes.toString('utf8')).versionPrefix).toBe(version)
  expect(manifest.metadata).toEqual(original.metadata)
  expect(manifest.cacheControl).toBe(ALIAS_CACHE_CONTROL)
  expect(manifest.contentType).toBe('application/json')
}

const V1 = {
  'model.onnx': randomBytes(64 * 1024),
  'tokenizer.json': Buffer.from('{"vocab":{"a":1}}'),
  'only in v1.bin': randomBytes(1000)
}
const V2 = {
  'model.onnx': randomBytes(64 * 1024),
  'tokenizer.json': V1['tokenizer.json'],
  'sub dir/ünïcode é.bin': randomBytes(2000)
}

beforeAll(async () => {
  moto = await startTestWorld({ bucket: BUCKET })
  ;({ world, s3, cloudfront } = moto)
  await publish('v1', V1)
  await publish('v2', V2)
})

afterAll(() => moto?.stop())

describe('promote and rollback', () => {
  const opts = { concurrency: 4, logger: silentLogger() }
  const inputs = { bucket: BUCKET, alias: 'latest', aliasCacheControl: ALIAS_CACHE_CONTROL }

  it('promotes v1 to an empty latest: every file copied, nothing to invalidate', async () => {
    const result = await promote(s3, { ...inputs, versionPrefix: 'v1' }, opts)
    expect(result).toMatchObject({
      previousVersion: undefined,
      versionPrefix: 'v1',
      copied: ['latest/model.onnx', 'latest/only in v1.bin', 'latest/tokenizer.json'],
      unchanged: [],
      removed: [],
      manifestAction: 'copied',
      invalidationPaths: []
    })
    await expectAliasIs('v1', V1)
    const tags = await s3.send(
      new GetObjectTaggingCommand({ Bucket: BUCKET, Key: 'latest/model.onnx' })
    )
    expect(tags.TagSet ?? []).toEqual([])
  })

  it('moves latest to v2: the v1-only file goes, one /latest/* invalidation', async () => {
    const before = await versionSnapshot(s3, BUCKET)
    const invalidationsBefore = await listInvalidations(cloudfront, world.distributionId)
    const result = await promote(s3, { ...inputs, versionPrefix: 'v2' }, opts)
    expect(result).toMatchObject({
      previousVersion: 'v1',
      versionPrefix: 'v2',
      copied: ['latest/model.onnx', 'latest/sub dir/ünïcode é.bin'],
      unchanged: ['latest/tokenizer.json'],
      removed: ['latest/only in v1.bin'],
      manifestAction: 'copied',
      invalidationPaths: ['/latest/*']
    })
    const ids = await invalidate(result)
    await expectAliasIs('v2', V2)

    // The unchanged file was not copied again: it still has the one version it had.
    const after = await versionSnapshot(s3, BUCKET)
    expect(after['latest/tokenizer.json']).toEqual(before['latest/tokenizer.json'])
    expect(after['latest/model.onnx']).toHaveLength(2)

    const invalidations = await listInvalidations(cloudfront, world.distributionId)
    expect(invalidations).toHaveLength(invalidationsBefore.length + 1)
    expect(invalidations.filter((i) => ids.includes(i.id)).map((i) => i.paths)).toEqual([
      ['/latest/*']
    ])
  })

  it('does nothing when latest already is v2', async () => {
    const before = await versionSnapshot(s3, BUCKET)
    const result = await promote(s3, { ...inputs, versionPrefix: 'v2' }, opts)
    expect(result).toMatchObject({ copied: [], removed: [], manifestAction: 'unchanged' })
    expect(result.invalidationPaths).toEqual([])
    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
  })

  it('rolls back to v1', async () => {
    const result = await promote(s3, { ...inputs, versionPrefix: 'v1' }, opts)
    expect(result).toMatchObject({
      previousVersion: 'v2',
      versionPrefix: 'v1',
      removed: ['latest/sub dir/ünïcode é.bin'],
      invalidationPaths: ['/latest/*']
    })
    await invalidate(result)
    await expectAliasIs('v1', V1)
  })

  it('dry run changes nothing', async () => {
    const before = await versionSnapshot(s3, BUCKET)
    const result = await promote(s3, { ...inputs, versionPrefix: 'v2' }, { ...opts, dryRun: true })
    expect(result).toMatchObject({ dryRun: true, previousVersion: 'v1', manifestAction: 'copied' })
    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
  })

  it('refuses a version whose files are not all stored, before touching latest', async () => {
    await publish('v3', { 'a.bin': randomBytes(10) })
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'v3/a.bin', Body: randomBytes(11) }))
    const before = await versionSnapshot(s3, BUCKET)
    await expect(promote(s3, { ...inputs, versionPrefix: 'v3' }, opts)).rejects.toThrow(
      'v3 is missing 1 of 1 file(s) its manifest lists: a.bin (11 bytes stored, the manifest says 10)'
    )
    await expect(promote(s3, { ...inputs, versionPrefix: 'v9' }, opts)).rejects.toThrow(
      /^v9\/manifest\.json not found/
    )
    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
  })
})

describe('copyObject', () => {
  const request = (sourceKey: string, destKey: string, bytes: Buffer) => ({
    bucket: BUCKET,
    sourceKey,
    destKey,
    size: bytes.length,
    contentType: 'application/octet-stream',
    cacheControl: ALIAS_CACHE_CONTROL,
    metadata: { ...METADATA, sha256: sha256(bytes) }
  })

  // moto 5.2 ignores x-amz-copy-source-if-match (only if-none-match is implemented), so a changed
  // source is covered by the unit tests; here the header is sent and a matching ETag accepted.
  async function put(key: string, bytes: Buffer): Promise<string> {
    const { ETag } = await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes, CacheControl: 'no-store' })
    )
    return ETag as string
  }

  it.each([
    ['one CopyObject', 64 * 1024],
    ['UploadPartCopy in 5 MiB parts', 12 * MiB]
  ])('copies a key with spaces and non-ASCII byte for byte: %s', async (_, size) => {
    const bytes = randomBytes(size)
    const sourceKey = `copy-src/${size}/my model é/ünï côdé+%#?.bin`
    const destKey = `copy-dst/${size}/my model é/ünï côdé+%#?.bin`
    const eTag = await put(sourceKey, bytes)
    const result = await copyObject(
      s3,
      { ...request(sourceKey, destKey, bytes), sourceETag: eTag },
      { concurrency: 2, partSize: 5 * MiB, maxSingleCopyBytes: 8 * MiB }
    )
    expect(result.parts).toBe(size > 8 * MiB ? 3 : 1)
    const stored = await getStored(s3, BUCKET, destKey)
    expect(stored.bytes.equals(bytes)).toBe(true)
    expect(stored.metadata).toEqual({ ...METADATA, sha256: sha256(bytes) })
    expect(stored.cacheControl).toBe(ALIAS_CACHE_CONTROL)
    expect(stored.contentType).toBe('application/octet-stream')
    expect(await openUploads(s3, BUCKET)).toEqual([])
  })
})
