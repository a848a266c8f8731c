import { redact } from './secrets.js'

/**
 * Typed errors. Modules throw these; main turns them into the one message given to
 * core.setFailed, so every failure says what went wrong and what to check.
 */
export class DeployError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown }
  ) {
    super(message, options)
    this.name = new.target.name
  }
}

/** Bad input: raised before any byte is sent. */
export class InputError extends DeployError {}

/** A key already holds different bytes and `overwrite` is false. */
export class ImmutableVersionError extends DeployError {}

/**
 * Another run wrote a key of this version (or alias) between this run's plan and its write, with
 * other bytes: a conditional write (`If-None-Match` / `If-Match`) lost the race.
 */
export class ConcurrentPublishError extends ImmutableVersionError {}

/** An `s3://` source's object changed or was deleted between its listing and its copy. */
export class SourceChangedError extends DeployError {}

/** An AWS call failed; the message names the operation, the target and what AWS said. */
export class AwsError extends DeployError {
  constructor(
    message: string,
    hint: string | undefined,
    readonly code: string,
    readonly httpStatus: number | undefined,
    options?: { cause?: unknown }
  ) {
    super(message, hint, options)
  }
}

export interface AwsErrorContext {
  /** What we were doing, e.g. `uploading models/a.onnx to s3://bucket/v1/a.onnx`. */
  action: string
  bucket?: string
  distributionId?: string
}

interface SdkErrorShape {
  name?: string
  Code?: string
  message?: string
  $metadata?: { httpStatusCode?: number; requestId?: string }
}

/** The error code the SDK reported, or undefined for non-AWS errors. */
export function awsErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const e = err as SdkErrorShape
  return e.Code ?? e.name
}

export function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  return (err as SdkErrorShape).$metadata?.httpStatusCode
}

/** What a person should check for the common AWS failures. */
function hintFor(
  code: string,
  status: number | undefined,
  ctx: AwsErrorContext
): string | undefined {
  const bucket = ctx.bucket ? `"${ctx.bucket}"` : 'the bucket'
  switch (code) {
    case 'NoSuchBucket':
      return `Bucket ${bucket} does not exist in this account/region. Check the \`bucket\` and \`aws-region\` inputs.`
    case 'AccessDenied':
    case 'Forbidden':
    case 'AccessDeniedException':
      return (
        'The credentials lack a permission for this call. Check the role assumed by ' +
        'aws-actions/configure-aws-credentials: the action needs s3:ListBucket, s3:GetObject, ' +
        's3:PutObject and s3:AbortMultipartUpload on the bucket (s3:DeleteObject too for `alias` and `mode: cleanup`, ' +
        's3:PutObjectTagging for pull request previews, which are tagged)' +
        (ctx.distributionId
          ? ', and cloudfront:GetDistribution, cloudfront:CreateInvalidation, cloudfront:GetInvalidation on the distribution'
          : '') +
        ' (see the README for the minimal IAM policy). A KMS-encrypted bucket also needs kms:GenerateDataKey and kms:Decrypt.'
      )
    case 'InvalidAccessKeyId':
    case 'InvalidClientTokenId':
    case 'SignatureDoesNotMatch':
    case 'ExpiredToken':
    case 'ExpiredTokenException':
    case 'CredentialsProviderError':
      return 'The AWS credentials are missing, wrong or expired. Run aws-actions/configure-aws-credentials (OIDC) before this step.'
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return `Bucket ${bucket} is in another region. Set \`aws-region\` to the bucket's region.`
    case 'NoSuchDistribution':
      return `Distribution "${ctx.distributionId}" does not exist or is in another account. Check \`distribution-id\`.`
    case 'AccessControlListNotSupported':
      return 'The bucket enforces object ownership; this action sets no ACLs, so check a bucket policy denying the request.'
    case 'EntityTooLarge':
      return 'A part or object is larger than S3 allows. Lower `part-size-mb`.'
    case 'TooManyInvalidationsInProgress':
      return 'CloudFront allows 3,000 file paths and 15 wildcard paths in progress per distribution. Wait for running invalidations or use fewer paths.'
    case 'SlowDown':
    case 'ServiceUnavailable':
    case 'RequestTimeout':
      return 'S3 throttled or timed out the request after the retries. Lower `concurrency` and run again: files already in place are skipped.'
  }
  if (status === 403) return hintFor('AccessDenied', status, ctx)
  if (status === 404 && ctx.bucket) return hintFor('NoSuchBucket', status, ctx)
  return undefined
}

/** Wraps an SDK (or network) error with what we were doing and what to check. */
export function explainAwsError(err: unknown, ctx: AwsErrorContext): DeployError {
  if (err instanceof DeployError) return err
  const code = awsErrorCode(err) ?? 'Error'
  const status = httpStatusOf(err)
  // SDK messages can quote a presigned URL or the signing material of SignatureDoesNotMatch.
  const raw = redact(err instanceof Error ? err.message : String(err))
  // The SDK reports HEAD failures with an empty body as "UnknownError"; the status says more.
  const said = raw && raw !== 'UnknownError' ? raw : status ? `HTTP ${status}` : 'no details'
  const requestId = (err as SdkErrorShape | undefined)?.$metadata?.requestId
  const message =
    `Failed ${ctx.action}: AWS said ${code}${status ? ` (HTTP ${status})` : ''}: ${said}` +
    (requestId ? ` [request id ${requestId}]` : '')
  return new AwsError(message, hintFor(code, status, ctx), code, status, { cause: err })
}

/** The text given to core.setFailed, with anything secret an unwrapped error carried removed. */
export function failureMessage(err: unknown): string {
  if (err instanceof DeployError) {
    return redact(err.hint ? `${err.message}\n${err.hint}` : err.message)
  }
  return redact(err instanceof Error ? err.message : String(err))
}

/**
 * Runs `parse`; an InputError it throws becomes one more line of `problems` (so every bad input
 * is reported at once) and undefined is returned.
 */
export function collectInputError<T>(problems: string[], parse: () => T): T | undefined {
  try {
    return parse()
  } catch (err) {
    if (!(err instanceof InputError)) throw err
    problems.push(err.hint ? `${err.message} ${err.hint}` : err.message)
    return undefined
  }
}

/** Items for a message, one a line (`\n- a\n- b\n- … and 3 more`), at most `max` named. */
export function bulletList(items: readonly string[], max = 20): string {
  const shown = items.slice(0, max).map((item) => `\n- ${item}`)
  const more = items.length > max ? `\n- … and ${items.length - max} more` : ''
  return shown.join('') + more
}
