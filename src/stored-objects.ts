import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import { SHA256_METADATA_KEY } from './constants.js'
import { explainAwsError, httpStatusOf } from './errors.js'

/** Reading what the bucket holds: listings and HEADs, as the planners need them. */

/** An object as ListObjectsV2 reports it. */
export interface ListedObject {
  size: number
  eTag?: string
}

/** Every key under `<prefix>/` with its size and ETag, paginated (one request per 1,000 keys). */
export async function listPrefix(
  s3: S3Client,
  bucket: string,
  prefix: string
): Promise<Map<string, ListedObject>> {
  const objects = new Map<string, ListedObject>()
  let token: string | undefined
  do {
    const page = await s3
      .send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token })
      )
      .catch((err: unknown) => {
        throw explainAwsError(err, { action: `listing s3://${bucket}/${prefix}/`, bucket })
      })
    for (const obj of page.Contents ?? []) {
      if (obj.Key !== undefined) objects.set(obj.Key, { size: obj.Size ?? 0, eTag: obj.ETag })
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
