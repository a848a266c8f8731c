/**
 * Verification after a deploy: every published URL is requested as a client would (HEAD through
 * `url-base`, signed when signing is configured) and must serve what was uploaded: status 200,
 * its size and its SHA-256 (x-amz-meta-sha256). With signing, the unsigned URL must be refused.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { mapLimit } from '../common/concurrency.js'
import { integrityMetadata } from '../common/integrity.js'
import { DeployError } from '../common/errors.js'
import { redact } from '../common/secrets.js'
import type { Logger, PublishedFile, Sleep } from '../common/types.js'

/** What is checked for one file: where it is published and what was uploaded there. */
export type VerifyTarget = Pick<
  PublishedFile,
  'relativePath' | 'url' | 'size' | 'sha256' | 'checksum'
>

/** Why a file failed; selects the hints of verificationError. */
export type VerifyProblemKind =
  | 'refused'
  | 'missing'
  | 'content'
  | 'no-checksum'
  | 'unsigned-served'
  | 'redirect'
  | 'unreachable'
  | 'unexpected'

export interface FileVerification {
  relativePath: string
  /** The unsigned URL, even when the signed one was requested: a signed URL is a credential. */
  url: string
  ok: boolean
  /** Status of the request for the file (the signed URL when signing); undefined: no answer. */
  status?: number
  /** What differed, e.g. `x-amz-meta-sha256 ab…, expected cd…`; empty when ok. */
  problems: string[]
  kinds: VerifyProblemKind[]
}

export interface VerifyResult {
  verified: boolean
  results: FileVerification[]
}

export interface VerifyOptions {
  logger: Logger
  /** Relative path -> signed URL: those are requested, and the unsigned URL must get 403. */
  signedUrls?: Readonly<Record<string, string>>
  /** Requests at once; default 8. */
  concurrency?: number
  /** Node's global fetch by default. */
  fetch?: typeof fetch
  sleep?: Sleep
  signal?: AbortSignal
  /** Per request; default 30 s. */
  timeoutMs?: number
  /** The waits before each new attempt at a transient answer; default RETRY_DELAYS_MS. */
  retryDelaysMs?: readonly number[]
}

/**
 * 2 + 4 + 8 = 14 s of retries: longer than the 10 s CloudFront caches an error response by
 * default (ErrorCachingMinTTL), so a 404/403 cached by a request made just before the upload,
 * which invalidation does not clear for keys that are new, has expired by the last attempt.
 */
export const RETRY_DELAYS_MS: readonly number[] = [2000, 4000, 8000]
const DEFAULT_CONCURRENCY = 8
const DEFAULT_TIMEOUT_MS = 30_000

type Answer = { status: number; headers: Headers } | { error: string }

interface Context {
  logger: Logger
  fetch: typeof fetch
  sleep: Sleep
  signal?: AbortSignal
  timeoutMs: number
  delays: readonly number[]
  /**
   * Set once a file has used every retry on a 403/404: then it is the configuration, not a
   * cached error, and waiting 14 s for each of the other files would only delay the failure.
   */
  persistentClientError: boolean
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason
}

/** Why fetch failed, without the URL (undici puts the reason in `cause`). */
function describeFetchError(err: unknown, timeoutMs: number): string {
  // Duck-typed: fetch's errors (DOMException, undici's TypeError) may come from another realm.
  const e = err as {
    name?: unknown
    message?: unknown
    cause?: { code?: unknown; message?: unknown }
  }
  if (e?.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`
  const reason = [e?.cause?.code, e?.cause?.message, e?.message].find(
    (part): part is string => typeof part === 'string' && part !== ''
  )
  return redact(reason ?? String(err))
}

/** One HEAD request; redirects are answers, not followed. */
async function head(url: string, ctx: Context): Promise<Answer> {
  throwIfAborted(ctx.signal)
  const timeout = AbortSignal.timeout(ctx.timeoutMs)
  try {
    const response = await ctx.fetch(url, {
      method: 'HEAD',
      redirect: 'manual',
      // Content-Length must be the stored object's size, not that of a compressed variant.
      headers: { 'accept-encoding': 'identity' },
      signal: ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout
    })
    await response.body?.cancel()
    return { status: response.status, headers: response.headers }
  } catch (err) {
    throwIfAborted(ctx.signal)
    return { error: describeFetchError(err, ctx.timeoutMs) }
  }
}

function describeAnswer(answer: Answer): string {
  return 'error' in answer ? answer.error : `HTTP ${answer.status}`
}

/** Network failures, 5xx and 429: they pass on their own, so asking again is always worth it. */
function isTransient(answer: Answer): boolean {
  return 'error' in answer || answer.status >= 500 || answer.status === 429
}

/** Asks again with backoff while `retryable` says the answer may change. */
async function headWithRetries(
  url: string,
  retryable: (answer: Answer) => boolean,
  ctx: Context
): Promise<{ answer: Answer; attempts: number }> {
  for (let attempt = 0; ; attempt++) {
    const answer = await head(url, ctx)
    if (attempt >= ctx.delays.length || !retryable(answer)) {
      return { answer, attempts: attempt + 1 }
    }
    const wait = ctx.delays[attempt]
    ctx.logger.debug(
      `HEAD ${redact(url)}: ${describeAnswer(answer)}; asking again in ${wait / 1000} s.`
    )
    await ctx.sleep(wait)
  }
}

/** Records a problem of one file, and its kind. */
type AddProblem = (kind: VerifyProblemKind, text: string) => void

async function verifyOne(
  file: VerifyTarget,
  signedUrl: string | undefined,
  ctx: Context
): Promise<FileVerification> {
  const problems: string[] = []
  const kinds = new Set<VerifyProblemKind>()
  const add: AddProblem = (kind, text) => {
    kinds.add(kind)
    problems.push(text)
  }
  const { answer, attempts } = await headWithRetries(
    signedUrl ?? file.url,
    (a) =>
      isTransient(a) ||
      (!ctx.persistentClientError && 'status' in a && (a.status === 403 || a.status === 404)),
    ctx
  )
  checkServed(file, { answer, attempts, which: signedUrl ? 'the signed URL' : 'the URL' }, ctx, add)
  if (signedUrl) await checkUnsignedRefused(file, ctx, add)
  return {
    relativePath: file.relativePath,
    url: file.url,
    ok: problems.length === 0,
    status: 'status' in answer ? answer.status : undefined,
    problems,
    kinds: [...kinds]
  }
}

/** The file's URL (`which`) must answer 200 with the file's headers. */
function checkServed(
  file: VerifyTarget,
  { answer, attempts, which }: { answer: Answer; attempts: number; which: string },
  ctx: Context,
  add: AddProblem
): void {
  if ('error' in answer) {
    add('unreachable', `${which} got no answer after ${attempts} attempt(s): ${answer.error}`)
    return
  }
  if (answer.status === 200) {
    checkHeaders(file, answer.headers, add)
    return
  }
  const tried = attempts > 1 ? ` after ${attempts} attempts` : ''
  if (answer.status === 403 || answer.status === 404) {
    if (attempts > ctx.delays.length) ctx.persistentClientError = true
    add(
      answer.status === 403 ? 'refused' : 'missing',
      `${which} answered HTTP ${answer.status}${tried}, expected 200`
    )
  } else if (answer.status >= 300 && answer.status < 400) {
    const location = answer.headers.get('location')
    add(
      'redirect',
      `${which} answered HTTP ${answer.status}, a redirect${location ? ` to ${redact(location)}` : ''}; expected 200`
    )
  } else {
    add(
      isTransient(answer) ? 'unreachable' : 'unexpected',
      `${which} answered HTTP ${answer.status}${tried}, expected 200`
    )
  }
}

/** With signing, the file's unsigned URL must be refused (403). */
async function checkUnsignedRefused(
  file: VerifyTarget,
  ctx: Context,
  add: AddProblem
): Promise<void> {
  const bare = await headWithRetries(file.url, isTransient, ctx)
  if ('error' in bare.answer) {
    add(
      'unreachable',
      `the unsigned URL got no answer after ${bare.attempts} attempt(s): ${bare.answer.error}`
    )
  } else if (bare.answer.status >= 200 && bare.answer.status < 300) {
    add(
      'unsigned-served',
      `the unsigned URL answered HTTP ${bare.answer.status}, expected 403: anyone can download it without a signature`
    )
  } else if (bare.answer.status !== 403) {
    add('unexpected', `the unsigned URL answered HTTP ${bare.answer.status}, expected 403`)
  }
}

function checkHeaders(file: VerifyTarget, headers: Headers, add: AddProblem): void {
  const length = headers.get('content-length')
  const encoding = headers.get('content-encoding')
  if (length === null) {
    add('unexpected', `no Content-Length header, expected ${file.size} bytes`)
  } else if (Number(length) !== file.size) {
    add(
      'content',
      `Content-Length ${length}${encoding ? ` (Content-Encoding ${encoding})` : ''}, expected ${file.size}`
    )
  }
  // x-amz-meta-sha256, and for an `s3://` source's copy x-amz-meta-checksum (S3's checksum).
  for (const [key, expected] of Object.entries(integrityMetadata(file))) {
    const header = `x-amz-meta-${key}`
    const served = headers.get(header)
    if (served === null) {
      add('no-checksum', `no ${header} header, expected ${expected}`)
    } else if (served.trim() !== expected && served.trim().toLowerCase() !== expected) {
      add('content', `${header} ${served.trim()}, expected ${expected}`)
    }
  }
}

/**
 * Requests each published URL with HEAD (signed ones from `signedUrls`), at most `concurrency`
 * at once, and compares status, Content-Length and x-amz-meta-sha256 with what was uploaded.
 * Transient answers are retried (see RETRY_DELAYS_MS); a cancelled run rejects with the reason.
 */
export async function verifyPublished(
  files: readonly VerifyTarget[],
  options: VerifyOptions
): Promise<VerifyResult> {
  const signal = options.signal
  const ctx: Context = {
    logger: options.logger,
    fetch: options.fetch ?? fetch,
    sleep:
      options.sleep ??
      ((ms) =>
        delay(ms, undefined, { signal }).catch((err: unknown) => {
          throw signal?.aborted ? signal.reason : err
        })),
    signal,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    delays: options.retryDelaysMs ?? RETRY_DELAYS_MS,
    persistentClientError: false
  }
  const results = await mapLimit(files, options.concurrency ?? DEFAULT_CONCURRENCY, (file) =>
    verifyOne(file, options.signedUrls?.[file.relativePath], ctx)
  )
  return { verified: results.every((r) => r.ok), results }
}

/** What to check for each kind of failure, in the order they are shown. */
const HINTS: Record<VerifyProblemKind, string> = {
  content:
    'Other bytes than were uploaded were served: an edge still caches an older copy (let the invalidation finish with `wait-for-invalidation: true`, or use `invalidate: all`), or something else overwrote the object after this upload.',
  'no-checksum':
    'No x-amz-meta-sha256 header: the object was not uploaded by this action, or something between S3 and the client (a response headers policy, another origin) drops x-amz-meta-* headers.',
  refused:
    '403: CloudFront or S3 refused the request. Check that the bucket policy lets the distribution read (s3:GetObject with the distribution ARN as AWS:SourceArn, through OAC); with signing, that `signing-key-pair-id` is a public key in a key group the cache behaviour trusts, matching `signing-private-key`. Without s3:ListBucket S3 also answers 403 for a missing object, so check `url-base` too.',
  missing:
    "404: nothing at that URL. Check that `url-base` serves the bucket's root (keys are appended to it) and that the distribution's origin is this bucket.",
  'unsigned-served':
    'The files are served without a signature: restrict viewer access on the cache behaviour to the trusted key group of `signing-key-pair-id`, or stop signing if the files are meant to be public.',
  redirect:
    '`url-base` redirects (http to https, or to another host): set it to the URL that answers directly. Verification does not follow redirects, as clients of signed URLs may not.',
  unreachable:
    'The URL gave no answer, or a server error, after retries: check that the distribution is deployed and enabled and that `url-base` resolves from the runner, then run again (files already in place are skipped). Set `verify: false` if the URLs are not reachable from the runner.',
  unexpected:
    'An unexpected answer: check that `url-base` is the URL of the distribution or bucket.'
}

/** At most this many failing files are listed in the message; the summary has them all. */
const MAX_LISTED = 20

/** The error for a failed verification (verified: false): each failing URL and what differed. */
export function verificationError(result: VerifyResult): DeployError {
  const failed = result.results.filter((r) => !r.ok)
  const lines = failed.slice(0, MAX_LISTED).map((r) => `- ${r.url}: ${r.problems.join('; ')}`)
  if (failed.length > MAX_LISTED) {
    lines.push(`- and ${failed.length - MAX_LISTED} more (see the job summary)`)
  }
  const kinds = new Set(failed.flatMap((r) => r.kinds))
  const hints = (Object.keys(HINTS) as VerifyProblemKind[])
    .filter((kind) => kinds.has(kind))
    .map((kind) => HINTS[kind])
  return new DeployError(
    redact(
      `Verification failed for ${failed.length} of ${result.results.length} published file(s):\n${lines.join('\n')}`
    ),
    hints.join('\n') || undefined
  )
}
