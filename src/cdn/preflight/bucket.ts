/**
 * The bucket's own settings: whether the bucket can be reached at all, then its public access
 * block, versioning and lifecycle rules. (Its policy, which depends on the distribution, is in
 * bucket-policy.ts.)
 */
import {
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  type BucketVersioningStatus,
  type LifecycleRule,
  type PublicAccessBlockConfiguration,
  type S3Client
} from '@aws-sdk/client-s3'
import { awsErrorCode, explainAwsError } from '../../common/errors.js'
import { read, readFailure, type Read } from './read.js'
import type { PreflightFinding, PreflightTarget } from './types.js'

/** The bucket's settings as read, each on its own (a failed read is not an error). */
export interface BucketSettings {
  policy: Read<string | undefined>
  publicAccess: Read<PublicAccessBlockConfiguration | undefined>
  versioning: Read<BucketVersioningStatus | undefined>
  lifecycle: Read<LifecycleRule[] | undefined>
}

/** Sends the four reads at once. */
export async function readBucketSettings(
  s3: S3Client,
  bucket: string,
  signal: AbortSignal | undefined
): Promise<BucketSettings> {
  const send = { abortSignal: signal }
  const [policy, publicAccess, versioning, lifecycle] = await Promise.all([
    read(s3.send(new GetBucketPolicyCommand({ Bucket: bucket }), send).then((r) => r.Policy)),
    read(
      s3
        .send(new GetPublicAccessBlockCommand({ Bucket: bucket }), send)
        .then((r) => r.PublicAccessBlockConfiguration)
    ),
    read(s3.send(new GetBucketVersioningCommand({ Bucket: bucket }), send).then((r) => r.Status)),
    read(
      s3
        .send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }), send)
        .then((r) => r.Rules)
    )
  ])
  return { policy, publicAccess, versioning, lifecycle }
}

/** S3 errors that mean the bucket itself is wrong, not one of its settings. */
const BUCKET_UNREACHABLE = new Set([
  'NoSuchBucket',
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'IllegalLocationConstraintException'
])

/** One error when a read says the bucket itself is wrong (instead of one per setting), else undefined. */
export function unreachableBucketCheck(
  bucket: string,
  settings: BucketSettings
): PreflightFinding | undefined {
  const { policy, publicAccess, versioning, lifecycle } = settings
  const bucketError = [policy, publicAccess, versioning, lifecycle]
    .map((r) => r.err)
    .find((err) => BUCKET_UNREACHABLE.has(awsErrorCode(err) ?? ''))
  if (bucketError === undefined) return undefined
  const explained = explainAwsError(bucketError, { action: `reading bucket "${bucket}"`, bucket })
  return { check: 'bucket', status: 'error', message: explained.message, fix: explained.hint }
}

/** The findings on the bucket's settings that do not depend on the distribution. */
export function bucketSettingChecks(
  target: PreflightTarget,
  settings: BucketSettings
): PreflightFinding[] {
  return [
    publicAccessCheck(target, settings.publicAccess),
    versioningCheck(target, settings.versioning),
    lifecycleCheck(target, settings.lifecycle)
  ]
}

const PUBLIC_ACCESS_FLAGS = [
  'BlockPublicAcls',
  'IgnorePublicAcls',
  'BlockPublicPolicy',
  'RestrictPublicBuckets'
] as const

function publicAccessCheck(
  target: PreflightTarget,
  got: Read<Partial<Record<(typeof PUBLIC_ACCESS_FLAGS)[number], boolean>> | undefined>
): PreflightFinding {
  const check = 'public-access-block'
  const { bucket } = target
  if (!got.ok && awsErrorCode(got.err) !== 'NoSuchPublicAccessBlockConfiguration') {
    return readFailure(
      check,
      `the public access block of bucket "${bucket}"`,
      'getPublicAccessBlock',
      got.err,
      target
    )
  }
  const off = PUBLIC_ACCESS_FLAGS.filter((flag) => got.value?.[flag] !== true)
  if (off.length === 0) {
    return { check, status: 'ok', message: `Bucket "${bucket}" blocks all public access.` }
  }
  const state =
    off.length === PUBLIC_ACCESS_FLAGS.length
      ? 'is off'
      : `is partly off (${off.join(', ')} not set)`
  const risk = target.signingKeyPairId
    ? 'a bucket policy or ACL can make the models public, and a public bucket serves them to anyone, bypassing the signed URLs'
    : 'a bucket policy or ACL can make the models readable by anyone, bypassing CloudFront'
  return {
    check,
    // Signing means the models are meant to be private: a door around it is an error.
    status: target.signingKeyPairId ? 'error' : 'warning',
    message: `Block Public Access ${state} on bucket "${bucket}": ${risk}. (An account-level block is not checked.)`,
    fix:
      `\`aws s3api put-public-access-block --bucket ${bucket} --public-access-block-configuration ` +
      'BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true` ' +
      "(CloudFront's Origin Access Control is not public access: it keeps working)."
  }
}

function versioningCheck(target: PreflightTarget, got: Read<string | undefined>): PreflightFinding {
  const check = 'versioning'
  const { bucket } = target
  if (!got.ok) {
    return readFailure(
      check,
      `the versioning of bucket "${bucket}"`,
      'getBucketVersioning',
      got.err,
      target
    )
  }
  if (got.value === 'Enabled') {
    return {
      check,
      status: 'ok',
      message: `Bucket "${bucket}" keeps object versions (rollback possible).`
    }
  }
  return {
    check,
    status: 'warning',
    message: `Versioning is ${got.value === 'Suspended' ? 'suspended' : 'not enabled'} on bucket "${bucket}": a model overwritten (\`overwrite: true\`) or deleted cannot be restored.`,
    fix:
      `\`aws s3api put-bucket-versioning --bucket ${bucket} --versioning-configuration Status=Enabled\` ` +
      '(a lifecycle rule with NoncurrentVersionExpiration bounds what old versions cost).'
  }
}

function lifecycleCheck(
  target: PreflightTarget,
  got: Read<LifecycleRule[] | undefined>
): PreflightFinding {
  const check = 'lifecycle'
  const { bucket, versionPrefix } = target
  const missing = awsErrorCode(got.err) === 'NoSuchLifecycleConfiguration'
  if (!got.ok && !missing) {
    return readFailure(
      check,
      `the lifecycle rules of bucket "${bucket}"`,
      'getLifecycleConfiguration',
      got.err,
      target
    )
  }
  const rule = (got.value ?? []).find((r) => abortsUploadsUnder(r, versionPrefix))
  if (rule) {
    return {
      check,
      status: 'ok',
      message: `Lifecycle rule "${rule.ID ?? '(no id)'}" aborts incomplete multipart uploads after ${rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation} day(s).`
    }
  }
  const newRule = JSON.stringify({
    ID: 'abort-incomplete-multipart-uploads',
    Status: 'Enabled',
    Filter: { Prefix: '' },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }
  })
  return {
    check,
    status: 'warning',
    message: `No enabled lifecycle rule of bucket "${bucket}" aborts incomplete multipart uploads under ${versionPrefix}/: the parts of an interrupted upload (a cancelled job, a lost runner) stay stored and billed, invisible to listings.`,
    fix: missing
      ? `\`aws s3api put-bucket-lifecycle-configuration --bucket ${bucket} --lifecycle-configuration '{"Rules":[${newRule}]}'\``
      : `Add this rule to the bucket's lifecycle rules (put-bucket-lifecycle-configuration replaces them all, so send the existing ones too: ` +
        `\`aws s3api get-bucket-lifecycle-configuration --bucket ${bucket}\`): ${newRule}`
  }
}

/** Whether an enabled rule aborts the incomplete multipart uploads of every key under the prefix. */
function abortsUploadsUnder(rule: LifecycleRule, versionPrefix: string): boolean {
  if (rule.Status !== 'Enabled') return false
  if (rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation === undefined) return false
  const filter = rule.Filter
  // A tag-filtered rule is not enough: release uploads carry no tags (only previews do).
  if (filter?.Tag || filter?.And?.Tags?.length) return false
  const prefix = filter?.Prefix ?? filter?.And?.Prefix ?? rule.Prefix ?? ''
  return `${versionPrefix}/`.startsWith(prefix)
}
