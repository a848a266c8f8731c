/**
 * Pre-flight against moto_server: the world setupWorld builds (as the tutorial does) passes, and
 * each misconfiguration of a private-model setup is found with its fix. Every scenario builds its
 * own bucket and distribution, then breaks one thing with the same calls a person would make.
 *
 * moto 5.2 drops OriginAccessControlId and S3OriginConfig from GetDistribution and answers a 500
 * for unknown key groups and public keys; startEmulator() runs it with MOTO_PATCH, which fixes
 * exactly that (scripts/lib/emulator.mjs). moto does not enforce IAM, so the "needs permission"
 * paths are covered by the unit tests.
 */
import {
  CreateKeyGroupCommand,
  CreatePublicKeyCommand,
  GetDistributionConfigCommand,
  UpdateDistributionCommand,
  type CloudFrontClient,
  type DistributionConfig
} from '@aws-sdk/client-cloudfront'
import {
  DeleteBucketLifecycleCommand,
  DeleteBucketPolicyCommand,
  DeletePublicAccessBlockCommand,
  PutBucketPolicyCommand,
  PutBucketVersioningCommand,
  type S3Client
} from '@aws-sdk/client-s3'
import { TEST_REGION, setupWorld, type World } from '../../scripts/lib/emulator.mjs'
import { generateSigningKeys, publicKeyPem as pemOf } from '../../__fixtures__/signing.js'
import { startTestEmulator, type TestEmulator } from '../helpers/emulator-world.js'
import {
  preflightFailure,
  runPreflight,
  type PreflightTarget
} from '../../src/cdn/preflight/index.js'
import {
  ALL_CHECKS,
  BUCKET_CHECKS,
  allOk,
  expectOkExcept,
  oacBucketPolicy,
  only,
  statusesOf
} from '../../__fixtures__/preflight.js'

const PREFIX = 'models/v1'

let moto: TestEmulator | undefined
let s3: S3Client
let cloudfront: CloudFrontClient

/** A fresh key each time: no world trusts another's key by accident. */
const publicKeyPem = (): string => pemOf(generateSigningKeys())

function targetOf(world: World, extra: Partial<PreflightTarget> = {}): PreflightTarget {
  return {
    bucket: world.bucket,
    region: TEST_REGION,
    distributionId: world.distributionId,
    versionPrefix: PREFIX,
    signingKeyPairId: world.publicKeyId,
    ...extra
  }
}

const preflight = (target: PreflightTarget) => runPreflight({ s3, cloudfront }, target)
const world = (name: string, signed = true) =>
  setupWorld(moto!.emulator.endpoint, {
    bucket: `preflight-${name}`,
    ...(signed ? { signing: { publicKeyPem: publicKeyPem() } } : {})
  })

async function updateDistribution(id: string, change: (config: DistributionConfig) => void) {
  const { DistributionConfig: config, ETag } = await cloudfront.send(
    new GetDistributionConfigCommand({ Id: id })
  )
  change(config!)
  await cloudfront.send(
    new UpdateDistributionCommand({ Id: id, IfMatch: ETag, DistributionConfig: config })
  )
}

async function createKey(name: string, inGroup: boolean) {
  const key = await cloudfront.send(
    new CreatePublicKeyCommand({
      PublicKeyConfig: { CallerReference: name, Name: name, EncodedKey: publicKeyPem() }
    })
  )
  const keyId = key.PublicKey!.Id!
  if (!inGroup) return { keyId }
  const group = await cloudfront.send(
    new CreateKeyGroupCommand({ KeyGroupConfig: { Name: `${name}-group`, Items: [keyId] } })
  )
  return { keyId, groupId: group.KeyGroup!.Id! }
}

beforeAll(async () => {
  moto = await startTestEmulator()
  ;({ s3, cloudfront } = moto)
})

afterAll(() => moto?.stop())

describe('pre-flight against moto_server', () => {
  it('passes the tutorial world with signed URLs: every check ok, nothing to fail on', async () => {
    const w = await world('good')
    const findings = await preflight(targetOf(w))
    expect(statusesOf(findings)).toEqual(allOk(ALL_CHECKS))
    expect(only(findings, 'origin-access-control').message).toContain(w.oacId)
    expect(only(findings, 'bucket-policy').message).toContain(w.distributionArn)
    expect(only(findings, 'signed-urls').message).toContain(w.keyGroupId)
    expect(preflightFailure(findings)).toBeUndefined()
  })

  it('checks only the bucket without a distribution', async () => {
    const w = await world('bucket-only', false)
    const findings = await preflight(targetOf(w, { distributionId: undefined }))
    expect(statusesOf(findings)).toEqual(allOk(BUCKET_CHECKS))
  })

  it('fails when the bucket policy lets another distribution read, naming both ARNs', async () => {
    const w = await world('policy-other')
    const other = await world('policy-other-dist', false)
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: w.bucket,
        Policy: oacBucketPolicy(w.bucket, other.distributionArn)
      })
    )
    const findings = await preflight(targetOf(w))
    expectOkExcept(findings, 'bucket-policy')
    const policy = only(findings, 'bucket-policy')
    expect(policy.status).toBe('error')
    expect(policy.message).toContain(`only for ${other.distributionArn}`)
    expect(policy.message).toContain('AccessDenied')
    expect(policy.fix).toContain(
      JSON.stringify({ StringEquals: { 'AWS:SourceArn': w.distributionArn } })
    )
    expect(policy.fix).toContain(`"Resource":"arn:aws:s3:::${w.bucket}/*"`)
    const failure = preflightFailure(findings)
    expect(failure?.message).toContain('1 problem(s)')
    expect(failure?.message).toContain(w.distributionArn)
  })

  it('fails without a bucket policy, giving the whole policy to set', async () => {
    const w = await world('no-policy')
    await s3.send(new DeleteBucketPolicyCommand({ Bucket: w.bucket }))
    const findings = await preflight(targetOf(w))
    expectOkExcept(findings, 'bucket-policy')
    const policy = only(findings, 'bucket-policy')
    expect(policy).toMatchObject({ status: 'error' })
    expect(policy.message).toContain('has no bucket policy')
    expect(policy.fix).toContain(`aws s3api put-bucket-policy --bucket ${w.bucket} --policy '{`)
    expect(policy.fix).toContain(w.distributionArn)
  })

  it('fails when the OAC is detached from the origin', async () => {
    const w = await world('oac-detached')
    await updateDistribution(w.distributionId, (config) => {
      config.Origins!.Items![0].OriginAccessControlId = ''
    })
    const findings = await preflight(targetOf(w))
    expectOkExcept(findings, 'origin-access-control')
    const access = only(findings, 'origin-access-control')
    expect(access.status).toBe('error')
    expect(access.message).toContain(`Origin "${w.originId}" has no Origin Access Control`)
    expect(access.fix).toContain('aws cloudfront create-origin-access-control')
    expect(access.fix).toContain(`Distributions → ${w.distributionId} → Origins → "${w.originId}"`)
  })

  it('warns on a legacy origin access identity, and checks the policy grants that OAI', async () => {
    const w = await world('legacy-oai')
    const oai = 'E2LEGACYOAI123'
    await updateDistribution(w.distributionId, (config) => {
      const origin = config.Origins!.Items![0]
      origin.OriginAccessControlId = ''
      origin.S3OriginConfig = { OriginAccessIdentity: `origin-access-identity/cloudfront/${oai}` }
    })
    // The policy still grants the OAC: with an OAI origin, S3 would refuse CloudFront.
    let findings = await preflight(targetOf(w))
    expectOkExcept(findings, 'origin-access-control', 'bucket-policy')
    expect(only(findings, 'origin-access-control').status).toBe('warning')
    expect(only(findings, 'origin-access-control').message).toContain(
      'legacy origin access identity'
    )
    expect(only(findings, 'bucket-policy')).toMatchObject({ status: 'error' })
    expect(only(findings, 'bucket-policy').message).toContain(oai)

    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: w.bucket,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: {
                AWS: `arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity ${oai}`
              },
              Action: 's3:GetObject',
              Resource: `arn:aws:s3:::${w.bucket}/*`
            }
          ]
        })
      })
    )
    findings = await preflight(targetOf(w))
    expectOkExcept(findings, 'origin-access-control')
    expect(only(findings, 'bucket-policy').message).toContain(`origin access identity ${oai}`)
    expect(preflightFailure(findings)).toBeUndefined()
  })

  it('fails when no origin is the bucket', async () => {
    const w = await world('wrong-origin')
    await updateDistribution(w.distributionId, (config) => {
      config.Origins!.Items![0].DomainName = 'someone-else.s3.us-east-1.amazonaws.com'
    })
    const findings = await preflight(targetOf(w))
    const origin = only(findings, 'origin')
    expect(origin.status).toBe('error')
    expect(origin.message).toContain(`No origin of distribution ${w.distributionId} is bucket`)
    expect(origin.message).toContain('someone-else.s3.us-east-1.amazonaws.com')
    expect(origin.fix).toContain(`${w.bucket}.s3.${TEST_REGION}.amazonaws.com`)
  })

  it('warns when public access is not blocked, and fails when URLs are signed', async () => {
    const w = await world('public-access')
    await s3.send(new DeletePublicAccessBlockCommand({ Bucket: w.bucket }))
    const signed = await preflight(targetOf(w))
    expectOkExcept(signed, 'public-access-block')
    expect(only(signed, 'public-access-block')).toMatchObject({ status: 'error' })
    expect(only(signed, 'public-access-block').message).toContain('bypassing the signed URLs')
    expect(only(signed, 'public-access-block').fix).toContain(
      `aws s3api put-public-access-block --bucket ${w.bucket}`
    )

    const unsigned = await preflight(targetOf(w, { signingKeyPairId: undefined }))
    expectOkExcept(unsigned, 'public-access-block')
    expect(only(unsigned, 'public-access-block').status).toBe('warning')
  })

  it('warns when versioning is suspended', async () => {
    const w = await world('versioning')
    await s3.send(
      new PutBucketVersioningCommand({
        Bucket: w.bucket,
        VersioningConfiguration: { Status: 'Suspended' }
      })
    )
    const findings = await preflight(targetOf(w))
    expectOkExcept(findings, 'versioning')
    expect(only(findings, 'versioning')).toMatchObject({ status: 'warning' })
    expect(only(findings, 'versioning').message).toContain('suspended')
    expect(only(findings, 'versioning').fix).toContain('Status=Enabled')
  })

  it('warns without a lifecycle rule aborting incomplete multipart uploads', async () => {
    const w = await world('lifecycle')
    await s3.send(new DeleteBucketLifecycleCommand({ Bucket: w.bucket }))
    const findings = await preflight(targetOf(w))
    expectOkExcept(findings, 'lifecycle')
    const lifecycle = only(findings, 'lifecycle')
    expect(lifecycle.status).toBe('warning')
    expect(lifecycle.fix).toContain(
      `aws s3api put-bucket-lifecycle-configuration --bucket ${w.bucket}`
    )
    expect(lifecycle.fix).toContain('"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1}')
  })

  it('fails when the key is in a key group the behavior does not trust, naming that group', async () => {
    const w = await world('untrusted-group')
    const { keyId, groupId } = await createKey('preflight-untrusted-key', true)
    const findings = await preflight(targetOf(w, { signingKeyPairId: keyId }))
    expectOkExcept(findings, 'signed-urls')
    const signing = only(findings, 'signed-urls')
    expect(signing.status).toBe('error')
    expect(signing.message).toContain(`Public key ${keyId} is in key group ${groupId}`)
    expect(signing.message).toContain(`it trusts key group(s) ${w.keyGroupId}`)
    expect(signing.message).toContain('403')
    expect(signing.fix).toContain(`Add key group ${groupId} to the trusted key groups`)
  })

  it('fails when the key is in no key group, or does not exist', async () => {
    const w = await world('key-not-in-group')
    const { keyId } = await createKey('preflight-loose-key', false)
    let signing = only(await preflight(targetOf(w, { signingKeyPairId: keyId })), 'signed-urls')
    expect(signing.status).toBe('error')
    expect(signing.message).toContain(`Public key ${keyId} is not in any key group`)
    expect(signing.fix).toContain(`Add public key ${keyId} to key group ${w.keyGroupId}`)

    signing = only(await preflight(targetOf(w, { signingKeyPairId: 'K3NOSUCHKEY' })), 'signed-urls')
    expect(signing.status).toBe('error')
    expect(signing.message).toContain('No public key with ID K3NOSUCHKEY exists')
  })

  it('fails when URLs are signed but the behavior does not require signatures', async () => {
    const w = await world('unrestricted', false)
    const { keyId } = await createKey('preflight-unused-key', true)
    const findings = await preflight(targetOf(w, { signingKeyPairId: keyId }))
    expectOkExcept(findings, 'signed-urls')
    const signing = only(findings, 'signed-urls')
    expect(signing.status).toBe('error')
    expect(signing.message).toContain('The default cache behavior of distribution')
    expect(signing.message).toContain('does not restrict viewer access')
  })

  it('checks the cache behavior whose path pattern serves the prefix, not the default', async () => {
    const w = await world('behaviors')
    await updateDistribution(w.distributionId, (config) => {
      const open = {
        ...config.DefaultCacheBehavior!,
        TrustedKeyGroups: { Enabled: false, Quantity: 0 }
      }
      config.CacheBehaviors = {
        Quantity: 2,
        Items: [
          { ...open, PathPattern: '/other/*' },
          { ...open, PathPattern: 'models/*' }
        ]
      }
    })
    const signing = only(await preflight(targetOf(w)), 'signed-urls')
    expect(signing.status).toBe('error')
    expect(signing.message).toContain('Cache behavior "models/*"')
    expect(signing.message).toContain('does not restrict viewer access')
    // Another prefix falls through to the default behavior, which trusts the key group.
    const other = await preflight(targetOf(w, { versionPrefix: 'v2' }))
    expect(only(other, 'signed-urls')).toMatchObject({ status: 'ok' })
  })

  it('fails for a distribution id that does not exist, still checking the bucket', async () => {
    const w = await world('no-distribution')
    const findings = await preflight(targetOf(w, { distributionId: 'E0000NOTTHERE' }))
    expect(statusesOf(findings)).toEqual([['distribution', 'error'], ...allOk(BUCKET_CHECKS)])
    expect(findings[0].message).toContain('Distribution E0000NOTTHERE does not exist')
    expect(findings[0].fix).toContain('aws cloudfront list-distributions')
  })

  it('reports a missing bucket once', async () => {
    const w = await world('bucket-exists', false)
    const findings = await preflight(
      targetOf(w, { bucket: 'preflight-no-such-bucket', signingKeyPairId: undefined })
    )
    const bucket = only(findings, 'bucket')
    expect(bucket.status).toBe('error')
    expect(bucket.message).toContain('NoSuchBucket')
    expect(bucket.fix).toContain('Bucket "preflight-no-such-bucket" does not exist')
    // The distribution's origin is another bucket, which the origin check says.
    expect(only(findings, 'origin').status).toBe('error')
    expect(findings.filter((f) => f.check === 'versioning')).toEqual([])
  })
})
