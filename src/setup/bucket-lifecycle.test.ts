import {
  GetBucketLifecycleConfigurationCommand,
  PutBucketLifecycleConfigurationCommand,
  type LifecycleRule
} from '@aws-sdk/client-s3'
import { PREVIEW_TAG } from '../common/constants.js'
import { awsError, denied } from '../../__fixtures__/preflight-world.js'
import { mockSetupS3, sentCommands, setupContext } from '../../__fixtures__/setup-context.js'
import { ensureLifecycleRules, LIFECYCLE_RULE_IDS, readLifecycle } from './bucket-lifecycle.js'

const s3Mock = mockSetupS3()

const BUCKET = 'model-bucket'
const days = { noncurrentVersionDays: 30, previewDays: 14 }

const abortRule: LifecycleRule = {
  ID: LIFECYCLE_RULE_IDS.abortUploads,
  Status: 'Enabled',
  Filter: { Prefix: '' },
  AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }
}
const noncurrentRule: LifecycleRule = {
  ID: LIFECYCLE_RULE_IDS.noncurrentVersions,
  Status: 'Enabled',
  Filter: { Prefix: '' },
  NoncurrentVersionExpiration: { NoncurrentDays: 30 },
  Expiration: { ExpiredObjectDeleteMarker: true }
}
const previewRule: LifecycleRule = {
  ID: LIFECYCLE_RULE_IDS.previews,
  Status: 'Enabled',
  Filter: { Tag: { Key: 'model-cdn-deploy:preview', Value: 'true' } },
  Expiration: { Days: 14 }
}
const theirRule: LifecycleRule = {
  ID: 'logs-expire',
  Status: 'Enabled',
  Filter: { Prefix: 'logs/' },
  Expiration: { Days: 7 }
}

const putRules = () =>
  s3Mock.commandCalls(PutBucketLifecycleConfigurationCommand)[0].args[0].input
    .LifecycleConfiguration?.Rules

describe('bucket lifecycle rules', () => {
  it('expires previews by the tag the deploy puts on them', () => {
    // previewRule is what the tests below expect ensureLifecycleRules to write.
    expect(previewRule.Filter?.Tag).toEqual({ Key: PREVIEW_TAG.key, Value: PREVIEW_TAG.value })
  })

  it('adds its three rules (no tag filter on the abort rule, which S3 refuses)', async () => {
    const { ctx } = setupContext()
    await ensureLifecycleRules(ctx, BUCKET, { rules: [] }, days)
    expect(s3Mock.commandCalls(PutBucketLifecycleConfigurationCommand)[0].args[0].input).toEqual({
      Bucket: BUCKET,
      LifecycleConfiguration: { Rules: [abortRule, noncurrentRule, previewRule] }
    })
  })

  it('changes nothing when its rules are in place, in whichever form S3 reads them back', async () => {
    const { ctx, changes } = setupContext()
    const readBack = [{ ...abortRule, Filter: {} }, theirRule, noncurrentRule, previewRule]
    await ensureLifecycleRules(ctx, BUCKET, { rules: readBack }, days)
    expect(s3Mock.calls()).toHaveLength(0)
    expect(changes).toEqual([])
  })

  it("keeps the bucket's rules and its default transition size, correcting its own in place", async () => {
    const { ctx, changes } = setupContext()
    const current = [
      theirRule,
      { ...previewRule, Expiration: { Days: 90 } },
      { ...abortRule, Status: 'Disabled' as const }
    ]
    await ensureLifecycleRules(
      ctx,
      BUCKET,
      { rules: current, transitionDefaultMinimumObjectSize: 'varies_by_storage_class' },
      days
    )
    const put = s3Mock.commandCalls(PutBucketLifecycleConfigurationCommand)[0].args[0].input
    expect(put.LifecycleConfiguration?.Rules).toEqual([
      theirRule,
      previewRule,
      abortRule,
      noncurrentRule
    ])
    expect(put.TransitionDefaultMinimumObjectSize).toBe('varies_by_storage_class')
    expect(changes.map((c) => c.detail)).toEqual([
      'lifecycle rule model-cdn-deploy-abort-incomplete-uploads corrected (aborts incomplete multipart uploads after 1 day)',
      'lifecycle rule model-cdn-deploy-noncurrent-versions added (deletes noncurrent object versions after 30 days)',
      'lifecycle rule model-cdn-deploy-previews corrected (expires objects tagged model-cdn-deploy:preview=true after 14 days)'
    ])
  })

  it('follows the days asked for', async () => {
    const { ctx, changes } = setupContext()
    const rules = [abortRule, noncurrentRule, previewRule]
    await ensureLifecycleRules(ctx, BUCKET, { rules }, { noncurrentVersionDays: 7, previewDays: 3 })
    expect(putRules()?.map((r) => [r.NoncurrentVersionExpiration, r.Expiration])).toEqual([
      [undefined, undefined],
      [{ NoncurrentDays: 7 }, { ExpiredObjectDeleteMarker: true }],
      [undefined, { Days: 3 }]
    ])
    expect(changes).toHaveLength(2)
  })

  it('writes a rule of the deprecated form (rule-level Prefix) in the Filter form, same meaning', async () => {
    const { ctx } = setupContext()
    const legacy: LifecycleRule = {
      ID: 'old',
      Status: 'Enabled',
      Prefix: 'tmp/',
      Expiration: { Days: 1 }
    }
    await ensureLifecycleRules(ctx, BUCKET, { rules: [legacy] }, days)
    expect(putRules()?.[0]).toEqual({
      ID: 'old',
      Status: 'Enabled',
      Filter: { Prefix: 'tmp/' },
      Expiration: { Days: 1 }
    })
  })

  it('in a dry run, records and writes nothing', async () => {
    const { ctx, changes } = setupContext(true)
    await ensureLifecycleRules(ctx, BUCKET, { rules: [theirRule] }, days)
    expect(s3Mock.calls()).toHaveLength(0)
    expect(changes).toHaveLength(3)
  })

  it('reads no rules from a bucket without a lifecycle configuration', async () => {
    s3Mock
      .on(GetBucketLifecycleConfigurationCommand)
      .rejects(awsError('NoSuchLifecycleConfiguration', 404))
    const { ctx } = setupContext()
    await expect(readLifecycle(ctx, BUCKET)).resolves.toEqual({
      rules: [],
      transitionDefaultMinimumObjectSize: undefined
    })
    expect(sentCommands(s3Mock)).toEqual(['GetBucketLifecycleConfigurationCommand'])
  })

  it('names the permission a refused write needed', async () => {
    s3Mock.on(PutBucketLifecycleConfigurationCommand).rejects(denied())
    const { ctx, changes } = setupContext()
    await expect(ensureLifecycleRules(ctx, BUCKET, { rules: [] }, days)).rejects.toThrow(
      'Failed setting the lifecycle rules of bucket "model-bucket" (s3:PutLifecycleConfiguration): AWS said AccessDenied'
    )
    expect(changes).toEqual([])
  })
})
