/**
 * The CloudFormation template, setting by setting, resolved as CloudFormation would for given
 * parameters (__fixtures__/cloudformation.ts). What moto_server can create of it is tried in
 * __tests__/integration/setup-iam.test.ts.
 */
import {
  STACK_ACCOUNT,
  STACK_UUID,
  resolveTemplate,
  type Stack
} from '../../__fixtures__/cloudformation.js'
import { InputError } from '../common/errors.js'
import { deployPolicy } from './deploy-policy.js'
import { githubOidcProviderArn } from './github-oidc-provider.js'
import { githubTrustStatement } from './github-role.js'
import { githubSubjects } from './github-subjects.js'
import { cloudFormationTemplate, type CloudFormationTemplate } from './template.js'

const BUCKET = 'acme-models'
const template = cloudFormationTemplate()
const stack = (parameters: Record<string, string> = {}): Stack =>
  resolveTemplate(template, { BucketName: BUCKET, ...parameters })
/** A resolved resource's setting at `path` (property names and list indexes). */
const setting = (s: Stack, id: string, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>(
    (value, key) => (value as Record<string | number, unknown> | undefined)?.[key],
    s.resources[id].Properties
  )

describe('cloudFormationTemplate', () => {
  describe('the bucket', () => {
    const bucket = (...path: string[]) => setting(stack(), 'Bucket', ...path)

    it('is named by the parameter, kept when the stack goes, and tagged', () => {
      expect(stack().resources.Bucket.Type).toBe('AWS::S3::Bucket')
      expect(bucket('BucketName')).toBe(BUCKET)
      expect(template.Resources.Bucket.DeletionPolicy).toBe('Retain')
      expect(template.Resources.Bucket.UpdateReplacePolicy).toBe('Retain')
      expect(bucket('Tags')).toEqual([{ Key: 'model-cdn-deploy', Value: 'setup' }])
    })

    it('keeps versions, blocks all public access and enforces bucket-owner ownership', () => {
      expect(bucket('VersioningConfiguration')).toEqual({ Status: 'Enabled' })
      expect(bucket('PublicAccessBlockConfiguration')).toEqual({
        BlockPublicAcls: true,
        IgnorePublicAcls: true,
        BlockPublicPolicy: true,
        RestrictPublicBuckets: true
      })
      expect(bucket('OwnershipControls')).toEqual({
        Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }]
      })
    })

    it('has the three lifecycle rules, enabled', () => {
      const parameters = { NoncurrentVersionDays: '45', PreviewDays: '14' }
      const rules = setting(stack(parameters), 'Bucket', 'LifecycleConfiguration', 'Rules')
      expect(rules).toEqual([
        {
          Id: 'model-cdn-deploy-abort-incomplete-uploads',
          Status: 'Enabled',
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }
        },
        {
          Id: 'model-cdn-deploy-noncurrent-versions',
          Status: 'Enabled',
          NoncurrentVersionExpiration: { NoncurrentDays: '45' },
          ExpiredObjectDeleteMarker: true
        },
        {
          Id: 'model-cdn-deploy-previews',
          Status: 'Enabled',
          TagFilters: [{ Key: 'model-cdn-deploy:preview', Value: 'true' }],
          ExpirationInDays: '14'
        }
      ])
    })

    it('aborts uploads under every prefix (pre-flight refuses a filtered rule)', () => {
      const abort = bucket('LifecycleConfiguration', 'Rules', '0')
      expect(abort).not.toHaveProperty('Prefix')
      expect(abort).not.toHaveProperty('TagFilters')
    })

    it('lets only the distribution read, through a policy statement of its own', () => {
      const s = stack()
      expect(s.resources.BucketPolicy.Type).toBe('AWS::S3::BucketPolicy')
      expect(s.resources.BucketPolicy.Properties).toEqual({
        Bucket: BUCKET,
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'ModelCdnDeployCloudFrontRead',
              Effect: 'Allow',
              Principal: { Service: 'cloudfront.amazonaws.com' },
              Action: 's3:GetObject',
              Resource: `arn:aws:s3:::${BUCKET}/*`,
              Condition: {
                StringEquals: {
                  'AWS:SourceArn': `arn:aws:cloudfront::${STACK_ACCOUNT}:distribution/<Distribution>`
                }
              }
            }
          ]
        }
      })
    })
  })

  describe('CloudFront', () => {
    it('signs its requests to S3 with an origin access control, always', () => {
      const s = stack()
      expect(s.resources.OriginAccessControl.Type).toBe('AWS::CloudFront::OriginAccessControl')
      const config = setting(s, 'OriginAccessControl', 'OriginAccessControlConfig')
      expect(config).toEqual({
        Name: `model-cdn-deploy-${STACK_UUID}`,
        Description: `model-cdn-deploy: ${BUCKET}`,
        OriginAccessControlOriginType: 's3',
        SigningBehavior: 'always',
        SigningProtocol: 'sigv4'
      })
      // OAC names are at most 64 characters, whatever the bucket's name.
      expect(
        String(setting(s, 'OriginAccessControl', 'OriginAccessControlConfig', 'Name')).length
      ).toBeLessThanOrEqual(64)
    })

    it('serves the bucket through it, over HTTPS, cached and compressed', () => {
      const s = stack({ PriceClass: 'PriceClass_All' })
      expect(s.resources.Distribution.Type).toBe('AWS::CloudFront::Distribution')
      const config = (...path: string[]) =>
        setting(s, 'Distribution', 'DistributionConfig', ...path)
      expect(config()).toMatchObject({
        Enabled: true,
        Comment: `model-cdn-deploy: ${BUCKET}`,
        PriceClass: 'PriceClass_All',
        HttpVersion: 'http2and3',
        IPV6Enabled: true
      })
      expect(config('Origins')).toEqual([
        {
          Id: `s3-${BUCKET}`,
          DomainName: '<Bucket.RegionalDomainName>',
          OriginAccessControlId: '<OriginAccessControl.Id>',
          S3OriginConfig: { OriginAccessIdentity: '' }
        }
      ])
      expect(config('DefaultCacheBehavior')).toEqual({
        TargetOriginId: `s3-${BUCKET}`,
        ViewerProtocolPolicy: 'redirect-to-https',
        AllowedMethods: ['GET', 'HEAD'],
        CachedMethods: ['GET', 'HEAD'],
        CachePolicyId: '658327ea-f89d-4fab-a63d-7e88639e58f6',
        Compress: true
      })
      expect(setting(s, 'Distribution', 'Tags')).toEqual([
        { Key: 'model-cdn-deploy', Value: 'setup' }
      ])
    })

    it('without a public key: no key, no key group, no trusted key groups', () => {
      const s = stack()
      expect(Object.keys(s.resources)).not.toContain('PublicKey')
      expect(Object.keys(s.resources)).not.toContain('KeyGroup')
      const behavior = setting(s, 'Distribution', 'DistributionConfig', 'DefaultCacheBehavior')
      expect(behavior).not.toHaveProperty('TrustedKeyGroups')
    })

    it('with a public key: a key group holding it, which the distribution trusts', () => {
      const s = stack({
        PublicKeyPem: '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----'
      })
      expect(s.resources.PublicKey.Type).toBe('AWS::CloudFront::PublicKey')
      expect(setting(s, 'PublicKey', 'PublicKeyConfig')).toEqual({
        CallerReference: `model-cdn-deploy-${STACK_UUID}`,
        Name: `model-cdn-deploy-${STACK_UUID}`,
        EncodedKey: '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----',
        Comment: `model-cdn-deploy: signed URLs of ${BUCKET}`
      })
      expect(s.resources.KeyGroup.Type).toBe('AWS::CloudFront::KeyGroup')
      expect(setting(s, 'KeyGroup', 'KeyGroupConfig', 'Items')).toEqual(['<PublicKey>'])
      expect(
        setting(s, 'Distribution', 'DistributionConfig', 'DefaultCacheBehavior', 'TrustedKeyGroups')
      ).toEqual(['<KeyGroup>'])
      expect(s.outputs).toMatchObject({ PublicKeyId: '<PublicKey>', KeyGroupId: '<KeyGroup>' })
    })
  })

  describe('GitHub', () => {
    const providerArn = githubOidcProviderArn(STACK_ACCOUNT)

    it('creates neither provider nor role without a repository', () => {
      const s = stack()
      expect(Object.keys(s.resources).sort()).toEqual([
        'Bucket',
        'BucketPolicy',
        'Distribution',
        'OriginAccessControl'
      ])
      expect(Object.keys(s.outputs).sort()).toEqual([
        'BucketName',
        'DistributionDomain',
        'DistributionId',
        'OriginAccessControlId'
      ])
    })

    it('creates the OIDC provider with the repository, unless given the account’s own', () => {
      const s = stack({ GitHubRepo: 'octo-org/models' })
      expect(s.resources.GitHubOidcProvider).toEqual({
        Type: 'AWS::IAM::OIDCProvider',
        Condition: 'CreateGitHubOidcProvider',
        Properties: {
          Url: 'https://token.actions.githubusercontent.com',
          ClientIdList: ['sts.amazonaws.com'],
          ThumbprintList: [
            '6938fd4d98bab03faadb97b34396831e3780aea1',
            '1c58a3a8518e8759bf075b76b750d4f2df264fcd'
          ],
          Tags: [{ Key: 'model-cdn-deploy', Value: 'setup' }]
        }
      })
      const principal = (of: Stack) =>
        setting(of, 'GitHubDeployRole', 'AssumeRolePolicyDocument', 'Statement', 0, 'Principal')
      expect(principal(s)).toEqual({ Federated: '<GitHubOidcProvider>' })

      const given = stack({ GitHubRepo: 'octo-org/models', GitHubOidcProviderArn: providerArn })
      expect(Object.keys(given.resources)).not.toContain('GitHubOidcProvider')
      expect(principal(given)).toEqual({ Federated: providerArn })
    })

    it.each([
      [{}, {}],
      [{ GitHubBranch: 'main' }, { branch: 'main' }],
      [{ GitHubEnvironment: 'prod' }, { environment: 'prod' }],
      [
        { GitHubBranch: 'main', GitHubEnvironment: 'prod' },
        { branch: 'main', environment: 'prod' }
      ]
    ])('trusts what githubSubjects does, for %j', (parameters, narrowing) => {
      const s = stack({
        GitHubRepo: 'octo-org/models',
        GitHubOidcProviderArn: providerArn,
        ...parameters
      })
      expect(setting(s, 'GitHubDeployRole', 'AssumeRolePolicyDocument')).toEqual({
        Version: '2012-10-17',
        Statement: [
          githubTrustStatement(
            providerArn,
            githubSubjects({ repo: 'octo-org/models', ...narrowing })
          )
        ]
      })
    })

    it('gives the role the deploy policy inline, for this bucket and distribution, and tags it', () => {
      const s = stack({ GitHubRepo: 'octo-org/models' })
      expect(s.resources.GitHubDeployRole.Type).toBe('AWS::IAM::Role')
      const role = s.resources.GitHubDeployRole.Properties
      expect(role.Policies).toEqual([
        {
          PolicyName: 'model-cdn-deploy',
          PolicyDocument: deployPolicy({
            bucket: BUCKET,
            accountId: STACK_ACCOUNT,
            distributionId: '<Distribution>'
          })
        }
      ])
      expect(role.Tags).toEqual([{ Key: 'model-cdn-deploy', Value: 'setup' }])
      expect(role.Description).toBe(
        `model-cdn-deploy: deploys to s3://${BUCKET} from GitHub Actions`
      )
      // CloudFormation names the role: a name from the bucket could pass IAM's 64 characters.
      expect(role).not.toHaveProperty('RoleName')
      expect(s.outputs.RoleArn).toBe('<GitHubDeployRole.Arn>')
    })
  })

  describe('parameters and outputs', () => {
    it("default to the options given, and to setup's defaults (30 and 14 days, PriceClass_All)", () => {
      const withOptions = cloudFormationTemplate({
        bucket: BUCKET,
        githubRepo: 'octo-org/models',
        githubBranch: 'main',
        noncurrentVersionDays: 7,
        previewDays: 3,
        priceClass: 'PriceClass_200'
      })
      const defaults = (t: CloudFormationTemplate) =>
        Object.fromEntries(Object.entries(t.Parameters).map(([name, p]) => [name, p.Default]))
      expect(defaults(withOptions)).toEqual({
        BucketName: BUCKET,
        PublicKeyPem: '',
        GitHubRepo: 'octo-org/models',
        GitHubBranch: 'main',
        GitHubEnvironment: '',
        GitHubOidcProviderArn: '',
        NoncurrentVersionDays: 7,
        PreviewDays: 3,
        PriceClass: 'PriceClass_200'
      })
      expect(defaults(template)).toMatchObject({
        BucketName: undefined,
        NoncurrentVersionDays: 30,
        PreviewDays: 14,
        PriceClass: 'PriceClass_All'
      })
    })

    it('refuses a malformed repository, and lets CloudFormation refuse one too', () => {
      expect(() => cloudFormationTemplate({ githubRepo: 'octo-org' })).toThrow(InputError)
      const pattern = new RegExp(template.Parameters.GitHubRepo.AllowedPattern as string)
      expect(['', 'octo-org/models', 'a/b.c_d-e'].map((r) => pattern.test(r))).toEqual([
        true,
        true,
        true
      ])
      expect(['octo-org', '-o/r', 'o/r/x', 'o/r s'].map((r) => pattern.test(r))).toEqual([
        false,
        false,
        false,
        false
      ])
    })

    it('gives every output it names, the conditional ones with their resources', () => {
      const s = stack({ GitHubRepo: 'octo-org/models', PublicKeyPem: 'PEM' })
      expect(s.outputs).toEqual({
        BucketName: BUCKET,
        DistributionId: '<Distribution>',
        DistributionDomain: '<Distribution.DomainName>',
        OriginAccessControlId: '<OriginAccessControl.Id>',
        PublicKeyId: '<PublicKey>',
        KeyGroupId: '<KeyGroup>',
        RoleArn: '<GitHubDeployRole.Arn>'
      })
    })

    it('refers only to parameters, resources and conditions it defines', () => {
      const known = new Set([
        ...Object.keys(template.Parameters),
        ...Object.keys(template.Resources),
        'AWS::Partition',
        'AWS::AccountId',
        'AWS::StackId',
        'AWS::NoValue'
      ])
      const text = JSON.stringify(template)
      const refs = [
        ...[...text.matchAll(/"Ref":"([^"]+)"/g)].map((m) => m[1]),
        ...[...text.matchAll(/\$\{([^}.]+)(?:\.[^}]+)?\}/g)].map((m) => m[1]),
        ...[...text.matchAll(/"Fn::GetAtt":\["([^"]+)"/g)].map((m) => m[1])
      ]
      expect(refs.filter((name) => !known.has(name))).toEqual([])
      const conditions = [
        ...[...text.matchAll(/"Condition":"([^"]+)"/g)].map((m) => m[1]),
        ...[...text.matchAll(/"Fn::If":\["([^"]+)"/g)].map((m) => m[1])
      ]
      expect(conditions.filter((name) => !(name in template.Conditions))).toEqual([])
    })
  })
})
