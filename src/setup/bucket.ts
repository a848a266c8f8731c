/**
 * The bucket of setup: checked before anything is changed anywhere (a valid name, not another
 * account's, in the region given), then created when missing and tightened: all public access
 * blocked, versioning on, the lifecycle rules of bucket-lifecycle.ts, the setup tag. Its policy,
 * which needs the distribution, is bucket-policy.ts.
 */
import {
  CreateBucketCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  PutBucketTaggingCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand,
  type BucketLocationConstraint,
  type BucketVersioningStatus,
  type PublicAccessBlockConfiguration,
  type Tag
} from '@aws-sdk/client-s3'
import { DeployError, InputError, explainAwsError, httpStatusOf } from '../common/errors.js'
import {
  ensureLifecycleRules,
  readLifecycle,
  type LifecycleDays,
  type LifecycleSettings
} from './bucket-lifecycle.js'
import { applyChanges, awsCall } from './aws-call.js'
import { SETUP_TAG, type SetupChange, type SetupClients, type SetupContext } from './types.js'

export interface BucketLocation {
  bucket: string
  /** The region setup runs in (`--aws-region`). */
  region: string
}

/**
 * Read only: whether the bucket exists. Fails when the name is not a valid bucket name, when the
 * bucket is another account's, or when it is in another region.
 */
export async function inspectBucket(
  clients: Pick<SetupClients, 's3'>,
  { bucket, region }: BucketLocation,
  signal?: AbortSignal
): Promise<{ exists: boolean }> {
  checkBucketName(bucket)
  const head = await headBucket(clients, bucket, signal)
  if (head.status === 404) return { exists: false }
  if (head.status === 403) {
    throw new DeployError(
      `Bucket "${bucket}" exists but is owned by another account or not readable by these credentials (HeadBucket answered 403).`,
      `Bucket names are global across all AWS accounts: choose another --bucket name. If the bucket is yours, allow s3:ListBucket on it to the identity setup runs as.`
    )
  }
  if (head.region !== undefined && head.region !== region) {
    throw new DeployError(
      `Bucket "${bucket}" is in ${head.region}, not in ${region}.`,
      `Pass --aws-region ${head.region} (a bucket cannot move to another region), or choose another --bucket name to create one in ${region}.`
    )
  }
  if (head.status === 301) {
    throw new DeployError(
      `Bucket "${bucket}" is in another region than ${region} (S3 answered 301 without naming it).`,
      `Pass the bucket's region with --aws-region (the S3 console lists it).`
    )
  }
  if (head.err !== undefined) {
    throw explainAwsError(head.err, { action: `looking up bucket "${bucket}"`, bucket })
  }
  return { exists: true }
}

/** HeadBucket's answer: its HTTP status and the bucket's region, also when it is an error. */
async function headBucket(
  clients: Pick<SetupClients, 's3'>,
  bucket: string,
  signal: AbortSignal | undefined
): Promise<{ status: number; region?: string; err?: unknown }> {
  try {
    const head = await clients.s3.send(new HeadBucketCommand({ Bucket: bucket }), {
      abortSignal: signal
    })
    return { status: 200, region: head.BucketRegion }
  } catch (err) {
    const status = httpStatusOf(err)
    if (status === undefined) {
      throw explainAwsError(err, { action: `looking up bucket "${bucket}"`, bucket })
    }
    // S3 names the bucket's region in a header of its error answers too (a 301 from another region).
    const headers = (err as { $response?: { headers?: Record<string, string> } }).$response?.headers
    return { status, region: headers?.['x-amz-bucket-region'], err }
  }
}

/** S3's naming rules for general purpose buckets: what each one requires, and its test. */
const BUCKET_NAME_RULES: [string, (name: string) => boolean][] = [
  ['it must be 3 to 63 characters long', (n) => n.length >= 3 && n.length <= 63],
  ['it may hold only lower-case letters, digits, dots and hyphens', (n) => /^[a-z0-9.-]*$/.test(n)],
  ['it must start and end with a letter or a digit', (n) => /^[a-z0-9](.*[a-z0-9])?$/.test(n)],
  ['it must not hold two dots in a row', (n) => !n.includes('..')],
  ['it must not look like an IP address', (n) => !/^\d+\.\d+\.\d+\.\d+$/.test(n)],
  [
    'it must not start with xn--, sthree- or amzn-s3-demo- (reserved by AWS)',
    (n) => !/^(xn--|sthree-|amzn-s3-demo-)/.test(n)
  ],
  [
    'it must not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3 (reserved by AWS)',
    (n) => !/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(n)
  ]
]

function checkBucketName(bucket: string): void {
  const broken = BUCKET_NAME_RULES.find(([, holds]) => !holds(bucket))
  if (broken) {
    throw new InputError(
      `--bucket "${bucket}" is not a valid S3 bucket name: ${broken[0]}.`,
      'Give the name only (not an ARN or s3:// URL), e.g. my-org-models.'
    )
  }
}

export interface EnsureBucketOptions extends BucketLocation, LifecycleDays {
  /** What inspectBucket found. */
  exists: boolean
}

/** The settings ensureBucket tightens, as read. */
interface BucketSettings {
  publicAccess?: PublicAccessBlockConfiguration
  versioning?: BucketVersioningStatus
  lifecycle: LifecycleSettings
  tags: Tag[]
}

/** A bucket just created (or, in a dry run, to be created) has none of them. */
const NEW_BUCKET: BucketSettings = { lifecycle: { rules: [] }, tags: [] }

/** Creates the bucket when missing, then tightens its settings; a second run changes nothing. */
export async function ensureBucket(ctx: SetupContext, opts: EnsureBucketOptions): Promise<void> {
  const { bucket } = opts
  if (!opts.exists) await createBucket(ctx, opts)
  const settings = opts.exists ? await readSettings(ctx, bucket) : NEW_BUCKET
  // Public access first: the bucket is never open while the rest is being set.
  await blockPublicAccess(ctx, bucket, settings.publicAccess)
  await enableVersioning(ctx, bucket, settings.versioning)
  await ensureLifecycleRules(ctx, bucket, settings.lifecycle, opts)
  await tagBucket(ctx, bucket, settings.tags)
}

async function createBucket(ctx: SetupContext, { bucket, region }: BucketLocation): Promise<void> {
  // us-east-1 is S3's default location and refuses to be named as a LocationConstraint.
  const location =
    region === 'us-east-1' ? undefined : { LocationConstraint: region as BucketLocationConstraint }
  const command = new CreateBucketCommand({
    Bucket: bucket,
    CreateBucketConfiguration: location,
    ObjectOwnership: 'BucketOwnerEnforced'
  })
  const change = {
    resource: 'bucket',
    action: 'create' as const,
    detail: `s3://${bucket} in ${region}, ACLs disabled (objects owned by the bucket owner)`
  }
  await applyChanges(ctx, [change], () =>
    awsCall(
      ctx,
      { doing: `creating bucket "${bucket}"`, permission: 's3:CreateBucket', bucket },
      (sendOptions) => ctx.clients.s3.send(command, sendOptions)
    )
  )
}

async function readSettings(ctx: SetupContext, bucket: string): Promise<BucketSettings> {
  const { s3 } = ctx.clients
  const [publicAccess, versioning, lifecycle, tags] = await Promise.all([
    awsCall(
      ctx,
      {
        doing: `reading the public access block of bucket "${bucket}"`,
        permission: 's3:GetBucketPublicAccessBlock',
        bucket
      },
      (sendOptions) => s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket }), sendOptions),
      ['NoSuchPublicAccessBlockConfiguration']
    ),
    awsCall(
      ctx,
      {
        doing: `reading the versioning of bucket "${bucket}"`,
        permission: 's3:GetBucketVersioning',
        bucket
      },
      (sendOptions) => s3.send(new GetBucketVersioningCommand({ Bucket: bucket }), sendOptions)
    ),
    readLifecycle(ctx, bucket),
    awsCall(
      ctx,
      {
        doing: `reading the tags of bucket "${bucket}"`,
        permission: 's3:GetBucketTagging',
        bucket
      },
      (sendOptions) => s3.send(new GetBucketTaggingCommand({ Bucket: bucket }), sendOptions),
      ['NoSuchTagSet']
    )
  ])
  return {
    publicAccess: publicAccess?.PublicAccessBlockConfiguration,
    versioning: versioning.Status,
    lifecycle,
    tags: tags?.TagSet ?? []
  }
}

const bucketUpdate = (detail: string): SetupChange => ({
  resource: 'bucket',
  action: 'update',
  detail
})

const PUBLIC_ACCESS_FLAGS = [
  'BlockPublicAcls',
  'IgnorePublicAcls',
  'BlockPublicPolicy',
  'RestrictPublicBuckets'
] as const

/** Turns on each of the four flags that is off; one that is on is never turned off. */
async function blockPublicAccess(
  ctx: SetupContext,
  bucket: string,
  current: PublicAccessBlockConfiguration | undefined
): Promise<void> {
  const off = PUBLIC_ACCESS_FLAGS.filter((flag) => current?.[flag] !== true)
  const changes = off.length ? [bucketUpdate(`public access blocked (${off.join(', ')} on)`)] : []
  const allOn = Object.fromEntries(PUBLIC_ACCESS_FLAGS.map((flag) => [flag, true]))
  await applyChanges(ctx, changes, () =>
    awsCall(
      ctx,
      {
        doing: `blocking public access of bucket "${bucket}"`,
        permission: 's3:PutBucketPublicAccessBlock',
        bucket
      },
      (sendOptions) =>
        ctx.clients.s3.send(
          new PutPublicAccessBlockCommand({
            Bucket: bucket,
            PublicAccessBlockConfiguration: allOn
          }),
          sendOptions
        )
    )
  )
}

async function enableVersioning(
  ctx: SetupContext,
  bucket: string,
  current: BucketVersioningStatus | undefined
): Promise<void> {
  const changes =
    current === 'Enabled'
      ? []
      : [bucketUpdate(`versioning Enabled${current ? ` (was ${current})` : ''}`)]
  await applyChanges(ctx, changes, () =>
    awsCall(
      ctx,
      {
        doing: `enabling versioning of bucket "${bucket}"`,
        permission: 's3:PutBucketVersioning',
        bucket
      },
      (sendOptions) =>
        ctx.clients.s3.send(
          new PutBucketVersioningCommand({
            Bucket: bucket,
            VersioningConfiguration: { Status: 'Enabled' }
          }),
          sendOptions
        )
    )
  )
}

/** Adds SETUP_TAG; PutBucketTagging replaces every tag, so the bucket's others are sent too. */
async function tagBucket(ctx: SetupContext, bucket: string, current: Tag[]): Promise<void> {
  const tagged = current.some((t) => t.Key === SETUP_TAG.key && t.Value === SETUP_TAG.value)
  const changes = tagged ? [] : [bucketUpdate(`tag ${SETUP_TAG.key}=${SETUP_TAG.value} added`)]
  const TagSet = [
    ...current.filter((t) => t.Key !== SETUP_TAG.key),
    { Key: SETUP_TAG.key, Value: SETUP_TAG.value }
  ]
  await applyChanges(ctx, changes, () =>
    awsCall(
      ctx,
      { doing: `tagging bucket "${bucket}"`, permission: 's3:PutBucketTagging', bucket },
      (sendOptions) =>
        ctx.clients.s3.send(
          new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet } }),
          sendOptions
        )
    )
  )
}
