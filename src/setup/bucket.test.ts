import {
  CreateBucketCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketTaggingCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand
} from '@aws-sdk/client-s3'
import { bucketSettingChecks } from '../cdn/preflight/bucket.js'
import { DeployError, InputError } from '../common/errors.js'
import { awsError, denied, target } from '../../__fixtures__/preflight-world.js'
import { mockSetupS3, sentCommands, setupContext } from '../../__fixtures__/setup-context.js'
import { LIFECYCLE_RULE_IDS } from './bucket-lifecycle.js'
import { ensureBucket, inspectBucket } from './bucket.js'
import { SETUP_TAG } from './types.js'

const s3Mock = mockSetupS3()
const { clients } = setupContext().ctx

const BUCKET = 'model-bucket'
const location = { bucket: BUCKET, region: 'us-east-1' }
const days = { noncurrentVersionDays: 30, previewDays: 14 }
const ALL_BLOCKED = {
  BlockPublicAcls: true,
  IgnorePublicAcls: true,
  BlockPublicPolicy: true,
  RestrictPublicBuckets: true
}

/** An error of S3 naming the bucket's region in its x-amz-bucket-region header. */
const redirect = (status: number, region: string) =>
  Object.assign(awsError('Unknown', status), {
    $response: { statusCode: status, headers: { 'x-amz-bucket-region': region } }
  })

describe('inspectBucket', () => {
  it.each([
    ['ab', '3 to 63 characters'],
    ['a'.repeat(64), '3 to 63 characters'],
    ['Models', 'lower-case letters, digits, dots and hyphens'],
    ['s3://models', 'lower-case letters, digits, dots and hyphens'],
    ['arn:aws:s3:::models', 'lower-case letters, digits, dots and hyphens'],
    ['-models', 'start and end with a letter or a digit'],
    ['models.', 'start and end with a letter or a digit'],
    ['my..models', 'two dots in a row'],
    ['192.168.5.4', 'IP address'],
    ['xn--models', 'must not start with xn--'],
    ['sthree-models', 'must not start with xn--, sthree-'],
    ['models-s3alias', 'must not end with -s3alias'],
    ['models--ol-s3', 'must not end with -s3alias, --ol-s3']
  ])('refuses %s as a bucket name, sending nothing', async (bucket, why) => {
    const err = await inspectBucket(clients, { bucket, region: 'us-east-1' }).catch((e) => e)
    expect(err).toBeInstanceOf(InputError)
    expect(err.message).toContain(`--bucket "${bucket}" is not a valid S3 bucket name: it`)
    expect(err.message).toContain(why)
    expect(s3Mock.calls()).toHaveLength(0)
  })

  it('accepts names with dots, hyphens and digits', async () => {
    s3Mock.on(HeadBucketCommand).resolves({ BucketRegion: 'us-east-1' })
    for (const bucket of ['abc', 'my.models-2', 'a'.repeat(63), '1-2.3']) {
      await expect(inspectBucket(clients, { bucket, region: 'us-east-1' })).resolves.toEqual({
        exists: true
      })
    }
  })

  it('finds a missing bucket (404)', async () => {
    s3Mock.on(HeadBucketCommand).rejects(awsError('NotFound', 404))
    await expect(inspectBucket(clients, location)).resolves.toEqual({ exists: false })
    expect(s3Mock.commandCalls(HeadBucketCommand)[0].args[0].input).toEqual({ Bucket: BUCKET })
  })

  it('finds the bucket in the region given', async () => {
    s3Mock.on(HeadBucketCommand).resolves({ BucketRegion: 'us-east-1' })
    await expect(inspectBucket(clients, location)).resolves.toEqual({ exists: true })
  })

  it('fails when the bucket is in another region, naming it', async () => {
    s3Mock.on(HeadBucketCommand).resolves({ BucketRegion: 'eu-west-1' })
    const err = await inspectBucket(clients, location).catch((e) => e)
    expect(err).toBeInstanceOf(DeployError)
    expect(err.message).toBe('Bucket "model-bucket" is in eu-west-1, not in us-east-1.')
    expect(err.hint).toContain('Pass --aws-region eu-west-1')
  })

  it('reads the region from a 301 answer', async () => {
    s3Mock.on(HeadBucketCommand).rejects(redirect(301, 'ap-south-1'))
    const err = await inspectBucket(clients, location).catch((e) => e)
    expect(err.message).toBe('Bucket "model-bucket" is in ap-south-1, not in us-east-1.')
    expect(err.hint).toContain('Pass --aws-region ap-south-1')
  })

  it('fails on a 301 that names no region, telling to pass the bucket region', async () => {
    s3Mock.on(HeadBucketCommand).rejects(awsError('Unknown', 301))
    const err = await inspectBucket(clients, location).catch((e) => e)
    expect(err.message).toContain('is in another region than us-east-1')
    expect(err.hint).toContain('--aws-region')
  })

  it("fails on another account's bucket (403)", async () => {
    s3Mock.on(HeadBucketCommand).rejects(awsError('Forbidden', 403))
    const err = await inspectBucket(clients, location).catch((e) => e)
    expect(err).toBeInstanceOf(DeployError)
    expect(err.message).toContain(
      'exists but is owned by another account or not readable by these credentials'
    )
    expect(err.hint).toContain('choose another --bucket name')
    expect(err.hint).toContain('s3:ListBucket')
  })

  it('explains any other failure', async () => {
    s3Mock.on(HeadBucketCommand).rejects(awsError('InternalError', 500, 'We encountered an error'))
    await expect(inspectBucket(clients, location)).rejects.toThrow(
      'Failed looking up bucket "model-bucket": AWS said InternalError (HTTP 500)'
    )
  })
})

/** The settings a first run leaves, as S3 answers them to the second run. */
function mockSetUpBucket(): void {
  s3Mock.on(GetPublicAccessBlockCommand).resolves({ PublicAccessBlockConfiguration: ALL_BLOCKED })
  s3Mock.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' })
  s3Mock.on(GetBucketLifecycleConfigurationCommand).resolves({
    Rules: [
      {
        ID: LIFECYCLE_RULE_IDS.abortUploads,
        Status: 'Enabled',
        Filter: { Prefix: '' },
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }
      },
      {
        ID: LIFECYCLE_RULE_IDS.noncurrentVersions,
        Status: 'Enabled',
        Filter: { Prefix: '' },
        NoncurrentVersionExpiration: { NoncurrentDays: 30 },
        Expiration: { ExpiredObjectDeleteMarker: true }
      },
      {
        ID: LIFECYCLE_RULE_IDS.previews,
        Status: 'Enabled',
        Filter: { Tag: { Key: 'model-cdn-deploy:preview', Value: 'true' } },
        Expiration: { Days: 14 }
      }
    ]
  })
  s3Mock
    .on(GetBucketTaggingCommand)
    .resolves({ TagSet: [{ Key: 'model-cdn-deploy', Value: 'setup' }] })
}

const WRITES = [
  'PutPublicAccessBlockCommand',
  'PutBucketVersioningCommand',
  'PutBucketLifecycleConfigurationCommand',
  'PutBucketTaggingCommand'
]

describe('ensureBucket', () => {
  it('creates a missing bucket and sets everything, reading nothing', async () => {
    const { ctx, changes } = setupContext()
    await ensureBucket(ctx, { ...location, ...days, exists: false })
    expect(sentCommands(s3Mock)).toEqual(['CreateBucketCommand', ...WRITES])
    expect(s3Mock.commandCalls(CreateBucketCommand)[0].args[0].input).toEqual({
      Bucket: BUCKET,
      ObjectOwnership: 'BucketOwnerEnforced'
    })
    expect(s3Mock.commandCalls(PutPublicAccessBlockCommand)[0].args[0].input).toEqual({
      Bucket: BUCKET,
      PublicAccessBlockConfiguration: ALL_BLOCKED
    })
    expect(s3Mock.commandCalls(PutBucketVersioningCommand)[0].args[0].input).toEqual({
      Bucket: BUCKET,
      VersioningConfiguration: { Status: 'Enabled' }
    })
    const lifecycle = s3Mock.commandCalls(PutBucketLifecycleConfigurationCommand)[0].args[0].input
    expect(lifecycle.LifecycleConfiguration?.Rules?.map((r) => r.ID)).toEqual(
      Object.values(LIFECYCLE_RULE_IDS)
    )
    expect(s3Mock.commandCalls(PutBucketTaggingCommand)[0].args[0].input).toEqual({
      Bucket: BUCKET,
      Tagging: { TagSet: [{ Key: SETUP_TAG.key, Value: SETUP_TAG.value }] }
    })
    expect(changes.map((c) => [c.resource, c.action, c.detail])).toEqual([
      [
        'bucket',
        'create',
        's3://model-bucket in us-east-1, ACLs disabled (objects owned by the bucket owner)'
      ],
      [
        'bucket',
        'update',
        'public access blocked (BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets on)'
      ],
      ['bucket', 'update', 'versioning Enabled'],
      [
        'bucket',
        'update',
        'lifecycle rule model-cdn-deploy-abort-incomplete-uploads added (aborts incomplete multipart uploads after 1 day)'
      ],
      [
        'bucket',
        'update',
        'lifecycle rule model-cdn-deploy-noncurrent-versions added (deletes noncurrent object versions after 30 days)'
      ],
      [
        'bucket',
        'update',
        'lifecycle rule model-cdn-deploy-previews added (expires objects tagged model-cdn-deploy:preview=true after 14 days)'
      ],
      ['bucket', 'update', 'tag model-cdn-deploy=setup added']
    ])
  })

  it('names the region of a bucket created outside us-east-1', async () => {
    const { ctx } = setupContext()
    await ensureBucket(ctx, { bucket: BUCKET, region: 'eu-west-1', ...days, exists: false })
    expect(s3Mock.commandCalls(CreateBucketCommand)[0].args[0].input).toEqual({
      Bucket: BUCKET,
      CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
      ObjectOwnership: 'BucketOwnerEnforced'
    })
  })

  it('in a dry run, sends nothing and records what it would do', async () => {
    const real = setupContext()
    await ensureBucket(real.ctx, { ...location, ...days, exists: false })
    s3Mock.resetHistory()
    const dry = setupContext(true)
    await ensureBucket(dry.ctx, { ...location, ...days, exists: false })
    expect(s3Mock.calls()).toHaveLength(0)
    expect(dry.changes).toEqual(real.changes)
  })

  it('changes nothing on a bucket it set up before', async () => {
    mockSetUpBucket()
    const { ctx, changes } = setupContext()
    await ensureBucket(ctx, { ...location, ...days, exists: true })
    expect(sentCommands(s3Mock).sort()).toEqual([
      'GetBucketLifecycleConfigurationCommand',
      'GetBucketTaggingCommand',
      'GetBucketVersioningCommand',
      'GetPublicAccessBlockCommand'
    ])
    expect(changes).toEqual([])
  })

  it('what it writes passes pre-flight with no warning', async () => {
    const { ctx } = setupContext()
    await ensureBucket(ctx, { ...location, ...days, exists: false })
    const block = s3Mock.commandCalls(PutPublicAccessBlockCommand)[0].args[0].input
    const lifecycle = s3Mock.commandCalls(PutBucketLifecycleConfigurationCommand)[0].args[0].input
    const findings = bucketSettingChecks(target, {
      policy: { ok: true, value: undefined },
      publicAccess: { ok: true, value: block.PublicAccessBlockConfiguration },
      versioning: { ok: true, value: 'Enabled' },
      lifecycle: { ok: true, value: lifecycle.LifecycleConfiguration?.Rules }
    })
    expect(findings.map((f) => [f.check, f.status])).toEqual([
      ['public-access-block', 'ok'],
      ['versioning', 'ok'],
      ['lifecycle', 'ok']
    ])
  })

  it('tightens what is loose and keeps what is not its own', async () => {
    mockSetUpBucket()
    s3Mock.on(GetPublicAccessBlockCommand).resolves({
      PublicAccessBlockConfiguration: {
        ...ALL_BLOCKED,
        BlockPublicPolicy: false,
        RestrictPublicBuckets: false
      }
    })
    s3Mock.on(GetBucketVersioningCommand).resolves({ Status: 'Suspended' })
    s3Mock.on(GetBucketTaggingCommand).resolves({ TagSet: [{ Key: 'team', Value: 'ml' }] })
    const { ctx, changes } = setupContext()
    await ensureBucket(ctx, { ...location, ...days, exists: true })
    expect(s3Mock.commandCalls(PutPublicAccessBlockCommand)[0].args[0].input).toEqual({
      Bucket: BUCKET,
      PublicAccessBlockConfiguration: ALL_BLOCKED
    })
    expect(s3Mock.commandCalls(PutBucketTaggingCommand)[0].args[0].input.Tagging).toEqual({
      TagSet: [
        { Key: 'team', Value: 'ml' },
        { Key: 'model-cdn-deploy', Value: 'setup' }
      ]
    })
    expect(s3Mock.commandCalls(PutBucketLifecycleConfigurationCommand)).toHaveLength(0)
    expect(changes.map((c) => c.detail)).toEqual([
      'public access blocked (BlockPublicPolicy, RestrictPublicBuckets on)',
      'versioning Enabled (was Suspended)',
      'tag model-cdn-deploy=setup added'
    ])
  })

  it('treats missing settings as off', async () => {
    mockSetUpBucket()
    s3Mock
      .on(GetPublicAccessBlockCommand)
      .rejects(awsError('NoSuchPublicAccessBlockConfiguration', 404))
    s3Mock.on(GetBucketVersioningCommand).resolves({})
    s3Mock.on(GetBucketTaggingCommand).rejects(awsError('NoSuchTagSet', 404))
    const { ctx } = setupContext()
    await ensureBucket(ctx, { ...location, ...days, exists: true })
    expect(sentCommands(s3Mock).filter((name) => name.startsWith('Put'))).toEqual([
      'PutPublicAccessBlockCommand',
      'PutBucketVersioningCommand',
      'PutBucketTaggingCommand'
    ])
  })

  it('in a dry run on an existing bucket, reads and records but writes nothing', async () => {
    mockSetUpBucket()
    s3Mock.on(GetBucketVersioningCommand).resolves({})
    const { ctx, changes } = setupContext(true)
    await ensureBucket(ctx, { ...location, ...days, exists: true })
    expect(sentCommands(s3Mock).filter((name) => !name.startsWith('Get'))).toEqual([])
    expect(changes.map((c) => c.detail)).toEqual(['versioning Enabled'])
  })

  it('names the permission a refused call needed', async () => {
    mockSetUpBucket()
    s3Mock.on(GetBucketVersioningCommand).resolves({})
    s3Mock.on(PutBucketVersioningCommand).rejects(denied())
    const { ctx, changes } = setupContext()
    const err = await ensureBucket(ctx, { ...location, ...days, exists: true }).catch((e) => e)
    expect(err.message).toContain(
      'Failed enabling versioning of bucket "model-bucket" (s3:PutBucketVersioning): AWS said AccessDenied (HTTP 403)'
    )
    expect(err.hint).toContain('may not call s3:PutBucketVersioning on bucket "model-bucket"')
    expect(changes).toEqual([])
  })

  it('names the permission a refused read needed', async () => {
    mockSetUpBucket()
    s3Mock.on(GetBucketTaggingCommand).rejects(denied())
    const { ctx } = setupContext()
    await expect(ensureBucket(ctx, { ...location, ...days, exists: true })).rejects.toThrow(
      'Failed reading the tags of bucket "model-bucket" (s3:GetBucketTagging): AWS said AccessDenied'
    )
  })
})
