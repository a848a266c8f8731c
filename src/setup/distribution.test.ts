import {
  CloudFrontClient,
  CreateDistributionWithTagsCommand,
  CreateKeyGroupCommand,
  CreateOriginAccessControlCommand,
  CreatePublicKeyCommand,
  GetDistributionCommand,
  GetKeyGroupCommand,
  GetOriginAccessControlCommand,
  ListDistributionsCommand,
  ListKeyGroupsCommand,
  ListOriginAccessControlsCommand,
  ListPublicKeysCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UpdateDistributionCommand,
  type DistributionConfig,
  type DistributionSummary
} from '@aws-sdk/client-cloudfront'
import {
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  S3Client
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { DeployError, InputError } from '../common/errors.js'
import { runPreflight } from '../cdn/preflight/index.js'
import { abortRule, awsError } from '../../__fixtures__/preflight-world.js'
import { ALL_PUBLIC_ACCESS_BLOCKED, oacBucketPolicy } from '../../__fixtures__/preflight.js'
import { ALL_CHECKS } from '../../__fixtures__/preflight.js'
import { setupContext } from '../../__fixtures__/setup-context.js'
import { generateSigningKeys, publicKeyPem } from '../../__fixtures__/signing.js'
import {
  CACHING_OPTIMIZED,
  ensureDistribution,
  newDistributionConfig,
  type DistributionOptions
} from './distribution.js'
import { ensureOriginAccessControl } from './origin-access-control.js'
import { ensureKeyGroup, ensurePublicKey } from './signing-keys.js'

const cfMock = mockClient(CloudFrontClient)
const s3Mock = mockClient(S3Client)
beforeEach(() => {
  cfMock.reset()
  s3Mock.reset()
})

const BUCKET = 'model-bucket'
const DIST = 'E2DIST'
const ARN = `arn:aws:cloudfront::123456789012:distribution/${DIST}`
const DOMAIN = 'd111.cloudfront.net'
const COMMENT = `model-cdn-deploy: ${BUCKET}`
const ORIGIN_DOMAIN = `${BUCKET}.s3.eu-west-1.amazonaws.com`
const CERT = 'arn:aws:acm:us-east-1:123456789012:certificate/abc-123'
const options: DistributionOptions = {
  bucket: BUCKET,
  region: 'eu-west-1',
  originAccessControlId: 'E3OAC',
  keyGroupId: 'kg-ours',
  priceClass: 'PriceClass_100'
}
const methods = { Quantity: 2, Items: ['GET', 'HEAD'] }
const behavior = (trusted: string[]) => ({
  TargetOriginId: `s3-${BUCKET}`,
  ViewerProtocolPolicy: 'redirect-to-https',
  CachePolicyId: CACHING_OPTIMIZED,
  AllowedMethods: { ...methods, CachedMethods: methods },
  Compress: true,
  TrustedKeyGroups: trusted.length
    ? { Enabled: true, Quantity: trusted.length, Items: trusted }
    : { Enabled: false, Quantity: 0 }
})

const summary = (overrides: Partial<DistributionSummary> = {}) =>
  ({
    Id: DIST,
    ARN,
    DomainName: DOMAIN,
    Comment: COMMENT,
    Origins: { Quantity: 1, Items: [{ Id: `s3-${BUCKET}`, DomainName: ORIGIN_DOMAIN }] },
    ...overrides
  }) as DistributionSummary
const distributions = (items: DistributionSummary[], NextMarker?: string) => ({
  DistributionList: {
    Marker: '',
    MaxItems: 100,
    IsTruncated: NextMarker !== undefined,
    Quantity: items.length,
    Items: items,
    NextMarker
  }
})
function mockGetDistribution(config: DistributionConfig, id = DIST, status = 'Deployed'): void {
  cfMock.on(GetDistributionCommand).resolves({
    Distribution: {
      Id: id,
      ARN: `arn:aws:cloudfront::123456789012:distribution/${id}`,
      DomainName: DOMAIN,
      Status: status,
      LastModifiedTime: new Date(),
      InProgressInvalidationBatches: 0,
      DistributionConfig: config
    },
    ETag: 'etag-3'
  })
}
const updatedConfig = () => cfMock.commandCalls(UpdateDistributionCommand)[0].args[0].input

describe('ensureDistribution: creating', () => {
  beforeEach(() => {
    cfMock.on(ListDistributionsCommand).resolves(distributions([]))
    cfMock
      .on(CreateDistributionWithTagsCommand)
      .resolves({ Distribution: { Id: DIST, ARN, DomainName: DOMAIN } as never })
  })

  it('creates a private, HTTPS, signed distribution of the bucket, tagged', async () => {
    const { ctx, changes } = setupContext()
    await expect(ensureDistribution(ctx, options)).resolves.toEqual({
      id: DIST,
      arn: ARN,
      domain: DOMAIN
    })
    expect(cfMock.commandCalls(CreateDistributionWithTagsCommand)[0].args[0].input).toEqual({
      DistributionConfigWithTags: {
        DistributionConfig: {
          CallerReference: expect.stringMatching(/^model-cdn-deploy-model-bucket-\d+$/),
          Comment: COMMENT,
          Enabled: true,
          PriceClass: 'PriceClass_100',
          HttpVersion: 'http2and3',
          IsIPV6Enabled: true,
          Origins: {
            Quantity: 1,
            Items: [
              {
                Id: `s3-${BUCKET}`,
                DomainName: ORIGIN_DOMAIN,
                S3OriginConfig: { OriginAccessIdentity: '' },
                OriginAccessControlId: 'E3OAC'
              }
            ]
          },
          DefaultCacheBehavior: behavior(['kg-ours']),
          CacheBehaviors: { Quantity: 0 },
          Aliases: { Quantity: 0 },
          ViewerCertificate: { CloudFrontDefaultCertificate: true }
        },
        Tags: { Items: [{ Key: 'model-cdn-deploy', Value: 'setup' }] }
      }
    })
    expect(changes).toEqual([
      {
        resource: 'distribution',
        action: 'create',
        detail: `"${COMMENT}": origin ${ORIGIN_DOMAIN} with Origin Access Control E3OAC, HTTPS (redirect), HTTP/2 and 3, CachingOptimized, signed URLs (key group kg-ours) required for every path, PriceClass_100`
      }
    ])
  })

  it('signs only the signed path pattern, in its own behaviour, and no path without a key group', () => {
    const config = newDistributionConfig({ ...options, signedPathPattern: 'private/*' })
    expect(config.DefaultCacheBehavior).toEqual(behavior([]))
    expect(config.CacheBehaviors).toEqual({
      Quantity: 1,
      Items: [{ PathPattern: 'private/*', ...behavior(['kg-ours']) }]
    })
    const unsigned = newDistributionConfig({ ...options, keyGroupId: undefined })
    expect(unsigned.DefaultCacheBehavior).toEqual(behavior([]))
    expect(unsigned.CacheBehaviors).toEqual({ Quantity: 0 })
  })

  it('serves an alternate domain with its ACM certificate, SNI and TLS 1.2', async () => {
    const { ctx } = setupContext()
    await ensureDistribution(ctx, { ...options, domain: 'cdn.example.com', certificateArn: CERT })
    const config = cfMock.commandCalls(CreateDistributionWithTagsCommand)[0].args[0].input
      .DistributionConfigWithTags?.DistributionConfig
    expect(config?.Aliases).toEqual({ Quantity: 1, Items: ['cdn.example.com'] })
    expect(config?.ViewerCertificate).toEqual({
      ACMCertificateArn: CERT,
      SSLSupportMethod: 'sni-only',
      MinimumProtocolVersion: 'TLSv1.2_2021'
    })
  })

  it.each([
    [{ domain: 'cdn.example.com' }, 'needs a certificate'],
    [{ certificateArn: CERT }, 'needs a certificate'],
    [
      { domain: 'cdn.example.com', certificateArn: CERT.replace('us-east-1', 'eu-west-1') },
      'not the ARN of an ACM certificate in us-east-1'
    ]
  ])('refuses %j before any request', async (alias, message) => {
    const { ctx } = setupContext()
    const err = await ensureDistribution(ctx, { ...options, ...alias }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InputError)
    expect((err as InputError).message).toContain(message)
    expect(cfMock.calls()).toHaveLength(0)
  })

  it('in a dry run creates nothing and has no id', async () => {
    const { ctx, changes } = setupContext(true)
    const dry = { ...options, originAccessControlId: undefined, keyGroupId: undefined }
    await expect(ensureDistribution(ctx, { ...dry, signedUrls: true })).resolves.toBeUndefined()
    expect(cfMock.commandCalls(CreateDistributionWithTagsCommand)).toHaveLength(0)
    expect(changes[0].detail).toContain('Origin Access Control (to be created)')
    expect(changes[0].detail).toContain('signed URLs (key group to be created) required')
  })

  it('warns of a distribution of the bucket that setup did not make, and makes its own', async () => {
    cfMock
      .on(ListDistributionsCommand)
      .resolves(distributions([summary({ Id: 'E2THEIRS', Comment: '' })]))
    cfMock.on(ListTagsForResourceCommand).resolves({ Tags: { Items: [] } })
    const { ctx, logger } = setupContext()
    await ensureDistribution(ctx, options)
    expect(logger.warnings).toEqual([expect.stringContaining('E2THEIRS already serve bucket')])
    expect(cfMock.commandCalls(CreateDistributionWithTagsCommand)).toHaveLength(1)
  })

  it('needs the ids of the OAC and the key group outside a dry run', async () => {
    const { ctx } = setupContext()
    const noOac = { ...options, originAccessControlId: undefined }
    await expect(ensureDistribution(ctx, noOac)).rejects.toThrow('needs the ids')
    const noGroup = { ...options, keyGroupId: undefined, signedUrls: true }
    await expect(ensureDistribution(ctx, noGroup)).rejects.toThrow('needs the ids')
    expect(cfMock.calls()).toHaveLength(0)
  })

  it('names the permissions creating needs when refused', async () => {
    cfMock.on(CreateDistributionWithTagsCommand).rejects(awsError('AccessDenied', 403))
    const { ctx } = setupContext()
    await expect(ensureDistribution(ctx, options)).rejects.toThrow(
      '(cloudfront:CreateDistribution and cloudfront:TagResource): AWS said AccessDenied'
    )
  })
})

describe('ensureDistribution: finding it again', () => {
  it('finds its own by comment on a later page, and changes nothing when it is tight', async () => {
    cfMock
      .on(ListDistributionsCommand, { Marker: undefined })
      .resolves(distributions([summary({ Id: 'E2OTHER', Comment: 'x', Origins: undefined })], 'p2'))
    cfMock.on(ListDistributionsCommand, { Marker: 'p2' }).resolves(distributions([summary()]))
    mockGetDistribution(newDistributionConfig(options))
    const { ctx, changes } = setupContext()

    await expect(ensureDistribution(ctx, options)).resolves.toEqual({
      id: DIST,
      arn: ARN,
      domain: DOMAIN
    })
    expect(cfMock.commandCalls(GetDistributionCommand)[0].args[0].input).toEqual({ Id: DIST })
    expect(cfMock.commandCalls(CreateDistributionWithTagsCommand)).toHaveLength(0)
    expect(cfMock.commandCalls(UpdateDistributionCommand)).toHaveLength(0)
    expect(changes).toEqual([])
  })

  it('finds one it adopted by its tag', async () => {
    cfMock.on(ListDistributionsCommand).resolves(distributions([summary({ Comment: 'mine' })]))
    cfMock
      .on(ListTagsForResourceCommand)
      .resolves({ Tags: { Items: [{ Key: 'model-cdn-deploy', Value: 'setup' }] } })
    mockGetDistribution(newDistributionConfig(options))
    const { ctx, changes } = setupContext()
    await expect(ensureDistribution(ctx, options)).resolves.toMatchObject({ id: DIST })
    expect(cfMock.commandCalls(ListTagsForResourceCommand)[0].args[0].input).toEqual({
      Resource: ARN
    })
    expect(changes).toEqual([])
  })

  it('adopts the distribution given, tagging it once', async () => {
    mockGetDistribution(newDistributionConfig(options), 'E2GIVEN')
    cfMock.on(ListTagsForResourceCommand).resolves({ Tags: { Items: [] } })
    const { ctx, changes } = setupContext()
    await expect(
      ensureDistribution(ctx, { ...options, distributionId: 'E2GIVEN' })
    ).resolves.toMatchObject({ id: 'E2GIVEN' })
    expect(cfMock.commandCalls(ListDistributionsCommand)).toHaveLength(0)
    expect(cfMock.commandCalls(TagResourceCommand)[0].args[0].input).toEqual({
      Resource: 'arn:aws:cloudfront::123456789012:distribution/E2GIVEN',
      Tags: { Items: [{ Key: 'model-cdn-deploy', Value: 'setup' }] }
    })
    expect(changes).toEqual([
      {
        resource: 'distribution',
        action: 'update',
        detail: 'E2GIVEN: tag model-cdn-deploy=setup added, so setup finds it again'
      }
    ])
  })

  it('refuses several distributions with its comment, and a given one that does not exist', async () => {
    cfMock
      .on(ListDistributionsCommand)
      .resolves(distributions([summary({ Id: 'E2A' }), summary({ Id: 'E2B' })]))
    const { ctx } = setupContext()
    const several = await ensureDistribution(ctx, options).catch((e: unknown) => e)
    expect(several).toBeInstanceOf(DeployError)
    expect((several as DeployError).message).toContain('E2A, E2B')

    cfMock.on(GetDistributionCommand).rejects(awsError('NoSuchDistribution', 404))
    const missing = await ensureDistribution(ctx, { ...options, distributionId: 'E2NOPE' }).catch(
      (e: unknown) => e
    )
    expect(missing).toBeInstanceOf(InputError)
    expect((missing as InputError).message).toContain('Distribution E2NOPE does not exist')
  })
})

/** A distribution of the bucket set up by hand, loosely. */
function looseConfig(): DistributionConfig {
  const config = newDistributionConfig(options)
  config.HttpVersion = 'http2'
  Object.assign(config.Origins!.Items![0], {
    OriginAccessControlId: '',
    S3OriginConfig: { OriginAccessIdentity: 'origin-access-identity/cloudfront/E2OAI' }
  })
  config.Origins!.Items!.push({ Id: 'api', DomainName: 'api.example.com' })
  config.DefaultCacheBehavior = {
    ...behavior([]),
    ViewerProtocolPolicy: 'allow-all',
    TrustedKeyGroups: { Enabled: true, Quantity: 1, Items: ['kg-theirs'] }
  } as never
  config.CacheBehaviors = {
    Quantity: 2,
    Items: [
      {
        PathPattern: 'api/*',
        ...behavior([]),
        TargetOriginId: 'api',
        ViewerProtocolPolicy: 'allow-all'
      },
      { PathPattern: 'raw/*', ...behavior([]), ViewerProtocolPolicy: 'https-only' }
    ] as never
  }
  return config
}

describe('ensureDistribution: tightening', () => {
  beforeEach(() => {
    cfMock.on(ListDistributionsCommand).resolves(distributions([summary()]))
    cfMock.on(UpdateDistributionCommand).resolves({})
  })

  it('tightens what serves the bucket, one change per field, never loosening or removing', async () => {
    mockGetDistribution(looseConfig())
    const { ctx, changes } = setupContext()
    await ensureDistribution(ctx, options)

    const sent = updatedConfig()
    expect(sent.Id).toBe(DIST)
    expect(sent.IfMatch).toBe('etag-3')
    const config = sent.DistributionConfig!
    expect(config.Origins?.Items?.[0]).toMatchObject({
      OriginAccessControlId: 'E3OAC',
      S3OriginConfig: { OriginAccessIdentity: '' }
    })
    expect(config.HttpVersion).toBe('http2and3')
    expect(config.DefaultCacheBehavior?.ViewerProtocolPolicy).toBe('redirect-to-https')
    expect(config.DefaultCacheBehavior?.TrustedKeyGroups).toEqual({
      Enabled: true,
      Quantity: 2,
      Items: ['kg-theirs', 'kg-ours']
    })
    const [api, raw] = config.CacheBehaviors!.Items!
    expect(api.ViewerProtocolPolicy).toBe('allow-all') // another origin's: not setup's to change
    expect(api.TrustedKeyGroups?.Enabled).toBe(false)
    expect(raw.ViewerProtocolPolicy).toBe('https-only')
    expect(raw.TrustedKeyGroups?.Items).toEqual(['kg-ours'])
    expect(changes.map((c) => c.detail)).toEqual([
      `${DIST}: origin "s3-${BUCKET}": Origin Access Control none → E3OAC`,
      `${DIST}: origin "s3-${BUCKET}": origin access identity origin-access-identity/cloudfront/E2OAI replaced by the Origin Access Control`,
      `${DIST}: default cache behavior: viewer protocol allow-all → redirect-to-https`,
      `${DIST}: HTTP version http2 → http2and3`,
      `${DIST}: cache behavior "raw/*": trusts key group kg-ours, requiring signed URLs`,
      `${DIST}: default cache behavior: trusts key group kg-ours, requiring signed URLs`
    ])
    expect(changes.every((c) => c.resource === 'distribution' && c.action === 'update')).toBe(true)
  })

  it('adds a behaviour for a missing signed path pattern first, leaving the default unsigned', async () => {
    mockGetDistribution(newDistributionConfig({ ...options, keyGroupId: undefined }))
    const { ctx, changes } = setupContext()
    await ensureDistribution(ctx, { ...options, signedPathPattern: 'private/*' })
    const config = updatedConfig().DistributionConfig!
    expect(config.CacheBehaviors).toEqual({
      Quantity: 1,
      Items: [{ PathPattern: 'private/*', ...behavior(['kg-ours']) }]
    })
    expect(config.DefaultCacheBehavior?.TrustedKeyGroups?.Enabled).toBe(false)
    expect(changes.map((c) => c.detail)).toEqual([
      `${DIST}: cache behavior "private/*" added, requiring signed URLs (key group kg-ours)`
    ])
  })

  it('in a dry run records the changes and sends none', async () => {
    mockGetDistribution(looseConfig())
    const { ctx, changes } = setupContext(true)
    await ensureDistribution(ctx, { ...options, originAccessControlId: undefined })
    expect(cfMock.commandCalls(UpdateDistributionCommand)).toHaveLength(0)
    expect(changes[0].detail).toBe(
      `${DIST}: origin "s3-${BUCKET}": Origin Access Control none → the new one`
    )
    expect(changes).toHaveLength(6)
  })

  it('refuses to re-route a distribution without an origin for the bucket', async () => {
    const config = newDistributionConfig(options)
    config.Origins!.Items![0].DomainName = `${BUCKET}.s3-website-eu-west-1.amazonaws.com`
    mockGetDistribution(config)
    const { ctx } = setupContext()
    await expect(ensureDistribution(ctx, options)).rejects.toThrow(
      `The distribution has no origin for bucket "${BUCKET}"`
    )
    expect(cfMock.commandCalls(UpdateDistributionCommand)).toHaveLength(0)
  })
})

describe('a set-up the CloudFront steps create', () => {
  it.each([
    ['every path signed', undefined, 'models/v1'],
    ['a signed path pattern', 'models/*', 'models/v1']
  ])('passes pre-flight with no warning (%s)', async (_, signedPathPattern, versionPrefix) => {
    cfMock.on(ListOriginAccessControlsCommand).resolves({ OriginAccessControlList: undefined })
    cfMock.on(CreateOriginAccessControlCommand).resolves({ OriginAccessControl: { Id: 'E3OAC' } })
    cfMock.on(ListPublicKeysCommand).resolves({})
    cfMock.on(CreatePublicKeyCommand).resolves({ PublicKey: { Id: 'K2KEY' } as never })
    cfMock.on(ListKeyGroupsCommand).resolves({})
    cfMock.on(CreateKeyGroupCommand).resolves({ KeyGroup: { Id: 'kg-1' } as never })
    cfMock.on(ListDistributionsCommand).resolves({})
    cfMock
      .on(CreateDistributionWithTagsCommand)
      .resolves({ Distribution: { Id: DIST, ARN, DomainName: DOMAIN } as never })
    const { ctx } = setupContext()
    const pem = publicKeyPem(generateSigningKeys())

    const oac = await ensureOriginAccessControl(ctx, { bucket: BUCKET })
    const publicKeyId = await ensurePublicKey(ctx, { bucket: BUCKET, publicKeyPem: pem })
    const keyGroupId = await ensureKeyGroup(ctx, { bucket: BUCKET, publicKeyId })
    const made = { ...options, originAccessControlId: oac, keyGroupId, signedPathPattern }
    await ensureDistribution(ctx, made)

    // Pre-flight reads back what was created, as AWS would answer it once deployed.
    const created = (command: object) => cfMock.commandCalls(command as never)[0].args[0].input
    const distribution = created(CreateDistributionWithTagsCommand) as never as {
      DistributionConfigWithTags: { DistributionConfig: DistributionConfig }
    }
    mockGetDistribution(distribution.DistributionConfigWithTags.DistributionConfig)
    cfMock.on(GetOriginAccessControlCommand).resolves({
      OriginAccessControl: {
        Id: 'E3OAC',
        ...(created(CreateOriginAccessControlCommand) as object)
      }
    })
    cfMock.on(GetKeyGroupCommand).resolves({
      KeyGroup: {
        Id: 'kg-1',
        LastModifiedTime: new Date(),
        ...(created(CreateKeyGroupCommand) as object)
      } as never
    })
    s3Mock.on(GetBucketPolicyCommand).resolves({ Policy: oacBucketPolicy(BUCKET, ARN) })
    s3Mock.on(GetPublicAccessBlockCommand).resolves(ALL_PUBLIC_ACCESS_BLOCKED)
    s3Mock.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' })
    s3Mock.on(GetBucketLifecycleConfigurationCommand).resolves({ Rules: [abortRule] })

    const findings = await runPreflight(ctx.clients, {
      bucket: BUCKET,
      region: options.region,
      distributionId: DIST,
      versionPrefix,
      signingKeyPairId: publicKeyId
    })
    expect(findings.filter((f) => f.status !== 'ok')).toEqual([])
    expect(findings.map((f) => f.check)).toEqual(ALL_CHECKS)
  })
})
