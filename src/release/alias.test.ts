import { createHash } from 'node:crypto'
import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type CopyObjectCommandInput,
  type DeleteObjectsCommandInput,
  type GetObjectCommandOutput,
  type ListObjectsV2CommandInput
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import {
  aliasInvalidationPaths,
  applyAlias,
  loadVersion,
  planAlias,
  promote,
  type AliasInputs
} from './alias.js'
import { DeployError, InputError } from '../common/errors.js'
import { buildManifest, serializeManifest } from '../publish/manifest.js'
import { MANIFEST_CACHE_CONTROL } from '../publish/manifest-store.js'
import type { Manifest, PublishedFile } from '../common/types.js'
import { silentLogger } from '../../__fixtures__/logger.js'

const BUCKET = 'models'
const VERSION_CACHE_CONTROL = 'public, max-age=31536000, immutable'
const ALIAS_CACHE_CONTROL = 'public, max-age=60'
const USER_METADATA = { framework: 'onnx' }
const inputs: AliasInputs = {
  bucket: BUCKET,
  alias: 'latest',
  aliasCacheControl: ALIAS_CACHE_CONTROL
}

const s3 = new S3Client({ region: 'us-east-1' })
const s3Mock = mockClient(s3)

const sha = (text: string) => createHash('sha256').update(text).digest('hex')
const md5 = (text: string) => createHash('md5').update(text).digest('hex')

interface Stored {
  body: string
  contentType: string
  cacheControl: string
  metadata: Record<string, string>
}

/** An in-memory bucket behind the mock: list (pages of 1,000), head, get, copy, delete. */
let bucket: Map<string, Stored>

function installFakeBucket(): void {
  s3Mock.on(ListObjectsV2Command).callsFake(async (input: ListObjectsV2CommandInput) => {
    const keys = [...bucket.keys()].filter((k) => k.startsWith(input.Prefix ?? '')).sort()
    const start = Number(input.ContinuationToken ?? 0)
    const page = keys.slice(start, start + 1000)
    const more = start + 1000 < keys.length
    return {
      Contents: page.map((Key) => ({
        Key,
        Size: Buffer.byteLength((bucket.get(Key) as Stored).body),
        ETag: `"${md5((bucket.get(Key) as Stored).body)}"`
      })),
      IsTruncated: more,
      NextContinuationToken: more ? String(start + 1000) : undefined
    }
  })
  s3Mock.on(HeadObjectCommand).callsFake(async ({ Key }: { Key: string }) => {
    const obj = bucket.get(Key)
    if (!obj) {
      throw Object.assign(new Error('NotFound'), {
        name: 'NotFound',
        $metadata: { httpStatusCode: 404 }
      })
    }
    return {
      ContentLength: Buffer.byteLength(obj.body),
      ETag: `"${md5(obj.body)}"`,
      ContentType: obj.contentType,
      CacheControl: obj.cacheControl,
      Metadata: obj.metadata
    }
  })
  s3Mock.on(GetObjectCommand).callsFake(async ({ Key }: { Key: string }) => {
    const obj = bucket.get(Key)
    if (!obj) throw Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey' })
    return {
      Body: { transformToString: async () => obj.body } as unknown as GetObjectCommandOutput['Body']
    }
  })
  s3Mock.on(CopyObjectCommand).callsFake(async (input: CopyObjectCommandInput) => {
    const sourceKey = (input.CopySource as string)
      .slice(BUCKET.length + 1)
      .split('/')
      .map(decodeURIComponent)
      .join('/')
    const source = bucket.get(sourceKey)
    if (!source) throw Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey' })
    if (input.CopySourceIfMatch && input.CopySourceIfMatch !== `"${md5(source.body)}"`) {
      throw Object.assign(new Error('PreconditionFailed'), { name: 'PreconditionFailed' })
    }
    bucket.set(input.Key as string, {
      body: source.body,
      contentType: input.ContentType as string,
      cacheControl: input.CacheControl as string,
      metadata: input.Metadata as Record<string, string>
    })
    return { CopyObjectResult: { ETag: `"${md5(source.body)}"` } }
  })
  s3Mock.on(DeleteObjectsCommand).callsFake(async (input: DeleteObjectsCommandInput) => {
    for (const { Key } of input.Delete?.Objects ?? []) bucket.delete(Key as string)
    return {}
  })
}

/** Stores a version as a deploy does: files with sha256 metadata, then its manifest. */
function publish(version: string, files: Record<string, string>): Manifest {
  const published: PublishedFile[] = Object.entries(files).map(([path, body]) => ({
    absolutePath: `/w/${path}`,
    relativePath: path,
    size: Buffer.byteLength(body),
    key: `${version}/${path}`,
    sha256: sha(body),
    contentType: 'application/octet-stream',
    action: 'upload',
    existed: false,
    url: `https://cdn.example/${version}/${path}`
  }))
  for (const f of published) {
    bucket.set(f.key, {
      body: files[f.relativePath],
      contentType: f.contentType,
      cacheControl: VERSION_CACHE_CONTROL,
      metadata: { ...USER_METADATA, sha256: f.sha256! }
    })
  }
  const manifest = buildManifest({
    versionPrefix: version,
    bucket: BUCKET,
    files: published,
    metadata: USER_METADATA,
    distribution: null,
    git: { sha: 'abc' },
    createdAt: new Date('2025-01-01T00:00:00Z')
  })
  const body = serializeManifest(manifest)
  bucket.set(`${version}/manifest.json`, {
    body,
    contentType: 'application/json',
    cacheControl: MANIFEST_CACHE_CONTROL,
    metadata: { sha256: sha(body) }
  })
  return manifest
}

/** Promotes a version to `latest`, two copies at a time. */
const promoteTo = (versionPrefix: string) =>
  promote(s3, { ...inputs, versionPrefix }, { concurrency: 2, logger: silentLogger() })

const V1 = { 'a.bin': 'aaaa', 'b.bin': 'b1', 'old only.bin': 'gone soon' }
const V2 = { 'a.bin': 'aaaa', 'b.bin': 'b2', 'dir/new é.bin': 'new' }

/** The copies sent, as `source → dest`, in order. */
const copies = () =>
  s3Mock
    .commandCalls(CopyObjectCommand)
    .map((c) => `${c.args[0].input.CopySource} → ${c.args[0].input.Key}`)
const latestKeys = () => [...bucket.keys()].filter((k) => k.startsWith('latest/')).sort()

beforeEach(() => {
  s3Mock.reset()
  bucket = new Map()
  installFakeBucket()
})

describe('loadVersion', () => {
  it('returns the manifest and the listed objects of a complete version', async () => {
    const manifest = publish('v2', V2)
    const version = await loadVersion(s3, BUCKET, 'v2')
    expect(version.versionPrefix).toBe('v2')
    expect(version.manifest).toEqual(manifest)
    expect(version.objects.get('v2/b.bin')).toEqual({ size: 2, eTag: `"${md5('b2')}"` })
    expect(s3Mock.commandCalls(ListObjectsV2Command)[0].args[0].input).toMatchObject({
      Bucket: BUCKET,
      Prefix: 'v2/'
    })
  })

  it('lists one request per 1,000 keys', async () => {
    const files = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`s${i}.bin`, `${i}`]))
    publish('v2', files)
    const version = await loadVersion(s3, BUCKET, 'v2')
    expect(version.objects.size).toBe(1501)
    expect(s3Mock.commandCalls(ListObjectsV2Command)).toHaveLength(2)
    expect(s3Mock.commandCalls(ListObjectsV2Command)[1].args[0].input.ContinuationToken).toBe(
      '1000'
    )
  })

  it('says the manifest is missing, without reading it', async () => {
    publish('v2', V2)
    bucket.delete('v2/manifest.json')
    await expect(loadVersion(s3, BUCKET, 'v2')).rejects.toThrow(
      'v2/manifest.json not found in s3://models: an alias can only point to a version published with `manifest: true` (3 other object(s) are under v2/).'
    )
    await expect(loadVersion(s3, BUCKET, 'v9')).rejects.toThrow(
      /^v9\/manifest\.json not found in s3:\/\/models: .*`manifest: true`\.$/
    )
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(0)
  })

  it('names the files that are missing or have another size', async () => {
    const files = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`shard-0${i}.bin`, 'x']))
    publish('v2', files)
    bucket.delete('v2/shard-03.bin')
    bucket.set('v2/shard-07.bin', { ...(bucket.get('v2/shard-07.bin') as Stored), body: 'xy' })
    const err = await loadVersion(s3, BUCKET, 'v2').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toBe(
      'v2 is missing 2 of 10 file(s) its manifest lists: shard-03.bin (not found), ' +
        'shard-07.bin (2 bytes stored, the manifest says 1)'
    )
  })

  it('refuses an alias given as the version', async () => {
    publish('v1', V1)
    await promoteTo('v1')
    await expect(loadVersion(s3, BUCKET, 'latest')).rejects.toThrow(
      's3://models/latest/manifest.json describes version v1, not latest: latest is an alias, not a version.'
    )
  })
})

/** v1 and v2 published and `latest` already at v1, as an earlier promote left it. */
async function latestAtV1(): Promise<void> {
  publish('v1', V1)
  publish('v2', V2)
  await promoteTo('v1')
  // Only what the test's own call sends counts.
  s3Mock.resetHistory()
}

describe('planAlias', () => {
  it('copies everything into an empty alias and invalidates nothing', async () => {
    publish('v1', V1)
    const plan = await planAlias(s3, inputs, await loadVersion(s3, BUCKET, 'v1'))
    expect(plan.previousVersion).toBeUndefined()
    expect(plan.files.map((f) => [f.destKey, f.action, f.existed])).toEqual([
      ['latest/a.bin', 'copy', false],
      ['latest/b.bin', 'copy', false],
      ['latest/old only.bin', 'copy', false]
    ])
    expect(plan.files[0]).toMatchObject({
      sourceKey: 'v1/a.bin',
      size: 4,
      contentType: 'application/octet-stream',
      cacheControl: ALIAS_CACHE_CONTROL,
      metadata: { framework: 'onnx', sha256: sha('aaaa') },
      sourceETag: `"${md5('aaaa')}"`
    })
    const manifestBody = (bucket.get('v1/manifest.json') as Stored).body
    expect(plan.manifest).toMatchObject({
      sourceKey: 'v1/manifest.json',
      destKey: 'latest/manifest.json',
      action: 'copy',
      existed: false,
      size: Buffer.byteLength(manifestBody),
      contentType: 'application/json',
      cacheControl: ALIAS_CACHE_CONTROL,
      metadata: { sha256: sha(manifestBody) }
    })
    expect(plan.stale).toEqual([])
    expect(plan.invalidationPaths).toEqual([])
  })

  it('moving v1 → v2: keeps identical files, copies changed ones, removes the rest, one wildcard', async () => {
    await latestAtV1()

    const plan = await planAlias(s3, inputs, await loadVersion(s3, BUCKET, 'v2'))
    expect(plan.previousVersion).toBe('v1')
    expect(plan.files.map((f) => [f.destKey, f.action, f.existed])).toEqual([
      ['latest/a.bin', 'unchanged', true],
      ['latest/b.bin', 'copy', true],
      ['latest/dir/new é.bin', 'copy', false]
    ])
    expect(plan.manifest).toMatchObject({ action: 'copy', existed: true })
    expect(plan.stale).toEqual(['latest/old only.bin'])
    expect(plan.invalidationPaths).toEqual(['/latest/*'])
    // HEAD only where the sizes match: a.bin, b.bin (2 bytes both), the two manifests.
    expect(s3Mock.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.Key)).toEqual(
      expect.arrayContaining(['latest/a.bin', 'latest/b.bin', 'v2/manifest.json'])
    )
    expect(s3Mock.commandCalls(CopyObjectCommand)).toHaveLength(0)
  })

  it('does not HEAD an alias key whose size already differs', async () => {
    publish('v1', { 'a.bin': 'short' })
    publish('v2', { 'a.bin': 'much longer' })
    await promoteTo('v1')
    s3Mock.resetHistory()
    const plan = await planAlias(s3, inputs, await loadVersion(s3, BUCKET, 'v2'))
    expect(plan.files[0]).toMatchObject({ action: 'copy', existed: true })
    const heads = s3Mock.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.Key)
    expect(heads).not.toContain('latest/a.bin')
  })

  it('plans nothing when the alias already is the version', async () => {
    publish('v2', V2)
    await promoteTo('v2')
    const plan = await planAlias(s3, inputs, await loadVersion(s3, BUCKET, 'v2'))
    expect(plan.files.every((f) => f.action === 'unchanged')).toBe(true)
    expect(plan.manifest.action).toBe('unchanged')
    expect(plan.stale).toEqual([])
    expect(plan.invalidationPaths).toEqual([])
  })

  it('invalidates one exact path when one alias object changed', async () => {
    publish('v2', { 'a b.bin': 'x', 'c.bin': 'y' })
    await promoteTo('v2')
    const tampered = bucket.get('latest/a b.bin') as Stored
    bucket.set('latest/a b.bin', { ...tampered, cacheControl: 'no-store' })
    const plan = await planAlias(s3, inputs, await loadVersion(s3, BUCKET, 'v2'))
    expect(plan.files.map((f) => f.action)).toEqual(['copy', 'unchanged'])
    expect(plan.invalidationPaths).toEqual(['/latest/a%20b.bin'])
  })

  it('copies an alias object that carries other metadata or no sha256', async () => {
    publish('v2', { 'a.bin': 'x', 'b.bin': 'y' })
    await promoteTo('v2')
    const a = bucket.get('latest/a.bin') as Stored
    bucket.set('latest/a.bin', { ...a, metadata: { ...a.metadata, extra: '1' } })
    const b = bucket.get('latest/b.bin') as Stored
    bucket.set('latest/b.bin', { ...b, metadata: { framework: 'onnx' } })
    const plan = await planAlias(s3, inputs, await loadVersion(s3, BUCKET, 'v2'))
    expect(plan.files.map((f) => f.action)).toEqual(['copy', 'copy'])
  })

  it('plans a manifest not yet stored (a dry run before the upload) from the manifest given', async () => {
    const manifest = publish('v3', { 'a.bin': 'x' })
    bucket.delete('v3/manifest.json')
    const plan = await planAlias(s3, inputs, { versionPrefix: 'v3', manifest })
    const body = serializeManifest(manifest)
    expect(plan.manifest).toMatchObject({
      size: Buffer.byteLength(body),
      metadata: { sha256: sha(body) },
      action: 'copy'
    })
    expect(plan.manifest.sourceETag).toBeUndefined()
    expect(plan.files[0].sourceETag).toBeUndefined()
  })

  it.each([
    ['v2', 'v2'],
    ['v2/latest', 'v2'],
    ['models', 'models/v2']
  ])('refuses alias %s overlapping version %s', async (alias, version) => {
    const manifest = publish(version, { 'a.bin': 'x' })
    await expect(
      planAlias(s3, { ...inputs, alias }, { versionPrefix: version, manifest })
    ).rejects.toThrow(InputError)
    expect(s3Mock.calls()).toHaveLength(0)
  })

  it('refuses an alias name a version is published under', async () => {
    publish('latest', { 'a.bin': 'x' })
    const manifest = publish('v2', { 'a.bin': 'x' })
    await expect(planAlias(s3, inputs, { versionPrefix: 'v2', manifest })).rejects.toThrow(
      'latest is a published version (s3://models/latest/manifest.json describes it), not an alias.'
    )
  })

  it('refuses to delete from a prefix with no alias manifest, but fills one with nothing to delete', async () => {
    const manifest = publish('v2', { 'a.bin': 'x' })
    bucket.set('latest/a.bin', { ...(bucket.get('v2/a.bin') as Stored) })
    // A copy left by an interrupted first move: nothing would be deleted, so go on.
    await expect(planAlias(s3, inputs, { versionPrefix: 'v2', manifest })).resolves.toMatchObject({
      stale: []
    })
    bucket.set('latest/unrelated.txt', { ...(bucket.get('v2/a.bin') as Stored) })
    const err = await planAlias(s3, inputs, { versionPrefix: 'v2', manifest }).catch(
      (e: unknown) => e
    )
    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toBe(
      's3://models/latest/ holds 1 object(s) v2 does not have, but no latest/manifest.json, so it ' +
        'is not an alias this action manages; nothing was changed: latest/unrelated.txt'
    )
  })

  it('refuses alias keys longer than S3 allows', async () => {
    const manifest = publish('v2', { [`${'d/'.repeat(400)}a.bin`]: 'x' })
    await expect(
      planAlias(s3, { ...inputs, alias: 'a'.repeat(300) }, { versionPrefix: 'v2', manifest })
    ).rejects.toThrow(/1 key\(s\) would be longer than S3's 1024 bytes/)
  })
})

describe('applyAlias', () => {
  it('copies the files, then the manifest, then removes stale keys', async () => {
    publish('v1', V1)
    publish('v2', V2)
    const logger = silentLogger()
    const first = await promote(s3, { ...inputs, versionPrefix: 'v1' }, { concurrency: 2, logger })
    expect(first).toMatchObject({ previousVersion: undefined, manifestAction: 'copied' })
    s3Mock.resetHistory()

    const plan = await planAlias(s3, inputs, await loadVersion(s3, BUCKET, 'v2'))
    const result = await applyAlias(s3, plan, { concurrency: 4, logger })
    expect(result).toEqual({
      alias: 'latest',
      versionPrefix: 'v2',
      previousVersion: 'v1',
      dryRun: false,
      files: [
        { path: 'a.bin', key: 'latest/a.bin' },
        { path: 'b.bin', key: 'latest/b.bin' },
        { path: 'dir/new é.bin', key: 'latest/dir/new é.bin' }
      ],
      copied: ['latest/b.bin', 'latest/dir/new é.bin'],
      unchanged: ['latest/a.bin'],
      removed: ['latest/old only.bin'],
      manifestKey: 'latest/manifest.json',
      manifestAction: 'copied',
      invalidationPaths: ['/latest/*']
    })

    const sent = s3Mock
      .calls()
      .map((c) => c.args[0].constructor.name)
      .filter((name) => name === 'CopyObjectCommand' || name === 'DeleteObjectsCommand')
    expect(sent).toEqual([
      'CopyObjectCommand',
      'CopyObjectCommand',
      'CopyObjectCommand',
      'DeleteObjectsCommand'
    ])
    expect(copies().slice(0, 2).sort()).toEqual([
      'models/v2/b.bin → latest/b.bin',
      'models/v2/dir/new%20%C3%A9.bin → latest/dir/new é.bin'
    ])
    expect(copies()[2]).toBe('models/v2/manifest.json → latest/manifest.json')
    expect(s3Mock.commandCalls(DeleteObjectsCommand)[0].args[0].input).toEqual({
      Bucket: BUCKET,
      Delete: { Objects: [{ Key: 'latest/old only.bin' }], Quiet: true }
    })

    expect(latestKeys()).toEqual([
      'latest/a.bin',
      'latest/b.bin',
      'latest/dir/new é.bin',
      'latest/manifest.json'
    ])
    expect(bucket.get('latest/manifest.json')?.body).toBe(bucket.get('v2/manifest.json')?.body)
    expect(bucket.get('latest/b.bin')).toEqual({
      body: 'b2',
      contentType: 'application/octet-stream',
      cacheControl: ALIAS_CACHE_CONTROL,
      metadata: { framework: 'onnx', sha256: sha('b2') }
    })
  })

  it('sends nothing in a dry run and reports what it would do', async () => {
    publish('v1', V1)
    const logger = silentLogger()
    const result = await promote(
      s3,
      { ...inputs, versionPrefix: 'v1' },
      { concurrency: 2, logger, dryRun: true }
    )
    expect(result).toMatchObject({
      dryRun: true,
      copied: ['latest/a.bin', 'latest/b.bin', 'latest/old only.bin'],
      manifestAction: 'copied'
    })
    expect(s3Mock.commandCalls(CopyObjectCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(0)
    expect(latestKeys()).toEqual([])
    expect(logger.lines.at(-1)).toMatch(/^Dry run: would move alias latest from \(none\) to v1/)
  })

  it('removes stale keys in batches of 1,000', async () => {
    publish('v1', { 'a.bin': 'x' })
    publish('v2', { 'a.bin': 'x' })
    await promoteTo('v1')
    for (let i = 0; i < 2500; i++) {
      bucket.set(`latest/stale/${String(i).padStart(4, '0')}`, {
        body: '',
        contentType: 'x',
        cacheControl: 'x',
        metadata: {}
      })
    }
    s3Mock.resetHistory()
    const result = await promoteTo('v2')
    const batches = s3Mock
      .commandCalls(DeleteObjectsCommand)
      .map((c) => c.args[0].input.Delete?.Objects?.map((o) => o.Key) ?? [])
    expect(batches.map((b) => b.length)).toEqual([1000, 1000, 500])
    expect(new Set(batches.flat()).size).toBe(2500)
    expect(result.removed).toHaveLength(2500)
    expect(latestKeys()).toEqual(['latest/a.bin', 'latest/manifest.json'])
    expect(result.invalidationPaths).toEqual(['/latest/*'])
  })

  it('fails naming the keys S3 did not delete', async () => {
    await latestAtV1()
    s3Mock.on(DeleteObjectsCommand).resolves({
      Errors: [{ Key: 'latest/old only.bin', Code: 'AccessDenied', Message: 'Access Denied' }]
    })
    const err = await promoteTo('v2').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toBe(
      'S3 did not delete 1 stale alias key(s) from s3://models: latest/old only.bin (AccessDenied: Access Denied)'
    )
    expect((err as DeployError).hint).toMatch(/s3:DeleteObject/)
  })

  it('stops at a failed copy: no manifest copy, nothing removed', async () => {
    await latestAtV1()
    s3Mock.on(CopyObjectCommand, { Key: 'latest/b.bin' }).rejects(
      Object.assign(new Error('Access Denied'), {
        name: 'AccessDenied',
        $metadata: { httpStatusCode: 403 }
      })
    )
    const logger = silentLogger()
    await expect(
      promote(s3, { ...inputs, versionPrefix: 'v2' }, { concurrency: 1, logger })
    ).rejects.toThrow(
      /^Failed copying s3:\/\/models\/v2\/b\.bin to s3:\/\/models\/latest\/b\.bin: AWS said AccessDenied/
    )
    expect(copies()).not.toContain('models/v2/manifest.json → latest/manifest.json')
    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(0)
    expect(JSON.parse((bucket.get('latest/manifest.json') as Stored).body).versionPrefix).toBe('v1')
    expect(logger.warnings).toEqual([
      'Stopped moving alias latest from v1 to v2: 0 of 2 file(s) were copied; latest/manifest.json still names v1. Running the step again completes the move.'
    ])
  })

  it('stops when cancelled during the copies, before the manifest', async () => {
    publish('v2', V2)
    const controller = new AbortController()
    s3Mock.on(CopyObjectCommand).callsFake(async () => {
      controller.abort(new Error('SIGTERM'))
      return { CopyObjectResult: { ETag: '"e"' } }
    })
    await expect(
      promote(
        s3,
        { ...inputs, versionPrefix: 'v2' },
        { concurrency: 1, logger: silentLogger(), signal: controller.signal }
      )
    ).rejects.toThrow(
      'Cancelled moving alias latest from (none) to v2: 1 of 3 file(s) were copied; latest/manifest.json still names no version.'
    )
    expect(s3Mock.commandCalls(CopyObjectCommand)).toHaveLength(1)
  })
  it('reports the cancel, not the copy it cut short', async () => {
    publish('v2', V2)
    const controller = new AbortController()
    s3Mock.on(CopyObjectCommand).callsFake(async () => {
      controller.abort(new Error('SIGTERM'))
      throw Object.assign(new Error('Request aborted'), { name: 'AbortError' })
    })
    const logger = silentLogger()
    await expect(
      promote(
        s3,
        { ...inputs, versionPrefix: 'v2' },
        { concurrency: 1, logger, signal: controller.signal }
      )
    ).rejects.toThrow(
      'Cancelled moving alias latest from (none) to v2: 0 of 3 file(s) were copied; latest/manifest.json still names no version.'
    )
    expect(logger.warnings).toEqual([])
  })
})

describe('promote', () => {
  it('rolls back: v1, then v2, then v1 again leaves exactly v1 under the alias', async () => {
    publish('v1', V1)
    publish('v2', V2)
    const opts = { concurrency: 4, logger: silentLogger() }
    await promote(s3, { ...inputs, versionPrefix: 'v1' }, opts)
    await promote(s3, { ...inputs, versionPrefix: 'v2' }, opts)
    const back = await promote(s3, { ...inputs, versionPrefix: 'v1' }, opts)
    expect(back).toMatchObject({
      previousVersion: 'v2',
      versionPrefix: 'v1',
      copied: ['latest/b.bin', 'latest/old only.bin'],
      unchanged: ['latest/a.bin'],
      removed: ['latest/dir/new é.bin'],
      invalidationPaths: ['/latest/*']
    })
    expect(latestKeys()).toEqual([
      'latest/a.bin',
      'latest/b.bin',
      'latest/manifest.json',
      'latest/old only.bin'
    ])
    for (const [path, body] of Object.entries(V1)) {
      expect(bucket.get(`latest/${path}`)?.body).toBe(body)
    }
    expect(bucket.get('latest/manifest.json')?.body).toBe(bucket.get('v1/manifest.json')?.body)
  })

  it('checks the version before touching the alias', async () => {
    publish('v1', V1)
    bucket.delete('v1/b.bin')
    await expect(promoteTo('v1')).rejects.toThrow(
      'v1 is missing 1 of 3 file(s) its manifest lists: b.bin (not found)'
    )
    expect(s3Mock.commandCalls(CopyObjectCommand)).toHaveLength(0)
  })
})

describe('aliasInvalidationPaths', () => {
  it('gives no path, one exact path, or one wildcard', () => {
    expect(aliasInvalidationPaths('latest', [])).toEqual([])
    expect(aliasInvalidationPaths('latest', ['latest/my model.bin'])).toEqual([
      '/latest/my%20model.bin'
    ])
    expect(aliasInvalidationPaths('latest', ['latest/a', 'latest/a'])).toEqual(['/latest/a'])
    expect(
      aliasInvalidationPaths('channels/stable', ['channels/stable/a', 'channels/stable/b'])
    ).toEqual(['/channels/stable/*'])
  })
})
