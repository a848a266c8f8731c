/**
 * The origin check: the behaviours serving the version prefix send its requests to the bucket,
 * through its REST endpoint in its region, with no origin path.
 */
import type { DistributionConfig, Origin } from '@aws-sdk/client-cloudfront'
import { capitalise, type ServingBehavior } from './behaviors.js'
import type { PreflightFinding, PreflightTarget } from './types.js'

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

/** The bucket's REST endpoint in its region: the origin domain the fixes recommend. */
export function bucketRestDomain({ bucket, region }: Pick<PreflightTarget, 'bucket' | 'region'>) {
  return `${bucket}.s3.${region}.amazonaws.com`
}

type OriginTarget = Pick<PreflightTarget, 'bucket' | 'region' | 'versionPrefix'>

export interface OriginFacts {
  findings: PreflightFinding[]
  /** The bucket origins the serving behaviours use (all bucket origins when none does). */
  checked: Origin[]
}

export function originChecks(
  target: OriginTarget,
  id: string,
  config: DistributionConfig,
  serving: ServingBehavior[]
): OriginFacts {
  const { bucket, versionPrefix } = target
  const origins = config.Origins?.Items ?? []
  const bucketOrigins = origins.filter((o) => isBucketOrigin(bucket, o))
  if (bucketOrigins.length === 0) {
    return { findings: [noBucketOrigin(target, id, origins)], checked: [] }
  }
  const routed = routeServingBehaviors(target, id, config, serving, bucketOrigins[0])
  const checked = routed.targeted.length > 0 ? routed.targeted : bucketOrigins
  const findings = [...routed.findings, ...checked.flatMap((o) => endpointChecks(target, o))]
  if (findings.length === 0) {
    findings.push({
      check: 'origin',
      status: 'ok',
      message: `Origin "${checked[0].Id}" (${checked[0].DomainName}) is bucket "${bucket}" and serves /${versionPrefix}/….`
    })
  }
  return { findings, checked }
}

function isBucketOrigin(bucket: string, origin: Origin | undefined): origin is Origin {
  return parseS3Domain(origin?.DomainName ?? '')?.bucket === bucket
}

function noBucketOrigin(target: OriginTarget, id: string, origins: Origin[]): PreflightFinding {
  const { bucket, versionPrefix } = target
  const list = origins.map((o) => `"${o.Id}" → ${o.DomainName}`).join(', ') || 'none'
  return {
    check: 'origin',
    status: 'error',
    message: `No origin of distribution ${id} is bucket "${bucket}" (its origins: ${list}): requests for the deployed keys go elsewhere.`,
    fix:
      `Add an origin with domain ${bucketRestDomain(target)} and an Origin Access Control (CloudFront console → Distributions → ${id} → Origins → Create origin, ` +
      `choose the bucket, Origin access: "Origin access control settings"), then make the cache behavior serving /${versionPrefix}/ use it.`
  }
}

/**
 * The bucket origins the serving behaviours send requests to, and an error for each behaviour
 * that sends them elsewhere.
 */
function routeServingBehaviors(
  target: OriginTarget,
  id: string,
  config: DistributionConfig,
  serving: ServingBehavior[],
  bucketOrigin: Origin
): { targeted: Origin[]; findings: PreflightFinding[] } {
  const { bucket, versionPrefix } = target
  const byId = new Map((config.Origins?.Items ?? []).map((o) => [o.Id, o]))
  const groups = new Map(
    (config.OriginGroups?.Items ?? []).map((g) => [
      g.Id,
      (g.Members?.Items ?? []).map((m) => m.OriginId)
    ])
  )
  const targeted = new Map<string, Origin>()
  const findings: PreflightFinding[] = []
  for (const { label, behavior } of serving) {
    const originId = behavior.TargetOriginId ?? ''
    // An origin group fails over between its members: any member may serve.
    const members = (groups.get(originId) ?? [originId])
      .map((m) => byId.get(m))
      .filter((o) => isBucketOrigin(bucket, o))
    for (const o of members) targeted.set(o.Id ?? '', o)
    if (members.length === 0) {
      const domain = byId.get(originId)?.DomainName
      findings.push({
        check: 'origin',
        status: 'error',
        message: `${capitalise(label)} of distribution ${id} sends requests for /${versionPrefix}/… to origin "${originId}"${domain ? ` (${domain})` : ''}, not to bucket "${bucket}".`,
        fix: `Set its origin to "${bucketOrigin.Id}" (CloudFront console → Distributions → ${id} → Behaviors → Edit → Origin and origin groups), or add a cache behavior with path pattern /${versionPrefix}/* that uses it.`
      })
    }
  }
  return { targeted: [...targeted.values()], findings }
}

/** Warnings for a bucket origin CloudFront cannot read the deployed keys through as reported. */
function endpointChecks(target: OriginTarget, origin: Origin): PreflightFinding[] {
  const { bucket, region, versionPrefix } = target
  const s3 = parseS3Domain(origin.DomainName ?? '') as S3Domain
  const findings: PreflightFinding[] = []
  if (s3.website) {
    findings.push({
      check: 'origin',
      status: 'warning',
      message: `Origin "${origin.Id}" is the website endpoint of bucket "${bucket}" (${origin.DomainName}): Origin Access Control does not work with website endpoints, so the bucket has to be public for CloudFront to read it.`,
      fix: `Use the REST endpoint ${bucketRestDomain(target)} as the origin domain, with an Origin Access Control, and keep the bucket private.`
    })
  } else if (s3.region !== undefined && s3.region !== region) {
    findings.push({
      check: 'origin',
      status: 'warning',
      message: `Origin "${origin.Id}" uses the ${s3.region} endpoint (${origin.DomainName}), but the bucket is in ${region} (\`aws-region\`): S3 redirects or refuses those requests.`,
      fix: `Set the origin domain to ${bucketRestDomain(target)}.`
    })
  }
  if (origin.OriginPath) {
    findings.push({
      check: 'origin',
      status: 'warning',
      message: `Origin "${origin.Id}" has origin path "${origin.OriginPath}": CloudFront reads <origin path>/<URL path> from the bucket, so the URL of key ${versionPrefix}/<file> (which this action reports) does not reach it.`,
      fix: 'Clear the origin path (Origins → Edit → Origin path), or publish with a version prefix and URLs that account for it.'
    })
  }
  return findings
}
