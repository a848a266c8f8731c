/**
 * The bucket-policy check: the policy lets this distribution (through its Origin Access Control,
 * or a legacy origin access identity) read every key under the version prefix, and no one else.
 */
import { awsErrorCode } from '../../common/errors.js'
import { globMatch, patternCoverage } from './patterns.js'
import { readFailure, type Read } from './read.js'
import type { PreflightFinding, PreflightTarget } from './types.js'
import { record, strings } from '../../common/json.js'

const CHECK = 'bucket-policy'

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

/** The distribution the policy must let read the bucket, and how its origins read it. */
export interface PolicyDistribution {
  id: string
  arn: string
  usesOac: boolean
  oaiIds: string[]
}

/** The grant the deploy needs, and how to add it. */
interface NeededGrant {
  target: Pick<PreflightTarget, 'bucket' | 'versionPrefix' | 'signingKeyPairId'>
  distribution: PolicyDistribution
  /** Whether a statement's resources include every key under the version prefix. */
  covers: (s: Statement) => boolean
  /** The statement that grants it, as JSON. */
  statement: string
  /** How to add that statement to an existing policy. */
  addFix: string
}

export function policyCheck(
  target: PreflightTarget,
  got: Read<string | undefined>,
  distribution: PolicyDistribution
): PreflightFinding {
  const { bucket } = target
  if (!got.ok && awsErrorCode(got.err) !== 'NoSuchBucketPolicy') {
    return readFailure(
      CHECK,
      `the policy of bucket "${bucket}"`,
      'getBucketPolicy',
      got.err,
      target
    )
  }
  const policy = got.value ?? ''
  const statements = parseStatements(policy)
  if (statements === undefined) {
    return {
      check: CHECK,
      status: 'unchecked',
      message: `Could not check the policy of bucket "${bucket}": it is not JSON.`
    }
  }
  const need = neededGrant(target, distribution)
  const grants = getObjectGrants(statements)
  if (!distribution.usesOac && distribution.oaiIds.length > 0) return oaiGrantCheck(need, grants)
  return cloudFrontGrantCheck(need, grants, policy !== '')
}

/** The statements of a policy document (none without a policy), or undefined when it is not JSON. */
function parseStatements(policy: string): Statement[] | undefined {
  if (!policy) return []
  try {
    const doc = record(JSON.parse(policy))
    return [doc?.Statement].flat().map((s) => record(s) ?? {})
  } catch {
    return undefined
  }
}

function neededGrant(target: NeededGrant['target'], distribution: PolicyDistribution): NeededGrant {
  const { bucket, versionPrefix } = target
  const partition = distribution.arn.split(':')[1] || 'aws'
  const base = `arn:${partition}:s3:::${bucket}/${versionPrefix}/`
  const statement = policyStatementFor(bucket, partition, distribution.arn)
  return {
    target,
    distribution,
    covers: (s) => strings(s.Resource).some((r) => patternCoverage(r, base) === 'all'),
    statement,
    addFix:
      `Add this statement to the bucket policy (S3 console → ${bucket} → Permissions → Bucket policy → Edit, or ` +
      `\`aws s3api put-bucket-policy --bucket ${bucket} --policy file://policy.json\` with the existing statements kept): ${statement}`
  }
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

/** The statements that allow s3:GetObject to the principals they name. */
function getObjectGrants(statements: Statement[]): Statement[] {
  // Deny statements are not evaluated: the usual ones (aws:SecureTransport) do not affect
  // CloudFront's signed HTTPS requests.
  return statements.filter(
    (s) =>
      s.Effect === 'Allow' &&
      !s.NotPrincipal &&
      !s.NotAction &&
      !s.NotResource &&
      strings(s.Action).some((a) => globMatch(a.toLowerCase(), 's3:getobject'))
  )
}

/** A legacy setup: the origins read with OAIs, so the policy must grant one of them. */
function oaiGrantCheck(need: NeededGrant, grants: Statement[]): PreflightFinding {
  const { bucket, versionPrefix } = need.target
  const { id, oaiIds } = need.distribution
  const oaiGranted = oaiIds.find((oai) =>
    grants.some(
      (s) =>
        need.covers(s) &&
        strings(record(s.Principal)?.AWS).some((p) => p.endsWith(`Origin Access Identity ${oai}`))
    )
  )
  if (oaiGranted) {
    return {
      check: CHECK,
      status: 'ok',
      message: `Bucket policy lets the legacy origin access identity ${oaiGranted} read ${bucket}/${versionPrefix}/*.`
    }
  }
  return {
    check: CHECK,
    status: 'error',
    message: `Bucket policy does not let origin access identity ${oaiIds.join(', ')}, which the origin uses, read ${bucket}/${versionPrefix}/*: every request through ${id} gets AccessDenied from S3.`,
    fix: `Attach an Origin Access Control to the origin (see origin-access-control), then: ${need.addFix}`
  }
}

/** An OAC setup: the policy must let CloudFront read the prefix for this distribution only. */
function cloudFrontGrantCheck(
  need: NeededGrant,
  grants: Statement[],
  hasPolicy: boolean
): PreflightFinding {
  const { bucket, versionPrefix } = need.target
  const { arn } = need.distribution
  const toCloudFront = grants.filter(
    (s) => isPublic(s) || strings(record(s.Principal)?.Service).includes('cloudfront.amazonaws.com')
  )
  const pinsThis = (s: Statement): boolean => isLimitedTo(s, arn)
  const unpinned = toCloudFront.filter(
    (s) => sourceArns(s.Condition).length === 0 && need.covers(s)
  )
  // A public grant leaks the models whatever else the policy says, so it is reported first.
  if (unpinned.some(isPublic)) return publicGrantFinding(need)
  if (toCloudFront.some((s) => pinsThis(s) && need.covers(s))) {
    return {
      check: CHECK,
      status: 'ok',
      message: `Bucket policy lets cloudfront.amazonaws.com read ${bucket}/${versionPrefix}/* for this distribution only (AWS:SourceArn ${arn}).`
    }
  }
  if (unpinned.length > 0) {
    return {
      check: CHECK,
      status: 'warning',
      message: `Bucket policy lets cloudfront.amazonaws.com read ${bucket}/${versionPrefix}/* without an AWS:SourceArn condition: any CloudFront distribution, in any AWS account, can read the models through its own Origin Access Control.`,
      fix: `Limit the statement to this distribution with the condition {"StringEquals":{"AWS:SourceArn":"${arn}"}}, as in: ${need.statement}`
    }
  }
  const narrow = toCloudFront.filter(pinsThis).flatMap((s) => strings(s.Resource))
  if (narrow.length > 0) {
    return {
      check: CHECK,
      status: 'error',
      message: `Bucket policy lets this distribution read only ${narrow.join(', ')}, not ${bucket}/${versionPrefix}/*: CloudFront gets AccessDenied for the deployed models.`,
      fix: need.addFix
    }
  }
  return missingGrantFinding(need, toCloudFront, hasPolicy)
}

function publicGrantFinding({ target, statement }: NeededGrant): PreflightFinding {
  const { bucket, versionPrefix, signingKeyPairId } = target
  return {
    check: CHECK,
    status: signingKeyPairId ? 'error' : 'warning',
    message: `Bucket policy lets anyone (Principal "*") read ${bucket}/${versionPrefix}/*, with no AWS:SourceArn condition: the models are public, bypassing CloudFront${signingKeyPairId ? ' and the signed URLs' : ''}.`,
    fix: `Replace that statement with one for this distribution only: ${statement}`
  }
}

/** Nothing lets this distribution read the prefix: say what the policy grants instead. */
function missingGrantFinding(
  need: NeededGrant,
  toCloudFront: Statement[],
  hasPolicy: boolean
): PreflightFinding {
  const { bucket, versionPrefix } = need.target
  const { id, arn } = need.distribution
  const others = [
    ...new Set(toCloudFront.flatMap((s) => sourceArns(s.Condition).flatMap((c) => c.values)))
  ]
  const problem = others.length
    ? `Bucket policy lets CloudFront read the bucket only for ${others.join(', ')}, not for this distribution (${arn})`
    : hasPolicy
      ? `Bucket policy has no statement that lets cloudfront.amazonaws.com read ${bucket}/${versionPrefix}/* for distribution ${arn}`
      : `Bucket "${bucket}" has no bucket policy, so nothing lets CloudFront read it`
  return {
    check: CHECK,
    status: 'error',
    message: `${problem}: every request through ${id} gets AccessDenied from S3.`,
    fix: hasPolicy
      ? need.addFix
      : `Set this bucket policy: \`aws s3api put-bucket-policy --bucket ${bucket} --policy '{"Version":"2012-10-17","Statement":[${need.statement}]}'\`.`
  }
}

function isPublic(s: Statement): boolean {
  return s.Principal === '*' || strings(record(s.Principal)?.AWS).includes('*')
}

/** Whether an AWS:SourceArn condition of the statement admits `arn`. */
function isLimitedTo(s: Statement, arn: string): boolean {
  return sourceArns(s.Condition).some((c) =>
    c.values.some((v) => (c.like ? globMatch(v, arn) : v === arn))
  )
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
