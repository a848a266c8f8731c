import {
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand
} from '@aws-sdk/client-s3'
import { preflightFailure, runPreflight } from './index.js'
import { only } from '../../../__fixtures__/preflight.js'
import {
  abortRule,
  awsError,
  mockPreflightWorld,
  target
} from '../../../__fixtures__/preflight-world.js'

const { s3Mock, clients, mockLifecycle } = mockPreflightWorld()

describe('runPreflight', () => {
  it('reports a missing bucket once, instead of four settings', async () => {
    for (const command of [
      GetBucketPolicyCommand,
      GetPublicAccessBlockCommand,
      GetBucketVersioningCommand,
      GetBucketLifecycleConfigurationCommand
    ]) {
      s3Mock.on(command as typeof GetBucketPolicyCommand).rejects(awsError('NoSuchBucket', 404))
    }
    const findings = await runPreflight(clients, target)
    expect(findings.filter((f) => f.status !== 'ok').map((f) => [f.check, f.status])).toEqual([
      ['bucket', 'error']
    ])
    expect(findings.map((f) => f.check)).not.toContain('versioning')
    expect(only(findings, 'bucket').fix).toContain('Bucket "model-bucket" does not exist')
  })

  describe('bucket settings', () => {
    it('warns when public access is not blocked, listing the flags, and fails when signing', async () => {
      s3Mock.on(GetPublicAccessBlockCommand).resolves({
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          IgnorePublicAcls: true,
          BlockPublicPolicy: false,
          RestrictPublicBuckets: false
        }
      })
      const unsigned = await runPreflight(clients, { ...target, signingKeyPairId: undefined })
      const block = only(unsigned, 'public-access-block')
      expect(block.status).toBe('warning')
      expect(block.message).toContain(
        'partly off (BlockPublicPolicy, RestrictPublicBuckets not set)'
      )
      expect(block.fix).toContain('RestrictPublicBuckets=true')

      const signed = await runPreflight(clients, target)
      expect(only(signed, 'public-access-block').status).toBe('error')
      expect(preflightFailure(signed)?.message).toContain('public-access-block')
    })

    it('treats a missing public access block as off', async () => {
      s3Mock
        .on(GetPublicAccessBlockCommand)
        .rejects(awsError('NoSuchPublicAccessBlockConfiguration', 404))
      const block = only(await runPreflight(clients, target), 'public-access-block')
      expect(block.status).toBe('error')
      expect(block.message).toContain('Block Public Access is off')
    })

    it.each([
      [{ Status: 'Suspended' as const }, 'suspended'],
      [{}, 'not enabled']
    ])('warns when versioning is %j', async (output, state) => {
      s3Mock.on(GetBucketVersioningCommand).resolves(output)
      const versioning = only(await runPreflight(clients, target), 'versioning')
      expect(versioning.status).toBe('warning')
      expect(versioning.message).toContain(`Versioning is ${state}`)
      expect(versioning.fix).toContain('--versioning-configuration Status=Enabled')
    })

    it('warns without lifecycle rules, giving the whole configuration to set', async () => {
      s3Mock
        .on(GetBucketLifecycleConfigurationCommand)
        .rejects(awsError('NoSuchLifecycleConfiguration', 404))
      const lifecycle = only(await runPreflight(clients, target), 'lifecycle')
      expect(lifecycle.status).toBe('warning')
      expect(lifecycle.fix).toContain(`--lifecycle-configuration '{"Rules":[{`)
    })

    it.each([
      ['disabled', { ...abortRule, Status: 'Disabled' as const }],
      ['for another prefix', { ...abortRule, Filter: { Prefix: 'datasets/' } }],
      ['for a tag', { ...abortRule, Filter: { Tag: { Key: 'tmp', Value: '1' } } }],
      [
        'that only expires objects',
        { ID: 'expire', Status: 'Enabled' as const, Filter: {}, Expiration: { Days: 30 } }
      ]
    ])('warns when the only rule is %s, telling to keep the existing rules', async (_, rule) => {
      mockLifecycle(rule)
      const lifecycle = only(await runPreflight(clients, target), 'lifecycle')
      expect(lifecycle.status).toBe('warning')
      expect(lifecycle.fix).toContain('replaces them all')
      expect(lifecycle.fix).toContain('"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1}')
    })

    it.each([
      ['a parent prefix', { ...abortRule, Filter: { Prefix: 'models/' } }],
      ['an And filter', { ...abortRule, Filter: { And: { Prefix: 'models/v' } } }],
      ['the legacy Prefix field', { ...abortRule, Filter: undefined, Prefix: '' }]
    ])('accepts a rule with %s', async (_, rule) => {
      mockLifecycle({ ID: 'other', Status: 'Enabled', Filter: {}, Expiration: { Days: 9 } }, rule)
      const lifecycle = only(await runPreflight(clients, target), 'lifecycle')
      expect(lifecycle.status).toBe('ok')
      expect(lifecycle.message).toContain('after 1 day(s)')
    })
  })
})
