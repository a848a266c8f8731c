import {
  integrityFromMetadata,
  integrityMetadata,
  sameBytes,
  type Integrity
} from '../common/integrity.js'
import {
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client
} from '@aws-sdk/client-s3'
import { CHECKSUM_METADATA_KEY, SHA256_METADATA_KEY } from '../common/constants.js'
import { explainAwsError, httpStatusOf } from '../common/errors.js'
import { LOCK_FILE_NAME } from './publish-lock.js'
import { redact } from '../common/secrets.js'

/** What the bucket holds: listings and HEADs as the planners need them, and batched deletes. */

/** An object as ListObjectsV2 reports it. */
export interface ListedObject {
  size: number
  eTag?: string
}

/**
 * Every key under `<prefix>/` with its size and ETag, paginated (one request per 1,000 keys),
 * except the prefix's lock (publish-lock.ts), which is no file of the version or alias.
 */
export async function listPrefix(
  s3: S3Client,
  bucket: string,
  prefix: string,
  signal?: AbortSignal
): Promise<Map<string, ListedObject>> {
  const objects = new Map<string, ListedObject>()
  let token: string | undefined
  do {
    signal?.throwIfAborted()
    const page = await s3
      .send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: `${prefix}/`,
          ContinuationToken: token
        }),
        { abortSignal: signal }
      )
      .catch((err: unknown) => {
        // A cancelled listing reports the cancellation, not an AWS failure.
        signal?.throwIfAborted()
        throw explainAwsError(err, { action: `listing s3://${bucket}/${prefix}/`, bucket })
      })
    for (const obj of page.Contents ?? []) {
      // The prefix checked again: an S3-compatible store may ignore it, and `pr-7/` must never
      // bring `pr-70/` into a plan (clean-up deletes what it lists).
      if (obj.Key?.startsWith(`${prefix}/`) && obj.Key !== `${prefix}/${LOCK_FILE_NAME}`) {
        objects.set(obj.Key, { size: obj.Size ?? 0, eTag: obj.ETag })
      }
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return objects
}

/** What HEAD says of a stored object. */
export interface StoredObject {
  size: number
  eTag?: string
  /** The SHA-256 this action records (x-amz-meta-sha256); undefined on objects not ours. */
  sha256?: string
  contentType?: string
  cacheControl?: string
  metadata: Record<string, string>
}

/** Whether two sets of user metadata are equal (S3 returns keys lower-cased, as we store them). */
export function sameMetadata(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k])
}

/**
 * What a write would store: the file's SHA-256 (or, for an `s3://` source's object, S3's checksum)
 * and the headers it is sent with.
 */
export interface IntendedObject extends Integrity {
  contentType: string
  cacheControl: string
  /** User metadata without the integrity entries (integrityMetadata). */
  metadata: Record<string, string>
}

/**
 * Why the stored object, of the file's size, is not what this run would write, or undefined when
 * it is. Headers count too: skipping an object whose metadata differs would leave the manifest
 * describing something S3 does not hold.
 */
export function objectDifference(
  stored: StoredObject,
  intended: IntendedObject
): string | undefined {
  const same = sameBytes(integrityFromMetadata(stored.metadata), intended)
  if (same === undefined) {
    const recorded = Object.keys(integrityMetadata(intended)).map((k) => `x-amz-meta-${k}`)
    return `same size, but stored without ${recorded.join(' or ')}, so its bytes cannot be compared`
  }
  if (!same)
    return `different bytes: ${intended.sha256 !== undefined ? 'SHA-256' : 'checksum'} differs`
  const changed: string[] = []
  if (stored.contentType !== intended.contentType) {
    changed.push(`content-type ${stored.contentType ?? '(none)'} → ${intended.contentType}`)
  }
  if (stored.cacheControl !== intended.cacheControl) {
    changed.push(`cache-control ${stored.cacheControl ?? '(none)'} → ${intended.cacheControl}`)
  }
  const storedMeta = { ...stored.metadata }
  delete storedMeta[SHA256_METADATA_KEY]
  delete storedMeta[CHECKSUM_METADATA_KEY]
  if (!sameMetadata(storedMeta, intended.metadata)) {
    changed.push(`metadata ${JSON.stringify(storedMeta)} → ${JSON.stringify(intended.metadata)}`)
  }
  return changed.length > 0 ? `same bytes, different headers: ${changed.join('; ')}` : undefined
}

/** The object's size, recorded SHA-256 and headers, or undefined when it does not exist. */
export async function headObject(
  s3: S3Client,
  bucket: string,
  key: string
): Promise<StoredObject | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
    return {
      size: head.ContentLength ?? 0,
      eTag: head.ETag,
      sha256: head.Metadata?.[SHA256_METADATA_KEY],
      contentType: head.ContentType,
      cacheControl: head.CacheControl,
      metadata: head.Metadata ?? {}
    }
  } catch (err) {
    // Listed a moment ago but deleted since.
    if (httpStatusOf(err) === 404) return undefined
    throw explainAwsError(err, { action: `reading s3://${bucket}/${key}`, bucket })
  }
}

/** DeleteObjects takes at most this many keys per request. */
export const MAX_KEYS_PER_DELETE = 1000

/** A key S3 would not delete, with what it said. */
export interface RefusedDelete {
  key: string
  code: string
  message: string
}

/**
 * Deletes the keys with DeleteObjects, 1,000 a request, in order (Quiet: only refusals come
 * back). Keys S3 refuses are collected and returned, so every batch is tried; a failed request
 * throws. The signal stops it between batches, with the signal's reason; `onBatch` is told the
 * running count of deleted keys.
 */
export async function deleteKeys(
  s3: S3Client,
  bucket: string,
  keys: string[],
  /** `what`: the keys, as the error names them, e.g. `object(s) under s3://b/pr-7/`. */
  opts: { what: string; signal?: AbortSignal; onBatch?: (deleted: number) => void }
): Promise<{ deleted: number; refused: RefusedDelete[] }> {
  const refused: RefusedDelete[] = []
  let deleted = 0
  for (let i = 0; i < keys.length; i += MAX_KEYS_PER_DELETE) {
    opts.signal?.throwIfAborted()
    const batch = keys.slice(i, i + MAX_KEYS_PER_DELETE)
    const { Errors } = await s3
      .send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true }
        }),
        { abortSignal: opts.signal }
      )
      .catch((err: unknown) => {
        opts.signal?.throwIfAborted()
        throw explainAwsError(err, {
          action: `deleting ${batch.length} ${opts.what} (${deleted} deleted before)`,
          bucket
        })
      })
    const refusedHere = new Set<string>()
    for (const e of Errors ?? []) {
      const key = e.Key ?? '(no key)'
      refusedHere.add(key)
      refused.push({ key, code: e.Code ?? 'Error', message: redact(e.Message ?? '') })
    }
    deleted += batch.filter((key) => !refusedHere.has(key)).length
    opts.onBatch?.(deleted)
  }
  return { deleted, refused }
}
