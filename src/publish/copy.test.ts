import { Readable } from 'node:stream'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  S3Client,
  UploadPartCopyCommand,
  type UploadPartCopyCommandInput
} from '@aws-sdk/client-s3'
import type { HttpResponse } from '@smithy/types'
import { mockClient } from 'aws-sdk-client-mock'
import { GiB, MAX_PARTS, MIN_PART_SIZE, MiB } from '../common/constants.js'
import { copyObject, copySource, MAX_SINGLE_COPY_BYTES, type CopyRequest } from './copy.js'
import { AwsError, DeployError } from '../common/errors.js'
import { DEFAULT_COPY_PART_SIZE } from './part-size.js'
import { silentLogger } from '../../__fixtures__/logger.js'

// Mocks this client only: the 200-with-error tests below need real clients.
const s3 = new S3Client({ region: 'us-east-1' })
const s3Mock = mockClient(s3)

const request = (overrides: Partial<CopyRequest> = {}): CopyRequest => ({
  bucket: 'models',
  sourceKey: 'v2/model.onnx',
  destKey: 'latest/model.onnx',
  size: 1234,
  contentType: 'application/octet-stream',
  cacheControl: 'public, max-age=60',
  metadata: { framework: 'onnx', sha256: 'ab'.repeat(32) },
  ...overrides
})

/** Answers a multipart copy: upload id `u1`, part ETags `"p<n>"`, final ETag `"done"`. */
function multipartAnswers(): void {
  s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' })
  s3Mock.on(UploadPartCopyCommand).callsFake(async (input: UploadPartCopyCommandInput) => ({
    CopyPartResult: { ETag: `"p${input.PartNumber}"` }
  }))
  s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"done"' })
  s3Mock.on(AbortMultipartUploadCommand).resolves({})
}

type Range = { part: number; first: number; last: number }

/** The byte ranges of the UploadPartCopy inputs (default: those sent to s3Mock), in part order. */
function ranges(
  inputs = s3Mock.commandCalls(UploadPartCopyCommand).map((c) => c.args[0].input)
): Range[] {
  return inputs
    .map((input) => {
      const match = /^bytes=(\d+)-(\d+)$/.exec(input.CopySourceRange ?? '')
      if (!match) throw new Error(`bad range ${input.CopySourceRange}`)
      return { part: input.PartNumber as number, first: +match[1], last: +match[2] }
    })
    .sort((a, b) => a.part - b.part)
}

/** Parts 1..n, contiguous, covering exactly [0, size), each within S3's part size limits. */
function expectCovering(sent: Range[], size: number, partSize: number): void {
  expect(sent.every((r, i) => r.part === i + 1)).toBe(true)
  expect(sent[0].first).toBe(0)
  expect(sent[sent.length - 1].last).toBe(size - 1)
  const gaps = sent.filter((r, i) => i > 0 && r.first !== sent[i - 1].last + 1)
  expect(gaps).toEqual([])
  const wrongSize = sent.filter(
    (r, i) => r.last - r.first + 1 !== (i < sent.length - 1 ? partSize : size - r.first)
  )
  expect(wrongSize).toEqual([])
  expect(size - sent[sent.length - 1].first).toBeLessThanOrEqual(partSize)
  expect(partSize).toBeGreaterThanOrEqual(MIN_PART_SIZE)
  expect(sent.length).toBeLessThanOrEqual(MAX_PARTS)
}

/**
 * A client whose send answers a multipart copy and records the part inputs, for copies of
 * ~10,000 parts: aws-sdk-client-mock costs ~0.3 ms a call.
 */
function fastClient(): { client: S3Client; parts: UploadPartCopyCommandInput[] } {
  const client = new S3Client({ region: 'us-east-1' })
  const parts: UploadPartCopyCommandInput[] = []
  const send = async (command: { input: object }): Promise<object> => {
    if (command instanceof CreateMultipartUploadCommand) return { UploadId: 'u1' }
    if (command instanceof UploadPartCopyCommand) {
      parts.push(command.input)
      return { CopyPartResult: { ETag: `"p${command.input.PartNumber}"` } }
    }
    if (command instanceof CompleteMultipartUploadCommand) return { ETag: '"done"' }
    throw new Error(`unexpected ${command.constructor.name}`)
  }
  return { client: Object.assign(client, { send }) as S3Client, parts }
}

beforeEach(() => s3Mock.reset())

describe('copySource', () => {
  it('percent-encodes each key segment and keeps the slashes', () => {
    expect(copySource('models', 'v1/my model é+%?#.bin')).toBe(
      'models/v1/my%20model%20%C3%A9%2B%25%3F%23.bin'
    )
    expect(copySource('models', 'v1/sub dir/a.bin')).toBe('models/v1/sub%20dir/a.bin')
  })
})

describe('copyObject, single request', () => {
  it('sends one CopyObject replacing headers and tags, guarded by the source ETag', async () => {
    s3Mock.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"new"' } })
    const result = await copyObject(
      s3,
      request({ sourceKey: 'v2/my model é.onnx', sourceETag: '"abc"' }),
      { concurrency: 4 }
    )
    expect(result).toEqual({ eTag: '"new"', parts: 1, multipart: false })
    const calls = s3Mock.commandCalls(CopyObjectCommand)
    expect(calls).toHaveLength(1)
    expect(calls[0].args[0].input).toEqual({
      Bucket: 'models',
      Key: 'latest/model.onnx',
      CopySource: 'models/v2/my%20model%20%C3%A9.onnx',
      CopySourceIfMatch: '"abc"',
      MetadataDirective: 'REPLACE',
      TaggingDirective: 'REPLACE',
      ContentType: 'application/octet-stream',
      CacheControl: 'public, max-age=60',
      Metadata: { framework: 'onnx', sha256: 'ab'.repeat(32) }
    })
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0)
  })

  it('sends no CopySourceIfMatch without a source ETag, and copies 5 GiB in one request', async () => {
    s3Mock.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"new"' } })
    await copyObject(s3, request({ size: MAX_SINGLE_COPY_BYTES }), { concurrency: 4 })
    const input = s3Mock.commandCalls(CopyObjectCommand)[0].args[0].input
    expect(input).not.toHaveProperty('CopySourceIfMatch')
    expect(MAX_SINGLE_COPY_BYTES).toBe(5 * GiB)
  })

  it('names source and destination when S3 refuses, and says what a failed ETag guard means', async () => {
    s3Mock.on(CopyObjectCommand).rejects(
      Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
        name: 'PreconditionFailed',
        $metadata: { httpStatusCode: 412 }
      })
    )
    const err = await copyObject(s3, request({ sourceETag: '"old"' }), { concurrency: 1 }).catch(
      (e: unknown) => e
    )
    expect(err).toBeInstanceOf(AwsError)
    expect((err as AwsError).message).toMatch(
      /^Failed copying s3:\/\/models\/v2\/model\.onnx to s3:\/\/models\/latest\/model\.onnx: AWS said PreconditionFailed \(HTTP 412\)/
    )
    expect((err as AwsError).hint).toMatch(/source object changed after it was listed/)
  })

  it('sends nothing when already cancelled', async () => {
    const controller = new AbortController()
    controller.abort(new Error('SIGTERM'))
    await expect(
      copyObject(s3, request(), { concurrency: 1, signal: controller.signal })
    ).rejects.toThrow(/^Cancelled copying s3:\/\/models\/v2\/model\.onnx/)
    expect(s3Mock.calls()).toHaveLength(0)
  })
})

describe('copyObject, multipart', () => {
  it('copies 5 GiB + 1 byte in contiguous ranges of the automatic part size', async () => {
    multipartAnswers()
    const size = 5 * GiB + 1
    const result = await copyObject(s3, request({ size, sourceETag: '"src"' }), {
      concurrency: 8
    })
    // 10 parts of 512 MiB and the last byte.
    expect(result).toEqual({ eTag: '"done"', parts: 11, multipart: true })
    expectCovering(ranges(), size, DEFAULT_COPY_PART_SIZE)
    expect(ranges()[10]).toEqual({ part: 11, first: 5 * GiB, last: 5 * GiB })

    expect(s3Mock.commandCalls(CopyObjectCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)[0].args[0].input).toEqual({
      Bucket: 'models',
      Key: 'latest/model.onnx',
      ContentType: 'application/octet-stream',
      CacheControl: 'public, max-age=60',
      Metadata: { framework: 'onnx', sha256: 'ab'.repeat(32) }
    })
    for (const call of s3Mock.commandCalls(UploadPartCopyCommand)) {
      expect(call.args[0].input).toMatchObject({
        Bucket: 'models',
        Key: 'latest/model.onnx',
        UploadId: 'u1',
        CopySource: 'models/v2/model.onnx',
        CopySourceIfMatch: '"src"'
      })
    }
    const complete = s3Mock.commandCalls(CompleteMultipartUploadCommand)[0].args[0].input
    expect(complete.UploadId).toBe('u1')
    expect(complete.MultipartUpload?.Parts).toEqual(
      Array.from({ length: 11 }, (_, i) => ({ PartNumber: i + 1, ETag: `"p${i + 1}"` }))
    )
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0)
  })

  it('uses the requested part size: 5 GiB + 1 byte in 5 MiB parts is 1,025 parts', async () => {
    multipartAnswers()
    const size = 5 * GiB + 1
    const result = await copyObject(s3, request({ size }), {
      concurrency: 16,
      partSize: 5 * MiB
    })
    expect(result.parts).toBe(1025)
    expectCovering(ranges(), size, 5 * MiB)
  })

  it('keeps a 5 TiB copy within 10,000 parts', async () => {
    const { client, parts } = fastClient()
    const size = 5 * 1024 * GiB
    const result = await copyObject(client, request({ size }), { concurrency: 64 })
    const sent = ranges(parts)
    const partSize = sent[0].last + 1
    // The automatic 512 MiB would need 10,240 parts: raised to the smallest whole MiB that fits.
    expect(partSize).toBe(525 * MiB)
    expect(result).toEqual({ eTag: '"done"', parts: 9987, multipart: true })
    expectCovering(sent, size, partSize)
  })

  it('goes multipart above a lowered maxSingleCopyBytes', async () => {
    multipartAnswers()
    await copyObject(s3, request({ size: 12 * MiB }), {
      concurrency: 2,
      partSize: 5 * MiB,
      maxSingleCopyBytes: 8 * MiB
    })
    expect(ranges()).toEqual([
      { part: 1, first: 0, last: 5 * MiB - 1 },
      { part: 2, first: 5 * MiB, last: 10 * MiB - 1 },
      { part: 3, first: 10 * MiB, last: 12 * MiB - 1 }
    ])
  })

  it('aborts the upload when a part fails, starts no further part, and rethrows that error', async () => {
    multipartAnswers()
    s3Mock.on(UploadPartCopyCommand, { PartNumber: 2 }).rejects(
      Object.assign(new Error('Access Denied'), {
        name: 'AccessDenied',
        $metadata: { httpStatusCode: 403 }
      })
    )
    const err = await copyObject(s3, request({ size: 50 * MiB }), {
      concurrency: 1,
      partSize: 5 * MiB,
      maxSingleCopyBytes: 8 * MiB
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AwsError)
    expect((err as AwsError).message).toMatch(
      /^Failed copying s3:\/\/models\/v2\/model\.onnx to s3:\/\/models\/latest\/model\.onnx \(part 2 of 10, bytes=5242880-10485759\): AWS said AccessDenied/
    )
    expect(s3Mock.commandCalls(UploadPartCopyCommand)).toHaveLength(2)
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0)
    const aborts = s3Mock.commandCalls(AbortMultipartUploadCommand)
    expect(aborts.map((c) => c.args[0].input)).toEqual([
      { Bucket: 'models', Key: 'latest/model.onnx', UploadId: 'u1' }
    ])
  })

  it('aborts the upload when completing it fails', async () => {
    multipartAnswers()
    s3Mock
      .on(CompleteMultipartUploadCommand)
      .rejects(Object.assign(new Error('boom'), { name: 'InternalError' }))
    await expect(
      copyObject(s3, request({ size: 12 * MiB }), {
        concurrency: 4,
        partSize: 5 * MiB,
        maxSingleCopyBytes: 8 * MiB
      })
    ).rejects.toThrow(/^Failed completing the multipart upload for copying/)
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1)
  })

  it('warns when the abort itself fails', async () => {
    multipartAnswers()
    s3Mock.on(UploadPartCopyCommand).rejects(Object.assign(new Error('x'), { name: 'SlowDown' }))
    s3Mock
      .on(AbortMultipartUploadCommand)
      .rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }))
    const logger = silentLogger()
    await expect(
      copyObject(s3, request({ size: 12 * MiB }), {
        concurrency: 1,
        partSize: 5 * MiB,
        maxSingleCopyBytes: 8 * MiB,
        logger
      })
    ).rejects.toThrow(/AWS said SlowDown/)
    expect(logger.warnings).toHaveLength(1)
    expect(logger.warnings[0]).toMatch(/aborting multipart upload u1 of s3:\/\/models\/latest/)
  })

  it('on cancel starts no further part, aborts the upload and says it was cancelled', async () => {
    multipartAnswers()
    const controller = new AbortController()
    s3Mock.on(UploadPartCopyCommand).callsFake(async (input: UploadPartCopyCommandInput) => {
      controller.abort(new Error('SIGTERM'))
      return { CopyPartResult: { ETag: `"p${input.PartNumber}"` } }
    })
    const err = await copyObject(s3, request({ size: 50 * MiB }), {
      concurrency: 1,
      partSize: 5 * MiB,
      maxSingleCopyBytes: 8 * MiB,
      signal: controller.signal
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toBe(
      'Cancelled copying s3://models/v2/model.onnx to s3://models/latest/model.onnx; the incomplete multipart upload was aborted.'
    )
    expect(s3Mock.commandCalls(UploadPartCopyCommand)).toHaveLength(1)
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1)
  })
})

describe('copyObject with S3 answering 200 and an error body', () => {
  interface Seen {
    method: string
    query: Record<string, unknown>
  }
  /** A real client (aws-sdk-client-mock skips the middleware) answered by `reply`. */
  function answering(reply: (request: Seen) => { status: number; body: string }): {
    client: S3Client
    seen: Seen[]
  } {
    const seen: Seen[] = []
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: 'http://s3.test',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      maxAttempts: 1,
      requestHandler: {
        handle: async (request: Seen) => {
          const sent = { method: request.method, query: { ...request.query } }
          seen.push(sent)
          const { status, body } = reply(sent)
          // A plain object passes the SDK's HttpResponse.isInstance duck-typing.
          const response: HttpResponse = {
            statusCode: status,
            headers: { 'content-type': 'application/xml' },
            body: Readable.from([Buffer.from(body)])
          }
          return { response }
        }
      }
    })
    return { client, seen }
  }
  const errorBody =
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>' +
    '<Message>We encountered an internal error. Please try again.</Message>' +
    '<RequestId>R1</RequestId></Error>'

  it('fails the CopyObject (the SDK turns the 200 into an error)', async () => {
    const { client, seen } = answering(() => ({ status: 200, body: errorBody }))
    await expect(copyObject(client, request(), { concurrency: 1 })).rejects.toThrow(
      /^Failed copying s3:\/\/models\/v2\/model\.onnx to s3:\/\/models\/latest\/model\.onnx: AWS said InternalError/
    )
    expect(seen).toHaveLength(1)
    client.destroy()
  })

  it('fails an UploadPartCopy the same way, and aborts the upload', async () => {
    const { client, seen } = answering(({ method, query }) => {
      if (method === 'POST' && 'uploads' in query) {
        return {
          status: 200,
          body: '<InitiateMultipartUploadResult><Bucket>models</Bucket><Key>latest/model.onnx</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>'
        }
      }
      if (method === 'DELETE') return { status: 204, body: '' }
      return { status: 200, body: errorBody }
    })
    await expect(
      copyObject(client, request({ size: 12 * MiB }), {
        concurrency: 1,
        partSize: 5 * MiB,
        maxSingleCopyBytes: 8 * MiB
      })
    ).rejects.toThrow(/\(part 1 of 3, bytes=0-5242879\): AWS said InternalError/)
    expect(seen.map((r) => r.method)).toEqual(['POST', 'PUT', 'DELETE'])
    expect(seen[1].query).toMatchObject({ partNumber: '1', uploadId: 'u1' })
    client.destroy()
  })
})
