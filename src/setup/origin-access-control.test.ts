import {
  CloudFrontClient,
  CreateOriginAccessControlCommand,
  GetOriginAccessControlCommand,
  ListOriginAccessControlsCommand,
  UpdateOriginAccessControlCommand,
  type OriginAccessControlSummary
} from '@aws-sdk/client-cloudfront'
import { mockClient } from 'aws-sdk-client-mock'
import { DeployError } from '../common/errors.js'
import { awsError } from '../../__fixtures__/preflight-world.js'
import { setupContext } from '../../__fixtures__/setup-context.js'
import { ensureOriginAccessControl, originAccessControlName } from './origin-access-control.js'

const cfMock = mockClient(CloudFrontClient)
beforeEach(() => cfMock.reset())

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

describe('originAccessControlName', () => {
  it('is within CloudFront’s 64 characters', () => {
    expect(originAccessControlName(BUCKET)).toBe(NAME)
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
    expect((err as DeployError).message).toContain(
      `Failed creating Origin Access Control ${NAME} (cloudfront:CreateOriginAccessControl): AWS said AccessDenied`
    )
    expect((err as DeployError).hint).toContain('may not call cloudfront:CreateOriginAccessControl')
    expect(changes).toEqual([])
  })
})
