import { GetDistributionCommand, type CloudFrontClient } from '@aws-sdk/client-cloudfront'
import { explainAwsError } from './errors.js'

export interface DistributionInfo {
  id: string
  domain: string
  arn?: string
  enabled: boolean
  /** `Deployed` or `InProgress`. */
  status?: string
}

/** Reads the distribution once: its domain is the default URL base, and a typo in the id fails here, before any upload. */
export async function getDistribution(cf: CloudFrontClient, id: string): Promise<DistributionInfo> {
  try {
    const { Distribution: d } = await cf.send(new GetDistributionCommand({ Id: id }))
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
