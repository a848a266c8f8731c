import { jest } from '@jest/globals'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { crc32 } from 'node:zlib'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type PutObjectCommandInput,
  type UploadPartCommandInput
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { MiB } from '../common/constants.js'
import { AwsError, ConcurrentPublishError, DeployError, InputError } from '../common/errors.js'
import { FileBody } from './file-body.js'
import { hashFile } from './hash.js'
import type { JournaledUpload } from '../aws/publish-lock.js'
import type { PlannedFile } from '../common/types.js'
import { uploadFiles, type UploadOptions } from './upload.js'
import { recordingHandler, type Reply, type SentRequest } from '../../__fixtures__/http-handler.js'

const BUCKET = 'models-bucket'
const CACHE_CONTROL = 'public, max-age=31536000, immutable'

const s3 = new S3Client({
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }
})
const s3Mock = mockClient(s3)

let dir: string
let info: string[]
let warnings: string[]

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upload-test-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

beforeEach(() => {
  info = []
  warnings = []
  s3Mock.reset()
  s3Mock.on(PutObjectCommand).resolves({ ETag: '"put"' })
  s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' })
  s3Mock
    .on(UploadPartCommand)
    .callsFake(async (input: UploadPartCommandInput) => ({ ETag: `"etag-${input.PartNumber}"` }))
  s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"complete"' })
  s3Mock.on(AbortMultipartUploadCommand).resolves({})
})

function options(overrides: Partial<UploadOptions> = {}): UploadOptions {
  return {
    bucket: BUCKET,
    multipartThresholdBytes: 5 * MiB,
    partSizeBytes: 5 * MiB,
    concurrency: 4,
    cacheControl: CACHE_CONTROL,
    metadata: { 'model-version': '2.0.1' },
    logger: {
      info: (message) => info.push(message),
      warning: (message) => warnings.push(message),
      debug: () => undefined
    },
    ...overrides
  }
}

const RAMP = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

/** Writes `size` bytes stamped with their offset every 4 KiB, so swapped or shifted parts show. */
/**
 * Writes the file and plans it as the planner does, with the CRC32s of its parts of `partSize`
 * (5 MiB, as options() uploads them; the automatic size where a test uses it).
 */
async function makeFile(
  relativePath: string,
  size: number,
  overrides: Partial<PlannedFile> = {},
  partSize = 5 * MiB
): Promise<{ file: PlannedFile; bytes: Buffer }> {
  const bytes = Buffer.alloc(size, RAMP)
  for (let offset = 0; offset + 4 <= size; offset += 4096) bytes.writeUInt32BE(offset, offset)
  const absolutePath = join(dir, relativePath)
  await mkdir(dirname(absolutePath), { recursive: true })
  await writeFile(absolutePath, bytes)
  const file: PlannedFile = {
    absolutePath,
    relativePath,
    size,
    key: `v1/${relativePath}`,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    contentType: 'application/octet-stream',
    action: 'upload',
    existed: false,
    partCrc32: (await hashFile(absolutePath, { partSize })).partCrc32,
    ...overrides
  }
  return { file, bytes }
}

/** The bytes a request body stands for: a FileBody is a range of its file, read here. */
function bodyBytes(body: unknown): Buffer {
  if (!(body instanceof FileBody)) throw new Error(`not a FileBody: ${String(body)}`)
  return readFileSync(body.path).subarray(body.start, body.end + 1)
}

/** What S3 expects in x-amz-checksum-crc32: the big-endian CRC32, base64. */
function crc32Base64(bytes: Buffer): string {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(crc32(bytes))
  return out.toString('base64')
}

function putInputs(): PutObjectCommandInput[] {
  return s3Mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input)
}

function partInputs(): UploadPartCommandInput[] {
  return s3Mock
    .commandCalls(UploadPartCommand)
    .map((call) => call.args[0].input)
    .sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0))
}

function accessDenied(): Error {
  return Object.assign(new Error('Access Denied'), {
    name: 'AccessDenied',
    $metadata: { httpStatusCode: 403, requestId: 'REQ123' }
  })
}

const nextMacrotask = () => new Promise((resolve) => setImmediate(resolve))

describe('uploadFiles, single PutObject', () => {
  it('sends a small file in one PutObject with its headers, metadata and exact bytes', async () => {
    const { file, bytes } = await makeFile('models/tokenizer.json', 1000, {
      contentType: 'application/json'
    })
    const opts = options()
    const stats = await uploadFiles(s3, [file], opts)

    const puts = putInputs()
    expect(puts).toEqual([
      {
        Bucket: BUCKET,
        Key: 'v1/models/tokenizer.json',
        ContentType: 'application/json',
        CacheControl: CACHE_CONTROL,
        Metadata: { 'model-version': '2.0.1', sha256: file.sha256 },
        // On AWS S3 checks the bytes against the SHA-256 computed when planning.
        ChecksumSHA256: Buffer.from(file.sha256!, 'hex').toString('base64'),
        ContentLength: 1000,
        // A new key: created only if no other run created it first.
        IfNoneMatch: '*',
        Body: expect.any(FileBody)
      }
    ])
    expect(bodyBytes(puts[0].Body).equals(bytes)).toBe(true)
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0)
    expect(opts.metadata).toEqual({ 'model-version': '2.0.1' })
    expect(stats.bytesUploaded).toBe(1000)
    expect(info).toEqual([
      'Uploaded models/tokenizer.json → s3://models-bucket/v1/models/tokenizer.json (1000 B, 1 part)'
    ])
  })

  it('uploads a 0-byte file', async () => {
    const { file } = await makeFile('models/empty.txt', 0)
    const stats = await uploadFiles(s3, [file], options())

    const [put] = putInputs()
    expect(put.Key).toBe('v1/models/empty.txt')
    expect(put.ContentLength).toBe(0)
    expect(bodyBytes(put.Body)).toHaveLength(0)
    expect(put.Metadata).toEqual({ 'model-version': '2.0.1', sha256: file.sha256 })
    expect(stats.bytesUploaded).toBe(0)
    expect(info).toEqual([
      'Uploaded models/empty.txt → s3://models-bucket/v1/models/empty.txt (0 B, 1 part)'
    ])
  })
})

describe('uploadFiles, multipart', () => {
  it('sends 12 MiB as parts of 5, 5 and 2 MiB with metadata on CreateMultipartUpload', async () => {
    const { file, bytes } = await makeFile('models/model.onnx', 12 * MiB)
    const stats = await uploadFiles(s3, [file], options())

    expect(s3Mock.commandCalls(CreateMultipartUploadCommand).map((c) => c.args[0].input)).toEqual([
      {
        Bucket: BUCKET,
        Key: 'v1/models/model.onnx',
        ContentType: 'application/octet-stream',
        CacheControl: CACHE_CONTROL,
        Metadata: { 'model-version': '2.0.1', sha256: file.sha256 },
        // The SDK's default checksum mode on AWS: S3 checks every part's CRC32.
        ChecksumAlgorithm: 'CRC32'
      }
    ])
    const parts = partInputs()
    const partBytes = parts.map((p) => bodyBytes(p.Body))
    expect(parts.map((p, i) => [p.PartNumber, p.UploadId, p.Key, partBytes[i].length])).toEqual([
      [1, 'upload-1', 'v1/models/model.onnx', 5 * MiB],
      [2, 'upload-1', 'v1/models/model.onnx', 5 * MiB],
      [3, 'upload-1', 'v1/models/model.onnx', 2 * MiB]
    ])
    expect(parts.map((p) => p.ContentLength)).toEqual([5 * MiB, 5 * MiB, 2 * MiB])
    expect(Buffer.concat(partBytes).equals(bytes)).toBe(true)
    expect(parts.map((p) => p.ChecksumCRC32)).toEqual(partBytes.map(crc32Base64))
    const [complete] = s3Mock.commandCalls(CompleteMultipartUploadCommand)
    expect(complete.args[0].input).toMatchObject({
      Bucket: BUCKET,
      Key: 'v1/models/model.onnx',
      UploadId: 'upload-1',
      MultipartUpload: {
        Parts: [1, 2, 3].map((n) => ({
          PartNumber: n,
          ETag: `"etag-${n}"`,
          ChecksumCRC32: crc32Base64(partBytes[n - 1])
        }))
      }
    })
    expect(putInputs()).toHaveLength(0)
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0)
    expect(stats.bytesUploaded).toBe(12 * MiB)
    expect(info).toEqual([
      'Uploaded models/model.onnx → s3://models-bucket/v1/models/model.onnx (12.0 MiB, 3 parts)'
    ])
  })

  it('sizes parts automatically when no part size is given', async () => {
    const { file } = await makeFile('models/auto.bin', 20 * MiB, {}, 16 * MiB)
    await uploadFiles(s3, [file], options({ partSizeBytes: undefined }))
    expect(partInputs().map((p) => bodyBytes(p.Body).length)).toEqual([16 * MiB, 4 * MiB])
    expect(info).toEqual([expect.stringMatching(/\(20\.0 MiB, 2 parts\)$/)])
  })

  it('uses multipart from the threshold on, and one PutObject just below it', async () => {
    const below = await makeFile('models/below.bin', 6 * MiB - 1)
    const at = await makeFile('models/at.bin', 6 * MiB)
    await uploadFiles(s3, [below.file, at.file], options({ multipartThresholdBytes: 6 * MiB }))
    expect(putInputs().map((p) => [p.Key, p.ContentLength])).toEqual([
      ['v1/models/below.bin', 6 * MiB - 1]
    ])
    expect(
      s3Mock.commandCalls(CreateMultipartUploadCommand).map((c) => c.args[0].input.Key)
    ).toEqual(['v1/models/at.bin'])
    expect(partInputs().map((p) => bodyBytes(p.Body).length)).toEqual([5 * MiB, MiB])
  })

  it('keeps headers and metadata when a file above the threshold fits in one part', async () => {
    // 16 MiB automatic parts: this 6 MiB file is one part, so one PutObject.
    const { file, bytes } = await makeFile('models/one-part.bin', 6 * MiB)
    await uploadFiles(s3, [file], options({ partSizeBytes: undefined }))
    const [put] = putInputs()
    expect(put).toMatchObject({
      Bucket: BUCKET,
      Key: 'v1/models/one-part.bin',
      ContentType: 'application/octet-stream',
      CacheControl: CACHE_CONTROL,
      Metadata: { 'model-version': '2.0.1', sha256: file.sha256 }
    })
    expect(bodyBytes(put.Body).equals(bytes)).toBe(true)
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0)
    expect(info).toEqual([expect.stringMatching(/\(6\.0 MiB, 1 part\)$/)])
  })

  it('rejects a part size the file cannot use before sending anything', async () => {
    const { file: small } = await makeFile('models/first.bin', 10)
    const { file } = await makeFile('models/big.bin', 6 * MiB)
    // 6 MiB claimed as 50 GiB: only the planned size matters for the check.
    const huge = { ...file, size: 50 * 1024 * MiB }
    const err = await uploadFiles(s3, [small, huge], options()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InputError)
    expect((err as Error).message).toMatch(
      /^models\/big\.bin of 50\.0 GiB .* 10,240 parts of 5 MiB/
    )
    expect(s3Mock.calls()).toHaveLength(0)
  })

  it('aggregates per-part progress into timed lines', async () => {
    let time = 0
    let tick: (() => void) | undefined
    const clearInterval = jest.fn()
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      if (input.PartNumber === 3) {
        time = 2000
        tick?.()
        tick?.() // nothing new: no second line
      }
      return { ETag: `"etag-${input.PartNumber}"` }
    })
    const { file } = await makeFile('models/progress.bin', 12 * MiB)
    await uploadFiles(
      s3,
      [file],
      options({
        concurrency: 1,
        progressIntervalMs: 5000,
        clock: {
          now: () => time,
          setInterval: (fn, ms) => {
            expect(ms).toBe(5000)
            tick = fn
            return 'handle'
          },
          clearInterval
        }
      })
    )
    // With one part at a time, parts 1 and 2 (10 MiB) are done when part 3 is sent.
    expect(info).toEqual([
      'Uploaded 10.0 MiB of 12.0 MiB (83%), 0 of 1 files, 5.2 MB/s, ETA 1s',
      'Uploaded models/progress.bin → s3://models-bucket/v1/models/progress.bin (12.0 MiB, 3 parts)'
    ])
    expect(clearInterval).toHaveBeenCalledWith('handle')
  })
})

describe('uploadFiles, selection', () => {
  it('sends nothing for skipped files', async () => {
    const { file: skipped } = await makeFile('models/same.bin', 100, { action: 'skip' })
    const { file: big } = await makeFile('models/same-big.bin', 6 * MiB, { action: 'skip' })
    const stats = await uploadFiles(s3, [skipped, big], options())
    expect(s3Mock.calls()).toHaveLength(0)
    expect(stats.bytesUploaded).toBe(0)
    expect(info).toEqual([])
  })

  it('uploads only the files to upload and counts their bytes', async () => {
    const { file: skipped } = await makeFile('models/same.bin', 100, { action: 'skip' })
    const { file: changed } = await makeFile('models/changed.bin', 300)
    const stats = await uploadFiles(s3, [skipped, changed], options())
    expect(putInputs().map((p) => p.Key)).toEqual(['v1/models/changed.bin'])
    expect(stats.bytesUploaded).toBe(300)
  })
})

describe('uploadFiles, files planned without their hashes', () => {
  /** The file as planned while its hashes were still being read. */
  const unhashed = (file: PlannedFile): PlannedFile => ({
    ...file,
    sha256: undefined,
    partCrc32: undefined
  })

  it('waits for each hash in file order and sends it with the file', async () => {
    const small = await makeFile('models/small.bin', 100)
    const big = await makeFile('models/big.bin', 12 * MiB)
    const release = new Map<string, () => void>()
    const asked: string[] = []
    const hashesOf = (file: PlannedFile) => {
      asked.push(file.relativePath)
      const planned = file.relativePath === 'models/big.bin' ? big.file : small.file
      return new Promise<{ sha256: string; partCrc32: string[] }>((resolve) =>
        release.set(file.relativePath, () =>
          resolve({ sha256: planned.sha256!, partCrc32: planned.partCrc32 ?? [] })
        )
      )
    }
    const uploading = uploadFiles(
      s3,
      [unhashed(big.file), unhashed(small.file)],
      options({ hashesOf })
    )
    await new Promise((resolve) => setTimeout(resolve, 20))
    // Nothing is sent before the first file's hash, and the next is not asked for yet.
    expect(asked).toEqual(['models/big.bin'])
    expect(s3Mock.calls()).toHaveLength(0)
    release.get('models/big.bin')!()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(asked).toEqual(['models/big.bin', 'models/small.bin'])
    release.get('models/small.bin')!()
    await uploading

    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)[0].args[0].input.Metadata).toEqual({
      'model-version': '2.0.1',
      sha256: big.file.sha256
    })
    expect(putInputs()[0].Metadata).toEqual({
      'model-version': '2.0.1',
      sha256: small.file.sha256
    })
  })

  it('asks for a hash only once its file can be sent, which moves the hashing on', async () => {
    const first = await makeFile('models/first.bin', 100)
    const second = await makeFile('models/second.bin', 100)
    const hashes = new Map(
      [first.file, second.file].map((f) => [
        f.relativePath,
        { sha256: f.sha256!, partCrc32: f.partCrc32 ?? [] }
      ])
    )
    const asked: string[] = []
    const hashesOf = async (file: PlannedFile) => {
      asked.push(file.relativePath)
      return hashes.get(file.relativePath)!
    }
    let releasePut!: () => void
    s3Mock
      .on(PutObjectCommand, { Key: 'v1/models/first.bin' })
      .callsFake(() => new Promise((resolve) => (releasePut = () => resolve({ ETag: '"put"' }))))
    const uploading = uploadFiles(
      s3,
      [unhashed(first.file), unhashed(second.file)],
      options({ hashesOf, concurrency: 1 })
    )
    await new Promise((resolve) => setTimeout(resolve, 20))
    // The one slot is the first file's: asking for the second's hash now would let the hashing
    // run a file further ahead of what is sent.
    const askedWhileSending = [...asked]
    releasePut()
    await uploading
    expect(askedWhileSending).toEqual(['models/first.bin'])
    expect(asked).toEqual(['models/first.bin', 'models/second.bin'])
    expect(putInputs().map((p) => p.Metadata?.sha256)).toEqual([
      first.file.sha256,
      second.file.sha256
    ])
  })

  it('asks for no more hashes once an upload has failed', async () => {
    const first = await makeFile('models/first.bin', 100)
    const second = await makeFile('models/second.bin', 100)
    const asked: string[] = []
    const hashesOf = async (file: PlannedFile) => {
      asked.push(file.relativePath)
      return { sha256: first.file.sha256!, partCrc32: [] }
    }
    s3Mock
      .on(PutObjectCommand, { Key: 'v1/models/first.bin' })
      .rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }))
    const err = await uploadFiles(
      s3,
      [unhashed(first.file), unhashed(second.file)],
      options({ hashesOf, concurrency: 1 })
    ).catch((e: unknown) => e)
    expect((err as DeployError).message).toContain('models/first.bin')
    // Asking for the second file's hash would start reading a file nothing sends.
    expect(asked).toEqual(['models/first.bin'])
  })

  it('fails on a file whose hash fails, starting no file after it', async () => {
    const first = await makeFile('models/first.bin', 100)
    const gone = await makeFile('models/gone.bin', 100)
    const after = await makeFile('models/after.bin', 100)
    const hashesOf = async (file: PlannedFile) => {
      if (file.relativePath !== 'models/gone.bin') {
        return {
          sha256: createHash('sha256').update(file.relativePath).digest('hex'),
          partCrc32: []
        }
      }
      throw Object.assign(
        new Error(`ENOENT: no such file or directory, open '${file.absolutePath}'`),
        {
          code: 'ENOENT',
          path: file.absolutePath
        }
      )
    }
    const err = await uploadFiles(
      s3,
      [unhashed(first.file), unhashed(gone.file), unhashed(after.file)],
      options({ hashesOf })
    ).catch((e: unknown) => e)
    expect((err as DeployError).message).toMatch(
      /^Failed reading .*gone\.bin to upload models\/gone\.bin to s3:\/\/models-bucket\/v1\/models\/gone\.bin: ENOENT/
    )
    expect(putInputs().map((p) => p.Key)).toEqual(['v1/models/first.bin'])
  })

  it('stops waiting for a hash when cancelled', async () => {
    const { file } = await makeFile('models/slow.bin', 100)
    const controller = new AbortController()
    const uploading = uploadFiles(
      s3,
      [unhashed(file)],
      // A hash that never ends, like a multi-GB file's when the run is cancelled.
      options({ hashesOf: () => new Promise(() => undefined), signal: controller.signal })
    ).catch((e: unknown) => e)
    controller.abort()
    expect(((await uploading) as Error).message).toBe(
      'Upload to s3://models-bucket cancelled: 0 of 1 file(s) were uploaded.'
    )
    expect(s3Mock.calls()).toHaveLength(0)
  })
})

describe('uploadFiles, concurrency', () => {
  it('keeps parts and small files in flight within the budget, across files', async () => {
    const limit = 3
    const total = 6 + 1 + 2 + 1 + 1 // parts of a, s1, parts of b, s2, s3
    const order: string[] = []
    let inFlight = 0
    let maxInFlight = 0
    let held: Array<() => void> = []
    let fallback: NodeJS.Timeout | undefined
    const releaseAll = () => {
      clearTimeout(fallback)
      const release = held
      held = []
      for (const r of release) r()
    }
    // Holds each request until `limit` are in flight (or all have arrived), so a correct
    // implementation reaches the limit, and one that admits too much shows it while they wait.
    const hold = async (name: string) => {
      order.push(name)
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      const released = new Promise<void>((resolve) => held.push(resolve))
      clearTimeout(fallback)
      if (held.length >= limit || order.length === total) setTimeout(releaseAll, 20)
      else fallback = setTimeout(releaseAll, 2000) // a stall: let the assertions report it
      await released
      inFlight--
    }
    s3Mock.on(PutObjectCommand).callsFake(async (input: PutObjectCommandInput) => {
      await hold(input.Key!)
      return {}
    })
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      await hold(input.Key!)
      return { ETag: `"etag-${input.PartNumber}"` }
    })

    const a = await makeFile('c/a.bin', 30 * MiB) // 6 parts: takes all 3 slots
    const s1 = await makeFile('c/s1.bin', 1000)
    const b = await makeFile('c/b.bin', 8 * MiB) // 2 parts: 2 slots, next to s1
    const s2 = await makeFile('c/s2.bin', 2000)
    const s3File = await makeFile('c/s3.bin', 3000)
    const files = [a, s1, b, s2, s3File].map((f) => f.file)
    const stats = await uploadFiles(s3, files, options({ concurrency: limit }))

    expect(maxInFlight).toBe(limit)
    expect(order).toHaveLength(total)
    expect(order.slice(0, 6)).toEqual(Array(6).fill('v1/c/a.bin'))
    expect(order.slice(6, 9).sort()).toEqual(['v1/c/b.bin', 'v1/c/b.bin', 'v1/c/s1.bin'])
    expect(stats.bytesUploaded).toBe(30 * MiB + 1000 + 8 * MiB + 2000 + 3000)
  })
})

describe('uploadFiles, failures', () => {
  it('rejects with an AwsError naming the file and starts no file after the failure', async () => {
    const bad = await makeFile('models/bad.bin', 100)
    const ok1 = await makeFile('models/ok1.bin', 200)
    const later = await Promise.all([
      makeFile('models/ok2.bin', 300),
      makeFile('models/big.bin', 6 * MiB)
    ])
    let ok1Started!: () => void
    const ok1Arrived = new Promise<void>((resolve) => (ok1Started = resolve))
    let badRejected!: () => void
    const badDone = new Promise<void>((resolve) => (badRejected = resolve))
    s3Mock.on(PutObjectCommand).callsFake(async (input: PutObjectCommandInput) => {
      if (input.Key === bad.file.key) {
        await ok1Arrived
        badRejected()
        throw accessDenied()
      }
      ok1Started()
      // Finish only after the failure has been handled, freeing a slot a new file could take.
      await badDone
      await nextMacrotask()
      return {}
    })

    const files = [bad, ok1, ...later].map((f) => f.file)
    const err = await uploadFiles(s3, files, options({ concurrency: 2 })).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(AwsError)
    const aws = err as AwsError
    expect(aws.message).toBe(
      'Failed uploading models/bad.bin to s3://models-bucket/v1/models/bad.bin: ' +
        'AWS said AccessDenied (HTTP 403): Access Denied [request id REQ123]'
    )
    expect(aws.code).toBe('AccessDenied')
    expect(aws.hint).toMatch(/s3:PutObject/)
    expect(
      putInputs()
        .map((p) => p.Key)
        .sort()
    ).toEqual(['v1/models/bad.bin', 'v1/models/ok1.bin'])
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0)
    expect(info).toEqual([
      'Uploaded models/ok1.bin → s3://models-bucket/v1/models/ok1.bin (200 B, 1 part)'
    ])
  })

  it('fails, starting no further file, when reporting an uploaded file fails', async () => {
    const files = await Promise.all(['a', 'b', 'c'].map((n) => makeFile(`models/${n}.bin`, 10)))
    const logFailure = new Error('log closed')
    const logger = {
      info: () => {
        throw logFailure
      },
      warning: () => undefined,
      debug: () => undefined
    }
    const err = await uploadFiles(
      s3,
      files.map((f) => f.file),
      options({ concurrency: 1, logger })
    ).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).cause).toBe(logFailure)
    expect(putInputs().map((p) => p.Key)).toEqual(['v1/models/a.bin'])
  })

  it('aborts the multipart upload of a file whose part fails, before rejecting', async () => {
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      if (input.PartNumber === 2) throw accessDenied()
      return { ETag: `"etag-${input.PartNumber}"` }
    })
    const big = await makeFile('models/big.bin', 30 * MiB)
    const after = await makeFile('models/after.bin', 100)

    const err = await uploadFiles(s3, [big.file, after.file], options({ concurrency: 2 })).catch(
      (e: unknown) => e
    )

    expect(err).toBeInstanceOf(AwsError)
    expect((err as AwsError).message).toMatch(
      /^Failed uploading models\/big\.bin to s3:\/\/models-bucket\/v1\/models\/big\.bin: AWS said AccessDenied/
    )
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand).map((c) => c.args[0].input)).toEqual([
      { Bucket: BUCKET, Key: 'v1/models/big.bin', UploadId: 'upload-1' }
    ])
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0)
    expect(putInputs()).toHaveLength(0)
    expect(info).toEqual([])
  })

  it('reports the part that failed, not the refused abort after it', async () => {
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      if (input.PartNumber === 2) {
        throw Object.assign(new Error('Please reduce your request rate.'), {
          name: 'SlowDown',
          $metadata: { httpStatusCode: 503 }
        })
      }
      return { ETag: `"etag-${input.PartNumber}"` }
    })
    s3Mock.on(AbortMultipartUploadCommand).rejects(accessDenied())
    const big = await makeFile('models/big.bin', 30 * MiB)

    const err = await uploadFiles(s3, [big.file], options({ concurrency: 2 })).catch(
      (e: unknown) => e
    )

    expect((err as AwsError).code).toBe('SlowDown')
    expect((err as AwsError).message).toMatch(/^Failed uploading models\/big\.bin .*SlowDown/)
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/^Failed aborting multipart upload upload-1 .*AccessDenied/)
  })

  it('reports a file that vanished as a local read error and aborts its upload', async () => {
    // The body is read in the request, below this mock (file-body.test.ts covers the reading):
    // the part fails as fileBodyMiddleware fails it, with the file's path.
    const { file } = await makeFile('models/gone.bin', 12 * MiB)
    await rm(file.absolutePath)
    s3Mock.on(UploadPartCommand).rejects(
      Object.assign(new Error(`ENOENT: no such file or directory, open '${file.absolutePath}'`), {
        code: 'ENOENT',
        path: file.absolutePath
      })
    )
    const err = await uploadFiles(s3, [file], options()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DeployError)
    expect(err).not.toBeInstanceOf(AwsError)
    expect((err as DeployError).message).toMatch(
      new RegExp(
        `^Failed reading ${file.absolutePath} to upload models/gone.bin to s3://models-bucket/v1/models/gone.bin: ENOENT`
      )
    )
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1)
  })

  it("refuses a multipart file planned without its parts' CRC32s, before creating an upload", async () => {
    const { file } = await makeFile('models/unplanned.bin', 12 * MiB, { partCrc32: undefined })
    const err = await uploadFiles(s3, [file], options()).catch((e: unknown) => e)
    expect((err as Error).message).toContain('planned without the CRC32s of its 3 parts')
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0)
  })
})

const lost = (name: string, status: number) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } })

describe('uploadFiles, conditional writes', () => {
  /** HEAD of the key after a lost race: what the other run stored there. */
  const storedAfterRace = (file: PlannedFile, sha256: string) =>
    s3Mock.on(HeadObjectCommand, { Key: file.key }).resolves({
      ContentLength: file.size,
      ContentType: file.contentType,
      CacheControl: CACHE_CONTROL,
      Metadata: { 'model-version': '2.0.1', sha256 }
    })

  it('replaces only the object the plan saw: If-Match on its ETag, for a PutObject and a Complete', async () => {
    const { file: small } = await makeFile('cond/small.bin', 1000, {
      existed: true,
      storedETag: '"seen-1"'
    })
    const { file: big } = await makeFile('cond/big.bin', 6 * MiB, {
      existed: true,
      storedETag: '"seen-2"'
    })
    await uploadFiles(s3, [small, big], options())
    expect(s3Mock.commandCalls(PutObjectCommand)[0].args[0].input).toMatchObject({
      IfMatch: '"seen-1"'
    })
    expect(s3Mock.commandCalls(PutObjectCommand)[0].args[0].input).not.toHaveProperty('IfNoneMatch')
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)[0].args[0].input).toMatchObject({
      IfMatch: '"seen-2"'
    })
  })

  it('counts a lost race as already there when the other run stored the same bytes and headers', async () => {
    const { file } = await makeFile('race/same.bin', 1000)
    s3Mock.on(PutObjectCommand).rejects(lost('PreconditionFailed', 412))
    storedAfterRace(file, file.sha256!)

    const stats = await uploadFiles(s3, [file], options())

    expect(stats).toEqual({ bytesUploaded: 0, alreadyThere: ['v1/race/same.bin'] })
    expect(s3Mock.commandCalls(PutObjectCommand)).toHaveLength(1)
    expect(info).toEqual([
      'Skipped race/same.bin: another run stored the same bytes at s3://models-bucket/v1/race/same.bin first'
    ])
  })

  it('fails naming the key and the version when the other run stored different bytes', async () => {
    const { file } = await makeFile('race/other.bin', 1000)
    s3Mock.on(PutObjectCommand).rejects(lost('PreconditionFailed', 412))
    storedAfterRace(file, 'f'.repeat(64))

    const err = await uploadFiles(s3, [file], options({ versionPrefix: 'v1' })).catch(
      (e: unknown) => e
    )

    expect(err).toBeInstanceOf(ConcurrentPublishError)
    expect((err as Error).message).toBe(
      'Another run wrote s3://models-bucket/v1/race/other.bin (race/other.bin) while this run was ' +
        "publishing v1: different bytes: SHA-256 differs. That run's object was kept; this run stopped."
    )
    // Read again, never sent again blindly.
    expect(s3Mock.commandCalls(PutObjectCommand)).toHaveLength(1)
  })

  it('aborts a multipart upload whose Complete lost the race (409), then reads the key again', async () => {
    const { file } = await makeFile('race/big.bin', 6 * MiB)
    s3Mock.on(CompleteMultipartUploadCommand).rejects(lost('ConditionalRequestConflict', 409))
    storedAfterRace(file, file.sha256!)
    const journal = fakeJournal()

    const stats = await uploadFiles(s3, [file], options({ journal }))

    expect(stats.alreadyThere).toEqual(['v1/race/big.bin'])
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1)
    expect(journal.open()).toEqual([])
  })
})

/** A journal as the version's lock keeps it, recording what the uploader tells it. */
function fakeJournal(earlier: JournaledUpload[] = [], keepFailed = true) {
  const open = new Map<string, JournaledUpload>(earlier.map((u) => [u.uploadId, u]))
  return {
    resumable: (key: string) => [...open.values()].find((u) => u.key === key),
    started: (u: JournaledUpload) => void open.set(u.uploadId, u),
    ended: (id: string) => void open.delete(id),
    keepFailed: () => keepFailed,
    open: () => [...open.keys()]
  }
}

describe('uploadFiles, resuming and keeping uploads', () => {
  it('journals each multipart upload, keeps one whose part failed for good, and aborts when the run was cancelled', async () => {
    const { file } = await makeFile('keep/big.bin', 12 * MiB)
    s3Mock.on(UploadPartCommand, { PartNumber: 2 }).rejects(lost('AccessDenied', 403))
    const kept = fakeJournal([], true)
    await expect(uploadFiles(s3, [file], options({ journal: kept }))).rejects.toThrow(
      /AccessDenied/
    )
    expect(kept.open()).toEqual(['upload-1'])
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0)
    expect(info.at(-1)).toMatch(
      /^Left the multipart upload of s3:\/\/models-bucket\/v1\/keep\/big\.bin open \(upload id upload-1\): a re-run resumes it/
    )

    const cancelled = fakeJournal([], false)
    await expect(uploadFiles(s3, [file], options({ journal: cancelled }))).rejects.toThrow()
    expect(cancelled.open()).toEqual([])
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1)
  })

  it('resumes an upload an earlier run left for the same bytes and headers: only the missing parts are sent', async () => {
    const { file, bytes } = await makeFile('resume/big.bin', 12 * MiB)
    const first = await uploadFiles(s3, [file], options({ journal: fakeJournal() }))
    expect(first.bytesUploaded).toBe(12 * MiB)
    const earlier = {
      ...(await journaledFor(file)),
      uploadId: 'left-open'
    }
    s3Mock.reset()
    s3Mock
      .on(UploadPartCommand)
      .callsFake(async (input: UploadPartCommandInput) => ({ ETag: `"etag-${input.PartNumber}"` }))
    s3Mock.on(CompleteMultipartUploadCommand).resolves({})
    // Part 1 stored whole; part 2 stored from other bytes; part 3 never sent.
    s3Mock.on(ListPartsCommand).resolves({
      Parts: [
        { PartNumber: 1, Size: 5 * MiB, ETag: md5(bytes.subarray(0, 5 * MiB)) },
        { PartNumber: 2, Size: 5 * MiB, ETag: md5(Buffer.alloc(5 * MiB)) }
      ]
    })
    info = []

    const journal = fakeJournal([earlier])
    const stats = await uploadFiles(s3, [file], options({ journal }))

    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(UploadPartCommand).map((c) => c.args[0].input.PartNumber)).toEqual([
      2, 3
    ])
    const complete = s3Mock.commandCalls(CompleteMultipartUploadCommand)[0].args[0].input
    expect(complete.UploadId).toBe('left-open')
    expect(complete.MultipartUpload?.Parts?.map((p) => [p.PartNumber, p.ETag])).toEqual([
      [1, md5(bytes.subarray(0, 5 * MiB))],
      [2, '"etag-2"'],
      [3, '"etag-3"']
    ])
    expect(stats.bytesUploaded).toBe(7 * MiB)
    expect(journal.open()).toEqual([])
    expect(info[0]).toBe(
      'Resuming the upload of resume/big.bin an earlier run left open (upload id left-open): 1 of 3 part(s), 5.0 MiB, already stored; 1 stored part(s) did not match the file and are sent again.'
    )
  })

  it('does not resume an upload created with other headers (S3 fixed them at creation)', async () => {
    const { file } = await makeFile('resume/other.bin', 6 * MiB)
    const earlier = { ...(await journaledFor(file)), uploadId: 'left-open', headers: 'other' }
    s3Mock.resetHistory()
    s3Mock.on(ListPartsCommand).resolves({ Parts: [] })
    await uploadFiles(s3, [file], options({ journal: fakeJournal([earlier]) }))
    expect(s3Mock.commandCalls(ListPartsCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(1)
  })

  it('uploads anew, with a warning, when the role may not list the parts', async () => {
    const { file } = await makeFile('resume/denied.bin', 6 * MiB)
    const earlier = { ...(await journaledFor(file)), uploadId: 'left-open' }
    s3Mock.resetHistory()
    s3Mock.on(ListPartsCommand).rejects(lost('AccessDenied', 403))
    await uploadFiles(s3, [file], options({ journal: fakeJournal([earlier]) }))
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(1)
    expect(warnings[0]).toMatch(
      /^Could not resume the upload of resume\/denied\.bin an earlier run left open \(.*AccessDenied.*\); sending it anew\. Resuming needs s3:ListMultipartUploadParts\.$/
    )
  })
})

const md5 = (bytes: Buffer) => `"${createHash('md5').update(bytes).digest('hex')}"`

/** The journal entry this uploader writes for the file (from a first upload of it). */
async function journaledFor(file: PlannedFile): Promise<JournaledUpload> {
  const journal = fakeJournal()
  const saved = s3Mock.commandCalls(CreateMultipartUploadCommand).length
  let entry: JournaledUpload | undefined
  await uploadFiles(
    s3,
    [file],
    options({ journal: { ...journal, started: (u) => void (entry = u) } })
  )
  expect(s3Mock.commandCalls(CreateMultipartUploadCommand).length).toBe(saved + 1)
  return entry!
}

describe('uploadFiles, cancellation', () => {
  it('stops reading, aborts the multipart upload and rejects once it has settled', async () => {
    const controller = new AbortController()
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      if (input.PartNumber === 1) controller.abort()
      return { ETag: `"etag-${input.PartNumber}"` }
    })
    const big = await makeFile('models/big.bin', 30 * MiB) // 6 parts, 2 at a time
    const after = await makeFile('models/after.bin', 100)

    const err = await uploadFiles(
      s3,
      [big.file, after.file],
      options({ concurrency: 2, signal: controller.signal })
    ).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toBe(
      'Upload to s3://models-bucket cancelled: 0 of 2 file(s) were uploaded.'
    )
    // Only the parts already read went out; the upload was aborted, not completed.
    expect(partInputs().length).toBeLessThanOrEqual(2)
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand).map((c) => c.args[0].input)).toEqual([
      { Bucket: BUCKET, Key: 'v1/models/big.bin', UploadId: 'upload-1' }
    ])
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0)
    expect(putInputs()).toHaveLength(0)
    expect(warnings).toEqual([])
  })

  it('warns when the multipart upload cannot be aborted', async () => {
    const controller = new AbortController()
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      controller.abort()
      return { ETag: `"etag-${input.PartNumber}"` }
    })
    s3Mock.on(AbortMultipartUploadCommand).rejects(accessDenied())
    const big = await makeFile('models/big.bin', 30 * MiB)

    const err = await uploadFiles(
      s3,
      [big.file],
      options({ concurrency: 2, signal: controller.signal })
    ).catch((e: unknown) => e)

    expect((err as Error).message).toMatch(/cancelled: 0 of 1 file/)
    expect(warnings).toEqual([
      'Failed aborting multipart upload upload-1 of s3://models-bucket/v1/models/big.bin: ' +
        'AWS said AccessDenied (HTTP 403): Access Denied [request id REQ123]. Until it is ' +
        'aborted its parts stay stored and billed; a bucket lifecycle rule with ' +
        'AbortIncompleteMultipartUpload (DaysAfterInitiation: 1) removes them (see the README).'
    ])
  })

  it('sends nothing when already cancelled', async () => {
    const { file } = await makeFile('models/a.bin', 10)
    const err = await uploadFiles(s3, [file], options({ signal: AbortSignal.abort() })).catch(
      (e: unknown) => e
    )
    expect((err as Error).message).toBe(
      'Upload to s3://models-bucket cancelled: 0 of 1 file(s) were uploaded.'
    )
    expect(s3Mock.calls()).toHaveLength(0)
  })
})

describe('uploadFiles, on the wire (a real client, default AWS checksum mode)', () => {
  /** S3 answers for the calls uploadFiles makes, enough for the SDK to parse. */
  const answer = (request: SentRequest): Reply => {
    if (request.method === 'POST' && 'uploads' in request.query) {
      return {
        status: 200,
        body: '<InitiateMultipartUploadResult><UploadId>up-1</UploadId></InitiateMultipartUploadResult>'
      }
    }
    if (request.method === 'POST') {
      return {
        status: 200,
        body: '<CompleteMultipartUploadResult></CompleteMultipartUploadResult>'
      }
    }
    return { status: 200, headers: { etag: '"part"' } }
  }

  function wireClient() {
    const handler = recordingHandler(answer)
    const client = new S3Client({
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      requestHandler: handler
    })
    return { client, sent: handler.sent }
  }

  it('signs a PutObject with the planned SHA-256 and lets S3 check it', async () => {
    const { client, sent } = wireClient()
    const { file, bytes } = await makeFile('wire/small.json', 3000)
    await uploadFiles(client, [file], options())
    expect(sent).toHaveLength(1)
    expect(sent[0].body.equals(bytes)).toBe(true)
    expect(sent[0].headers['x-amz-content-sha256']).toBe(file.sha256)
    expect(sent[0].headers['x-amz-checksum-sha256']).toBe(
      Buffer.from(file.sha256!, 'hex').toString('base64')
    )
  })

  it('sends each part unsigned with its CRC32, and completes with the CRC32s', async () => {
    const { client, sent } = wireClient()
    const { file, bytes } = await makeFile('wire/big.bin', 11 * MiB)
    await uploadFiles(client, [file], options())
    const parts = sent.filter((r) => r.method === 'PUT')
    expect(parts).toHaveLength(3)
    const expected = [
      bytes.subarray(0, 5 * MiB),
      bytes.subarray(5 * MiB, 10 * MiB),
      bytes.subarray(10 * MiB)
    ]
    for (const part of parts) {
      const index = Number(part.query.partNumber) - 1
      expect(part.body.equals(expected[index])).toBe(true)
      expect(part.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD')
      expect(part.headers['x-amz-checksum-crc32']).toBe(crc32Base64(expected[index]))
    }
    const create = sent.find((r) => r.method === 'POST' && 'uploads' in r.query)!
    expect(create.headers['x-amz-checksum-algorithm']).toBe('CRC32')
    expect(create.headers['x-amz-meta-sha256']).toBe(file.sha256)
    const complete = sent.filter((r) => r.method === 'POST').at(-1)!
    for (const part of expected) {
      expect(complete.body.toString()).toContain(
        `<ChecksumCRC32>${crc32Base64(part)}</ChecksumCRC32>`
      )
    }
  })
})
