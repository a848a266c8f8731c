/**
 * The bucket policy of setup: CloudFront may read every object for this distribution only (its
 * Origin Access Control signs the requests), and nobody else may read anything. Every statement
 * of the bucket's own is kept, except a grant to anyone, which is removed.
 */
import { GetBucketPolicyCommand, PutBucketPolicyCommand } from '@aws-sdk/client-s3'
import { DeployError } from '../common/errors.js'
import { applyChanges, awsCall } from './aws-call.js'
import type { SetupChange, SetupContext } from './types.js'
import { record, strings } from '../common/json.js'

/** The Sid of setup's statement, by which a second run finds it again. */
export const CLOUDFRONT_READ_SID = 'ModelCdnDeployCloudFrontRead'

export interface BucketPolicyOptions {
  bucket: string
  /** Undefined only in a dry run that would create the distribution. */
  distributionArn?: string
  /** The bucket ARN's partition; by default the distribution ARN's, else `aws`. */
  partition?: string
}

interface PolicyDocument {
  Version?: unknown
  Statement?: unknown
  [field: string]: unknown
}

/** Where the policy stands and what setup changes in it. */
interface PolicyPlan {
  statements: unknown[]
  changes: SetupChange[]
}

/** Adds (or corrects) setup's statement and removes public grants; a second run changes nothing. */
export async function ensureBucketPolicy(
  ctx: SetupContext,
  opts: BucketPolicyOptions
): Promise<void> {
  const { bucket } = opts
  if (!ctx.dryRun && opts.distributionArn === undefined) {
    throw new Error('ensureBucketPolicy needs the distribution ARN outside a dry run.')
  }
  const current = await readPolicy(ctx, bucket)
  const plan = withoutPublicGrants(statementsOf(current))
  const { statements, changes } = withCloudFrontRead(plan, opts, current !== undefined)
  const policy = JSON.stringify({ Version: '2012-10-17', ...current, Statement: statements })
  await applyChanges(ctx, changes, () =>
    awsCall(
      ctx,
      {
        doing: `setting the policy of bucket "${bucket}"`,
        permission: 's3:PutBucketPolicy',
        bucket
      },
      (sendOptions) =>
        ctx.clients.s3.send(
          new PutBucketPolicyCommand({ Bucket: bucket, Policy: policy }),
          sendOptions
        )
    )
  )
}

/** The policy as read; undefined when the bucket has none (or, in a dry run, does not exist yet). */
async function readPolicy(ctx: SetupContext, bucket: string): Promise<PolicyDocument | undefined> {
  const got = await awsCall(
    ctx,
    { doing: `reading the policy of bucket "${bucket}"`, permission: 's3:GetBucketPolicy', bucket },
    (sendOptions) =>
      ctx.clients.s3.send(new GetBucketPolicyCommand({ Bucket: bucket }), sendOptions),
    ctx.dryRun ? ['NoSuchBucketPolicy', 'NoSuchBucket'] : ['NoSuchBucketPolicy']
  )
  const policy = got?.Policy
  if (!policy) return undefined
  let doc: unknown
  try {
    doc = JSON.parse(policy)
  } catch {
    // S3 stores only valid JSON; this guards against rewriting what could not be understood.
  }
  if (!record(doc)) {
    throw new DeployError(
      `The policy of bucket "${bucket}" is not a JSON object: setup will not rewrite it.`,
      `Look at it with \`aws s3api get-bucket-policy --bucket ${bucket}\` and fix it, then run setup again.`
    )
  }
  return doc as PolicyDocument
}

function statementsOf(doc: PolicyDocument | undefined): unknown[] {
  return doc?.Statement === undefined ? [] : [doc.Statement].flat()
}

/**
 * Removes each statement that allows anyone (Principal "*") with no condition limiting who. Such
 * a grant bypasses CloudFront (and its signed URLs); and ensureBucket turned BlockPublicPolicy on,
 * so S3 would refuse the new policy (403 AccessDenied) while it still held one.
 */
function withoutPublicGrants(statements: unknown[]): PolicyPlan {
  const changes = statements.flatMap((s, i) => {
    if (!isPublicGrant(s)) return []
    const sid = record(s)?.Sid
    const name = typeof sid === 'string' ? `"${sid}"` : `#${i + 1}`
    const actions = strings(record(s)?.Action).join(', ') || 'its actions'
    return [policyChange('update', `public statement ${name} removed (it let anyone ${actions})`)]
  })
  return { statements: statements.filter((s) => !isPublicGrant(s)), changes }
}

/** Adds setup's statement, or corrects it when it differs; an identical grant counts as it. */
function withCloudFrontRead(
  plan: PolicyPlan,
  opts: BucketPolicyOptions,
  hadPolicy: boolean
): PolicyPlan {
  const { statements, changes } = plan
  const at = statements.findIndex((s) => record(s)?.Sid === CLOUDFRONT_READ_SID)
  const action = hadPolicy ? 'update' : 'create'
  if (opts.distributionArn === undefined) {
    // A dry run before the distribution exists: what the statement will name is not known yet.
    const detail = `statement ${CLOUDFRONT_READ_SID} ${at >= 0 ? 'corrected' : 'added'} for the new distribution`
    return { statements, changes: [...changes, policyChange(action, detail)] }
  }
  const wanted = cloudFrontRead(opts.bucket, opts.distributionArn, opts.partition)
  const sameGrant = (s: unknown) => grantOf(s) === grantOf(wanted)
  if (at >= 0 ? sameGrant(statements[at]) : statements.some(sameGrant)) return plan
  const detail =
    `statement ${CLOUDFRONT_READ_SID} ${at >= 0 ? 'corrected' : 'added'}: cloudfront.amazonaws.com ` +
    `may read ${wanted.Resource} for ${opts.distributionArn} only`
  return {
    statements:
      at >= 0 ? statements.map((s, i) => (i === at ? wanted : s)) : [...statements, wanted],
    changes: [...changes, policyChange(action, detail)]
  }
}

/** What pre-flight's bucket-policy check asks for (src/cdn/preflight/bucket-policy.ts). */
function cloudFrontRead(bucket: string, distributionArn: string, partition?: string) {
  const arnPartition = partition ?? (distributionArn.split(':')[1] || 'aws')
  return {
    Sid: CLOUDFRONT_READ_SID,
    Effect: 'Allow',
    Principal: { Service: 'cloudfront.amazonaws.com' },
    Action: 's3:GetObject',
    Resource: `arn:${arnPartition}:s3:::${bucket}/*`,
    Condition: { StringEquals: { 'AWS:SourceArn': distributionArn } }
  }
}

function policyChange(action: SetupChange['action'], detail: string): SetupChange {
  return { resource: 'bucket-policy', action, detail }
}

/**
 * A statement's grant, comparable: its Sid left out, a one-element list the same as its element,
 * lists in any order, actions and condition keys in any case (IAM ignores case in both).
 */
function grantOf(statement: unknown): string {
  const grant: Record<string, unknown> = { ...record(statement), Sid: undefined }
  const condition = Object.entries(record(grant.Condition) ?? {}).map(([operator, block]) => [
    operator,
    Object.fromEntries(Object.entries(record(block) ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
  ])
  const normal = {
    ...grant,
    Action: strings(grant.Action).map((a) => a.toLowerCase()),
    Condition: grant.Condition === undefined ? undefined : Object.fromEntries(condition)
  }
  return JSON.stringify(normal, (_key, v: unknown) => {
    if (Array.isArray(v)) return v.length === 1 ? v[0] : [...v].sort()
    const r = record(v)
    return r ? Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1))) : v
  })
}

/**
 * Condition keys that, with fixed values (no wildcard, no policy variable), make a grant to "*"
 * not public for S3 ("The meaning of public" in the S3 User Guide): BlockPublicPolicy lets such a
 * statement be, so setup keeps it (e.g. access from one VPC endpoint).
 */
const PINNING_KEYS = new Set([
  'aws:sourcearn',
  'aws:sourceaccount',
  'aws:sourceowner',
  'aws:sourcevpc',
  'aws:sourcevpce',
  'aws:sourceip',
  'aws:sourceorgid',
  'aws:userid',
  'aws:principalarn',
  'aws:principalaccount',
  'aws:principalorgid',
  's3:x-amz-server-side-encryption-aws-kms-key-id',
  's3:dataaccesspointarn',
  's3:dataaccesspointaccount'
])
/** Operators that hold only for the values given (not a negation, not …IfExists). */
const PINNING_OPERATOR =
  /^(ForAnyValue:)?(StringEquals|StringEqualsIgnoreCase|StringLike|ArnEquals|ArnLike|IpAddress)$/i

function isPublicGrant(statement: unknown): boolean {
  const s = record(statement)
  if (s?.Effect !== 'Allow') return false
  const everyone =
    s.Principal === '*' ||
    Object.values(record(s.Principal) ?? {}).some((p) => strings(p).includes('*'))
  return everyone && !pinsWho(s.Condition)
}

function pinsWho(condition: unknown): boolean {
  const fixed = (v: string) => !/[*?]|\$\{/.test(v) && !v.endsWith('/0')
  return Object.entries(record(condition) ?? {}).some(
    ([operator, block]) =>
      PINNING_OPERATOR.test(operator) &&
      Object.entries(record(block) ?? {}).some(
        ([key, value]) =>
          PINNING_KEYS.has(key.toLowerCase()) &&
          strings(value).length > 0 &&
          strings(value).every(fixed)
      )
  )
}
