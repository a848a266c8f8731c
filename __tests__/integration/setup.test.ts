/**
 * `model-cdn-deploy setup` as a shell runs it (`node dist/cli.js setup …`) against moto_server
 * (S3, CloudFront, IAM and STS on one port): an empty account made ready for a deploy that the
 * bundled action then runs with pre-flight on; a second run that changes nothing; an existing
 * bucket completed without losing its own policy; a dry run; and each error before any change.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  CloudFrontClient,
  GetDistributionConfigCommand,
  ListDistributionsCommand,
  ListKeyGroupsCommand,
  ListOriginAccessControlsCommand
} from '@aws-sdk/client-cloudfront'
import { GetRoleCommand, IAMClient, ListRolesCommand } from '@aws-sdk/client-iam'
import {
  CreateBucketCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  PutBucketPolicyCommand,
  PutPublicAccessBlockCommand,
  type S3Client
} from '@aws-sdk/client-s3'
import { generateSigningKeys, publicKeyPem } from '../../__fixtures__/signing.js'
import { startTestEmulator, writeFiles, type TestEmulator } from '../helpers/emulator-world.js'
import { runCli, type CliResult } from '../helpers/cli.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { expectSuccess, runAction } from '../helpers/run-action.js'

let moto: TestEmulator | undefined
let s3: S3Client
let cloudfront: CloudFrontClient
let iam: IAMClient
let workspace: string
const keys = generateSigningKeys()

beforeAll(async () => {
  moto = await startTestEmulator({ requireDist: true, workspacePrefix: 'mcd-setup-' })
  ;({ s3, cloudfront, workspace } = moto)
  iam = new IAMClient({
    region: 'us-east-1',
    endpoint: moto.emulator.endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' }
  })
  await writeFile(join(workspace, 'public_key.pem'), publicKeyPem(keys))
  await writeFile(join(workspace, 'private_key.pem'), keys.pkcs8)
  await writeFiles(join(workspace, 'models'), { 'model.onnx': Buffer.alloc(4096, 7) })
}, 60_000)

afterAll(async () => {
  iam?.destroy()
  await moto?.stop()
})

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { cwd: workspace, endpoint: moto!.emulator.endpoint, env })
}

interface SetupJson {
  bucket: string
  'distribution-id': string
  'distribution-domain': string
  'origin-access-control-id': string
  'public-key-id': string
  'key-group-id': string
  'role-arn': string
  changes: { resource: string; action: string; detail: string }[]
  preflight: { check: string; status: string; message: string }[] | null
}

async function setupJson(args: string[]): Promise<SetupJson> {
  const r = await cli(['setup', ...args, '--json'])
  if (r.code !== 0) throw new Error(`setup exited ${r.code}:\n${r.stderr}`)
  return JSON.parse(r.stdout) as SetupJson
}

const FULL = (bucket: string) => [
  '--bucket',
  bucket,
  '--aws-region',
  'us-east-1',
  '--public-key',
  'public_key.pem',
  '--github-repo',
  'acme/resnet'
]

async function ours(bucket: string) {
  const [distributions, oacs, groups, roles] = await Promise.all([
    cloudfront.send(new ListDistributionsCommand({})),
    cloudfront.send(new ListOriginAccessControlsCommand({})),
    cloudfront.send(new ListKeyGroupsCommand({})),
    iam.send(new ListRolesCommand({}))
  ])
  return {
    distributions: (distributions.DistributionList?.Items ?? []).filter((d) =>
      d.Comment?.includes(bucket)
    ).length,
    oacs: (oacs.OriginAccessControlList?.Items ?? []).filter((o) => o.Name?.includes(bucket))
      .length,
    keyGroups: (groups.KeyGroupList?.Items ?? []).filter((g) =>
      g.KeyGroup?.KeyGroupConfig?.Name?.includes(bucket)
    ).length,
    roles: (roles.Roles ?? []).filter((r) => r.RoleName?.includes(bucket)).length
  }
}

describe('setup from an empty account', () => {
  const BUCKET = 'setup-empty-account'
  let first: SetupJson

  beforeAll(async () => {
    first = await setupJson(FULL(BUCKET))
  }, 120_000)

  it('creates the bucket private, versioned, with its lifecycle rules', async () => {
    expect(first.bucket).toBe(BUCKET)
    const versioning = await s3.send(new GetBucketVersioningCommand({ Bucket: BUCKET }))
    expect(versioning.Status).toBe('Enabled')
    const block = await s3.send(new GetPublicAccessBlockCommand({ Bucket: BUCKET }))
    expect(block.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      IgnorePublicAcls: true,
      BlockPublicPolicy: true,
      RestrictPublicBuckets: true
    })
    const lifecycle = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: BUCKET }))
    const rules = new Map((lifecycle.Rules ?? []).map((r) => [r.ID, r]))
    expect(
      rules.get('model-cdn-deploy-abort-incomplete-uploads')?.AbortIncompleteMultipartUpload
    ).toEqual({ DaysAfterInitiation: 1 })
    expect(
      rules.get('model-cdn-deploy-noncurrent-versions')?.NoncurrentVersionExpiration
    ).toMatchObject({ NoncurrentDays: 30 })
    expect(rules.get('model-cdn-deploy-previews')?.Expiration).toMatchObject({ Days: 14 })
  })

  it('puts CloudFront with OAC, HTTPS, HTTP/3 and the key group in front of it', async () => {
    const { DistributionConfig: config } = await cloudfront.send(
      new GetDistributionConfigCommand({ Id: first['distribution-id'] })
    )
    const origin = config?.Origins?.Items?.[0]
    expect(origin?.DomainName).toBe(`${BUCKET}.s3.us-east-1.amazonaws.com`)
    expect(origin?.OriginAccessControlId).toBe(first['origin-access-control-id'])
    const behavior = config?.DefaultCacheBehavior
    expect(behavior?.ViewerProtocolPolicy).toBe('redirect-to-https')
    expect(behavior?.CachePolicyId).toBe('658327ea-f89d-4fab-a63d-7e88639e58f6')
    expect(behavior?.TrustedKeyGroups).toMatchObject({
      Enabled: true,
      Items: [first['key-group-id']]
    })
    expect(config?.HttpVersion).toBe('http2and3')
    expect(first['public-key-id']).toMatch(/^K/)
  })

  it('lets only that distribution read the bucket', async () => {
    const { Policy } = await s3.send(new GetBucketPolicyCommand({ Bucket: BUCKET }))
    const statements = (JSON.parse(Policy ?? '{}') as { Statement: Record<string, unknown>[] })
      .Statement
    expect(statements).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudfront.amazonaws.com' },
        Action: 's3:GetObject',
        Resource: `arn:aws:s3:::${BUCKET}/*`,
        Condition: {
          StringEquals: {
            'AWS:SourceArn': expect.stringMatching(
              new RegExp(`:distribution/${first['distribution-id']}$`)
            )
          }
        }
      })
    ])
  })

  it('makes a role only the repository can assume through GitHub OIDC', async () => {
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: `model-cdn-deploy-${BUCKET}` }))
    expect(Role?.Arn).toBe(first['role-arn'])
    const trust = JSON.parse(decodeURIComponent(Role?.AssumeRolePolicyDocument ?? '')) as {
      Statement: { Condition: Record<string, Record<string, unknown>> }[]
    }
    expect(trust.Statement[0].Condition).toEqual({
      StringEquals: { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com' },
      StringLike: { 'token.actions.githubusercontent.com:sub': ['repo:acme/resnet:*'] }
    })
  })

  it('ends with the pre-flight a deploy runs: every check passes', () => {
    expect(first.preflight?.filter((f) => f.status !== 'ok')).toEqual([])
    expect(first.preflight?.map((f) => f.check)).toEqual(
      expect.arrayContaining(['origin-access-control', 'bucket-policy', 'signed-urls', 'lifecycle'])
    )
  })

  it('after which the bundled action deploys with pre-flight on, and no warning', async () => {
    const r = await runAction({
      cwd: workspace,
      endpoint: moto!.emulator.endpoint,
      inputs: {
        artifacts: 'models/**',
        bucket: BUCKET,
        'version-prefix': 'v1',
        'distribution-id': first['distribution-id'],
        'signing-key-pair-id': first['public-key-id'],
        'signing-private-key': keys.pkcs8,
        verify: 'false'
      }
    })
    expectSuccess(r)
    expect(r.warnings).toEqual([])
    expect(r.outputs.uploaded).toBe('1')
  }, 60_000)

  it('a second run changes nothing and creates no duplicate', async () => {
    const before = await ours(BUCKET)
    const again = await setupJson(FULL(BUCKET))
    expect(again.changes).toEqual([])
    expect(again['distribution-id']).toBe(first['distribution-id'])
    expect(again['key-group-id']).toBe(first['key-group-id'])
    expect(again['role-arn']).toBe(first['role-arn'])
    expect(await ours(BUCKET)).toEqual(before)
    expect(before).toEqual({ distributions: 1, oacs: 1, keyGroups: 1, roles: 1 })
  }, 120_000)

  it('prints the changes, the ids and a workflow with them filled in', async () => {
    const r = await cli(['setup', ...FULL(BUCKET)])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(
      /^Nothing to change in setup-empty-account \(us-east-1\): the set-up is complete\.$/m
    )
    expect(r.stdout).toContain(`distribution-id: ${first['distribution-id']}`)
    expect(r.stdout).toContain(`role-to-assume: ${first['role-arn']}`)
    expect(r.stdout).toContain(`signing-key-pair-id: ${first['public-key-id']}`)
  }, 60_000)
})

describe('setup on an existing bucket', () => {
  const BUCKET = 'setup-existing-bucket'
  const THEIRS = {
    Sid: 'AnalyticsReads',
    Effect: 'Allow',
    Principal: { AWS: 'arn:aws:iam::123456789012:role/analytics' },
    Action: 's3:GetObject',
    Resource: `arn:aws:s3:::${BUCKET}/reports/*`
  }

  it('keeps the unrelated policy statement, closes public access, adds the CloudFront read', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }))
    await s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: BUCKET,
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: false,
          IgnorePublicAcls: false,
          BlockPublicPolicy: false,
          RestrictPublicBuckets: false
        }
      })
    )
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: BUCKET,
        Policy: JSON.stringify({ Version: '2012-10-17', Statement: [THEIRS] })
      })
    )
    const result = await setupJson(['--bucket', BUCKET])
    expect(result.changes).not.toContainEqual(
      expect.objectContaining({ resource: 'bucket', action: 'create' })
    )
    const block = await s3.send(new GetPublicAccessBlockCommand({ Bucket: BUCKET }))
    expect(Object.values(block.PublicAccessBlockConfiguration ?? {})).toEqual([
      true,
      true,
      true,
      true
    ])
    const { Policy } = await s3.send(new GetBucketPolicyCommand({ Bucket: BUCKET }))
    const statements = (JSON.parse(Policy ?? '{}') as { Statement: { Sid?: string }[] }).Statement
    expect(statements).toContainEqual(THEIRS)
    expect(statements).toHaveLength(2)
    expect(result.preflight?.filter((f) => f.status === 'error')).toEqual([])
  }, 120_000)
})

describe('setup --template cloudformation', () => {
  it('prints the same set-up as a template, defaults from the flags, and calls nothing', async () => {
    const r = await cli(['setup', '--template', 'cloudformation', '--bucket', 'setup-template'], {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9'
    })
    expect(r.code).toBe(0)
    const template = JSON.parse(r.stdout) as {
      Parameters: Record<string, { Default?: unknown }>
      Resources: Record<string, { Type: string }>
    }
    expect(template.Parameters.BucketName.Default).toBe('setup-template')
    expect(Object.values(template.Resources).map((x) => x.Type)).toEqual(
      expect.arrayContaining([
        'AWS::S3::Bucket',
        'AWS::S3::BucketPolicy',
        'AWS::CloudFront::OriginAccessControl',
        'AWS::CloudFront::Distribution',
        'AWS::CloudFront::PublicKey',
        'AWS::CloudFront::KeyGroup',
        'AWS::IAM::OIDCProvider',
        'AWS::IAM::Role'
      ])
    )
  })
})

describe('setup --dry-run', () => {
  it('prints the plan and creates nothing', async () => {
    const bucket = 'setup-dry-run'
    const before = await ours(bucket)
    const result = await setupJson([...FULL(bucket), '--dry-run'])
    expect(result.changes.length).toBeGreaterThan(5)
    expect(result['distribution-id']).toBe('')
    await expect(s3.send(new HeadBucketCommand({ Bucket: bucket }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 }
    })
    expect(await ours(bucket)).toEqual(before)
  }, 60_000)
})

describe('setup refuses, before changing anything', () => {
  it.each([
    ['an invalid bucket name', ['--bucket', 'Not_A_Bucket'], /bucket/i],
    [
      'a private key given as the public key',
      ['--bucket', 'setup-bad-key', '--public-key', 'private_key.pem'],
      /public key/i
    ],
    [
      'a malformed repository',
      ['--bucket', 'setup-bad-repo', '--github-repo', 'not a repo'],
      /github-repo|repository/i
    ],
    [
      'an ACM certificate outside us-east-1',
      [
        '--bucket',
        'setup-bad-cert',
        '--domain',
        'models.example.com',
        '--certificate-arn',
        'arn:aws:acm:eu-west-1:123456789012:certificate/abc'
      ],
      /us-east-1/
    ]
  ])('%s (exit 2)', async (_, args, message) => {
    const r = await cli(['setup', ...args])
    expect([r.code, r.stdout]).toEqual([2, ''])
    expect(r.stderr).toMatch(message)
    expect(await ours(args[1])).toEqual({ distributions: 0, oacs: 0, keyGroups: 0, roles: 0 })
  })

  it('a bucket in another region, naming it', async () => {
    const bucket = 'setup-other-region'
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' }
      })
    )
    const r = await cli(['setup', '--bucket', bucket, '--aws-region', 'us-east-1'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/eu-west-1/)
    expect(r.stderr).toMatch(/--aws-region eu-west-1/)
    expect(await ours(bucket)).toEqual({ distributions: 0, oacs: 0, keyGroups: 0, roles: 0 })
  })

  it.each([
    ['a bucket of another account (403 on HeadBucket)', 'HeadBucket', /another account/i],
    ['a refused s3:PutBucketPolicy, named', 'PutBucketPolicy', /s3:PutBucketPolicy/]
  ] as const)(
    '%s',
    async (_, operation, message) => {
      const proxy = await startFaultProxy(moto!.emulator.endpoint)
      try {
        proxy.setRules([
          { operations: [operation], fault: { kind: 's3Error', status: 403, code: 'AccessDenied' } }
        ])
        const bucket = `setup-denied-${operation.toLowerCase()}`
        const r = await cli(['setup', '--bucket', bucket], { AWS_ENDPOINT_URL_S3: proxy.endpoint })
        expect(r.code).toBe(1)
        expect(r.stderr).toMatch(message)
        expect(proxy.injected.map((i) => i.operation)).toContain(operation)
        if (operation === 'HeadBucket') {
          expect(await ours(bucket)).toEqual({ distributions: 0, oacs: 0, keyGroups: 0, roles: 0 })
        }
      } finally {
        await proxy.stop()
      }
    },
    60_000
  )
})
