/**
 * Preview clean-up against moto_server: it removes exactly `<version-prefix>/` (more than one
 * listing page and one DeleteObjects batch), leaves `pr-70/` and aliases alone, aborts the
 * prefix's multipart uploads, refuses a prefix an alias points to, and the preview tag is stored.
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectTaggingCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client
} from '@aws-sdk/client-s3'
import { PREVIEW_TAG } from '../../src/common/constants.js'
import { executeCleanup, planCleanup, previewTagging } from '../../src/release/cleanup.js'
import { mapLimit } from '../../src/common/concurrency.js'
import { DeployError } from '../../src/common/errors.js'
import { serializeManifest } from '../../src/publish/manifest.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import { listKeys, openUploadKeys } from '../helpers/emulator-state.js'
import { startTestWorld, type TestWorld } from '../helpers/emulator-world.js'

const BUCKET = 'model-cdn-cleanup'
/** More than one ListObjectsV2 page and one DeleteObjects batch. */
const PREVIEW_FILES = 1100

const previewFiles = Array.from({ length: PREVIEW_FILES }, (_, i) => `pr-7/shard-${i}.bin`)

let moto: TestWorld | undefined
let s3: S3Client

function manifest(versionPrefix: string): string {
  return serializeManifest({
    schemaVersion: 1,
    versionPrefix,
    bucket: BUCKET,
    createdAt: '2025-01-01T00:00:00.000Z',
    git: {},
    distribution: null,
    files: []
  })
}

async function put(key: string, body: string, tagging?: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Tagging: tagging }))
}

const keysUnder = (prefix: string) => listKeys(s3, BUCKET, prefix)
const openUploads = () => openUploadKeys(s3, BUCKET)

const options = () => ({ concurrency: 8, logger: silentLogger() })

beforeAll(async () => {
  moto = await startTestWorld({ bucket: BUCKET })
  ;({ s3 } = moto)

  await mapLimit(previewFiles, 32, (key) => put(key, `bytes of ${key}`))
  await put('pr-7/manifest.json', manifest('pr-7'))
  for (const key of ['pr-70/model.onnx', 'pr-70/tokenizer.json']) await put(key, key)
  await put('pr-70/manifest.json', manifest('pr-70'))
  await put('v1/model.onnx', 'v1')
  await put('v1/manifest.json', manifest('v1'))
  await put('latest/model.onnx', 'v1')
  await put('latest/manifest.json', manifest('v1'))
  for (const key of ['pr-7/big.bin', 'pr-70/big.bin']) {
    await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))
  }
}, 120_000)

afterAll(() => moto?.stop())

describe('clean-up against moto_server', () => {
  it('dry run: plans the whole prefix and deletes nothing', async () => {
    const plan = await planCleanup(s3, { bucket: BUCKET, versionPrefix: 'pr-7' }, options())
    const result = await executeCleanup(s3, plan, { logger: silentLogger(), dryRun: true })

    expect(result).toMatchObject({ dryRun: true, deleted: PREVIEW_FILES + 1, abortedUploads: 1 })
    expect(await keysUnder('pr-7/')).toHaveLength(PREVIEW_FILES + 1)
    expect(await openUploads()).toEqual(['pr-7/big.bin', 'pr-70/big.bin'])
  })

  it('removes exactly pr-7/ and its multipart upload; pr-70/ and the aliases stay', async () => {
    const plan = await planCleanup(s3, { bucket: BUCKET, versionPrefix: 'pr-7' }, options())
    // Only a paginated listing finds them all: S3 and moto answer at most 1,000 keys a page.
    expect(plan.objects).toHaveLength(PREVIEW_FILES + 1)
    expect(plan.bytes).toBe(
      previewFiles.reduce((sum, key) => sum + Buffer.byteLength(`bytes of ${key}`), 0) +
        Buffer.byteLength(manifest('pr-7'))
    )
    expect(plan.uploads.map((u) => u.Key)).toEqual(['pr-7/big.bin'])

    const result = await executeCleanup(s3, plan, { logger: silentLogger(), dryRun: false })

    expect(result).toEqual({
      dryRun: false,
      deleted: PREVIEW_FILES + 1,
      bytes: plan.bytes,
      abortedUploads: 1,
      invalidationPath: '/pr-7/*'
    })
    expect(await keysUnder('pr-7/')).toEqual([])
    expect(await keysUnder('pr-70/')).toEqual([
      'pr-70/manifest.json',
      'pr-70/model.onnx',
      'pr-70/tokenizer.json'
    ])
    expect(await keysUnder('latest/')).toEqual(['latest/manifest.json', 'latest/model.onnx'])
    expect(await openUploads()).toEqual(['pr-70/big.bin'])
    // The bucket is versioned: the delete left markers, the old versions stay for lifecycle.
    const versions = await s3.send(
      new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: 'pr-7/manifest.json' })
    )
    expect(versions.DeleteMarkers?.map((m) => m.IsLatest)).toEqual([true])
    expect(versions.Versions).toHaveLength(1)
  })

  it('refuses pr-70 while latest/manifest.json names it, and deletes nothing', async () => {
    await put('latest/manifest.json', manifest('pr-70'))
    const before = await keysUnder('')

    const err = await planCleanup(s3, { bucket: BUCKET, versionPrefix: 'pr-70' }, options()).catch(
      (e: unknown) => e
    )

    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toMatch(
      /^Refusing to delete s3:\/\/model-cdn-cleanup\/pr-70\/: the alias latest\/ points to it/
    )
    expect((err as DeployError).hint).toMatch(/mode: promote/)
    expect(await keysUnder('')).toEqual(before)
    expect(await openUploads()).toEqual(['pr-70/big.bin'])
  })

  it('stores the preview tag given with PutObject and CreateMultipartUpload', async () => {
    const tag = [{ Key: PREVIEW_TAG.key, Value: PREVIEW_TAG.value }]
    await put('pr-9/model.onnx', 'preview', previewTagging())
    const single = await s3.send(
      new GetObjectTaggingCommand({ Bucket: BUCKET, Key: 'pr-9/model.onnx' })
    )
    expect(single.TagSet).toEqual(tag)

    const key = 'pr-9/weights.bin'
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, Tagging: previewTagging() })
    )
    const { ETag } = await s3.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: 'w' })
    )
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: [{ ETag, PartNumber: 1 }] }
      })
    )
    const multipart = await s3.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: key }))
    expect(multipart.TagSet).toEqual(tag)
  })
})
