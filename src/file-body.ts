import { createReadStream } from 'node:fs'
import type { Writable } from 'node:stream'
import type { DeserializeMiddleware } from '@smithy/types'

/** Reads of a file streamed into a request. */
export const READ_CHUNK_BYTES = 512 * 1024

/**
 * A request body that is a byte range of a file. The SDK never retries a stream body (it cannot
 * rewind one), and a Buffer body is copied whole into the TLS socket's queue; this is neither:
 * the SDK keeps it as an opaque body, retries the request with its own strategy, and
 * fileBodyMiddleware, below the retry and signing middleware, sends a fresh ReadStream of the
 * range on every attempt. Give the command a ContentLength. The signer treats an opaque body as
 * UNSIGNED-PAYLOAD (no second SHA-256 pass; TLS protects the bytes, and on AWS the CRC32 or
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
 * Replaces a FileBody with a ReadStream of it for each attempt. The handler pipes the body into
 * the request and sees neither its errors nor a short read, so the request would wait for its
 * missing bytes until the socket timed out (and a timeout is retried): a read error or a file
 * that has shrunk destroys the request at once, and the attempt fails with that local error
 * (it carries `path`, so it is reported as a read error, and the SDK does not retry it).
 */
export function fileBodyMiddleware<
  Input extends object,
  Output extends object
>(): DeserializeMiddleware<Input, Output> {
  return (next) => async (args) => {
    const request = args.request as { body?: unknown }
    const body = request.body
    if (!(body instanceof FileBody)) return next(args)
    const expected = body.end - body.start + 1
    if (expected <= 0) return next({ ...args, request: withBody(request, undefined) })
    const stream = createReadStream(body.path, {
      start: body.start,
      end: body.end,
      highWaterMark: READ_CHUNK_BYTES
    })
    let readError: Error | undefined
    const destinations: Writable[] = []
    const fail = (err: Error): void => {
      readError ??= err
      for (const destination of destinations) destination.destroy(err)
    }
    const pipe = stream.pipe.bind(stream)
    stream.pipe = (<T extends NodeJS.WritableStream>(
      destination: T,
      options?: { end?: boolean }
    ) => {
      destinations.push(destination as unknown as Writable)
      return pipe(destination, options)
    }) as typeof stream.pipe
    // Errors of reads on an open descriptor carry no path: add it, so the failure is reported
    // as a read error of this file.
    stream.on('error', (err: NodeJS.ErrnoException) =>
      fail(
        Object.assign(new Error(err.message), {
          code: err.code,
          path: body.path,
          cause: err
        })
      )
    )
    stream.on('end', () => {
      if (stream.bytesRead < expected) {
        fail(
          Object.assign(
            new Error(
              `${body.path} is shorter than when it was hashed: ${stream.bytesRead} of ${expected} bytes from offset ${body.start}`
            ),
            { code: 'ESHORTREAD', path: body.path }
          )
        )
      }
    })
    try {
      return await next({ ...args, request: withBody(request, stream) })
    } catch (err) {
      throw readError ?? err
    } finally {
      stream.destroy()
    }
  }
}

/** A copy of the request (same prototype, so still an HttpRequest) with another body. */
function withBody<R extends object>(request: R, body: unknown): R {
  return Object.assign(Object.create(Object.getPrototypeOf(request) as object) as R, request, {
    body
  })
}
