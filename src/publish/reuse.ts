import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import { mapLimit } from '../common/concurrency.js'
import { MiB, SHA256_METADATA_KEY } from '../common/constants.js'
import { copyObject, type CopyRequest } from './copy.js'
import {
  AwsError,
  DeployError,
  SourceChangedError,
  explainAwsError,
  httpStatusOf
} from '../common/errors.js'
import { integrityMetadata } from '../common/integrity.js'
import { settleLostRace, writeCondition } from '../aws/lost-race.js'
import { createProgressReporter, formatBytes, type ProgressReporter } from '../common/progress.js'
import { lostRace } from '../aws/publish-lock.js'
import { headObject } from '../aws/stored-objects.js'
import type { CopySource, Logger, PlannedFile } from '../common/types.js'

/** Below this an upload costs about what a copy does (one request): not worth a search. */
export const MIN_REUSE_BYTES = MiB
/** Keys listed at most when searching (20 requests), so a crowded bucket cannot slow every run. */
export const MAX_SEARCHED_KEYS = 20_000
/** Same-size objects whose SHA-256 is read (one HEAD each) per file, newest first. */
const MAX_CANDIDATES_PER_FILE = 4
const HEAD_CONCURRENCY = 16

export interface ReuseSearch {
  bucket: string
  versionPrefix: string
  /** Where identical objects are looked for; '' is the whole bucket. Empty list: nowhere. */
  searchPrefixes: string[]
  logger: Logger
  signal?: AbortSignal
}

interface Candidate {
  key: string
  eTag?: string
  lastModified: number
}

/** Objects under the search prefixes that may hold a file's bytes, and their SHA-256s read so far. */
export interface ReuseCandidates {
  /** Newest first per size; only sizes of the files the search was started for. */
  bySize: Map<number, Candidate[]>
  searched: number
  truncated: boolean
  /** The role may not list the search prefixes (warned): every file is uploaded. */
  denied: boolean
  /** x-amz-meta-sha256 by key, one HEAD each, shared by every file of a size. */
  sha256Of: Map<string, Promise<string | undefined>>
}

/**
 * Lists the search prefixes for objects the size of `files` (those of MIN_REUSE_BYTES or more)
 * and reads the SHA-256 of the newest of each size, as many as `likelyNew` has files of that
 * size. The planner starts it while the files are still being hashed, so the search adds no
 * time of its own; undefined when there is nothing to search for.
 */
export async function listReuseCandidates(
  s3: S3Client,
  files: readonly { size: number }[],
  likelyNew: readonly { size: number }[],
  search: ReuseSearch
): Promise<ReuseCandidates | undefined> {
  const sizes = new Set(files.map((f) => f.size).filter((size) => size >= MIN_REUSE_BYTES))
  if (sizes.size === 0 || search.searchPrefixes.length === 0) return undefined
  const sha256Of = new Map<string, Promise<string | undefined>>()
  let listed: Omit<ReuseCandidates, 'denied' | 'sha256Of'>
  try {
    listed = await listCandidates(s3, sizes, search)
  } catch (err) {
    // Searching is an optimisation: a role allowed to list only its own prefix still deploys.
    if (err instanceof AwsError && err.httpStatus === 403) {
      search.logger.warning(
        `Could not search ${describePrefixes(search.searchPrefixes)} for identical objects (${err.code}): every new file is uploaded. Set \`reuse-from\` to prefixes the role may list, or \`none\`.`
      )
      return { bySize: new Map(), searched: 0, truncated: false, denied: true, sha256Of }
    }
    throw err
  }
  const candidates: ReuseCandidates = { ...listed, denied: false, sha256Of }
  const newest = [...countBySize(likelyNew)].flatMap(([size, count]) =>
    (listed.bySize.get(size) ?? []).slice(0, count)
  )
  await mapLimit(newest, HEAD_CONCURRENCY, (c) => readSha256(s3, candidates, c.key, search))
  return candidates
}

/**
 * Finds, for each file about to be uploaded, an object elsewhere in the bucket that already holds
 * the same bytes (same size, then the same x-amz-meta-sha256 this action records), so that it is
 * copied server-side instead (issue: `v4/` sharing 9 of 10 shards with `v3/`). Read-only. Files
 * it finds a source for come back with action `copy`; the rest unchanged. An index of our own
 * would go stale and need writes on every run; the listing *is* the index, and sizes of multi-GB
 * shards are distinctive enough that few HEADs are needed. `listed` is what listReuseCandidates
 * found for these files' sizes; without it the search prefixes are listed here.
 */
export async function findReusableObjects(
  s3: S3Client,
  files: PlannedFile[],
  search: ReuseSearch,
  listed?: ReuseCandidates
): Promise<PlannedFile[]> {
  // A file planned without its SHA-256 has a size no listed object has: nothing to look for.
  const wanted = files.filter(
    (f) => f.action === 'upload' && f.size >= MIN_REUSE_BYTES && f.sha256 !== undefined
  )
  if (wanted.length === 0) return files
  const candidates = listed ?? (await listReuseCandidates(s3, wanted, [], search))
  if (!candidates || candidates.denied) return files

  // Shards of one model often share a size: each file of a size adds its own candidates.
  const filesOfSize = countBySize(wanted)
  const sources = await mapLimit(wanted, HEAD_CONCURRENCY, async (file) => {
    const sameSize = (candidates.bySize.get(file.size) ?? []).slice(
      0,
      MAX_CANDIDATES_PER_FILE * (filesOfSize.get(file.size) ?? 1)
    )
    for (const candidate of sameSize) {
      search.signal?.throwIfAborted()
      if ((await readSha256(s3, candidates, candidate.key, search)) === file.sha256) {
        return candidate
      }
    }
    return undefined
  })
  const found = new Map<string, CopySource>()
  wanted.forEach((file, i) => {
    const source = sources[i]
    if (source) found.set(file.key, { key: source.key, eTag: source.eTag })
  })

  const copied = wanted.filter((f) => found.has(f.key))
  search.logger.info(
    `Searched ${candidates.searched} object(s) under ${describePrefixes(search.searchPrefixes)}` +
      `${candidates.truncated ? ` (stopped at ${MAX_SEARCHED_KEYS.toLocaleString('en-US')}; narrow it with \`reuse-from\`)` : ''}: ` +
      `${copied.length} of ${wanted.length} new file(s) of ${formatBytes(MIN_REUSE_BYTES)} or more are already stored and will be copied server-side` +
      `${copied.length ? ` (${formatBytes(copied.reduce((sum, f) => sum + f.size, 0))} not uploaded)` : ''}.`
  )
  return files.map((f) => {
    const source = found.get(f.key)
    return source ? { ...f, action: 'copy', copyFrom: source } : f
  })
}

function countBySize(files: readonly { size: number }[]): Map<number, number> {
  const count = new Map<number, number>()
  for (const f of files) count.set(f.size, (count.get(f.size) ?? 0) + 1)
  return count
}

/** The candidate's SHA-256, read once however many files (and callers) ask for it. */
function readSha256(
  s3: S3Client,
  candidates: ReuseCandidates,
  key: string,
  search: Pick<ReuseSearch, 'bucket' | 'signal'>
): Promise<string | undefined> {
  let pending = candidates.sha256Of.get(key)
  if (!pending) {
    pending = headSha256(s3, search.bucket, key, search.signal)
    candidates.sha256Of.set(key, pending)
  }
  return pending
}

function describePrefixes(prefixes: string[]): string {
  return prefixes.map((p) => (p ? `${p}/` : 'the whole bucket')).join(', ')
}

/** Objects of the wanted sizes under the search prefixes, newest first per size. */
async function listCandidates(
  s3: S3Client,
  sizes: Set<number>,
  search: ReuseSearch
): Promise<Pick<ReuseCandidates, 'bySize' | 'searched' | 'truncated'>> {
  const bySize = new Map<number, Candidate[]>()
  const own = `${search.versionPrefix}/`
  let searched = 0
  let truncated = false
  const seen = new Set<string>()
  for (const prefix of search.searchPrefixes) {
    if (searched >= MAX_SEARCHED_KEYS) {
      truncated = true
      break
    }
    const listPrefix = prefix ? `${prefix}/` : ''
    let token: string | undefined
    do {
      search.signal?.throwIfAborted()
      const page = await s3
        .send(
          new ListObjectsV2Command({
            Bucket: search.bucket,
            Prefix: listPrefix,
            ContinuationToken: token,
            MaxKeys: Math.min(1000, MAX_SEARCHED_KEYS - searched)
          }),
          { abortSignal: search.signal }
        )
        .catch((err: unknown) => {
          search.signal?.throwIfAborted()
          throw explainAwsError(err, {
            action: `listing s3://${search.bucket}/${listPrefix} for identical objects`,
            bucket: search.bucket
          })
        })
      for (const obj of page.Contents ?? []) {
        searched++
        // Overlapping prefixes (`''` and `llama`) list a key twice.
        if (obj.Key === undefined || seen.has(obj.Key)) continue
        seen.add(obj.Key)
        if (obj.Key.startsWith(own) || !sizes.has(obj.Size ?? -1)) continue
        const list = bySize.get(obj.Size!) ?? []
        list.push({ key: obj.Key, eTag: obj.ETag, lastModified: obj.LastModified?.getTime() ?? 0 })
        bySize.set(obj.Size!, list)
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined
      if (token && searched >= MAX_SEARCHED_KEYS) {
        truncated = true
        token = undefined
      }
    } while (token)
    if (truncated) break
  }
  for (const list of bySize.values()) list.sort((a, b) => b.lastModified - a.lastModified)
  return { bySize, searched, truncated }
}

/**
 * The SHA-256 this action recorded on the object, or undefined: not ours, gone since, or not
 * readable by this role (which may list the bucket but read only its own prefix).
 */
async function headSha256(
  s3: S3Client,
  bucket: string,
  key: string,
  signal?: AbortSignal
): Promise<string | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), {
      abortSignal: signal
    })
    return head.Metadata?.[SHA256_METADATA_KEY]
  } catch (err) {
    signal?.throwIfAborted()
    const status = httpStatusOf(err)
    if (status === 404 || status === 403) return undefined
    throw explainAwsError(err, { action: `reading s3://${bucket}/${key}`, bucket })
  }
}

export interface CopyFilesOptions {
  bucket: string
  /** The version the files are copied into, for messages. */
  versionPrefix: string
  cacheControl: string
  metadata: Record<string, string>
  /** The copies' tags, URL-encoded (`k=v&…`), e.g. a preview's; none when undefined. */
  tagging?: string
  partSizeBytes?: number
  concurrency: number
  logger: Logger
  signal?: AbortSignal
}

/** What copyFiles did: bytes copied, files to upload after all, keys another run wrote first. */
interface CopiedFiles {
  bytesCopied: number
  fallBack: PlannedFile[]
  alreadyThere: string[]
}

/**
 * Copies the files whose action is `copy` from their sources, with this run's headers (the
 * source's own headers and tags do not follow). A source elsewhere in the bucket that changed or
 * vanished since it was found (ETag precondition failed, 404) is not an error: that file is
 * returned to be uploaded. An `s3://` source's object has nothing to upload instead: its change
 * fails the run. Copies from `s3://` sources report their progress (objects, bytes, rate).
 */
export async function copyFiles(
  s3: S3Client,
  files: PlannedFile[],
  opts: CopyFilesOptions
): Promise<CopiedFiles> {
  const toCopy = files.filter((f) => f.action === 'copy' && f.copyFrom)
  const copied: CopiedFiles = { bytesCopied: 0, fallBack: [], alreadyThere: [] }
  // Each copy is one request (or its parts) that S3 carries out: a few at once keep it busy.
  const perCopy = Math.max(1, Math.floor(opts.concurrency / 2))
  const progress = sourceCopyProgress(toCopy, opts)
  let failed = false
  try {
    await mapLimit(toCopy, Math.max(1, opts.concurrency), async (file) => {
      // After a failure the deploy has failed: start no further copy.
      if (failed) return
      const source = file.copyFrom!
      // The plan chose the copy by the file's SHA-256 or S3's checksum; anything else is a bug.
      if (file.sha256 === undefined && file.checksum === undefined)
        throw new Error(`${file.relativePath} was planned to be copied without its SHA-256.`)
      try {
        await copyObject(s3, copyRequest(file, source, opts), {
          partSize: opts.partSizeBytes,
          concurrency: perCopy,
          signal: opts.signal,
          logger: opts.logger,
          onBytesCopied: source.bucket ? progress.addBytes : undefined
        })
        copied.bytesCopied += file.size
        if (source.bucket) progress.fileDone()
        opts.logger.info(
          `Copied ${file.relativePath} → s3://${opts.bucket}/${file.key} (${formatBytes(file.size)}) server-side from ${sourceName(source)}`
        )
      } catch (err) {
        if (await absorbCopyFailure(s3, err, { file, source }, opts, copied)) return
        failed = true
        throw err instanceof DeployError
          ? err
          : explainAwsError(err, { action: 'copying', bucket: opts.bucket })
      }
    })
  } finally {
    progress.stop()
  }
  return copied
}

/** A progress line every interval (a bar on a terminal) while `s3://` sources are copied. */
function sourceCopyProgress(files: PlannedFile[], opts: CopyFilesOptions): ProgressReporter {
  const fromSources = files.filter((f) => f.copyFrom?.bucket)
  const progress = createProgressReporter({
    verb: 'Copied',
    totalBytes: fromSources.reduce((sum, f) => sum + f.size, 0),
    totalFiles: fromSources.length,
    logger: opts.logger
  })
  progress.begin()
  return progress
}

/** `s3://bucket/key` for an `s3://` source; the key for an object of the destination bucket. */
function sourceName(source: CopySource): string {
  return source.bucket ? `s3://${source.bucket}/${source.key}` : source.key
}

function copyRequest(file: PlannedFile, source: CopySource, opts: CopyFilesOptions): CopyRequest {
  return {
    bucket: opts.bucket,
    sourceBucket: source.bucket,
    sourceKey: source.key,
    destKey: file.key,
    size: file.size,
    contentType: file.contentType,
    cacheControl: opts.cacheControl,
    metadata: { ...opts.metadata, ...integrityMetadata(file) },
    sourceETag: source.eTag,
    tagging: opts.tagging,
    destCondition: writeCondition(file)
  }
}

/**
 * True when a failed copy is no failure of the deploy: another run wrote the same file first
 * (added to `alreadyThere`), or the source changed or vanished since it was found (the file is
 * added to `fallBack`, to be uploaded).
 */
async function absorbCopyFailure(
  s3: S3Client,
  err: unknown,
  { file, source }: { file: PlannedFile; source: CopySource },
  opts: CopyFilesOptions,
  copied: CopiedFiles
): Promise<boolean> {
  if (err instanceof AwsError && lostRace(err) && (await destinationChanged(s3, file, opts))) {
    // The destination's condition failed: another run wrote the key.
    const intended = {
      sha256: file.sha256,
      checksum: file.checksum,
      contentType: file.contentType,
      ...opts
    }
    await settleLostRace(s3, { ...opts, prefix: opts.versionPrefix, ...file }, intended)
    copied.alreadyThere.push(file.key)
    return true
  }
  if (err instanceof AwsError && sourceGone(err) && source.bucket) {
    throw new SourceChangedError(
      `s3://${source.bucket}/${source.key} changed or was deleted after it was listed (${err.code}): ${file.relativePath} was not published, and the manifest was not written.`,
      'Run the step again once the training job has finished writing: it publishes the source as it is then (files already copied are skipped).',
      { cause: err }
    )
  }
  if (err instanceof AwsError && sourceGone(err)) {
    opts.logger.warning(
      `${source.key} changed or was deleted after it was found (${err.code}); uploading ${file.relativePath} instead.`
    )
    copied.fallBack.push({ ...file, action: 'upload', copyFrom: undefined })
    return true
  }
  return false
}

/** Whether the key no longer holds what the plan saw there (nothing, or the object of `storedETag`). */
async function destinationChanged(
  s3: S3Client,
  file: PlannedFile,
  opts: Pick<CopyFilesOptions, 'bucket'>
): Promise<boolean> {
  // An unconditional overwrite cannot have failed on the destination.
  if (file.existed && !file.storedETag) return false
  const stored = await headObject(s3, opts.bucket, file.key)
  return file.existed ? stored?.eTag !== file.storedETag : stored !== undefined
}

function sourceGone(err: AwsError): boolean {
  return err.code === 'PreconditionFailed' || err.code === 'NoSuchKey' || err.httpStatus === 404
}
