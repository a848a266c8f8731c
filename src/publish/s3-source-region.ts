import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3'
import { explainAwsError, httpStatusOf, InputError } from '../common/errors.js'
import { listPermissionHint } from './s3-source-errors.js'

/**
 * The region of a source bucket, from HeadBucket: its `BucketRegion` when the client's region
 * is right, else the `x-amz-bucket-region` header S3 sends with the redirect (301), the
 * signature error (400) or the refusal (403). A refusal with a region is not final: a bucket
 * policy may grant s3:ListBucket only for some prefixes, which HeadBucket (no prefix) fails,
 * so the listing decides. A store that names no region (S3-compatible ones) is taken to be in
 * the client's.
 */
export async function sourceRegion(
  s3: S3Client,
  bucket: string,
  signal?: AbortSignal
): Promise<string> {
  try {
    const head = await s3.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal })
    return head.BucketRegion ?? (await s3.config.region())
  } catch (err) {
    signal?.throwIfAborted()
    const status = httpStatusOf(err)
    const region = regionOfError(err)
    if (region && (status === 301 || status === 400 || status === 403)) return region
    if (status === 404) {
      throw new InputError(
        `The source bucket s3://${bucket} does not exist.`,
        'Check the bucket name in `artifacts` (S3 bucket names are global; a deleted bucket is gone for every account).'
      )
    }
    if (status === 403) {
      throw new InputError(
        `Access to the source bucket s3://${bucket} was denied (HeadBucket).`,
        listPermissionHint(bucket)
      )
    }
    throw explainAwsError(err, { action: `finding the region of s3://${bucket}`, bucket })
  }
}

interface RegionCarrier {
  BucketRegion?: string
  $response?: { headers?: Record<string, string | undefined> }
}

/** The bucket's region as a failed HeadBucket reports it, if it does. */
function regionOfError(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const e = err as RegionCarrier
  return e.$response?.headers?.['x-amz-bucket-region'] ?? e.BucketRegion
}
