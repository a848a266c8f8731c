import { GetBucketPolicyCommand, PutBucketPolicyCommand } from '@aws-sdk/client-s3'
import { policyCheck } from '../cdn/preflight/bucket-policy.js'
import { DeployError } from '../common/errors.js'
import { awsError, denied, target } from '../../__fixtures__/preflight-world.js'
import { mockSetupS3, sentCommands, setupContext } from '../../__fixtures__/setup-context.js'
import { CLOUDFRONT_READ_SID, ensureBucketPolicy } from './bucket-policy.js'

const s3Mock = mockSetupS3()

const BUCKET = target.bucket
const ARN = 'arn:aws:cloudfront::123456789012:distribution/E2ABCDEFGHIJKL'
const OTHER_ARN = 'arn:aws:cloudfront::123456789012:distribution/EOTHER'

const ours = {
  Sid: CLOUDFRONT_READ_SID,
  Effect: 'Allow',
  Principal: { Service: 'cloudfront.amazonaws.com' },
  Action: 's3:GetObject',
  Resource: `arn:aws:s3:::${BUCKET}/*`,
  Condition: { StringEquals: { 'AWS:SourceArn': ARN } }
}
const denyInsecure = {
  Sid: 'DenyInsecureTransport',
  Effect: 'Deny',
  Principal: '*',
  Action: 's3:*',
  Resource: [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`],
  Condition: { Bool: { 'aws:SecureTransport': 'false' } }
}
const ciReader = {
  Sid: 'CiReads',
  Effect: 'Allow',
  Principal: { AWS: 'arn:aws:iam::123456789012:role/ci' },
  Action: ['s3:GetObject', 's3:ListBucket'],
  Resource: `arn:aws:s3:::${BUCKET}/*`
}

function mockPolicy(doc: object): void {
  s3Mock.on(GetBucketPolicyCommand).resolves({ Policy: JSON.stringify(doc) })
}
const mockStatements = (...Statement: object[]) => mockPolicy({ Version: '2012-10-17', Statement })

/** The policy written, parsed. */
function written(): { Statement: object[]; [field: string]: unknown } {
  const calls = s3Mock.commandCalls(PutBucketPolicyCommand)
  expect(calls).toHaveLength(1)
  expect(calls[0].args[0].input.Bucket).toBe(BUCKET)
  return JSON.parse(calls[0].args[0].input.Policy ?? '')
}

/** Pre-flight's bucket-policy check of the policy written, for this distribution over OAC. */
function preflightOf(policy: object) {
  return policyCheck(
    target,
    { ok: true, value: JSON.stringify(policy) },
    { id: 'E2ABCDEFGHIJKL', arn: ARN, usesOac: true, oaiIds: [] }
  )
}

describe('ensureBucketPolicy', () => {
  it('sets a policy where there is none, which pre-flight passes', async () => {
    s3Mock.on(GetBucketPolicyCommand).rejects(awsError('NoSuchBucketPolicy', 404))
    const { ctx, changes } = setupContext()
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })
    const policy = written()
    expect(policy).toEqual({ Version: '2012-10-17', Statement: [ours] })
    expect(preflightOf(policy).status).toBe('ok')
    expect(changes).toEqual([
      {
        resource: 'bucket-policy',
        action: 'create',
        detail: `statement ${CLOUDFRONT_READ_SID} added: cloudfront.amazonaws.com may read arn:aws:s3:::${BUCKET}/* for ${ARN} only`
      }
    ])
  })

  it('changes nothing on a second run', async () => {
    mockStatements(denyInsecure, ours)
    const { ctx, changes } = setupContext()
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })
    expect(sentCommands(s3Mock)).toEqual(['GetBucketPolicyCommand'])
    expect(changes).toEqual([])
  })

  it("keeps the bucket's statements and fields, adding its own", async () => {
    mockPolicy({ Version: '2012-10-17', Id: 'team-policy', Statement: [denyInsecure, ciReader] })
    const { ctx, changes } = setupContext()
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })
    const policy = written()
    expect(policy).toEqual({
      Version: '2012-10-17',
      Id: 'team-policy',
      Statement: [denyInsecure, ciReader, ours]
    })
    expect(preflightOf(policy).status).toBe('ok')
    expect(changes.map((c) => c.action)).toEqual(['update'])
  })

  it('reads a policy whose Statement is one object', async () => {
    mockPolicy({ Version: '2012-10-17', Statement: denyInsecure })
    const { ctx } = setupContext()
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })
    expect(written().Statement).toEqual([denyInsecure, ours])
  })

  it('corrects its statement when it names another distribution', async () => {
    const stale = { ...ours, Condition: { StringEquals: { 'AWS:SourceArn': OTHER_ARN } } }
    mockStatements(stale, ciReader)
    const { ctx, changes } = setupContext()
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })
    expect(written().Statement).toEqual([ours, ciReader])
    expect(changes).toEqual([
      {
        resource: 'bucket-policy',
        action: 'update',
        detail: `statement ${CLOUDFRONT_READ_SID} corrected: cloudfront.amazonaws.com may read arn:aws:s3:::${BUCKET}/* for ${ARN} only`
      }
    ])
  })

  it('adds no duplicate of a statement that grants the same under another Sid', async () => {
    mockStatements({
      ...ours,
      Sid: 'AllowCloudFrontServicePrincipalReadOnly',
      Action: ['S3:GetObject'],
      Principal: { Service: ['cloudfront.amazonaws.com'] },
      Condition: { StringEquals: { 'aws:sourcearn': [ARN] } }
    })
    const { ctx, changes } = setupContext()
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })
    expect(sentCommands(s3Mock)).toEqual(['GetBucketPolicyCommand'])
    expect(changes).toEqual([])
  })

  it('still adds its own next to a broader grant', async () => {
    mockStatements({ ...ours, Sid: 'Broad', Action: ['s3:GetObject', 's3:ListBucket'] })
    const { ctx } = setupContext()
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })
    expect(written().Statement).toHaveLength(2)
  })

  it('removes statements that let anyone in, so the policy passes BlockPublicPolicy and pre-flight', async () => {
    const publicRead = {
      Sid: 'PublicRead',
      Effect: 'Allow',
      Principal: '*',
      Action: 's3:GetObject',
      Resource: `arn:aws:s3:::${BUCKET}/*`
    }
    const anyAwsList = {
      Effect: 'Allow',
      Principal: { AWS: ['*'] },
      Action: 's3:ListBucket',
      Resource: `arn:aws:s3:::${BUCKET}`,
      // Not a condition on who: anyone can meet it.
      Condition: { Bool: { 'aws:SecureTransport': 'true' } }
    }
    mockStatements(denyInsecure, publicRead, anyAwsList, ours)
    const { ctx, changes } = setupContext()
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })
    const policy = written()
    expect(policy.Statement).toEqual([denyInsecure, ours])
    expect(preflightOf(policy)).toMatchObject({ status: 'ok' })
    expect(changes).toEqual([
      {
        resource: 'bucket-policy',
        action: 'update',
        detail: 'public statement "PublicRead" removed (it let anyone s3:GetObject)'
      },
      {
        resource: 'bucket-policy',
        action: 'update',
        detail: 'public statement #3 removed (it let anyone s3:ListBucket)'
      }
    ])
  })

  it('keeps a grant to "*" that a fixed condition limits (not public for S3)', async () => {
    const fromEndpoint = {
      Sid: 'FromVpcEndpoint',
      Effect: 'Allow',
      Principal: '*',
      Action: 's3:GetObject',
      Resource: `arn:aws:s3:::${BUCKET}/*`,
      Condition: { StringEquals: { 'aws:SourceVpce': 'vpce-1a2b3c4d' } }
    }
    const fromAnyEndpoint = {
      ...fromEndpoint,
      Sid: 'FromAnyVpcEndpoint',
      Condition: { StringLike: { 'aws:SourceVpce': 'vpce-*' } }
    }
    mockStatements(fromEndpoint, fromAnyEndpoint, ours)
    const { ctx, changes } = setupContext()
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })
    expect(written().Statement).toEqual([fromEndpoint, ours])
    expect(changes.map((c) => c.detail)).toEqual([
      'public statement "FromAnyVpcEndpoint" removed (it let anyone s3:GetObject)'
    ])
  })

  it('in a dry run before the distribution exists, records the statement for it', async () => {
    s3Mock.on(GetBucketPolicyCommand).rejects(awsError('NoSuchBucket', 404))
    const { ctx, changes } = setupContext(true)
    await ensureBucketPolicy(ctx, { bucket: BUCKET })
    expect(sentCommands(s3Mock)).toEqual(['GetBucketPolicyCommand'])
    expect(changes).toEqual([
      {
        resource: 'bucket-policy',
        action: 'create',
        detail: `statement ${CLOUDFRONT_READ_SID} added for the new distribution`
      }
    ])
  })

  it('in a dry run, records what it would change and writes nothing', async () => {
    mockStatements({ ...ours, Resource: `arn:aws:s3:::${BUCKET}/public/*` })
    const { ctx, changes } = setupContext(true)
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })
    expect(sentCommands(s3Mock)).toEqual(['GetBucketPolicyCommand'])
    expect(changes.map((c) => c.detail)).toEqual([
      `statement ${CLOUDFRONT_READ_SID} corrected: cloudfront.amazonaws.com may read arn:aws:s3:::${BUCKET}/* for ${ARN} only`
    ])
  })

  it('fails on a missing bucket outside a dry run', async () => {
    s3Mock.on(GetBucketPolicyCommand).rejects(awsError('NoSuchBucket', 404))
    const { ctx } = setupContext()
    await expect(ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN })).rejects.toThrow(
      'AWS said NoSuchBucket'
    )
  })

  it('needs the distribution outside a dry run', async () => {
    const { ctx } = setupContext()
    await expect(ensureBucketPolicy(ctx, { bucket: BUCKET })).rejects.toThrow(
      'needs the distribution ARN'
    )
    expect(s3Mock.calls()).toHaveLength(0)
  })

  it('uses the partition of the distribution', async () => {
    s3Mock.on(GetBucketPolicyCommand).rejects(awsError('NoSuchBucketPolicy', 404))
    const cnArn = 'arn:aws-cn:cloudfront::123456789012:distribution/E2ABCDEFGHIJKL'
    const { ctx } = setupContext()
    await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: cnArn })
    expect(written().Statement).toEqual([
      {
        ...ours,
        Resource: `arn:aws-cn:s3:::${BUCKET}/*`,
        Condition: { StringEquals: { 'AWS:SourceArn': cnArn } }
      }
    ])
  })

  it('names the permission a refused write needed', async () => {
    s3Mock.on(GetBucketPolicyCommand).rejects(awsError('NoSuchBucketPolicy', 404))
    s3Mock.on(PutBucketPolicyCommand).rejects(denied())
    const { ctx, changes } = setupContext()
    const err = await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN }).catch(
      (e) => e
    )
    expect(err.message).toContain(
      'Failed setting the policy of bucket "model-bucket" (s3:PutBucketPolicy): AWS said AccessDenied'
    )
    expect(err.hint).toContain('may not call s3:PutBucketPolicy on bucket "model-bucket"')
    expect(changes).toEqual([])
  })

  it('will not rewrite a policy it cannot read as JSON', async () => {
    s3Mock.on(GetBucketPolicyCommand).resolves({ Policy: '{"Statement": [' })
    const { ctx } = setupContext()
    const err = await ensureBucketPolicy(ctx, { bucket: BUCKET, distributionArn: ARN }).catch(
      (e) => e
    )
    expect(err).toBeInstanceOf(DeployError)
    expect(err.message).toContain('is not a JSON object: setup will not rewrite it')
    expect(s3Mock.commandCalls(PutBucketPolicyCommand)).toHaveLength(0)
  })
})
