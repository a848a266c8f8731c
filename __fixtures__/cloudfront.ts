import type {
  CreateInvalidationCommandOutput,
  GetDistributionCommandOutput
} from '@aws-sdk/client-cloudfront'

export const DISTRIBUTION_ID = 'E2ABCDEFGHIJKL'

/** GetDistribution's answer for a deployed distribution serving d111.cloudfront.net. */
export const deployedDistribution: Partial<GetDistributionCommandOutput> = {
  Distribution: {
    Id: DISTRIBUTION_ID,
    ARN: `arn:aws:cloudfront::123456789012:distribution/${DISTRIBUTION_ID}`,
    DomainName: 'd111.cloudfront.net',
    Status: 'Deployed',
    LastModifiedTime: new Date(),
    InProgressInvalidationBatches: 0,
    ActiveTrustedSigners: undefined,
    DistributionConfig: undefined
  }
}

/** CreateInvalidation's (or GetInvalidation's) answer for invalidation I1 in `status`. */
export function invalidation(status: string): Partial<CreateInvalidationCommandOutput> {
  return {
    Invalidation: { Id: 'I1', Status: status, CreateTime: new Date(), InvalidationBatch: undefined }
  }
}
