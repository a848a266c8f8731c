/**
 * One AWS request of a setup step. Setup runs with an administrator's credentials, not the
 * deploy role's, so a refused request names the IAM action it needed, and the hint is about
 * setup's permissions, not the deploy's.
 */
import { NoSuchEntityException } from '@aws-sdk/client-iam'
import { AwsError, awsErrorCode, explainAwsError, httpStatusOf } from '../common/errors.js'
import type { SetupContext } from './types.js'

export interface AwsCall {
  /** What the request does, for a person: `creating IAM role "x"`. */
  doing: string
  /** The IAM action it needs: `iam:CreateRole`. */
  permission: string
}

type Send<T> = (options: { abortSignal?: AbortSignal }) => Promise<T>

const REFUSED = new Set(['AccessDenied', 'AccessDeniedException', 'Forbidden'])
/** 403s that are about the credentials themselves, not a permission they lack. */
const BAD_CREDENTIALS = /token|signature|accesskey|credential/i

/** Sends the request; a failure becomes an error that says what was done and what to check. */
export async function awsCall<T>(
  ctx: Pick<SetupContext, 'signal'>,
  call: AwsCall,
  send: Send<T>
): Promise<T> {
  try {
    return await send({ abortSignal: ctx.signal })
  } catch (err) {
    throw setupAwsError(err, call)
  }
}

/** As awsCall, but an IAM entity that does not exist is undefined, not an error. */
export async function awsCallUnlessMissing<T>(
  ctx: Pick<SetupContext, 'signal'>,
  call: AwsCall,
  send: Send<T>
): Promise<T | undefined> {
  try {
    return await send({ abortSignal: ctx.signal })
  } catch (err) {
    if (err instanceof NoSuchEntityException) return undefined
    throw setupAwsError(err, call)
  }
}

function setupAwsError(err: unknown, call: AwsCall): Error {
  const explained = explainAwsError(err, { action: `${call.doing} (${call.permission})` })
  const code = awsErrorCode(err) ?? ''
  const status = httpStatusOf(err)
  const refused = REFUSED.has(code) || (status === 403 && !BAD_CREDENTIALS.test(code))
  if (!refused) return explained
  return new AwsError(
    explained.message,
    `The credentials running setup may not call ${call.permission}. Allow it to them, or run ` +
      'setup as an administrator of the account.',
    code,
    status,
    { cause: err }
  )
}
