/**
 * Pre-flight: read-only checks, before the first upload, that the bucket and the distribution are
 * set up so the models end up private and reachable. Each finding says what is wrong and how to
 * fix it. Severity follows one rule: `error` when every request for the deployed models would
 * fail (AccessDenied, 403, wrong origin) or a private setup would serve them to anyone; `warning`
 * when the deploy works but something is weaker than the documented setup (rollback, cleanup,
 * legacy OAI). A check the credentials may not read is `unchecked`, never a failure.
 */
import {
  GetKeyGroupCommand,
  GetOriginAccessControlCommand,
  GetPublicKeyCommand,
  ListKeyGroupsCommand,
  type CacheBehavior,
  type CloudFrontClient,
  type DistributionConfig,
  type GetDistributionCommandOutput,
  type KeyGroup,
  type Origin
} from '@aws-sdk/client-cloudfront'
import {
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  type LifecycleRule,
  type S3Client
} from '@aws-sdk/client-s3'
import { requestDistribution } from './distribution.js'
import { DeployError, awsErrorCode, explainAwsError } from '../common/errors.js'
import { toInvalidationPath } from './invalidation.js'

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

export type PreflightCheck =
  | 'bucket'
  | 'distribution'
  | 'origin'
  | 'origin-access-control'
  | 'bucket-policy'
  | 'signed-urls'
  | 'public-access-block'
  | 'versioning'
  | 'lifecycle'

/** The order findings are reported in: from the distribution down to the bucket. */
const CHECK_ORDER: PreflightCheck[] = [
  'bucket',
  'distribution',
  'origin',
  'origin-access-control',
  'bucket-policy',
  'signed-urls',
  'public-access-block',
  'versioning',
  'lifecycle'
]

export type PreflightStatus = 'ok' | 'warning' | 'error' | 'unchecked'

export interface PreflightFinding {
  check: PreflightCheck
  status: PreflightStatus
  message: string
  /** What to do, concretely (a policy statement, a CLI command, a console path). */
  fix?: string
}

export interface PreflightTarget {
  bucket: string
  /** The bucket's region (`aws-region`). */
  region: string
  /** Without it only the bucket's own settings are checked. */
  distributionId?: string
  /** Normalised: no leading or trailing `/`. */
  versionPrefix: string
  /** The CloudFront public key ID URLs are signed with, when signing is configured. */
  signingKeyPairId?: string
}

export interface PreflightClients {
  s3: S3Client
  cloudfront: CloudFrontClient
}

export interface PreflightOptions {
  signal?: AbortSignal
  /** GetDistribution already sent for the target's distribution (requestDistribution). */
  distribution?: Promise<GetDistributionCommandOutput>
}

type Permission = keyof typeof PREFLIGHT_PERMISSIONS
type Read<T> =
  { ok: true; value: T; err?: undefined } | { ok: false; value?: undefined; err: unknown }

function read<T>(promise: Promise<T>): Promise<Read<T>> {
  return promise.then(
    (value) => ({ ok: true, value }),
    (err: unknown) => ({ ok: false, err })
  )
}

const DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'Forbidden'])
/** S3 errors that mean the bucket itself is wrong, not one of its settings. */
const BUCKET_UNREACHABLE = new Set([
  'NoSuchBucket',
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'IllegalLocationConstraintException'
])

/** A read that failed: "could not check" (with the permission when it was denied), never an error. */
function readFailure(
  check: PreflightCheck,
  what: string,
  permission: Permission,
  err: unknown,
  target: PreflightTarget
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

// --- Patterns: CloudFront path patterns and IAM ARN/action patterns (`*` any run, `?` one char) ---

/** Positions in the pattern reachable after matching all of `text`. */
function globPositions(pattern: string[], text: string): Set<number> {
  const close = (set: Set<number>): Set<number> => {
    // A Set iterates over what is added during iteration: this is the closure over `*`.
    for (const i of set) if (pattern[i] === '*') set.add(i + 1)
    return set
  }
  let states = close(new Set([0]))
  for (const char of text) {
    const next = new Set<number>()
    for (const i of states) {
      if (pattern[i] === '*') next.add(i)
      else if (pattern[i] === '?' || pattern[i] === char) next.add(i + 1)
    }
    states = close(next)
    if (states.size === 0) break
  }
  return states
}

function globMatch(pattern: string, text: string): boolean {
  const chars = [...pattern]
  return globPositions(chars, text).has(chars.length)
}

/**
 * Which strings that start with `base` (and go on) a `*`/`?` pattern matches: `all` of them, only
 * `some`, or `none`. Case-sensitive, as CloudFront path patterns and IAM resources are.
 */
export function patternCoverage(pattern: string, base: string): 'all' | 'some' | 'none' {
  const chars = [...pattern]
  const states = [...globPositions(chars, base)].filter((i) => i < chars.length)
  if (states.some((i) => chars.slice(i).every((c) => c === '*'))) return 'all'
  return states.length > 0 ? 'some' : 'none'
}

// --- Distribution: which behaviours serve the version prefix, which origin they use ---

type Behavior = Pick<CacheBehavior, 'TargetOriginId' | 'TrustedKeyGroups' | 'TrustedSigners'>

export interface ServingBehavior {
  /** `the default cache behavior` or `cache behavior "<path pattern>"`. */
  label: string
  behavior: Behavior
}

/**
 * The cache behaviours that serve keys under the version prefix, in CloudFront's order: every
 * behaviour whose path pattern matches some of them, up to the first that matches all, else
 * the default behaviour too.
 */
export function servingBehaviors(
  config: DistributionConfig,
  versionPrefix: string
): ServingBehavior[] {
  const base = `${toInvalidationPath(versionPrefix)}/`
  const serving: ServingBehavior[] = []
  for (const behavior of config.CacheBehaviors?.Items ?? []) {
    const pattern = behavior.PathPattern ?? ''
    // The leading `/` of a path pattern is optional.
    const coverage = patternCoverage(pattern.startsWith('/') ? pattern : `/${pattern}`, base)
    if (coverage === 'none') continue
    serving.push({ label: `cache behavior "${pattern}"`, behavior })
    if (coverage === 'all') return serving
  }
  if (config.DefaultCacheBehavior) {
    serving.push({ label: 'the default cache behavior', behavior: config.DefaultCacheBehavior })
  }
  return serving
}

interface S3Domain {
  bucket: string
  region?: string
  website: boolean
}

const S3_WEBSITE = /^(.+)\.s3-website[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/
const S3_REST = [
  /^(.+)\.s3\.amazonaws\.com$/,
  /^(.+)\.s3\.(?:dualstack\.)?([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/,
  /^(.+)\.s3-([a-z0-9-]+)\.amazonaws\.com$/
]

/** The bucket (and region) an origin domain names, for S3 REST and website endpoints. */
export function parseS3Domain(domain: string): S3Domain | undefined {
  const name = domain.toLowerCase().replace(/\.$/, '')
  const website = S3_WEBSITE.exec(name)
  if (website) return { bucket: website[1], region: website[2], website: true }
  for (const pattern of S3_REST) {
    const rest = pattern.exec(name)
    if (rest) return { bucket: rest[1], region: rest[2], website: false }
  }
  return undefined
}

interface DistributionFacts {
  findings: PreflightFinding[]
  /** Known only when the distribution could be read. */
  arn?: string
  /** The OAI ids of the checked bucket origins that have no OAC (a legacy setup). */
  oaiIds: string[]
  usesOac: boolean
}

async function distributionChecks(
  cloudfront: CloudFrontClient,
  target: PreflightTarget,
  id: string,
  signal: AbortSignal | undefined,
  sent: Promise<GetDistributionCommandOutput> | undefined
): Promise<DistributionFacts> {
  const got = await read(sent ?? requestDistribution(cloudfront, id, signal))
  const none = { oaiIds: [], usesOac: false }
  if (!got.ok) {
    if (awsErrorCode(got.err) === 'NoSuchDistribution') {
      const finding: PreflightFinding = {
        check: 'distribution',
        status: 'error',
        message: `Distribution ${id} does not exist, or belongs to another account than these credentials.`,
        fix:
          'Set `distribution-id` to the ID (like E2ABCDEFGHIJKL, not the domain name) of the distribution in front of the bucket: ' +
          '`aws cloudfront list-distributions --query "DistributionList.Items[].[Id,DomainName,Origins.Items[0].DomainName]"`.'
      }
      return { findings: [finding], ...none }
    }
    const what = `distribution ${id}, its origin, origin access, the bucket policy and the signed-URL settings`
    return {
      findings: [readFailure('distribution', what, 'getDistribution', got.err, target)],
      ...none
    }
  }
  const distribution = got.value.Distribution
  const config = distribution?.DistributionConfig
  if (!distribution?.ARN || !config) {
    const finding: PreflightFinding = {
      check: 'distribution',
      status: 'unchecked',
      message: `Could not check distribution ${id}: GetDistribution returned no ARN or configuration.`
    }
    return { findings: [finding], ...none }
  }

  const findings = distributionState(id, distribution.DomainName, config, distribution.Status)
  const serving = servingBehaviors(config, target.versionPrefix)
  const origin = originChecks(target, id, config, serving)
  findings.push(...origin.findings)
  const [access, signing] = await Promise.all([
    Promise.all(origin.checked.map((o) => originAccessCheck(cloudfront, target, id, o, signal))),
    target.signingKeyPairId
      ? signedUrlChecks(cloudfront, target, id, serving, target.signingKeyPairId, signal)
      : []
  ])
  findings.push(...access, ...signing)
  const restOrigins = origin.checked.filter((o) => !parseS3Domain(o.DomainName ?? '')?.website)
  return {
    findings,
    arn: distribution.ARN,
    usesOac: restOrigins.length === 0 || restOrigins.some((o) => o.OriginAccessControlId),
    oaiIds: restOrigins
      .map((o) => o.S3OriginConfig?.OriginAccessIdentity?.split('/').pop() ?? '')
      .filter((oai) => oai !== '')
  }
}

function distributionState(
  id: string,
  domain: string | undefined,
  config: DistributionConfig,
  status: string | undefined
): PreflightFinding[] {
  const findings: PreflightFinding[] = []
  if (config.Enabled === false) {
    findings.push({
      check: 'distribution',
      status: 'warning',
      message: `Distribution ${id} is disabled: CloudFront serves nothing from it, so the URLs of this deploy answer nothing until it is enabled.`,
      fix: `Enable it: CloudFront console → Distributions → ${id} → Enable (or set Enabled to true in its config and run \`aws cloudfront update-distribution\`).`
    })
  }
  if (status !== undefined && status !== 'Deployed') {
    findings.push({
      check: 'distribution',
      status: 'warning',
      message: `Distribution ${id} is ${status}: a configuration change is still reaching the edge locations, which may serve the previous settings for a few minutes.`,
      fix: `Wait for it before relying on the URLs: \`aws cloudfront wait distribution-deployed --id ${id}\`.`
    })
  }
  if (findings.length === 0) {
    findings.push({
      check: 'distribution',
      status: 'ok',
      message: `Distribution ${id}${domain ? ` (${domain})` : ''} is enabled and deployed.`
    })
  }
  return findings
}

function originChecks(
  target: PreflightTarget,
  id: string,
  config: DistributionConfig,
  serving: ServingBehavior[]
): { findings: PreflightFinding[]; checked: Origin[] } {
  const { bucket, region, versionPrefix } = target
  const origins = config.Origins?.Items ?? []
  const isBucket = (o: Origin | undefined): o is Origin =>
    parseS3Domain(o?.DomainName ?? '')?.bucket === bucket
  const bucketOrigins = origins.filter(isBucket)
  const restDomain = `${bucket}.s3.${region}.amazonaws.com`
  if (bucketOrigins.length === 0) {
    const list = origins.map((o) => `"${o.Id}" → ${o.DomainName}`).join(', ') || 'none'
    const finding: PreflightFinding = {
      check: 'origin',
      status: 'error',
      message: `No origin of distribution ${id} is bucket "${bucket}" (its origins: ${list}): requests for the deployed keys go elsewhere.`,
      fix:
        `Add an origin with domain ${restDomain} and an Origin Access Control (CloudFront console → Distributions → ${id} → Origins → Create origin, ` +
        `choose the bucket, Origin access: "Origin access control settings"), then make the cache behavior serving /${versionPrefix}/ use it.`
    }
    return { findings: [finding], checked: [] }
  }

  const findings: PreflightFinding[] = []
  const byId = new Map(origins.map((o) => [o.Id, o]))
  const groups = new Map(
    (config.OriginGroups?.Items ?? []).map((g) => [
      g.Id,
      (g.Members?.Items ?? []).map((m) => m.OriginId)
    ])
  )
  const targeted = new Map<string, Origin>()
  for (const { label, behavior } of serving) {
    const originId = behavior.TargetOriginId ?? ''
    // An origin group fails over between its members: any member may serve.
    const members = (groups.get(originId) ?? [originId]).map((m) => byId.get(m)).filter(isBucket)
    for (const o of members) targeted.set(o.Id ?? '', o)
    if (members.length === 0) {
      const domain = byId.get(originId)?.DomainName
      findings.push({
        check: 'origin',
        status: 'error',
        message: `${capitalise(label)} of distribution ${id} sends requests for /${versionPrefix}/… to origin "${originId}"${domain ? ` (${domain})` : ''}, not to bucket "${bucket}".`,
        fix: `Set its origin to "${bucketOrigins[0].Id}" (CloudFront console → Distributions → ${id} → Behaviors → Edit → Origin and origin groups), or add a cache behavior with path pattern /${versionPrefix}/* that uses it.`
      })
    }
  }
  const checked = targeted.size > 0 ? [...targeted.values()] : bucketOrigins
  for (const o of checked) {
    const s3 = parseS3Domain(o.DomainName ?? '') as S3Domain
    if (s3.website) {
      findings.push({
        check: 'origin',
        status: 'warning',
        message: `Origin "${o.Id}" is the website endpoint of bucket "${bucket}" (${o.DomainName}): Origin Access Control does not work with website endpoints, so the bucket has to be public for CloudFront to read it.`,
        fix: `Use the REST endpoint ${restDomain} as the origin domain, with an Origin Access Control, and keep the bucket private.`
      })
    } else if (s3.region !== undefined && s3.region !== region) {
      findings.push({
        check: 'origin',
        status: 'warning',
        message: `Origin "${o.Id}" uses the ${s3.region} endpoint (${o.DomainName}), but the bucket is in ${region} (\`aws-region\`): S3 redirects or refuses those requests.`,
        fix: `Set the origin domain to ${restDomain}.`
      })
    }
    if (o.OriginPath) {
      findings.push({
        check: 'origin',
        status: 'warning',
        message: `Origin "${o.Id}" has origin path "${o.OriginPath}": CloudFront reads <origin path>/<URL path> from the bucket, so the URL of key ${versionPrefix}/<file> (which this action reports) does not reach it.`,
        fix: 'Clear the origin path (Origins → Edit → Origin path), or publish with a version prefix and URLs that account for it.'
      })
    }
  }
  if (findings.length === 0) {
    findings.push({
      check: 'origin',
      status: 'ok',
      message: `Origin "${checked[0].Id}" (${checked[0].DomainName}) is bucket "${bucket}" and serves /${versionPrefix}/….`
    })
  }
  return { findings, checked }
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

function attachOacFix(target: PreflightTarget, id: string, originId: string | undefined): string {
  return (
    `Create one: \`aws cloudfront create-origin-access-control --origin-access-control-config ` +
    `Name=${target.bucket}-oac,SigningProtocol=sigv4,SigningBehavior=always,OriginAccessControlOriginType=s3\`, ` +
    `then attach it: CloudFront console → Distributions → ${id} → Origins → "${originId}" → Edit → Origin access: ` +
    `"Origin access control settings (recommended)" → choose it → Save (CLI: \`aws cloudfront get-distribution-config --id ${id}\`, ` +
    `set the origin's OriginAccessControlId to the new Id and S3OriginConfig.OriginAccessIdentity to "", then ` +
    `\`aws cloudfront update-distribution --id ${id} --if-match <ETag> --distribution-config file://config.json\`).`
  )
}

async function originAccessCheck(
  cloudfront: CloudFrontClient,
  target: PreflightTarget,
  id: string,
  origin: Origin,
  signal: AbortSignal | undefined
): Promise<PreflightFinding> {
  const check = 'origin-access-control'
  const name = `Origin "${origin.Id}"`
  if (parseS3Domain(origin.DomainName ?? '')?.website) {
    return {
      check,
      status: 'warning',
      message: `${name} is a website endpoint, which cannot use an Origin Access Control.`,
      fix: `Switch the origin to ${target.bucket}.s3.${target.region}.amazonaws.com, then: ${attachOacFix(target, id, origin.Id)}`
    }
  }
  const oacId = origin.OriginAccessControlId
  if (!oacId) {
    const oai = origin.S3OriginConfig?.OriginAccessIdentity
    if (oai) {
      return {
        check,
        status: 'warning',
        message: `${name} reads the bucket with a legacy origin access identity (${oai}) instead of an Origin Access Control. It works, but OAI cannot read SSE-KMS objects or buckets in newer regions, and AWS recommends migrating.`,
        fix: `${attachOacFix(target, id, origin.Id)} Then give the distribution access in the bucket policy (see bucket-policy) and remove the OAI statement.`
      }
    }
    return {
      check,
      status: 'error',
      message: `${name} has no Origin Access Control: CloudFront reads the bucket unsigned, so S3 answers AccessDenied to every request (unless the bucket is public, and the models with it).`,
      fix: attachOacFix(target, id, origin.Id)
    }
  }
  const got = await read(
    cloudfront.send(new GetOriginAccessControlCommand({ Id: oacId }), { abortSignal: signal })
  )
  if (!got.ok) {
    if (awsErrorCode(got.err) === 'NoSuchOriginAccessControl') {
      return {
        check,
        status: 'error',
        message: `${name} names Origin Access Control ${oacId}, which does not exist: CloudFront cannot sign its requests to the bucket.`,
        fix: attachOacFix(target, id, origin.Id)
      }
    }
    const what = `the settings of Origin Access Control ${oacId}, attached to origin "${origin.Id}"`
    return readFailure(check, what, 'getOriginAccessControl', got.err, target)
  }
  const config = got.value.OriginAccessControl?.OriginAccessControlConfig
  if (config?.OriginAccessControlOriginType !== 's3') {
    return {
      check,
      status: 'error',
      message: `Origin Access Control ${oacId} of ${name.toLowerCase()} is for origin type "${config?.OriginAccessControlOriginType}", not "s3": CloudFront does not sign S3 requests with it.`,
      fix: attachOacFix(target, id, origin.Id)
    }
  }
  if (config.SigningBehavior === 'never') {
    return {
      check,
      status: 'error',
      message: `Origin Access Control ${oacId} (${config.Name}) of ${name.toLowerCase()} has signing behavior "never": CloudFront sends unsigned requests and S3 answers AccessDenied.`,
      fix: `Set its signing behavior to "always": \`aws cloudfront get-origin-access-control-config --id ${oacId}\`, change SigningBehavior, then \`aws cloudfront update-origin-access-control --id ${oacId} --if-match <ETag> --origin-access-control-config file://oac.json\` (console: Security → Origin access → ${config.Name} → Edit → "Sign requests").`
    }
  }
  return {
    check,
    status: 'ok',
    message: `${name} signs its requests to the bucket with Origin Access Control ${oacId} (${config.Name}, signing ${config.SigningBehavior}).`
  }
}

// --- Signed URLs: the serving behaviours must trust a key group holding the key ---

function keyGroupNames(ids: string[], groups: Map<string, Read<KeyGroup | undefined>>): string {
  return ids
    .map((g) => {
      const name = groups.get(g)?.value?.KeyGroupConfig?.Name
      return name ? `${g} (${name})` : g
    })
    .join(', ')
}

async function listKeyGroups(
  cloudfront: CloudFrontClient,
  signal: AbortSignal | undefined
): Promise<KeyGroup[]> {
  const all: KeyGroup[] = []
  let marker: string | undefined
  do {
    const { KeyGroupList: list } = await cloudfront.send(
      new ListKeyGroupsCommand({ Marker: marker }),
      {
        abortSignal: signal
      }
    )
    for (const item of list?.Items ?? []) if (item.KeyGroup) all.push(item.KeyGroup)
    marker = list?.NextMarker || undefined
  } while (marker)
  return all
}

async function signedUrlChecks(
  cloudfront: CloudFrontClient,
  target: PreflightTarget,
  id: string,
  serving: ServingBehavior[],
  keyId: string,
  signal: AbortSignal | undefined
): Promise<PreflightFinding[]> {
  const check = 'signed-urls'
  const trusted = (b: Behavior): string[] =>
    b.TrustedKeyGroups?.Enabled ? (b.TrustedKeyGroups.Items ?? []) : []
  const ids = [...new Set(serving.flatMap((s) => trusted(s.behavior)))]
  const groups = new Map(
    await Promise.all(
      ids.map(
        async (g) =>
          [
            g,
            await read(
              cloudfront
                .send(new GetKeyGroupCommand({ Id: g }), { abortSignal: signal })
                .then((r) => r.KeyGroup)
            )
          ] as const
      )
    )
  )
  // Only when the key is in no trusted group: where it is, if anywhere, makes the fix exact.
  let whereabouts: Promise<[Read<unknown>, Read<KeyGroup[]>]> | undefined
  const locateKey = () =>
    (whereabouts ??= Promise.all([
      read(cloudfront.send(new GetPublicKeyCommand({ Id: keyId }), { abortSignal: signal })),
      read(listKeyGroups(cloudfront, signal))
    ]))

  const findings: PreflightFinding[] = []
  for (const { label, behavior } of serving) {
    const where = `${label} of distribution ${id}`
    const groupIds = trusted(behavior)
    if (groupIds.length === 0) {
      const signers = behavior.TrustedSigners
      if (signers?.Enabled && signers.Items?.length) {
        findings.push({
          check,
          status: 'warning',
          message: `${capitalise(where)} trusts legacy CloudFront key pairs of account(s) ${signers.Items.join(', ')} (trusted signers), not key groups: pre-flight cannot check that key ${keyId} is one of them.`,
          fix: `Move to a trusted key group: upload the public key (CloudFront → Key management → Public keys), put it in a key group, and select that group under Behaviors → Edit → Restrict viewer access → Trusted key groups.`
        })
        continue
      }
      findings.push({
        check,
        status: 'error',
        message: `${capitalise(where)} does not restrict viewer access: CloudFront serves /${target.versionPrefix}/… to anyone, signed URL or not, so signing protects nothing.`,
        fix:
          `Restrict it to a key group holding public key ${keyId}: CloudFront console → Distributions → ${id} → Behaviors → ${label} → Edit → ` +
          `Restrict viewer access: Yes → Trusted key groups → add the group (create it under Key management → Key groups). ` +
          `In the distribution config: TrustedKeyGroups = {"Enabled":true,"Quantity":1,"Items":["<key group id>"]}.`
      })
      continue
    }
    const holding = groupIds.filter((g) =>
      groups.get(g)?.value?.KeyGroupConfig?.Items?.includes(keyId)
    )
    if (holding.length > 0) {
      findings.push({
        check,
        status: 'ok',
        message: `${capitalise(where)} trusts key group ${keyGroupNames(holding.slice(0, 1), groups)}, which holds public key ${keyId}.`
      })
      continue
    }
    const unreadable = groupIds.find((g) => {
      const got = groups.get(g)
      return got?.ok === false && awsErrorCode(got.err) !== 'NoSuchResource'
    })
    if (unreadable !== undefined) {
      const what = `that public key ${keyId} is in a key group trusted by ${where}`
      findings.push(readFailure(check, what, 'getKeyGroup', groups.get(unreadable)?.err, target))
      continue
    }
    const missing = groupIds.filter((g) => groups.get(g)?.ok === false)
    const existing = groupIds.filter((g) => !missing.includes(g))
    const trustedText =
      (existing.length
        ? `it trusts key group(s) ${keyGroupNames(existing, groups)}`
        : 'it trusts no existing key group') +
      (missing.length ? ` (key group(s) ${missing.join(', ')} it names do not exist)` : '')
    const [publicKey, allGroups] = await locateKey()
    const message = (problem: string): string =>
      `${problem} ${capitalise(where)} requires signed URLs, and ${trustedText}: CloudFront answers 403 to every URL signed with ${keyId}.`
    if (awsErrorCode(publicKey.err) === 'NoSuchPublicKey') {
      findings.push({
        check,
        status: 'error',
        message: message(`No public key with ID ${keyId} exists in this account.`),
        fix: `Set \`signing-key-pair-id\` to the ID of the public key that matches the private key (CloudFront → Key management → Public keys, or \`aws cloudfront list-public-keys\`), and make sure it is in ${existing[0] ?? 'a key group the behavior trusts'}.`
      })
      continue
    }
    const holders = (allGroups.value ?? []).filter((g) => g.KeyGroupConfig?.Items?.includes(keyId))
    if (holders.length > 0) {
      const holder = holders[0]
      findings.push({
        check,
        status: 'error',
        message: message(
          `Public key ${keyId} is in key group ${holder.Id} (${holder.KeyGroupConfig?.Name}), which ${label} does not trust.`
        ),
        fix:
          `Add key group ${holder.Id} to the trusted key groups of ${label}: CloudFront console → Distributions → ${id} → Behaviors → Edit → ` +
          `Trusted key groups → add "${holder.KeyGroupConfig?.Name}" (config: TrustedKeyGroups.Items += "${holder.Id}"), ` +
          `or add public key ${keyId} to ${existing[0] ?? 'a trusted key group'}.`
      })
      continue
    }
    const addTo = existing[0]
    findings.push({
      check,
      status: 'error',
      message: message(
        `Public key ${keyId} is not in any key group ${label} trusts${allGroups.value ? ' (nor in any other key group)' : ''}.`
      ),
      fix: addTo
        ? `Add public key ${keyId} to key group ${addTo}: CloudFront console → Key management → Key groups → ${keyGroupNames([addTo], groups)} → Edit → add the key ` +
          `(CLI: \`aws cloudfront get-key-group-config --id ${addTo}\`, add "${keyId}" to Items, then \`aws cloudfront update-key-group --id ${addTo} --if-match <ETag> --key-group-config file://key-group.json\`); ` +
          'or, if the URLs are signed with another key, set `signing-key-pair-id` to that public key ID.'
        : `Create a key group holding public key ${keyId} (CloudFront → Key management → Key groups) and trust it in ${label} (Behaviors → Edit → Trusted key groups).`
    })
  }
  return findings
}

// --- Bucket: policy, public access block, versioning, lifecycle ---

interface Statement {
  Effect?: unknown
  Principal?: unknown
  NotPrincipal?: unknown
  Action?: unknown
  NotAction?: unknown
  Resource?: unknown
  NotResource?: unknown
  Condition?: unknown
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined
}

/** The AWS:SourceArn values a statement is limited to, as exact ARNs or as patterns. */
function sourceArns(condition: unknown): { values: string[]; like: boolean }[] {
  const found: { values: string[]; like: boolean }[] = []
  for (const [operator, block] of Object.entries(record(condition) ?? {})) {
    const op = operator
      .replace(/^For(Any|All)Values:/i, '')
      .replace(/IfExists$/i, '')
      .toLowerCase()
    if (!['stringequals', 'arnequals', 'stringlike', 'arnlike'].includes(op)) continue
    for (const [key, value] of Object.entries(record(block) ?? {})) {
      if (key.toLowerCase() === 'aws:sourcearn') {
        found.push({ values: strings(value), like: op.endsWith('like') })
      }
    }
  }
  return found
}

function policyStatementFor(bucket: string, partition: string, arn: string): string {
  return JSON.stringify({
    Sid: 'AllowCloudFrontServicePrincipalReadOnly',
    Effect: 'Allow',
    Principal: { Service: 'cloudfront.amazonaws.com' },
    Action: 's3:GetObject',
    Resource: `arn:${partition}:s3:::${bucket}/*`,
    Condition: { StringEquals: { 'AWS:SourceArn': arn } }
  })
}

function policyCheck(
  target: PreflightTarget,
  got: Read<string | undefined>,
  distribution: { id: string; arn: string; usesOac: boolean; oaiIds: string[] }
): PreflightFinding {
  const check = 'bucket-policy'
  const { bucket, versionPrefix } = target
  const { id, arn } = distribution
  let policy = ''
  if (!got.ok) {
    if (awsErrorCode(got.err) !== 'NoSuchBucketPolicy') {
      return readFailure(
        check,
        `the policy of bucket "${bucket}"`,
        'getBucketPolicy',
        got.err,
        target
      )
    }
  } else policy = got.value ?? ''

  let statements: Statement[] = []
  if (policy) {
    try {
      const doc = record(JSON.parse(policy))
      statements = [doc?.Statement].flat().map((s) => record(s) ?? {})
    } catch {
      return {
        check,
        status: 'unchecked',
        message: `Could not check the policy of bucket "${bucket}": it is not JSON.`
      }
    }
  }
  const partition = arn.split(':')[1] || 'aws'
  const base = `arn:${partition}:s3:::${bucket}/${versionPrefix}/`
  // Deny statements are not evaluated: the usual ones (aws:SecureTransport) do not affect
  // CloudFront's signed HTTPS requests.
  const grants = statements.filter(
    (s) =>
      s.Effect === 'Allow' &&
      !s.NotPrincipal &&
      !s.NotAction &&
      !s.NotResource &&
      strings(s.Action).some((a) => globMatch(a.toLowerCase(), 's3:getobject'))
  )
  const covers = (s: Statement): boolean =>
    strings(s.Resource).some((r) => patternCoverage(r, base) === 'all')
  const statement = policyStatementFor(bucket, partition, arn)
  const addFix =
    `Add this statement to the bucket policy (S3 console → ${bucket} → Permissions → Bucket policy → Edit, or ` +
    `\`aws s3api put-bucket-policy --bucket ${bucket} --policy file://policy.json\` with the existing statements kept): ${statement}`

  if (!distribution.usesOac && distribution.oaiIds.length > 0) {
    const oaiGranted = distribution.oaiIds.find((oai) =>
      grants.some(
        (s) =>
          covers(s) &&
          strings(record(s.Principal)?.AWS).some((p) => p.endsWith(`Origin Access Identity ${oai}`))
      )
    )
    if (oaiGranted) {
      return {
        check,
        status: 'ok',
        message: `Bucket policy lets the legacy origin access identity ${oaiGranted} read ${bucket}/${versionPrefix}/*.`
      }
    }
    return {
      check,
      status: 'error',
      message: `Bucket policy does not let origin access identity ${distribution.oaiIds.join(', ')}, which the origin uses, read ${bucket}/${versionPrefix}/*: every request through ${id} gets AccessDenied from S3.`,
      fix: `Attach an Origin Access Control to the origin (see origin-access-control), then: ${addFix}`
    }
  }

  const isPublic = (s: Statement): boolean =>
    s.Principal === '*' || strings(record(s.Principal)?.AWS).includes('*')
  const toCloudFront = grants.filter(
    (s) => isPublic(s) || strings(record(s.Principal)?.Service).includes('cloudfront.amazonaws.com')
  )
  const pinsThis = (s: Statement): boolean =>
    sourceArns(s.Condition).some((c) =>
      c.values.some((v) => (c.like ? globMatch(v, arn) : v === arn))
    )
  const unpinned = toCloudFront.filter((s) => sourceArns(s.Condition).length === 0 && covers(s))
  // A public grant leaks the models whatever else the policy says, so it is reported first.
  if (unpinned.some(isPublic)) {
    return {
      check,
      status: target.signingKeyPairId ? 'error' : 'warning',
      message: `Bucket policy lets anyone (Principal "*") read ${bucket}/${versionPrefix}/*, with no AWS:SourceArn condition: the models are public, bypassing CloudFront${target.signingKeyPairId ? ' and the signed URLs' : ''}.`,
      fix: `Replace that statement with one for this distribution only: ${statement}`
    }
  }
  if (toCloudFront.some((s) => pinsThis(s) && covers(s))) {
    return {
      check,
      status: 'ok',
      message: `Bucket policy lets cloudfront.amazonaws.com read ${bucket}/${versionPrefix}/* for this distribution only (AWS:SourceArn ${arn}).`
    }
  }
  if (unpinned.length > 0) {
    return {
      check,
      status: 'warning',
      message: `Bucket policy lets cloudfront.amazonaws.com read ${bucket}/${versionPrefix}/* without an AWS:SourceArn condition: any CloudFront distribution, in any AWS account, can read the models through its own Origin Access Control.`,
      fix: `Limit the statement to this distribution with the condition {"StringEquals":{"AWS:SourceArn":"${arn}"}}, as in: ${statement}`
    }
  }
  const narrow = toCloudFront.filter(pinsThis).flatMap((s) => strings(s.Resource))
  if (narrow.length > 0) {
    return {
      check,
      status: 'error',
      message: `Bucket policy lets this distribution read only ${narrow.join(', ')}, not ${bucket}/${versionPrefix}/*: CloudFront gets AccessDenied for the deployed models.`,
      fix: addFix
    }
  }
  const others = [
    ...new Set(toCloudFront.flatMap((s) => sourceArns(s.Condition).flatMap((c) => c.values)))
  ]
  const problem = others.length
    ? `Bucket policy lets CloudFront read the bucket only for ${others.join(', ')}, not for this distribution (${arn})`
    : policy
      ? `Bucket policy has no statement that lets cloudfront.amazonaws.com read ${bucket}/${versionPrefix}/* for distribution ${arn}`
      : `Bucket "${bucket}" has no bucket policy, so nothing lets CloudFront read it`
  return {
    check,
    status: 'error',
    message: `${problem}: every request through ${id} gets AccessDenied from S3.`,
    fix: policy
      ? addFix
      : `Set this bucket policy: \`aws s3api put-bucket-policy --bucket ${bucket} --policy '{"Version":"2012-10-17","Statement":[${statement}]}'\`.`
  }
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
  const applies = (rule: LifecycleRule): boolean => {
    const filter = rule.Filter
    // A tag-filtered rule is not enough: release uploads carry no tags (only previews do).
    if (filter?.Tag || filter?.And?.Tags?.length) return false
    const prefix = filter?.Prefix ?? filter?.And?.Prefix ?? rule.Prefix ?? ''
    return `${versionPrefix}/`.startsWith(prefix)
  }
  const rule = (got.value ?? []).find(
    (r) =>
      r.Status === 'Enabled' &&
      r.AbortIncompleteMultipartUpload?.DaysAfterInitiation !== undefined &&
      applies(r)
  )
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

/**
 * Runs every check that applies, concurrently where independent, with read-only calls. Never
 * throws for what it finds or cannot read; rethrows only when `signal` aborts.
 */
export async function runPreflight(
  clients: PreflightClients,
  target: PreflightTarget,
  opts: PreflightOptions = {}
): Promise<PreflightFinding[]> {
  const { s3, cloudfront } = clients
  const { bucket, distributionId } = target
  const send = { abortSignal: opts.signal }
  const [policy, publicAccess, versioning, lifecycle, distribution] = await Promise.all([
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
    ),
    distributionId
      ? distributionChecks(cloudfront, target, distributionId, opts.signal, opts.distribution)
      : undefined
  ])
  if (opts.signal?.aborted) throw opts.signal.reason

  const findings = [...(distribution?.findings ?? [])]
  const bucketError = [policy, publicAccess, versioning, lifecycle]
    .map((r) => r.err)
    .find((err) => BUCKET_UNREACHABLE.has(awsErrorCode(err) ?? ''))
  if (bucketError !== undefined) {
    const explained = explainAwsError(bucketError, { action: `reading bucket "${bucket}"`, bucket })
    findings.push({
      check: 'bucket',
      status: 'error',
      message: explained.message,
      fix: explained.hint
    })
  } else {
    if (distributionId && distribution?.arn) {
      findings.push(
        policyCheck(target, policy, { ...distribution, id: distributionId, arn: distribution.arn })
      )
    }
    findings.push(
      publicAccessCheck(target, publicAccess),
      versioningCheck(target, versioning),
      lifecycleCheck(target, lifecycle)
    )
  }
  return findings.sort((a, b) => CHECK_ORDER.indexOf(a.check) - CHECK_ORDER.indexOf(b.check))
}

/** A finding as the log shows it: the message, then the fix on its own line. */
export function formatFinding(finding: PreflightFinding): string {
  return `Pre-flight ${finding.check}: ${finding.message}${finding.fix ? `\nFix: ${finding.fix}` : ''}`
}

/** Pre-flight found errors; carries every finding, so the job summary can show the table. */
export class PreflightError extends DeployError {
  constructor(
    message: string,
    hint: string,
    readonly findings: PreflightFinding[]
  ) {
    super(message, hint)
  }
}

/** One PreflightError listing every error finding with its fix, or undefined when there is none. */
export function preflightFailure(findings: PreflightFinding[]): PreflightError | undefined {
  const errors = findings.filter((f) => f.status === 'error')
  if (errors.length === 0) return undefined
  const list = errors
    .map((f, i) => `${i + 1}. ${f.check}: ${f.message}${f.fix ? `\n   Fix: ${f.fix}` : ''}`)
    .join('\n')
  return new PreflightError(
    `Pre-flight found ${errors.length} problem(s) that would leave the models unreachable or unprotected; nothing was uploaded.\n${list}`,
    'Fix the setup as described and run again, or set `preflight: false` to deploy without these checks.',
    findings
  )
}
