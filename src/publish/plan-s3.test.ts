import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { ImmutableVersionError } from '../common/errors.js'
import type { SourceObject } from '../common/types.js'
import { planSourceCopies, type SourcePlanInputs } from './plan-s3.js'
import { silentLogger } from '../../__fixtures__/logger.js'

const s3Mock = mockClient(S3Client)
const s3 = new S3Client({ region: 'us-east-1' })

const inputs: SourcePlanInputs = {
  bucket: 'models',
  versionPrefix: 'v3',
  contentType: undefined,
  overwrite: false,
  manifest: true,
  cacheControl: 'public, max-age=31536000, immutable',
  metadata: { framework: 'onnx' }
}
const SHA = 'ab'.repeat(32)
const CRC = { algorithm: 'CRC64NVME', type: 'FULL_OBJECT', value: 'nC7n2J+0ELs=' } as const

function source(
  relativePath: string,
  size: number,
  integrity: Partial<SourceObject>
): SourceObject {
  const key = `runs/42/${relativePath}`
  return {
    bucket: 'training',
    region: 'eu-west-1',
    key,
    eTag: `"${relativePath}"`,
    absolutePath: `s3://training/${key}`,
    relativePath,
    size,
    ...integrity
  }
}

/** HEAD of a copy this action made with `inputs`, recording `integrity` in its metadata. */
function stored(size: number, integrity: Record<string, string>, eTag = '"dest"') {
  return {
    ContentLength: size,
    ETag: eTag,
    ContentType: 'application/octet-stream',
    CacheControl: inputs.cacheControl,
    Metadata: { framework: 'onnx', ...integrity }
  }
}

function listed(objects: { Key: string; Size: number }[]): void {
  s3Mock.on(ListObjectsV2Command).resolves({
    Contents: objects.map((o) => ({ ...o, ETag: '"dest"' })),
    IsTruncated: false
  })
}

beforeEach(() => s3Mock.reset())

describe('planSourceCopies', () => {
  it('copies new keys from their source, carrying the listed ETag, and skips keys in place', async () => {
    listed([
      { Key: 'v3/weights.bin', Size: 100 },
      { Key: 'v3/model.onnx', Size: 50 }
    ])
    s3Mock
      .on(HeadObjectCommand, { Key: 'v3/weights.bin' })
      .resolves(stored(100, { checksum: 'CRC64NVME:nC7n2J+0ELs=' }))
      .on(HeadObjectCommand, { Key: 'v3/model.onnx' })
      .resolves(stored(50, { sha256: SHA }))
    const plan = await planSourceCopies(
      s3,
      [
        source('weights.bin', 100, { checksum: CRC }),
        source('model.onnx', 50, { sha256: SHA, checksum: CRC }),
        source('tokenizer.json', 10, { checksum: CRC })
      ],
      inputs,
      { logger: silentLogger() }
    )
    expect(plan.files.map((f) => [f.relativePath, f.action, f.existed])).toEqual([
      ['weights.bin', 'skip', true],
      // Its SHA-256 agrees; its CRC is not recorded there, and needs not be.
      ['model.onnx', 'skip', true],
      ['tokenizer.json', 'copy', false]
    ])
    expect(plan.files[2]).toMatchObject({
      key: 'v3/tokenizer.json',
      contentType: 'application/json',
      checksum: CRC,
      copyFrom: { bucket: 'training', key: 'runs/42/tokenizer.json', eTag: '"tokenizer.json"' }
    })
    expect(plan.sources).toHaveLength(3)
    // Nothing of the sources is read: the destination is listed and HEADed only.
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.Bucket)).toEqual([
      'models',
      'models'
    ])
    await expect(plan.hashed(plan.files)).resolves.toEqual(plan.files)
  })

  it('refuses keys holding other bytes, listing each with why, before anything is written', async () => {
    listed([
      { Key: 'v3/weights.bin', Size: 100 },
      { Key: 'v3/model.onnx', Size: 51 },
      { Key: 'v3/legacy.bin', Size: 7 }
    ])
    s3Mock
      .on(HeadObjectCommand, { Key: 'v3/weights.bin' })
      .resolves(stored(100, { checksum: 'CRC64NVME:AAAAAAAAAAA=' }))
      .on(HeadObjectCommand, { Key: 'v3/legacy.bin' })
      .resolves({ ...stored(7, {}), Metadata: {} })
    const planning = planSourceCopies(
      s3,
      [
        source('weights.bin', 100, { checksum: CRC }),
        source('model.onnx', 50, { sha256: SHA }),
        source('legacy.bin', 7, { checksum: CRC })
      ],
      inputs,
      { logger: silentLogger() }
    )
    await expect(planning).rejects.toThrow(ImmutableVersionError)
    await expect(planning).rejects.toThrow(
      /3 key\(s\).*\n- weights\.bin → s3:\/\/models\/v3\/weights\.bin \(different bytes: checksum differs\)\n- model\.onnx → .*\(different bytes: 51 bytes stored, 50 bytes in s3:\/\/training\/runs\/42\/model\.onnx\)\n- legacy\.bin → .*stored without x-amz-meta-checksum/
    )
  })

  it('with overwrite, copies over what differs, replacing only the object seen', async () => {
    listed([{ Key: 'v3/weights.bin', Size: 100 }])
    s3Mock.on(HeadObjectCommand).resolves(stored(100, { sha256: 'cd'.repeat(32) }, '"seen"'))
    const plan = await planSourceCopies(
      s3,
      [source('weights.bin', 100, { sha256: SHA })],
      { ...inputs, overwrite: true },
      { logger: silentLogger() }
    )
    expect(plan.files[0]).toMatchObject({ action: 'copy', existed: true, storedETag: '"seen"' })
  })

  it('plans 10,000 objects, over 1 TB in all, with one listing and no HEAD of a new key', async () => {
    const count = 10_000
    const size = 100 * 1024 ** 3 // 100 GiB each: sizes are numbers, no bytes exist
    const sources = Array.from({ length: count }, (_, i) =>
      source(`shard-${String(i).padStart(5, '0')}.safetensors`, i === 0 ? size : 1e8, {
        checksum: CRC
      })
    )
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [], IsTruncated: false })
    const plan = await planSourceCopies(s3, sources, inputs, { logger: silentLogger() })
    expect(plan.files).toHaveLength(count)
    expect(plan.files.every((f) => f.action === 'copy')).toBe(true)
    expect(plan.files.reduce((sum, f) => sum + f.size, 0)).toBe(size + (count - 1) * 1e8)
    expect(s3Mock.commandCalls(ListObjectsV2Command)).toHaveLength(1)
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(0)
  })
})
