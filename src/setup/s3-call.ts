/**
 * How the bucket steps of setup talk to S3: every call names the IAM action it needs, so a
 * refusal says which permission to grant, and every change is recorded as it is made (or, in a
 * dry run, recorded and not made).
 */
import { AwsError, awsErrorCode, explainAwsError, httpStatusOf } from '../common/errors.js'
import type { SetupChange, SetupContext } from './types.js'

/** One S3 call of setup, for its error message. */
export interface S3Call {
  bucket: string
  /** The IAM action the call needs, e.g. `s3:PutBucketPolicy`. */
  permission: string
  /** What the call does, e.g. `setting the policy`. */
  doing: string
}

const DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'Forbidden'])

/** Whether AWS refused the call to these credentials. */
export function isDenied(err: unknown): boolean {
  return DENIED.has(awsErrorCode(err) ?? '') || httpStatusOf(err) === 403
}

/**
 * Sends an S3 call; a refusal names the IAM action that was refused, any other failure is
 * explained. An error with one of `absent.codes` (e.g. NoSuchBucketPolicy) means "not set":
 * `absent.value` is returned instead.
 */
export async function callS3<T>(
  call: S3Call,
  send: () => Promise<T>,
  absent?: { codes: string[]; value: T }
): Promise<T> {
  try {
    return await send()
  } catch (err) {
    if (absent?.codes.includes(awsErrorCode(err) ?? '')) return absent.value
    throw setupS3Error(err, call)
  }
}

function setupS3Error(err: unknown, { bucket, permission, doing }: S3Call): Error {
  const explained = explainAwsError(err, { action: `${doing} of bucket "${bucket}"`, bucket })
  if (!isDenied(err)) return explained
  // explainAwsError's hint lists what a deploy needs; setup needs other actions.
  return new AwsError(
    `${explained.message} (needs ${permission})`,
    `These credentials are not allowed ${permission} on bucket "${bucket}": allow it to the identity setup runs as, or run setup with an administrator's credentials.`,
    awsErrorCode(err) ?? 'AccessDenied',
    httpStatusOf(err),
    { cause: err }
  )
}

/** Makes a change (unless this is a dry run), then records it. */
export async function applyChanges(
  ctx: Pick<SetupContext, 'dryRun' | 'change'>,
  changes: SetupChange[],
  write: () => Promise<unknown>
): Promise<void> {
  if (changes.length === 0) return
  if (!ctx.dryRun) await write()
  for (const change of changes) ctx.change(change)
}
