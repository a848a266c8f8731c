import {
  bulletList,
  DeployError,
  explainAwsError,
  httpStatusOf,
  InputError
} from '../common/errors.js'

/** What S3's refusals about an `s3://` source mean to the person running the deploy. */

/** `s3://bucket/key`: how an object of a source is named in messages and in `absolutePath`. */
export const s3Url = (bucket: string, key: string): string => `s3://${bucket}/${key}`

/** The permission listing (and HeadBucket) needs on a source bucket. */
export function listPermissionHint(bucket: string): string {
  return (
    `The role needs s3:ListBucket on arn:aws:s3:::${bucket}; for a bucket of another account, ` +
    "that bucket's policy must grant it to the role too."
  )
}

/** Listing a source was refused. */
export function listDenied(bucket: string, prefix: string): InputError {
  return new InputError(
    `Listing the source ${s3Url(bucket, prefix)} was denied.`,
    listPermissionHint(bucket)
  )
}

/** Reading (HEAD or GET) a source object was refused. */
function readDenied(bucket: string, key: string): InputError {
  return new InputError(
    `Reading the source object ${s3Url(bucket, key)} was denied.`,
    `The role needs s3:GetObject on arn:aws:s3:::${bucket}/${key} (e.g. granted on arn:aws:s3:::${bucket}/*: a copy reads the source); ` +
      "for a bucket of another account, that bucket's policy must grant it to the role too."
  )
}

/**
 * Whether an archived object (Glacier storage classes, Intelligent-Tiering archive tiers) can be
 * read, from HEAD's `x-amz-restore`: `ongoing-request="false"` once a restored copy is there.
 */
export function restoreState(restore: string | undefined): 'restored' | 'restoring' | 'archived' {
  if (restore === undefined) return 'archived'
  return /ongoing-request="false"/.test(restore) ? 'restored' : 'restoring'
}

/** Archived source objects, each with why (`GLACIER, not restored`), refused before any write. */
export function archivedError(objects: { url: string; why: string }[]): InputError {
  return new InputError(
    `${objects.length} source object(s) are archived and cannot be copied until they are restored:${bulletList(objects.map((o) => `${o.url} (${o.why})`))}`,
    'Restore them first, e.g. `aws s3api restore-object --bucket BUCKET --key KEY --restore-request Days=7` ' +
      '(hours for Glacier Flexible Retrieval, up to 48 for Deep Archive; `--restore-request {}` for Intelligent-Tiering archive tiers), ' +
      'and run again once the restore is complete; ' +
      'or leave them out with a `!s3://…` line.'
  )
}

/**
 * A failed HEAD or GET of a source object, the listed ETag sent as `If-Match`: changed or
 * deleted since listed, refused, or another AWS failure.
 */
export function sourceReadError(
  err: unknown,
  object: { bucket: string; key: string },
  action: string
): DeployError {
  const url = s3Url(object.bucket, object.key)
  const again =
    'Run again once nothing writes the source any more: a new listing takes the new object.'
  switch (httpStatusOf(err)) {
    case 412:
      return new DeployError(`The source object ${url} changed since it was listed.`, again)
    case 404:
      return new DeployError(`The source object ${url} was deleted since it was listed.`, again)
    case 403:
      return readDenied(object.bucket, object.key)
  }
  return explainAwsError(err, { action: `${action} ${url}`, bucket: object.bucket })
}
