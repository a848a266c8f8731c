/**
 * A fault-injecting reverse proxy between the action and moto_server, for the reliability tests:
 * the action's `endpoint-url` and AWS_ENDPOINT_URL_CLOUDFRONT point at it. Each request is
 * classified as an S3 or CloudFront operation; the rules a test sets choose which ones get a
 * 503, a reset connection, a stall, a CloudFront quota error, or an `InProgress` status instead
 * of moto's answer. Everything else is streamed through unchanged (bodies are never buffered,
 * except GetInvalidation's small XML when its status is rewritten). What was injected is
 * recorded, so a test can check that the faults it is about really happened.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse
} from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { LOCK_FILE_NAME } from '../../src/aws/publish-lock.js'

export type Operation =
  | 'PutObject'
  | 'CopyObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'HeadObject'
  | 'GetObject'
  | 'ListObjectsV2'
  | 'ListMultipartUploads'
  | 'HeadBucket'
  | 'PutBucketPolicy'
  | 'CreateInvalidation'
  | 'GetInvalidation'
  | 'ListInvalidations'
  | 'GetDistribution'
  | 'Other'

/** A FaultRule target for every key but a version's or alias's lock (publish-lock.ts). */
export const NOT_A_LOCK = new RegExp(`^(?!.*/${LOCK_FILE_NAME.replace(/\./g, '\\.')}$)`)

/** The requests that write to S3. */
export const S3_WRITES: readonly Operation[] = [
  'PutObject',
  'CopyObject',
  'CreateMultipartUpload',
  'UploadPart',
  'UploadPartCopy',
  'CompleteMultipartUpload'
]

export type Fault =
  /** An S3 XML error once the body is read; by default 503 SlowDown, as S3 throttles. */
  | { kind: 's3Error'; status?: number; code?: string }
  /** Reads `afterBytes` of the body (default 64 KiB, or all of a smaller one), then resets. */
  | { kind: 'reset'; afterBytes?: number }
  /**
   * Sends nothing for `ms`. `request`: reads none of the body, so the upload stalls; `response`:
   * moto gets the request at once and its answer is held back. After `ms` the exchange goes on,
   * unless the client has given up and closed the connection by then.
   */
  | { kind: 'stall'; ms: number; phase?: 'request' | 'response' }
  /** CloudFront's 400 TooManyInvalidationsInProgress. */
  | { kind: 'tooManyInvalidations' }
  /** moto's GetInvalidation answer with the status rewritten to `InProgress`. */
  | { kind: 'invalidationInProgress' }

export interface FaultRule {
  operations: readonly Operation[]
  /** Only the Nth, 2Nth, 3Nth... matching request. */
  every?: number
  /** Only the first N matching requests. */
  first?: number
  /** Only after the first N matching requests (which go through). */
  after?: number
  /** Only requests whose target (`bucket/key`, …) matches, e.g. a version's files but not its lock. */
  target?: RegExp
  fault: Fault
}

export interface SeenRequest {
  operation: Operation
  method: string
  /** `bucket/key`, `bucket/key#part`, the distribution id, or the path for others. */
  target: string
  /** The region the request is signed for (its credential scope), when signed. */
  region?: string
  /** Body bytes the client sent through the proxy (counted as forwarded). */
  requestBytes: number
  /** Body bytes the proxy passed back (counted when the answer is forwarded unchanged). */
  responseBytes: number
}

export interface Injection extends SeenRequest {
  fault: Fault['kind']
  /**
   * For stalls: `client-gave-up` when the client closed the connection first (its timeout),
   * `resumed` when the exchange went on and completed after the stall.
   */
  outcome?: 'pending' | 'client-gave-up' | 'resumed'
}

export interface FaultProxy {
  /** e.g. `http://127.0.0.1:41234` */
  endpoint: string
  /** Replaces the rules; clears their counters and the records. */
  setRules(rules: FaultRule[]): void
  /** Every request, in arrival order. */
  readonly requests: readonly SeenRequest[]
  readonly injected: readonly Injection[]
  /** Closes the listener and every open connection, stalled ones included. */
  stop(): Promise<void>
}

/** The operation a request is, from its method, path and query (path-style S3, CloudFront API). */
function classify(
  method: string,
  url: string,
  headers: IncomingHttpHeaders
): { operation: Operation; target: string } {
  const { pathname, searchParams: query } = new URL(url, 'http://proxy')
  const scope = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\//.exec(headers.authorization ?? '')?.[1]
  const cloudfront = /^\/\d{4}-\d{2}-\d{2}\/distribution(\/|$)/.exec(pathname)
  if (scope === 'cloudfront' || (scope === undefined && cloudfront)) {
    const [, , , distribution, sub, id] = pathname.split('/')
    const target = decodeURIComponent(distribution ?? '')
    if (sub === 'invalidation' && id) {
      return { operation: method === 'GET' ? 'GetInvalidation' : 'Other', target }
    }
    if (sub === 'invalidation') {
      const operation = method === 'POST' ? 'CreateInvalidation' : 'ListInvalidations'
      return { operation: method === 'POST' || method === 'GET' ? operation : 'Other', target }
    }
    return { operation: method === 'GET' && !sub ? 'GetDistribution' : 'Other', target }
  }

  const [, bucket = '', ...rest] = pathname.split('/')
  const key = decodeURIComponent(rest.join('/'))
  const has = (name: string): boolean => query.has(name)
  const copy = headers['x-amz-copy-source'] !== undefined
  const objectOperation = (): Operation => {
    switch (method) {
      case 'PUT':
        if (has('uploadId') && has('partNumber')) return copy ? 'UploadPartCopy' : 'UploadPart'
        return copy ? 'CopyObject' : 'PutObject'
      case 'POST':
        return has('uploads')
          ? 'CreateMultipartUpload'
          : has('uploadId')
            ? 'CompleteMultipartUpload'
            : 'Other'
      case 'DELETE':
        return has('uploadId') ? 'AbortMultipartUpload' : 'Other'
      case 'HEAD':
        return 'HeadObject'
      case 'GET':
        return has('uploadId') ? 'Other' : 'GetObject'
      default:
        return 'Other'
    }
  }
  if (key) {
    const operation = objectOperation()
    const part =
      operation === 'UploadPart' || operation === 'UploadPartCopy'
        ? `#${query.get('partNumber')}`
        : ''
    return { operation, target: `${bucket}/${key}${part}` }
  }
  if (method === 'GET' && query.get('list-type') === '2') {
    return { operation: 'ListObjectsV2', target: bucket }
  }
  if (method === 'GET' && has('uploads'))
    return { operation: 'ListMultipartUploads', target: bucket }
  if (method === 'HEAD') return { operation: 'HeadBucket', target: bucket }
  if (method === 'PUT' && has('policy')) return { operation: 'PutBucketPolicy', target: bucket }
  return { operation: 'Other', target: pathname }
}

/** Hop-by-hop headers, which belong to one connection and are not forwarded; and Expect. */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  // Node's server has already answered `100 Continue`; moto must not be asked again.
  'expect'
])

function forwardable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !NOT_FORWARDED.has(k)))
}

const S3_MESSAGES: Record<string, string> = {
  SlowDown: 'Please reduce your request rate.',
  ServiceUnavailable: 'Service is unable to handle request.',
  InternalError: 'We encountered an internal error. Please try again.'
}

function s3ErrorBody(code: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${S3_MESSAGES[code] ?? code}</Message>` +
    '<RequestId>FAULTPROXY</RequestId><HostId>fault-proxy</HostId></Error>'
  )
}

const TOO_MANY_INVALIDATIONS =
  '<?xml version="1.0"?>\n' +
  '<ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Error>' +
  '<Type>Sender</Type><Code>TooManyInvalidationsInProgress</Code>' +
  '<Message>Your request contains too many invalidations in progress.</Message>' +
  '</Error><RequestId>fault-proxy</RequestId></ErrorResponse>'

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': 'fault-proxy'
  })
  res.end(body)
}

/** Calls `then` once the whole request body has been read (and discarded). */
function drain(req: IncomingMessage, then: () => void): void {
  req.on('end', then)
  req.resume()
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream)
  const agent = new Agent({ keepAlive: true })
  let rules: { rule: FaultRule; seen: number }[] = []
  const requests: SeenRequest[] = []
  const injected: Injection[] = []
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()

  /** Each rule counts the requests it matches; the first one whose count is due injects. */
  const faultFor = (operation: Operation, target: string): Fault | undefined => {
    let chosen: Fault | undefined
    for (const entry of rules) {
      if (!entry.rule.operations.includes(operation)) continue
      if (entry.rule.target && !entry.rule.target.test(target)) continue
      entry.seen++
      const { every, first, after } = entry.rule
      const due =
        (every === undefined || entry.seen % every === 0) &&
        (first === undefined || entry.seen <= first) &&
        (after === undefined || entry.seen > after)
      if (due) chosen ??= entry.rule.fault
    }
    return chosen
  }

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer)
      fn()
    }, ms)
    timers.add(timer)
  }

  /** Sends the request to moto; `onResponse` may hold or rewrite the answer. */
  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    seen: SeenRequest,
    onResponse: (upstreamRes: IncomingMessage) => void = (up) => {
      res.writeHead(up.statusCode ?? 502, forwardable(up.headers))
      up.on('data', (chunk: Buffer) => (seen.responseBytes += chunk.length))
      up.pipe(res)
    }
  ): void => {
    const out = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: forwardable(req.headers),
        agent
      },
      onResponse
    )
    out.on('error', () => {
      if (!res.headersSent) reply(res, 502, 'fault-proxy: upstream failed')
      else res.destroy()
    })
    // The client gave up (or was reset): moto need not finish the exchange.
    res.on('close', () => {
      if (!res.writableFinished) out.destroy()
    })
    req.on('data', (chunk: Buffer) => (seen.requestBytes += chunk.length))
    req.pipe(out)
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? 'GET'
    const { operation, target: what } = classify(method, req.url ?? '/', req.headers)
    const region = /Credential=[^/]+\/[^/]+\/([^/]+)\//.exec(req.headers.authorization ?? '')?.[1]
    const seen: SeenRequest = {
      operation,
      method,
      target: what,
      ...(region ? { region } : {}),
      requestBytes: 0,
      responseBytes: 0
    }
    requests.push(seen)
    const fault = faultFor(operation, what)
    if (!fault) return forward(req, res, seen)
    const record: Injection = { ...seen, fault: fault.kind }
    injected.push(record)

    switch (fault.kind) {
      case 's3Error':
        return drain(req, () =>
          reply(res, fault.status ?? 503, s3ErrorBody(fault.code ?? 'SlowDown'))
        )
      case 'tooManyInvalidations':
        return drain(req, () => reply(res, 400, TOO_MANY_INVALIDATIONS))
      case 'reset': {
        const limit = fault.afterBytes ?? 64 * 1024
        let read = 0
        const reset = (): void => {
          if (!req.socket.destroyed) req.socket.resetAndDestroy()
        }
        req.on('data', (chunk: Buffer) => {
          read += chunk.length
          if (read >= limit) reset()
        })
        req.on('end', reset)
        return
      }
      case 'stall': {
        record.outcome = 'pending'
        let gaveUp = false
        res.on('close', () => {
          gaveUp = !res.writableFinished
          record.outcome = gaveUp ? 'client-gave-up' : 'resumed'
        })
        const resume = (go: () => void): void => later(fault.ms, () => gaveUp || go())
        if (fault.phase === 'response') {
          return forward(req, res, seen, (up) =>
            resume(() => {
              res.writeHead(up.statusCode ?? 502, forwardable(up.headers))
              up.pipe(res)
            })
          )
        }
        // The body stays unread (the request stream is paused until piped). While nothing is read
        // the client's close goes unseen, so such a stall stays `pending` until it ends.
        return resume(() => forward(req, res, seen))
      }
      case 'invalidationInProgress':
        return forward(req, res, seen, (up) => {
          const chunks: Buffer[] = []
          up.on('data', (chunk: Buffer) => chunks.push(chunk))
          up.on('end', () => {
            const body = Buffer.concat(chunks)
              .toString('utf8')
              .replace(/<Status>[^<]*<\/Status>/, '<Status>InProgress</Status>')
            const headers = forwardable(up.headers)
            headers['content-length'] = String(Buffer.byteLength(body))
            res.writeHead(up.statusCode ?? 502, headers)
            res.end(body)
          })
        })
    }
  }

  const server = createServer(handle)
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  // A reset or given-up client is expected here, not a failure of the proxy.
  server.on('clientError', (_err, socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo

  return {
    endpoint: `http://127.0.0.1:${port}`,
    setRules(next) {
      rules = next.map((rule) => ({ rule, seen: 0 }))
      requests.length = 0
      injected.length = 0
    },
    requests,
    injected,
    async stop() {
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      agent.destroy()
      await closed
    }
  }
}
