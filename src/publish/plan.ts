import { access, constants } from 'node:fs/promises'
import type { S3Client } from '@aws-sdk/client-s3'
import { mapLimit } from '../common/concurrency.js'
import { contentTypeFor } from './content-type.js'
import { DeployError, ImmutableVersionError } from '../common/errors.js'
import { checkKeys } from './files.js'
import { withFields } from '../common/objects.js'
import { objectKey } from '../common/paths.js'
import { HASH_WORKERS, hashFile, type FileHashes } from './hash.js'
import { HashQueue } from './hash-queue.js'
import { manifestKey } from './manifest.js'
import { readStoredManifest } from './manifest-store.js'
import { multipartPartSize } from './part-size.js'
import {
  findReusableObjects,
  listReuseCandidates,
  type ReuseCandidates,
  type ReuseSearch
} from './reuse.js'
import {
  headObject,
  listPrefix,
  objectDifference,
  type ListedObject,
  type StoredObject
} from '../aws/stored-objects.js'
import type {
  DeployInputs,
  LocalFile,
  Logger,
  Manifest,
  PlannedFile,
  SourceObject
} from '../common/types.js'

/** HEAD requests at once when checking existing keys. */
const HEAD_CONCURRENCY = 16

/**
 * How far the hashing for uploads runs ahead of them. Each file is read twice (hash, then send),
 * and a model larger than the runner's memory otherwise has its early files evicted before they
 * are sent (6 GiB in 5 GiB: 1.42x the bytes read from disk, 1.32x with this). 1 GiB left the next
 * file's hash late on a slow disk; 2 GiB took 0.94x the time of no limit there (README).
 */
export const HASH_LOOKAHEAD_BYTES = 2 * 1024 ** 3

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
  | 'dryRun'
>

export interface Plan {
  /** Each file's action: skip (the key holds its bytes), copy (another key does) or upload. */
  files: PlannedFile[]
  /** Size and ETag of every object under `<version-prefix>/` before this run, by key. */
  existing: Map<string, ListedObject>
  /** The version's manifest as stored before this run, when `manifest` is on and there is one. */
  storedManifest?: Manifest
  /** The `s3://` sources' objects this plan copies (plan-s3.ts); undefined for local files. */
  sources?: SourceObject[]
  /**
   * The hashes of one of `files`, for its upload, which is about to start: at once when the plan
   * read them, otherwise once the hashing still running gets to it (files are hashed in order, up
   * to HASH_LOOKAHEAD_BYTES ahead of the uploads, and asking moves that window on).
   */
  hashesOf(file: PlannedFile): Promise<FileHashes>
  /**
   * `files` with every SHA-256 filled in (in place), waiting for those still read (an `s3://`
   * source's object may have only S3's checksum).
   */
  hashed<T extends PlannedFile>(files: T[]): Promise<T[]>
  /** Ends the hashing still running: the deploy failed or was cancelled. */
  stopHashing(reason: unknown): void
}

/**
 * Decides, read-only and before any byte is sent, what happens to each file: keys that already
 * hold the same bytes (same SHA-256) and headers are skipped; keys holding anything else are an
 * error unless `overwrite` is set; files whose bytes another key in `reuse`'s prefixes holds are
 * copied from it. Also rejects keys S3 cannot take, files the part-size rules cannot upload and
 * files that cannot be read.
 *
 * Every request (listing, HEADs, the stored manifest, the search for identical objects) is made
 * while the files are hashed, and the plan waits only for the hashes a decision needs: files
 * whose key holds an object of their size, and files the size of an object found by the search
 * (all of them in a dry run, which reports every SHA-256). The rest go on hashing in order while
 * the uploads start, so on a real link only the first new file's hash adds to the deploy's time.
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
  const { keys, partSizes } = checkFiles(local, inputs)
  const hashing = await startHashing(s3, local, partSizes, { hash, signal, dryRun: inputs.dryRun })
  let read: Awaited<ReturnType<typeof readAndHash>>
  try {
    read = await readAndHash(s3, local, keys, inputs, hashing, { reuse: deps.reuse, signal })
  } catch (err) {
    // A failed request stops the hashing too: a multi-GB file must not hold up the error.
    hashing.queue.stop(err)
    throw err
  }
  const { version, known } = read
  const { existing, storedManifest, candidates } = version
  logger.info(
    `Hashed ${known.size} of ${local.length} file(s)` +
      `${known.size < local.length ? ' (the others are hashed as they are uploaded)' : ''}; ` +
      `${existing.size} object(s) already under ${inputs.versionPrefix}/.`
  )

  const { files, differences } = decideFiles(local, keys, version, known, inputs)
  const conflicts = files.filter((f) => differences.has(f.key))
  if (conflicts.length > 0 && !inputs.overwrite) {
    const err = immutableError(conflicts, differences, inputs.bucket)
    hashing.queue.stop(err)
    throw err
  }
  const hashes = hashesFor(keys, hashing.queue)
  return {
    files: deps.reuse
      ? await findReusableObjects(s3, files, deps.reuse, candidates).catch((err: unknown) => {
          hashing.queue.stop(err)
          throw err
        })
      : files,
    existing,
    storedManifest,
    ...hashes
  }
}

/**
 * Each file's key and part size: rejects keys S3 cannot take and files the part-size rules
 * cannot upload.
 */
function checkFiles(
  local: LocalFile[],
  inputs: Pick<
    PlanInputs,
    'versionPrefix' | 'manifest' | 'multipartThresholdBytes' | 'partSizeBytes'
  >
): { keys: string[]; partSizes: (number | undefined)[] } {
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
  return { keys, partSizes }
}

/** The files' hashing, running in order, and which of them a decision waits for. */
interface Hashing {
  queue: HashQueue
  /** Files whose hashes a decision waits for. */
  needed: Set<number>
  /** Hashes these files first, and has the plan wait for them. */
  need(indices: number[]): void
}

async function startHashing(
  s3: S3Client,
  local: LocalFile[],
  partSizes: (number | undefined)[],
  opts: { hash: typeof hashFile; signal?: AbortSignal; dryRun: boolean }
): Promise<Hashing> {
  // On AWS every part is sent with its CRC32: computed in the hashing read, not a second one.
  const partCrc32 = (await s3.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED'
  const queue = new HashQueue(
    local.map((file) => file.size),
    // No more than the pool runs: a file waiting inside the pool could not be moved ahead.
    { workers: HASH_WORKERS, aheadBytes: HASH_LOOKAHEAD_BYTES },
    (i, hashSignal) =>
      opts.hash(local[i].absolutePath, {
        signal: hashSignal,
        partSize: partCrc32 ? partSizes[i] : undefined
      }),
    opts.signal
  )
  const needed = new Set<number>(opts.dryRun ? local.keys() : [])
  const need = (indices: number[]): void => {
    for (const i of indices) needed.add(i)
    queue.first(indices)
  }
  return { queue, needed, need }
}

/** What the version holds before this run, as far as the decisions need to know. */
interface StoredVersion {
  existing: Map<string, ListedObject>
  /** What HEAD says of each file (by index) whose key holds an object of its size. */
  stored: Map<number, StoredObject | undefined>
  storedManifest?: Manifest
  candidates?: ReuseCandidates
}

/** Every request the plan makes, then the hashes the decisions wait for. */
async function readAndHash(
  s3: S3Client,
  local: LocalFile[],
  keys: string[],
  inputs: Pick<PlanInputs, 'bucket' | 'versionPrefix' | 'manifest'>,
  hashing: Hashing,
  opts: { reuse?: ReuseSearch; signal?: AbortSignal }
): Promise<{ version: StoredVersion; known: Map<number, FileHashes> }> {
  const version = await readVersion(s3, local, keys, inputs, hashing, opts.reuse)
  const known = await neededHashes(local, hashing)
  // Cancelled while no hash was awaited: stop here all the same, before any upload.
  opts.signal?.throwIfAborted()
  return { version, known }
}

/**
 * Lists the version, then HEADs the keys of the files' sizes, reads the stored manifest and
 * searches for identical objects at once; each asks for the hashes its decisions need.
 */
async function readVersion(
  s3: S3Client,
  local: LocalFile[],
  keys: string[],
  inputs: Pick<PlanInputs, 'bucket' | 'versionPrefix' | 'manifest'>,
  hashing: Hashing,
  reuse?: ReuseSearch
): Promise<StoredVersion> {
  const existing = await listPrefix(s3, inputs.bucket, inputs.versionPrefix)
  // Only keys of the file's size are read: a different size proves different bytes.
  const sameSize = [...local.keys()].filter((i) => existing.get(keys[i])?.size === local[i].size)
  hashing.need(sameSize)
  const manifestObjectKey = manifestKey(inputs.versionPrefix)
  const likelyNew = local.filter((_, i) => existing.get(keys[i])?.size !== local[i].size)
  const [stored, storedManifest, candidates] = await Promise.all([
    mapLimit(sameSize, HEAD_CONCURRENCY, (i) => headObject(s3, inputs.bucket, keys[i])),
    inputs.manifest && existing.has(manifestObjectKey)
      ? readStoredManifest(s3, inputs.bucket, manifestObjectKey)
      : undefined,
    // A re-deploy searches nowhere; a same-size key that turns out to differ is searched later.
    reuse && likelyNew.length > 0
      ? listReuseCandidates(s3, local, likelyNew, reuse).then((found) => {
          // A file the size of an object found may be copied from it: its hash decides.
          hashing.need([...local.keys()].filter((i) => found?.bySize.has(local[i].size)))
          return found
        })
      : undefined
  ])
  return {
    existing,
    stored: new Map(sameSize.map((i, n) => [i, stored[n]])),
    storedManifest,
    candidates
  }
}

/** The hashes of the files a decision needs, by index; the others need only be readable. */
async function neededHashes(
  local: LocalFile[],
  hashing: Hashing
): Promise<Map<number, FileHashes>> {
  const [known] = await Promise.all([
    Promise.all([...hashing.needed].map(async (i) => [i, await hashing.queue.of(i)] as const)),
    // The files hashed while uploading must be readable now, before any byte is sent.
    mapLimit(
      [...local.keys()].filter((i) => !hashing.needed.has(i)),
      HEAD_CONCURRENCY,
      (i) => checkReadable(local[i])
    )
  ])
  return new Map(known)
}

/** Each file's action, and why each existing key that differs cannot be skipped. */
function decideFiles(
  local: LocalFile[],
  keys: string[],
  version: StoredVersion,
  known: Map<number, FileHashes>,
  inputs: Pick<PlanInputs, 'contentType' | 'cacheControl' | 'metadata'>
): { files: PlannedFile[]; differences: Map<string, string> } {
  /** Why each existing key cannot be skipped. */
  const differences = new Map<string, string>()
  const files = local.map((localFile, i): PlannedFile => {
    const crcs = known.get(i)?.partCrc32 ?? []
    const file = crcs.length > 0 ? withFields(localFile, { partCrc32: crcs }) : localFile
    const planned = decideFile(file, keys[i], known.get(i)?.sha256, {
      listed: version.existing.get(keys[i]),
      headed: version.stored.get(i),
      inputs
    })
    if (planned.difference) differences.set(keys[i], planned.difference)
    return planned.file
  })
  return { files, differences }
}

function decideFile(
  file: LocalFile & Pick<PlannedFile, 'partCrc32'>,
  key: string,
  sha256: string | undefined,
  opts: {
    listed?: ListedObject
    headed?: StoredObject
    inputs: Pick<PlanInputs, 'contentType' | 'cacheControl' | 'metadata'>
  }
): { file: PlannedFile; difference?: string } {
  const { inputs, headed: storedObject } = opts
  const contentType = contentTypeFor(file.relativePath, inputs.contentType)
  const storedSize = opts.listed?.size
  // Not listed, or gone by the time of the HEAD: a new key.
  if (storedSize === undefined || (storedSize === file.size && !storedObject))
    return {
      file: withFields(file, { key, sha256, contentType, action: 'upload', existed: false })
    }
  // The HEAD's ETag is the newer, when there was one.
  const storedETag = storedObject?.eTag ?? opts.listed?.eTag
  const difference =
    storedSize !== file.size
      ? `different bytes: ${storedSize} bytes stored, ${file.size} bytes here`
      : objectDifference(storedObject!, {
          sha256: sha256!,
          contentType,
          cacheControl: inputs.cacheControl,
          metadata: inputs.metadata
        })
  return {
    file: withFields(file, {
      key,
      sha256,
      contentType,
      action: difference ? 'upload' : 'skip',
      existed: true,
      storedETag
    }),
    difference
  }
}

/** The plan's access to the hashes: those it read at once, the others from the queue. */
function hashesFor(
  keys: string[],
  queue: HashQueue
): Pick<Plan, 'hashesOf' | 'hashed' | 'stopHashing'> {
  const indexOf = new Map(keys.map((key, i) => [key, i]))
  const hashesOf = (file: PlannedFile): Promise<FileHashes> =>
    file.sha256 !== undefined
      ? Promise.resolve({ sha256: file.sha256, partCrc32: file.partCrc32 ?? [] })
      : queue.take(indexOf.get(file.key)!)
  return {
    hashesOf,
    hashed: async (some) => {
      // Filled in place: thousands of files are not copied once more for the manifest.
      const unhashed = some.filter((file) => file.sha256 === undefined)
      const read = await Promise.all(unhashed.map(hashesOf))
      unhashed.forEach((file, i) => {
        const { sha256, partCrc32: crcs } = read[i]
        Object.assign(file, { sha256, ...(crcs.length > 0 ? { partCrc32: crcs } : {}) })
      })
      return some
    },
    stopHashing: (reason) => queue.stop(reason)
  }
}

async function checkReadable(file: LocalFile): Promise<void> {
  try {
    await access(file.absolutePath, constants.R_OK)
  } catch (err) {
    throw new DeployError(
      `Cannot read ${file.absolutePath} (${file.relativePath}): ${(err as Error).message}`,
      'The file changed, lost its read permission or disappeared after it was found. Nothing was uploaded; run the step again once it is readable.',
      { cause: err }
    )
  }
}

export function immutableError(
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
