/**
 * The least-privilege permissions of a deploy, defined once: setup puts them on the GitHub role,
 * the CloudFormation template on its role, and docs/iam-policy.json (with the placeholders
 * MODEL_BUCKET, ACCOUNT_ID and DISTRIBUTION_ID) is generated from here
 * (`UPDATE_DOCS=1 npm test -- setup/deploy-policy`). docs/iam.md says what each permission is
 * for and what a deploy does without it.
 */
import type { PolicyDocument, PolicyStatement } from './policy-document.js'

export interface DeployPolicyOptions {
  bucket: string
  accountId: string
  distributionId: string
  /** `aws`, `aws-cn` or `aws-us-gov`; default `aws`. */
  partition?: string
}

/** The policy a role needs to deploy to `bucket` and invalidate the distribution. */
export function deployPolicy(options: DeployPolicyOptions): PolicyDocument {
  const { bucket, accountId, distributionId, partition = 'aws' } = options
  const distribution = `arn:${partition}:cloudfront::${accountId}:distribution/${distributionId}`
  return {
    Version: '2012-10-17',
    Statement: [
      ...s3Statements(`arn:${partition}:s3:::${bucket}`),
      ...cloudFrontStatements(distribution)
    ]
  }
}

function s3Statements(bucketArn: string): PolicyStatement[] {
  const objects = `${bucketArn}/*`
  return [
    // Without it S3 answers 403 instead of 404 for a key that does not exist.
    { Sid: 'ListTheVersionPrefix', Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn },
    // Its own statement, so that a role confined to some prefixes can keep it whole.
    {
      Sid: 'FindLeftoverMultipartUploads',
      Effect: 'Allow',
      Action: 's3:ListBucketMultipartUploads',
      Resource: bucketArn
    },
    {
      Sid: 'ReadAndWriteModelObjects',
      Effect: 'Allow',
      Action: [
        's3:GetObject',
        's3:PutObject',
        's3:AbortMultipartUpload',
        's3:ListMultipartUploadParts'
      ],
      Resource: objects
    },
    {
      Sid: 'RemoveLocksStaleAliasKeysAndPreviews',
      Effect: 'Allow',
      Action: 's3:DeleteObject',
      Resource: objects
    },
    // S3 requires it for any write that carries tags (previews are tagged).
    { Sid: 'TagPreviewUploads', Effect: 'Allow', Action: 's3:PutObjectTagging', Resource: objects },
    {
      Sid: 'PreflightReadBucketSettings',
      Effect: 'Allow',
      Action: [
        's3:GetBucketPolicy',
        's3:GetBucketPublicAccessBlock',
        's3:GetBucketVersioning',
        's3:GetLifecycleConfiguration'
      ],
      Resource: bucketArn
    }
  ]
}

function cloudFrontStatements(distributionArn: string): PolicyStatement[] {
  return [
    {
      Sid: 'InvalidateTheDistribution',
      Effect: 'Allow',
      Action: [
        'cloudfront:GetDistribution',
        'cloudfront:CreateInvalidation',
        'cloudfront:GetInvalidation'
      ],
      Resource: distributionArn
    },
    // Pre-flight finds the origin access control and the key groups through the distribution,
    // so their ids are not known when the policy is written (and ListKeyGroups takes no resource).
    {
      Sid: 'PreflightReadOriginAccessAndKeyGroups',
      Effect: 'Allow',
      Action: [
        'cloudfront:GetOriginAccessControl',
        'cloudfront:GetKeyGroup',
        'cloudfront:ListKeyGroups',
        'cloudfront:GetPublicKey'
      ],
      Resource: '*'
    }
  ]
}
