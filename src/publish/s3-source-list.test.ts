import {
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type HeadBucketCommandInput,
  type HeadObjectCommandInput,
  type ListObjectsV2CommandInput
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { DeployError, InputError } from '../common/errors.js'
import { parseS3Patterns } from './s3-source.js'
import { commonFolder, discoverS3Sources, type S3DiscoveryDeps } from './s3-source-list.js'
import { s3ClientsByRegion, s3Error } from '../../__fixtures__/aws-mocks.js'
import { rejectionOf } from '../../__fixtures__/rejection.js'

const s3Mock = mockClient(S3Client)

const s3In = s3ClientsByRegion()
const deps: S3DiscoveryDeps = { s3In, defaultRegion: 'us-east-1' }

interface FakeObject {
  key: string
  size: number
  storageClass?: string
  /** HEAD's x-amz-restore. */
  restore?: string
}
/** The fake S3: each bucket's region and objects, sorted by key as S3 lists them. */
let buckets: Map<string, { region: string; objects: FakeObject[] }>

function bucket(name: string, region: string, objects: (string | FakeObject)[]): void {
  const list = objects.map((o) => (typeof o === 'string' ? { key: o, size: o.length } : o))
  list.sort((a, b) => (a.key < b.key ? -1 : 1))
  buckets.set(name, { region, objects: list })
}

const eTagOf = (key: string) => `"etag-${key}"`

/** The bucket asked for, if the client is in its region (else S3's redirect, as AWS answers). */
async function bucketFor(name: string | undefined, client: () => S3Client) {
  const found = buckets.get(name ?? '')
  if (!found) throw s3Error('NoSuchBucket', 404)
  if ((await client().config.region()) !== found.region) {
    throw s3Error('PermanentRedirect', 301, { headers: { 'x-amz-bucket-region': found.region } })
  }
  return found
}

beforeEach(() => {
  s3Mock.reset()
  buckets = new Map()
  s3Mock.on(HeadBucketCommand).callsFake(async (input: HeadBucketCommandInput, client) => {
    const found = await bucketFor(input.Bucket, client)
    return { BucketRegion: found.region }
  })
  s3Mock.on(ListObjectsV2Command).callsFake(async (input: ListObjectsV2CommandInput, client) => {
    const found = await bucketFor(input.Bucket, client)
    const matching = found.objects.filter((o) => o.key.startsWith(input.Prefix ?? ''))
    const start = Number(input.ContinuationToken ?? 0)
    const end = Math.min(start + 1000, matching.length)
    return {
      Contents: matching.slice(start, end).map((o) => ({
        Key: o.key,
        Size: o.size,
        ETag: eTagOf(o.key),
        StorageClass: o.storageClass ?? 'STANDARD'
      })),
      IsTruncated: end < matching.length,
      NextContinuationToken: end < matching.length ? String(end) : undefined
    }
  })
  s3Mock.on(HeadObjectCommand).callsFake(async (input: HeadObjectCommandInput, client) => {
    const found = await bucketFor(input.Bucket, client)
    const object = found.objects.find((o) => o.key === input.Key)
    if (!object) throw s3Error('NotFound', 404)
    if (input.IfMatch !== eTagOf(object.key)) throw s3Error('PreconditionFailed', 412)
    return {
      ContentLength: object.size,
      StorageClass: object.storageClass,
      Restore: object.restore
    }
  })
})

const discover = (lines: string[], root?: string) =>
  discoverS3Sources(parseS3Patterns(lines, root), deps)

const listedPrefixes = () =>
  s3Mock
    .commandCalls(ListObjectsV2Command)
    .map((c) => `${c.args[0].input.Bucket}/${c.args[0].input.Prefix}`)

describe('discoverS3Sources', () => {
  it("lists the pattern's prefix in the bucket's region and keys objects relative to it, sorted", async () => {
    bucket('train-out', 'eu-west-1', [
      'run-7/ckpt/model-00002.safetensors',
      'run-7/ckpt/',
      'run-7/ckpt/model-00001.safetensors',
      'run-7/ckpt/sub/',
      'run-7/ckpt/sub/Z.json',
      'run-7/ckpt/sub/a.json',
      'run-7/logs/train.log'
    ])
    const { root, objects } = await discover(['s3://train-out/run-7/ckpt/**'])
    expect(root).toBe('s3://train-out/run-7/ckpt/')
    expect(objects.map((o) => o.relativePath)).toEqual([
      'model-00001.safetensors',
      'model-00002.safetensors',
      'sub/Z.json',
      'sub/a.json'
    ])
    expect(objects[0]).toEqual({
      absolutePath: 's3://train-out/run-7/ckpt/model-00001.safetensors',
      relativePath: 'model-00001.safetensors',
      size: 'run-7/ckpt/model-00001.safetensors'.length,
      bucket: 'train-out',
      key: 'run-7/ckpt/model-00001.safetensors',
      eTag: eTagOf('run-7/ckpt/model-00001.safetensors'),
      region: 'eu-west-1'
    })
    expect(listedPrefixes()).toEqual(['train-out/run-7/ckpt/'])
    const listedIn = await s3Mock.commandCalls(ListObjectsV2Command)[0].thisValue.config.region()
    expect(listedIn).toBe('eu-west-1')
  })

  it('keys an object named alone by its name', async () => {
    bucket('train-out', 'us-east-1', ['ckpt/model.safetensors', 'ckpt/model.safetensors.bak'])
    const { root, objects } = await discover(['s3://train-out/ckpt/model.safetensors'])
    expect(root).toBe('s3://train-out/ckpt/')
    expect(objects.map((o) => o.relativePath)).toEqual(['model.safetensors'])
  })

  it('lists overlapping patterns once, returns an object they both match once, and drops exclusions', async () => {
    bucket('train-out', 'us-east-1', ['ckpt/a.bin', 'ckpt/b.bin', 'ckpt/tmp/c.bin', 'ckpt/d.txt'])
    const { objects } = await discover([
      's3://train-out/ckpt/**',
      's3://train-out/ckpt/*.bin',
      '!s3://train-out/ckpt/tmp'
    ])
    expect(objects.map((o) => o.relativePath)).toEqual(['a.bin', 'b.bin', 'd.txt'])
    expect(listedPrefixes()).toEqual(['train-out/ckpt/'])
  })

  it('keys several patterns of a bucket relative to their common folder, or to `root`', async () => {
    bucket('train-out', 'us-east-1', [
      'run-7/ckpt/model.bin',
      'run-7/tokenizer/vocab.json',
      'run-70/x'
    ])
    const lines = ['s3://train-out/run-7/ckpt/*.bin', 's3://train-out/run-7/tokenizer/*']
    const common = await discover(lines)
    expect(common.root).toBe('s3://train-out/run-7/')
    expect(common.objects.map((o) => o.relativePath)).toEqual([
      'ckpt/model.bin',
      'tokenizer/vocab.json'
    ])
    const rooted = await discover(lines, 's3://train-out/')
    expect(rooted.root).toBe('s3://train-out/')
    expect(rooted.objects.map((o) => o.relativePath)).toEqual([
      'run-7/ckpt/model.bin',
      'run-7/tokenizer/vocab.json'
    ])
  })

  it('takes several buckets in several regions, each region looked up once', async () => {
    bucket('weights-eu', 'eu-central-1', ['ckpt/model.bin', 'ckpt/extra.bin'])
    bucket('configs-us', 'us-west-2', ['release/config.json'])
    const { root, objects } = await discover([
      's3://weights-eu/ckpt/model.bin',
      's3://weights-eu/ckpt/extra.bin',
      's3://configs-us/release/*.json'
    ])
    expect(root).toBe('s3://weights-eu/ckpt/, s3://configs-us/release/')
    expect(objects.map((o) => [o.relativePath, o.bucket, o.region])).toEqual([
      ['config.json', 'configs-us', 'us-west-2'],
      ['extra.bin', 'weights-eu', 'eu-central-1'],
      ['model.bin', 'weights-eu', 'eu-central-1']
    ])
    const heads = s3Mock.commandCalls(HeadBucketCommand).map((c) => c.args[0].input.Bucket)
    expect(heads).toEqual(['weights-eu', 'configs-us'])
  })

  it('refuses two objects of different buckets published under one path', async () => {
    bucket('run-a', 'us-east-1', ['ckpt/model.bin', 'ckpt/a-only.bin'])
    bucket('run-b', 'us-east-1', ['ckpt/model.bin'])
    const err = await rejectionOf(
      discover(['s3://run-a/ckpt/**', 's3://run-b/ckpt/**']),
      InputError
    )
    expect(err.message).toContain(
      'model.bin: s3://run-a/ckpt/model.bin and s3://run-b/ckpt/model.bin'
    )
    expect(err.message).not.toContain('a-only')
  })

  it('refuses keys with an empty segment, which no URL names', async () => {
    bucket('train-out', 'us-east-1', ['ckpt//model.bin', 'ckpt/fine.bin'])
    const err = await rejectionOf(discover(['s3://train-out/ckpt/**']), InputError)
    expect(err.message).toContain('s3://train-out/ckpt//model.bin')
    expect(err.message).not.toContain('fine.bin')
  })

  it('names the patterns and the keys seen under their prefixes when nothing matches', async () => {
    bucket('train-out', 'us-east-1', ['ckpt/model.safetensors', 'ckpt/config.json', 'other/x'])
    const err = await rejectionOf(
      discover(['s3://train-out/ckpt/*.bin', 's3://train-out/ckpt', '!s3://train-out/ckpt/tmp']),
      InputError
    )
    expect(err.message).toContain('s3://train-out/ckpt/*.bin (2 key(s) under s3://train-out/ckpt/)')
    expect(err.message).toContain('s3://train-out/ckpt (3 key(s) under s3://train-out/)')
    expect(err.message).toContain('!s3://train-out/ckpt/tmp (exclusion)')
    expect(err.hint).toMatch(/end it with `\/\*\*`/)
  })

  it('refuses Glacier and Deep Archive objects not restored, after one HEAD each, and lets restored ones through', async () => {
    bucket('cold', 'us-east-1', [
      { key: 'ckpt/a.bin', size: 10, storageClass: 'GLACIER' },
      {
        key: 'ckpt/b.bin',
        size: 10,
        storageClass: 'DEEP_ARCHIVE',
        restore: 'ongoing-request="true"'
      },
      {
        key: 'ckpt/c.bin',
        size: 10,
        storageClass: 'GLACIER',
        restore: 'ongoing-request="false", expiry-date="Fri, 21 Dec 2035 00:00:00 GMT"'
      },
      { key: 'ckpt/d.bin', size: 10, storageClass: 'GLACIER_IR' },
      { key: 'ckpt/e.bin', size: 10 }
    ])
    const err = await rejectionOf(discover(['s3://cold/ckpt/**']), InputError)
    expect(err.message).toContain('s3://cold/ckpt/a.bin (GLACIER, not restored)')
    expect(err.message).toContain('s3://cold/ckpt/b.bin (DEEP_ARCHIVE, restore in progress)')
    expect(err.message).not.toMatch(/c\.bin|d\.bin|e\.bin/)
    expect(err.hint).toContain('aws s3api restore-object')
    const headed = s3Mock.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.Key)
    expect(headed.sort()).toEqual(['ckpt/a.bin', 'ckpt/b.bin', 'ckpt/c.bin'])

    buckets.get('cold')!.objects = buckets.get('cold')!.objects.filter((o) => o.key >= 'ckpt/c')
    const { objects } = await discover(['s3://cold/ckpt/**'])
    expect(objects.map((o) => o.relativePath)).toEqual(['c.bin', 'd.bin', 'e.bin'])
  })

  it('names up to 20 archived objects and counts the rest', async () => {
    const cold = Array.from({ length: 25 }, (_, i) => ({
      key: `ckpt/${String(i).padStart(2, '0')}.bin`,
      size: 1,
      storageClass: 'DEEP_ARCHIVE'
    }))
    bucket('cold', 'us-east-1', cold)
    const err = await rejectionOf(discover(['s3://cold/ckpt/**']), InputError)
    expect(err.message).toMatch(/^25 source object\(s\) are archived/)
    expect(err.message).toContain('s3://cold/ckpt/19.bin')
    expect(err.message).not.toContain('s3://cold/ckpt/20.bin')
    expect(err.message).toContain('… and 5 more')
  })

  it('reports an object changed between listing and HEAD', async () => {
    bucket('cold', 'us-east-1', [{ key: 'ckpt/a.bin', size: 1, storageClass: 'GLACIER' }])
    s3Mock.on(HeadObjectCommand).rejects(s3Error('PreconditionFailed', 412))
    const err = await rejectionOf(discover(['s3://cold/ckpt/**']), DeployError)
    expect(err.message).toBe('The source object s3://cold/ckpt/a.bin changed since it was listed.')
  })

  it('names s3:ListBucket when listing is denied', async () => {
    bucket('locked', 'us-east-1', ['ckpt/a.bin'])
    s3Mock.on(ListObjectsV2Command).rejects(s3Error('AccessDenied', 403))
    const err = await rejectionOf(discover(['s3://locked/ckpt/**']), InputError)
    expect(err.message).toBe('Listing the source s3://locked/ckpt/ was denied.')
    expect(err.hint).toMatch(/s3:ListBucket on arn:aws:s3:::locked/)
  })

  it('discovers 10,000 objects of 1 TB from a paginated listing', async () => {
    const size = 100_000_000
    bucket(
      'big',
      'us-east-1',
      Array.from({ length: 10_000 }, (_, i) => ({
        key: `ckpt/shard-${String(i).padStart(5, '0')}.bin`,
        size
      }))
    )
    const { objects } = await discover(['s3://big/ckpt/**', '!s3://big/ckpt/**/*.tmp'])
    expect(objects).toHaveLength(10_000)
    expect(objects.reduce((sum, o) => sum + o.size, 0)).toBe(1e12)
    expect(objects[9_999].relativePath).toBe('shard-09999.bin')
    expect(s3Mock.commandCalls(ListObjectsV2Command)).toHaveLength(10)
  })
})

describe('commonFolder', () => {
  it('is the common run of whole segments', () => {
    expect(commonFolder(['a/b/', 'a/bc/'])).toBe('a/')
    expect(commonFolder(['a/b/c/', 'a/b/'])).toBe('a/b/')
    expect(commonFolder(['x/', 'y/'])).toBe('')
    expect(commonFolder(['', 'a/'])).toBe('')
    expect(commonFolder(['a/b/'])).toBe('a/b/')
  })
})
