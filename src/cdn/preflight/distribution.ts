/**
 * The checks that read the distribution: its state, then (from its configuration) the origin,
 * origin access and signed-URL checks, and the facts the bucket-policy check needs.
 */
import type {
  CloudFrontClient,
  DistributionConfig,
  GetDistributionCommandOutput
} from '@aws-sdk/client-cloudfront'
import { awsErrorCode } from '../../common/errors.js'
import { requestDistribution } from '../distribution.js'
import { servingBehaviors } from './behaviors.js'
import { originChecks } from './origin.js'
import { originAccess, originAccessCheck } from './origin-access-control.js'
import { read, readFailure } from './read.js'
import { signedUrlChecks } from './signed-urls.js'
import type { PreflightFinding, PreflightTarget } from './types.js'

export interface DistributionFacts {
  findings: PreflightFinding[]
  /** Known only when the distribution could be read. */
  arn?: string
  /** The OAI ids of the checked bucket origins that have no OAC (a legacy setup). */
  oaiIds: string[]
  usesOac: boolean
}

export async function distributionChecks(
  cloudfront: CloudFrontClient,
  target: PreflightTarget,
  id: string,
  signal: AbortSignal | undefined,
  sent: Promise<GetDistributionCommandOutput> | undefined
): Promise<DistributionFacts> {
  const got = await read(sent ?? requestDistribution(cloudfront, id, signal))
  if (!got.ok) return onlyFinding(unreadableDistribution(target, id, got.err))
  const distribution = got.value.Distribution
  const config = distribution?.DistributionConfig
  if (!distribution?.ARN || !config) {
    return onlyFinding({
      check: 'distribution',
      status: 'unchecked',
      message: `Could not check distribution ${id}: GetDistribution returned no ARN or configuration.`
    })
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
  return { findings, arn: distribution.ARN, ...originAccess(origin.checked) }
}

/** The distribution could not be read: one finding, and nothing known about its origins. */
function onlyFinding(finding: PreflightFinding): DistributionFacts {
  return { findings: [finding], oaiIds: [], usesOac: false }
}

function unreadableDistribution(
  target: PreflightTarget,
  id: string,
  err: unknown
): PreflightFinding {
  if (awsErrorCode(err) === 'NoSuchDistribution') {
    return {
      check: 'distribution',
      status: 'error',
      message: `Distribution ${id} does not exist, or belongs to another account than these credentials.`,
      fix:
        'Set `distribution-id` to the ID (like E2ABCDEFGHIJKL, not the domain name) of the distribution in front of the bucket: ' +
        '`aws cloudfront list-distributions --query "DistributionList.Items[].[Id,DomainName,Origins.Items[0].DomainName]"`.'
    }
  }
  const what = `distribution ${id}, its origin, origin access, the bucket policy and the signed-URL settings`
  return readFailure('distribution', what, 'getDistribution', err, target)
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
