/**
 * Verification against real stored objects: moto_server's path-style bucket URL stands in for
 * `url-base`. The bucket set up as the tutorial does it is private, so moto answers an anonymous
 * request 403, like a distribution that restricts viewer access; a request carrying a
 * `Signature` parameter it takes as presigned and serves (moto does not check CloudFront
 * signatures: the unit tests check those against a public key).
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { signatureExpiry, signUrls } from '../../src/cdn/signing.js'
import { objectUrl } from '../../src/cdn/urls.js'
import { verificationError, verifyPublished, type VerifyTarget } from '../../src/cdn/verify.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import { generateSigningKeys } from '../../__fixtures__/signing.js'
import { sha256 as sha } from '../helpers/emulator-state.js'
import { startTestWorld, type TestWorld } from '../helpers/emulator-world.js'

const BUCKET = 'verify-models'
/** A few small objects; one key with spaces and non-ASCII characters. */
const CONTENTS: Record<string, Buffer> = {
  'v7/model.onnx': Buffer.alloc(256 * 1024, 1),
  'v7/weights/my model – é.safetensors': Buffer.alloc(1024 * 1024, 2),
  'v7/tokenizer/日本語.json': Buffer.from('{"vocab":["a","b"]}')
}

let moto: TestWorld | undefined
let s3: S3Client
let urlBase: string
let targets: VerifyTarget[]
const key = { keyPairId: 'K2JCJMDEHXQW5F', privateKey: generateSigningKeys().pkcs8 }

async function put(key: string, body: Buffer, sha256: string): Promise<void> {
  await s3.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata: { sha256 } })
  )
}

beforeAll(async () => {
  moto = await startTestWorld({ bucket: BUCKET })
  s3 = moto.s3
  urlBase = `${moto.emulator.endpoint}/${BUCKET}`
  targets = []
  for (const [k, body] of Object.entries(CONTENTS)) {
    await put(k, body, sha(body))
    targets.push({
      relativePath: k.slice(3),
      url: objectUrl(urlBase, k),
      size: body.length,
      sha256: sha(body)
    })
  }
})
afterAll(() => moto?.stop())

const signed = () => signUrls(targets, key, signatureExpiry(3600))

describe('verifyPublished against stored objects', () => {
  it('passes: the signed URLs serve the stored size and SHA-256, the unsigned ones are refused', async () => {
    const result = await verifyPublished(targets, { logger: silentLogger(), signedUrls: signed() })
    expect(result.results.map((r) => [r.relativePath, r.ok, r.status, r.problems])).toEqual(
      targets.map((t) => [t.relativePath, true, 200, []])
    )
    expect(result.verified).toBe(true)
  })

  it('fails with 403 and the bucket-policy hint when the private bucket is read without a signature', async () => {
    const sleeps: number[] = []
    const result = await verifyPublished(targets.slice(0, 2), {
      logger: silentLogger(),
      concurrency: 1,
      sleep: async (ms) => void sleeps.push(ms)
    })
    expect(result.verified).toBe(false)
    expect(result.results.map((r) => [r.status, r.kinds])).toEqual([
      [403, ['refused']],
      [403, ['refused']]
    ])
    // Retried while it could be a cached error, then no longer.
    expect(sleeps).toEqual([2000, 4000, 8000])
    expect(verificationError(result).hint).toMatch(/bucket policy lets the distribution read/)
  })

  // Last: it changes the stored objects.
  it('fails naming the URL and the difference when objects are overwritten with other bytes', async () => {
    const [model, weights] = targets
    // Same size, other bytes (stored with their own checksum), and another size.
    const other = Buffer.alloc(model.size, 9)
    await put('v7/model.onnx', other, sha(other))
    const shorter = Buffer.alloc(1000, 2)
    await put('v7/weights/my model – é.safetensors', shorter, weights.sha256!)

    const sleeps: number[] = []
    const result = await verifyPublished(targets, {
      logger: silentLogger(),
      signedUrls: signed(),
      sleep: async (ms) => void sleeps.push(ms)
    })
    expect(result.verified).toBe(false)
    expect(result.results.map((r) => [r.ok, r.problems])).toEqual([
      [false, [`x-amz-meta-sha256 ${sha(other)}, expected ${model.sha256}`]],
      [false, [`Content-Length 1000, expected ${weights.size}`]],
      [true, []]
    ])
    expect(sleeps).toEqual([])

    const err = verificationError(result)
    expect(err.message).toBe(
      [
        'Verification failed for 2 of 3 published file(s):',
        `- ${urlBase}/v7/model.onnx: x-amz-meta-sha256 ${sha(other)}, expected ${model.sha256}`,
        `- ${urlBase}/v7/weights/my%20model%20%E2%80%93%20%C3%A9.safetensors: Content-Length 1000, expected ${weights.size}`
      ].join('\n')
    )
    expect(err.hint).toMatch(/an edge still caches an older copy/)
  })
})
