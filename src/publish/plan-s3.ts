import type { S3Client } from '@aws-sdk/client-s3'
import {
  headObject,
  listPrefix,
  objectDifference,
  type StoredObject
} from '../aws/stored-objects.js'
import { mapLimit } from '../common/concurrency.js'
import { objectKey } from '../common/paths.js'
import type { Logger, PlannedFile, SourceObject } from '../common/types.js'
import { contentTypeFor } from './content-type.js'
import { checkKeys } from './files.js'
import { manifestKey } from './manifest.js'
import { readStoredManifest } from './manifest-store.js'
import { immutableError, type Plan, type PlanInputs } from './plan.js'

/** HEAD requests at once when checking existing keys. */
const HEAD_CONCURRENCY = 16

export type SourcePlanInputs = Pick<
  PlanInputs,
  | 'bucket'
  | 'versionPrefix'
  | 'contentType'
  | 'overwrite'
  | 'manifest'
  | 'cacheControl'
  | 'metadata'
>

/**
 * Decides, read-only, what happens to each object of `s3://` sources: a key that already holds
 * the same bytes (the same SHA-256 or S3 checksum, recorded in its metadata) and headers is
 * skipped; a new key is copied server-side from the source; a key holding anything else is an
 * error unless `overwrite` is set (then it is copied over, replacing only the object seen). Nothing
 * is hashed: the sources' integrity was read from S3 (s3-integrity.ts).
 */
export async function planSourceCopies(
  s3: S3Client,
  sources: SourceObject[],
  inputs: SourcePlanInputs,
  deps: { logger: Logger; signal?: AbortSignal }
): Promise<Plan> {
  checkKeys(sources, inputs.versionPrefix, { manifest: inputs.manifest })
  const keys = sources.map((source) => objectKey(inputs.versionPrefix, source.relativePath))
  const existing = await listPrefix(s3, inputs.bucket, inputs.versionPrefix, deps.signal)
  const sameSize = [...sources.keys()].filter(
    (i) => existing.get(keys[i])?.size === sources[i].size
  )
  const manifestObjectKey = manifestKey(inputs.versionPrefix)
  const [stored, storedManifest] = await Promise.all([
    mapLimit(sameSize, HEAD_CONCURRENCY, (i) => headObject(s3, inputs.bucket, keys[i])),
    inputs.manifest && existing.has(manifestObjectKey)
      ? readStoredManifest(s3, inputs.bucket, manifestObjectKey)
      : undefined
  ])
  deps.signal?.throwIfAborted()
  const headed = new Map(sameSize.map((i, n) => [i, stored[n]]))
  const differences = new Map<string, string>()
  const files = sources.map((source, i) => {
    const listed = existing.get(keys[i])
    const decided = decideSource(source, keys[i], listed && { ...listed, ...headed.get(i) }, inputs)
    if (decided.difference) differences.set(keys[i], decided.difference)
    return decided.file
  })
  const conflicts = files.filter((f) => differences.has(f.key))
  if (conflicts.length > 0 && !inputs.overwrite) {
    throw immutableError(conflicts, differences, inputs.bucket)
  }
  const copies = files.filter((f) => f.action === 'copy').length
  deps.logger.info(
    `${files.length - copies} of ${files.length} source object(s) already published under ${inputs.versionPrefix}/; ${copies} to copy server-side.`
  )
  return { files, existing, storedManifest, sources, ...knownIntegrity() }
}

/** One object's action, and why the key it goes to cannot be skipped when it holds something. */
function decideSource(
  source: SourceObject,
  key: string,
  stored: (Partial<StoredObject> & { size: number; eTag?: string }) | undefined,
  inputs: Pick<SourcePlanInputs, 'contentType' | 'cacheControl' | 'metadata'>
): { file: PlannedFile; difference?: string } {
  const contentType = contentTypeFor(source.relativePath, inputs.contentType)
  const file: PlannedFile = {
    absolutePath: source.absolutePath,
    relativePath: source.relativePath,
    size: source.size,
    key,
    ...(source.sha256 !== undefined ? { sha256: source.sha256 } : {}),
    ...(source.checksum ? { checksum: source.checksum } : {}),
    contentType,
    action: 'copy',
    existed: false,
    copyFrom: { bucket: source.bucket, key: source.key, eTag: source.eTag }
  }
  // Not listed, or gone by the time of the HEAD: a new key.
  if (!stored || (stored.size === source.size && stored.metadata === undefined)) return { file }
  const difference =
    stored.size !== source.size
      ? `different bytes: ${stored.size} bytes stored, ${source.size} bytes in s3://${source.bucket}/${source.key}`
      : objectDifference(stored as StoredObject, {
          sha256: source.sha256,
          checksum: source.checksum,
          contentType,
          cacheControl: inputs.cacheControl,
          metadata: inputs.metadata
        })
  const action = difference ? 'copy' : 'skip'
  return { file: { ...file, action, existed: true, storedETag: stored.eTag }, difference }
}

/** A plan of copies hashes nothing: every SHA-256 (or S3 checksum) is known already. */
function knownIntegrity(): Pick<Plan, 'hashesOf' | 'hashed' | 'stopHashing'> {
  return {
    hashesOf: (file) => {
      if (file.sha256 === undefined) {
        return Promise.reject(new Error(`${file.relativePath} is copied, never uploaded.`))
      }
      return Promise.resolve({ sha256: file.sha256, partCrc32: [] })
    },
    hashed: (files) => Promise.resolve(files),
    stopHashing: () => undefined
  }
}
