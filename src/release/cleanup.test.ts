import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  type GetObjectCommandOutput
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { PREVIEW_TAG } from '../common/constants.js'
import {
  executeCleanup,
  findAliasesOf,
  planCleanup,
  previewTagging,
  type CleanupPlan
} from './cleanup.js'
import { AwsError, DeployError } from '../common/errors.js'
import { MAX_KEYS_PER_DELETE } from '../aws/stored-objects.js'
import { serializeManifest } from '../publish/manifest.js'
import type { Manifest } from '../common/types.js'
import { silentLogger } from '../../__fixtures__/logger.js'

const s3Mock = mockClient(S3Client)
const s3 = new S3Client({ region: 'us-east-1' })
const BUCKET = 'models'

const awsError = (name: string, status: number, message = name) =>
  Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } })

/** A manifest as this action writes it, naming `versionPrefix`, with `files` entries. */
function manifestText(versionPrefix: string, files = 1): string {
  const manifest: Manifest = {
    schemaVersion: 1,
    versionPrefix,
    bucket: BUCKET,
    createdAt: '2025-01-01T00:00:00.000Z',
    git: { sha: 'abc' },
    distribution: null,
    files: Array.from({ length: files }, (_, i) => ({
      path: `model-${i}.onnx`,
      key: `${versionPrefix}/model-${i}.onnx`,
      url: `https://cdn.example.com/${versionPrefix}/model-${i}.onnx`,
      size: 10,
      sha256: 'a'.repeat(64),
      contentType: 'application/octet-stream',
      metadata: {}
    }))
  }
  return serializeManifest(manifest)
}

/** What S3 answers a ranged GET of the first 4 KiB of `text`. */
function rangedGet(text: string): GetObjectCommandOutput {
  const bytes = Buffer.from(text)
  const head = bytes.subarray(0, 4096).toString('utf8')
  return {
    $metadata: {},
    ContentRange: `bytes 0-${Math.min(bytes.length, 4096) - 1}/${bytes.length}`,
    Body: { transformToString: async () => head } as unknown as GetObjectCommandOutput['Body']
  }
}

/** Sibling prefixes under the root, one page. */
function siblings(...prefixes: string[]): void {
  s3Mock
    .on(ListObjectsV2Command, { Delimiter: '/' })
    .resolves({ CommonPrefixes: prefixes.map((p) => ({ Prefix: `${p}/` })), IsTruncated: false })
}

function storeManifest(prefix: string, versionPrefix: string): void {
  s3Mock
    .on(GetObjectCommand, { Key: `${prefix}/manifest.json` })
    .resolves(rangedGet(manifestText(versionPrefix)))
}

const keys = (n: number, prefix = 'pr-7') =>
  Array.from({ length: n }, (_, i) => ({ key: `${prefix}/f${i}.bin`, size: i }))

function plan(objects = keys(3), uploads: CleanupPlan['uploads'] = []): CleanupPlan {
  return {
    bucket: BUCKET,
    versionPrefix: 'pr-7',
    objects,
    bytes: objects.reduce((sum, o) => sum + o.size, 0),
    uploads
  }
}

beforeEach(() => {
  s3Mock.reset()
  s3Mock.on(GetObjectCommand).rejects(awsError('NoSuchKey', 404))
  s3Mock.on(ListObjectsV2Command).resolves({ IsTruncated: false })
  s3Mock.on(ListMultipartUploadsCommand).resolves({ IsTruncated: false })
})

describe('previewTagging', () => {
  it('is the URL-encoded preview tag S3 decodes back to key and value', () => {
    expect(previewTagging()).toBe('model-cdn-deploy%3Apreview=true')
    expect([...new URLSearchParams(previewTagging())]).toEqual([[PREVIEW_TAG.key, 'true']])
  })
})

describe('findAliasesOf', () => {
  it('returns the siblings whose manifest names the version, reading only the first 4 KiB', async () => {
    siblings('latest', 'pr-7', 'pr-8', 'stable', 'empty')
    storeManifest('latest', 'pr-7')
    storeManifest('pr-8', 'pr-8')
    // A manifest of 1,000 files: its versionPrefix is in the head, the rest is never read.
    s3Mock
      .on(GetObjectCommand, { Key: 'stable/manifest.json' })
      .resolves(rangedGet(manifestText('pr-7', 1000)))
    s3Mock
      .on(GetObjectCommand, { Key: 'empty/manifest.json' })
      .rejects(awsError('InvalidRange', 416))

    const aliases = await findAliasesOf(s3, BUCKET, 'pr-7', { concurrency: 4 })

    expect(aliases).toEqual(['latest', 'stable'])
    const reads = s3Mock.commandCalls(GetObjectCommand).map((c) => c.args[0].input)
    // Never the version's own manifest; one ranged read per other sibling.
    expect(reads.map((r) => r.Key).sort()).toEqual([
      'empty/manifest.json',
      'latest/manifest.json',
      'pr-8/manifest.json',
      'stable/manifest.json'
    ])
    expect(reads.every((r) => r.Range === 'bytes=0-4095')).toBe(true)
    expect(s3Mock.commandCalls(ListObjectsV2Command)[0].args[0].input).toEqual({
      Bucket: BUCKET,
      Prefix: '',
      Delimiter: '/',
      ContinuationToken: undefined
    })
  })

  it('lists the siblings under the parent of a nested prefix, all pages', async () => {
    s3Mock.on(ListObjectsV2Command, { Delimiter: '/', ContinuationToken: undefined }).resolves({
      CommonPrefixes: [{ Prefix: 'resnet50/pr-1/' }, { Prefix: 'resnet50/pr-42/' }],
      IsTruncated: true,
      NextContinuationToken: 'page-2'
    })
    s3Mock.on(ListObjectsV2Command, { Delimiter: '/', ContinuationToken: 'page-2' }).resolves({
      CommonPrefixes: [{ Prefix: 'resnet50/latest/' }],
      IsTruncated: false
    })
    storeManifest('resnet50/latest', 'resnet50/pr-42')
    storeManifest('resnet50/pr-1', 'resnet50/pr-1')

    const aliases = await findAliasesOf(s3, BUCKET, 'resnet50/pr-42', { concurrency: 2 })

    expect(aliases).toEqual(['resnet50/latest'])
    const lists = s3Mock.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input)
    expect(lists.map((l) => [l.Prefix, l.ContinuationToken])).toEqual([
      ['resnet50/', undefined],
      ['resnet50/', 'page-2']
    ])
  })

  it('checks explicitly given aliases outside the parent too', async () => {
    storeManifest('latest', 'resnet50/pr-42')
    const aliases = await findAliasesOf(s3, BUCKET, 'resnet50/pr-42', {
      concurrency: 2,
      extraAliases: ['/latest/', 'resnet50/pr-42']
    })
    expect(aliases).toEqual(['latest'])
  })

  it('keeps at most `concurrency` manifest reads in flight', async () => {
    siblings(...Array.from({ length: 40 }, (_, i) => `pr-${i}`))
    let inFlight = 0
    let most = 0
    s3Mock.on(GetObjectCommand).callsFake(async () => {
      most = Math.max(most, ++inFlight)
      await new Promise((resolve) => setTimeout(resolve, 2))
      inFlight--
      throw awsError('NoSuchKey', 404)
    })
    await findAliasesOf(s3, BUCKET, 'pr-7', { concurrency: 3 })
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(39)
    expect(most).toBe(3)
  })

  it('fails rather than guess when a manifest cannot be read', async () => {
    siblings('latest')
    s3Mock
      .on(GetObjectCommand, { Key: 'latest/manifest.json' })
      .rejects(awsError('AccessDenied', 403, 'Access Denied'))
    await expect(findAliasesOf(s3, BUCKET, 'pr-7', { concurrency: 2 })).rejects.toThrow(
      /Failed reading the manifest s3:\/\/models\/latest\/manifest.json: AWS said AccessDenied/
    )
  })

  it('ignores objects named manifest.json that this action did not write', async () => {
    siblings('a', 'b', 'c')
    const small = (text: string): GetObjectCommandOutput => ({
      $metadata: {},
      Body: { transformToString: async () => text } as unknown as GetObjectCommandOutput['Body']
    })
    s3Mock.on(GetObjectCommand, { Key: 'a/manifest.json' }).resolves(small('not json'))
    s3Mock
      .on(GetObjectCommand, { Key: 'b/manifest.json' })
      .resolves(small('{"versionPrefix":"pr-7"}'))
    // Hand-written but complete, with files: still a manifest.
    s3Mock
      .on(GetObjectCommand, { Key: 'c/manifest.json' })
      .resolves(small('{"files":[],"versionPrefix":"pr-7"}'))
    expect(await findAliasesOf(s3, BUCKET, 'pr-7', { concurrency: 2 })).toEqual(['c'])
  })
})

describe('planCleanup', () => {
  const opts = () => ({ concurrency: 4, logger: silentLogger() })

  it('lists `pr-7/` with the slash, so `pr-70/` is never included', async () => {
    siblings('pr-7', 'pr-70')
    storeManifest('pr-7', 'pr-7')
    storeManifest('pr-70', 'pr-70')
    s3Mock.on(ListObjectsV2Command, { Prefix: 'pr-7/' }).resolves({
      // As a store that ignores Prefix would answer: pr-70/ must still be left out.
      Contents: [
        { Key: 'pr-7/a.bin', Size: 5 },
        { Key: 'pr-70/a.bin', Size: 7 },
        { Key: 'pr-7/manifest.json', Size: 100 }
      ],
      IsTruncated: false
    })

    const result = await planCleanup(s3, { bucket: BUCKET, versionPrefix: 'pr-7' }, opts())

    expect(result.objects).toEqual([
      { key: 'pr-7/a.bin', size: 5 },
      { key: 'pr-7/manifest.json', size: 100 }
    ])
    expect(result.bytes).toBe(105)
    const listed = s3Mock
      .commandCalls(ListObjectsV2Command)
      .map((c) => c.args[0].input)
      .filter((i) => !i.Delimiter)
    expect(listed.map((i) => i.Prefix)).toEqual(['pr-7/'])
    expect(s3Mock.commandCalls(ListMultipartUploadsCommand)[0].args[0].input.Prefix).toBe('pr-7/')
  })

  it('lists every page of objects and of multipart uploads', async () => {
    s3Mock.on(ListObjectsV2Command, { Prefix: 'pr-7/', ContinuationToken: undefined }).resolves({
      Contents: [{ Key: 'pr-7/a', Size: 1 }],
      IsTruncated: true,
      NextContinuationToken: 't2'
    })
    s3Mock
      .on(ListObjectsV2Command, { Prefix: 'pr-7/', ContinuationToken: 't2' })
      .resolves({ Contents: [{ Key: 'pr-7/b', Size: 2 }], IsTruncated: false })
    s3Mock.on(ListMultipartUploadsCommand, { KeyMarker: undefined }).resolves({
      Uploads: [{ Key: 'pr-7/big', UploadId: 'u1' }],
      IsTruncated: true,
      NextKeyMarker: 'pr-7/big',
      NextUploadIdMarker: 'u1'
    })
    s3Mock.on(ListMultipartUploadsCommand, { KeyMarker: 'pr-7/big' }).resolves({
      Uploads: [
        { Key: 'pr-7/big', UploadId: 'u2' },
        { Key: 'pr-70/big', UploadId: 'u3' }
      ],
      IsTruncated: false
    })

    const result = await planCleanup(s3, { bucket: BUCKET, versionPrefix: 'pr-7' }, opts())

    expect(result.objects.map((o) => o.key)).toEqual(['pr-7/a', 'pr-7/b'])
    expect(result.uploads).toEqual([
      { Bucket: BUCKET, Key: 'pr-7/big', UploadId: 'u1' },
      { Bucket: BUCKET, Key: 'pr-7/big', UploadId: 'u2' }
    ])
    const second = s3Mock.commandCalls(ListMultipartUploadsCommand)[1].args[0].input
    expect([second.KeyMarker, second.UploadIdMarker]).toEqual(['pr-7/big', 'u1'])
  })

  it('refuses a prefix an alias points to, before listing or deleting anything', async () => {
    siblings('latest', 'pr-7', 'v1')
    storeManifest('latest', 'pr-7')
    storeManifest('pr-7', 'pr-7')
    storeManifest('v1', 'v1')

    const err = await planCleanup(s3, { bucket: BUCKET, versionPrefix: 'pr-7' }, opts()).catch(
      (e: unknown) => e
    )

    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toBe(
      'Refusing to delete s3://models/pr-7/: the alias latest/ points to it (manifest.json names versionPrefix "pr-7"); nothing was deleted.'
    )
    expect((err as DeployError).hint).toMatch(/`mode: promote`.*latest/)
    const listed = s3Mock.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input)
    expect(listed.every((i) => i.Delimiter === '/')).toBe(true)
    expect(s3Mock.commandCalls(ListMultipartUploadsCommand)).toHaveLength(0)
  })

  it('refuses a prefix that is itself an alias', async () => {
    storeManifest('latest', 'v2')
    await expect(
      planCleanup(s3, { bucket: BUCKET, versionPrefix: 'latest' }, opts())
    ).rejects.toThrow('Refusing to delete s3://models/latest/: it is an alias of "v2"')
  })

  it('refuses a prefix holding other versions (resnet50 with resnet50/v1 inside)', async () => {
    s3Mock.on(ListObjectsV2Command, { Prefix: 'resnet50/' }).resolves({
      Contents: [
        { Key: 'resnet50/v1/model.onnx', Size: 1 },
        { Key: 'resnet50/v1/manifest.json', Size: 1 },
        { Key: 'resnet50/pr-3/config/manifest.json', Size: 1 }
      ],
      IsTruncated: false
    })
    storeManifest('resnet50/v1', 'resnet50/v1')
    // A model's own file named manifest.json is not a version.
    s3Mock.on(GetObjectCommand, { Key: 'resnet50/pr-3/config/manifest.json' }).resolves({
      $metadata: {},
      Body: {
        transformToString: async () => '{"labels":[]}'
      } as unknown as GetObjectCommandOutput['Body']
    })

    await expect(
      planCleanup(s3, { bucket: BUCKET, versionPrefix: 'resnet50' }, opts())
    ).rejects.toThrow(
      'Refusing to delete s3://models/resnet50/: it holds other published versions or aliases (resnet50/v1/)'
    )
  })

  it.each(['', '   ', '/', 'a//b', '..', 'models/.', '/pr-7'])(
    'refuses the prefix %j without sending anything',
    async (versionPrefix) => {
      await expect(planCleanup(s3, { bucket: BUCKET, versionPrefix }, opts())).rejects.toThrow(
        /Refusing to clean up the version prefix .*whole bucket/
      )
      expect(s3Mock.calls()).toHaveLength(0)
    }
  )

  it('warns and goes on when multipart uploads cannot be listed', async () => {
    s3Mock.on(ListMultipartUploadsCommand).rejects(awsError('AccessDenied', 403, 'Access Denied'))
    const logger = silentLogger()
    const result = await planCleanup(
      s3,
      { bucket: BUCKET, versionPrefix: 'pr-7' },
      { concurrency: 2, logger }
    )
    expect(result.uploads).toEqual([])
    expect(logger.warnings.join('\n')).toMatch(/s3:ListBucketMultipartUploads.*AccessDenied/s)
  })

  it('fails when the prefix cannot be listed', async () => {
    s3Mock
      .on(ListObjectsV2Command, { Prefix: 'pr-7/' })
      .rejects(awsError('AccessDenied', 403, 'Access Denied'))
    await expect(
      planCleanup(s3, { bucket: BUCKET, versionPrefix: 'pr-7' }, opts())
    ).rejects.toBeInstanceOf(AwsError)
  })
})

describe('executeCleanup', () => {
  const opts = (dryRun = false) => ({ logger: silentLogger(), dryRun })

  it('deletes 2,345 keys in batches of 1,000, quietly, and says what to invalidate', async () => {
    s3Mock.on(DeleteObjectsCommand).resolves({})
    const objects = keys(2345)

    const result = await executeCleanup(s3, plan(objects), opts())

    const batches = s3Mock.commandCalls(DeleteObjectsCommand).map((c) => c.args[0].input)
    expect(batches.map((b) => b.Delete?.Objects?.length)).toEqual([1000, 1000, 345])
    expect(batches.every((b) => b.Bucket === BUCKET && b.Delete?.Quiet === true)).toBe(true)
    expect(batches.flatMap((b) => b.Delete?.Objects?.map((o) => o.Key))).toEqual(
      objects.map((o) => o.key)
    )
    expect(MAX_KEYS_PER_DELETE).toBe(1000)
    expect(result).toEqual({
      dryRun: false,
      deleted: 2345,
      bytes: (2344 * 2345) / 2,
      abortedUploads: 0,
      invalidationPath: '/pr-7/*'
    })
  })

  it('encodes the invalidation path as CloudFront matches it', async () => {
    s3Mock.on(DeleteObjectsCommand).resolves({})
    const result = await executeCleanup(s3, { ...plan([]), versionPrefix: 'models/pr 7~x' }, opts())
    expect(result.invalidationPath).toBe('/models/pr%207%7Ex/*')
    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(0)
  })

  it('reports every key S3 refused, after trying every batch', async () => {
    s3Mock
      .on(DeleteObjectsCommand)
      .resolvesOnce({
        Errors: [
          { Key: 'pr-7/f1.bin', Code: 'AccessDenied', Message: 'Access Denied' },
          { Key: 'pr-7/f2.bin', Code: 'InternalError', Message: 'try again' }
        ]
      })
      .resolves({})

    const err = await executeCleanup(s3, plan(keys(1500)), opts()).catch((e: unknown) => e)

    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(2)
    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toBe(
      'S3 refused to delete 2 of 1500 object(s) under s3://models/pr-7/ (1498 deleted):\n' +
        '- pr-7/f1.bin: AccessDenied (Access Denied)\n' +
        '- pr-7/f2.bin: InternalError (try again)'
    )
    expect((err as DeployError).hint).toMatch(/s3:DeleteObject/)
  })

  it('hints at running again when no refusal is about permissions', async () => {
    s3Mock.on(DeleteObjectsCommand).resolves({ Errors: [{ Key: 'pr-7/f0.bin', Code: 'SlowDown' }] })
    await expect(executeCleanup(s3, plan(), opts())).rejects.toMatchObject({
      message: expect.stringContaining('pr-7/f0.bin: SlowDown'),
      hint: 'Run the clean-up again: it deletes what is left.'
    })
  })

  it('explains a DeleteObjects call that fails as a whole', async () => {
    s3Mock.on(DeleteObjectsCommand).rejects(awsError('AccessDenied', 403, 'Access Denied'))
    await expect(executeCleanup(s3, plan(), opts())).rejects.toThrow(
      /Failed deleting 3 object\(s\) under s3:\/\/models\/pr-7\/ \(0 deleted before\): AWS said AccessDenied/
    )
  })

  it('aborts the multipart uploads, then deletes the objects', async () => {
    const order: string[] = []
    s3Mock.on(AbortMultipartUploadCommand).callsFake(async () => void order.push('abort'))
    s3Mock.on(DeleteObjectsCommand).callsFake(async () => {
      order.push('delete')
      return {}
    })
    const uploads = [{ Bucket: BUCKET, Key: 'pr-7/big', UploadId: 'u1' }]

    const result = await executeCleanup(s3, plan(keys(2), uploads), opts())

    expect(order).toEqual(['abort', 'delete'])
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)[0].args[0].input).toEqual(uploads[0])
    expect(result.abortedUploads).toBe(1)
  })

  it('dry run: deletes and aborts nothing, and says what a real run would remove', async () => {
    const logger = silentLogger()
    const uploads = [{ Bucket: BUCKET, Key: 'pr-7/big', UploadId: 'u1' }]

    const result = await executeCleanup(s3, plan(keys(1200), uploads), { logger, dryRun: true })

    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0)
    expect(result).toMatchObject({ dryRun: true, deleted: 1200, abortedUploads: 1 })
    expect(logger.lines.join('\n')).toMatch(
      /Dry run: would delete 1200 object\(s\).*s3:\/\/models\/pr-7\/ and abort 1 multipart upload/
    )
  })

  it('stops between batches when cancelled and says how far it got', async () => {
    const controller = new AbortController()
    s3Mock.on(DeleteObjectsCommand).callsFake(async () => {
      controller.abort(new DeployError('cancelled'))
      return {}
    })
    await expect(
      executeCleanup(s3, plan(keys(2500)), { ...opts(), signal: controller.signal })
    ).rejects.toThrow('Clean-up of s3://models/pr-7/ cancelled: 1000 of 2500 object(s) deleted.')
    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(1)
  })

  it('never deletes a key outside the prefix, whoever built the plan', async () => {
    const bad = plan([{ key: 'pr-70/a.bin', size: 1 }])
    await expect(executeCleanup(s3, bad, opts())).rejects.toThrow(
      'Refusing to delete s3://models/pr-70/a.bin: it is outside s3://models/pr-7/.'
    )
    await expect(executeCleanup(s3, { ...bad, versionPrefix: '' }, opts())).rejects.toThrow(
      /Refusing to clean up the version prefix ""/
    )
    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(0)
  })
})
