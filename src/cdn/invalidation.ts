import { createHash } from 'node:crypto'
import {
  CreateInvalidationCommand,
  GetInvalidationCommand,
  type CloudFrontClient
} from '@aws-sdk/client-cloudfront'
import {
  DeployError,
  InputError,
  awsErrorCode,
  explainAwsError,
  httpStatusOf
} from '../common/errors.js'
import { retryWithBackoff } from '../aws/retry.js'
import { redact } from '../common/secrets.js'
import type { InvalidationOutcome, Logger, Sleep } from '../common/types.js'

/** CloudFront quotas (see the Developer Guide, "Invalidation quotas"). */
export const MAX_PATHS_PER_BATCH = 3000
export const MAX_WILDCARDS_IN_PROGRESS = 15
export const MAX_PATH_LENGTH = 4000

/*
 * CloudFront compares invalidation paths with the encoded request path, so the encoding must be
 * exactly what AWS documents: "If the path includes non-ASCII characters or unsafe characters as
 * defined in RFC 1738, URL-encode those characters. Do not URL-encode any other characters in the
 * path, or CloudFront will not invalidate the old version of the updated file."
 * (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/invalidation-specifying-objects.html#invalidation-specifying-objects-paths)
 * RFC 1738 section 2.2 lists the unsafe characters and requires control characters to be encoded;
 * `?` would start a query string and `*` would become a wildcard, so a key's own are encoded too.
 */
const ENCODED_ASCII = new Set([...' "#%<>{}|\\^~[]`?*'])

function percentEncode(char: string): string {
  return [...Buffer.from(char, 'utf8')]
    .map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)
    .join('')
}

function encodePathPart(text: string): string {
  let out = ''
  for (const char of text) {
    const code = char.codePointAt(0) as number
    out += code < 0x20 || code >= 0x7f || ENCODED_ASCII.has(char) ? percentEncode(char) : char
  }
  return out
}

/** The CloudFront path of an S3 key, e.g. `v1/my model.onnx` -> `/v1/my%20model.onnx`. */
export function toInvalidationPath(key: string): string {
  return '/' + key.split('/').map(encodePathPart).join('/')
}

/** Checks a user-supplied `invalidation-paths` entry; returns it unchanged. */
export function validateExtraPath(path: string): string {
  const problem = (what: string, fix: string): InputError =>
    new InputError(`Invalidation path "${path}" ${what}.`, fix)
  if (!path.startsWith('/')) {
    throw problem(
      'does not start with "/"',
      `Write it relative to the distribution root: "/${path}".`
    )
  }
  const star = path.indexOf('*')
  if (star !== -1 && star !== path.length - 1) {
    throw problem(
      'has "*" before its end',
      'CloudFront accepts "*" only as the last character (e.g. "/models/v1/*"); encode a literal "*" as %2A.'
    )
  }
  if (path.length > MAX_PATH_LENGTH) {
    throw problem(
      `is ${path.length} characters long`,
      `CloudFront accepts at most ${MAX_PATH_LENGTH} characters; use a shorter path or a wildcard.`
    )
  }
  // Whitespace, control and non-ASCII characters: CloudFront needs them percent-encoded.
  const raw = [...path].find((char) => /[^\x21-\x7e]/u.test(char))
  if (raw !== undefined) {
    throw problem(
      `contains the unencoded character ${JSON.stringify(raw)}`,
      `URL-encode it as ${percentEncode(raw)} (CloudFront matches the encoded request path).`
    )
  }
  return path
}

export interface InvalidationPlanInput {
  /** S3 keys whose cached copies must go. */
  keys: string[]
  /** Every key under the version prefix after the deploy: what a wildcard would also hit. */
  keysUnderPrefix: string[]
  /** Validated user paths (validateExtraPath), added as given. */
  extraPaths: string[]
  /** Wildcards allowed in progress at once; those in extraPaths count against it. */
  maxWildcards?: number
}

function parentDir(key: string): string {
  const slash = key.lastIndexOf('/')
  return slash === -1 ? '' : key.slice(0, slash)
}

/** The deepest directory holding all the keys (`''` for the bucket root). */
function commonDir(keys: string[]): string {
  let common = parentDir(keys[0])
  for (const key of keys) {
    while (common !== '' && !key.startsWith(common + '/')) common = parentDir(common)
  }
  return common
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/**
 * The paths to invalidate: one per key, except that a directory whose keys all changed becomes
 * `/<dir>/*` (a wildcard costs one path). Directories above the common directory of
 * keysUnderPrefix are never collapsed: they may hold objects outside the version prefix, which
 * that list does not show, and the bucket root may be shared with other origins.
 */
export function planInvalidation(input: InvalidationPlanInput): string[] {
  const changed = new Set(input.keys)
  const extras = [...new Set(input.extraPaths)]
  const budget =
    (input.maxWildcards ?? MAX_WILDCARDS_IN_PROGRESS) - extras.filter((p) => p.endsWith('*')).length

  const wildcardDirs: string[] = []
  if (budget > 0 && input.keysUnderPrefix.length > 0) {
    const top = commonDir(input.keysUnderPrefix)
    // Per directory at or below `top`: keys under it in all, and how many of them changed.
    const total = new Map<string, number>()
    const hit = new Map<string, number>()
    for (const key of new Set([...input.keysUnderPrefix, ...changed])) {
      if (top !== '' && !key.startsWith(top + '/')) continue
      for (let dir = parentDir(key); ; dir = parentDir(dir)) {
        total.set(dir, (total.get(dir) ?? 0) + 1)
        if (changed.has(key)) hit.set(dir, (hit.get(dir) ?? 0) + 1)
        if (dir === top) break
      }
    }
    const full = (dir: string): boolean =>
      dir !== '' && (hit.get(dir) ?? 0) >= 2 && hit.get(dir) === total.get(dir)
    // A full directory's parent, if full too, covers it with the same single path.
    const highest = [...total.keys()].filter(
      (dir) => full(dir) && (dir === top || !full(parentDir(dir)))
    )
    highest.sort((a, b) => (hit.get(b) as number) - (hit.get(a) as number) || byString(a, b))
    wildcardDirs.push(...highest.slice(0, budget))
  }

  const covered = (key: string): boolean => wildcardDirs.some((dir) => key.startsWith(dir + '/'))
  const planned = [
    ...wildcardDirs.map((dir) => `${toInvalidationPath(dir)}/*`),
    ...[...changed].filter((key) => !covered(key)).map(toInvalidationPath)
  ]
  // A user wildcard already clears what it matches; listing those paths again would be billed.
  const userPrefixes = extras.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1))
  const kept = planned.filter((path) => !userPrefixes.some((prefix) => path.startsWith(prefix)))
  return [...new Set([...kept, ...extras])].sort(byString)
}

export function toBatches(paths: string[], maxPerBatch = MAX_PATHS_PER_BATCH): string[][] {
  if (!Number.isInteger(maxPerBatch) || maxPerBatch < 1) {
    throw new RangeError(`maxPerBatch must be a positive integer, got ${maxPerBatch}`)
  }
  const batches: string[][] = []
  for (let i = 0; i < paths.length; i += maxPerBatch) batches.push(paths.slice(i, i + maxPerBatch))
  return batches
}

/**
 * Same run, attempt and paths -> same reference, so CloudFront answers a repeated request with the
 * invalidation it already created instead of starting (and billing) a second one.
 */
export function callerReference(runId: string, runAttempt: string, batch: string[]): string {
  const digest = createHash('sha256')
    .update([...batch].sort(byString).join('\n'))
    .digest('hex')
  return `${runId}-${runAttempt}-${digest.slice(0, 16)}`
}

const THROTTLING_CODES = new Set([
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded'
])
const NETWORK_ERRORS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH'
])

/** Node's errno (`ECONNRESET`...) for network failures, else the AWS error code. */
function errorCode(err: unknown): string | undefined {
  const errno = (err as { code?: unknown } | null)?.code
  return typeof errno === 'string' ? errno : awsErrorCode(err)
}

/** Throttling, 5xx and network failures: worth asking again. */
function isTransient(err: unknown): boolean {
  const code = errorCode(err) ?? ''
  const status = httpStatusOf(err)
  if (THROTTLING_CODES.has(code)) return true
  if (status !== undefined) return status === 429 || status >= 500
  return NETWORK_ERRORS.has(code) || awsErrorCode(err) === 'TimeoutError'
}

function describeError(err: unknown): string {
  const status = httpStatusOf(err)
  const reason = redact(err instanceof Error ? err.message : String(err))
  return `${errorCode(err) ?? 'error'}${status ? `, HTTP ${status}` : ''}: ${reason}`
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

export interface CreateInvalidationsOptions {
  runId: string
  runAttempt: string
  logger: Logger
  sleep: Sleep
  random?: () => number
  /** Attempts per batch, including the first. */
  maxAttempts?: number
  baseDelayMs?: number
  maxDelayMs?: number
}

/** Sends one CreateInvalidation per batch, in order; returns the invalidation ids. */
export async function createInvalidations(
  cf: CloudFrontClient,
  distributionId: string,
  batches: string[][],
  opts: CreateInvalidationsOptions
): Promise<string[]> {
  const attempts = opts.maxAttempts ?? 8
  const ids: string[] = []
  for (const [index, batch] of batches.entries()) {
    const reference = callerReference(opts.runId, opts.runAttempt, batch)
    const action = `creating a CloudFront invalidation for ${batch.length} paths on distribution ${distributionId}`
    let id: string | undefined
    try {
      const result = await retryWithBackoff(
        () =>
          cf.send(
            new CreateInvalidationCommand({
              DistributionId: distributionId,
              InvalidationBatch: {
                CallerReference: reference,
                Paths: { Quantity: batch.length, Items: batch }
              }
            })
          ),
        // TooManyInvalidationsInProgress is a client fault the SDK never retries, yet it clears as
        // running invalidations finish; the CallerReference makes every retry idempotent.
        (err) => awsErrorCode(err) === 'TooManyInvalidationsInProgress' || isTransient(err),
        {
          attempts,
          baseMs: opts.baseDelayMs ?? 5000,
          capMs: opts.maxDelayMs ?? 60_000,
          sleep: opts.sleep,
          random: opts.random,
          onRetry: (err, attempt, delayMs) =>
            opts.logger.info(
              `CloudFront answered ${describeError(err)} for invalidation batch ` +
                `${index + 1}/${batches.length} (${batch.length} paths); retry ${attempt} of ` +
                `${attempts - 1} in ${seconds(delayMs)}`
            )
        }
      )
      id = result.Invalidation?.Id
    } catch (err) {
      throw explainAwsError(err, { action, distributionId })
    }
    if (!id) throw new DeployError(`Failed ${action}: CloudFront returned no invalidation id.`)
    opts.logger.info(
      `Created invalidation ${id} for ${batch.length} paths (batch ${index + 1}/${batches.length}, ` +
        `caller reference ${reference})`
    )
    ids.push(id)
  }
  return ids
}

export interface WaitOptions {
  timeoutMs: number
  logger: Logger
  sleep: Sleep
  now?: () => number
  initialPollMs?: number
  maxPollMs?: number
}

export interface WaitResult {
  status: 'Completed' | 'InProgress'
  waitedMs: number
  /** Ids not seen completed when the wait ended. */
  pending: string[]
}

/**
 * Polls GetInvalidation until every id is completed or the timeout passes. Not the SDK waiter: it
 * accepts only the exact status `Completed` (moto says `COMPLETED`) and retries every error, so
 * AccessDenied would spin until the timeout.
 */
export async function waitForInvalidations(
  cf: CloudFrontClient,
  distributionId: string,
  ids: string[],
  opts: WaitOptions
): Promise<WaitResult> {
  if (ids.length === 0) return { status: 'Completed', waitedMs: 0, pending: [] }
  const now = opts.now ?? Date.now
  const maxPollMs = opts.maxPollMs ?? 20_000
  const start = now()
  const deadline = start + opts.timeoutMs
  let pending = [...ids]
  let pollMs = opts.initialPollMs ?? 5000
  while (pending.length > 0) {
    const stillPending: string[] = []
    for (const id of pending) {
      try {
        const result = await cf.send(
          new GetInvalidationCommand({ DistributionId: distributionId, Id: id })
        )
        const status = result.Invalidation?.Status ?? 'unknown'
        opts.logger.info(`Invalidation ${id}: ${status} after ${seconds(now() - start)}`)
        if (status.toLowerCase() !== 'completed') stillPending.push(id)
      } catch (err) {
        if (!isTransient(err)) {
          throw explainAwsError(err, {
            action: `checking invalidation ${id} on distribution ${distributionId}`,
            distributionId
          })
        }
        opts.logger.warning(
          `Could not check invalidation ${id} (${describeError(err)}); polling again`
        )
        stillPending.push(id)
      }
    }
    pending = stillPending
    const remaining = deadline - now()
    if (pending.length === 0 || remaining <= 0) break
    await opts.sleep(Math.min(pollMs, remaining))
    pollMs = Math.min(maxPollMs, pollMs * 2)
  }
  return {
    status: pending.length === 0 ? 'Completed' : 'InProgress',
    waitedMs: now() - start,
    pending
  }
}

export interface InvalidateOptions {
  env: NodeJS.ProcessEnv
  logger: Logger
  sleep: Sleep
  now: () => number
  /** Wait for completion, at most this long. */
  wait: boolean
  waitTimeoutMinutes: number
  /** Said in the log: what the paths are, e.g. `alias latest`. */
  label?: string
  /** Receives the warning of a wait that timed out (and keeps it for the summary). */
  warn: (message: string) => void
}

/**
 * Invalidates `outcome.paths` in batches, waits for them when asked, and records the ids, status
 * and wait in `outcome`; what the deploy, an alias move and a clean-up do alike. The status is
 * InProgress when not waited for or timed out (a warning then says edge caches may serve old
 * bytes until CloudFront finishes).
 */
export async function invalidateAndWait(
  cf: CloudFrontClient,
  distributionId: string,
  outcome: InvalidationOutcome,
  opts: InvalidateOptions
): Promise<void> {
  const { paths } = outcome
  const batches = toBatches(paths)
  const ids = await createInvalidations(cf, distributionId, batches, {
    runId: opts.env.GITHUB_RUN_ID ?? `local-${opts.now()}`,
    runAttempt: opts.env.GITHUB_RUN_ATTEMPT ?? '1',
    logger: opts.logger,
    sleep: opts.sleep,
    // A second batch waits for the first to leave CloudFront's 3,000-paths-in-progress quota,
    // which takes minutes: give it ~25 min of capped backoff rather than ~3.
    maxAttempts: batches.length > 1 ? 30 : undefined
  })
  const label = opts.label ? ` (${opts.label})` : ''
  opts.logger.info(`Created invalidation(s) ${ids.join(', ')} for ${paths.length} path(s)${label}.`)
  Object.assign(outcome, { ids, status: 'InProgress', waitedMs: 0 })
  if (!opts.wait) return
  const waited = await waitForInvalidations(cf, distributionId, ids, {
    timeoutMs: opts.waitTimeoutMinutes * 60_000,
    logger: opts.logger,
    sleep: opts.sleep,
    now: opts.now
  })
  Object.assign(outcome, { status: waited.status, waitedMs: waited.waitedMs })
  if (waited.status !== 'Completed') {
    opts.warn(
      `Invalidation(s) ${waited.pending.join(', ')}${label} still in progress after ${opts.waitTimeoutMinutes} min; CloudFront finishes them on its own. Edge caches may serve the old bytes until then.`
    )
  }
}
