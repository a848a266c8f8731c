import { createHash } from 'node:crypto'
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3'
import { FILE_BODY_POSITION, FileBody, fileBodyMiddleware } from '../../src/file-body.js'
import { recordingHandler, type Reply } from '../../__fixtures__/http-handler.js'

let dir: string
let file: string
const bytes = Buffer.alloc(3 * 1024 * 1024 + 17)
for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32BE(i, i)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-body-'))
  file = join(dir, 'model.bin')
})
beforeEach(() => writeFile(file, bytes))
afterAll(() => rm(dir, { recursive: true, force: true }))

const ok: Reply = { status: 200, headers: { etag: '"e"' } }

function client(reply: (attempt: number) => Reply = () => ok) {
  const handler = recordingHandler((_, attempt) => reply(attempt))
  const s3 = new S3Client({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    requestHandler: handler,
    // What clients.ts gives custom endpoints: no checksum of its own, so the body reaches the
    // handler exactly as the middleware streams it.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    retryMode: 'standard',
    maxAttempts: 3
  })
  s3.middlewareStack.add(fileBodyMiddleware(), FILE_BODY_POSITION)
  return { s3, sent: handler.sent }
}

const part = (start: number, end: number) =>
  new UploadPartCommand({
    Bucket: 'b',
    Key: 'k',
    UploadId: 'u',
    PartNumber: 1,
    Body: new FileBody(file, start, end) as unknown as Uint8Array,
    ContentLength: end - start + 1
  })

describe('fileBodyMiddleware', () => {
  it('streams exactly the byte range, unsigned, with its length', async () => {
    const { s3, sent } = client()
    await s3.send(part(1024 * 1024 - 5, 2 * 1024 * 1024 + 6))
    expect(sent).toHaveLength(1)
    expect(sent[0].body.equals(bytes.subarray(1024 * 1024 - 5, 2 * 1024 * 1024 + 7))).toBe(true)
    expect(sent[0].headers['content-length']).toBe(String(1024 * 1024 + 12))
    // An opaque body is not hashed by the signer: TLS and the checksum headers protect it.
    expect(sent[0].headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD')
  })

  it('sends the whole range again on every retried attempt', async () => {
    const { s3, sent } = client((attempt) =>
      attempt === 1
        ? { status: 503, body: '<Error><Code>SlowDown</Code><Message>Slow</Message></Error>' }
        : ok
    )
    await s3.send(part(0, bytes.length - 1))
    expect(sent).toHaveLength(2)
    for (const request of sent) expect(request.body.equals(bytes)).toBe(true)
  })

  it('sends no body for an empty range', async () => {
    const { s3, sent } = client()
    await s3.send(
      new PutObjectCommand({
        Bucket: 'b',
        Key: 'empty',
        Body: new FileBody(file, 0, -1) as unknown as Uint8Array,
        ContentLength: 0
      })
    )
    expect(sent[0].body).toHaveLength(0)
  })

  it('fails the attempt with a local read error (not retried) when the file is gone', async () => {
    const { s3, sent } = client()
    await rm(file)
    const err = (await s3.send(part(0, 99)).catch((e: unknown) => e)) as NodeJS.ErrnoException & {
      $metadata?: object
    }
    expect(err.code).toBe('ENOENT')
    expect(err.path).toBe(file)
    expect(err.message).toMatch(/^ENOENT: no such file or directory, open /)
    expect(err.$metadata).toEqual({ attempts: 1, totalRetryDelay: 0 })
    expect(sent.length).toBeLessThanOrEqual(1)
  })

  it('fails at once when the file is shorter than the range it was hashed with', async () => {
    const { s3 } = client()
    await truncate(file, 1000)
    const err = (await s3.send(part(0, 4999)).catch((e: unknown) => e)) as NodeJS.ErrnoException
    expect(err.code).toBe('ESHORTREAD')
    expect(err.path).toBe(file)
    expect(err.message).toBe(
      `${file} is shorter than when it was hashed: 1000 of 5000 bytes from offset 0`
    )
  })

  it('leaves other bodies alone', async () => {
    const { s3, sent } = client()
    await s3.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'hello' }))
    expect(sent[0].body.toString()).toBe('hello')
    expect(sent[0].headers['x-amz-content-sha256']).toBe(
      createHash('sha256').update('hello').digest('hex')
    )
  })
})
