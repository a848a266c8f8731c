/**
 * How a setup step talks to AWS. Setup runs with an administrator's credentials, not the deploy
 * role's, so every request names the IAM action it needs: a refusal says which permission to
 * grant, and its hint is about setup's permissions, not the deploy's. Every change is recorded
 * as it is made, or, in a dry run, recorded and not made.
 */
import {
  AwsError,
  awsErrorCode,
  DeployError,
  explainAwsError,
  httpStatusOf
} from '../common/errors.js'
import type { SetupChange, SetupContext } from './types.js'

export interface AwsCall {
  /** What the request does, for a person: `creating IAM role "x"`, `tagging bucket "b"`. */
  doing: string
  /** The IAM action it needs: `iam:CreateRole`, `s3:PutBucketPolicy`. */
  permission: string
  /** The bucket it is about: a 404 then says the bucket is missing. */
  bucket?: string
}

/** Sends the request, with the options (the run's abort signal) the SDK's `send` takes. */
type Send<T> = (options: { abortSignal?: AbortSignal }) => Promise<T>

/** IAM's answer for a role or a role's policy that does not exist (its code, or its class). */
export const NO_SUCH_ENTITY = ['NoSuchEntity', 'NoSuchEntityException'] as const

const REFUSED = new Set(['AccessDenied', 'AccessDeniedException', 'Forbidden'])
/** 403s that are about the credentials themselves, not a permission they lack. */
const BAD_CREDENTIALS = /token|signature|accesskey|credential/i

/** Sends the request; a failure becomes an error that says what was done and what to check. */
export function awsCall<T>(
  ctx: Pick<SetupContext, 'signal'>,
  call: AwsCall,
  send: Send<T>
): Promise<T>
/**
 * As above, but an error with one of the `absent` codes (e.g. NoSuchBucketPolicy, or
 * NO_SUCH_ENTITY) means "not there": undefined, not an error.
 */
export function awsCall<T>(
  ctx: Pick<SetupContext, 'signal'>,
  call: AwsCall,
  send: Send<T>,
  absent: readonly string[]
): Promise<T | undefined>
export async function awsCall<T>(
  ctx: Pick<SetupContext, 'signal'>,
  call: AwsCall,
  send: Send<T>,
  absent: readonly string[] = []
): Promise<T | undefined> {
  try {
    return await send({ abortSignal: ctx.signal })
  } catch (err) {
    if (absent.includes(awsErrorCode(err) ?? '')) return undefined
    throw setupAwsError(err, call)
  }
}

function setupAwsError(err: unknown, { doing, permission, bucket }: AwsCall): Error {
  const explained = explainAwsError(err, { action: `${doing} (${permission})`, bucket })
  if (!(explained instanceof AwsError) || !isRefused(err)) return explained
  const onBucket = bucket ? ` on bucket "${bucket}"` : ''
  // explainAwsError's hint lists what a deploy needs; setup needs other actions.
  return new AwsError(
    explained.message,
    `The credentials running setup may not call ${permission}${onBucket}: allow it to them, or ` +
      'run setup as an administrator of the account. Then run setup again: what it already set ' +
      'up is found again and kept.',
    explained.code,
    explained.httpStatus,
    { cause: err }
  )
}

/** Whether AWS refused the request to these credentials (S3 answers a HEAD with a bare 403). */
function isRefused(err: unknown): boolean {
  const code = awsErrorCode(err) ?? ''
  return REFUSED.has(code) || (httpStatusOf(err) === 403 && !BAD_CREDENTIALS.test(code))
}

/**
 * Makes the changes with `write` and records them once made; in a dry run only records them (as
 * what would be done) and resolves undefined. No changes: nothing is written.
 */
export async function applyChanges<T>(
  ctx: Pick<SetupContext, 'dryRun' | 'change'>,
  changes: SetupChange[],
  write: () => Promise<T>
): Promise<T | undefined> {
  if (changes.length === 0) return undefined
  const result = ctx.dryRun ? undefined : await write()
  for (const change of changes) ctx.change(change)
  return result
}

/** The id of what a real run created: an answer without one is a failure, not a dry run. */
export function createdId(
  ctx: Pick<SetupContext, 'dryRun'>,
  id: string | undefined,
  request: string
): string | undefined {
  if (!ctx.dryRun && !id) throw new DeployError(`${request} returned no id.`)
  return id
}

/** A page of a CloudFront list: CloudFront pages with Marker and NextMarker. */
interface ListPage<T> {
  Items?: T[]
  NextMarker?: string
}

/** Every item of a CloudFront list, page after page. */
export async function listAll<T>(
  page: (marker: string | undefined) => Promise<ListPage<T> | undefined>
): Promise<T[]> {
  const all: T[] = []
  let marker: string | undefined
  do {
    const list = await page(marker)
    all.push(...(list?.Items ?? []))
    marker = list?.NextMarker || undefined
  } while (marker)
  return all
}
