/**
 * The origin-access-control check: each bucket origin signs its requests to the bucket with an
 * Origin Access Control for S3 (a legacy origin access identity works, but is weaker).
 */
import {
  GetOriginAccessControlCommand,
  type CloudFrontClient,
  type Origin,
  type OriginAccessControlConfig
} from '@aws-sdk/client-cloudfront'
import { awsErrorCode } from '../../common/errors.js'
import { bucketRestDomain, parseS3Domain } from './origin.js'
import { read, readFailure } from './read.js'
import type { PreflightFinding, PreflightTarget } from './types.js'

const CHECK = 'origin-access-control'

export async function originAccessCheck(
  cloudfront: CloudFrontClient,
  target: PreflightTarget,
  id: string,
  origin: Origin,
  signal: AbortSignal | undefined
): Promise<PreflightFinding> {
  const name = `Origin "${origin.Id}"`
  if (parseS3Domain(origin.DomainName ?? '')?.website) {
    return {
      check: CHECK,
      status: 'warning',
      message: `${name} is a website endpoint, which cannot use an Origin Access Control.`,
      fix: `Switch the origin to ${bucketRestDomain(target)}, then: ${attachOacFix(target, id, origin.Id)}`
    }
  }
  const oacId = origin.OriginAccessControlId
  if (!oacId) return noOacCheck(target, id, origin)
  const got = await read(
    cloudfront.send(new GetOriginAccessControlCommand({ Id: oacId }), { abortSignal: signal })
  )
  if (!got.ok) {
    if (awsErrorCode(got.err) === 'NoSuchOriginAccessControl') {
      return {
        check: CHECK,
        status: 'error',
        message: `${name} names Origin Access Control ${oacId}, which does not exist: CloudFront cannot sign its requests to the bucket.`,
        fix: attachOacFix(target, id, origin.Id)
      }
    }
    const what = `the settings of Origin Access Control ${oacId}, attached to origin "${origin.Id}"`
    return readFailure(CHECK, what, 'getOriginAccessControl', got.err, target)
  }
  const config = got.value.OriginAccessControl?.OriginAccessControlConfig
  return oacSettingsCheck(target, id, origin, oacId, config)
}

/** An origin without an OAC: a legacy OAI still reads the bucket, nothing else does. */
function noOacCheck(target: PreflightTarget, id: string, origin: Origin): PreflightFinding {
  const name = `Origin "${origin.Id}"`
  const oai = origin.S3OriginConfig?.OriginAccessIdentity
  if (oai) {
    return {
      check: CHECK,
      status: 'warning',
      message: `${name} reads the bucket with a legacy origin access identity (${oai}) instead of an Origin Access Control. It works, but OAI cannot read SSE-KMS objects or buckets in newer regions, and AWS recommends migrating.`,
      fix: `${attachOacFix(target, id, origin.Id)} Then give the distribution access in the bucket policy (see bucket-policy) and remove the OAI statement.`
    }
  }
  return {
    check: CHECK,
    status: 'error',
    message: `${name} has no Origin Access Control: CloudFront reads the bucket unsigned, so S3 answers AccessDenied to every request (unless the bucket is public, and the models with it).`,
    fix: attachOacFix(target, id, origin.Id)
  }
}

/** The attached OAC's settings: for S3, and signing. */
function oacSettingsCheck(
  target: PreflightTarget,
  id: string,
  origin: Origin,
  oacId: string,
  config: OriginAccessControlConfig | undefined
): PreflightFinding {
  const name = `Origin "${origin.Id}"`
  if (config?.OriginAccessControlOriginType !== 's3') {
    return {
      check: CHECK,
      status: 'error',
      message: `Origin Access Control ${oacId} of ${name.toLowerCase()} is for origin type "${config?.OriginAccessControlOriginType}", not "s3": CloudFront does not sign S3 requests with it.`,
      fix: attachOacFix(target, id, origin.Id)
    }
  }
  if (config.SigningBehavior === 'never') {
    return {
      check: CHECK,
      status: 'error',
      message: `Origin Access Control ${oacId} (${config.Name}) of ${name.toLowerCase()} has signing behavior "never": CloudFront sends unsigned requests and S3 answers AccessDenied.`,
      fix: `Set its signing behavior to "always": \`aws cloudfront get-origin-access-control-config --id ${oacId}\`, change SigningBehavior, then \`aws cloudfront update-origin-access-control --id ${oacId} --if-match <ETag> --origin-access-control-config file://oac.json\` (console: Security → Origin access → ${config.Name} → Edit → "Sign requests").`
    }
  }
  return {
    check: CHECK,
    status: 'ok',
    message: `${name} signs its requests to the bucket with Origin Access Control ${oacId} (${config.Name}, signing ${config.SigningBehavior}).`
  }
}

function attachOacFix(
  target: Pick<PreflightTarget, 'bucket'>,
  id: string,
  originId: string | undefined
): string {
  return (
    `Create one: \`aws cloudfront create-origin-access-control --origin-access-control-config ` +
    `Name=${target.bucket}-oac,SigningProtocol=sigv4,SigningBehavior=always,OriginAccessControlOriginType=s3\`, ` +
    `then attach it: CloudFront console → Distributions → ${id} → Origins → "${originId}" → Edit → Origin access: ` +
    `"Origin access control settings (recommended)" → choose it → Save (CLI: \`aws cloudfront get-distribution-config --id ${id}\`, ` +
    `set the origin's OriginAccessControlId to the new Id and S3OriginConfig.OriginAccessIdentity to "", then ` +
    `\`aws cloudfront update-distribution --id ${id} --if-match <ETag> --distribution-config file://config.json\`).`
  )
}

/**
 * How the checked origins read the bucket, for the bucket-policy check: with an OAC, or else
 * with the legacy OAIs (website endpoints use neither).
 */
export function originAccess(checked: Origin[]): { usesOac: boolean; oaiIds: string[] } {
  const restOrigins = checked.filter((o) => !parseS3Domain(o.DomainName ?? '')?.website)
  return {
    usesOac: restOrigins.length === 0 || restOrigins.some((o) => o.OriginAccessControlId),
    oaiIds: restOrigins
      .map((o) => o.S3OriginConfig?.OriginAccessIdentity?.split('/').pop() ?? '')
      .filter((oai) => oai !== '')
  }
}
