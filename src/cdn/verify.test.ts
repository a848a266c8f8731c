import { createHash } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { DeployError } from '../common/errors.js'
import { signUrls } from './signing.js'
import { objectUrl } from './urls.js'
import {
  RETRY_DELAYS_MS,
  verificationError,
  verifyPublished,
  type VerifyOptions,
  type VerifyTarget
} from './verify.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import {
  cloudFrontRefusal,
  generateSigningKeys,
  parseCookieHeader,
  type TestKeyPair
} from '../../__fixtures__/signing.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const CONTENTS: Record<string, string> = {
  'v1/model.onnx': 'onnx bytes',
  'v1/my model é.safetensors': 'safetensors bytes!',
  'v1/tokenizer/日本語.json': '{"vocab":[]}'
}

interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
}
interface Reply {
  status: number
  headers?: Record<string, string>
  /** Milliseconds to wait before answering. */
  delayMs?: number
}
/** Decides the answer to one request; `served` is the default of the fake edge. */
type Handler = (req: Seen, served: () => Reply) => Reply

let keys: TestKeyPair
let server: Server
/** Where the fake edge serves the bucket: under a path, as a `url-base` may be. */
let base: string
let origin: string
let seen: Seen[]
let handler: Handler
/** Raw request path -> what the origin holds there. */
let stored: Map<string, { size: number; sha256?: string }>
/** When the edge requires a signature (a cache behaviour with trusted key groups). */
let restricted: boolean
let inFlight = 0
let maxInFlight = 0

beforeAll(async () => {
  keys = generateSigningKeys()
  server = createServer((req, res) => {
    const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers }
    seen.push(request)
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    const served = (): Reply => {
      if (restricted) {
        const refusal = cloudFrontRefusal(
          `${origin}${request.url}`,
          keys.publicKey,
          Math.floor(Date.now() / 1000),
          parseCookieHeader(req.headers.cookie)
        )
        if (refusal) return { status: 403, headers: { 'x-refusal': refusal } }
      }
      const object = stored.get(request.url.split('?')[0])
      if (!object) return { status: 404 }
      return {
        status: 200,
        headers: {
          'content-length': String(object.size),
          ...(object.sha256 ? { 'x-amz-meta-sha256': object.sha256 } : {})
        }
      }
    }
    const reply = handler(request, served)
    setTimeout(() => {
      inFlight--
      res.writeHead(reply.status, reply.headers)
      res.end()
    }, reply.delayMs ?? 0)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  base = `${origin}/cdn`
})
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

let targets: VerifyTarget[]
beforeEach(() => {
  seen = []
  handler = (_, served) => served()
  restricted = false
  inFlight = 0
  maxInFlight = 0
  stored = new Map()
  targets = Object.entries(CONTENTS).map(([key, content]) => {
    const url = objectUrl(base, key)
    stored.set(new URL(url).pathname, { size: Buffer.byteLength(content), sha256: sha(content) })
    return {
      relativePath: key.slice(3),
      url,
      size: Buffer.byteLength(content),
      sha256: sha(content)
    }
  })
})

function options(extra: Partial<VerifyOptions> = {}): VerifyOptions & { sleeps: number[] } {
  const sleeps: number[] = []
  return {
    logger: silentLogger(),
    sleep: async (ms) => void sleeps.push(ms),
    sleeps,
    ...extra
  }
}

function signAll(expiresAt = new Date(Date.now() + 3600_000)): Record<string, string> {
  return signUrls(targets, { keyPairId: 'K2JCJMDEHXQW5F', privateKey: keys.pkcs1 }, expiresAt)
}

describe('verifyPublished', () => {
  it('passes when every URL serves the uploaded size and SHA-256', async () => {
    const opts = options()
    const result = await verifyPublished(targets, opts)
    expect(result).toEqual({
      verified: true,
      results: targets.map((t) => ({
        relativePath: t.relativePath,
        url: t.url,
        ok: true,
        status: 200,
        problems: [],
        kinds: []
      }))
    })
    expect(seen.map((r) => r.url)).toEqual(targets.map((t) => new URL(t.url).pathname))
    expect(seen.every((r) => r.method === 'HEAD')).toBe(true)
    // The stored size, not that of a compressed variant.
    expect(seen.every((r) => r.headers['accept-encoding'] === 'identity')).toBe(true)
    expect(opts.sleeps).toEqual([])
  })

  it('with signing: requests the signed URL, and the unsigned one must be refused', async () => {
    restricted = true
    const signedUrls = signAll()
    const result = await verifyPublished(targets, options({ signedUrls }))
    expect(result.verified).toBe(true)
    expect(seen).toHaveLength(6)
    for (const t of targets) {
      const path = new URL(t.url).pathname
      // The request line is the signed URL as output: what CloudFront checks the signature of.
      expect(seen.map((r) => r.url)).toContain(signedUrls[t.relativePath].slice(origin.length))
      expect(seen.map((r) => r.url)).toContain(path)
    }
    // Results are printed: they name the unsigned URL and never carry a signature.
    expect(JSON.stringify(result)).not.toMatch(/Signature|Key-Pair-Id|Expires/)
    expect(result.results.map((r) => r.url)).toEqual(targets.map((t) => t.url))
  })

  it('fails a signed URL the edge refuses (expired), after retrying it', async () => {
    restricted = true
    const opts = options({ signedUrls: signAll(new Date(Date.now() - 1000)) })
    const result = await verifyPublished(targets.slice(0, 1), opts)
    expect(result.verified).toBe(false)
    expect(result.results[0]).toMatchObject({
      ok: false,
      status: 403,
      problems: ['the signed URL answered HTTP 403 after 4 attempts, expected 200'],
      kinds: ['refused']
    })
    expect(opts.sleeps).toEqual([...RETRY_DELAYS_MS])
  })

  it('fails when the unsigned URL is served too', async () => {
    const result = await verifyPublished(targets.slice(0, 1), options({ signedUrls: signAll() }))
    expect(result.results[0]).toMatchObject({
      ok: false,
      status: 200,
      problems: [
        'the unsigned URL answered HTTP 200, expected 403: anyone can download it without a signature'
      ],
      kinds: ['unsigned-served']
    })
  })

  it('reports other bytes than were uploaded, without retrying', async () => {
    const [a, b, c] = targets
    stored.set(new URL(a.url).pathname, { size: a.size, sha256: sha('older bytes') })
    stored.set(new URL(b.url).pathname, { size: b.size + 7, sha256: b.sha256 })
    stored.set(new URL(c.url).pathname, { size: c.size })
    const opts = options()
    const result = await verifyPublished(targets, opts)
    expect(result.verified).toBe(false)
    expect(result.results.map((r) => [r.ok, r.status, r.problems, r.kinds])).toEqual([
      [false, 200, [`x-amz-meta-sha256 ${sha('older bytes')}, expected ${a.sha256}`], ['content']],
      [false, 200, [`Content-Length ${b.size + 7}, expected ${b.size}`], ['content']],
      [false, 200, [`no x-amz-meta-sha256 header, expected ${c.sha256}`], ['no-checksum']]
    ])
    expect(seen).toHaveLength(3)
    expect(opts.sleeps).toEqual([])
  })

  it('names a compressed answer and a missing Content-Length', async () => {
    handler = (req, served) => {
      const reply = served()
      if (req.url.includes('model.onnx')) {
        return {
          ...reply,
          headers: { ...reply.headers, 'content-length': '3', 'content-encoding': 'gzip' }
        }
      }
      const headers: Record<string, string> = { ...reply.headers, 'transfer-encoding': 'chunked' }
      delete headers['content-length']
      return { ...reply, headers }
    }
    const result = await verifyPublished(targets.slice(0, 2), options())
    expect(result.results[0].problems).toEqual([
      `Content-Length 3 (Content-Encoding gzip), expected ${targets[0].size}`
    ])
    expect(result.results[1].problems).toEqual([
      `no Content-Length header, expected ${targets[1].size} bytes`
    ])
    expect(result.results[1].kinds).toEqual(['unexpected'])
  })

  it('retries a 404 that CloudFront cached just before the upload, and then passes', async () => {
    let misses = 2
    handler = (_, served) => (misses-- > 0 ? { status: 404 } : served())
    const opts = options()
    const result = await verifyPublished(targets.slice(0, 1), opts)
    expect(result.verified).toBe(true)
    expect(seen).toHaveLength(3)
    expect(opts.sleeps).toEqual([2000, 4000])
  })

  it('retries 5xx and 429, and reports a server that keeps failing', async () => {
    const statuses = [503, 429, 502]
    handler = (_, served) => (statuses.length ? { status: statuses.shift() as number } : served())
    const opts = options()
    expect((await verifyPublished(targets.slice(0, 1), opts)).verified).toBe(true)
    expect(opts.sleeps).toEqual([2000, 4000, 8000])

    handler = () => ({ status: 500 })
    const failing = options()
    const result = await verifyPublished(targets.slice(0, 1), failing)
    expect(result.results[0]).toMatchObject({
      ok: false,
      status: 500,
      problems: ['the URL answered HTTP 500 after 4 attempts, expected 200'],
      kinds: ['unreachable']
    })
    expect(failing.sleeps).toEqual([2000, 4000, 8000])
  })

  it('stops retrying 403/404 once one file has shown they persist', async () => {
    handler = () => ({ status: 403 })
    const opts = options({ concurrency: 1 })
    const result = await verifyPublished(targets, opts)
    expect(result.results.map((r) => r.problems[0])).toEqual([
      'the URL answered HTTP 403 after 4 attempts, expected 200',
      'the URL answered HTTP 403, expected 200',
      'the URL answered HTTP 403, expected 200'
    ])
    expect(opts.sleeps).toEqual([2000, 4000, 8000])
    expect(seen).toHaveLength(6)
  })

  it('does not follow redirects', async () => {
    handler = (req) =>
      req.url.startsWith('/moved')
        ? { status: 200 }
        : { status: 301, headers: { location: `${base}/moved?Signature=abc&Key-Pair-Id=K1` } }
    const result = await verifyPublished(targets.slice(0, 1), options())
    expect(result.results[0]).toMatchObject({ ok: false, status: 301, kinds: ['redirect'] })
    expect(result.results[0].problems[0]).toBe(
      `the URL answered HTTP 301, a redirect to ${base}/moved?Signature=[REDACTED]&Key-Pair-Id=[REDACTED]; expected 200`
    )
    expect(seen).toHaveLength(1)
  })

  it('retries network failures and reports them without the URL', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const target = { ...targets[0], url: `http://127.0.0.1:${port}/v1/model.onnx` }
    const opts = options()
    const result = await verifyPublished([target], opts)
    expect(result.results[0]).toMatchObject({
      ok: false,
      status: undefined,
      problems: ['the URL got no answer after 4 attempt(s): ECONNREFUSED'],
      kinds: ['unreachable']
    })
    expect(opts.sleeps).toEqual([2000, 4000, 8000])
  })

  it('times out a request that hangs', async () => {
    handler = (_, served) => ({ ...served(), delayMs: 500 })
    const result = await verifyPublished(
      targets.slice(0, 1),
      options({ timeoutMs: 50, retryDelaysMs: [] })
    )
    expect(result.results[0].problems).toEqual([
      'the URL got no answer after 1 attempt(s): no answer within 0.05 s'
    ])
  })

  it('keeps at most `concurrency` requests in flight', async () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ ...targets[0], relativePath: `f${i}` }))
    handler = (_, served) => ({ ...served(), delayMs: 20 })
    const result = await verifyPublished(many, options({ concurrency: 3 }))
    expect(result.verified).toBe(true)
    expect(seen).toHaveLength(12)
    expect(maxInFlight).toBe(3)
  })

  it('stops when the run is cancelled, with the reason', async () => {
    const controller = new AbortController()
    const reason = new DeployError('The workflow run was cancelled (SIGINT).')
    handler = (_, served) => {
      controller.abort(reason)
      return { ...served(), delayMs: 200 }
    }
    const many = Array.from({ length: 10 }, (_, i) => ({ ...targets[0], relativePath: `f${i}` }))
    await expect(
      verifyPublished(many, options({ concurrency: 2, signal: controller.signal }))
    ).rejects.toBe(reason)
    expect(seen.length).toBeLessThanOrEqual(2)
  })

  it('stops waiting between attempts when cancelled (default sleep)', async () => {
    const controller = new AbortController()
    const reason = new DeployError('cancelled')
    handler = () => {
      setTimeout(() => controller.abort(reason), 20)
      return { status: 503 }
    }
    const started = Date.now()
    await expect(
      verifyPublished(targets.slice(0, 1), { logger: silentLogger(), signal: controller.signal })
    ).rejects.toBe(reason)
    expect(Date.now() - started).toBeLessThan(1500)
  })
})

describe('verificationError', () => {
  it('names each failing URL and what differed, with what to check', async () => {
    const [a, b] = targets
    stored.set(new URL(a.url).pathname, { size: a.size, sha256: sha('older bytes') })
    stored.delete(new URL(b.url).pathname)
    const result = await verifyPublished(targets, options())
    const err = verificationError(result)
    expect(err).toBeInstanceOf(DeployError)
    expect(err.message).toBe(
      [
        'Verification failed for 2 of 3 published file(s):',
        `- ${a.url}: x-amz-meta-sha256 ${sha('older bytes')}, expected ${a.sha256}`,
        `- ${b.url}: the URL answered HTTP 404 after 4 attempts, expected 200`
      ].join('\n')
    )
    expect(err.hint).toMatch(/^Other bytes than were uploaded were served: an edge still caches/)
    expect(err.hint).toMatch(/\n404: nothing at that URL/)
    expect(err.hint).not.toMatch(/403/)
  })

  it('hints at the key group and bucket policy for 403, and never shows a signature', async () => {
    restricted = true
    handler = (req, served) => (req.url.includes('Signature=') ? { status: 403 } : served())
    const result = await verifyPublished(
      targets.slice(0, 1),
      options({ signedUrls: signAll(), retryDelaysMs: [] })
    )
    const err = verificationError(result)
    expect(err.message).toContain(
      `- ${targets[0].url}: the signed URL answered HTTP 403, expected 200`
    )
    expect(err.message).not.toMatch(/Signature|Key-Pair-Id/)
    expect(err.hint).toMatch(/trusts, matching `signing-private-key`/)
    expect(err.hint).toMatch(/bucket policy/)
  })

  it('lists at most 20 files', () => {
    const results = Array.from({ length: 25 }, (_, i) => ({
      relativePath: `f${i}`,
      url: `https://d/v1/f${i}`,
      ok: false,
      status: 404,
      problems: ['the URL answered HTTP 404, expected 200'],
      kinds: ['missing' as const]
    }))
    const err = verificationError({ verified: false, results })
    const lines = err.message.split('\n')
    expect(lines[0]).toBe('Verification failed for 25 of 25 published file(s):')
    expect(lines).toHaveLength(22)
    expect(lines[21]).toBe('- and 5 more (see the job summary)')
  })
})
