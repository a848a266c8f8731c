import {
  GetDistributionCommand,
  GetKeyGroupCommand,
  GetOriginAccessControlCommand,
  GetPublicKeyCommand,
  ListKeyGroupsCommand,
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
import { DeployError } from '../common/errors.js'
import {
  PREFLIGHT_PERMISSIONS,
  formatFinding,
  parseS3Domain,
  patternCoverage,
  preflightFailure,
  runPreflight,
  servingBehaviors,
  type PreflightFinding,
  type PreflightTarget
} from './preflight.js'
import {
  ALL_CHECKS,
  BUCKET_CHECKS,
  ALL_PUBLIC_ACCESS_BLOCKED,
  allOk,
  expectOkExcept,
  only,
  originAccessControl,
  statusesOf
} from '../../__fixtures__/preflight.js'
import { mockAwsClients } from '../../__fixtures__/aws-mocks.js'

const { s3Mock, cfMock, clients } = mockAwsClients()

const BUCKET = 'model-bucket'
const DIST = 'E2ABCDEFGHIJKL'
const ARN = `arn:aws:cloudfront::123456789012:distribution/${DIST}`
const OAC = 'E3OACID'
const ORIGIN = 'bucket-origin'
const KEY_GROUP = 'kg-trusted'
const KEY = 'K2SIGNINGKEY'
const PREFIX = 'models/v1'

const target: PreflightTarget = {
  bucket: BUCKET,
  region: 'us-east-1',
  distributionId: DIST,
  versionPrefix: PREFIX,
  signingKeyPairId: KEY
}

function awsError(name: string, status: number, message = `${name} happened`): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } })
}
const denied = () => awsError('AccessDenied', 403, 'User is not authorized to perform this')

const bucketOrigin = () => ({
  Id: ORIGIN,
  DomainName: `${BUCKET}.s3.us-east-1.amazonaws.com`,
  OriginPath: '',
  S3OriginConfig: { OriginAccessIdentity: '' },
  OriginAccessControlId: OAC
})

function goodConfig(): DistributionConfig {
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

const statement = (overrides: Record<string, unknown> = {}) => ({
  Sid: 'AllowCloudFront',
  Effect: 'Allow',
  Principal: { Service: 'cloudfront.amazonaws.com' },
  Action: 's3:GetObject',
  Resource: `arn:aws:s3:::${BUCKET}/*`,
  Condition: { StringEquals: { 'AWS:SourceArn': ARN } },
  ...overrides
})

function mockPolicy(...statements: object[]): void {
  s3Mock
    .on(GetBucketPolicyCommand)
    .resolves({ Policy: JSON.stringify({ Version: '2012-10-17', Statement: statements }) })
}

const keyGroup = (id: string, keys: string[]): KeyGroup => ({
  Id: id,
  LastModifiedTime: new Date(),
  KeyGroupConfig: { Name: `${id}-name`, Items: keys }
})

function mockLifecycle(...rules: LifecycleRule[]): void {
  s3Mock.on(GetBucketLifecycleConfigurationCommand).resolves({ Rules: rules })
}

const abortRule: LifecycleRule = {
  ID: 'abort-mpu',
  Status: 'Enabled',
  Filter: { Prefix: '' },
  AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }
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

describe('patternCoverage (CloudFront path patterns and IAM resources)', () => {
  it.each([
    ['*', 'all'],
    ['/*', 'all'],
    ['/models/*', 'all'],
    ['/models/v?/*', 'all'],
    ['/m*1/*', 'all'],
    ['/models/v1/*', 'all'],
    ['/models/v1/*.onnx', 'some'],
    ['/*.gguf', 'some'],
    ['/models/v1/?', 'some'],
    ['/models/v1/a*', 'some'],
    ['/models/v1', 'none'],
    ['/models/v1/', 'none'],
    ['/Models/*', 'none'],
    ['/other/*', 'none'],
    ['/models/v2/*', 'none']
  ])('%s against /models/v1/… is %s', (pattern, coverage) => {
    expect(patternCoverage(pattern, '/models/v1/')).toBe(coverage)
  })

  it('matches ARN patterns the same way', () => {
    const base = `arn:aws:s3:::${BUCKET}/v1/`
    expect(patternCoverage(`arn:aws:s3:::${BUCKET}/*`, base)).toBe('all')
    expect(patternCoverage('arn:aws:s3:::*', base)).toBe('all')
    expect(patternCoverage(`arn:aws:s3:::${BUCKET}`, base)).toBe('none')
    expect(patternCoverage(`arn:aws:s3:::${BUCKET}/v1/public/*`, base)).toBe('some')
  })
})

describe('servingBehaviors', () => {
  const behavior = (pattern: string, origin = ORIGIN) => ({
    PathPattern: pattern,
    TargetOriginId: origin,
    ViewerProtocolPolicy: 'allow-all' as const
  })
  const config = (...patterns: string[]): DistributionConfig => ({
    ...goodConfig(),
    CacheBehaviors: { Quantity: patterns.length, Items: patterns.map((p) => behavior(p)) }
  })
  const labels = (c: DistributionConfig, prefix = PREFIX) =>
    servingBehaviors(c, prefix).map((s) => s.label)

  it('uses the default behavior when no path pattern matches', () => {
    expect(labels(config('/api/*', '/static/*.html'))).toEqual(['the default cache behavior'])
  })

  it('stops at the first pattern matching every key, in order, with an optional leading /', () => {
    expect(labels(config('/api/*', 'models/*', '/models/v1/*'))).toEqual([
      'cache behavior "models/*"'
    ])
  })

  it('keeps patterns matching some keys, then the one matching all or the default', () => {
    expect(labels(config('*.onnx', '/models/*'))).toEqual([
      'cache behavior "*.onnx"',
      'cache behavior "/models/*"'
    ])
    expect(labels(config('*.onnx'))).toEqual([
      'cache behavior "*.onnx"',
      'the default cache behavior'
    ])
  })

  it('matches the percent-encoded path of the prefix, case-sensitively', () => {
    expect(labels(config('/my%20models/*'), 'my models/v1')).toEqual([
      'cache behavior "/my%20models/*"'
    ])
    expect(labels(config('/MODELS/*'))).toEqual(['the default cache behavior'])
  })
})

describe('parseS3Domain', () => {
  it.each([
    ['b.s3.amazonaws.com', { bucket: 'b', region: undefined, website: false }],
    ['b.s3.eu-west-1.amazonaws.com', { bucket: 'b', region: 'eu-west-1', website: false }],
    ['b.s3-eu-west-1.amazonaws.com', { bucket: 'b', region: 'eu-west-1', website: false }],
    [
      'my.dotted.bucket.s3.us-east-1.amazonaws.com',
      { bucket: 'my.dotted.bucket', region: 'us-east-1', website: false }
    ],
    [
      'b.s3.dualstack.us-west-2.amazonaws.com',
      { bucket: 'b', region: 'us-west-2', website: false }
    ],
    ['b.s3-website-us-east-1.amazonaws.com', { bucket: 'b', region: 'us-east-1', website: true }],
    [
      'b.s3-website.eu-central-1.amazonaws.com',
      { bucket: 'b', region: 'eu-central-1', website: true }
    ]
  ])('%s', (domain, parsed) => {
    expect(parseS3Domain(domain)).toEqual(parsed)
  })

  it('returns undefined for other origins', () => {
    expect(parseS3Domain('api.example.com')).toBeUndefined()
    expect(parseS3Domain('my-alb-123.us-east-1.elb.amazonaws.com')).toBeUndefined()
  })
})

describe('runPreflight', () => {
  it('passes a correct setup, reading each setting once with read-only calls', async () => {
    const findings = await runPreflight(clients, target)
    expect(statusesOf(findings)).toEqual(allOk(ALL_CHECKS))
    expect(findings.every((f) => f.fix === undefined)).toBe(true)
    expect(cfMock.commandCalls(GetDistributionCommand).map((c) => c.args[0].input)).toEqual([
      { Id: DIST }
    ])
    expect(cfMock.commandCalls(GetOriginAccessControlCommand).map((c) => c.args[0].input)).toEqual([
      { Id: OAC }
    ])
    expect(cfMock.commandCalls(GetKeyGroupCommand).map((c) => c.args[0].input)).toEqual([
      { Id: KEY_GROUP }
    ])
    // The key was found in a trusted group: nothing more to look up.
    expect(cfMock.commandCalls(ListKeyGroupsCommand)).toHaveLength(0)
    expect(cfMock.commandCalls(GetPublicKeyCommand)).toHaveLength(0)
    for (const command of [
      GetBucketPolicyCommand,
      GetPublicAccessBlockCommand,
      GetBucketVersioningCommand,
      GetBucketLifecycleConfigurationCommand
    ]) {
      expect(s3Mock.commandCalls(command).map((c) => c.args[0].input)).toEqual([{ Bucket: BUCKET }])
    }
    expect(preflightFailure(findings)).toBeUndefined()
  })

  it('checks only the bucket without a distribution', async () => {
    const findings = await runPreflight(clients, { ...target, distributionId: undefined })
    expect(findings.map((f) => f.check)).toEqual(BUCKET_CHECKS)
    expect(cfMock.calls()).toHaveLength(0)
  })

  describe('reports a denied read as "could not check", never as a failure', () => {
    it.each([
      ['bucket-policy', GetBucketPolicyCommand, s3Mock, 's3:GetBucketPolicy'],
      ['public-access-block', GetPublicAccessBlockCommand, s3Mock, 's3:GetBucketPublicAccessBlock'],
      ['versioning', GetBucketVersioningCommand, s3Mock, 's3:GetBucketVersioning'],
      ['lifecycle', GetBucketLifecycleConfigurationCommand, s3Mock, 's3:GetLifecycleConfiguration'],
      [
        'origin-access-control',
        GetOriginAccessControlCommand,
        cfMock,
        'cloudfront:GetOriginAccessControl'
      ],
      ['signed-urls', GetKeyGroupCommand, cfMock, 'cloudfront:GetKeyGroup']
    ] as const)('%s', async (check, command, mock, permission) => {
      // Each pair is a (command, its client's mock); the union defeats the overloads.
      ;(mock as typeof s3Mock).on(command as typeof GetBucketPolicyCommand).rejects(denied())
      const findings = await runPreflight(clients, target)
      expectOkExcept(findings, check)
      const finding = only(findings, check)
      expect(finding.status).toBe('unchecked')
      expect(finding.message).toMatch(/^Could not check .*\(needs permission /)
      expect(finding.message).toContain(`(needs permission ${permission})`)
      expect(finding.fix).toContain(`Allow ${permission}`)
      expect(preflightFailure(findings)).toBeUndefined()
    })

    it('GetDistribution: one finding for everything that depends on the distribution', async () => {
      cfMock.on(GetDistributionCommand).rejects(denied())
      const findings = await runPreflight(clients, target)
      expect(statusesOf(findings)).toEqual([['distribution', 'unchecked'], ...allOk(BUCKET_CHECKS)])
      expect(findings[0].message).toContain('bucket policy')
      expect(findings[0].message).toContain('(needs permission cloudfront:GetDistribution)')
    })

    it('GetPublicKey and ListKeyGroups: the signing error stays, with the general fix', async () => {
      cfMock.on(GetKeyGroupCommand).resolves({ KeyGroup: keyGroup(KEY_GROUP, ['K9OTHER']) })
      cfMock.on(GetPublicKeyCommand).rejects(denied())
      cfMock.on(ListKeyGroupsCommand).rejects(denied())
      const signing = only(await runPreflight(clients, target), 'signed-urls')
      expect(signing.status).toBe('error')
      expect(signing.message).toContain(
        `Public key ${KEY} is not in any key group the default cache behavior trusts`
      )
      expect(signing.message).not.toContain('nor in any other key group')
      expect(signing.fix).toContain(`Add public key ${KEY} to key group ${KEY_GROUP}`)
      expect(signing.fix).toContain(`aws cloudfront update-key-group --id ${KEY_GROUP}`)
    })

    it('names every permission pre-flight reads with', () => {
      expect(Object.values(PREFLIGHT_PERMISSIONS).sort()).toEqual([
        'cloudfront:GetDistribution',
        'cloudfront:GetKeyGroup',
        'cloudfront:GetOriginAccessControl',
        'cloudfront:GetPublicKey',
        'cloudfront:ListKeyGroups',
        's3:GetBucketPolicy',
        's3:GetBucketPublicAccessBlock',
        's3:GetBucketVersioning',
        's3:GetLifecycleConfiguration'
      ])
    })
  })

  it('reports other read failures as unchecked, with what AWS said', async () => {
    s3Mock
      .on(GetBucketVersioningCommand)
      .rejects(awsError('InternalError', 500, 'We encountered an internal error'))
    const versioning = only(await runPreflight(clients, target), 'versioning')
    expect(versioning.status).toBe('unchecked')
    expect(versioning.message).toContain('Could not check the versioning of bucket "model-bucket"')
    expect(versioning.message).toContain(
      'InternalError (HTTP 500): We encountered an internal error'
    )
  })

  it('reports a missing bucket once, instead of four settings', async () => {
    for (const command of [
      GetBucketPolicyCommand,
      GetPublicAccessBlockCommand,
      GetBucketVersioningCommand,
      GetBucketLifecycleConfigurationCommand
    ]) {
      s3Mock.on(command as typeof GetBucketPolicyCommand).rejects(awsError('NoSuchBucket', 404))
    }
    const findings = await runPreflight(clients, target)
    expect(findings.filter((f) => f.status !== 'ok').map((f) => [f.check, f.status])).toEqual([
      ['bucket', 'error']
    ])
    expect(findings.map((f) => f.check)).not.toContain('versioning')
    expect(only(findings, 'bucket').fix).toContain('Bucket "model-bucket" does not exist')
  })

  it('rethrows when cancelled', async () => {
    const controller = new AbortController()
    const reason = new DeployError('Cancelled by SIGTERM')
    cfMock.on(GetDistributionCommand).callsFake(() => {
      controller.abort(reason)
      throw awsError('AbortError', 0, 'Request aborted')
    })
    await expect(runPreflight(clients, target, { signal: controller.signal })).rejects.toBe(reason)
    // The SDK's options argument is not in the mock's call type.
    const options = (cfMock.commandCalls(GetDistributionCommand)[0].args as unknown[])[1]
    expect(options).toMatchObject({
      abortSignal: controller.signal
    })
  })

  describe('distribution', () => {
    it('fails when it does not exist, and skips what depends on it', async () => {
      cfMock.on(GetDistributionCommand).rejects(awsError('NoSuchDistribution', 404))
      const findings = await runPreflight(clients, target)
      expect(statusesOf(findings)).toEqual([['distribution', 'error'], ...allOk(BUCKET_CHECKS)])
      expect(findings[0].fix).toContain('aws cloudfront list-distributions')
    })

    it('warns when it is disabled or still deploying', async () => {
      mockDistribution({ ...goodConfig(), Enabled: false }, 'InProgress')
      const findings = await runPreflight(clients, target)
      const state = findings.filter((f) => f.check === 'distribution')
      expect(state.map((f) => f.status)).toEqual(['warning', 'warning'])
      expect(state[0].message).toContain('is disabled')
      expect(state[1].message).toContain('is InProgress')
      expect(state[1].fix).toContain(`aws cloudfront wait distribution-deployed --id ${DIST}`)
      expect(preflightFailure(findings)).toBeUndefined()
    })
  })

  describe('origin', () => {
    it('fails when no origin is the bucket, listing the origins', async () => {
      const config = goodConfig()
      config.Origins!.Items![0].DomainName = 'other-bucket.s3.us-east-1.amazonaws.com'
      mockDistribution(config)
      const findings = await runPreflight(clients, target)
      const origin = only(findings, 'origin')
      expect(origin.status).toBe('error')
      expect(origin.message).toContain('"bucket-origin" → other-bucket.s3.us-east-1.amazonaws.com')
      expect(origin.fix).toContain(`${BUCKET}.s3.us-east-1.amazonaws.com`)
      // Nothing to check the OAC of.
      expect(findings.map((f) => f.check)).not.toContain('origin-access-control')
    })

    it('fails when the behavior serving the prefix uses another origin', async () => {
      const config = goodConfig()
      config.CacheBehaviors = {
        Quantity: 1,
        Items: [
          { PathPattern: '/models/*', TargetOriginId: 'api', ViewerProtocolPolicy: 'allow-all' }
        ]
      }
      mockDistribution(config)
      const origin = only(await runPreflight(clients, target), 'origin')
      expect(origin.status).toBe('error')
      expect(origin.message).toContain(
        `Cache behavior "/models/*" of distribution ${DIST} sends requests for /models/v1/… to origin "api" (api.example.com)`
      )
      expect(origin.fix).toContain(`Set its origin to "${ORIGIN}"`)
    })

    it('accepts an origin group with the bucket as a member', async () => {
      const config = goodConfig()
      config.OriginGroups = {
        Quantity: 1,
        Items: [
          {
            Id: 'group',
            FailoverCriteria: { StatusCodes: { Quantity: 1, Items: [500] } },
            Members: { Quantity: 2, Items: [{ OriginId: ORIGIN }, { OriginId: 'api' }] }
          }
        ]
      }
      config.DefaultCacheBehavior!.TargetOriginId = 'group'
      mockDistribution(config)
      expectOkExcept(await runPreflight(clients, target))
    })

    it('warns on a website endpoint, which cannot use an OAC', async () => {
      const config = goodConfig()
      config.Origins!.Items![0] = {
        Id: ORIGIN,
        DomainName: `${BUCKET}.s3-website-us-east-1.amazonaws.com`,
        CustomOriginConfig: { HTTPPort: 80, HTTPSPort: 443, OriginProtocolPolicy: 'http-only' }
      }
      mockDistribution(config)
      const findings = await runPreflight(clients, target)
      expect(only(findings, 'origin')).toMatchObject({ status: 'warning' })
      expect(only(findings, 'origin').message).toContain('website endpoint')
      expect(only(findings, 'origin').fix).toContain(`${BUCKET}.s3.us-east-1.amazonaws.com`)
      expect(only(findings, 'origin-access-control').status).toBe('warning')
      expect(cfMock.commandCalls(GetOriginAccessControlCommand)).toHaveLength(0)
    })

    it('warns on another region endpoint and on an origin path', async () => {
      const config = goodConfig()
      Object.assign(config.Origins!.Items![0], {
        DomainName: `${BUCKET}.s3.eu-west-1.amazonaws.com`,
        OriginPath: '/prod'
      })
      mockDistribution(config)
      const origin = (await runPreflight(clients, target)).filter((f) => f.check === 'origin')
      expect(origin.map((f) => f.status)).toEqual(['warning', 'warning'])
      expect(origin[0].message).toContain('uses the eu-west-1 endpoint')
      expect(origin[1].message).toContain('origin path "/prod"')
    })
  })

  describe('origin access control', () => {
    it('fails when the origin has none', async () => {
      const config = goodConfig()
      config.Origins!.Items![0].OriginAccessControlId = ''
      mockDistribution(config)
      const findings = await runPreflight(clients, target)
      expectOkExcept(findings, 'origin-access-control')
      const access = only(findings, 'origin-access-control')
      expect(access.status).toBe('error')
      expect(access.message).toContain('AccessDenied')
      expect(access.fix).toContain(
        `aws cloudfront create-origin-access-control --origin-access-control-config Name=${BUCKET}-oac,SigningProtocol=sigv4,SigningBehavior=always,OriginAccessControlOriginType=s3`
      )
      expect(access.fix).toContain(`Origins → "${ORIGIN}" → Edit`)
    })

    it('warns on a legacy OAI, and wants the policy to grant that OAI', async () => {
      const config = goodConfig()
      Object.assign(config.Origins!.Items![0], {
        OriginAccessControlId: '',
        S3OriginConfig: { OriginAccessIdentity: 'origin-access-identity/cloudfront/E2OAI' }
      })
      mockDistribution(config)
      let findings = await runPreflight(clients, target)
      expect(only(findings, 'origin-access-control').status).toBe('warning')
      expect(only(findings, 'bucket-policy').status).toBe('error')
      expect(only(findings, 'bucket-policy').message).toContain('origin access identity E2OAI')

      mockPolicy(
        statement({
          Principal: {
            AWS: 'arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E2OAI'
          },
          Condition: undefined
        })
      )
      findings = await runPreflight(clients, target)
      expectOkExcept(findings, 'origin-access-control')
    })

    it.each([
      [
        'does not exist',
        () =>
          cfMock
            .on(GetOriginAccessControlCommand)
            .rejects(awsError('NoSuchOriginAccessControl', 404)),
        'which does not exist'
      ],
      [
        'never signs',
        () =>
          cfMock
            .on(GetOriginAccessControlCommand)
            .resolves(originAccessControl(OAC, { SigningBehavior: 'never' })),
        'signing behavior "never"'
      ],
      [
        'is not for S3',
        () =>
          cfMock
            .on(GetOriginAccessControlCommand)
            .resolves(originAccessControl(OAC, { OriginAccessControlOriginType: 'mediastore' })),
        'origin type "mediastore"'
      ]
    ])('fails when the attached OAC %s', async (_, arrange, expected) => {
      arrange()
      const access = only(await runPreflight(clients, target), 'origin-access-control')
      expect(access.status).toBe('error')
      expect(access.message).toContain(expected)
      expect(access.fix).toBeTruthy()
    })
  })

  describe('bucket policy', () => {
    it('fails when the policy names another distribution, giving the statement to add', async () => {
      const other = 'arn:aws:cloudfront::123456789012:distribution/EOTHER'
      mockPolicy(statement({ Condition: { StringEquals: { 'AWS:SourceArn': other } } }))
      const findings = await runPreflight(clients, target)
      expectOkExcept(findings, 'bucket-policy')
      const policy = only(findings, 'bucket-policy')
      expect(policy.status).toBe('error')
      expect(policy.message).toContain(`only for ${other}, not for this distribution (${ARN})`)
      expect(policy.fix).toContain(
        JSON.stringify({
          Sid: 'AllowCloudFrontServicePrincipalReadOnly',
          Effect: 'Allow',
          Principal: { Service: 'cloudfront.amazonaws.com' },
          Action: 's3:GetObject',
          Resource: `arn:aws:s3:::${BUCKET}/*`,
          Condition: { StringEquals: { 'AWS:SourceArn': ARN } }
        })
      )
    })

    it('fails without a policy, giving the command that sets one', async () => {
      s3Mock.on(GetBucketPolicyCommand).rejects(awsError('NoSuchBucketPolicy', 404))
      const policy = only(await runPreflight(clients, target), 'bucket-policy')
      expect(policy.status).toBe('error')
      expect(policy.message).toContain('has no bucket policy')
      expect(policy.fix).toContain(
        `aws s3api put-bucket-policy --bucket ${BUCKET} --policy '{"Version":"2012-10-17","Statement":[{`
      )
    })

    it('fails when the grant does not cover the version prefix', async () => {
      mockPolicy(statement({ Resource: `arn:aws:s3:::${BUCKET}/public/*` }))
      const policy = only(await runPreflight(clients, target), 'bucket-policy')
      expect(policy.status).toBe('error')
      expect(policy.message).toContain(
        `read only arn:aws:s3:::${BUCKET}/public/*, not ${BUCKET}/models/v1/*`
      )
    })

    it('fails when no statement grants CloudFront s3:GetObject', async () => {
      mockPolicy(
        statement({ Action: 's3:PutObject' }),
        statement({ Effect: 'Deny' }),
        statement({ Principal: { AWS: 'arn:aws:iam::123456789012:root' } })
      )
      const policy = only(await runPreflight(clients, target), 'bucket-policy')
      expect(policy.status).toBe('error')
      expect(policy.message).toContain('has no statement that lets cloudfront.amazonaws.com read')
    })

    it('warns when the grant is not limited to this distribution', async () => {
      mockPolicy(statement({ Condition: undefined }))
      const policy = only(await runPreflight(clients, target), 'bucket-policy')
      expect(policy.status).toBe('warning')
      expect(policy.message).toContain('any CloudFront distribution, in any AWS account')
      expect(policy.fix).toContain(`{"StringEquals":{"AWS:SourceArn":"${ARN}"}}`)
    })

    it('warns when the policy makes the bucket public, and fails when signing', async () => {
      mockPolicy(statement(), statement({ Principal: '*', Condition: undefined }))
      const unsigned = await runPreflight(clients, { ...target, signingKeyPairId: undefined })
      const policy = only(unsigned, 'bucket-policy')
      expect(policy.status).toBe('warning')
      expect(policy.message).toContain('lets anyone (Principal "*") read')
      expect(policy.fix).toContain(`"AWS:SourceArn":"${ARN}"`)
      const signed = only(await runPreflight(clients, target), 'bucket-policy')
      expect(signed.status).toBe('error')
      expect(signed.message).toContain('bypassing CloudFront and the signed URLs')
    })

    it.each([
      [
        'ArnLike with a wildcard',
        {
          Condition: {
            ArnLike: { 'aws:sourcearn': 'arn:aws:cloudfront::123456789012:distribution/*' }
          }
        }
      ],
      [
        'a list of ARNs',
        {
          Condition: {
            StringEquals: { 'AWS:SourceArn': ['arn:aws:cloudfront::1:distribution/EX', ARN] }
          }
        }
      ],
      [
        's3:Get* on the whole partition',
        { Action: ['s3:ListBucket', 's3:Get*'], Resource: 'arn:aws:s3:::*' }
      ],
      ['Principal "*"', { Principal: '*' }],
      [
        'a list of services',
        { Principal: { Service: ['lambda.amazonaws.com', 'cloudfront.amazonaws.com'] } }
      ]
    ])('accepts %s', async (_, overrides) => {
      mockPolicy(statement(overrides))
      expect(only(await runPreflight(clients, target), 'bucket-policy').status).toBe('ok')
    })

    it('accepts a single statement object', async () => {
      s3Mock
        .on(GetBucketPolicyCommand)
        .resolves({ Policy: JSON.stringify({ Version: '2012-10-17', Statement: statement() }) })
      expect(only(await runPreflight(clients, target), 'bucket-policy').status).toBe('ok')
    })
  })

  describe('signed URLs', () => {
    it('fails when the serving behavior does not require signatures', async () => {
      const config = goodConfig()
      config.DefaultCacheBehavior!.TrustedKeyGroups = { Enabled: false, Quantity: 0 }
      mockDistribution(config)
      const findings = await runPreflight(clients, target)
      expectOkExcept(findings, 'signed-urls')
      const signing = only(findings, 'signed-urls')
      expect(signing.status).toBe('error')
      expect(signing.message).toContain('does not restrict viewer access')
      expect(signing.fix).toContain('"Enabled":true')
      expect(cfMock.commandCalls(GetKeyGroupCommand)).toHaveLength(0)
    })

    it('is not checked without a signing key', async () => {
      const config = goodConfig()
      config.DefaultCacheBehavior!.TrustedKeyGroups = { Enabled: false, Quantity: 0 }
      mockDistribution(config)
      const findings = await runPreflight(clients, { ...target, signingKeyPairId: undefined })
      expect(findings.map((f) => f.check)).not.toContain('signed-urls')
      expectOkExcept(findings)
    })

    it('checks each behavior that may serve the prefix', async () => {
      const config = goodConfig()
      config.CacheBehaviors = {
        Quantity: 1,
        Items: [
          { PathPattern: '*.onnx', TargetOriginId: ORIGIN, ViewerProtocolPolicy: 'allow-all' }
        ]
      }
      mockDistribution(config)
      const signing = (await runPreflight(clients, target)).filter((f) => f.check === 'signed-urls')
      expect(signing.map((f) => [f.status, f.message.slice(0, 40)])).toEqual([
        ['error', 'Cache behavior "*.onnx" of distribution '],
        ['ok', 'The default cache behavior of distributi']
      ])
    })

    it('warns on legacy trusted signers, which it cannot check', async () => {
      const config = goodConfig()
      config.DefaultCacheBehavior!.TrustedKeyGroups = { Enabled: false, Quantity: 0 }
      config.DefaultCacheBehavior!.TrustedSigners = { Enabled: true, Quantity: 1, Items: ['self'] }
      mockDistribution(config)
      const signing = only(await runPreflight(clients, target), 'signed-urls')
      expect(signing.status).toBe('warning')
      expect(signing.message).toContain('legacy CloudFront key pairs of account(s) self')
    })

    it('fails when the key is in a group the behavior does not trust, naming it (all pages)', async () => {
      cfMock.on(GetKeyGroupCommand).resolves({ KeyGroup: keyGroup(KEY_GROUP, ['K9OTHER']) })
      cfMock.on(GetPublicKeyCommand).resolves({ PublicKey: undefined })
      cfMock
        .on(ListKeyGroupsCommand)
        .resolvesOnce({
          KeyGroupList: {
            MaxItems: 1,
            Quantity: 1,
            NextMarker: 'page2',
            Items: [{ KeyGroup: keyGroup(KEY_GROUP, ['K9OTHER']) }]
          }
        })
        .resolvesOnce({
          KeyGroupList: {
            MaxItems: 1,
            Quantity: 1,
            Items: [{ KeyGroup: keyGroup('kg-other', [KEY]) }]
          }
        })
      const findings = await runPreflight(clients, target)
      expectOkExcept(findings, 'signed-urls')
      const signing = only(findings, 'signed-urls')
      expect(signing.status).toBe('error')
      expect(signing.message).toContain(
        `Public key ${KEY} is in key group kg-other (kg-other-name), which the default cache behavior does not trust.`
      )
      expect(signing.message).toContain(`it trusts key group(s) ${KEY_GROUP} (${KEY_GROUP}-name)`)
      expect(signing.message).toContain('CloudFront answers 403')
      expect(signing.fix).toContain(
        'Add key group kg-other to the trusted key groups of the default cache behavior'
      )
      expect(cfMock.commandCalls(ListKeyGroupsCommand).map((c) => c.args[0].input.Marker)).toEqual([
        undefined,
        'page2'
      ])
    })

    it('fails when the key does not exist', async () => {
      cfMock.on(GetKeyGroupCommand).resolves({ KeyGroup: keyGroup(KEY_GROUP, ['K9OTHER']) })
      cfMock.on(GetPublicKeyCommand).rejects(awsError('NoSuchPublicKey', 404))
      cfMock.on(ListKeyGroupsCommand).resolves({ KeyGroupList: { MaxItems: 100, Quantity: 0 } })
      const signing = only(await runPreflight(clients, target), 'signed-urls')
      expect(signing.status).toBe('error')
      expect(signing.message).toMatch(new RegExp(`^No public key with ID ${KEY} exists`))
      expect(signing.fix).toContain('aws cloudfront list-public-keys')
    })

    it('fails when a trusted key group does not exist', async () => {
      cfMock.on(GetKeyGroupCommand).rejects(awsError('NoSuchResource', 404))
      cfMock.on(GetPublicKeyCommand).resolves({ PublicKey: undefined })
      cfMock.on(ListKeyGroupsCommand).resolves({ KeyGroupList: { MaxItems: 100, Quantity: 0 } })
      const signing = only(await runPreflight(clients, target), 'signed-urls')
      expect(signing.status).toBe('error')
      expect(signing.message).toContain(
        `it trusts no existing key group (key group(s) ${KEY_GROUP} it names do not exist)`
      )
      expect(signing.fix).toContain(`Create a key group holding public key ${KEY}`)
    })
  })

  describe('bucket settings', () => {
    it('warns when public access is not blocked, listing the flags, and fails when signing', async () => {
      s3Mock.on(GetPublicAccessBlockCommand).resolves({
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          IgnorePublicAcls: true,
          BlockPublicPolicy: false,
          RestrictPublicBuckets: false
        }
      })
      const unsigned = await runPreflight(clients, { ...target, signingKeyPairId: undefined })
      const block = only(unsigned, 'public-access-block')
      expect(block.status).toBe('warning')
      expect(block.message).toContain(
        'partly off (BlockPublicPolicy, RestrictPublicBuckets not set)'
      )
      expect(block.fix).toContain('RestrictPublicBuckets=true')

      const signed = await runPreflight(clients, target)
      expect(only(signed, 'public-access-block').status).toBe('error')
      expect(preflightFailure(signed)?.message).toContain('public-access-block')
    })

    it('treats a missing public access block as off', async () => {
      s3Mock
        .on(GetPublicAccessBlockCommand)
        .rejects(awsError('NoSuchPublicAccessBlockConfiguration', 404))
      const block = only(await runPreflight(clients, target), 'public-access-block')
      expect(block.status).toBe('error')
      expect(block.message).toContain('Block Public Access is off')
    })

    it.each([
      [{ Status: 'Suspended' as const }, 'suspended'],
      [{}, 'not enabled']
    ])('warns when versioning is %j', async (output, state) => {
      s3Mock.on(GetBucketVersioningCommand).resolves(output)
      const versioning = only(await runPreflight(clients, target), 'versioning')
      expect(versioning.status).toBe('warning')
      expect(versioning.message).toContain(`Versioning is ${state}`)
      expect(versioning.fix).toContain('--versioning-configuration Status=Enabled')
    })

    it('warns without lifecycle rules, giving the whole configuration to set', async () => {
      s3Mock
        .on(GetBucketLifecycleConfigurationCommand)
        .rejects(awsError('NoSuchLifecycleConfiguration', 404))
      const lifecycle = only(await runPreflight(clients, target), 'lifecycle')
      expect(lifecycle.status).toBe('warning')
      expect(lifecycle.fix).toContain(`--lifecycle-configuration '{"Rules":[{`)
    })

    it.each([
      ['disabled', { ...abortRule, Status: 'Disabled' as const }],
      ['for another prefix', { ...abortRule, Filter: { Prefix: 'datasets/' } }],
      ['for a tag', { ...abortRule, Filter: { Tag: { Key: 'tmp', Value: '1' } } }],
      [
        'that only expires objects',
        { ID: 'expire', Status: 'Enabled' as const, Filter: {}, Expiration: { Days: 30 } }
      ]
    ])('warns when the only rule is %s, telling to keep the existing rules', async (_, rule) => {
      mockLifecycle(rule)
      const lifecycle = only(await runPreflight(clients, target), 'lifecycle')
      expect(lifecycle.status).toBe('warning')
      expect(lifecycle.fix).toContain('replaces them all')
      expect(lifecycle.fix).toContain('"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1}')
    })

    it.each([
      ['a parent prefix', { ...abortRule, Filter: { Prefix: 'models/' } }],
      ['an And filter', { ...abortRule, Filter: { And: { Prefix: 'models/v' } } }],
      ['the legacy Prefix field', { ...abortRule, Filter: undefined, Prefix: '' }]
    ])('accepts a rule with %s', async (_, rule) => {
      mockLifecycle({ ID: 'other', Status: 'Enabled', Filter: {}, Expiration: { Days: 9 } }, rule)
      const lifecycle = only(await runPreflight(clients, target), 'lifecycle')
      expect(lifecycle.status).toBe('ok')
      expect(lifecycle.message).toContain('after 1 day(s)')
    })
  })
})

describe('preflightFailure and formatFinding', () => {
  const findings: PreflightFinding[] = [
    { check: 'distribution', status: 'ok', message: 'Fine.' },
    { check: 'versioning', status: 'warning', message: 'Versioning off.', fix: 'Turn it on.' },
    { check: 'bucket-policy', status: 'error', message: 'Policy wrong.', fix: 'Add statement.' },
    { check: 'origin', status: 'error', message: 'Origin wrong.' },
    { check: 'lifecycle', status: 'unchecked', message: 'Could not check.' }
  ]

  it('lists every error with its fix in one DeployError', () => {
    const err = preflightFailure(findings)
    expect(err).toBeInstanceOf(DeployError)
    expect(err?.message).toBe(
      'Pre-flight found 2 problem(s) that would leave the models unreachable or unprotected; nothing was uploaded.\n' +
        '1. bucket-policy: Policy wrong.\n   Fix: Add statement.\n' +
        '2. origin: Origin wrong.'
    )
    expect(err?.hint).toContain('`preflight: false`')
  })

  it('returns undefined without errors', () => {
    expect(preflightFailure(findings.filter((f) => f.status !== 'error'))).toBeUndefined()
  })

  it('formats a finding for the log', () => {
    expect(formatFinding(findings[1])).toBe(
      'Pre-flight versioning: Versioning off.\nFix: Turn it on.'
    )
    expect(formatFinding(findings[0])).toBe('Pre-flight distribution: Fine.')
  })
})
