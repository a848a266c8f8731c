/**
 * Reading a setting for pre-flight: a read never throws, and one that fails is reported as
 * "could not check" (naming the permission when it was denied), never as a failure.
 */
import { awsErrorCode, explainAwsError } from '../../common/errors.js'
import type { PreflightCheck, PreflightFinding, PreflightTarget } from './types.js'

/** The IAM actions pre-flight reads with, by SDK call; none of them changes anything. */
export const PREFLIGHT_PERMISSIONS = {
  getDistribution: 'cloudfront:GetDistribution',
  getOriginAccessControl: 'cloudfront:GetOriginAccessControl',
  getKeyGroup: 'cloudfront:GetKeyGroup',
  listKeyGroups: 'cloudfront:ListKeyGroups',
  getPublicKey: 'cloudfront:GetPublicKey',
  getBucketPolicy: 's3:GetBucketPolicy',
  getPublicAccessBlock: 's3:GetBucketPublicAccessBlock',
  getBucketVersioning: 's3:GetBucketVersioning',
  getLifecycleConfiguration: 's3:GetLifecycleConfiguration'
} as const

type Permission = keyof typeof PREFLIGHT_PERMISSIONS
export type Read<T> =
  { ok: true; value: T; err?: undefined } | { ok: false; value?: undefined; err: unknown }

export function read<T>(promise: Promise<T>): Promise<Read<T>> {
  return promise.then(
    (value) => ({ ok: true, value }),
    (err: unknown) => ({ ok: false, err })
  )
}

const DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'Forbidden'])

/** A read that failed: "could not check" (with the permission when it was denied), never an error. */
export function readFailure(
  check: PreflightCheck,
  what: string,
  permission: Permission,
  err: unknown,
  target: Pick<PreflightTarget, 'bucket' | 'distributionId'>
): PreflightFinding {
  const action = PREFLIGHT_PERMISSIONS[permission]
  if (DENIED.has(awsErrorCode(err) ?? '')) {
    return {
      check,
      status: 'unchecked',
      message: `Could not check ${what} (needs permission ${action}).`,
      fix:
        `Allow ${action} to the role this step runs as for a complete pre-flight` +
        (permission === 'getDistribution'
          ? ' (the deploy reads the distribution too).'
          : '; the deploy itself does not need it.')
    }
  }
  const explained = explainAwsError(err, {
    action: `reading ${what}`,
    bucket: target.bucket,
    distributionId: target.distributionId
  })
  return {
    check,
    status: 'unchecked',
    message: `Could not check ${what}: ${explained.message}`,
    fix: explained.hint
  }
}
