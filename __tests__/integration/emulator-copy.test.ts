/**
 * What publishing from an `s3://` source relies on S3 for, as AWS answers it, pinned against the
 * patched moto the integration tests run (MOTO_PATCH in scripts/lib/emulator.mjs): a copy whose
 * source was replaced since it was listed fails (x-amz-copy-source-if-match, on CopyObject and
 * UploadPartCopy, across buckets), a ranged part copy holds exactly its range, HeadObject names
 * an object's checksum and its type, CopyObject keeps or replaces metadata and checksum, and
 * HeadBucket names a bucket's region. A moto upgrade that changes any of these fails here.
 *
 * Not emulated, so nothing here relies on it: AWS gives an object uploaded without a checksum a
 * CRC64NVME one; moto gives it none.
 */
import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type PutObjectCommandInput
} from '@aws-sdk/client-s3'
import {
  TEST_ACCESS_KEY_ID,
  TEST_REGION,
  TEST_SECRET_ACCESS_KEY
} from '../../scripts/lib/emulator.mjs'
import { startTestEmulator, type TestEmulator } from '../helpers/emulator-world.js'

const SOURCE = 'training-runs'
const DEST = 'model-cdn'
const MiB = 1024 * 1024
const PRECONDITION_FAILED = { name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } }
const NO_SUCH_KEY = { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }
const NOT_FOUND = { $metadata: { httpStatusCode: 404 } }

let moto: TestEmulator | undefined
let s3: S3Client

beforeAll(async () => {
  moto = await startTestEmulator({ workspacePrefix: 'model-cdn-emulator-copy-it-' })
  s3 = moto.s3
  await s3.send(new CreateBucketCommand({ Bucket: SOURCE }))
  await s3.send(new CreateBucketCommand({ Bucket: DEST }))
  // Versioned, as the bucket the action deploys to.
  await s3.send(
    new PutBucketVersioningCommand({
      Bucket: DEST,
      VersioningConfiguration: { Status: 'Enabled' }
    })
  )
})

afterAll(async () => {
  await moto?.stop()
})

/** A client for the emulator in another region, or with the SDK's default checksums (CRC32). */
function otherClient(options: { region?: string; sdkChecksums?: boolean }): S3Client {
  return new S3Client({
    endpoint: moto!.emulator.endpoint,
    region: options.region ?? TEST_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET_ACCESS_KEY },
    maxAttempts: 1,
    ...(options.sdkChecksums ? {} : { requestChecksumCalculation: 'WHEN_REQUIRED' as const })
  })
}

/** Stores `Body` at `Bucket`/`Key`; its ETag. */
async function put(input: PutObjectCommandInput & { Bucket: string; Key: string }, client = s3) {
  const { ETag } = await client.send(new PutObjectCommand(input))
  if (!ETag) throw new Error(`PutObject ${input.Key} returned no ETag`)
  return ETag
}

async function read(Bucket: string, Key: string): Promise<Buffer> {
  const { Body } = await s3.send(new GetObjectCommand({ Bucket, Key }))
  return Buffer.from(await Body!.transformToByteArray())
}

/** A source key replaced once: the ETag it was listed with (stale) and the one it has (current). */
async function replacedOnce(Key: string): Promise<{ stale: string; current: string }> {
  const stale = await put({ Bucket: SOURCE, Key, Body: `${Key}: first` })
  const current = await put({ Bucket: SOURCE, Key, Body: `${Key}: second` })
  return { stale, current }
}

/** Bytes no two offsets of which repeat in a short cycle, so a shifted range cannot pass. */
function patterned(size: number): Buffer {
  const bytes = Buffer.alloc(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 9)) & 0xff
  return bytes
}

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest()
const base64 = (bytes: Buffer) => bytes.toString('base64')

const headChecksums = (Bucket: string, Key: string) =>
  s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }))

describe('MOTO_PATCH: x-amz-copy-source-if-match', () => {
  const copy = (Bucket: string, Key: string, source: string, CopySourceIfMatch: string) =>
    s3.send(
      new CopyObjectCommand({ Bucket, Key, CopySource: `${SOURCE}/${source}`, CopySourceIfMatch })
    )

  it('CopyObject from a source replaced since it was listed answers 412, in its bucket and across buckets', async () => {
    const { stale } = await replacedOnce('if-match/copy.bin')
    await expect(
      copy(SOURCE, 'if-match/copy-here.bin', 'if-match/copy.bin', stale)
    ).rejects.toMatchObject(PRECONDITION_FAILED)
    await expect(copy(DEST, 'v1/copy.bin', 'if-match/copy.bin', stale)).rejects.toMatchObject(
      PRECONDITION_FAILED
    )
    await expect(
      s3.send(new HeadObjectCommand({ Bucket: DEST, Key: 'v1/copy.bin' }))
    ).rejects.toMatchObject(NOT_FOUND)
  })

  it('CopyObject from an unchanged source copies it (the ETag quoted or not)', async () => {
    const { current } = await replacedOnce('if-match/same.bin')
    await copy(DEST, 'v1/same.bin', 'if-match/same.bin', current)
    await copy(DEST, 'v1/same-unquoted.bin', 'if-match/same.bin', current.replaceAll('"', ''))
    expect((await read(DEST, 'v1/same.bin')).toString()).toBe('if-match/same.bin: second')
    expect((await read(DEST, 'v1/same-unquoted.bin')).toString()).toBe('if-match/same.bin: second')
  })

  it('UploadPartCopy from a replaced source answers 412 and leaves the upload open; from a missing one, 404 NoSuchKey', async () => {
    const { stale, current } = await replacedOnce('if-match/part.bin')
    const Key = 'v1/part.bin'
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: DEST, Key }))
    const copyPart = (source: string, CopySourceIfMatch?: string) =>
      s3.send(
        new UploadPartCopyCommand({
          Bucket: DEST,
          Key,
          UploadId,
          PartNumber: 1,
          CopySource: `${SOURCE}/${source}`,
          CopySourceIfMatch
        })
      )

    await expect(copyPart('if-match/part.bin', stale)).rejects.toMatchObject(PRECONDITION_FAILED)
    await expect(copyPart('if-match/absent.bin', current)).rejects.toMatchObject(NO_SUCH_KEY)

    const { CopyPartResult } = await copyPart('if-match/part.bin', current)
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: DEST,
        Key,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: CopyPartResult?.ETag }] }
      })
    )
    expect((await read(DEST, Key)).toString()).toBe('if-match/part.bin: second')
  })
})

describe('UploadPartCopy with x-amz-copy-source-range', () => {
  it('copies exactly each range, inclusive of its last byte, from another bucket', async () => {
    const source = patterned(6 * MiB + 7)
    const ETag = await put({ Bucket: SOURCE, Key: 'ranged/model.bin', Body: source })
    const Key = 'v1/ranged.bin'
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: DEST, Key }))
    // The object from byte 3 on, in a 5 MiB part and the rest: offsets a range copy must keep.
    const ranges = [
      [3, 3 + 5 * MiB - 1],
      [3 + 5 * MiB, source.length - 1]
    ]
    const parts: CompletedPart[] = []
    for (const [i, [first, last]] of ranges.entries()) {
      const { CopyPartResult } = await s3.send(
        new UploadPartCopyCommand({
          Bucket: DEST,
          Key,
          UploadId,
          PartNumber: i + 1,
          CopySource: `${SOURCE}/ranged/model.bin`,
          CopySourceIfMatch: ETag,
          CopySourceRange: `bytes=${first}-${last}`
        })
      )
      parts.push({ PartNumber: i + 1, ETag: CopyPartResult?.ETag })
    }
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: DEST,
        Key,
        UploadId,
        MultipartUpload: { Parts: parts }
      })
    )
    expect((await read(DEST, Key)).equals(source.subarray(3))).toBe(true)
  })
})

describe('MOTO_PATCH: HeadObject with x-amz-checksum-mode: ENABLED', () => {
  it("names the SDK's default CRC32 of a PutObject, as a FULL_OBJECT checksum", async () => {
    const body = 'weights, checksummed by the SDK'
    const sdkChecksums = otherClient({ sdkChecksums: true })
    try {
      await put({ Bucket: SOURCE, Key: 'checksums/crc32.bin', Body: body }, sdkChecksums)
    } finally {
      sdkChecksums.destroy()
    }
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(body))
    expect(await headChecksums(SOURCE, 'checksums/crc32.bin')).toMatchObject({
      ChecksumCRC32: base64(crc),
      ChecksumType: 'FULL_OBJECT'
    })
  })

  it('names a SHA-256 given alone (as the deploy sends it on AWS) or by algorithm, as FULL_OBJECT', async () => {
    const body = 'weights with a known SHA-256'
    const ChecksumSHA256 = base64(sha256(body))
    await put({ Bucket: SOURCE, Key: 'checksums/sha256-value.bin', Body: body, ChecksumSHA256 })
    await put({
      Bucket: SOURCE,
      Key: 'checksums/sha256-algorithm.bin',
      Body: body,
      ChecksumAlgorithm: 'SHA256'
    })
    for (const Key of ['checksums/sha256-value.bin', 'checksums/sha256-algorithm.bin']) {
      expect(await headChecksums(SOURCE, Key)).toMatchObject({
        ChecksumSHA256,
        ChecksumType: 'FULL_OBJECT'
      })
    }
  })

  it('names the checksum of a multipart upload as COMPOSITE: the checksum of the part checksums, -<parts>', async () => {
    const body = patterned(5 * MiB + 11)
    const parts = [body.subarray(0, 5 * MiB), body.subarray(5 * MiB)]
    await multipartSha256(SOURCE, 'checksums/multipart.bin', parts)
    const composite = base64(sha256(Buffer.concat(parts.map((part) => sha256(part)))))
    expect(await headChecksums(SOURCE, 'checksums/multipart.bin')).toMatchObject({
      ChecksumSHA256: `${composite}-2`,
      ChecksumType: 'COMPOSITE'
    })
  })
})

describe('CopyObject: metadata and checksum', () => {
  const Metadata = { sha256: 'a'.repeat(64), run: '42' }

  it('keeps the metadata and the checksum by default; MetadataDirective REPLACE replaces the metadata only', async () => {
    const body = 'config'
    await put({
      Bucket: SOURCE,
      Key: 'copies/config.json',
      Body: body,
      ContentType: 'text/plain',
      Metadata,
      ChecksumSHA256: base64(sha256(body))
    })
    const copy = (Key: string, replace: object) =>
      s3.send(
        new CopyObjectCommand({
          Bucket: DEST,
          Key,
          CopySource: `${SOURCE}/copies/config.json`,
          ...replace
        })
      )
    await copy('v1/kept.json', {})
    await copy('v1/replaced.json', {
      MetadataDirective: 'REPLACE',
      Metadata: { sha256: 'b'.repeat(64) },
      ContentType: 'application/json',
      CacheControl: 'public, max-age=31536000, immutable'
    })
    const checksum = { ChecksumSHA256: base64(sha256(body)), ChecksumType: 'FULL_OBJECT' }
    const kept = await headChecksums(DEST, 'v1/kept.json')
    expect(kept).toMatchObject({ ContentType: 'text/plain', ...checksum })
    expect(kept.Metadata).toEqual(Metadata)
    const replaced = await headChecksums(DEST, 'v1/replaced.json')
    expect(replaced).toMatchObject({
      ContentType: 'application/json',
      CacheControl: 'public, max-age=31536000, immutable',
      ...checksum
    })
    expect(replaced.Metadata).toEqual({ sha256: 'b'.repeat(64) })
  })

  it('of a multipart object stores the FULL_OBJECT checksum of its bytes, same algorithm (MOTO_PATCH)', async () => {
    const body = patterned(5 * MiB + 5)
    await multipartSha256(SOURCE, 'copies/multipart.bin', [
      body.subarray(0, 5 * MiB),
      body.subarray(5 * MiB)
    ])
    await s3.send(
      new CopyObjectCommand({
        Bucket: DEST,
        Key: 'v1/multipart.bin',
        CopySource: `${SOURCE}/copies/multipart.bin`,
        MetadataDirective: 'REPLACE',
        Metadata
      })
    )
    expect(await headChecksums(DEST, 'v1/multipart.bin')).toMatchObject({
      ChecksumSHA256: base64(sha256(body)),
      ChecksumType: 'FULL_OBJECT'
    })
  })
})

describe('HeadBucket names the bucket region', () => {
  const EU = 'eu-west-1'
  const EU_BUCKET = 'training-runs-eu'
  let eu: S3Client

  beforeAll(async () => {
    eu = otherClient({ region: EU })
    await eu.send(
      new CreateBucketCommand({
        Bucket: EU_BUCKET,
        CreateBucketConfiguration: { LocationConstraint: EU }
      })
    )
  })

  afterAll(() => eu?.destroy())

  it('in a 200 from its own region', async () => {
    expect(await s3.send(new HeadBucketCommand({ Bucket: SOURCE }))).toMatchObject({
      BucketRegion: TEST_REGION
    })
    expect(await eu.send(new HeadBucketCommand({ Bucket: EU_BUCKET }))).toMatchObject({
      BucketRegion: EU
    })
  })

  it('in a 301 from another region (MOTO_PATCH)', async () => {
    await expect(s3.send(new HeadBucketCommand({ Bucket: EU_BUCKET }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 301 },
      $response: { headers: { 'x-amz-bucket-region': EU } }
    })
  })
})

/** A multipart upload of `parts` with SHA-256 checksums (S3 makes them COMPOSITE). */
async function multipartSha256(Bucket: string, Key: string, parts: Buffer[]): Promise<void> {
  const { UploadId } = await s3.send(
    new CreateMultipartUploadCommand({ Bucket, Key, ChecksumAlgorithm: 'SHA256' })
  )
  const completed: CompletedPart[] = []
  for (const [i, Body] of parts.entries()) {
    const ChecksumSHA256 = base64(sha256(Body))
    const { ETag } = await s3.send(
      new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: i + 1, Body, ChecksumSHA256 })
    )
    completed.push({ PartNumber: i + 1, ETag, ChecksumSHA256 })
  }
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket,
      Key,
      UploadId,
      MultipartUpload: { Parts: completed }
    })
  )
}
