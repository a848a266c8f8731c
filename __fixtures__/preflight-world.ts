/**
 * Pre-flight's unit-test world: the tutorial's setup with signed URLs, as the mocked S3 and
 * CloudFront answer it (every check passes), and the pieces the tests change it with.
 */
import {
  GetDistributionCommand,
  GetKeyGroupCommand,
  GetOriginAccessControlCommand,
  type DistributionConfig,
  type KeyGroup
} from '@aws-sdk/client-cloudfront'
import {
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  type LifecycleRule
} from '@aws-sdk/client-s3'
import type { PreflightTarget } from '../src/cdn/preflight/index.js'
import { mockAwsClients } from './aws-mocks.js'
import { ALL_PUBLIC_ACCESS_BLOCKED, originAccessControl } from './preflight.js'

export const BUCKET = 'model-bucket'
export const DIST = 'E2ABCDEFGHIJKL'
export const ARN = `arn:aws:cloudfront::123456789012:distribution/${DIST}`
export const OAC = 'E3OACID'
export const ORIGIN = 'bucket-origin'
export const KEY_GROUP = 'kg-trusted'
export const KEY = 'K2SIGNINGKEY'
export const PREFIX = 'models/v1'

export const target: PreflightTarget = {
  bucket: BUCKET,
  region: 'us-east-1',
  distributionId: DIST,
  versionPrefix: PREFIX,
  signingKeyPairId: KEY
}

export function awsError(name: string, status: number, message = `${name} happened`): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } })
}
export const denied = () => awsError('AccessDenied', 403, 'User is not authorized to perform this')

const bucketOrigin = () => ({
  Id: ORIGIN,
  DomainName: `${BUCKET}.s3.us-east-1.amazonaws.com`,
  OriginPath: '',
  S3OriginConfig: { OriginAccessIdentity: '' },
  OriginAccessControlId: OAC
})

export function goodConfig(): DistributionConfig {
  return {
    CallerReference: 'ref',
    Comment: '',
    Enabled: true,
    Origins: {
      Quantity: 2,
      Items: [
        bucketOrigin(),
        { Id: 'api', DomainName: 'api.example.com', CustomOriginConfig: undefined }
      ]
    },
    DefaultCacheBehavior: {
      TargetOriginId: ORIGIN,
      ViewerProtocolPolicy: 'redirect-to-https',
      TrustedKeyGroups: { Enabled: true, Quantity: 1, Items: [KEY_GROUP] }
    },
    CacheBehaviors: { Quantity: 0 }
  }
}

export const statement = (overrides: Record<string, unknown> = {}) => ({
  Sid: 'AllowCloudFront',
  Effect: 'Allow',
  Principal: { Service: 'cloudfront.amazonaws.com' },
  Action: 's3:GetObject',
  Resource: `arn:aws:s3:::${BUCKET}/*`,
  Condition: { StringEquals: { 'AWS:SourceArn': ARN } },
  ...overrides
})

export const keyGroup = (id: string, keys: string[]): KeyGroup => ({
  Id: id,
  LastModifiedTime: new Date(),
  KeyGroupConfig: { Name: `${id}-name`, Items: keys }
})

export const abortRule: LifecycleRule = {
  ID: 'abort-mpu',
  Status: 'Enabled',
  Filter: { Prefix: '' },
  AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }
}

/**
 * Stubs S3 and CloudFront (mockAwsClients) and sets up the good world before each test; returns
 * the stubs, the clients, and the helpers that answer differently.
 */
export function mockPreflightWorld() {
  const { s3Mock, cfMock, clients } = mockAwsClients()

  function mockDistribution(config: DistributionConfig, status = 'Deployed'): void {
    cfMock.on(GetDistributionCommand).resolves({
      Distribution: {
        Id: DIST,
        ARN,
        DomainName: 'd111.cloudfront.net',
        Status: status,
        LastModifiedTime: new Date(),
        InProgressInvalidationBatches: 0,
        DistributionConfig: config
      }
    })
  }

  function mockPolicy(...statements: object[]): void {
    s3Mock
      .on(GetBucketPolicyCommand)
      .resolves({ Policy: JSON.stringify({ Version: '2012-10-17', Statement: statements }) })
  }

  function mockLifecycle(...rules: LifecycleRule[]): void {
    s3Mock.on(GetBucketLifecycleConfigurationCommand).resolves({ Rules: rules })
  }

  /** The tutorial's setup with signed URLs: every check passes. */
  function mockGoodWorld(): void {
    mockPolicy(statement())
    s3Mock.on(GetPublicAccessBlockCommand).resolves(ALL_PUBLIC_ACCESS_BLOCKED)
    s3Mock.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' })
    mockLifecycle(abortRule)
    mockDistribution(goodConfig())
    cfMock.on(GetOriginAccessControlCommand).resolves(originAccessControl(OAC))
    cfMock.on(GetKeyGroupCommand).resolves({ KeyGroup: keyGroup(KEY_GROUP, [KEY]) })
  }

  beforeEach(() => {
    mockGoodWorld()
  })
  return { s3Mock, cfMock, clients, mockDistribution, mockPolicy, mockLifecycle }
}
