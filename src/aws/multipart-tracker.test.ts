/**
 * The tracker is SDK middleware, and aws-sdk-client-mock replaces send() so no middleware runs:
 * these tests give a real S3Client a stand-in request handler answering as S3 does.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client
} from '@aws-sdk/client-s3'
import { MiB } from '../common/constants.js'
import {
  abortFailureWarning,
  abortMultipartUploads,
  trackMultipartUploads,
  type MultipartUpload
} from './multipart-tracker.js'
import { hashFile } from '../publish/hash.js'
import { uploadFiles } from '../publish/upload.js'
import { recordingHandler, type Reply, type SentRequest } from '../../__fixtures__/http-handler.js'
import { silentLogger } from '../../__fixtures__/logger.js'

type Responder = (request: SentRequest) => Reply | Promise<Reply>

const xmlError = (status: number, code: string): Reply => ({
  status,
  body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message><RequestId>R1</RequestId></Error>`
})

/** Answers CreateMultipartUpload with upload ids u1, u2…, and every other call with success. */
function s3Like(): Responder {
  let next = 0
  return ({ method, path, query }) => {
    const key = decodeURIComponent(path.split('/').slice(2).join('/'))
    if (method === 'POST' && 'uploads' in query) {
      next++
      return {
        status: 200,
        body: `<InitiateMultipartUploadResult><Bucket>models</Bucket><Key>${key}</Key><UploadId>u${next}</UploadId></InitiateMultipartUploadResult>`
      }
    }
    if (method === 'POST') {
      return {
        status: 200,
        body: `<CompleteMultipartUploadResult><Bucket>models</Bucket><Key>${key}</Key><ETag>"e"</ETag></CompleteMultipartUploadResult>`
      }
    }
    return { status: method === 'DELETE' ? 204 : 200 }
  }
}

function client(respond: Responder): { s3: S3Client; sent: SentRequest[] } {
  const handler = recordingHandler(async (request) => ({
    headers: { 'content-type': 'application/xml', etag: '"part"' },
    ...(await respond(request))
  }))
  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint: 'http://s3.test',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    maxAttempts: 1,
    requestHandler: handler
  })
  return { s3, sent: handler.sent }
}

const upload = (UploadId: string, Key = 'v1/a.bin'): MultipartUpload => ({
  Bucket: 'models',
  Key,
  UploadId
})

describe('trackMultipartUploads', () => {
  it('records every upload started and forgets it once completed or aborted', async () => {
    const { s3 } = client(s3Like())
    const changes: MultipartUpload[][] = []
    const tracker = trackMultipartUploads(s3, (open) => changes.push(open))

    await s3.send(new CreateMultipartUploadCommand({ Bucket: 'models', Key: 'v1/a.bin' }))
    await s3.send(new CreateMultipartUploadCommand({ Bucket: 'models', Key: 'v1/b.bin' }))
    expect(tracker.open()).toEqual([upload('u1'), upload('u2', 'v1/b.bin')])

    await s3.send(
      new CompleteMultipartUploadCommand({
        ...upload('u1'),
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"e"' }] }
      })
    )
    expect(tracker.open()).toEqual([upload('u2', 'v1/b.bin')])
    await s3.send(new AbortMultipartUploadCommand(upload('u2', 'v1/b.bin')))
    expect(tracker.open()).toEqual([])

    // Saved as each upload starts and ends, so a killed run leaves the latest list behind.
    expect(changes).toEqual([
      [upload('u1')],
      [upload('u1'), upload('u2', 'v1/b.bin')],
      [upload('u2', 'v1/b.bin')],
      []
    ])
  })

  it('keeps an upload whose completion failed, and forgets one S3 no longer knows', async () => {
    let failWith = 'InternalError'
    const answer = s3Like()
    const { s3 } = client((request) =>
      request.method === 'POST' && !('uploads' in request.query)
        ? xmlError(failWith === 'NoSuchUpload' ? 404 : 500, failWith)
        : answer(request)
    )
    const tracker = trackMultipartUploads(s3)
    await s3.send(new CreateMultipartUploadCommand({ Bucket: 'models', Key: 'v1/a.bin' }))
    const complete = new CompleteMultipartUploadCommand({
      ...upload('u1'),
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"e"' }] }
    })

    await expect(s3.send(complete)).rejects.toMatchObject({ name: 'InternalError' })
    expect(tracker.open()).toEqual([upload('u1')])

    // Completed by an earlier attempt whose answer was lost, or aborted by someone else.
    failWith = 'NoSuchUpload'
    await expect(s3.send(complete)).rejects.toMatchObject({ name: 'NoSuchUpload' })
    expect(tracker.open()).toEqual([])
  })

  it('ignores every other call', async () => {
    const { s3 } = client(s3Like())
    const changes: MultipartUpload[][] = []
    const tracker = trackMultipartUploads(s3, (open) => changes.push(open))
    await s3.send(new PutObjectCommand({ Bucket: 'models', Key: 'v1/small.bin', Body: 'x' }))
    expect(tracker.open()).toEqual([])
    expect(changes).toEqual([])
  })

  it("sees uploadFiles' multipart uploads without any change to it", async () => {
    const { s3, sent } = client(s3Like())
    const changes: MultipartUpload[][] = []
    trackMultipartUploads(s3, (open) => changes.push(open))
    const dir = mkdtempSync(join(tmpdir(), 'tracker-'))
    try {
      const absolutePath = join(dir, 'big.bin')
      writeFileSync(absolutePath, Buffer.alloc(11 * MiB))
      const file = { absolutePath, relativePath: 'big.bin', size: 11 * MiB }
      await uploadFiles(
        s3,
        [
          {
            ...file,
            key: 'v1/big.bin',
            ...(await hashFile(absolutePath, { partSize: 5 * MiB })),
            contentType: 'x/y',
            action: 'upload',
            existed: false
          }
        ],
        {
          bucket: 'models',
          multipartThresholdBytes: 5 * MiB,
          partSizeBytes: 5 * MiB,
          concurrency: 2,
          cacheControl: 'no-cache',
          metadata: {},
          logger: silentLogger()
        }
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    expect(sent.filter((r) => 'partNumber' in r.query)).toHaveLength(3)
    expect(changes).toEqual([[upload('u1', 'v1/big.bin')], []])
  })
})

describe('abortMultipartUploads', () => {
  it('aborts all at once and sorts out which were aborted, already gone, or refused', async () => {
    let inFlight = 0
    let maxInFlight = 0
    const { s3, sent } = client(async ({ query }) => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      await new Promise((resolve) => setTimeout(resolve, 20))
      inFlight--
      if (query.uploadId === 'gone') return xmlError(404, 'NoSuchUpload')
      if (query.uploadId === 'denied') return xmlError(403, 'AccessDenied')
      return { status: 204 }
    })
    const uploads = [upload('ok'), upload('gone', 'v1/b.bin'), upload('denied', 'v1/c.bin')]

    const outcome = await abortMultipartUploads(s3, uploads)

    expect(sent.map((r) => [r.method, r.query.uploadId])).toEqual([
      ['DELETE', 'ok'],
      ['DELETE', 'gone'],
      ['DELETE', 'denied']
    ])
    expect(maxInFlight).toBe(3)
    expect(outcome.aborted).toEqual([upload('ok')])
    expect(outcome.gone).toEqual([upload('gone', 'v1/b.bin')])
    expect(outcome.failed).toHaveLength(1)
    expect(abortFailureWarning(outcome.failed[0])).toBe(
      'Failed aborting multipart upload denied of s3://models/v1/c.bin: AWS said AccessDenied ' +
        '(HTTP 403): AccessDenied [request id R1]. Until it is aborted its parts stay stored and ' +
        'billed; a bucket lifecycle rule with AbortIncompleteMultipartUpload ' +
        '(DaysAfterInitiation: 1) removes them (see the README).'
    )
  })

  it('gives up on a store that does not answer within the timeout', async () => {
    const { s3 } = client(() => new Promise<Reply>(() => undefined))
    const started = Date.now()
    const outcome = await abortMultipartUploads(s3, [upload('slow')], { timeoutMs: 200 })
    expect(Date.now() - started).toBeLessThan(2000)
    expect(outcome.aborted).toEqual([])
    expect(abortFailureWarning(outcome.failed[0])).toMatch(
      /^Failed aborting multipart upload slow of s3:\/\/models\/v1\/a\.bin: no answer in time\. Until/
    )
  })
})
