import { createHash } from 'node:crypto'
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { SHA256_METADATA_KEY } from '../common/constants.js'
import { ConcurrentPublishError, explainAwsError } from '../common/errors.js'
import { lostRace } from '../aws/publish-lock.js'
import type { Manifest } from '../common/types.js'
import { KNOWN_PAYLOAD_HASH_POSITION, knownPayloadHash } from './upload.js'

/**
 * The manifest changes only when the version's files do, so clients may cache it briefly; it is
 * invalidated in CloudFront whenever it is rewritten.
 */
export const MANIFEST_CACHE_CONTROL = 'public, max-age=60'

/** The manifest stored under the key, or undefined when there is none or it is not ours. */
export async function readStoredManifest(
  s3: S3Client,
  bucket: string,
  key: string
): Promise<Manifest | undefined> {
  try {
    const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    const parsed = JSON.parse((await Body?.transformToString('utf-8')) ?? '') as Partial<Manifest>
    return Array.isArray(parsed.files) ? (parsed as Manifest) : undefined
  } catch (err) {
    if (err instanceof SyntaxError) return undefined
    throw explainAwsError(err, {
      action: `reading the existing manifest s3://${bucket}/${key}`,
      bucket
    })
  }
}

/**
 * True when the stored manifest describes the same published files, so rewriting it would only
 * change provenance fields (run id, time) and force an invalidation for nothing.
 */
export function sameFiles(stored: Manifest, next: Manifest): boolean {
  return (
    stored.versionPrefix === next.versionPrefix &&
    JSON.stringify(stored.distribution) === JSON.stringify(next.distribution) &&
    JSON.stringify(stored.files) === JSON.stringify(next.files)
  )
}

/**
 * Writes the manifest, conditionally: created only if absent, or replacing only the stored one
 * the plan read. When another run wrote it meanwhile, it is read again: the same files mean
 * 'unchanged' (that run published the same version); different ones fail the run.
 */
export async function writeManifest(
  s3: S3Client,
  bucket: string,
  key: string,
  body: string,
  opts: {
    /** Object tags, URL-encoded, e.g. a preview's (so its manifest expires with its files). */
    tagging?: string
    condition?: { IfNoneMatch?: string; IfMatch?: string }
  } = {}
): Promise<'written' | 'unchanged'> {
  // Bytes once, hashed once: given a string (~300 bytes a file), the SDK would encode it again to
  // sign it, to checksum it on AWS and to send it.
  const bytes = Buffer.from(body)
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const onAws = (await s3.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED'
  const put = new PutObjectCommand({
    Bucket: bucket,
    Key: key,
    Body: bytes,
    ContentType: 'application/json',
    CacheControl: MANIFEST_CACHE_CONTROL,
    Metadata: { [SHA256_METADATA_KEY]: sha256 },
    ...opts.condition,
    ...(opts.tagging ? { Tagging: opts.tagging } : {}),
    // As for the files (upload.ts): S3 checks the SHA-256 in place of a CRC32 the SDK computes.
    ...(onAws ? { ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64') } : {})
  })
  put.middlewareStack.add(knownPayloadHash(sha256), KNOWN_PAYLOAD_HASH_POSITION)
  try {
    await s3.send(put)
    return 'written'
  } catch (err) {
    if (!lostRace(err)) {
      throw explainAwsError(err, {
        action: `writing the manifest to s3://${bucket}/${key}`,
        bucket
      })
    }
  }
  const stored = await readStoredManifest(s3, bucket, key).catch(() => undefined)
  if (stored && sameFiles(stored, JSON.parse(body) as Manifest)) return 'unchanged'
  throw new ConcurrentPublishError(
    `Another run wrote s3://${bucket}/${key} while this run was publishing ${key.slice(0, key.lastIndexOf('/'))}, ` +
      'listing other files; it was kept and this run stopped.',
    'Two runs published one version at once. Publish different files under a new `version-prefix`.'
  )
}
