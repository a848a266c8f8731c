import { Readable, Writable } from 'node:stream'
import type { HttpHandlerOptions, HttpRequest, HttpResponse, RequestHandler } from '@smithy/types'

/** One request as the wire would have carried it. */
export interface SentRequest {
  method: string
  path: string
  query: Record<string, string | string[] | null>
  headers: Record<string, string>
  body: Buffer
}

export type Reply = { status: number; headers?: Record<string, string>; body?: string }

/**
 * An SDK request handler that answers without a network, after consuming the body the way
 * @smithy/node-http-handler does (a stream is piped into the request), so that the middleware
 * below the retry step and the signer run for real. A destroyed body fails the request.
 */
export function recordingHandler(
  reply: (request: SentRequest, attempt: number) => Reply | Promise<Reply>
): RequestHandler<HttpRequest, HttpResponse, HttpHandlerOptions> & { sent: SentRequest[] } {
  const sent: SentRequest[] = []
  return {
    sent,
    async handle(request: HttpRequest) {
      const body = await bodyOf(request.body)
      const recorded: SentRequest = {
        method: request.method,
        path: request.path,
        query: { ...request.query },
        headers: { ...request.headers },
        body
      }
      sent.push(recorded)
      const { status, headers = {}, body: text = '' } = await reply(recorded, sent.length)
      // A plain object passes the SDK's HttpResponse.isInstance duck-typing.
      const response: HttpResponse = {
        statusCode: status,
        headers,
        body: Readable.from([Buffer.from(text)])
      }
      return { response }
    }
  }
}

async function bodyOf(body: unknown): Promise<Buffer> {
  if (body === undefined || body === null) return Buffer.alloc(0)
  if (typeof body === 'string') return Buffer.from(body)
  if (body instanceof Uint8Array) return Buffer.from(body)
  if (body instanceof Readable) {
    const chunks: Buffer[] = []
    await new Promise<void>((resolve, reject) => {
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          // Copied, as a socket does: a body may read into a chunk again once it is written.
          chunks.push(Buffer.from(chunk))
          done()
        }
      })
      sink.on('finish', resolve)
      sink.on('error', reject)
      sink.on('close', () => (sink.writableFinished ? resolve() : reject(new Error('aborted'))))
      body.pipe(sink)
    })
    return Buffer.concat(chunks)
  }
  throw new Error(`unexpected body type ${Object.prototype.toString.call(body)}`)
}
