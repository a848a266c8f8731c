/**
 * The lifecycle rules setup keeps on the bucket, found again by their IDs, next to every rule of
 * the bucket's own: interrupted uploads are aborted, old versions and previews expire.
 */
import {
  GetBucketLifecycleConfigurationCommand,
  PutBucketLifecycleConfigurationCommand,
  type LifecycleRule,
  type TransitionDefaultMinimumObjectSize
} from '@aws-sdk/client-s3'
import { PREVIEW_TAG } from '../common/constants.js'
import { applyChanges, awsCall } from './aws-call.js'
import type { SetupChange, SetupContext } from './types.js'

/** The IDs of setup's rules (and of its CloudFormation template's), by which it finds them again. */
export const LIFECYCLE_RULE_IDS = {
  abortUploads: 'model-cdn-deploy-abort-incomplete-uploads',
  noncurrentVersions: 'model-cdn-deploy-noncurrent-versions',
  previews: 'model-cdn-deploy-previews'
} as const

export interface LifecycleDays {
  /** Days an overwritten or deleted object version is kept. */
  noncurrentVersionDays: number
  /** Days a pull request preview is kept. */
  previewDays: number
}

/** The bucket's lifecycle configuration as read (no rules when it has none). */
export interface LifecycleSettings {
  rules: LifecycleRule[]
  /** Sent back as read: PutBucketLifecycleConfiguration would reset it otherwise. */
  transitionDefaultMinimumObjectSize?: TransitionDefaultMinimumObjectSize
}

export async function readLifecycle(
  ctx: Pick<SetupContext, 'clients' | 'signal'>,
  bucket: string
): Promise<LifecycleSettings> {
  const got = await awsCall(
    ctx,
    {
      doing: `reading the lifecycle rules of bucket "${bucket}"`,
      permission: 's3:GetLifecycleConfiguration',
      bucket
    },
    (sendOptions) =>
      ctx.clients.s3.send(
        new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }),
        sendOptions
      ),
    ['NoSuchLifecycleConfiguration']
  )
  return {
    rules: got?.Rules ?? [],
    transitionDefaultMinimumObjectSize: got?.TransitionDefaultMinimumObjectSize
  }
}

/** Adds setup's rules that are missing and corrects those that differ; other rules are kept. */
export async function ensureLifecycleRules(
  ctx: SetupContext,
  bucket: string,
  current: LifecycleSettings,
  days: LifecycleDays
): Promise<void> {
  const { rules, changes } = mergeRules(current.rules, setupRules(days))
  const command = new PutBucketLifecycleConfigurationCommand({
    Bucket: bucket,
    LifecycleConfiguration: { Rules: rules.map(withFilter) },
    TransitionDefaultMinimumObjectSize: current.transitionDefaultMinimumObjectSize
  })
  await applyChanges(ctx, changes, () =>
    awsCall(
      ctx,
      {
        doing: `setting the lifecycle rules of bucket "${bucket}"`,
        permission: 's3:PutLifecycleConfiguration',
        bucket
      },
      (sendOptions) => ctx.clients.s3.send(command, sendOptions)
    )
  )
}

interface SetupRule {
  rule: LifecycleRule
  /** What it does, for a person. */
  does: string
}

function setupRules({ noncurrentVersionDays, previewDays }: LifecycleDays): SetupRule[] {
  const { key, value } = PREVIEW_TAG
  return [
    {
      // The whole bucket: S3 refuses AbortIncompleteMultipartUpload in a tag-filtered rule, and
      // release uploads carry no tag. Pre-flight's lifecycle check looks for this rule.
      rule: {
        ID: LIFECYCLE_RULE_IDS.abortUploads,
        Status: 'Enabled',
        Filter: { Prefix: '' },
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }
      },
      does: 'aborts incomplete multipart uploads after 1 day'
    },
    {
      // Versioning keeps every overwritten or deleted object: this bounds what they cost. A
      // delete marker whose last old version expired is removed too (it hides nothing any more).
      rule: {
        ID: LIFECYCLE_RULE_IDS.noncurrentVersions,
        Status: 'Enabled',
        Filter: { Prefix: '' },
        NoncurrentVersionExpiration: { NoncurrentDays: noncurrentVersionDays },
        Expiration: { ExpiredObjectDeleteMarker: true }
      },
      does: `deletes noncurrent object versions after ${noncurrentVersionDays} days`
    },
    {
      // Expiring a preview leaves a noncurrent version, which the rule above deletes later.
      rule: {
        ID: LIFECYCLE_RULE_IDS.previews,
        Status: 'Enabled',
        Filter: { Tag: { Key: key, Value: value } },
        Expiration: { Days: previewDays }
      },
      does: `expires objects tagged ${key}=${value} after ${previewDays} days`
    }
  ]
}

/** The bucket's rules with setup's added or corrected in place, and what that changed. */
function mergeRules(
  existing: LifecycleRule[],
  wanted: SetupRule[]
): { rules: LifecycleRule[]; changes: SetupChange[] } {
  const rules = [...existing]
  const changes: SetupChange[] = []
  for (const { rule, does } of wanted) {
    const at = rules.findIndex((r) => r.ID === rule.ID)
    if (at >= 0 && canonical(withFilter(rules[at])) === canonical(rule)) continue
    if (at >= 0) rules[at] = rule
    else rules.push(rule)
    changes.push({
      resource: 'bucket',
      action: 'update',
      detail: `lifecycle rule ${rule.ID} ${at >= 0 ? 'corrected' : 'added'} (${does})`
    })
  }
  return { rules, changes }
}

/**
 * A rule in the Filter form. The rule-level Prefix (the API's first form, deprecated) means the
 * same as a Filter with that Prefix, and a rule with neither applies to the whole bucket; so a
 * rule read back compares equal to the one written, and the configuration sent uses one form.
 */
function withFilter(rule: LifecycleRule): LifecycleRule {
  if (rule.Filter && Object.keys(rule.Filter).length > 0) return rule
  const { Prefix, ...rest } = rule
  return { ...rest, Filter: { Prefix: Prefix ?? '' } }
}

/** A value as JSON with its keys sorted, to compare what was read with what is wanted. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v
  )
}
