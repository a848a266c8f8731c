import { GetOriginAccessControlCommand } from '@aws-sdk/client-cloudfront'
import { runPreflight } from './index.js'
import { expectOkExcept, only, originAccessControl } from '../../../__fixtures__/preflight.js'
import {
  awsError,
  BUCKET,
  goodConfig,
  mockPreflightWorld,
  OAC,
  ORIGIN,
  statement,
  target
} from '../../../__fixtures__/preflight-world.js'

const { cfMock, clients, mockDistribution, mockPolicy } = mockPreflightWorld()

describe('runPreflight', () => {
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
})
