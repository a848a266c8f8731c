import { createHash } from 'node:crypto'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { ConcurrentPublishError } from '../common/errors.js'
import { serializeManifest } from './manifest.js'
import { writeManifest } from './manifest-store.js'
import {
  installMockBucket,
  publishVersion,
  type MockObject
} from '../../__tests__/helpers/mock-bucket.js'
import { recordingHandler } from '../../__fixtures__/http-handler.js'

const s3Mock = mockClient(S3Client)
const s3 = new S3Client({ region: 'us-east-1' })
let objects: Map<string, MockObject>

beforeEach(() => {
  s3Mock.reset()
  objects = installMockBucket(s3Mock, 'models')
})

describe('writeManifest, conditionally', () => {
  const manifestOf = (files: Record<string, string>) => {
    const scratch = new Map<string, MockObject>()
    return publishVersion(scratch, 'models', 'v1', files)
  }

  it('creates a new manifest only if absent (If-None-Match)', async () => {
    const body = serializeManifest(manifestOf({ 'a.bin': 'A' }))
    await expect(
      writeManifest(s3, 'models', 'v1/manifest.json', body, { condition: { IfNoneMatch: '*' } })
    ).resolves.toBe('written')
    expect(s3Mock.commandCalls(PutObjectCommand)[0].args[0].input.IfNoneMatch).toBe('*')
    expect(objects.get('v1/manifest.json')?.body.toString()).toBe(body)
  })

  it('counts a manifest another run wrote with the same files as unchanged', async () => {
    publishVersion(objects, 'models', 'v1', { 'a.bin': 'A' })
    const stored = objects.get('v1/manifest.json')?.body
    // Same files, another run's provenance.
    const ours = { ...manifestOf({ 'a.bin': 'A' }), createdAt: '2030-01-01T00:00:00.000Z' }

    await expect(
      writeManifest(s3, 'models', 'v1/manifest.json', serializeManifest(ours), {
        condition: { IfNoneMatch: '*' }
      })
    ).resolves.toBe('unchanged')
    expect(objects.get('v1/manifest.json')?.body).toBe(stored)
  })

  it('fails, keeping the other run’s manifest, when it lists other files', async () => {
    publishVersion(objects, 'models', 'v1', { 'a.bin': 'A' })
    const stored = objects.get('v1/manifest.json')?.body

    const err = await writeManifest(
      s3,
      'models',
      'v1/manifest.json',
      serializeManifest(manifestOf({ 'a.bin': 'other A' })),
      { condition: { IfMatch: '"an-etag-seen-before"' } }
    ).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(ConcurrentPublishError)
    expect((err as Error).message).toBe(
      'Another run wrote s3://models/v1/manifest.json while this run was publishing v1, listing ' +
        'other files; it was kept and this run stopped.'
    )
    expect(objects.get('v1/manifest.json')?.body).toBe(stored)
  })
})

describe('writeManifest, on the wire (a real client, default AWS checksum mode)', () => {
  // The class-wide mock would answer for this client too.
  beforeEach(() => s3Mock.restore())

  it('sends the bytes once encoded, signed and checked by their SHA-256', async () => {
    const handler = recordingHandler(() => ({ status: 200, headers: { etag: '"m"' } }))
    const client = new S3Client({
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      requestHandler: handler
    })
    const body = serializeManifest(
      publishVersion(new Map(), 'models', 'v1', { 'é.bin': 'A', 'b.bin': 'B' })
    )
    const sha256 = createHash('sha256').update(body).digest('hex')

    await expect(writeManifest(client, 'models', 'v1/manifest.json', body)).resolves.toBe('written')
    const [sent] = handler.sent
    expect(sent.body.toString()).toBe(body)
    expect(sent.headers['x-amz-content-sha256']).toBe(sha256)
    expect(sent.headers['x-amz-checksum-sha256']).toBe(
      Buffer.from(sha256, 'hex').toString('base64')
    )
    expect(sent.headers['x-amz-meta-sha256']).toBe(sha256)
  })
})
