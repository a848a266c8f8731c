import {
  GetDistributionCommand,
  GetOriginAccessControlCommand,
  type Distribution
} from '@aws-sdk/client-cloudfront'
import {
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand
} from '@aws-sdk/client-s3'
import { DeployError } from '../common/errors.js'
import { formatFinding } from './preflight/index.js'
import { resolveTarget, type TargetDeps } from './target.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import { mockAwsClients } from '../../__fixtures__/aws-mocks.js'
import { DISTRIBUTION_ID, deployedDistribution } from '../../__fixtures__/cloudfront.js'
import {
  ALL_PUBLIC_ACCESS_BLOCKED,
  oacBucketPolicy,
  originAccessControl
} from '../../__fixtures__/preflight.js'

const { s3Mock, cfMock, clients } = mockAwsClients()

type Inputs = Parameters<typeof resolveTarget>[0]
function inputs(overrides: Partial<Inputs> = {}): Inputs {
  return {
    bucket: 'models',
    region: 'eu-west-1',
    distributionId: undefined,
    versionPrefix: 'v1',
    signing: undefined,
    preflight: true,
    urlBase: undefined,
    endpointUrl: undefined,
    ...overrides
  }
}

function deps(env: NodeJS.ProcessEnv = {}): TargetDeps & {
  logger: ReturnType<typeof silentLogger>
  warned: string[]
} {
  const warned: string[] = []
  return { env, logger: silentLogger(), warn: (m) => void warned.push(m), warned }
}

const awsError = (name: string, status: number): Error =>
  Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status } })

/** The bucket settings pre-flight reads: public access blocked, versioning suspended, no lifecycle permission. */
function mockBucketSettings(): void {
  s3Mock.on(GetBucketPolicyCommand).resolves({})
  s3Mock.on(GetPublicAccessBlockCommand).resolves(ALL_PUBLIC_ACCESS_BLOCKED)
  s3Mock.on(GetBucketVersioningCommand).resolves({ Status: 'Suspended' })
  s3Mock.on(GetBucketLifecycleConfigurationCommand).rejects(awsError('AccessDenied', 403))
}

/**
 * A distribution that serves the bucket through OAC, and the bucket policy letting it read:
 * pre-flight then finds no error.
 */
function mockServingSetup(enabled: boolean): void {
  const arn = deployedDistribution.Distribution?.ARN as string
  cfMock.on(GetDistributionCommand).resolves({
    Distribution: {
      ...(deployedDistribution.Distribution as Distribution),
      DistributionConfig: {
        CallerReference: 'ref',
        Comment: '',
        Enabled: enabled,
        Origins: {
          Quantity: 1,
          Items: [
            {
              Id: 'bucket',
              DomainName: 'models.s3.eu-west-1.amazonaws.com',
              S3OriginConfig: { OriginAccessIdentity: '' },
              OriginAccessControlId: 'E3OAC'
            }
          ]
        },
        DefaultCacheBehavior: { TargetOriginId: 'bucket', ViewerProtocolPolicy: 'https-only' }
      }
    }
  })
  cfMock.on(GetOriginAccessControlCommand).resolves(originAccessControl('E3OAC'))
  s3Mock.on(GetBucketPolicyCommand).resolves({ Policy: oacBucketPolicy('models', arn) })
}

beforeEach(() => {
  mockBucketSettings()
  cfMock.on(GetDistributionCommand).resolves(deployedDistribution)
})

describe('resolveTarget: pre-flight', () => {
  it('sends warnings and unchecked findings to warn, ok ones to the log, and returns them all', async () => {
    const d = deps()
    const target = await resolveTarget(inputs(), clients, d)
    expect(target.preflight?.map((f) => [f.check, f.status])).toEqual([
      ['public-access-block', 'ok'],
      ['versioning', 'warning'],
      ['lifecycle', 'unchecked']
    ])
    const [ok, warning, unchecked] = target.preflight ?? []
    expect(d.warned).toEqual([formatFinding(warning), formatFinding(unchecked)])
    expect(d.logger.lines).toContain(formatFinding(ok))
    expect(d.logger.lines).not.toContain(formatFinding(warning))
    // warn logs the warnings itself; resolveTarget must not log them a second time.
    expect(d.logger.warnings).toEqual([])
  })

  it('throws the pre-flight failure on an error finding, before reading the distribution', async () => {
    mockServingSetup(true)
    s3Mock.on(GetBucketPolicyCommand).rejects(awsError('NoSuchBucket', 404))
    const d = deps()
    const promise = resolveTarget(inputs({ distributionId: DISTRIBUTION_ID }), clients, d)
    await expect(promise).rejects.toThrow(DeployError)
    await expect(promise).rejects.toThrow(
      /^Pre-flight found 1 problem\(s\) that would leave the models unreachable or unprotected; nothing was uploaded\.\n1\. bucket: /
    )
    // Pre-flight's own read of the distribution, and not the deploy's.
    expect(cfMock.commandCalls(GetDistributionCommand)).toHaveLength(1)
    // The error is in the failure, not also a warning.
    expect(d.warned.filter((w) => w.startsWith('Pre-flight bucket'))).toEqual([])
  })

  it('without a distribution, an error finding stops the run without a CloudFront call', async () => {
    s3Mock.on(GetBucketVersioningCommand).rejects(awsError('NoSuchBucket', 404))
    await expect(resolveTarget(inputs(), clients, deps())).rejects.toMatchObject({
      message: expect.stringContaining('1. bucket: Failed reading bucket "models"'),
      hint: expect.stringContaining('Fix the setup as described and run again')
    })
    expect(cfMock.calls()).toHaveLength(0)
  })

  it('with preflight false sends no pre-flight call and reads the distribution once', async () => {
    const target = await resolveTarget(
      inputs({ preflight: false, distributionId: DISTRIBUTION_ID }),
      clients,
      deps()
    )
    expect(target.preflight).toBeUndefined()
    expect(s3Mock.calls()).toHaveLength(0)
    expect(cfMock.calls()).toHaveLength(1)
    expect(cfMock.commandCalls(GetDistributionCommand)[0].args[0].input).toEqual({
      Id: DISTRIBUTION_ID
    })
  })

  it('with preflight true reads the distribution once, for the checks and the URL base', async () => {
    mockServingSetup(true)
    const target = await resolveTarget(inputs({ distributionId: DISTRIBUTION_ID }), clients, deps())
    expect(target.preflight?.find((f) => f.check === 'distribution')?.status).toBe('ok')
    expect(target.urlBase).toBe(`https://${deployedDistribution.Distribution?.DomainName}`)
    expect(cfMock.commandCalls(GetDistributionCommand)).toHaveLength(1)
  })

  it('warns about a disabled distribution only when pre-flight did not', async () => {
    mockServingSetup(false)
    const off = deps()
    const target = await resolveTarget(
      inputs({ preflight: false, distributionId: DISTRIBUTION_ID }),
      clients,
      off
    )
    expect(target.distribution?.enabled).toBe(false)
    expect(off.warned).toEqual([
      `CloudFront distribution ${DISTRIBUTION_ID} is disabled: the URLs will not serve until it is enabled.`
    ])

    mockServingSetup(false)
    const on = deps()
    await resolveTarget(inputs({ distributionId: DISTRIBUTION_ID }), clients, on)
    const disabled = on.warned.filter((w) => w.includes('is disabled'))
    expect(disabled).toHaveLength(1)
    expect(disabled[0]).toMatch(/^Pre-flight distribution: Distribution E2ABCDEFGHIJKL is disabled/)
  })
})

describe('resolveTarget: URL base', () => {
  it('prefers url-base over the distribution domain', async () => {
    const target = await resolveTarget(
      inputs({
        preflight: false,
        distributionId: DISTRIBUTION_ID,
        urlBase: 'https://models.example.com'
      }),
      clients,
      deps()
    )
    expect(target.urlBase).toBe('https://models.example.com')
    expect(target.distribution).toMatchObject({
      id: DISTRIBUTION_ID,
      domain: 'd111.cloudfront.net'
    })
  })

  it('uses the distribution domain over the bucket URL', async () => {
    const target = await resolveTarget(
      inputs({ preflight: false, distributionId: DISTRIBUTION_ID }),
      clients,
      deps()
    )
    expect(target.urlBase).toBe('https://d111.cloudfront.net')
  })

  it("falls back to the bucket's URL without a distribution", async () => {
    const target = await resolveTarget(inputs({ preflight: false }), clients, deps())
    expect(target.urlBase).toBe('https://models.s3.eu-west-1.amazonaws.com')
    expect(target.distribution).toBeUndefined()
    expect(cfMock.calls()).toHaveLength(0)
  })

  it('uses url-base without a distribution', async () => {
    const target = await resolveTarget(
      inputs({ preflight: false, urlBase: 'http://127.0.0.1:9000/models' }),
      clients,
      deps()
    )
    expect(target.urlBase).toBe('http://127.0.0.1:9000/models')
  })

  it("takes a custom endpoint from the input, else from the run's env", async () => {
    const fromInput = await resolveTarget(
      inputs({ preflight: false, endpointUrl: 'http://localhost:4566/' }),
      clients,
      deps({ AWS_ENDPOINT_URL_S3: 'http://ignored:1' })
    )
    expect(fromInput.urlBase).toBe('http://localhost:4566/models')
    const fromEnv = await resolveTarget(
      inputs({ preflight: false }),
      clients,
      deps({ AWS_ENDPOINT_URL_S3: 'http://minio:9000' })
    )
    expect(fromEnv.urlBase).toBe('http://minio:9000/models')
  })
})
