import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import {
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
  type GetObjectCommandInput,
  type GetObjectCommandOutput,
  type HeadObjectCommandInput,
  type HeadObjectCommandOutput
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { DeployError, InputError } from '../common/errors.js'
import { readSourceIntegrity, type SourceHashMode } from './s3-integrity.js'
import type { SourceObject } from '../common/types.js'
import { s3ClientsByRegion, s3Error } from '../../__fixtures__/aws-mocks.js'
import { rejectionOf } from '../../__fixtures__/rejection.js'

const s3Mock = mockClient(S3Client)
const s3In = s3ClientsByRegion()

const sha256Hex = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex')
const KMS_KEY = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
const OTHER_KEY = 'arn:aws:kms:eu-west-1:111122223333:key/ffff0000-12ab-34cd-56ef-1234567890ab'

function source(key: string, size = 10): SourceObject {
  return {
    absolutePath: `s3://train-out/${key}`,
    relativePath: key,
    size,
    bucket: 'train-out',
    key,
    eTag: `"etag-${key}"`,
    region: 'eu-west-1'
  }
}

/** HEAD answers by key; a key without one is a plain object S3 knows no checksum of. */
let heads: Map<string, HeadObjectCommandOutput>
function head(key: string, output: Partial<HeadObjectCommandOutput>): void {
  heads.set(key, { $metadata: {}, ...output })
}

/** A GET's body, in chunks of at most 3 bytes, as the SDK's stream gives them. */
function body(bytes: Buffer): GetObjectCommandOutput['Body'] {
  const chunks = Array.from({ length: Math.ceil(bytes.length / 3) }, (_, i) =>
    bytes.subarray(i * 3, i * 3 + 3)
  )
  return Readable.from(chunks) as unknown as GetObjectCommandOutput['Body']
}

/** Object bytes served by GET, honouring Range bytes=a-b. */
let contents: Map<string, Buffer>

beforeEach(() => {
  s3Mock.reset()
  heads = new Map()
  contents = new Map()
  s3Mock.on(HeadObjectCommand).callsFake(async (input: HeadObjectCommandInput) => {
    return heads.get(input.Key ?? '') ?? { $metadata: {} }
  })
  s3Mock.on(GetObjectCommand).callsFake(async (input: GetObjectCommandInput) => {
    const bytes = contents.get(input.Key ?? '') ?? Buffer.alloc(0)
    const range = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? '')
    return { Body: body(range ? bytes.subarray(Number(range[1]), Number(range[2]) + 1) : bytes) }
  })
})

const run = (objects: SourceObject[], mode: SourceHashMode = 'known', concurrency?: number) =>
  readSourceIntegrity(objects, mode, { s3In, concurrency })

const gets = () => s3Mock.commandCalls(GetObjectCommand).map((c) => c.args[0].input)

describe('readSourceIntegrity: what S3 knows', () => {
  it('HEADs each object as listed, with checksums, in its region', async () => {
    head('a.bin', { ChecksumCRC64NVME: 'nC7n2J+0ELs=', ChecksumType: 'FULL_OBJECT' })
    await run([source('a.bin')])
    const [call] = s3Mock.commandCalls(HeadObjectCommand)
    expect(call.args[0].input).toEqual({
      Bucket: 'train-out',
      Key: 'a.bin',
      IfMatch: '"etag-a.bin"',
      ChecksumMode: 'ENABLED'
    })
    expect(await (call.thisValue as S3Client).config.region()).toBe('eu-west-1')
  })

  it('prefers our x-amz-meta-sha256 to any checksum', async () => {
    const sha = sha256Hex('weights')
    head('a.bin', {
      Metadata: { sha256: sha.toUpperCase() },
      ChecksumSHA256: Buffer.alloc(32, 7).toString('base64'),
      ChecksumType: 'FULL_OBJECT',
      ChecksumCRC64NVME: 'nC7n2J+0ELs='
    })
    const { objects, bytesRead } = await run([source('a.bin')])
    expect(objects[0].sha256).toBe(sha)
    expect(objects[0].checksum).toBeUndefined()
    expect(bytesRead).toBe(0)
    expect(gets()).toEqual([])
  })

  it('takes a full-object SHA-256 checksum as the SHA-256, in hex', async () => {
    const digest = createHash('sha256').update('weights').digest()
    head('a.bin', { ChecksumSHA256: digest.toString('base64'), ChecksumType: 'FULL_OBJECT' })
    const { objects } = await run([source('a.bin')])
    expect(objects[0].sha256).toBe(digest.toString('hex'))
    expect(objects[0].checksum).toBeUndefined()
  })

  it('names the first checksum present, with its type, when the SHA-256 is not known', async () => {
    head('full.bin', {
      ChecksumCRC32: 'AAAAAA==',
      ChecksumCRC64NVME: 'nC7n2J+0ELs=',
      ChecksumType: 'FULL_OBJECT'
    })
    head('composite-sha.bin', {
      ChecksumSHA256: 'q1w2e3r4t5y6u7i8o9p0==-3',
      ChecksumType: 'COMPOSITE'
    })
    head('untyped-parts.bin', { ChecksumCRC32C: 'Zm9vYg==-12' })
    head('untyped-whole.bin', { ChecksumSHA1: 'C+7Hteo/D9vJXQ3UfzxbwnXaijM=' })
    head('bad-meta.bin', { Metadata: { sha256: 'not-a-digest' }, ChecksumCRC32: 'AAAAAA==' })
    const { objects } = await run(
      [
        'full.bin',
        'composite-sha.bin',
        'untyped-parts.bin',
        'untyped-whole.bin',
        'bad-meta.bin'
      ].map((k) => source(k))
    )
    expect(objects.map((o) => [o.sha256, o.checksum])).toEqual([
      [undefined, { algorithm: 'CRC64NVME', type: 'FULL_OBJECT', value: 'nC7n2J+0ELs=' }],
      [undefined, { algorithm: 'SHA256', type: 'COMPOSITE', value: 'q1w2e3r4t5y6u7i8o9p0==-3' }],
      [undefined, { algorithm: 'CRC32C', type: 'COMPOSITE', value: 'Zm9vYg==-12' }],
      [
        undefined,
        { algorithm: 'SHA1', type: 'FULL_OBJECT', value: 'C+7Hteo/D9vJXQ3UfzxbwnXaijM=' }
      ],
      [undefined, { algorithm: 'CRC32', type: 'FULL_OBJECT', value: 'AAAAAA==' }]
    ])
  })

  it('refuses objects S3 knows nothing of, naming up to 20, with `source-hash: read` as the way out', async () => {
    const objects = Array.from({ length: 22 }, (_, i) =>
      source(`plain-${String(i).padStart(2, '0')}.bin`)
    )
    head('plain-00.bin', { ChecksumCRC32: 'AAAAAA==' })
    const err = await rejectionOf(run(objects), InputError)
    expect(err.message).toMatch(/^S3 knows no checksum of 21 source object\(s\)/)
    expect(err.message).not.toContain('plain-00.bin')
    expect(err.message).toContain('s3://train-out/plain-20.bin')
    expect(err.message).not.toContain('plain-21.bin')
    expect(err.message).toContain('… and 1 more')
    expect(err.hint).toContain('`source-hash: read`')
  })

  it('reports an object changed since it was listed (412)', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('PreconditionFailed', 412))
    const err = await rejectionOf(run([source('a.bin')]), DeployError)
    expect(err).not.toBeInstanceOf(InputError)
    expect(err.message).toBe('The source object s3://train-out/a.bin changed since it was listed.')
  })

  it('names s3:GetObject when HEAD is refused', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('Forbidden', 403))
    const err = await rejectionOf(run([source('a.bin')]), InputError)
    expect(err.hint).toMatch(/s3:GetObject on arn:aws:s3:::train-out\/a\.bin /)
  })

  it('refuses objects in an Intelligent-Tiering archive tier unless restored', async () => {
    head('cold.bin', { ArchiveStatus: 'DEEP_ARCHIVE_ACCESS', ChecksumCRC32: 'AAAAAA==' })
    head('warming.bin', {
      ArchiveStatus: 'ARCHIVE_ACCESS',
      Restore: 'ongoing-request="true"',
      ChecksumCRC32: 'AAAAAA=='
    })
    head('warm.bin', {
      ArchiveStatus: 'ARCHIVE_ACCESS',
      Restore: 'ongoing-request="false", expiry-date="Fri, 21 Dec 2035 00:00:00 GMT"',
      ChecksumCRC32: 'AAAAAA=='
    })
    const err = await rejectionOf(
      run(['cold.bin', 'warming.bin', 'warm.bin'].map((k) => source(k))),
      InputError
    )
    expect(err.message).toContain(
      'cold.bin (Intelligent-Tiering DEEP_ARCHIVE_ACCESS, not restored)'
    )
    expect(err.message).toContain(
      'warming.bin (Intelligent-Tiering ARCHIVE_ACCESS, restore in progress)'
    )
    expect(err.message).not.toContain('warm.bin (')
    expect(gets()).toEqual([])
  })
})

describe('readSourceIntegrity: SSE-KMS sources', () => {
  const kms = (keyId: string) => ({
    ServerSideEncryption: 'aws:kms' as const,
    SSEKMSKeyId: keyId,
    ChecksumCRC32: 'AAAAAA=='
  })

  it('proves kms:Decrypt with one 1-byte read per key, on a non-empty object using it', async () => {
    head('empty.bin', kms(KMS_KEY))
    head('a.bin', kms(KMS_KEY))
    head('b.bin', kms(KMS_KEY))
    head('c.bin', kms(OTHER_KEY))
    head('plain.bin', { ChecksumCRC32: 'AAAAAA==' })
    contents.set('a.bin', Buffer.from('abcdefghij'))
    contents.set('c.bin', Buffer.from('0123456789'))
    const objects = [
      source('empty.bin', 0),
      source('a.bin'),
      source('b.bin'),
      source('c.bin'),
      source('plain.bin')
    ]
    const { bytesRead } = await run(objects)
    expect(gets()).toEqual([
      { Bucket: 'train-out', Key: 'a.bin', IfMatch: '"etag-a.bin"', Range: 'bytes=0-0' },
      { Bucket: 'train-out', Key: 'c.bin', IfMatch: '"etag-c.bin"', Range: 'bytes=0-0' }
    ])
    expect(bytesRead).toBe(2)
  })

  it.each([
    ['AccessDenied', 403, 'Access Denied'],
    ['KMS.DisabledException', 400, 'The key is disabled'],
    [
      'InvalidArgument',
      400,
      'The ciphertext refers to a customer master key that does not exist (KMS)'
    ]
  ])('names the key and kms:Decrypt when S3 refuses with %s', async (code, status, message) => {
    head('a.bin', kms(KMS_KEY))
    s3Mock.on(GetObjectCommand).rejects(s3Error(code, status, { message }))
    const err = await rejectionOf(run([source('a.bin')]), InputError)
    expect(err.message).toContain(`s3://train-out/a.bin is encrypted with the KMS key ${KMS_KEY}`)
    expect(err.message).toContain(code)
    expect(err.hint).toContain(`kms:Decrypt on ${KMS_KEY}`)
  })

  it('reports other probe failures as what they are', async () => {
    head('a.bin', kms(KMS_KEY))
    s3Mock.on(GetObjectCommand).rejects(s3Error('PreconditionFailed', 412))
    const err = await rejectionOf(run([source('a.bin')]), DeployError)
    expect(err.message).toBe('The source object s3://train-out/a.bin changed since it was listed.')
  })
})

describe('readSourceIntegrity: `read` mode', () => {
  it('streams each object without a known SHA-256 through SHA-256, keeping S3 checksum', async () => {
    const a = Buffer.from('the bytes of shard a, served in chunks')
    const b = Buffer.from('and b')
    contents.set('a.bin', a)
    contents.set('b.bin', b)
    head('a.bin', { ChecksumCRC64NVME: 'nC7n2J+0ELs=', ChecksumType: 'FULL_OBJECT' })
    head('known.bin', { Metadata: { sha256: sha256Hex('known') } })
    const { objects, bytesRead } = await run(
      [source('a.bin', a.length), source('known.bin', 5), source('b.bin', b.length)],
      'read'
    )
    expect(objects.map((o) => o.sha256)).toEqual([sha256Hex(a), sha256Hex('known'), sha256Hex(b)])
    expect(objects[0].checksum).toEqual({
      algorithm: 'CRC64NVME',
      type: 'FULL_OBJECT',
      value: 'nC7n2J+0ELs='
    })
    expect(objects[1].checksum).toBeUndefined()
    expect(bytesRead).toBe(a.length + b.length)
    expect(gets()).toEqual([
      { Bucket: 'train-out', Key: 'a.bin', IfMatch: '"etag-a.bin"', Range: undefined },
      { Bucket: 'train-out', Key: 'b.bin', IfMatch: '"etag-b.bin"', Range: undefined }
    ])
  })

  it('reads `concurrency` objects at once', async () => {
    const objects = Array.from({ length: 6 }, (_, i) => source(`${i}.bin`, 1))
    let inFlight = 0
    let most = 0
    s3Mock.on(GetObjectCommand).callsFake(async () => {
      most = Math.max(most, ++inFlight)
      await new Promise((resolve) => setTimeout(resolve, 5))
      inFlight--
      return { Body: body(Buffer.from('x')) }
    })
    await run(objects, 'read', 2)
    expect(most).toBe(2)
    expect(gets()).toHaveLength(6)
  })

  it('stops at the first failure: an object changed since listed', async () => {
    const objects = Array.from({ length: 6 }, (_, i) => source(`${i}.bin`, 1))
    s3Mock.on(GetObjectCommand).callsFake(async (input: GetObjectCommandInput) => {
      if (input.Key === '0.bin') throw s3Error('PreconditionFailed', 412)
      await new Promise((resolve) => setTimeout(resolve, 5))
      return { Body: body(Buffer.from('x')) }
    })
    const err = await rejectionOf(run(objects, 'read', 2), DeployError)
    expect(err.message).toBe('The source object s3://train-out/0.bin changed since it was listed.')
    // The two started together; none after, also once the other one has ended.
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(gets()).toHaveLength(2)
  })

  it('fails an object whose body ends early', async () => {
    contents.set('a.bin', Buffer.from('short'))
    const err = await rejectionOf(run([source('a.bin', 9)], 'read'), DeployError)
    expect(err.message).toMatch(/^Read 5 of the 9 bytes of s3:\/\/train-out\/a.bin/)
  })

  it('sends nothing once cancelled', async () => {
    const controller = new AbortController()
    controller.abort(new Error('cancelled'))
    await expect(
      readSourceIntegrity([source('a.bin')], 'read', { s3In, signal: controller.signal })
    ).rejects.toThrow('cancelled')
    expect(s3Mock.calls()).toHaveLength(0)
  })

  it('stops reading a body when cancelled mid-stream', async () => {
    const controller = new AbortController()
    const bytes = Buffer.alloc(30, 1)
    s3Mock.on(GetObjectCommand).callsFake(async () => {
      const stream = Readable.from(
        (async function* () {
          yield bytes.subarray(0, 10)
          controller.abort(new Error('cancelled'))
          yield bytes.subarray(10, 20)
          yield bytes.subarray(20)
        })()
      )
      return { Body: stream }
    })
    await expect(
      readSourceIntegrity([source('a.bin', 30)], 'read', { s3In, signal: controller.signal })
    ).rejects.toThrow('cancelled')
  })
})
