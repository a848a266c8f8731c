import { closeSync, openSync, readSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { Readable, type Writable } from 'node:stream'
import type { DeserializeMiddleware } from '@smithy/types'
import { withFields } from '../common/objects.js'

/**
 * Bytes per read of a file streamed into a request. 512 KiB sent a GiB as fast as 1 MiB with
 * ~15 MB less peak memory; 128 KiB cost 10% more time (npm run bench, same run).
 */
export const READ_CHUNK_BYTES = 512 * 1024
/**
 * Ranges up to this size are read whole into a Buffer body, synchronously: a file of a few
 * hundred bytes (in the page cache: it was just hashed) is read in ~10 µs, where a stream piped
 * into the request and three asynchronous file operations cost ~5x the CPU, which for thousands
 * of small files was a fifth of the run (npm run bench, scenario 8).
 */
export const SMALL_BODY_BYTES = 64 * 1024
/** Buffers one body reads into in turn: one is read while up to two are being written. */
const BUFFERS_PER_BODY = 3
/**
 * Buffers whose writes have finished, for the next body. There are never more than
 * BUFFERS_PER_BODY per body sent at once, so this stays at concurrency × 1.5 MiB.
 */
const idleBuffers: Buffer[] = []

/**
 * A request body that is a byte range of a file. The SDK never retries a stream body (it cannot
 * rewind one), and a Buffer body is copied whole into the TLS socket's queue; this is neither:
 * the SDK keeps it as an opaque body, retries the request with its own strategy, and
 * fileBodyMiddleware, below the retry and signing middleware, sends a fresh FileRangeStream of
 * the range on every attempt. Give the command a ContentLength. The signer treats an opaque body
 * as UNSIGNED-PAYLOAD (no second SHA-256 pass; TLS protects the bytes, and on AWS the CRC32 or
 * SHA-256 checksum header upload.ts adds is checked by S3), unless a payload hash is set.
 */
export class FileBody {
  constructor(
    readonly path: string,
    readonly start: number,
    /** Inclusive, as in createReadStream; start - 1 for an empty file. */
    readonly end: number
  ) {}
}

export const FILE_BODY_POSITION = {
  step: 'deserialize',
  name: 'fileBodyMiddleware',
  // Innermost: after the deserializer, so once per attempt, right before the request is sent.
  priority: 'low'
} as const

/**
 * Replaces a FileBody with a FileRangeStream of it for each attempt. A read error or a file that
 * has shrunk destroys the request at once (the handler would otherwise wait for the missing
 * bytes until the socket timed out, and retry), and the attempt fails with that local error: it
 * carries `path`, so it is reported as a read error, and the SDK does not retry it.
 */
export function fileBodyMiddleware<
  Input extends object,
  Output extends object
>(): DeserializeMiddleware<Input, Output> {
  return (next) => async (args) => {
    const request = args.request as { body?: unknown }
    const body = request.body
    if (!(body instanceof FileBody)) return next(args)
    if (body.end < body.start)
      return next(withFields(args, { request: withBody(request, undefined) }))
    if (body.end - body.start < SMALL_BODY_BYTES) {
      return next(withFields(args, { request: withBody(request, readRange(body)) }))
    }
    const stream = new FileRangeStream(body.path, body.start, body.end)
    try {
      return await next(withFields(args, { request: withBody(request, stream) }))
    } catch (err) {
      throw stream.readError ?? err
    } finally {
      stream.destroy()
    }
  }
}

/**
 * A byte range of a file, written into the one destination it is piped to (the handler pipes a
 * stream body into the request) from three reused buffers. fs.ReadStream allocates a new
 * buffer for every read; with the SDK's heap that made V8 run a full collection every ~20 MB
 * sent, and sending a GiB cost twice the CPU. A buffer is read into again only once the
 * destination's write callback has run: a socket is then done with it (TLS encrypts on write).
 * Nothing else may read it: it is only ever piped.
 */
export class FileRangeStream extends Readable {
  /** Why the range could not be sent: the file could not be read, or is shorter than the range. */
  readError?: NodeJS.ErrnoException
  private wake?: () => void

  constructor(
    readonly path: string,
    readonly start: number,
    /** Inclusive. */
    readonly end: number
  ) {
    super()
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T): T {
    void this.writeInto(destination as unknown as Writable)
    return destination
  }

  override _read(): void {
    this.destroy(new Error('A FileRangeStream can only be piped into one destination.'))
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.wake?.()
    callback(err)
  }

  private async writeInto(destination: Writable): Promise<void> {
    const free: Buffer[] = []
    for (let i = 0; i < BUFFERS_PER_BODY; i++) {
      free.push(idleBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK_BYTES))
    }
    let finished = false
    // Settles after this body is done too: its buffer then goes straight back to the pool.
    const written = (buffer: Buffer) => (err?: Error | null) => {
      if (err) return this.wake?.() // the destination failed: its buffer is left to the collector
      ;(finished ? idleBuffers : free).push(buffer)
      this.wake?.()
    }
    let closed = false
    const onClose = (): void => {
      closed = true
      this.wake?.()
    }
    destination.once('close', onClose)
    const stopped = (): boolean => closed || this.destroyed
    let handle: FileHandle | undefined
    try {
      handle = await open(this.path, 'r')
      let position = this.start
      while (position <= this.end && !stopped()) {
        while (free.length === 0 && !stopped()) await new Promise<void>((r) => (this.wake = r))
        if (stopped()) break
        const buffer = free.pop()!
        const wanted = Math.min(buffer.length, this.end - position + 1)
        const { bytesRead } = await handle.read(buffer, 0, wanted, position)
        if (bytesRead === 0) {
          this.fail(destination, shortRead(this, position))
          return
        }
        position += bytesRead
        if (stopped()) {
          free.push(buffer)
          break
        }
        destination.write(buffer.subarray(0, bytesRead), written(buffer))
      }
      if (!stopped()) destination.end()
    } catch (err) {
      this.fail(destination, withPath(err as NodeJS.ErrnoException, this.path))
    } finally {
      finished = true
      idleBuffers.push(...free)
      destination.off('close', onClose)
      await handle?.close()
    }
  }

  private fail(destination: Writable, err: NodeJS.ErrnoException): void {
    this.readError = err
    destination.destroy(err)
  }
}

/** The range, read whole; the same errors as a FileRangeStream's (read error, ESHORTREAD). */
function readRange(body: FileBody): Buffer {
  const bytes = Buffer.allocUnsafe(body.end - body.start + 1)
  let fd: number | undefined
  try {
    fd = openSync(body.path, 'r')
    for (let read = 0; read < bytes.length;) {
      const n = readSync(fd, bytes, read, bytes.length - read, body.start + read)
      if (n === 0) throw shortRead(body, body.start + read)
      read += n
    }
    return bytes
  } catch (err) {
    const local = err as NodeJS.ErrnoException
    throw local.code === 'ESHORTREAD' ? local : withPath(local, body.path)
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

function shortRead(
  range: { path: string; start: number; end: number },
  position: number
): NodeJS.ErrnoException {
  const sent = position - range.start
  const expected = range.end - range.start + 1
  return Object.assign(
    new Error(
      `${range.path} is shorter than when it was hashed: ${sent} of ${expected} bytes from offset ${range.start}`
    ),
    { code: 'ESHORTREAD', path: range.path }
  )
}

/**
 * Errors of reads on an open descriptor carry no path: it is added, so the failure is reported
 * as a read error of this file. A new Error, since fs's may come from another realm (jest's vm),
 * which the SDK would wrap.
 */
function withPath(err: NodeJS.ErrnoException, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(err.message), {
    code: err.code,
    path: err.path ?? path,
    cause: err
  })
}

/** A copy of the request (same prototype, so still an HttpRequest) with another body. */
function withBody<R extends object>(request: R, body: unknown): R {
  return Object.assign(Object.create(Object.getPrototypeOf(request) as object) as R, request, {
    body
  })
}
