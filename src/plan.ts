import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import { mapLimit } from './concurrency.js'
import { SHA256_METADATA_KEY } from './constants.js'
import { contentTypeFor } from './content-type.js'
import { ImmutableVersionError, explainAwsError, httpStatusOf } from './errors.js'
import { checkKeys, objectKey } from './files.js'
import { sha256File } from './hash.js'
import { choosePartSize } from './part-size.js'
import type { DeployInputs, LocalFile, Logger, PlannedFile } from './types.js'

/** Files hashed at once: enough to keep a disk busy, few enough not to thrash page cache. */
const HASH_CONCURRENCY = 4
/** HEAD requests at once when checking existing keys. */
const HEAD_CONCURRENCY = 16

export type PlanInputs = Pick<
  DeployInputs,
  | 'bucket'
  | 'versionPrefix'
  | 'contentType'
  | 'overwrite'
  | 'manifest'
  | 'multipartThresholdBytes'
  | 'partSizeBytes'
>

export interface Plan {
  files: PlannedFile[]
  /** Size of every object under `<version-prefix>/` before this run, by key. */
  existing: Map<string, number>
}

/** An object already stored under a key we are about to write. */
interface StoredObject {
  size: number
  sha256?: string
}

/**
 * Decides, read-only and before any byte is sent, what happens to each file: keys that already
 * hold the same bytes (same SHA-256) are skipped; keys holding different bytes are an error
 * unless `overwrite` is set. Also rejects keys S3 cannot take and files the part-size rules
 * cannot upload.
 */
export async function planDeploy(
  s3: S3Client,
  local: LocalFile[],
  inputs: PlanInputs,
  logger: Logger
): Promise<Plan> {
  checkKeys(local, inputs.versionPrefix, { manifest: inputs.manifest })
  for (const file of local) {
    if (file.size >= inputs.multipartThresholdBytes) choosePartSize(file.size, inputs.partSizeBytes)
  }

  const [existing, hashes] = await Promise.all([
    listPrefix(s3, inputs.bucket, inputs.versionPrefix),
    mapLimit(local, HASH_CONCURRENCY, (file) => sha256File(file.absolutePath))
  ])
  logger.info(
    `Hashed ${local.length} file(s); ${existing.size} object(s) already under ${inputs.versionPrefix}/.`
  )

  const unverifiable = new Set<string>()
  const files = await mapLimit(local, HEAD_CONCURRENCY, async (file, i): Promise<PlannedFile> => {
    const key = objectKey(inputs.versionPrefix, file.relativePath)
    const sha256 = hashes[i]
    const contentType = contentTypeFor(file.relativePath, inputs.contentType)
    const storedSize = existing.get(key)
    // A different size proves different bytes without a HEAD request.
    const stored =
      storedSize === file.size
        ? await headObject(s3, inputs.bucket, key)
        : storedSize === undefined
          ? undefined
          : { size: storedSize }
    if (!stored) return { ...file, key, sha256, contentType, action: 'upload', existed: false }
    if (stored.size === file.size && stored.sha256 === undefined) unverifiable.add(key)
    const same = stored.size === file.size && stored.sha256 === sha256
    return { ...file, key, sha256, contentType, action: same ? 'skip' : 'upload', existed: true }
  })

  const conflicts = files.filter((f) => f.existed && f.action === 'upload')
  if (conflicts.length > 0 && !inputs.overwrite) {
    throw immutableError(conflicts, unverifiable, inputs.bucket)
  }
  return { files, existing }
}

function immutableError(
  conflicts: PlannedFile[],
  unverifiable: Set<string>,
  bucket: string
): ImmutableVersionError {
  const shown = conflicts
    .slice(0, 20)
    .map(
      (f) =>
        `${f.relativePath} → s3://${bucket}/${f.key}` +
        (unverifiable.has(f.key)
          ? ' (same size, but stored without x-amz-meta-sha256, so its bytes cannot be compared)'
          : '')
    )
  const more =
    conflicts.length > shown.length ? `\n- … and ${conflicts.length - shown.length} more` : ''
  return new ImmutableVersionError(
    `${conflicts.length} key(s) already hold different bytes (released versions are immutable); nothing was uploaded:\n- ${shown.join('\n- ')}${more}`,
    'Publish under a new `version-prefix`, or set `overwrite: true` to replace these objects (their CloudFront paths are then invalidated).'
  )
}

/** Every key under `<prefix>/` with its size, paginated (one request per 1,000 keys). */
async function listPrefix(
  s3: S3Client,
  bucket: string,
  prefix: string
): Promise<Map<string, number>> {
  const existing = new Map<string, number>()
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
      if (obj.Key !== undefined) existing.set(obj.Key, obj.Size ?? 0)
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return existing
}

/** The stored object's size and recorded SHA-256, or undefined when it no longer exists. */
async function headObject(
  s3: S3Client,
  bucket: string,
  key: string
): Promise<StoredObject | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
    return { size: head.ContentLength ?? 0, sha256: head.Metadata?.[SHA256_METADATA_KEY] }
  } catch (err) {
    // Listed a moment ago but deleted since: nothing to protect.
    if (httpStatusOf(err) === 404) return undefined
    throw explainAwsError(err, { action: `reading s3://${bucket}/${key}`, bucket })
  }
}
