/**
 * Setup's CloudFront distribution in front of the bucket. Found again by its comment
 * (`model-cdn-deploy: <bucket>`), or as given (`distributionId`: adopted, and tagged so that a
 * later run finds it without the id); created when missing. An existing one is tightened: the
 * bucket's origins sign with our Origin Access Control, viewers are sent to HTTPS, HTTP/3 is on,
 * and the behaviours to sign trust our key group. Nothing is ever loosened or removed.
 */
import {
  CreateDistributionWithTagsCommand,
  GetDistributionCommand,
  ListDistributionsCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UpdateDistributionCommand,
  type CacheBehavior,
  type DefaultCacheBehavior,
  type DistributionConfig,
  type DistributionSummary,
  type Origin,
  type PriceClass
} from '@aws-sdk/client-cloudfront'
import { awsErrorCode, DeployError, InputError } from '../common/errors.js'
import { bucketRestDomain, parseS3Domain } from '../cdn/preflight/origin.js'
import { applyChanges, awsCall, listAll } from './aws-call.js'
import { SETUP_TAG, type SetupContext } from './types.js'

/**
 * The managed cache policy CachingOptimized: TTLs from 1 second to a year (a day by default, the
 * objects' Cache-Control rules), and neither cookies nor query strings in the cache key: right
 * for versioned keys whose bytes never change. Signed URLs need no query string in the key:
 * CloudFront checks the signature at the edge on every request, before it looks in the cache,
 * and removes Expires, Policy, Signature and Key-Pair-Id before forwarding to the origin
 * (CloudFront Developer Guide: "How signed URLs work"; "Query string parameters"), so every
 * signed URL of a file is served from one cached copy.
 */
export const CACHING_OPTIMIZED = '658327ea-f89d-4fab-a63d-7e88639e58f6'

export interface DistributionOptions {
  bucket: string
  /** The bucket's region: the origin is its regional REST endpoint. */
  region: string
  /** Undefined only in a dry run that would create it. */
  originAccessControlId?: string
  /** Undefined without signed URLs, or in a dry run that would create it. */
  keyGroupId?: string
  /** Whether viewers need signed URLs; by default, when a key group is given. */
  signedUrls?: boolean
  /** Only these paths need signed URLs (an extra cache behaviour); else every path does. */
  signedPathPattern?: string
  /** An alternate domain name, with an ACM certificate (us-east-1) for it. */
  domain?: string
  certificateArn?: string
  priceClass: PriceClass
  /** Adopt this distribution instead of finding or creating setup's own. */
  distributionId?: string
}

export interface SetupDistribution {
  id: string
  arn: string
  domain: string
}

interface FoundDistribution extends SetupDistribution {
  config: DistributionConfig
  etag?: string
}

type Behavior = DefaultCacheBehavior | CacheBehavior

const RESOURCE = 'distribution'
/** CloudFront takes certificates for alternate domain names from ACM in us-east-1 only. */
const ACM_US_EAST_1 = /^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate\/[\w-]+$/

export function distributionComment(bucket: string): string {
  return `model-cdn-deploy: ${bucket}`
}

/** The id of the bucket's origin in the distribution setup (or its template) creates. */
export function bucketOriginId(bucket: string): string {
  return `s3-${bucket}`
}

/**
 * Setup's distribution, created or tightened as needed; undefined in a dry run that would
 * create it.
 */
export async function ensureDistribution(
  ctx: SetupContext,
  options: DistributionOptions
): Promise<SetupDistribution | undefined> {
  checkAlternateDomain(options)
  requireIds(ctx, options)
  const found = options.distributionId
    ? await adoptDistribution(ctx, options.distributionId)
    : await findDistribution(ctx, options.bucket)
  if (!found) return createDistribution(ctx, options)
  await tightenDistribution(ctx, options, found)
  return { id: found.id, arn: found.arn, domain: found.domain }
}

function checkAlternateDomain({ domain, certificateArn }: DistributionOptions): void {
  if (!domain && !certificateArn) return
  if (!domain || !certificateArn) {
    throw new InputError(
      'An alternate domain name needs a certificate, and a certificate a domain name.',
      'Give both --domain and --certificate-arn (an ACM certificate in us-east-1 that covers the domain), or neither.'
    )
  }
  if (!ACM_US_EAST_1.test(certificateArn)) {
    throw new InputError(
      '--certificate-arn is not the ARN of an ACM certificate in us-east-1.',
      'CloudFront takes certificates from ACM in us-east-1 only: request or import it there (arn:aws:acm:us-east-1:<account>:certificate/<id>).'
    )
  }
}

/** Only a dry run may lack them: without them, tightening would clear an origin's OAC. */
function requireIds(ctx: SetupContext, options: DistributionOptions): void {
  if (ctx.dryRun) return
  if (!options.originAccessControlId || (signsUrls(options) && !options.keyGroupId)) {
    throw new Error(
      'Outside a dry run, the distribution needs the ids of the Origin Access Control and, for signed URLs, of the key group.'
    )
  }
}

/** Setup's distribution of the bucket: by its comment, else an adopted one by its tag. */
async function findDistribution(
  ctx: SetupContext,
  bucket: string
): Promise<FoundDistribution | undefined> {
  const all = await listDistributions(ctx)
  const commented = all.filter((d) => d.Comment === distributionComment(bucket))
  if (commented.length > 1) {
    throw new DeployError(
      `Several distributions have setup's comment "${distributionComment(bucket)}": ${commented.map((d) => d.Id).join(', ')}.`,
      'Run setup with --distribution-id <id> to choose one; change the comment of the others.'
    )
  }
  if (commented[0]?.Id) return readDistribution(ctx, commented[0].Id)
  const serving = all.filter((d) => (d.Origins?.Items ?? []).some((o) => isBucket(o, bucket)))
  for (const d of serving) {
    if (d.Id && d.ARN && (await hasSetupTag(ctx, d.ARN))) return readDistribution(ctx, d.Id)
  }
  if (serving.length > 0) {
    ctx.logger.warning(
      `Distribution(s) ${serving.map((d) => d.Id).join(', ')} already serve bucket "${bucket}" but were not set up by model-cdn-deploy: setup creates its own. To use one of them instead, run setup with --distribution-id <id>.`
    )
  }
  return undefined
}

function listDistributions(ctx: SetupContext): Promise<DistributionSummary[]> {
  return listAll(async (marker) => {
    const { DistributionList: list } = await awsCall(
      ctx,
      { doing: 'listing the CloudFront distributions', permission: 'cloudfront:ListDistributions' },
      (sendOptions) =>
        ctx.clients.cloudfront.send(new ListDistributionsCommand({ Marker: marker }), sendOptions)
    )
    return list
  })
}

function isBucket(origin: Origin, bucket: string): boolean {
  return parseS3Domain(origin.DomainName ?? '')?.bucket === bucket
}

async function hasSetupTag(ctx: SetupContext, arn: string): Promise<boolean> {
  const { Tags: tags } = await awsCall(
    ctx,
    { doing: `reading the tags of ${arn}`, permission: 'cloudfront:ListTagsForResource' },
    (sendOptions) =>
      ctx.clients.cloudfront.send(new ListTagsForResourceCommand({ Resource: arn }), sendOptions)
  )
  return (tags?.Items ?? []).some((t) => t.Key === SETUP_TAG.key && t.Value === SETUP_TAG.value)
}

async function readDistribution(ctx: SetupContext, id: string): Promise<FoundDistribution> {
  const got = await awsCall(
    ctx,
    { doing: `reading distribution ${id}`, permission: 'cloudfront:GetDistribution' },
    (sendOptions) =>
      ctx.clients.cloudfront
        .send(new GetDistributionCommand({ Id: id }), sendOptions)
        .catch((err: unknown) => {
          throw awsErrorCode(err) === 'NoSuchDistribution' ? noSuchDistribution(id, err) : err
        })
  )
  const d = got.Distribution
  if (!d?.ARN || !d.DomainName || !d.DistributionConfig) {
    throw new DeployError(`GetDistribution ${id} returned no ARN, domain or configuration.`)
  }
  return { id, arn: d.ARN, domain: d.DomainName, config: d.DistributionConfig, etag: got.ETag }
}

function noSuchDistribution(id: string, cause: unknown): InputError {
  return new InputError(
    `Distribution ${id} does not exist, or belongs to another account than these credentials.`,
    'Give --distribution-id the ID of a distribution (like E2ABCDEFGHIJKL, see `aws cloudfront list-distributions`), or leave it out to let setup create one.',
    { cause }
  )
}

/** The distribution given: read, and tagged as setup's so that a later run finds it without its id. */
async function adoptDistribution(ctx: SetupContext, id: string): Promise<FoundDistribution> {
  const found = await readDistribution(ctx, id)
  if (!(await hasSetupTag(ctx, found.arn))) {
    const change = {
      resource: RESOURCE,
      action: 'update' as const,
      detail: `${id}: tag ${SETUP_TAG.key}=${SETUP_TAG.value} added, so setup finds it again`
    }
    await applyChanges(ctx, [change], () =>
      awsCall(
        ctx,
        { doing: `tagging distribution ${id}`, permission: 'cloudfront:TagResource' },
        (sendOptions) =>
          ctx.clients.cloudfront.send(
            new TagResourceCommand({
              Resource: found.arn,
              Tags: { Items: [{ Key: SETUP_TAG.key, Value: SETUP_TAG.value }] }
            }),
            sendOptions
          )
      )
    )
  }
  return found
}

function signsUrls(options: DistributionOptions): boolean {
  return options.signedUrls ?? options.keyGroupId !== undefined
}

async function createDistribution(
  ctx: SetupContext,
  options: DistributionOptions
): Promise<SetupDistribution | undefined> {
  const change = { resource: RESOURCE, action: 'create' as const, detail: describeNew(options) }
  const created = await applyChanges(ctx, [change], () =>
    awsCall(
      ctx,
      {
        doing: `creating the distribution of bucket ${options.bucket}`,
        permission: 'cloudfront:CreateDistribution and cloudfront:TagResource'
      },
      (sendOptions) =>
        ctx.clients.cloudfront.send(
          new CreateDistributionWithTagsCommand({
            DistributionConfigWithTags: {
              DistributionConfig: newDistributionConfig(options),
              Tags: { Items: [{ Key: SETUP_TAG.key, Value: SETUP_TAG.value }] }
            }
          }),
          sendOptions
        )
    )
  )
  if (!created) return undefined
  const d = created.Distribution
  if (!d?.Id || !d.ARN || !d.DomainName) {
    throw new DeployError('CreateDistributionWithTags returned no id, ARN or domain.')
  }
  return { id: d.Id, arn: d.ARN, domain: d.DomainName }
}

/** The new distribution, for a person: one change detail. */
function describeNew(options: DistributionOptions): string {
  const { bucket, region, originAccessControlId, keyGroupId, signedPathPattern } = options
  const signing = signsUrls(options)
    ? `signed URLs (key group ${keyGroupId ?? 'to be created'}) required for ${signedPathPattern ? `"${signedPathPattern}"` : 'every path'}`
    : 'no signed URLs'
  return (
    `"${distributionComment(bucket)}": origin ${bucketRestDomain({ bucket, region })} with Origin Access Control ${originAccessControlId ?? '(to be created)'}, ` +
    `HTTPS (redirect), HTTP/2 and 3, CachingOptimized, ${signing}, ${options.priceClass}` +
    (options.domain ? `, alternate domain ${options.domain}` : '')
  )
}

/** The configuration setup creates: one private bucket origin, read with our OAC. */
export function newDistributionConfig(options: DistributionOptions): DistributionConfig {
  const { bucket, region, originAccessControlId, keyGroupId, signedPathPattern } = options
  if (!originAccessControlId) throw new Error('A new distribution needs the Origin Access Control.')
  const trusted = signsUrls(options) ? keyGroupId : undefined
  if (signsUrls(options) && !trusted) throw new Error('Signed URLs need the key group.')
  const originId = bucketOriginId(bucket)
  const origin: Origin = {
    Id: originId,
    DomainName: bucketRestDomain({ bucket, region }),
    S3OriginConfig: { OriginAccessIdentity: '' },
    OriginAccessControlId: originAccessControlId
  }
  return {
    // Unique per create, and the same across the SDK's retries of it.
    CallerReference: `model-cdn-deploy-${bucket}-${Date.now()}`,
    Comment: distributionComment(bucket),
    Enabled: true,
    PriceClass: options.priceClass,
    HttpVersion: 'http2and3',
    IsIPV6Enabled: true,
    Origins: { Quantity: 1, Items: [origin] },
    DefaultCacheBehavior: cacheBehavior(originId, signedPathPattern ? undefined : trusted),
    CacheBehaviors:
      signedPathPattern && trusted
        ? {
            Quantity: 1,
            Items: [{ PathPattern: signedPathPattern, ...cacheBehavior(originId, trusted) }]
          }
        : { Quantity: 0 },
    ...viewerCertificate(options)
  }
}

function cacheBehavior(originId: string, keyGroupId: string | undefined): DefaultCacheBehavior {
  const methods = { Quantity: 2, Items: ['GET' as const, 'HEAD' as const] }
  return {
    TargetOriginId: originId,
    ViewerProtocolPolicy: 'redirect-to-https',
    CachePolicyId: CACHING_OPTIMIZED,
    AllowedMethods: { ...methods, CachedMethods: methods },
    Compress: true,
    TrustedKeyGroups: keyGroupId
      ? { Enabled: true, Quantity: 1, Items: [keyGroupId] }
      : { Enabled: false, Quantity: 0 }
  }
}

function viewerCertificate({
  domain,
  certificateArn
}: DistributionOptions): Pick<DistributionConfig, 'Aliases' | 'ViewerCertificate'> {
  if (!domain || !certificateArn) {
    return { Aliases: { Quantity: 0 }, ViewerCertificate: { CloudFrontDefaultCertificate: true } }
  }
  return {
    Aliases: { Quantity: 1, Items: [domain] },
    ViewerCertificate: {
      ACMCertificateArn: certificateArn,
      SSLSupportMethod: 'sni-only',
      MinimumProtocolVersion: 'TLSv1.2_2021'
    }
  }
}

/** Sends the tightened configuration, if anything was loose; one recorded change per field. */
async function tightenDistribution(
  ctx: SetupContext,
  options: DistributionOptions,
  found: FoundDistribution
): Promise<void> {
  const config = structuredClone(found.config)
  const changes = tightenConfig(config, options).map((detail) => ({
    resource: RESOURCE,
    action: 'update' as const,
    detail: `${found.id}: ${detail}`
  }))
  await applyChanges(ctx, changes, () =>
    awsCall(
      ctx,
      { doing: `updating distribution ${found.id}`, permission: 'cloudfront:UpdateDistribution' },
      (sendOptions) =>
        ctx.clients.cloudfront.send(
          new UpdateDistributionCommand({
            Id: found.id,
            IfMatch: found.etag,
            DistributionConfig: config
          }),
          sendOptions
        )
    )
  )
}

/**
 * Tightens the configuration in place: what it changed, one detail per field. Behaviours that
 * serve other origins are left as they are: they are not setup's to change.
 */
export function tightenConfig(config: DistributionConfig, options: DistributionOptions): string[] {
  const origins = bucketOrigins(config, options)
  const behaviors = bucketBehaviors(config, origins)
  return [
    ...origins.flatMap((o) => attachOac(o, options.originAccessControlId)),
    ...behaviors.flatMap(([label, b]) => requireHttps(label, b)),
    ...enableHttp3(config),
    ...(signsUrls(options) ? trustKeyGroup(config, behaviors, origins[0], options) : [])
  ]
}

/** The bucket's REST origins (an OAC cannot sign for a website endpoint); an error without any. */
function bucketOrigins(
  config: DistributionConfig,
  { bucket, region }: DistributionOptions
): Origin[] {
  const origins = (config.Origins?.Items ?? []).filter(
    (o) => isBucket(o, bucket) && !parseS3Domain(o.DomainName ?? '')?.website
  )
  if (origins.length === 0) {
    throw new DeployError(
      `The distribution has no origin for bucket "${bucket}" (its REST endpoint ${bucketRestDomain({ bucket, region })}).`,
      'Setup does not re-route an existing distribution: add that origin and point the behaviours at it yourself, or leave --distribution-id out to let setup create its own distribution.'
    )
  }
  return origins
}

/** The behaviours that send requests to the bucket, directly or through an origin group. */
function bucketBehaviors(config: DistributionConfig, origins: Origin[]): [string, Behavior][] {
  const targets = new Set(origins.map((o) => o.Id))
  for (const group of config.OriginGroups?.Items ?? []) {
    if (group.Members?.Items?.some((m) => targets.has(m.OriginId))) targets.add(group.Id)
  }
  const all: [string, Behavior][] = [
    ...(config.CacheBehaviors?.Items ?? []).map((b): [string, Behavior] => [
      `cache behavior "${b.PathPattern}"`,
      b
    ]),
    ...(config.DefaultCacheBehavior
      ? [['default cache behavior', config.DefaultCacheBehavior] as [string, Behavior]]
      : [])
  ]
  return all.filter(([, b]) => targets.has(b.TargetOriginId))
}

/**
 * Our OAC on a bucket origin. A legacy origin access identity goes at the same time: CloudFront
 * refuses an origin with both (IllegalOriginAccessConfiguration). That loosens nothing: the
 * OAC signs every request as this distribution, the bucket policy still decides what it may
 * read, and the OAI's own grant stays in the policy (setup deletes nothing), unused.
 */
function attachOac(origin: Origin, oacId: string | undefined): string[] {
  if (oacId !== undefined && origin.OriginAccessControlId === oacId) return []
  const was = origin.OriginAccessControlId || 'none'
  const details = [
    `origin "${origin.Id}": Origin Access Control ${was} → ${oacId ?? 'the new one'}`
  ]
  origin.OriginAccessControlId = oacId
  const oai = origin.S3OriginConfig?.OriginAccessIdentity
  if (oai) {
    origin.S3OriginConfig = { ...origin.S3OriginConfig, OriginAccessIdentity: '' }
    details.push(
      `origin "${origin.Id}": origin access identity ${oai} replaced by the Origin Access Control`
    )
  }
  return details
}

/** HTTP is redirected to HTTPS; `https-only` stays (it is tighter). */
function requireHttps(label: string, behavior: Behavior): string[] {
  if (behavior.ViewerProtocolPolicy !== 'allow-all') return []
  behavior.ViewerProtocolPolicy = 'redirect-to-https'
  return [`${label}: viewer protocol allow-all → redirect-to-https`]
}

function enableHttp3(config: DistributionConfig): string[] {
  const was = config.HttpVersion
  if (was !== 'http1.1' && was !== 'http2') return []
  config.HttpVersion = 'http2and3'
  return [`HTTP version ${was} → http2and3`]
}

/**
 * Our key group on the behaviours to sign: the one of `signedPathPattern` (added, first, when
 * missing), else every behaviour serving the bucket. Other trusted groups stay.
 */
function trustKeyGroup(
  config: DistributionConfig,
  behaviors: [string, Behavior][],
  origin: Origin,
  { keyGroupId, signedPathPattern }: DistributionOptions
): string[] {
  if (!signedPathPattern)
    return behaviors.flatMap(([label, b]) => addKeyGroup(label, b, keyGroupId))
  const label = `cache behavior "${signedPathPattern}"`
  const existing = config.CacheBehaviors?.Items?.find((b) => b.PathPattern === signedPathPattern)
  if (existing) return addKeyGroup(label, existing, keyGroupId)
  // First: CloudFront uses the first behaviour whose pattern matches a path.
  const items = [
    { PathPattern: signedPathPattern, ...cacheBehavior(origin.Id ?? '', keyGroupId) },
    ...(config.CacheBehaviors?.Items ?? [])
  ]
  config.CacheBehaviors = { Quantity: items.length, Items: items }
  return [`${label} added, requiring signed URLs (key group ${keyGroupId ?? 'to be created'})`]
}

function addKeyGroup(label: string, behavior: Behavior, keyGroupId: string | undefined): string[] {
  const trusted = behavior.TrustedKeyGroups
  if (keyGroupId !== undefined && trusted?.Enabled && trusted.Items?.includes(keyGroupId)) return []
  const items = [...(trusted?.Items ?? []), ...(keyGroupId ? [keyGroupId] : [])]
  behavior.TrustedKeyGroups = { Enabled: true, Quantity: items.length, Items: items }
  return [`${label}: trusts key group ${keyGroupId ?? '(to be created)'}, requiring signed URLs`]
}
