import {
  GetDistributionCommand,
  type CloudFrontClient,
  type GetDistributionCommandOutput
} from '@aws-sdk/client-cloudfront'
import { explainAwsError } from '../common/errors.js'

export interface DistributionInfo {
  id: string
  domain: string
  arn?: string
  enabled: boolean
  /** `Deployed` or `InProgress`. */
  status?: string
}

/** GetDistribution, sent once per run: the pre-flight checks and getDistribution share its answer. */
export function requestDistribution(
  cf: CloudFrontClient,
  id: string,
  signal?: AbortSignal
): Promise<GetDistributionCommandOutput> {
  return cf.send(new GetDistributionCommand({ Id: id }), { abortSignal: signal })
}

/** The distribution as a deploy needs it: its domain is the default URL base, and a typo in the id fails here, before any upload. */
export async function getDistribution(
  response: Promise<GetDistributionCommandOutput>,
  id: string
): Promise<DistributionInfo> {
  try {
    const { Distribution: d } = await response
    if (!d?.DomainName) throw new Error('GetDistribution returned no domain name')
    return {
      id,
      domain: d.DomainName,
      arn: d.ARN,
      enabled: d.DistributionConfig?.Enabled ?? true,
      status: d.Status
    }
  } catch (err) {
    throw explainAwsError(err, {
      action: `reading CloudFront distribution ${id}`,
      distributionId: id
    })
  }
}
