import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client
} from '@aws-sdk/client-s3'
import { mapLimit } from '../common/concurrency.js'
import { MANIFEST_FILE_NAME, PREVIEW_TAG } from '../common/constants.js'
import { DeployError, awsErrorCode, explainAwsError, httpStatusOf } from '../common/errors.js'
import { toInvalidationPath } from '../cdn/invalidation.js'
import { deleteKeys, listPrefix, type RefusedDelete } from '../aws/stored-objects.js'
import { compareCodeUnits } from '../publish/manifest.js'
import {
  abortFailureWarning,
  abortMultipartUploads,
  describeUpload,
  type MultipartUpload
} from '../aws/multipart-tracker.js'
import { formatBytes } from '../common/progress.js'
import type { Logger } from '../common/types.js'

/**
 * The bytes read from a manifest to learn its `versionPrefix`: serializeManifest writes
 * `schemaVersion` then `versionPrefix` first, and keys are at most 1,024 bytes, so this holds it.
 */
const MANIFEST_HEAD_BYTES = 4096
/** The start of a manifest as serializeManifest writes it (aliases are byte copies of one). */
const CANONICAL_HEAD = /^\{\s*"schemaVersion":\s*\d+,\s*"versionPrefix":\s*("(?:[^"\\]|\\.)*")/
/** Keys named in a refusal or failure message; the rest are counted. */
const SHOWN_KEYS = 20

/** The `Tagging` value of PutObject / CreateMultipartUpload for a preview upload (URL-encoded). */
export function previewTagging(): string {
  return `${encodeURIComponent(PREVIEW_TAG.key)}=${encodeURIComponent(PREVIEW_TAG.value)}`
}

export interface FindAliasesOptions {
  /** Alias prefixes outside the version's parent to check too (e.g. a root `latest`). */
  extraAliases?: string[]
  /** Manifests read at once. */
  concurrency: number
  signal?: AbortSignal
}

/**
 * The alias prefixes whose manifest names `versionPrefix` as its version, sorted. Candidates are
 * the version's siblings (one ListObjectsV2 per 1,000) and `extraAliases`; for each, only the
 * first 4 KiB of `<candidate>/manifest.json` is read (one ranged GET), however many files it
 * lists. A candidate without a manifest, or with one this action did not write, is no alias.
 */
export async function findAliasesOf(
  s3: S3Client,
  bucket: string,
  versionPrefix: string,
  opts: FindAliasesOptions
): Promise<string[]> {
  const target = checkPrefix(versionPrefix)
  const candidates = new Set(await listSiblings(s3, bucket, target, opts.signal))
  for (const extra of opts.extraAliases ?? []) candidates.add(normalizePrefix(extra))
  candidates.delete(target)
  candidates.delete('')
  const named = await mapLimit([...candidates], opts.concurrency, (candidate) =>
    readVersionPrefix(s3, bucket, candidate, opts.signal)
  )
  return [...candidates].filter((_, i) => named[i] === target).sort(compareCodeUnits)
}

export interface CleanupTarget {
  bucket: string
  versionPrefix: string
  /** Alias prefixes outside the version's parent to check too (see findAliasesOf). */
  aliases?: string[]
}

export interface PlanCleanupOptions {
  concurrency: number
  logger: Logger
  signal?: AbortSignal
}

export interface StoredObject {
  key: string
  size: number
}

export interface CleanupPlan {
  bucket: string
  /** Normalised: no leading or trailing `/`. */
  versionPrefix: string
  /** Every object under `<versionPrefix>/`, in listing order. */
  objects: StoredObject[]
  /** Their total size. */
  bytes: number
  /** Multipart uploads in progress under `<versionPrefix>/`: their parts are billed too. */
  uploads: MultipartUpload[]
}

/**
 * Decides, read-only, what a clean-up of the version prefix removes. Refuses a prefix an alias
 * points to, a prefix that is itself an alias, and one holding other versions' manifests.
 */
export async function planCleanup(
  s3: S3Client,
  target: CleanupTarget,
  opts: PlanCleanupOptions
): Promise<CleanupPlan> {
  const { bucket } = target
  const versionPrefix = checkPrefix(target.versionPrefix)
  const where = `s3://${bucket}/${versionPrefix}/`

  const [aliases, ownVersion] = await Promise.all([
    findAliasesOf(s3, bucket, versionPrefix, {
      extraAliases: target.aliases,
      concurrency: opts.concurrency,
      signal: opts.signal
    }),
    readVersionPrefix(s3, bucket, versionPrefix, opts.signal)
  ])
  if (aliases.length > 0) {
    const one = aliases.length === 1
    throw new DeployError(
      `Refusing to delete ${where}: the alias${one ? '' : 'es'} ${enumerate(aliases)} ` +
        `${one ? 'points' : 'point'} to it (manifest.json names versionPrefix "${versionPrefix}"); nothing was deleted.`,
      `Move the alias first with \`mode: promote\` (promote another version to ${aliases.join(', ')}), then run the clean-up again.`
    )
  }
  if (ownVersion !== undefined && ownVersion !== versionPrefix) {
    throw new DeployError(
      `Refusing to delete ${where}: it is an alias of "${ownVersion}" (its manifest.json names that version), not a version; nothing was deleted.`,
      'Set `version-prefix` to the preview to remove; move an alias with `mode: promote`.'
    )
  }

  const listed = await listPrefix(s3, bucket, versionPrefix, opts.signal)
  const objects = [...listed].map(([key, o]) => ({ key, size: o.size }))
  const nested = await nestedManifests(s3, bucket, versionPrefix, objects, opts)
  if (nested.length > 0) {
    throw new DeployError(
      `Refusing to delete ${where}: it holds other published versions or aliases (${enumerate(nested)}); nothing was deleted.`,
      'Clean-up removes one version prefix; set `version-prefix` to the preview itself (e.g. resnet50/pr-42, not resnet50).'
    )
  }
  const uploads = await listUploads(s3, bucket, versionPrefix, opts)
  const bytes = objects.reduce((sum, o) => sum + o.size, 0)
  opts.logger.info(
    `Clean-up plan for ${where}: ${objects.length} object(s), ${formatBytes(bytes)}, and ` +
      `${uploads.length} multipart upload(s) in progress; no alias points to it.`
  )
  return { bucket, versionPrefix, objects, bytes, uploads }
}

export interface ExecuteCleanupOptions {
  logger: Logger
  dryRun: boolean
  signal?: AbortSignal
}

export interface CleanupResult {
  dryRun: boolean
  /** Objects deleted (in a dry run: that a real run would delete). */
  deleted: number
  /** Their total size. */
  bytes: number
  /** Multipart uploads aborted (in a dry run: that a real run would abort). */
  abortedUploads: number
  /** The CloudFront path covering the prefix, e.g. `/pr-7/*`. */
  invalidationPath: string
}

/**
 * Aborts the plan's multipart uploads, then deletes its objects with DeleteObjects (1,000 keys a
 * request). The bucket is versioned, so this adds delete markers and the old versions stay
 * until a NoncurrentVersionExpiration lifecycle rule removes them. Keys S3 refuses are reported
 * together, after every batch was tried.
 */
export async function executeCleanup(
  s3: S3Client,
  plan: CleanupPlan,
  opts: ExecuteCleanupOptions
): Promise<CleanupResult> {
  const { bucket, objects, uploads } = plan
  const versionPrefix = checkPrefix(plan.versionPrefix)
  const where = `s3://${bucket}/${versionPrefix}/`
  const invalidationPath = `${toInvalidationPath(versionPrefix)}/*`
  // The plan must not reach outside the prefix, whoever built it.
  const outside = objects.find((o) => !o.key.startsWith(`${versionPrefix}/`))
  if (outside) {
    throw new DeployError(
      `Refusing to delete s3://${bucket}/${outside.key}: it is outside ${where}.`
    )
  }
  const result = {
    dryRun: opts.dryRun,
    deleted: objects.length,
    bytes: plan.bytes,
    abortedUploads: uploads.length,
    invalidationPath
  }

  if (opts.dryRun) {
    logDryRun(plan, where, opts.logger)
    return result
  }

  opts.signal?.throwIfAborted()
  // First, so that no upload completes into the prefix once its objects are gone.
  const outcome = await abortMultipartUploads(s3, uploads)
  for (const failure of outcome.failed) opts.logger.warning(abortFailureWarning(failure))
  result.abortedUploads = outcome.aborted.length + outcome.gone.length

  const { deleted, refused } = await deletePlannedObjects(s3, plan, where, opts)
  if (refused.length > 0) throw deleteFailure(where, refused, deleted, objects.length)
  opts.logger.info(
    `Removed ${where}: ${deleted} object(s), ${formatBytes(plan.bytes)}; ` +
      `${result.abortedUploads} multipart upload(s) aborted.`
  )
  return result
}

function logDryRun(plan: CleanupPlan, where: string, logger: Logger): void {
  const { bucket, objects, uploads } = plan
  logger.info(
    `Dry run: would delete ${objects.length} object(s) (${formatBytes(plan.bytes)}) under ` +
      `${where} and abort ${uploads.length} multipart upload(s).`
  )
  for (const o of objects) logger.debug(`Would delete s3://${bucket}/${o.key}`)
  for (const u of uploads) logger.debug(`Would abort ${describeUpload(u)}`)
}

/**
 * Deletes the plan's objects, logging each batch; the keys S3 refused come back. A cancel is
 * thrown as a DeployError that counts the objects deleted before it.
 */
async function deletePlannedObjects(
  s3: S3Client,
  plan: CleanupPlan,
  where: string,
  { logger, signal }: Pick<ExecuteCleanupOptions, 'logger' | 'signal'>
): Promise<{ deleted: number; refused: RefusedDelete[] }> {
  const { objects } = plan
  let deleted = 0
  try {
    return await deleteKeys(
      s3,
      plan.bucket,
      objects.map((o) => o.key),
      {
        what: `object(s) under ${where}`,
        signal,
        onBatch: (count) => {
          deleted = count
          logger.info(`Deleted ${count} of ${objects.length} object(s) under ${where}`)
        }
      }
    )
  } catch (err) {
    if (!signal?.aborted) throw err
    throw new DeployError(
      `Clean-up of ${where} cancelled: ${deleted} of ${objects.length} object(s) deleted.`,
      'Run the clean-up again: it deletes what is left.',
      { cause: signal.reason }
    )
  }
}

function deleteFailure(
  where: string,
  failures: RefusedDelete[],
  deleted: number,
  total: number
): DeployError {
  const shown = failures
    .slice(0, SHOWN_KEYS)
    .map((f) => `${f.key}: ${f.code}${f.message ? ` (${f.message})` : ''}`)
  const more =
    failures.length > shown.length ? `\n- … and ${failures.length - shown.length} more` : ''
  const denied = failures.some((f) => f.code === 'AccessDenied')
  return new DeployError(
    `S3 refused to delete ${failures.length} of ${total} object(s) under ${where} ` +
      `(${deleted} deleted):\n- ${shown.join('\n- ')}${more}`,
    denied
      ? 'The credentials lack s3:DeleteObject on these keys: grant it on the bucket objects (see the README), then run the clean-up again.'
      : 'Run the clean-up again: it deletes what is left.'
  )
}

/** `a/, b/ and 3 more`: prefixes for a message, the first few named. */
function enumerate(prefixes: string[]): string {
  const shown = prefixes.slice(0, SHOWN_KEYS).map((p) => `${p}/`)
  const more = prefixes.length - shown.length
  return more > 0 ? `${shown.join(', ')} and ${more} more` : shown.join(', ')
}

/** `a/b/` → `a/b`: the form the action uses for prefixes. */
function normalizePrefix(prefix: string): string {
  return prefix.replace(/^\/+|\/+$/g, '')
}

/**
 * A prefix safe to delete under: never the bucket root, `.` or `..`, or one with empty
 * segments. The inputs are validated already; a delete must not depend on that alone.
 */
function checkPrefix(prefix: string): string {
  // '' is one empty segment, and a leading, trailing or doubled '/' makes one.
  if (prefix.split('/').some((s) => s.trim() === '' || s === '.' || s === '..')) {
    throw new DeployError(
      `Refusing to clean up the version prefix ${JSON.stringify(prefix)}: it is empty or has an ` +
        'empty, "." or ".." segment, so the delete could reach the whole bucket.',
      'Set `version-prefix` to the preview to remove, e.g. pr-42 or resnet50/pr-42.'
    )
  }
  return prefix
}

/** Rethrows the cancellation itself when the signal caused the failure, else explains it. */
function failure(
  err: unknown,
  action: string,
  bucket: string,
  signal: AbortSignal | undefined
): unknown {
  return signal?.aborted ? signal.reason : explainAwsError(err, { action, bucket })
}

/** The prefixes next to `prefix` under the same parent (`pr-42` → `pr-41`, `latest`, …). */
async function listSiblings(
  s3: S3Client,
  bucket: string,
  prefix: string,
  signal: AbortSignal | undefined
): Promise<string[]> {
  const parent = prefix.slice(0, prefix.lastIndexOf('/') + 1)
  const siblings: string[] = []
  let token: string | undefined
  do {
    signal?.throwIfAborted()
    const page = await s3
      .send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: parent,
          Delimiter: '/',
          ContinuationToken: token
        }),
        { abortSignal: signal }
      )
      .catch((err: unknown) => {
        throw failure(err, `listing the prefixes in s3://${bucket}/${parent}`, bucket, signal)
      })
    for (const { Prefix } of page.CommonPrefixes ?? []) {
      if (Prefix?.startsWith(parent)) siblings.push(normalizePrefix(Prefix))
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return siblings
}

/**
 * The `versionPrefix` named by `<prefix>/manifest.json` (or by `key`), read from its first
 * bytes; undefined when there is no such object or it is not a manifest of this action.
 */
async function readVersionPrefix(
  s3: S3Client,
  bucket: string,
  prefix: string,
  signal: AbortSignal | undefined,
  key = `${prefix}/${MANIFEST_FILE_NAME}`
): Promise<string | undefined> {
  signal?.throwIfAborted()
  let head: string
  let complete: boolean
  try {
    const got = await s3.send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: key,
        Range: `bytes=0-${MANIFEST_HEAD_BYTES - 1}`
      }),
      { abortSignal: signal }
    )
    head = (await got.Body?.transformToString('utf-8')) ?? ''
    // `bytes 0-4095/12345`; a store that ignores Range sends the whole object without it.
    const total = Number(got.ContentRange?.split('/')[1] ?? Number.NaN)
    complete = !got.ContentRange || total <= MANIFEST_HEAD_BYTES
  } catch (err) {
    const code = awsErrorCode(err)
    if (code === 'NoSuchKey' || (code !== 'NoSuchBucket' && httpStatusOf(err) === 404)) {
      return undefined
    }
    // An empty object has no byte 0 to start a range at: not a manifest.
    if (code === 'InvalidRange' || httpStatusOf(err) === 416) return undefined
    throw failure(err, `reading the manifest s3://${bucket}/${key}`, bucket, signal)
  }
  const match = CANONICAL_HEAD.exec(head)
  if (match) return JSON.parse(match[1]) as string
  if (!complete) return undefined
  try {
    const parsed = JSON.parse(head) as { versionPrefix?: unknown; files?: unknown }
    return typeof parsed.versionPrefix === 'string' && Array.isArray(parsed.files)
      ? parsed.versionPrefix
      : undefined
  } catch {
    return undefined
  }
}

/**
 * The prefixes below `prefix` whose manifest.json is one of this action's: other versions or
 * aliases (`resnet50/v1` under `resnet50`), which a clean-up of `prefix` must not take along.
 */
async function nestedManifests(
  s3: S3Client,
  bucket: string,
  prefix: string,
  objects: StoredObject[],
  opts: PlanCleanupOptions
): Promise<string[]> {
  const suffix = `/${MANIFEST_FILE_NAME}`
  const own = `${prefix}${suffix}`
  const keys = objects.map((o) => o.key).filter((k) => k.endsWith(suffix) && k !== own)
  const named = await mapLimit(keys, opts.concurrency, (key) =>
    readVersionPrefix(s3, bucket, key.slice(0, -suffix.length), opts.signal, key)
  )
  return keys.filter((_, i) => named[i] !== undefined).map((k) => k.slice(0, -suffix.length))
}

/**
 * The multipart uploads in progress under `<prefix>/`, all pages. Without
 * s3:ListBucketMultipartUploads they cannot be listed: that is a warning, as in the post step.
 */
async function listUploads(
  s3: S3Client,
  bucket: string,
  prefix: string,
  opts: PlanCleanupOptions
): Promise<MultipartUpload[]> {
  const under = `${prefix}/`
  const where = `s3://${bucket}/${under}`
  const found: MultipartUpload[] = []
  let KeyMarker: string | undefined
  let UploadIdMarker: string | undefined
  try {
    do {
      opts.signal?.throwIfAborted()
      const page = await s3.send(
        new ListMultipartUploadsCommand({
          Bucket: bucket,
          Prefix: under,
          KeyMarker,
          UploadIdMarker
        }),
        { abortSignal: opts.signal }
      )
      for (const { Key, UploadId } of page.Uploads ?? []) {
        if (Key?.startsWith(under) && UploadId) found.push({ Bucket: bucket, Key, UploadId })
      }
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined
      UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined
    } while (KeyMarker)
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason
    opts.logger.warning(
      `Could not list the multipart uploads in progress under ${where} (this needs ` +
        's3:ListBucketMultipartUploads), so none is aborted; a lifecycle rule with ' +
        'AbortIncompleteMultipartUpload removes their parts (see the README): ' +
        explainAwsError(err, { action: `listing multipart uploads under ${where}`, bucket }).message
    )
    return []
  }
  return found
}
