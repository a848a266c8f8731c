import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import { IAMClient } from '@aws-sdk/client-iam'
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { STSClient } from '@aws-sdk/client-sts'
import type { FinalizeRequestMiddleware } from '@smithy/types'
import { awsErrorCode, httpStatusOf } from '../common/errors.js'
import { redact } from '../common/secrets.js'
import type { DeployInputs, Logger } from '../common/types.js'

export interface Clients {
  s3: S3Client
  cloudfront: CloudFrontClient
  /**
   * An S3 client like `s3` for another region (an `s3://` source's bucket may be anywhere), made
   * once per region; `s3` itself for its own region. They share `s3`'s connections, so
   * destroying `s3` closes theirs too. Set by createClients.
   */
  s3In?: (region: string) => S3Client
}

/**
 * SDK retries for transient faults (5xx, SlowDown and other throttling, resets, timeouts), in
 * `standard` mode: exponential backoff with full jitter, capped at 20 s per wait, from a 50 ms
 * base (1 s for throttling), and a per-client retry quota that stops retry storms when a service
 * is down. 6 attempts = 5 retries ride out up to about half a minute of S3 SlowDown while a
 * bucket's partitions scale; past that a re-run resumes, skipping files already in place. CloudFront
 * quota errors (TooManyInvalidationsInProgress) are client faults the SDK never retries:
 * invalidation.ts retries those itself.
 */
export const MAX_ATTEMPTS = 6
/** Fail a connect that hangs. */
const CONNECTION_TIMEOUT_MS = 10_000
/**
 * Fail a socket that sends or receives nothing for this long (a stall), with a retryable
 * TimeoutError. Not the handler's `requestTimeout`: that caps the whole request, which a large
 * part on a slow link may need, and without `throwOnRequestTimeout` it only logs a warning.
 */
const SOCKET_IDLE_TIMEOUT_MS = 60_000

export interface ClientOptions {
  /** Where each retried attempt is reported; nothing is logged without it. */
  logger?: Logger
  connectionTimeoutMs?: number
  socketTimeoutMs?: number
}

/** The S3 endpoint in use when it is not AWS's own: the input, or the SDK's standard variables. */
export function customS3Endpoint(inputs: Pick<DeployInputs, 'endpointUrl'>, env = process.env) {
  return inputs.endpointUrl || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined
}

/**
 * The one place SDK clients are made; modules receive them as arguments. Credentials come only
 * from the SDK's default chain (environment, OIDC web identity, instance roles).
 */
export function createClients(
  inputs: Pick<DeployInputs, 'region' | 'endpointUrl' | 'concurrency'>,
  env = process.env,
  options: ClientOptions = {}
): Clients {
  // Enough sockets for every part in flight plus HEAD/List calls.
  const maxSockets = Math.max(50, inputs.concurrency * 2)
  // One set of agents per service: destroying the CloudFront client must not close S3's sockets.
  // The S3 clients of every region share theirs, so destroying `s3` closes them all.
  const requestHandler = () => ({
    connectionTimeout: options.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS,
    socketTimeout: options.socketTimeoutMs ?? SOCKET_IDLE_TIMEOUT_MS,
    // Agents, not agent options: for a request with `Expect: 100-continue` (every UploadPart and
    // every PutObject over 2 MB) the SDK swaps an agent it made itself for a new keepAlive:false
    // one, i.e. a new TCP + TLS connection per part or file. An agent it is given is kept.
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets })
  })
  const s3Connections = requestHandler()
  const s3In = memoizeByRegion((region) =>
    createS3Client(region, customS3Endpoint(inputs, env), s3Connections, options.logger)
  )
  // CloudFront is global; AWS_ENDPOINT_URL_CLOUDFRONT is honoured by the SDK itself.
  const cloudfront = new CloudFrontClient({
    region: 'us-east-1',
    ...RETRY,
    requestHandler: requestHandler()
  })
  if (options.logger) {
    cloudfront.middlewareStack.addRelativeTo(
      logRetries('CloudFront', options.logger),
      RETRY_LOG_POSITION
    )
  }
  return { s3: s3In(inputs.region), cloudfront, s3In }
}

/** Explicit, so AWS_RETRY_MODE / AWS_MAX_ATTEMPTS in the job's environment cannot change them. */
const RETRY = { retryMode: 'standard', maxAttempts: MAX_ATTEMPTS }

/** The deploy's S3 client for `region`: every S3 client is made here, alike but for the region. */
function createS3Client(
  region: string,
  endpoint: string | undefined,
  requestHandler: S3ClientConfig['requestHandler'],
  logger: Logger | undefined
): S3Client {
  const s3 = new S3Client({
    region,
    ...RETRY,
    requestHandler,
    ...(endpoint
      ? {
          endpoint,
          // S3-compatible stores (MinIO, R2, emulators) want path-style URLs and reject or
          // mis-store the SDK's default aws-chunked CRC trailers (aws-sdk-js-v3 #6810).
          forcePathStyle: true,
          requestChecksumCalculation: 'WHEN_REQUIRED' as const,
          responseChecksumValidation: 'WHEN_REQUIRED' as const
        }
      : {})
  })
  if (logger) s3.middlewareStack.addRelativeTo(logRetries('S3', logger), RETRY_LOG_POSITION)
  return s3
}

function memoizeByRegion(make: (region: string) => S3Client): (region: string) => S3Client {
  const made = new Map<string, S3Client>()
  return (region) => {
    let client = made.get(region)
    if (!client) made.set(region, (client = make(region)))
    return client
  }
}

/** The clients `setup` needs: the deploy's, plus IAM and STS for the GitHub role. */
export interface SetupClientSet extends Clients {
  iam: IAMClient
  sts: STSClient
}

/** Clients for `setup`: its calls are few, so no tuning of sockets. */
export function createSetupClients(region: string, env = process.env): SetupClientSet {
  const { s3, cloudfront } = createClients({ region, concurrency: 1 }, env)
  // IAM and STS endpoints come from AWS_ENDPOINT_URL(_IAM/_STS) through the SDK itself.
  const iam = new IAMClient({ region: 'us-east-1', ...RETRY })
  const sts = new STSClient({ region, ...RETRY })
  return { s3, cloudfront, iam, sts }
}

/** Inside the retry middleware, so it runs once per attempt. */
const RETRY_LOG_POSITION = {
  relation: 'after',
  toMiddleware: 'retryMiddleware',
  name: 'logRetriesMiddleware'
} as const

interface Failure {
  attempt: number
  error: unknown
  at: number
}

/**
 * Logs one line per retry: the operation, its target, why the previous attempt failed and the
 * attempt number. It logs when the retry is sent, not when the attempt fails, because only then
 * is it certain that the SDK retries (it also weighs the error type, attempts left and its quota).
 */
function logRetries<Input extends object, Output extends object>(
  service: string,
  logger: Logger
): FinalizeRequestMiddleware<Input, Output> {
  // The retry middleware passes the same request object to every attempt of one call.
  const failures = new WeakMap<object, Failure>()
  return (next, context) => async (args) => {
    const key = args.request
    if (typeof key !== 'object' || key === null) return next(args)
    const previous = failures.get(key)
    const attempt = (previous?.attempt ?? 0) + 1
    if (previous) {
      const operation = (context.commandName ?? 'request').replace(/Command$/, '')
      const target = describeTarget(args.input as Record<string, unknown>)
      logger.info(
        `${service} ${operation}${target ? ` ${target}` : ''}: attempt ${previous.attempt} of ` +
          `${MAX_ATTEMPTS} failed with ${describeFailure(previous.error)}; retrying (attempt ` +
          `${attempt}) after ${((Date.now() - previous.at) / 1000).toFixed(1)} s`
      )
    }
    try {
      const result = await next(args)
      failures.delete(key)
      return result
    } catch (error) {
      failures.set(key, { attempt, error, at: Date.now() })
      throw error
    }
  }
}

/** `s3://bucket/key part 2`, `distribution E123 invalidation I456`, or '' when neither. */
function describeTarget(input: Record<string, unknown>): string {
  const text = (name: string): string | undefined => {
    const value = input[name]
    return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined
  }
  const bucket = text('Bucket')
  if (bucket !== undefined) {
    const key = text('Key')
    const part = text('PartNumber')
    return `s3://${bucket}${key !== undefined ? `/${key}` : ''}${part ? ` part ${part}` : ''}`
  }
  const distribution = text('DistributionId')
  const id = text('Id')
  if (distribution !== undefined) {
    return `distribution ${distribution}${id ? ` invalidation ${id}` : ''}`
  }
  // GetDistribution names the distribution `Id`.
  return id !== undefined ? `distribution ${id}` : ''
}

/** `SlowDown (HTTP 503)`, `ECONNRESET`, or `TimeoutError: <what timed out>`. */
function describeFailure(error: unknown): string {
  const errno = (error as { code?: unknown } | null)?.code
  const code = typeof errno === 'string' ? errno : (awsErrorCode(error) ?? 'error')
  const status = httpStatusOf(error)
  if (status !== undefined) return `${code} (HTTP ${status})`
  // Without the "@smithy/node-http-handler - " prefix and the full stop of the SDK's messages.
  const message = (error instanceof Error ? error.message : '')
    .replace(/^@[\w-]+\/[\w-]+ - /, '')
    .replace(/\.$/, '')
  return message && message !== code ? `${code}: ${redact(message)}` : code
}
