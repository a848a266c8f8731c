import { createHash } from 'node:crypto'
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3'
import {
  FILE_BODY_POSITION,
  FileBody,
  FileRangeStream,
  READ_CHUNK_BYTES,
  SMALL_BODY_BYTES,
  fileBodyMiddleware
} from './file-body.js'
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

  // Small ranges are read whole, larger ones streamed: both fail alike.
  const sizes = [
    ['read whole', 100],
    ['streamed', SMALL_BODY_BYTES + 100]
  ] as const

  it.each(sizes)(
    'fails the attempt with a local read error (not retried) when the file is gone (%s)',
    async (_, size) => {
      const { s3, sent } = client()
      await rm(file)
      const err = (await s3
        .send(part(0, size - 1))
        .catch((e: unknown) => e)) as NodeJS.ErrnoException & {
        $metadata?: object
      }
      expect(err.code).toBe('ENOENT')
      expect(err.path).toBe(file)
      expect(err.message).toMatch(/^ENOENT: no such file or directory, open /)
      expect(err.$metadata).toEqual({ attempts: 1, totalRetryDelay: 0 })
      expect(sent.length).toBeLessThanOrEqual(1)
    }
  )

  it.each(sizes)(
    'fails at once when the file is shorter than the range it was hashed with (%s)',
    async (_, size) => {
      const { s3 } = client()
      const range = size + 4900
      await truncate(file, size)
      const err = (await s3
        .send(part(0, range - 1))
        .catch((e: unknown) => e)) as NodeJS.ErrnoException
      expect(err.code).toBe('ESHORTREAD')
      expect(err.path).toBe(file)
      expect(err.message).toBe(
        `${file} is shorter than when it was hashed: ${size} of ${range} bytes from offset 0`
      )
    }
  )

  it('sends a small range read whole, exactly, on every attempt', async () => {
    const { s3, sent } = client((attempt) =>
      attempt === 1
        ? { status: 503, body: '<Error><Code>SlowDown</Code><Message>Slow</Message></Error>' }
        : ok
    )
    await s3.send(part(4090, 4090 + SMALL_BODY_BYTES - 1))
    expect(sent).toHaveLength(2)
    for (const request of sent) {
      expect(request.body.equals(bytes.subarray(4090, 4090 + SMALL_BODY_BYTES))).toBe(true)
      expect(request.headers['content-length']).toBe(String(SMALL_BODY_BYTES))
    }
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

/**
 * A destination that, like a socket, calls each write back later (after `delayMs`). It records
 * what each chunk held when it was handed over, and which chunks changed before their callback.
 */
function slowDestination(delayMs: number) {
  const written: { at: Buffer; arrayBuffer: ArrayBufferLike }[] = []
  const changedBeforeCallback: number[] = []
  let outstanding = 0
  let maxOutstanding = 0
  const destination = new Writable({
    write(_chunk: Buffer, _encoding, done) {
      setTimeout(done, delayMs)
    }
  })
  const write = destination.write.bind(destination)
  destination.write = ((chunk: Buffer, done: (err?: Error | null) => void) => {
    const index = written.push({ at: Buffer.from(chunk), arrayBuffer: chunk.buffer }) - 1
    maxOutstanding = Math.max(maxOutstanding, ++outstanding)
    return write(chunk, (err) => {
      if (!chunk.equals(written[index].at)) changedBeforeCallback.push(index)
      outstanding--
      done(err)
    })
  }) as typeof destination.write
  const finished = new Promise<void>((resolve, reject) => {
    destination.on('finish', resolve).on('error', reject)
  })
  return {
    destination,
    finished,
    written,
    changedBeforeCallback,
    maxOutstanding: () => maxOutstanding
  }
}

describe('FileRangeStream', () => {
  it('reads into a buffer again only once its write has called back', async () => {
    // Writes called back after 50 ms: long enough that the reads fill all three buffers first even
    // on a loaded machine (5 ms left the third read still pending there, one run in ~20).
    const sink = slowDestination(50)
    new FileRangeStream(file, 0, bytes.length - 1).pipe(sink.destination)
    await sink.finished
    expect(sink.changedBeforeCallback).toEqual([])
    expect(Buffer.concat(sink.written.map((w) => w.at)).equals(bytes)).toBe(true)
    // Reading runs ahead of the writes, by two buffers at most.
    expect(sink.maxOutstanding()).toBe(3)
    expect(sink.written.every((w) => w.at.length <= READ_CHUNK_BYTES)).toBe(true)
  })

  it('sends body after body from the same few buffers, not one allocation per read', async () => {
    const arrayBuffers = new Set<ArrayBufferLike>()
    for (let i = 0; i < 4; i++) {
      const sink = slowDestination(1)
      new FileRangeStream(file, i, bytes.length - 1).pipe(sink.destination)
      await sink.finished
      expect(Buffer.concat(sink.written.map((w) => w.at)).equals(bytes.subarray(i))).toBe(true)
      for (const w of sink.written) arrayBuffers.add(w.arrayBuffer)
    }
    // 28 reads of 512 KiB (7 per body) in all.
    expect(arrayBuffers.size).toBeLessThanOrEqual(3)
  })

  it('stops reading when the destination closes before the range is sent', async () => {
    const sink = slowDestination(1)
    sink.finished.catch(() => undefined)
    new FileRangeStream(file, 0, bytes.length - 1).pipe(sink.destination)
    while (sink.written.length === 0) await new Promise((resolve) => setTimeout(resolve, 1))
    sink.destination.destroy(new Error('the server answered early'))
    const count = sink.written.length
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(count).toBeLessThan(4)
    expect(sink.written).toHaveLength(count)
  })
})
