import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  type S3Client,
  type ServiceInputTypes,
  type ServiceOutputTypes
} from '@aws-sdk/client-s3'
import type { InitializeMiddleware } from '@smithy/types'
import { awsErrorCode, explainAwsError } from '../common/errors.js'

/** A multipart upload, named as S3's calls name it. */
export interface MultipartUpload {
  Bucket: string
  Key: string
  UploadId: string
}

export interface MultipartTracker {
  /** The uploads the client started and has not completed or aborted, oldest first. */
  open(): MultipartUpload[]
}

/** Where a run's leftovers go when nothing else removes them; said with every failed abort. */
export const LIFECYCLE_ADVICE =
  'Until it is aborted its parts stay stored and billed; a bucket lifecycle rule with ' +
  'AbortIncompleteMultipartUpload (DaysAfterInitiation: 1) removes them (see the README).'

/**
 * Records every multipart upload the client starts and forgets it once completed or aborted, so
 * what a cancelled or killed run leaves open is known by id. It wraps the whole call, retries
 * included: an upload counts as started once CreateMultipartUpload has answered. `onChange`
 * receives the open uploads after each change.
 */
export function trackMultipartUploads(
  s3: S3Client,
  onChange?: (open: MultipartUpload[]) => void
): MultipartTracker {
  const open = new Map<string, MultipartUpload>()
  const list = (): MultipartUpload[] => [...open.values()]
  const forget = (uploadId: unknown): void => {
    if (typeof uploadId === 'string' && open.delete(uploadId)) onChange?.(list())
  }

  const middleware: InitializeMiddleware<ServiceInputTypes, ServiceOutputTypes> =
    (next, context) => async (args) => {
      const input = args.input as Partial<MultipartUpload>
      switch (context.commandName) {
        case 'CreateMultipartUploadCommand': {
          const result = await next(args)
          const { UploadId } = result.output as { UploadId?: string }
          if (UploadId && input.Bucket && input.Key) {
            open.set(UploadId, { Bucket: input.Bucket, Key: input.Key, UploadId })
            onChange?.(list())
          }
          return result
        }
        case 'CompleteMultipartUploadCommand':
        case 'AbortMultipartUploadCommand':
          try {
            const result = await next(args)
            forget(input.UploadId)
            return result
          } catch (err) {
            // Completed or aborted already (a lost answer, a racing abort): nothing is left open.
            if (awsErrorCode(err) === 'NoSuchUpload') forget(input.UploadId)
            throw err
          }
        default:
          return next(args)
      }
    }
  s3.middlewareStack.add(middleware, { step: 'initialize', name: 'multipartTrackerMiddleware' })
  return { open: list }
}

export interface AbortFailure {
  upload: MultipartUpload
  error: unknown
}

export interface AbortOutcome {
  aborted: MultipartUpload[]
  /** Completed or aborted already: nothing was left to abort. */
  gone: MultipartUpload[]
  failed: AbortFailure[]
}

/**
 * Sends AbortMultipartUpload for every upload at once. `timeoutMs` bounds the whole attempt,
 * SDK retries included; an upload not aborted by then counts as failed.
 */
export async function abortMultipartUploads(
  s3: S3Client,
  uploads: MultipartUpload[],
  opts: { timeoutMs?: number } = {}
): Promise<AbortOutcome> {
  const deadline = opts.timeoutMs === undefined ? undefined : AbortSignal.timeout(opts.timeoutMs)
  // The signal cancels the request; the race keeps the bound where a handler ignores it.
  const timedOut =
    deadline &&
    new Promise<never>((_, reject) =>
      deadline.addEventListener(
        'abort',
        () => reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' })),
        { once: true }
      )
    )
  timedOut?.catch(() => undefined)
  const settled = await Promise.allSettled(
    uploads.map(({ Bucket, Key, UploadId }) => {
      const sent = s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }), {
        abortSignal: deadline
      })
      return timedOut ? Promise.race([sent, timedOut]) : sent
    })
  )
  const outcome: AbortOutcome = { aborted: [], gone: [], failed: [] }
  settled.forEach((result, i) => {
    const upload = uploads[i]
    if (result.status === 'fulfilled') outcome.aborted.push(upload)
    else if (awsErrorCode(result.reason) === 'NoSuchUpload') outcome.gone.push(upload)
    else outcome.failed.push({ upload, error: result.reason })
  })
  return outcome
}

const s3Uri = ({ Bucket, Key }: MultipartUpload): string => `s3://${Bucket}/${Key}`

/** The warning for an upload that could not be aborted: which one, what AWS said, what to do. */
export function abortFailureWarning({ upload, error }: AbortFailure): string {
  const action = `aborting multipart upload ${upload.UploadId} of ${s3Uri(upload)}`
  // The SDK's AbortError is our own timeout, not something AWS said.
  const message =
    awsErrorCode(error) === 'AbortError'
      ? `Failed ${action}: no answer in time`
      : explainAwsError(error, { action, bucket: upload.Bucket }).message
  return `${message.replace(/\.?$/, '.')} ${LIFECYCLE_ADVICE}`
}

/** `s3://bucket/key (upload id …)`, for the log. */
export function describeUpload(upload: MultipartUpload): string {
  return `${s3Uri(upload)} (upload id ${upload.UploadId})`
}

/**
 * The multipart uploads open under `prefix` (all pages), initiated since `since` when given. S3
 * reports `Initiated` to the second, so the comparison is too.
 */
export async function listOpenUploads(
  s3: S3Client,
  bucket: string,
  prefix: string,
  since?: Date
): Promise<MultipartUpload[]> {
  const from = since ? Math.floor(since.getTime() / 1000) * 1000 : -Infinity
  const found: MultipartUpload[] = []
  let KeyMarker: string | undefined
  let UploadIdMarker: string | undefined
  do {
    const page = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, UploadIdMarker })
    )
    for (const { Key, UploadId, Initiated } of page.Uploads ?? []) {
      // The prefix again: an S3-compatible store may ignore it.
      if (Key?.startsWith(prefix) && UploadId && (Initiated?.getTime() ?? 0) >= from) {
        found.push({ Bucket: bucket, Key, UploadId })
      }
    }
    KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined
    UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined
  } while (KeyMarker)
  return found
}
