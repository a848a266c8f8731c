import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client
} from '@aws-sdk/client-s3'
import { GiB } from '../common/constants.js'
import { AwsError, DeployError, awsErrorCode, explainAwsError } from '../common/errors.js'
import { abortFailureWarning, abortMultipartUploads } from '../aws/multipart-tracker.js'
import { choosePartSize, copyPartSize, partCount } from './part-size.js'
import type { Logger } from '../common/types.js'

/** The largest source a single CopyObject accepts; larger ones need UploadPartCopy. */
export const MAX_SINGLE_COPY_BYTES = 5 * GiB

/** One server-side copy into `bucket`, with the headers the destination must carry. */
export interface CopyRequest {
  bucket: string
  /** Another bucket to copy from (an `s3://` source); undefined = `bucket`. */
  sourceBucket?: string
  sourceKey: string
  destKey: string
  /** Size of the source in bytes: decides single or multipart copy and the part ranges. */
  size: number
  contentType: string
  cacheControl: string
  /** The complete user metadata of the destination, SHA256_METADATA_KEY included. */
  metadata: Record<string, string>
  /** The source's ETag as listed: the copy fails rather than copy bytes that changed since. */
  sourceETag?: string
  /** The destination's tags, URL-encoded (`k=v&…`); none when undefined. */
  tagging?: string
  /**
   * The destination's precondition (lost-race.ts writeCondition): created only if absent, or
   * replacing only the object seen; none when undefined.
   */
  destCondition?: { IfNoneMatch?: string; IfMatch?: string }
}

export interface CopyOptions {
  /** Part size of a multipart copy (`part-size-mb`); undefined = copyPartSize's automatic size. */
  partSize?: number
  /** Sources above this size are copied in parts (default 5 GiB, S3's CopyObject limit). */
  maxSingleCopyBytes?: number
  /** Parts copied at once in a multipart copy. */
  concurrency: number
  /** Aborting stops starting parts; the parts in flight settle and the upload is aborted. */
  signal?: AbortSignal
  logger?: Logger
  /** Told the bytes of each part (or of the whole object) once S3 has copied them: progress. */
  onBytesCopied?: (bytes: number) => void
}

export interface CopyResult {
  /** ETag of the destination object. */
  eTag?: string
  /** Requests that copied bytes: 1 for a CopyObject, else the UploadPartCopy count. */
  parts: number
  multipart: boolean
}

/**
 * The `x-amz-copy-source` value for a key. The SDK sends CopySource as given, and S3 URL-decodes
 * it, so each segment is percent-encoded (spaces, non-ASCII, `%`, `+`, `?`) and the `/`s kept.
 */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
}

/**
 * Copies one object server-side with exactly the headers of `request` (MetadataDirective and
 * TaggingDirective REPLACE: no header or tag of the source follows it). Sources up to
 * `maxSingleCopyBytes` take one CopyObject; larger ones a multipart upload of UploadPartCopy
 * ranges, aborted on failure or cancel before the first error is rethrown. A CopyObject or
 * UploadPartCopy that S3 answers 200 with an error body is raised as an error by the SDK.
 * PreconditionFailed is either condition's: the source's ETag (`sourceETag`) or the
 * destination's (`destCondition`); a caller that must know reads the destination.
 */
export async function copyObject(
  s3: S3Client,
  request: CopyRequest,
  opts: CopyOptions
): Promise<CopyResult> {
  const sourceBucket = request.sourceBucket ?? request.bucket
  const what = `copying s3://${sourceBucket}/${request.sourceKey} to s3://${request.bucket}/${request.destKey}`
  throwIfCancelled(opts.signal, what)
  const headers = {
    Bucket: request.bucket,
    Key: request.destKey,
    ContentType: request.contentType,
    CacheControl: request.cacheControl,
    Metadata: request.metadata,
    ...(request.tagging ? { Tagging: request.tagging } : {})
  }
  const source = {
    CopySource: copySource(sourceBucket, request.sourceKey),
    ...(request.sourceETag ? { CopySourceIfMatch: request.sourceETag } : {})
  }

  if (request.size <= (opts.maxSingleCopyBytes ?? MAX_SINGLE_COPY_BYTES)) {
    try {
      const { CopyObjectResult } = await s3.send(
        new CopyObjectCommand({
          ...headers,
          ...source,
          ...request.destCondition,
          MetadataDirective: 'REPLACE',
          TaggingDirective: 'REPLACE'
        }),
        { abortSignal: opts.signal }
      )
      opts.onBytesCopied?.(request.size)
      return { eTag: CopyObjectResult?.ETag, parts: 1, multipart: false }
    } catch (err) {
      throwIfCancelled(opts.signal, what)
      throw explainCopyError(err, what, request.bucket)
    }
  }
  return copyMultipart(s3, request, headers, source, opts, what)
}

type CopySourceHeaders = { CopySource: string; CopySourceIfMatch?: string }
type OpenCopy = { Bucket: string; Key: string; UploadId: string }

async function copyMultipart(
  s3: S3Client,
  request: CopyRequest,
  headers: { Bucket: string; Key: string },
  source: CopySourceHeaders,
  opts: CopyOptions,
  what: string
): Promise<CopyResult> {
  const partSize =
    opts.partSize === undefined
      ? copyPartSize(request.size, request.sourceKey)
      : choosePartSize(request.size, opts.partSize, request.sourceKey)
  const count = partCount(request.size, partSize)
  const upload = await startCopyUpload(s3, headers, opts.signal, what)
  const copied = await copyParts(s3, request, { upload, source, partSize }, opts, what)
  let failure = copied.failure
  if (failure === undefined && !opts.signal?.aborted) {
    try {
      const { ETag } = await s3.send(
        new CompleteMultipartUploadCommand({
          ...upload,
          ...request.destCondition,
          MultipartUpload: { Parts: copied.parts }
        })
      )
      return { eTag: ETag, parts: count, multipart: true }
    } catch (err) {
      failure = explainCopyError(err, `completing the multipart upload for ${what}`, request.bucket)
    }
  }
  const outcome = await abortMultipartUploads(s3, [upload])
  for (const f of outcome.failed) opts.logger?.warning(abortFailureWarning(f))
  throw failure ?? cancelled(opts.signal, what, '; the incomplete multipart upload was aborted')
}

/** Creates the multipart upload of the destination, with its headers. */
async function startCopyUpload(
  s3: S3Client,
  headers: { Bucket: string; Key: string },
  signal: AbortSignal | undefined,
  what: string
): Promise<OpenCopy> {
  let uploadId: string | undefined
  try {
    ;({ UploadId: uploadId } = await s3.send(new CreateMultipartUploadCommand(headers), {
      abortSignal: signal
    }))
  } catch (err) {
    throwIfCancelled(signal, what)
    throw explainCopyError(err, `starting a multipart upload for ${what}`, headers.Bucket)
  }
  if (!uploadId) {
    throw new DeployError(`Failed ${what}: CreateMultipartUpload returned no UploadId.`)
  }
  return { Bucket: headers.Bucket, Key: headers.Key, UploadId: uploadId }
}

/**
 * Copies the source's ranges into the upload's parts, `opts.concurrency` at a time. Starts no
 * further part after the first failure (returned) or the cancel.
 */
async function copyParts(
  s3: S3Client,
  request: CopyRequest,
  { upload, source, partSize }: { upload: OpenCopy; source: CopySourceHeaders; partSize: number },
  opts: CopyOptions,
  what: string
): Promise<{ parts: CompletedPart[]; failure?: DeployError }> {
  const count = partCount(request.size, partSize)
  const parts: CompletedPart[] = new Array(count)
  let next = 0
  let failure: DeployError | undefined
  const worker = async (): Promise<void> => {
    while (next < count && failure === undefined && !opts.signal?.aborted) {
      const index = next++
      const first = index * partSize
      const end = Math.min(first + partSize, request.size)
      const range = `bytes=${first}-${end - 1}`
      try {
        // No abortSignal: a part in flight finishes, so the abort that follows leaves no part behind.
        const { CopyPartResult } = await s3.send(
          new UploadPartCopyCommand({
            ...upload,
            ...source,
            PartNumber: index + 1,
            CopySourceRange: range
          })
        )
        parts[index] = { PartNumber: index + 1, ETag: CopyPartResult?.ETag }
        opts.onBytesCopied?.(end - first)
      } catch (err) {
        failure ??= explainCopyError(
          err,
          `${what} (part ${index + 1} of ${count}, ${range})`,
          request.bucket
        )
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(Math.max(1, opts.concurrency), count) }, worker))
  return { parts, failure }
}

function cancelled(signal: AbortSignal | undefined, what: string, state: string): DeployError {
  return new DeployError(`Cancelled ${what}${state}.`, undefined, { cause: signal?.reason })
}

function throwIfCancelled(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw cancelled(signal, what, '')
}

/** explainAwsError, with what a failed CopySourceIfMatch means for us. */
function explainCopyError(err: unknown, action: string, bucket: string): DeployError {
  const explained = explainAwsError(err, { action, bucket })
  if (awsErrorCode(err) !== 'PreconditionFailed' || !(explained instanceof AwsError)) {
    return explained
  }
  return new AwsError(
    explained.message,
    'The source object changed after it was listed, or another run wrote the destination meanwhile (an ETag no longer matches). Run the step again.',
    explained.code,
    explained.httpStatus,
    { cause: err }
  )
}
