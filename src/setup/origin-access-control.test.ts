import {
  CloudFrontClient,
  CreateOriginAccessControlCommand,
  GetOriginAccessControlCommand,
  ListOriginAccessControlsCommand,
  UpdateOriginAccessControlCommand,
  type OriginAccessControlSummary
} from '@aws-sdk/client-cloudfront'
import { IAMClient } from '@aws-sdk/client-iam'
import { S3Client } from '@aws-sdk/client-s3'
import { STSClient } from '@aws-sdk/client-sts'
import { mockClient } from 'aws-sdk-client-mock'
import { AwsError, DeployError } from '../common/errors.js'
import { awsError } from '../../__fixtures__/preflight-world.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import {
  applyChange,
  ensureOriginAccessControl,
  originAccessControlName,
  request,
  setupName
} from './origin-access-control.js'
import type { SetupChange, SetupContext } from './types.js'

const cfMock = mockClient(CloudFrontClient)
beforeEach(() => cfMock.reset())

function setupContext(dryRun = false): { ctx: SetupContext; changes: SetupChange[] } {
  const changes: SetupChange[] = []
  const region = 'us-east-1'
  const ctx: SetupContext = {
    clients: {
      s3: new S3Client({ region }),
      cloudfront: new CloudFrontClient({ region }),
      iam: new IAMClient({ region }),
      sts: new STSClient({ region })
    },
    dryRun,
    logger: silentLogger(),
    change: (change) => void changes.push(change)
  }
  return { ctx, changes }
}

const BUCKET = 'model-bucket'
const NAME = 'model-cdn-deploy-model-bucket'
const summary = (
  overrides: Partial<OriginAccessControlSummary> = {}
): OriginAccessControlSummary => ({
  Id: 'E3OAC',
  Name: NAME,
  Description: '',
  SigningProtocol: 'sigv4' as const,
  SigningBehavior: 'always' as const,
  OriginAccessControlOriginType: 's3' as const,
  ...overrides
})
const list = (items: OriginAccessControlSummary[], NextMarker?: string) => ({
  OriginAccessControlList: {
    Marker: '',
    MaxItems: 100,
    IsTruncated: NextMarker !== undefined,
    Quantity: items.length,
    Items: items,
    NextMarker
  }
})

describe('setupName', () => {
  it('is the prefix and the bucket when that fits', () => {
    expect(setupName('model-bucket', 64)).toBe(NAME)
  })

  it('shortens a long bucket name to the limit, keeping two buckets apart by a hash', () => {
    const a = setupName(`${'a'.repeat(60)}-one`, 64)
    const b = setupName(`${'a'.repeat(60)}-two`, 64)
    expect(a).toHaveLength(64)
    expect(a).toMatch(/^model-cdn-deploy-a+-[0-9a-f]{8}$/)
    expect(a).not.toBe(b)
  })

  it('replaces dots, which CloudFront names do not take, and adds the hash so a.b and a-b differ', () => {
    expect(setupName('models.example.com', 64)).toMatch(
      /^model-cdn-deploy-models-example-com-[0-9a-f]{8}$/
    )
    expect(setupName('a.b', 64)).not.toBe(setupName('a-b', 64))
    expect(originAccessControlName('x'.repeat(63)).length).toBeLessThanOrEqual(64)
  })
})

describe('ensureOriginAccessControl', () => {
  it('creates one for S3 that signs every request, when there is none', async () => {
    cfMock.on(ListOriginAccessControlsCommand).resolves(list([summary({ Name: 'other' })]))
    cfMock
      .on(CreateOriginAccessControlCommand)
      .resolves({ OriginAccessControl: { Id: 'E3NEW' }, ETag: 'e1' })
    const { ctx, changes } = setupContext()

    await expect(ensureOriginAccessControl(ctx, { bucket: BUCKET })).resolves.toBe('E3NEW')
    expect(cfMock.commandCalls(CreateOriginAccessControlCommand)[0].args[0].input).toEqual({
      OriginAccessControlConfig: {
        Name: NAME,
        Description: `model-cdn-deploy setup: CloudFront reads bucket ${BUCKET} with signed requests`,
        OriginAccessControlOriginType: 's3',
        SigningProtocol: 'sigv4',
        SigningBehavior: 'always'
      }
    })
    expect(changes).toEqual([
      {
        resource: 'origin-access-control',
        action: 'create',
        detail: `${NAME}: for S3, signs every request (SigV4, always)`
      }
    ])
  })

  it('finds its own again on a later page, and changes nothing', async () => {
    cfMock
      .on(ListOriginAccessControlsCommand, { Marker: undefined })
      .resolves(list([summary({ Id: 'E3X', Name: 'other' })], 'page2'))
    cfMock.on(ListOriginAccessControlsCommand, { Marker: 'page2' }).resolves(list([summary()]))
    const { ctx, changes } = setupContext()

    await expect(ensureOriginAccessControl(ctx, { bucket: BUCKET })).resolves.toBe('E3OAC')
    expect(cfMock.commandCalls(ListOriginAccessControlsCommand)).toHaveLength(2)
    expect(cfMock.commandCalls(CreateOriginAccessControlCommand)).toHaveLength(0)
    expect(cfMock.commandCalls(UpdateOriginAccessControlCommand)).toHaveLength(0)
    expect(changes).toEqual([])
  })

  it.each(['no-override', 'never'] as const)(
    'tightens one of ours that signs %s to always, with its ETag',
    async (behavior) => {
      cfMock
        .on(ListOriginAccessControlsCommand)
        .resolves(list([summary({ SigningBehavior: behavior })]))
      const config = { ...summary({ SigningBehavior: behavior }), Id: undefined }
      cfMock.on(GetOriginAccessControlCommand).resolves({
        OriginAccessControl: { Id: 'E3OAC', OriginAccessControlConfig: config },
        ETag: 'etag-1'
      })
      cfMock.on(UpdateOriginAccessControlCommand).resolves({})
      const { ctx, changes } = setupContext()

      await expect(ensureOriginAccessControl(ctx, { bucket: BUCKET })).resolves.toBe('E3OAC')
      expect(cfMock.commandCalls(UpdateOriginAccessControlCommand)[0].args[0].input).toEqual({
        Id: 'E3OAC',
        IfMatch: 'etag-1',
        OriginAccessControlConfig: { ...config, SigningBehavior: 'always' }
      })
      expect(changes).toEqual([
        {
          resource: 'origin-access-control',
          action: 'update',
          detail: `${NAME}: signing behavior ${behavior} → always`
        }
      ])
    }
  )

  it('in a dry run writes nothing, records what it would do, and has no id for a new one', async () => {
    cfMock.on(ListOriginAccessControlsCommand).resolves(list([]))
    const { ctx, changes } = setupContext(true)
    await expect(ensureOriginAccessControl(ctx, { bucket: BUCKET })).resolves.toBeUndefined()
    expect(changes.map((c) => c.action)).toEqual(['create'])

    cfMock
      .on(ListOriginAccessControlsCommand)
      .resolves(list([summary({ SigningBehavior: 'never' })]))
    await expect(ensureOriginAccessControl(ctx, { bucket: BUCKET })).resolves.toBe('E3OAC')
    expect(changes.map((c) => c.action)).toEqual(['create', 'update'])
    expect(cfMock.commandCalls(CreateOriginAccessControlCommand)).toHaveLength(0)
    expect(cfMock.commandCalls(GetOriginAccessControlCommand)).toHaveLength(0)
    expect(cfMock.commandCalls(UpdateOriginAccessControlCommand)).toHaveLength(0)
  })

  it('refuses one of ours that is not for S3, rather than change its type', async () => {
    cfMock
      .on(ListOriginAccessControlsCommand)
      .resolves(list([summary({ OriginAccessControlOriginType: 'mediastore' })]))
    const { ctx } = setupContext()
    const err = await ensureOriginAccessControl(ctx, { bucket: BUCKET }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toContain('"mediastore", not S3')
    expect(cfMock.commandCalls(UpdateOriginAccessControlCommand)).toHaveLength(0)
  })

  it('fails when AWS answers a create without an id', async () => {
    cfMock.on(ListOriginAccessControlsCommand).resolves(list([]))
    cfMock.on(CreateOriginAccessControlCommand).resolves({})
    const { ctx } = setupContext()
    await expect(ensureOriginAccessControl(ctx, { bucket: BUCKET })).rejects.toThrow(
      `CreateOriginAccessControl ${NAME} returned no id.`
    )
  })

  it('names the IAM action that was refused', async () => {
    cfMock.on(ListOriginAccessControlsCommand).resolves(list([]))
    cfMock.on(CreateOriginAccessControlCommand).rejects(awsError('AccessDenied', 403))
    const { ctx, changes } = setupContext()
    const err = await ensureOriginAccessControl(ctx, { bucket: BUCKET }).catch((e: unknown) => e)
    expect((err as DeployError).message).toBe(
      `Setup was refused cloudfront:CreateOriginAccessControl while creating Origin Access Control ${NAME}.`
    )
    expect((err as DeployError).hint).toContain('Allow cloudfront:CreateOriginAccessControl')
    expect(changes).toEqual([])
  })
})

describe('request', () => {
  it('explains any other AWS error with what setup was doing', async () => {
    const err = await request('cloudfront:X', 'doing x', () =>
      Promise.reject(awsError('Throttling', 400, 'Rate exceeded'))
    ).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AwsError)
    expect((err as AwsError).message).toContain('Failed doing x: AWS said Throttling')
  })
})

describe('applyChange', () => {
  it('records a change only once it is made', async () => {
    const { ctx, changes } = setupContext()
    const change: SetupChange = { resource: 'r', action: 'create', detail: 'd' }
    await expect(applyChange(ctx, change, () => Promise.reject(new Error('no')))).rejects.toThrow(
      'no'
    )
    expect(changes).toEqual([])
    await expect(applyChange(ctx, change, async () => 'made')).resolves.toBe('made')
    expect(changes).toEqual([change])
  })
})
