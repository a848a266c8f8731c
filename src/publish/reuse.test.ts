import { createHash } from 'node:crypto'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCopyCommand,
  type HeadObjectCommandInput,
  type ListObjectsV2CommandInput
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { GiB, MiB } from '../common/constants.js'
import {
  AwsError,
  ConcurrentPublishError,
  DeployError,
  SourceChangedError
} from '../common/errors.js'
import {
  copyFiles,
  findReusableObjects,
  listReuseCandidates,
  MAX_SEARCHED_KEYS,
  MIN_REUSE_BYTES,
  type CopyFilesOptions,
  type ReuseSearch
} from './reuse.js'
import type { PlannedFile } from '../common/types.js'
import { silentLogger } from '../../__fixtures__/logger.js'

const s3Mock = mockClient(S3Client)
const s3 = new S3Client({ region: 'us-east-1' })

const sha = (content: string) => createHash('sha256').update(content).digest('hex')
/** Sizes only: no bytes are made. Multi-GB shards, as in the issue. */
const SHARD = 4 * GiB

/** An object of the fake bucket; `content` undefined = stored without x-amz-meta-sha256. */
interface Stored {
  key: string
  size: number
  content?: string
  /** Seconds since the epoch. */
  modified: number
}
let bucket: Stored[]

function store(key: string, size: number, content: string | undefined, modified = 1): void {
  bucket.push({ key, size, content, modified })
}

/** `count` objects of 1 byte (never a wanted size) under `prefix`, all sorting after `a…`. */
function storeFiller(prefix: string, count: number): void {
  for (let i = 0; i < count; i++) store(`${prefix}/f${String(i).padStart(6, '0')}`, 1, 'filler')
}

const eTagOf = (key: string) => `"etag of ${key}"`

const awsError = (name: string, status: number, message = name) =>
  Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } })

/**
 * Answers ListObjectsV2 and HeadObject from `bucket` as S3 does: keys in lexicographic order,
 * pages of MaxKeys (0 keys, not truncated, for MaxKeys 0), a 404 HEAD for a missing key.
 */
function serveBucket(): void {
  s3Mock.on(ListObjectsV2Command).callsFake(async (input: ListObjectsV2CommandInput) => {
    const matching = bucket
      .filter((o) => o.key.startsWith(input.Prefix ?? ''))
      .sort((a, b) => (a.key < b.key ? -1 : 1))
    const start = input.ContinuationToken ? Number(input.ContinuationToken.slice(1)) : 0
    const end = Math.min(start + (input.MaxKeys ?? 1000), matching.length)
    const truncated = (input.MaxKeys ?? 1000) > 0 && end < matching.length
    return {
      Contents: matching.slice(start, end).map((o) => ({
        Key: o.key,
        Size: o.size,
        ETag: eTagOf(o.key),
        LastModified: new Date(o.modified * 1000)
      })),
      KeyCount: end - start,
      IsTruncated: truncated,
      ...(truncated ? { NextContinuationToken: `t${end}` } : {})
    }
  })
  s3Mock.on(HeadObjectCommand).callsFake(async (input: HeadObjectCommandInput) => {
    const o = bucket.find((x) => x.key === input.Key)
    if (!o) throw awsError('NotFound', 404, 'UnknownError')
    return {
      ContentLength: o.size,
      ETag: eTagOf(o.key),
      Metadata: o.content === undefined ? { framework: 'onnx' } : { sha256: sha(o.content) }
    }
  })
}

function planned(
  relativePath: string,
  size: number,
  content: string,
  overrides: Partial<PlannedFile> = {}
): PlannedFile {
  return {
    absolutePath: `/work/out/${relativePath}`,
    relativePath,
    size,
    key: `llama/v4/${relativePath}`,
    sha256: sha(content),
    contentType: 'application/octet-stream',
    action: 'upload',
    existed: false,
    ...overrides
  }
}

let logger: ReturnType<typeof silentLogger>
const search = (overrides: Partial<ReuseSearch> = {}): ReuseSearch => ({
  bucket: 'models',
  versionPrefix: 'llama/v4',
  searchPrefixes: ['llama'],
  logger,
  ...overrides
})

const listInputs = () => s3Mock.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input)
const headedKeys = () => s3Mock.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.Key)
const shardName = (i: number) => `model-${String(i + 1).padStart(5, '0')}-of-00010.safetensors`

beforeEach(() => {
  s3Mock.reset()
  bucket = []
  logger = silentLogger()
})

/** findReusableObjects returns the files as they were, without a request or a log line. */
async function expectNothingSent(files: PlannedFile[], options: ReuseSearch): Promise<void> {
  expect(await findReusableObjects(s3, files, options)).toEqual(files)
  expect(s3Mock.calls()).toHaveLength(0)
  expect(logger.lines).toEqual([])
}

describe('findReusableObjects', () => {
  it('copies the 9 shards of 10 that v3 already stores and uploads the changed one', async () => {
    // Shards of one model differ in size by a few tensors: distinct sizes.
    for (let i = 0; i < 10; i++) store(`llama/v3/${shardName(i)}`, SHARD + i * 4096, `shard ${i}`)
    store('llama/v3/config.json', 700, 'config')
    store('llama/v3/tokenizer.model', 2 * MiB, 'tokenizer')
    serveBucket()
    const files = [
      ...Array.from({ length: 9 }, (_, i) => planned(shardName(i), SHARD + i * 4096, `shard ${i}`)),
      // Retrained: same size as v3's last shard, other bytes.
      planned(shardName(9), SHARD + 9 * 4096, 'shard 9, retrained'),
      // Too small to be worth a search, though v3 holds it too.
      planned('config.json', 700, 'config'),
      // Already in place: not searched for.
      planned('tokenizer.model', 2 * MiB, 'tokenizer', { action: 'skip', existed: true })
    ]
    const before = structuredClone(files)

    const result = await findReusableObjects(s3, files, search())

    expect(result.map((f) => [f.relativePath, f.action, f.copyFrom])).toEqual([
      ...Array.from({ length: 9 }, (_, i) => [
        shardName(i),
        'copy',
        { key: `llama/v3/${shardName(i)}`, eTag: eTagOf(`llama/v3/${shardName(i)}`) }
      ]),
      [shardName(9), 'upload', undefined],
      ['config.json', 'upload', undefined],
      ['tokenizer.model', 'skip', undefined]
    ])
    // Nothing else of a file changes, and the caller's array is left alone.
    expect(result[0]).toEqual({ ...files[0], action: 'copy', copyFrom: result[0].copyFrom })
    expect(files).toEqual(before)

    expect(listInputs()).toEqual([
      { Bucket: 'models', Prefix: 'llama/', MaxKeys: 1000, ContinuationToken: undefined }
    ])
    // One HEAD per same-size object; none for config.json, tokenizer.model or sizes not wanted.
    expect(headedKeys().sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `llama/v3/${shardName(i)}`)
    )
    expect(s3Mock.commandCalls(HeadObjectCommand)[0].args[0].input.Bucket).toBe('models')
    expect(logger.lines).toEqual([
      'Searched 12 object(s) under llama/: 9 of 10 new file(s) of 1.0 MiB or more are already ' +
        'stored and will be copied server-side (36.0 GiB not uploaded).'
    ])
    expect(logger.warnings).toEqual([])
  })

  it('copies every known shard when the shards all have the same size', async () => {
    // Equal-sized shards (byte-split files, identical layer blocks): 9 files share one size.
    for (let i = 0; i < 10; i++) store(`llama/v3/${shardName(i)}`, SHARD, `shard ${i}`)
    serveBucket()
    const files = [
      ...Array.from({ length: 9 }, (_, i) => planned(shardName(i), SHARD, `shard ${i}`)),
      planned(shardName(9), SHARD, 'shard 9, retrained')
    ]

    const result = await findReusableObjects(s3, files, search())

    expect(result.map((f) => [f.relativePath, f.action, f.copyFrom?.key])).toEqual([
      ...Array.from({ length: 9 }, (_, i) => [shardName(i), 'copy', `llama/v3/${shardName(i)}`]),
      [shardName(9), 'upload', undefined]
    ])
    // Still at most one HEAD per object, however many files share its size.
    expect(new Set(headedKeys()).size).toBe(headedKeys().length)
  })

  it('prefers the newest of several objects holding the same bytes', async () => {
    // Listed in key order v1, v2, v3; v3 is the newest, v1 older, v2 the oldest.
    store('llama/v1/a.bin', SHARD, 'A', 2)
    store('llama/v2/a.bin', SHARD, 'A', 1)
    store('llama/v3/a.bin', SHARD, 'A', 3)
    serveBucket()

    const [file] = await findReusableObjects(s3, [planned('a.bin', SHARD, 'A')], search())

    expect(file.copyFrom).toEqual({ key: 'llama/v3/a.bin', eTag: eTagOf('llama/v3/a.bin') })
    // The newest matched: no other object was read.
    expect(headedKeys()).toEqual(['llama/v3/a.bin'])
  })

  it('uses no object with another SHA-256 or none recorded, and keeps looking past them', async () => {
    store('llama/v3/a.bin', SHARD, 'other bytes', 4)
    store('llama/imported/a.bin', SHARD, undefined, 3)
    store('llama/v2/a.bin', SHARD, 'A', 2)
    store('llama/v3/b.bin', SHARD + 1, 'other bytes', 2)
    store('llama/imported/b.bin', SHARD + 1, undefined, 1)
    serveBucket()

    const [a, b] = await findReusableObjects(
      s3,
      [planned('a.bin', SHARD, 'A'), planned('b.bin', SHARD + 1, 'B')],
      search()
    )

    expect(a).toMatchObject({ action: 'copy', copyFrom: { key: 'llama/v2/a.bin' } })
    expect(b.action).toBe('upload')
    expect(b.copyFrom).toBeUndefined()
    // Newest first, each read once.
    expect(headedKeys().filter((k) => k?.endsWith('a.bin'))).toEqual([
      'llama/v3/a.bin',
      'llama/imported/a.bin',
      'llama/v2/a.bin'
    ])
    expect(headedKeys().filter((k) => k?.endsWith('b.bin'))).toEqual([
      'llama/v3/b.bin',
      'llama/imported/b.bin'
    ])
    expect(logger.lines[0]).toContain(': 1 of 2 new file(s)')
  })

  it('reads each object once, however many files of its size look at it', async () => {
    store('llama/v3/b.bin', SHARD, 'B', 2)
    store('llama/v3/a.bin', SHARD, 'A', 1)
    serveBucket()

    const [a, b] = await findReusableObjects(
      s3,
      [planned('a.bin', SHARD, 'A'), planned('b.bin', SHARD, 'B')],
      search()
    )

    expect([a.copyFrom?.key, b.copyFrom?.key]).toEqual(['llama/v3/a.bin', 'llama/v3/b.bin'])
    expect(headedKeys().sort()).toEqual(['llama/v3/a.bin', 'llama/v3/b.bin'])
  })

  it('skips a candidate deleted since it was listed (HEAD 404)', async () => {
    store('llama/v3/a.bin', SHARD, 'A', 2)
    store('llama/v2/a.bin', SHARD, 'A', 1)
    serveBucket()
    s3Mock
      .on(HeadObjectCommand, { Key: 'llama/v3/a.bin' })
      .rejects(awsError('NotFound', 404, 'UnknownError'))

    const [file] = await findReusableObjects(s3, [planned('a.bin', SHARD, 'A')], search())

    expect(file.copyFrom).toEqual({ key: 'llama/v2/a.bin', eTag: eTagOf('llama/v2/a.bin') })
    expect(headedKeys()).toEqual(['llama/v3/a.bin', 'llama/v2/a.bin'])
    expect(logger.warnings).toEqual([])
  })

  it('rejects with an AwsError naming the object when a HEAD fails otherwise', async () => {
    store('llama/v3/a.bin', SHARD, 'A')
    serveBucket()
    s3Mock.on(HeadObjectCommand).rejects(awsError('InternalError', 500, 'We encountered an error'))

    const err = await findReusableObjects(s3, [planned('a.bin', SHARD, 'A')], search()).catch(
      (e: unknown) => e
    )

    expect(err).toBeInstanceOf(AwsError)
    expect((err as AwsError).code).toBe('InternalError')
    expect((err as AwsError).message).toMatch(/^Failed reading s3:\/\/models\/llama\/v3\/a\.bin/)
  })

  it('reads at most 4 same-size objects per file, the newest', async () => {
    for (let i = 1; i <= 4; i++) store(`llama/r${i}/a.bin`, SHARD, `other ${i}`, 10 + i)
    // Older than the four read: never found.
    store('llama/v1/a.bin', SHARD, 'A', 2)
    store('llama/v0/a.bin', SHARD, 'A', 1)
    serveBucket()

    const [file] = await findReusableObjects(s3, [planned('a.bin', SHARD, 'A')], search())

    expect(file.action).toBe('upload')
    expect(headedKeys()).toEqual([
      'llama/r4/a.bin',
      'llama/r3/a.bin',
      'llama/r2/a.bin',
      'llama/r1/a.bin'
    ])
  })

  it('pages through the listing with the continuation token', async () => {
    storeFiller('llama/v3', 2500)
    // Sorts after the filler: on the third page.
    store('llama/v3/zz.bin', SHARD, 'Z')
    serveBucket()

    const [file] = await findReusableObjects(s3, [planned('zz.bin', SHARD, 'Z')], search())

    expect(file.copyFrom?.key).toBe('llama/v3/zz.bin')
    expect(listInputs()).toEqual([
      { Bucket: 'models', Prefix: 'llama/', MaxKeys: 1000, ContinuationToken: undefined },
      { Bucket: 'models', Prefix: 'llama/', MaxKeys: 1000, ContinuationToken: 't1000' },
      { Bucket: 'models', Prefix: 'llama/', MaxKeys: 1000, ContinuationToken: 't2000' }
    ])
    expect(logger.lines[0]).toMatch(/^Searched 2501 object\(s\) under llama\/: 1 of 1 /)
    expect(logger.lines[0]).not.toContain('stopped at')
  })

  it(`stops listing at ${MAX_SEARCHED_KEYS} keys, keeps what it found and says so`, async () => {
    store('llama/v3/a.bin', SHARD, 'A')
    storeFiller('llama/v3', 25_000)
    // Beyond the cap, as is the next prefix.
    store('llama/v3/zz.bin', SHARD + 1, 'Z')

    store('shared/zz.bin', SHARD + 1, 'Z')
    serveBucket()

    const [a, z] = await findReusableObjects(
      s3,
      [planned('a.bin', SHARD, 'A'), planned('zz.bin', SHARD + 1, 'Z')],
      search({ searchPrefixes: ['llama', 'shared'] })
    )

    expect(a.copyFrom?.key).toBe('llama/v3/a.bin')
    expect(z.action).toBe('upload')
    const sent = listInputs()
    expect(sent).toHaveLength(MAX_SEARCHED_KEYS / 1000)
    expect(sent.every((input) => input.MaxKeys === 1000)).toBe(true)
    expect(sent.at(-1)?.ContinuationToken).toBe('t19000')
    expect(sent.every((input) => input.Prefix === 'llama/')).toBe(true)
    expect(logger.lines).toEqual([
      'Searched 20000 object(s) under llama/, shared/ (stopped at 20,000; narrow it with `reuse-from`): ' +
        '1 of 2 new file(s) of 1.0 MiB or more are already stored and will be copied ' +
        'server-side (4.0 GiB not uploaded).'
    ])
  })

  it('shares the cap across prefixes: the next prefix is listed only for what is left', async () => {
    storeFiller('llama/v3', 19_500)
    store('llama/v2/a.bin', SHARD, 'A')
    storeFiller('llama/v2', 1000)
    serveBucket()

    const [file] = await findReusableObjects(
      s3,
      [planned('a.bin', SHARD, 'A')],
      search({ searchPrefixes: ['llama/v3', 'llama/v2'] })
    )

    expect(file.copyFrom?.key).toBe('llama/v2/a.bin')
    const sent = listInputs()
    expect(sent).toHaveLength(21)
    expect(sent[19]).toMatchObject({
      Prefix: 'llama/v3/',
      MaxKeys: 1000,
      ContinuationToken: 't19000'
    })
    expect(sent[20]).toEqual({
      Bucket: 'models',
      Prefix: 'llama/v2/',
      MaxKeys: 500,
      ContinuationToken: undefined
    })
    expect(logger.lines[0]).toMatch(
      /^Searched 20000 object\(s\) under llama\/v3\/, llama\/v2\/ \(stopped at 20,000;/
    )
  })

  it('stops at the cap reached at the end of a prefix, without listing the next', async () => {
    storeFiller('llama/v3', MAX_SEARCHED_KEYS)
    store('llama/v2/a.bin', SHARD, 'A')
    serveBucket()

    await findReusableObjects(
      s3,
      [planned('a.bin', SHARD, 'A')],
      search({ searchPrefixes: ['llama/v3', 'llama/v2'] })
    )

    // llama/v2/ was not searched: no request for 0 keys, and the log says the search stopped.
    expect(listInputs().map((input) => input.MaxKeys)).not.toContain(0)
    expect(listInputs()).toHaveLength(MAX_SEARCHED_KEYS / 1000)
    expect(logger.lines[0]).toContain('(stopped at 20,000;')
  })

  it("ignores objects under the version's own prefix, but not under a longer sibling", async () => {
    // A leftover of an earlier run of this version, newest, same bytes: not a source.
    store('llama/v4/a.bin', SHARD, 'A', 9)
    store('llama/v3/a.bin', SHARD, 'A', 1)
    store('llama/v40/b.bin', SHARD + 1, 'B', 1)
    serveBucket()

    const [a, b] = await findReusableObjects(
      s3,
      [planned('a.bin', SHARD, 'A'), planned('b.bin', SHARD + 1, 'B')],
      search()
    )

    expect(a.copyFrom?.key).toBe('llama/v3/a.bin')
    expect(b.copyFrom?.key).toBe('llama/v40/b.bin')
    expect(headedKeys()).not.toContain('llama/v4/a.bin')
    // Listed and counted all the same.
    expect(logger.lines[0]).toMatch(/^Searched 3 object\(s\)/)
  })

  it('searches for new files of MIN_REUSE_BYTES or more only', async () => {
    expect(MIN_REUSE_BYTES).toBe(MiB)
    store('llama/v3/small.bin', MiB - 1, 'small')
    store('llama/v3/edge.bin', MiB, 'edge')
    serveBucket()

    const result = await findReusableObjects(
      s3,
      [planned('small.bin', MiB - 1, 'small'), planned('edge.bin', MiB, 'edge')],
      search()
    )

    expect(result.map((f) => f.action)).toEqual(['upload', 'copy'])
    expect(headedKeys()).toEqual(['llama/v3/edge.bin'])
  })

  it('sends nothing when no file qualifies', async () => {
    serveBucket()
    const files = [
      planned('small.bin', MiB - 1, 'small'),
      planned('big.bin', SHARD, 'big', { action: 'skip', existed: true })
    ]

    await expectNothingSent(files, search())
  })

  it('sends nothing when there is nowhere to search (reuse-from: none)', async () => {
    store('llama/v3/a.bin', SHARD, 'A')
    serveBucket()
    const files = [planned('a.bin', SHARD, 'A')]

    await expectNothingSent(files, search({ searchPrefixes: [] }))
  })

  it("lists the whole bucket for the prefix ''", async () => {
    store('a.bin', SHARD, 'A')
    serveBucket()

    const [file] = await findReusableObjects(
      s3,
      [planned('a.bin', SHARD, 'A', { key: 'v4/a.bin' })],
      search({ versionPrefix: 'v4', searchPrefixes: [''] })
    )

    expect(file.copyFrom?.key).toBe('a.bin')
    expect(listInputs()[0]).toMatchObject({ Prefix: '' })
    expect(logger.lines[0]).toMatch(/^Searched 1 object\(s\) under the whole bucket: 1 of 1 /)
  })

  it('warns and uploads everything when the role may not list the prefixes (403)', async () => {
    s3Mock.on(ListObjectsV2Command).rejects(awsError('AccessDenied', 403, 'Access Denied'))
    const files = [planned('a.bin', SHARD, 'A')]

    const result = await findReusableObjects(
      s3,
      files,
      search({ searchPrefixes: ['llama', 'shared'] })
    )

    expect(result).toEqual(files)
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(0)
    expect(logger.warnings).toEqual([
      'Could not search llama/, shared/ for identical objects (AccessDenied): every new file is ' +
        'uploaded. Set `reuse-from` to prefixes the role may list, or `none`.'
    ])
  })

  it('rejects with an AwsError on any other listing failure', async () => {
    s3Mock
      .on(ListObjectsV2Command)
      .rejects(awsError('NoSuchBucket', 404, 'The specified bucket does not exist'))

    const err = await findReusableObjects(s3, [planned('a.bin', SHARD, 'A')], search()).catch(
      (e: unknown) => e
    )

    expect(err).toBeInstanceOf(AwsError)
    expect((err as AwsError).code).toBe('NoSuchBucket')
    expect((err as AwsError).message).toMatch(
      /^Failed listing s3:\/\/models\/llama\/ for identical objects: AWS said NoSuchBucket/
    )
    expect(logger.warnings).toEqual([])
  })

  describe('cancellation', () => {
    const reason = new DeployError('The workflow run was cancelled (SIGTERM).')

    it('sends nothing once cancelled', async () => {
      const controller = new AbortController()
      controller.abort(reason)
      serveBucket()

      await expect(
        findReusableObjects(
          s3,
          [planned('a.bin', SHARD, 'A')],
          search({ signal: controller.signal })
        )
      ).rejects.toBe(reason)
      expect(s3Mock.calls()).toHaveLength(0)
    })

    it('lists no further page and reads no object once cancelled while listing', async () => {
      const controller = new AbortController()
      s3Mock.on(ListObjectsV2Command).callsFake(async () => {
        controller.abort(reason)
        return {
          Contents: [{ Key: 'llama/v3/a.bin', Size: SHARD, ETag: '"a"', LastModified: new Date() }],
          IsTruncated: true,
          NextContinuationToken: 't1'
        }
      })
      s3Mock.on(HeadObjectCommand).resolves({ Metadata: { sha256: sha('A') } })

      await expect(
        findReusableObjects(
          s3,
          [planned('a.bin', SHARD, 'A')],
          search({ signal: controller.signal })
        )
      ).rejects.toBe(reason)
      expect(listInputs()).toHaveLength(1)
      expect(headedKeys()).toEqual([])
    })

    it('reads no further candidate once cancelled', async () => {
      const controller = new AbortController()
      store('llama/v3/a.bin', SHARD, 'other', 3)
      store('llama/v2/a.bin', SHARD, 'A', 2)
      serveBucket()
      s3Mock.on(HeadObjectCommand, { Key: 'llama/v3/a.bin' }).callsFake(async () => {
        controller.abort(reason)
        return { Metadata: { sha256: sha('other') } }
      })

      await expect(
        findReusableObjects(
          s3,
          [planned('a.bin', SHARD, 'A')],
          search({ signal: controller.signal })
        )
      ).rejects.toBe(reason)
      expect(headedKeys()).toEqual(['llama/v3/a.bin'])
    })
  })
})

describe('listReuseCandidates', () => {
  it('reads the newest candidates of each likely new size up front, and none again', async () => {
    for (let i = 0; i < 3; i++) {
      store(`llama/v3/${shardName(i)}`, SHARD, `shard ${i}`, 3)
      store(`llama/v2/${shardName(i)}`, SHARD, `shard ${i}`, 2)
    }
    store('llama/v3/tokenizer.model', 2 * MiB, 'tokenizer', 3)
    serveBucket()
    const files = Array.from({ length: 3 }, (_, i) => planned(shardName(i), SHARD, `shard ${i}`))
    const tokenizer = planned('tokenizer.model', 2 * MiB, 'tokenizer')

    // The tokenizer's key may already hold it: its size is listed, but nothing is read for it.
    const listed = await listReuseCandidates(s3, [...files, tokenizer], files, search())

    expect(listed?.bySize.get(SHARD)?.map((c) => c.key)).toEqual(
      Array.from({ length: 3 }, (_, i) => `llama/v3/${shardName(i)}`).concat(
        Array.from({ length: 3 }, (_, i) => `llama/v2/${shardName(i)}`)
      )
    )
    expect(listed?.bySize.get(2 * MiB)?.map((c) => c.key)).toEqual(['llama/v3/tokenizer.model'])
    // Three files of the size: its three newest objects, one HEAD each.
    expect(headedKeys().sort()).toEqual(
      Array.from({ length: 3 }, (_, i) => `llama/v3/${shardName(i)}`)
    )

    const result = await findReusableObjects(s3, [...files, tokenizer], search(), listed)

    expect(result.map((f) => f.copyFrom?.key)).toEqual([
      ...Array.from({ length: 3 }, (_, i) => `llama/v3/${shardName(i)}`),
      'llama/v3/tokenizer.model'
    ])
    // Only the tokenizer's candidate was read now; one listing in all.
    expect(headedKeys()).toHaveLength(4)
    expect(headedKeys()[3]).toBe('llama/v3/tokenizer.model')
    expect(listInputs()).toHaveLength(1)
  })

  it('lists nothing when no file is big enough to search for or there is nowhere to search', async () => {
    serveBucket()
    const small = planned('config.json', MIN_REUSE_BYTES - 1, '{}')
    const big = planned('a.bin', SHARD, 'A')
    expect(await listReuseCandidates(s3, [small], [small], search())).toBeUndefined()
    expect(await listReuseCandidates(s3, [big], [big], search({ searchPrefixes: [] }))).toBe(
      undefined
    )
    expect(s3Mock.calls()).toHaveLength(0)
  })

  it('warns once when the role may not list, and matching then sends nothing', async () => {
    s3Mock.on(ListObjectsV2Command).rejects(awsError('AccessDenied', 403, 'Access Denied'))
    const files = [planned('a.bin', SHARD, 'A')]

    const listed = await listReuseCandidates(s3, files, files, search())
    const result = await findReusableObjects(s3, files, search(), listed)

    expect(listed?.denied).toBe(true)
    expect(result).toEqual(files)
    expect(s3Mock.calls()).toHaveLength(1)
    expect(logger.warnings).toHaveLength(1)
  })
})

describe('copyFiles', () => {
  const options = (overrides: Partial<CopyFilesOptions> = {}): CopyFilesOptions => ({
    bucket: 'models',
    versionPrefix: 'v4',
    cacheControl: 'public, max-age=31536000, immutable',
    metadata: { framework: 'onnx' },
    concurrency: 4,
    logger,
    ...overrides
  })
  const copying = (rel: string, size: number, sourceKey: string, eTag?: string) =>
    planned(rel, size, rel, { action: 'copy', copyFrom: { key: sourceKey, eTag } })
  const copyInputs = () => s3Mock.commandCalls(CopyObjectCommand).map((c) => c.args[0].input)
  /** What another run copied to `key` first, with this run's headers. */
  const storedByAnotherRun = (key: string, sha256: string) =>
    s3Mock.on(HeadObjectCommand, { Key: key }).resolves({
      ContentLength: 2 * MiB,
      ContentType: 'application/octet-stream',
      CacheControl: 'public, max-age=31536000, immutable',
      Metadata: { framework: 'onnx', sha256 }
    })
  // The destinations are new keys unless a test stores one.
  beforeEach(() => {
    s3Mock.on(HeadObjectCommand).rejects(awsError('NotFound', 404, 'UnknownError'))
  })

  it('counts a file as already there when another run copied the same bytes first (If-None-Match lost)', async () => {
    const file = copying('a.bin', 2 * MiB, 'llama/v3/a.bin', '"a"')
    s3Mock.on(CopyObjectCommand).rejects(awsError('PreconditionFailed', 412, 'If-None-Match'))
    storedByAnotherRun('llama/v4/a.bin', file.sha256 as string)

    const result = await copyFiles(s3, [file], options())

    expect(result).toEqual({ bytesCopied: 0, fallBack: [], alreadyThere: ['llama/v4/a.bin'] })
    expect(copyInputs()).toHaveLength(1)
  })

  it('fails, naming the key and the version, when another run stored other bytes there first', async () => {
    const file = copying('a.bin', 2 * MiB, 'llama/v3/a.bin', '"a"')
    s3Mock.on(CopyObjectCommand).rejects(awsError('PreconditionFailed', 412, 'If-None-Match'))
    storedByAnotherRun('llama/v4/a.bin', sha('other bytes'))

    const err = await copyFiles(s3, [file], options()).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(ConcurrentPublishError)
    expect((err as Error).message).toBe(
      'Another run wrote s3://models/llama/v4/a.bin (a.bin) while this run was publishing v4: ' +
        "different bytes: SHA-256 differs. That run's object was kept; this run stopped."
    )
    // Read again, never copied again blindly.
    expect(copyInputs()).toHaveLength(1)
  })

  it("copies the files marked copy with this run's headers, guarded by the source ETag", async () => {
    s3Mock.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"copied"' } })
    const spaced = copying('a b+c.bin', 3 * MiB, 'llama/v3/a b+c%.bin', '"e1"')
    const files = [
      spaced,
      copying('tokenizer.json', 2 * MiB, 'llama/v3/tokenizer.json'),
      planned('new.bin', MiB, 'new'),
      planned('same.bin', MiB, 'same', { action: 'skip', existed: true })
    ]

    const result = await copyFiles(s3, files, options())

    expect(result).toEqual({ bytesCopied: 5 * MiB, fallBack: [], alreadyThere: [] })
    const sent = copyInputs().sort((x, y) => (x.Key! < y.Key! ? -1 : 1))
    expect(sent).toEqual([
      {
        Bucket: 'models',
        Key: 'llama/v4/a b+c.bin',
        CopySource: 'models/llama/v3/a%20b%2Bc%25.bin',
        CopySourceIfMatch: '"e1"',
        // A new key of the version: created only if no other run created it first.
        IfNoneMatch: '*',
        MetadataDirective: 'REPLACE',
        TaggingDirective: 'REPLACE',
        ContentType: 'application/octet-stream',
        CacheControl: 'public, max-age=31536000, immutable',
        Metadata: { framework: 'onnx', sha256: spaced.sha256 }
      },
      {
        Bucket: 'models',
        Key: 'llama/v4/tokenizer.json',
        CopySource: 'models/llama/v3/tokenizer.json',
        IfNoneMatch: '*',
        MetadataDirective: 'REPLACE',
        TaggingDirective: 'REPLACE',
        ContentType: 'application/octet-stream',
        CacheControl: 'public, max-age=31536000, immutable',
        Metadata: { framework: 'onnx', sha256: sha('tokenizer.json') }
      }
    ])
    // No ETag listed: no guard rather than an empty one.
    expect(sent[1]).not.toHaveProperty('CopySourceIfMatch')
    expect(s3Mock.calls()).toHaveLength(2)
    expect(logger.lines).toContain(
      'Copied a b+c.bin → s3://models/llama/v4/a b+c.bin (3.0 MiB) server-side from llama/v3/a b+c%.bin'
    )
  })

  it('tags the copies with the tagging given, and only then', async () => {
    s3Mock.on(CopyObjectCommand).resolves({})
    const files = [copying('a.bin', 2 * MiB, 'llama/v3/a.bin', '"a"')]

    await copyFiles(s3, files, options({ tagging: 'preview=pr-12' }))

    expect(copyInputs()[0]).toMatchObject({
      Tagging: 'preview=pr-12',
      TaggingDirective: 'REPLACE'
    })
  })

  it('sends nothing when no file is to be copied', async () => {
    const result = await copyFiles(s3, [planned('a.bin', SHARD, 'A')], options())
    expect(result).toEqual({ bytesCopied: 0, fallBack: [], alreadyThere: [] })
    expect(s3Mock.calls()).toHaveLength(0)
  })

  it('returns a file whose source changed since it was listed (PreconditionFailed) to be uploaded', async () => {
    s3Mock.on(CopyObjectCommand).resolves({})
    s3Mock
      .on(CopyObjectCommand, { Key: 'llama/v4/a.bin' })
      .rejects(
        awsError('PreconditionFailed', 412, 'At least one of the pre-conditions did not hold')
      )
    const changed = copying('a.bin', 2 * MiB, 'llama/v3/a.bin', '"old"')
    const files = [changed, copying('b.bin', 3 * MiB, 'llama/v3/b.bin', '"b"')]

    const result = await copyFiles(s3, files, options())

    expect(result.bytesCopied).toBe(3 * MiB)
    expect(result.fallBack).toEqual([{ ...changed, action: 'upload', copyFrom: undefined }])
    expect(result.fallBack[0].copyFrom).toBeUndefined()
    expect(logger.warnings).toEqual([
      'llama/v3/a.bin changed or was deleted after it was found (PreconditionFailed); uploading a.bin instead.'
    ])
    expect(
      copyInputs()
        .map((input) => input.Key)
        .sort()
    ).toEqual(['llama/v4/a.bin', 'llama/v4/b.bin'])
  })

  it('returns a file whose source was deleted (NoSuchKey, or a bare 404) to be uploaded', async () => {
    s3Mock
      .on(CopyObjectCommand, { Key: 'llama/v4/a.bin' })
      .rejects(awsError('NoSuchKey', 404, 'The specified key does not exist.'))
    s3Mock
      .on(CopyObjectCommand, { Key: 'llama/v4/b.bin' })
      .rejects(awsError('UnknownError', 404, 'UnknownError'))
    const files = [
      copying('a.bin', 2 * MiB, 'llama/v3/a.bin', '"a"'),
      copying('b.bin', 2 * MiB, 'llama/v3/b.bin', '"b"')
    ]

    const result = await copyFiles(s3, files, options())

    expect(result.bytesCopied).toBe(0)
    expect(result.fallBack.map((f) => [f.relativePath, f.action, f.copyFrom]).sort()).toEqual([
      ['a.bin', 'upload', undefined],
      ['b.bin', 'upload', undefined]
    ])
    expect(logger.warnings).toHaveLength(2)
  })

  it('falls back when a part of a multipart copy finds the source changed, aborting the upload', async () => {
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' })
    s3Mock.on(UploadPartCopyCommand).resolves({ CopyPartResult: { ETag: '"p"' } })
    s3Mock.on(UploadPartCopyCommand, { PartNumber: 2 }).rejects(awsError('PreconditionFailed', 412))
    s3Mock.on(AbortMultipartUploadCommand).resolves({})
    const big = copying('big.bin', 6 * GiB, 'llama/v3/big.bin', '"big"')

    const result = await copyFiles(s3, [big], options({ concurrency: 2, partSizeBytes: GiB }))

    expect(result).toEqual({
      bytesCopied: 0,
      fallBack: [{ ...big, action: 'upload', copyFrom: undefined }],
      alreadyThere: []
    })
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)[0].args[0].input).toEqual({
      Bucket: 'models',
      Key: 'llama/v4/big.bin',
      ContentType: 'application/octet-stream',
      CacheControl: 'public, max-age=31536000, immutable',
      Metadata: { framework: 'onnx', sha256: big.sha256 }
    })
    // Half the concurrency per copy: one part at a time here, so none after the failed one.
    const parts = s3Mock.commandCalls(UploadPartCopyCommand).map((c) => c.args[0].input)
    expect(parts.map((p) => [p.PartNumber, p.CopySource, p.CopySourceIfMatch])).toEqual([
      [1, 'models/llama/v3/big.bin', '"big"'],
      [2, 'models/llama/v3/big.bin', '"big"']
    ])
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)[0].args[0].input).toMatchObject({
      Key: 'llama/v4/big.bin',
      UploadId: 'u1'
    })
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0)
  })

  it('rejects when S3 refuses the copy (AccessDenied)', async () => {
    s3Mock.on(CopyObjectCommand).rejects(awsError('AccessDenied', 403, 'Access Denied'))

    const err = await copyFiles(
      s3,
      [copying('a.bin', 2 * MiB, 'llama/v3/a.bin', '"a"')],
      options()
    ).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(AwsError)
    expect((err as AwsError).code).toBe('AccessDenied')
    expect((err as AwsError).message).toMatch(
      /^Failed copying s3:\/\/models\/llama\/v3\/a\.bin to s3:\/\/models\/llama\/v4\/a\.bin: AWS said AccessDenied/
    )
    expect(logger.warnings).toEqual([])
  })

  it('copies nothing once cancelled', async () => {
    const controller = new AbortController()
    controller.abort(new DeployError('The workflow run was cancelled (SIGINT).'))
    s3Mock.on(CopyObjectCommand).resolves({})

    const err = await copyFiles(
      s3,
      [copying('a.bin', 2 * MiB, 'llama/v3/a.bin', '"a"')],
      options({ signal: controller.signal })
    ).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(DeployError)
    expect(err).not.toBeInstanceOf(AwsError)
    expect((err as DeployError).message).toMatch(
      /^Cancelled copying s3:\/\/models\/llama\/v3\/a\.bin/
    )
    expect(s3Mock.calls()).toHaveLength(0)
  })

  describe('from s3:// sources', () => {
    const CRC = { algorithm: 'CRC64NVME', type: 'FULL_OBJECT', value: 'nC7n2J+0ELs=' } as const
    const fromSource = (rel: string, size: number) =>
      planned(rel, size, rel, {
        action: 'copy',
        sha256: undefined,
        checksum: CRC,
        absolutePath: `s3://training/runs/42/${rel}`,
        copyFrom: { bucket: 'training', key: `runs/42/${rel}`, eTag: `"${rel}"` }
      })

    it("copies from the source bucket with the listed ETag, recording S3's checksum, and reports progress", async () => {
      s3Mock.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"copied"' } })
      const files = [fromSource('w.bin', 3 * MiB), fromSource('t.json', 2 * MiB)]
      const progress: { sentBytes: number; verb?: string; filesDone: number }[] = []
      logger.progress = { intervalMs: 1, update: (s) => progress.push(s), end: () => undefined }

      const result = await copyFiles(s3, files, options())

      expect(result).toEqual({ bytesCopied: 5 * MiB, fallBack: [], alreadyThere: [] })
      expect(copyInputs().find((c) => c.Key === 'llama/v4/w.bin')).toMatchObject({
        Bucket: 'models',
        CopySource: 'training/runs/42/w.bin',
        CopySourceIfMatch: '"w.bin"',
        IfNoneMatch: '*',
        Metadata: { framework: 'onnx', checksum: 'CRC64NVME:nC7n2J+0ELs=' }
      })
      expect(progress.at(-1)).toMatchObject({ verb: 'Copied', sentBytes: 5 * MiB, filesDone: 2 })
      expect(logger.lines).toContain(
        'Copied w.bin → s3://models/llama/v4/w.bin (3.0 MiB) server-side from s3://training/runs/42/w.bin'
      )
    })

    it('fails, uploading nothing instead, when a source changed after it was listed', async () => {
      s3Mock
        .on(CopyObjectCommand)
        .rejects(
          awsError(
            'PreconditionFailed',
            412,
            'At least one of the pre-conditions you specified did not hold'
          )
        )
      // The destination is still empty: the source's condition failed, not the destination's.
      const err = await copyFiles(s3, [fromSource('w.bin', 3 * MiB)], options()).catch(
        (e: unknown) => e
      )
      expect(err).toBeInstanceOf(SourceChangedError)
      expect((err as Error).message).toMatch(
        /^s3:\/\/training\/runs\/42\/w\.bin changed or was deleted after it was listed \(PreconditionFailed\): w\.bin was not published/
      )
    })
  })
})
