/** Reading back what the action left in the emulator: stored bytes, versions, invalidations. */
import { createHash } from 'node:crypto'
import {
  GetInvalidationCommand,
  ListInvalidationsCommand,
  type CloudFrontClient
} from '@aws-sdk/client-cloudfront'
import {
  GetObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  type S3Client
} from '@aws-sdk/client-s3'

export const sha256 = (bytes: Uint8Array): string =>
  createHash('sha256').update(bytes).digest('hex')

export interface StoredObject {
  bytes: Buffer
  sha256: string
  contentType?: string
  cacheControl?: string
  etag?: string
  metadata: Record<string, string>
}

export async function getStored(s3: S3Client, bucket: string, key: string): Promise<StoredObject> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  const bytes = Buffer.from((await res.Body?.transformToByteArray()) ?? new Uint8Array())
  return {
    bytes,
    sha256: sha256(bytes),
    contentType: res.ContentType,
    cacheControl: res.CacheControl,
    etag: res.ETag,
    metadata: res.Metadata ?? {}
  }
}

/**
 * Every key of the bucket (or under `prefix`) with its version ids and delete markers: proves
 * what was (not) written.
 */
export async function versionSnapshot(
  s3: S3Client,
  bucket: string,
  prefix?: string
): Promise<Record<string, string[]>> {
  const snapshot: Record<string, { id: string; at: number }[]> = {}
  let KeyMarker: string | undefined
  let VersionIdMarker: string | undefined
  do {
    const page = await s3.send(
      new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, VersionIdMarker })
    )
    for (const v of page.Versions ?? []) {
      ;(snapshot[v.Key!] ??= []).push({ id: v.VersionId!, at: v.LastModified?.getTime() ?? 0 })
    }
    for (const m of page.DeleteMarkers ?? []) {
      ;(snapshot[m.Key!] ??= []).push({
        id: `delete:${m.VersionId}`,
        at: m.LastModified?.getTime() ?? 0
      })
    }
    KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined
    VersionIdMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined
  } while (KeyMarker)
  return Object.fromEntries(
    Object.entries(snapshot)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, versions]) => [key, versions.map((v) => v.id).sort()])
  )
}

/** Every key starting with `prefix` (e.g. `v1/`), all pages, sorted. */
export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let ContinuationToken: string | undefined
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken })
    )
    for (const o of page.Contents ?? []) keys.push(o.Key!)
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (ContinuationToken)
  return keys.sort()
}

/** The multipart uploads still open, as `<key> <upload id>`, sorted: what an abort must leave empty. */
export async function openUploads(
  s3: S3Client,
  bucket: string,
  prefix?: string
): Promise<string[]> {
  const { Uploads } = await s3.send(
    new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix })
  )
  return (Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`).sort()
}

/** The keys of the open multipart uploads, sorted. */
export async function openUploadKeys(
  s3: S3Client,
  bucket: string,
  prefix?: string
): Promise<string[]> {
  return (await openUploads(s3, bucket, prefix)).map((u) => u.slice(0, u.lastIndexOf(' ')))
}

export async function bucketNames(s3: S3Client): Promise<string[]> {
  const res = await s3.send(new ListBucketsCommand({}))
  return (res.Buckets ?? []).map((b) => b.Name!).sort()
}

export interface StoredInvalidation {
  id: string
  status: string
  callerReference?: string
  paths: string[]
}

/** The distribution's invalidations with their paths (ListInvalidations + GetInvalidation). */
export async function listInvalidations(
  cloudfront: CloudFrontClient,
  distributionId: string
): Promise<StoredInvalidation[]> {
  const ids: string[] = []
  let Marker: string | undefined
  do {
    const page = await cloudfront.send(
      new ListInvalidationsCommand({ DistributionId: distributionId, Marker })
    )
    for (const item of page.InvalidationList?.Items ?? []) ids.push(item.Id!)
    Marker = page.InvalidationList?.IsTruncated ? page.InvalidationList.NextMarker : undefined
  } while (Marker)
  const found: StoredInvalidation[] = []
  for (const id of ids) {
    const { Invalidation } = await cloudfront.send(
      new GetInvalidationCommand({ DistributionId: distributionId, Id: id })
    )
    found.push({
      id,
      status: Invalidation?.Status ?? '',
      callerReference: Invalidation?.InvalidationBatch?.CallerReference,
      paths: [...(Invalidation?.InvalidationBatch?.Paths?.Items ?? [])]
    })
  }
  return found
}

/**
 * Everything a deploy could change: the buckets, the bucket's object versions and open multipart
 * uploads, the distribution's invalidations. Equal before and after proves a run changed nothing.
 */
export async function emulatorState(
  s3: S3Client,
  cloudfront: CloudFrontClient,
  bucket: string,
  distributionId: string
) {
  return {
    buckets: await bucketNames(s3),
    versions: await versionSnapshot(s3, bucket),
    invalidations: await listInvalidations(cloudfront, distributionId),
    multipartUploads: await openUploads(s3, bucket)
  }
}
