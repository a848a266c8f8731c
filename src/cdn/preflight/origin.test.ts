import { GetOriginAccessControlCommand } from '@aws-sdk/client-cloudfront'
import { runPreflight } from './index.js'
import { parseS3Domain } from './origin.js'
import { expectOkExcept, only } from '../../../__fixtures__/preflight.js'
import {
  BUCKET,
  DIST,
  goodConfig,
  mockPreflightWorld,
  ORIGIN,
  target
} from '../../../__fixtures__/preflight-world.js'

const { cfMock, clients, mockDistribution } = mockPreflightWorld()

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
})
