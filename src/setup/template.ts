/**
 * What `setup` creates, as a CloudFormation template, for accounts that manage their resources
 * as stacks: the private bucket, the Origin Access Control and distribution in front of it, the
 * bucket policy scoped to that distribution, optionally the signing key group, and optionally
 * GitHub's OIDC provider and the deploy role. The deploy policy and the trust statement are
 * built by the same code as setup's, from the template's parameters.
 *
 * Names differ from setup's in one way: CloudFormation cannot cut a parameter to a length, so
 * the names with a limit (the OAC's 64 characters) are made from the stack's id, and the role
 * is named by CloudFormation; the bucket is in their comments and descriptions instead.
 */
import {
  DEFAULT_NONCURRENT_VERSION_DAYS,
  DEFAULT_PREVIEW_DAYS,
  DEFAULT_PRICE_CLASS,
  PRICE_CLASSES,
  type PriceClass
} from './defaults.js'
import { PREVIEW_TAG } from '../common/constants.js'
import { LIFECYCLE_RULE_IDS } from './bucket-lifecycle.js'
import { CLOUDFRONT_READ_SID } from './bucket-policy.js'
import { deployPolicy } from './deploy-policy.js'
import { bucketOriginId, CACHING_OPTIMIZED, distributionComment } from './distribution.js'
import { GITHUB_REPO_PATTERN, parseGitHubRepo, subjectPatterns } from './github-subjects.js'
import {
  GITHUB_OIDC_AUDIENCE,
  GITHUB_OIDC_THUMBPRINTS,
  GITHUB_OIDC_URL
} from './github-oidc-provider.js'
import { DEPLOY_POLICY_NAME, githubTrustStatement } from './github-role.js'
import { SETUP_TAG } from './types.js'

/** A piece of template: plain JSON values and intrinsic functions. */
export type Cfn = Record<string, unknown>

export interface CloudFormationTemplate {
  AWSTemplateFormatVersion: '2010-09-09'
  Description: string
  Parameters: Record<string, Cfn>
  Conditions: Record<string, Cfn>
  Resources: Record<string, Cfn>
  Outputs: Record<string, Cfn>
}

/** The parameters' defaults, e.g. the flags `setup` was given. */
export interface TemplateOptions {
  bucket?: string
  publicKeyPem?: string
  /** `OWNER/NAME`: without it the template creates no OIDC provider and no role. */
  githubRepo?: string
  githubBranch?: string
  githubEnvironment?: string
  /** The account's provider for token.actions.githubusercontent.com, when it has one. */
  githubOidcProviderArn?: string
  noncurrentVersionDays?: number
  previewDays?: number
  priceClass?: PriceClass
}

export const ref = (name: string): Cfn => ({ Ref: name })
export const sub = (text: string): Cfn => ({ 'Fn::Sub': text })
const getAtt = (resource: string, attribute: string): Cfn => ({
  'Fn::GetAtt': [resource, attribute]
})
const ifThen = (condition: string, then: unknown, otherwise: unknown): Cfn => ({
  'Fn::If': [condition, then, otherwise]
})
const NO_VALUE = ref('AWS::NoValue')
const tags = [{ Key: SETUP_TAG.key, Value: SETUP_TAG.value }]
const ORIGIN_ID = sub(bucketOriginId('${BucketName}'))

/** `model-cdn-deploy-<the stack's UUID>`: unique, and within every name limit (53 characters). */
const stackScopedName: Cfn = {
  'Fn::Join': [
    '-',
    ['model-cdn-deploy', { 'Fn::Select': [2, { 'Fn::Split': ['/', ref('AWS::StackId')] }] }]
  ]
}

/** The template, its parameters defaulting to `options`. */
export function cloudFormationTemplate(options: TemplateOptions = {}): CloudFormationTemplate {
  if (options.githubRepo) parseGitHubRepo(options.githubRepo)
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description:
      'model-cdn-deploy: a private S3 bucket for models behind CloudFront (Origin Access ' +
      'Control), with optionally a signing key group and a GitHub Actions deploy role',
    Parameters: parameters(options),
    Conditions: CONDITIONS,
    Resources: {
      ...bucketResources(),
      ...distributionResources(),
      ...signingResources(),
      ...githubResources()
    },
    Outputs: OUTPUTS
  }
}

function parameters(options: TemplateOptions): Record<string, Cfn> {
  const text = (Description: string, Default = '') => ({ Type: 'String', Description, Default })
  const days = (Description: string, Default: number) => ({
    Type: 'Number',
    Description,
    Default,
    MinValue: 1
  })
  return {
    BucketName: {
      Type: 'String',
      Description: 'The bucket to create for the models.',
      AllowedPattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$',
      ...(options.bucket ? { Default: options.bucket } : {})
    },
    PublicKeyPem: text(
      'The PEM public key CloudFront checks signed URLs with; empty: the models are public through CloudFront.',
      options.publicKeyPem
    ),
    GitHubRepo: {
      ...text('OWNER/NAME of the repository that deploys; empty: no role.', options.githubRepo),
      AllowedPattern: `^$|^${GITHUB_REPO_PATTERN}$`
    },
    GitHubBranch: text('Only jobs on this branch may deploy; empty: any.', options.githubBranch),
    GitHubEnvironment: text(
      'Only jobs in this GitHub environment may deploy (with GitHubBranch: either).',
      options.githubEnvironment
    ),
    GitHubOidcProviderArn: text(
      'The account’s IAM OIDC provider for token.actions.githubusercontent.com, if it has one ' +
        '(an account has at most one, shared by every stack); empty: the stack creates it.',
      options.githubOidcProviderArn
    ),
    NoncurrentVersionDays: days(
      'Days an overwritten or deleted model version is kept.',
      options.noncurrentVersionDays ?? DEFAULT_NONCURRENT_VERSION_DAYS
    ),
    PreviewDays: days(
      'Days after which what pull request previews wrote expires.',
      options.previewDays ?? DEFAULT_PREVIEW_DAYS
    ),
    PriceClass: {
      ...text(
        'CloudFront edge locations to serve from.',
        options.priceClass ?? DEFAULT_PRICE_CLASS
      ),
      AllowedValues: [...PRICE_CLASSES]
    }
  }
}

const given = (parameter: string): Cfn => ({ 'Fn::Not': [{ 'Fn::Equals': [ref(parameter), ''] }] })

const CONDITIONS: Record<string, Cfn> = {
  HasPublicKey: given('PublicKeyPem'),
  HasGitHubRepo: given('GitHubRepo'),
  HasGitHubBranch: given('GitHubBranch'),
  HasGitHubEnvironment: given('GitHubEnvironment'),
  CreateGitHubOidcProvider: {
    'Fn::And': [
      { Condition: 'HasGitHubRepo' },
      { 'Fn::Equals': [ref('GitHubOidcProviderArn'), ''] }
    ]
  }
}

function bucketResources(): Record<string, Cfn> {
  return {
    Bucket: {
      Type: 'AWS::S3::Bucket',
      // Never deletes: the models outlive the stack.
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        BucketName: ref('BucketName'),
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          IgnorePublicAcls: true,
          BlockPublicPolicy: true,
          RestrictPublicBuckets: true
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        LifecycleConfiguration: { Rules: lifecycleRules() },
        Tags: tags
      }
    },
    BucketPolicy: {
      Type: 'AWS::S3::BucketPolicy',
      Properties: {
        Bucket: ref('Bucket'),
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: CLOUDFRONT_READ_SID,
              Effect: 'Allow',
              Principal: { Service: 'cloudfront.amazonaws.com' },
              Action: 's3:GetObject',
              Resource: sub('${Bucket.Arn}/*'),
              Condition: { StringEquals: { 'AWS:SourceArn': sub(DISTRIBUTION_ARN) } }
            }
          ]
        }
      }
    }
  }
}

const DISTRIBUTION_ARN =
  'arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}'

function lifecycleRules(): Cfn[] {
  return [
    // The parts of an interrupted multipart upload are billed, and invisible to listings.
    {
      Id: LIFECYCLE_RULE_IDS.abortUploads,
      Status: 'Enabled',
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }
    },
    {
      Id: LIFECYCLE_RULE_IDS.noncurrentVersions,
      Status: 'Enabled',
      NoncurrentVersionExpiration: { NoncurrentDays: ref('NoncurrentVersionDays') },
      // Delete markers left alone once the versions behind them have expired.
      ExpiredObjectDeleteMarker: true
    },
    // A preview whose clean-up never ran (docs/release-channels.md).
    {
      Id: LIFECYCLE_RULE_IDS.previews,
      Status: 'Enabled',
      TagFilters: [{ Key: PREVIEW_TAG.key, Value: PREVIEW_TAG.value }],
      ExpirationInDays: ref('PreviewDays')
    }
  ]
}

function distributionResources(): Record<string, Cfn> {
  return {
    OriginAccessControl: {
      Type: 'AWS::CloudFront::OriginAccessControl',
      Properties: {
        OriginAccessControlConfig: {
          Name: stackScopedName,
          Description: sub('model-cdn-deploy: ${BucketName}'),
          OriginAccessControlOriginType: 's3',
          SigningBehavior: 'always',
          SigningProtocol: 'sigv4'
        }
      }
    },
    Distribution: {
      Type: 'AWS::CloudFront::Distribution',
      Properties: { DistributionConfig: distributionConfig(), Tags: tags }
    }
  }
}

function distributionConfig(): Cfn {
  const getAndHead = ['GET', 'HEAD']
  return {
    Enabled: true,
    Comment: sub(distributionComment('${BucketName}')),
    PriceClass: ref('PriceClass'),
    HttpVersion: 'http2and3',
    IPV6Enabled: true,
    Origins: [
      {
        Id: ORIGIN_ID,
        DomainName: getAtt('Bucket', 'RegionalDomainName'),
        OriginAccessControlId: getAtt('OriginAccessControl', 'Id'),
        // Empty: the origin reads through the OAC, not a legacy origin access identity.
        S3OriginConfig: { OriginAccessIdentity: '' }
      }
    ],
    DefaultCacheBehavior: {
      TargetOriginId: ORIGIN_ID,
      ViewerProtocolPolicy: 'redirect-to-https',
      AllowedMethods: getAndHead,
      CachedMethods: getAndHead,
      CachePolicyId: CACHING_OPTIMIZED,
      Compress: true,
      TrustedKeyGroups: ifThen('HasPublicKey', [ref('KeyGroup')], NO_VALUE)
    }
  }
}

function signingResources(): Record<string, Cfn> {
  return {
    PublicKey: {
      Type: 'AWS::CloudFront::PublicKey',
      Condition: 'HasPublicKey',
      Properties: {
        PublicKeyConfig: {
          CallerReference: stackScopedName,
          Name: stackScopedName,
          EncodedKey: ref('PublicKeyPem'),
          Comment: sub('model-cdn-deploy: signed URLs of ${BucketName}')
        }
      }
    },
    KeyGroup: {
      Type: 'AWS::CloudFront::KeyGroup',
      Condition: 'HasPublicKey',
      Properties: {
        KeyGroupConfig: {
          Name: stackScopedName,
          Items: [ref('PublicKey')],
          Comment: sub('model-cdn-deploy: signed URLs of ${BucketName}')
        }
      }
    }
  }
}

function githubResources(): Record<string, Cfn> {
  const providerArn = ifThen(
    'CreateGitHubOidcProvider',
    ref('GitHubOidcProvider'),
    ref('GitHubOidcProviderArn')
  )
  return {
    GitHubOidcProvider: {
      Type: 'AWS::IAM::OIDCProvider',
      Condition: 'CreateGitHubOidcProvider',
      Properties: {
        Url: GITHUB_OIDC_URL,
        ClientIdList: [GITHUB_OIDC_AUDIENCE],
        ThumbprintList: GITHUB_OIDC_THUMBPRINTS,
        Tags: tags
      }
    },
    GitHubDeployRole: {
      Type: 'AWS::IAM::Role',
      Condition: 'HasGitHubRepo',
      Properties: {
        Description: sub('model-cdn-deploy: deploys to s3://${BucketName} from GitHub Actions'),
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [githubTrustStatement(providerArn, subjects())]
        },
        Policies: [{ PolicyName: DEPLOY_POLICY_NAME, PolicyDocument: templateDeployPolicy() }],
        Tags: tags
      }
    }
  }
}

/** githubSubjects' patterns, chosen by which of branch and environment are given. */
function subjects(): Cfn {
  const patterns = (narrowing: { branch?: string; environment?: string }) =>
    subjectPatterns('${GitHubRepo}', narrowing).map(sub)
  const branch = '${GitHubBranch}'
  const environment = '${GitHubEnvironment}'
  return ifThen(
    'HasGitHubBranch',
    ifThen('HasGitHubEnvironment', patterns({ branch, environment }), patterns({ branch })),
    ifThen('HasGitHubEnvironment', patterns({ environment }), patterns({}))
  )
}

/** deployPolicy with the stack's bucket, account, partition and distribution substituted in. */
function templateDeployPolicy(): unknown {
  const policy = deployPolicy({
    bucket: '${Bucket}',
    accountId: '${AWS::AccountId}',
    distributionId: '${Distribution}',
    partition: '${AWS::Partition}'
  })
  return JSON.parse(JSON.stringify(policy), (_key, value: unknown) =>
    typeof value === 'string' && value.includes('${') ? sub(value) : value
  )
}

const output = (Description: string, Value: Cfn, Condition?: string): Cfn => ({
  Description,
  Value,
  ...(Condition ? { Condition } : {})
})

const OUTPUTS: Record<string, Cfn> = {
  BucketName: output('The bucket (input `bucket`).', ref('Bucket')),
  DistributionId: output('The distribution (input `distribution-id`).', ref('Distribution')),
  DistributionDomain: output(
    'The domain CloudFront serves the models from (the default of input `url-base`).',
    getAtt('Distribution', 'DomainName')
  ),
  OriginAccessControlId: output(
    'How CloudFront reads the bucket.',
    getAtt('OriginAccessControl', 'Id')
  ),
  PublicKeyId: output(
    'The key pair id of signed URLs (input `signing-key-pair-id`).',
    ref('PublicKey'),
    'HasPublicKey'
  ),
  KeyGroupId: output('The key group the distribution trusts.', ref('KeyGroup'), 'HasPublicKey'),
  RoleArn: output(
    'The role for aws-actions/configure-aws-credentials (`role-to-assume`).',
    getAtt('GitHubDeployRole', 'Arn'),
    'HasGitHubRepo'
  )
}
