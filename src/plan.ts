import type { S3Client } from '@aws-sdk/client-s3'
import { mapLimit } from './concurrency.js'
import { SHA256_METADATA_KEY } from './constants.js'
import { contentTypeFor } from './content-type.js'
import { ImmutableVersionError } from './errors.js'
import { checkKeys, objectKey } from './files.js'
import { hashFile } from './hash.js'
import { manifestKey } from './manifest.js'
import { readStoredManifest } from './manifest-store.js'
import { multipartPartSize } from './part-size.js'
import { findReusableObjects, listReuseCandidates, type ReuseSearch } from './reuse.js'
import { headObject, listPrefix, sameMetadata, type StoredObject } from './stored-objects.js'
import type { DeployInputs, LocalFile, Logger, Manifest, PlannedFile } from './types.js'

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
  | 'cacheControl'
  | 'metadata'
>

export interface Plan {
  /** Each file's action: skip (the key holds its bytes), copy (another key does) or upload. */
  files: PlannedFile[]
  /** Size of every object under `<version-prefix>/` before this run, by key. */
  existing: Map<string, number>
  /** The version's manifest as stored before this run, when `manifest` is on and there is one. */
  storedManifest?: Manifest
}

/**
 * Decides, read-only and before any byte is sent, what happens to each file: keys that already
 * hold the same bytes (same SHA-256) and headers are skipped; keys holding anything else are an
 * error unless `overwrite` is set; files whose bytes another key in `reuse`'s prefixes holds are
 * copied from it. Also rejects keys S3 cannot take and files the part-size rules cannot upload.
 * Every request (listing, HEADs, the stored manifest, the search for identical objects) is made
 * while the files are hashed, so on a re-deploy the hashing is all the time the plan takes.
 */
export async function planDeploy(
  s3: S3Client,
  local: LocalFile[],
  inputs: PlanInputs,
  deps: {
    logger: Logger
    signal?: AbortSignal
    /** Where identical objects may be copied from; none searched when undefined. */
    reuse?: ReuseSearch
    /** For tests: what reads a file's hashes. */
    hash?: typeof hashFile
  }
): Promise<Plan> {
  const { logger, signal, hash = hashFile } = deps
  checkKeys(local, inputs.versionPrefix, { manifest: inputs.manifest })
  // Also checks every file against S3's part limits before anything is read or sent.
  const partSizes = local.map((file) =>
    multipartPartSize(
      file.size,
      inputs.multipartThresholdBytes,
      inputs.partSizeBytes,
      file.relativePath
    )
  )
  const keys = local.map((file) => objectKey(inputs.versionPrefix, file.relativePath))
  // On AWS every part is sent with its CRC32: computed in the hashing read, not a second one.
  const partCrc32 = (await s3.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED'

  // A failed request stops the hashing too: a multi-GB file must not hold up the error.
  const failed = new AbortController()
  const hashSignal = signal ? AbortSignal.any([signal, failed.signal]) : failed.signal
  const hashing = mapLimit(local, HASH_CONCURRENCY, (file, i) =>
    hash(file.absolutePath, {
      signal: hashSignal,
      partSize: partCrc32 ? partSizes[i] : undefined
    })
  )
  const reading = listPrefix(s3, inputs.bucket, inputs.versionPrefix).then(async (objects) => {
    const existing = new Map([...objects].map(([key, o]) => [key, o.size]))
    const manifestObjectKey = manifestKey(inputs.versionPrefix)
    // Only keys of the file's size are read: a different size proves different bytes.
    const likelyNew = local.filter((file, i) => existing.get(keys[i]) !== file.size)
    const [stored, storedManifest, candidates] = await Promise.all([
      mapLimit(local, HEAD_CONCURRENCY, async (file, i) =>
        existing.get(keys[i]) === file.size ? headObject(s3, inputs.bucket, keys[i]) : undefined
      ),
      inputs.manifest && existing.has(manifestObjectKey)
        ? readStoredManifest(s3, inputs.bucket, manifestObjectKey)
        : undefined,
      // A re-deploy searches nowhere; a same-size key that turns out to differ is searched later.
      deps.reuse && likelyNew.length > 0
        ? listReuseCandidates(s3, local, likelyNew, deps.reuse)
        : undefined
    ])
    return { existing, stored, storedManifest, candidates }
  })
  const [hashes, { existing, stored, storedManifest, candidates }] = await Promise.all([
    hashing,
    reading
  ]).catch((err: unknown) => {
    failed.abort(err)
    throw err
  })
  logger.info(
    `Hashed ${local.length} file(s); ${existing.size} object(s) already under ${inputs.versionPrefix}/.`
  )

  /** Why each existing key cannot be skipped. */
  const differences = new Map<string, string>()
  const files = local.map((localFile, i): PlannedFile => {
    const { sha256, partCrc32: crcs } = hashes[i]
    const file = crcs.length > 0 ? { ...localFile, partCrc32: crcs } : localFile
    const key = keys[i]
    const contentType = contentTypeFor(file.relativePath, inputs.contentType)
    const storedSize = existing.get(key)
    const storedObject: StoredObject | undefined =
      storedSize === undefined
        ? undefined
        : storedSize === file.size
          ? stored[i]
          : { size: storedSize, metadata: {} }
    // Not listed, or gone by the time of the HEAD: a new key.
    if (!storedObject)
      return { ...file, key, sha256, contentType, action: 'upload', existed: false }
    const difference = describeDifference(
      storedObject,
      { size: file.size, sha256, contentType },
      inputs
    )
    if (difference) differences.set(key, difference)
    return {
      ...file,
      key,
      sha256,
      contentType,
      action: difference ? 'upload' : 'skip',
      existed: true
    }
  })

  const conflicts = files.filter((f) => differences.has(f.key))
  if (conflicts.length > 0 && !inputs.overwrite) {
    throw immutableError(conflicts, differences, inputs.bucket)
  }
  return {
    files: deps.reuse ? await findReusableObjects(s3, files, deps.reuse, candidates) : files,
    existing,
    storedManifest
  }
}

/**
 * Why the stored object is not what this run would write, or undefined when it is. Headers
 * count too: skipping an object whose metadata differs would leave the manifest describing
 * something S3 does not hold.
 */
function describeDifference(
  stored: StoredObject,
  local: { size: number; sha256: string; contentType: string },
  inputs: Pick<PlanInputs, 'cacheControl' | 'metadata'>
): string | undefined {
  if (stored.size !== local.size) {
    return `different bytes: ${stored.size} bytes stored, ${local.size} bytes here`
  }
  if (stored.sha256 === undefined) {
    return 'same size, but stored without x-amz-meta-sha256, so its bytes cannot be compared'
  }
  if (stored.sha256 !== local.sha256) return 'different bytes: SHA-256 differs'
  const changed: string[] = []
  if (stored.contentType !== local.contentType) {
    changed.push(`content-type ${stored.contentType ?? '(none)'} → ${local.contentType}`)
  }
  if (stored.cacheControl !== inputs.cacheControl) {
    changed.push(`cache-control ${stored.cacheControl ?? '(none)'} → ${inputs.cacheControl}`)
  }
  const storedMeta = { ...stored.metadata }
  delete storedMeta[SHA256_METADATA_KEY]
  if (!sameMetadata(storedMeta, inputs.metadata)) {
    changed.push(`metadata ${JSON.stringify(storedMeta)} → ${JSON.stringify(inputs.metadata)}`)
  }
  return changed.length > 0 ? `same bytes, different headers: ${changed.join('; ')}` : undefined
}

function immutableError(
  conflicts: PlannedFile[],
  differences: Map<string, string>,
  bucket: string
): ImmutableVersionError {
  const shown = conflicts
    .slice(0, 20)
    .map((f) => `${f.relativePath} → s3://${bucket}/${f.key} (${differences.get(f.key)})`)
  const more =
    conflicts.length > shown.length ? `\n- … and ${conflicts.length - shown.length} more` : ''
  return new ImmutableVersionError(
    `${conflicts.length} key(s) already hold a different object (released versions are immutable); nothing was uploaded:\n- ${shown.join('\n- ')}${more}`,
    'Publish under a new `version-prefix`, or set `overwrite: true` to replace these objects (their CloudFront paths are then invalidated).'
  )
}
