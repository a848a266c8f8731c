/**
 * resumableParts against a real temporary file with ListParts mocked. Parts are 1 KiB: the
 * function must not enforce S3's 5 MiB minimum, and tiny parts keep every case readable.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import {
  ListPartsCommand,
  S3Client,
  type ListPartsCommandInput,
  type Part
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { AwsError } from '../common/errors.js'
import { resumableParts } from './resume.js'

const PART_SIZE = 1024
/** Four full parts and a short fifth, so the last range's length is checked too. */
const SIZE = 4 * PART_SIZE + 500
const UPLOAD = { Bucket: 'models-bucket', Key: 'v1/model.onnx', UploadId: 'upload-7' }

const s3Mock = mockClient(S3Client)
const s3 = new S3Client({
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }
})

// Every byte differs from its neighbours, so a part compared with the wrong range shows.
const bytes = Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 7 + (i >> 8)) & 0xff))
let dir: string
let path: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'resume-test-'))
  path = join(dir, 'model.onnx')
  await writeFile(path, bytes)
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

beforeEach(() => {
  s3Mock.reset()
})

const file = (): { absolutePath: string; size: number } => ({ absolutePath: path, size: SIZE })

function range(partNumber: number): Buffer {
  return bytes.subarray((partNumber - 1) * PART_SIZE, partNumber * PART_SIZE)
}

/** What S3 and moto give a part without SSE-KMS: the quoted hex MD5 of its bytes. */
function md5Etag(data: Buffer): string {
  return `"${createHash('md5').update(data).digest('hex')}"`
}

/** What S3 stores as ChecksumCRC32: the big-endian CRC32, base64. */
function crc32Base64(data: Buffer): string {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(crc32(data))
  return out.toString('base64')
}

/** The parts as ListParts returns them when they hold the file's bytes. */
function storedParts(numbers = [1, 2, 3, 4, 5]): Part[] {
  return numbers.map((n) => ({ PartNumber: n, ETag: md5Etag(range(n)), Size: range(n).length }))
}

const partCrc32 = [1, 2, 3, 4, 5].map((n) => crc32Base64(range(n)))

function awsError(name: string, status: number): Error {
  return Object.assign(new Error(`${name} said S3`), {
    name,
    $metadata: { httpStatusCode: status, requestId: 'REQ9' }
  })
}

function listInputs(): ListPartsCommandInput[] {
  return s3Mock.commandCalls(ListPartsCommand).map((call) => call.args[0].input)
}

test('keeps every part whose ETag is the MD5 of its local range', async () => {
  const parts = storedParts()
  s3Mock.on(ListPartsCommand).resolves({ Parts: parts })

  const resumed = await resumableParts(s3, UPLOAD, file(), PART_SIZE, {})

  expect(resumed).toEqual({
    kept: new Map(parts.map((p) => [p.PartNumber, { PartNumber: p.PartNumber, ETag: p.ETag }])),
    bytes: SIZE,
    rejected: 0
  })
  expect([...resumed!.kept.keys()]).toEqual([1, 2, 3, 4, 5])
  expect(listInputs()).toEqual([{ ...UPLOAD, PartNumberMarker: undefined }])
})

test('rejects a part whose stored bytes differ from the local range', async () => {
  const changed = Buffer.from(range(3))
  changed[100] ^= 1
  const parts = storedParts()
  parts[2].ETag = md5Etag(changed)
  s3Mock.on(ListPartsCommand).resolves({ Parts: parts })

  const resumed = await resumableParts(s3, UPLOAD, file(), PART_SIZE, {})

  expect([...resumed!.kept.keys()]).toEqual([1, 2, 4, 5])
  expect(resumed!.bytes).toBe(SIZE - PART_SIZE)
  expect(resumed!.rejected).toBe(1)
})

test('rejects a part whose size is not its range length', async () => {
  // The ETags are the local ranges' MD5s: only the sizes rule these parts out.
  const parts = storedParts()
  parts[1].Size = 1000
  // The last range is 500 bytes long.
  parts[4].Size = PART_SIZE
  s3Mock.on(ListPartsCommand).resolves({ Parts: parts })

  const resumed = await resumableParts(s3, UPLOAD, file(), PART_SIZE, {})

  expect([...resumed!.kept.keys()]).toEqual([1, 3, 4])
  expect(resumed!.bytes).toBe(3 * PART_SIZE)
  expect(resumed!.rejected).toBe(2)
})

test('rejects a part number the file has no range for', async () => {
  // Exactly four parts: a fifth would be empty, and its MD5 that of no bytes.
  const exact = { absolutePath: path, size: 4 * PART_SIZE }
  s3Mock.on(ListPartsCommand).resolves({
    Parts: [
      ...storedParts([1, 2, 3, 4]),
      { PartNumber: 5, ETag: md5Etag(Buffer.alloc(0)), Size: 0 },
      { PartNumber: 0, ETag: md5Etag(range(1)), Size: PART_SIZE }
    ]
  })

  const resumed = await resumableParts(s3, UPLOAD, exact, PART_SIZE, {})

  expect([...resumed!.kept.keys()]).toEqual([1, 2, 3, 4])
  expect(resumed!.bytes).toBe(4 * PART_SIZE)
  expect(resumed!.rejected).toBe(2)
})

test('rejects a part whose ETag is not a plain MD5 (SSE-KMS, SSE-C) without reading the file', async () => {
  s3Mock.on(ListPartsCommand).resolves({
    Parts: [
      { PartNumber: 1, ETag: '"ae2f0b1c9d7e4a3b8c6d5e4f3a2b1c0d9e8f7a6b"', Size: PART_SIZE },
      { PartNumber: 2, ETag: '"7a6b"', Size: PART_SIZE }
    ]
  })

  // No file here: nothing could match, so nothing is read.
  const missing = { absolutePath: join(dir, 'not-there.onnx'), size: SIZE }
  const resumed = await resumableParts(s3, UPLOAD, missing, PART_SIZE, {})

  expect(resumed).toEqual({ kept: new Map(), bytes: 0, rejected: 2 })
})

describe('with the CRC32 S3 stored', () => {
  // ETags that match nothing: only the CRC32 can vouch for these parts.
  const crcParts = (): Part[] =>
    [1, 2, 5].map((n) => ({
      PartNumber: n,
      ETag: `"${'0'.repeat(32)}"`,
      Size: range(n).length,
      ChecksumCRC32: crc32Base64(range(n))
    }))

  test('keeps a part whose CRC32 matches and rejects one whose does not, without reading the file', async () => {
    const parts = crcParts()
    parts[1].ChecksumCRC32 = crc32Base64(range(3))
    s3Mock.on(ListPartsCommand).resolves({ Parts: parts })

    // No file here: checking by CRC32 must not read it.
    const missing = { absolutePath: join(dir, 'not-there.onnx'), size: SIZE }
    const resumed = await resumableParts(s3, UPLOAD, missing, PART_SIZE, { partCrc32 })

    expect(resumed).toEqual({
      kept: new Map([
        [1, { PartNumber: 1, ETag: parts[0].ETag, ChecksumCRC32: partCrc32[0] }],
        [5, { PartNumber: 5, ETag: parts[2].ETag, ChecksumCRC32: partCrc32[4] }]
      ]),
      bytes: PART_SIZE + 500,
      rejected: 1
    })
  })

  test('rejects a part listed without the ETag Complete needs', async () => {
    const parts = crcParts()
    delete parts[0].ETag
    s3Mock.on(ListPartsCommand).resolves({ Parts: parts })

    const resumed = await resumableParts(s3, UPLOAD, file(), PART_SIZE, { partCrc32 })

    expect([...resumed!.kept.keys()]).toEqual([2, 5])
    expect(resumed!.rejected).toBe(1)
  })

  test('without the local CRC32s, falls back to the MD5 and still hands on the stored CRC32', async () => {
    const parts = storedParts([1, 2]).map((p) => ({
      ...p,
      ChecksumCRC32: crc32Base64(range(p.PartNumber!))
    }))
    parts[1].ETag = `"${'0'.repeat(32)}"`
    s3Mock.on(ListPartsCommand).resolves({ Parts: parts })

    const resumed = await resumableParts(s3, UPLOAD, file(), PART_SIZE, {})

    expect(resumed!.kept).toEqual(
      new Map([[1, { PartNumber: 1, ETag: parts[0].ETag, ChecksumCRC32: partCrc32[0] }]])
    )
    expect(resumed!.rejected).toBe(1)
  })
})

test('lists every page, following NextPartNumberMarker', async () => {
  const parts = storedParts()
  s3Mock.on(ListPartsCommand).callsFake(async (input: ListPartsCommandInput) => {
    const from = Number(input.PartNumberMarker ?? 0)
    const page = parts.slice(from, from + 2)
    const last = page.at(-1)!.PartNumber!
    return { Parts: page, IsTruncated: last < 5, NextPartNumberMarker: String(last) }
  })

  const resumed = await resumableParts(s3, UPLOAD, file(), PART_SIZE, {})

  expect(listInputs().map((input) => input.PartNumberMarker)).toEqual([undefined, '2', '4'])
  expect([...resumed!.kept.keys()]).toEqual([1, 2, 3, 4, 5])
  expect(resumed!.bytes).toBe(SIZE)
})

test('stops listing when a truncated page does not move the marker on', async () => {
  let calls = 0
  s3Mock.on(ListPartsCommand).callsFake(async () => {
    if (++calls > 3) throw new Error('listed forever')
    return { Parts: storedParts([1]), IsTruncated: true, NextPartNumberMarker: '1' }
  })

  const resumed = await resumableParts(s3, UPLOAD, file(), PART_SIZE, {})

  expect(calls).toBe(2)
  expect([...resumed!.kept.keys()]).toEqual([1])
})

test.each([
  ['NoSuchUpload', 404],
  ['NotFound', 404]
])('returns undefined when the upload is gone (%s)', async (name, status) => {
  s3Mock.on(ListPartsCommand).rejects(awsError(name, status))

  await expect(resumableParts(s3, UPLOAD, file(), PART_SIZE, {})).resolves.toBeUndefined()
})

test('reports a missing bucket rather than taking it for a finished upload', async () => {
  s3Mock.on(ListPartsCommand).rejects(awsError('NoSuchBucket', 404))

  await expect(resumableParts(s3, UPLOAD, file(), PART_SIZE, {})).rejects.toMatchObject({
    code: 'NoSuchBucket'
  })
})

test('explains other AWS errors, naming the upload', async () => {
  s3Mock.on(ListPartsCommand).rejects(awsError('AccessDenied', 403))

  const err = await resumableParts(s3, UPLOAD, file(), PART_SIZE, {}).catch((e: unknown) => e)

  expect(err).toBeInstanceOf(AwsError)
  expect((err as AwsError).message).toMatch(
    /^Failed listing the parts of multipart upload upload-7 of s3:\/\/models-bucket\/v1\/model\.onnx: AWS said AccessDenied \(HTTP 403\)/
  )
  expect((err as AwsError).code).toBe('AccessDenied')
  expect((err as AwsError).hint).toMatch(/permission/)
})

test('rejects with the read error when the file cannot be read for an MD5', async () => {
  s3Mock.on(ListPartsCommand).resolves({ Parts: storedParts([1]) })

  const missing = { absolutePath: join(dir, 'not-there.onnx'), size: SIZE }
  await expect(resumableParts(s3, UPLOAD, missing, PART_SIZE, {})).rejects.toMatchObject({
    code: 'ENOENT'
  })
})

describe('when cancelled', () => {
  const reason = new Error('Run cancelled.')

  test('before listing, rejects with the reason and lists nothing', async () => {
    s3Mock.on(ListPartsCommand).resolves({ Parts: storedParts() })
    const signal = AbortSignal.abort(reason)

    await expect(resumableParts(s3, UPLOAD, file(), PART_SIZE, { signal })).rejects.toBe(reason)
    expect(listInputs()).toEqual([])
  })

  test('while the parts are hashed, rejects with the reason', async () => {
    const controller = new AbortController()
    s3Mock.on(ListPartsCommand).callsFake(async () => {
      controller.abort(reason)
      return { Parts: storedParts() }
    })

    await expect(
      resumableParts(s3, UPLOAD, file(), PART_SIZE, { signal: controller.signal })
    ).rejects.toBe(reason)
  })

  test('while a page is listed, rejects with the reason rather than the SDK error', async () => {
    const controller = new AbortController()
    s3Mock.on(ListPartsCommand).callsFake(async () => {
      controller.abort(reason)
      throw Object.assign(new Error('Request aborted'), { name: 'AbortError' })
    })

    await expect(
      resumableParts(s3, UPLOAD, file(), PART_SIZE, { signal: controller.signal })
    ).rejects.toBe(reason)
  })
})
