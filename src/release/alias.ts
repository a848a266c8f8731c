import { integrityMetadata } from '../common/integrity.js'
import { createHash } from 'node:crypto'
import type { S3Client } from '@aws-sdk/client-s3'
import { mapLimit } from '../common/concurrency.js'
import { MANIFEST_FILE_NAME, MAX_KEY_BYTES, SHA256_METADATA_KEY } from '../common/constants.js'
import {
  copyObject,
  MAX_SINGLE_COPY_BYTES,
  type CopyOptions,
  type CopyRequest
} from '../publish/copy.js'
import { DeployError, InputError } from '../common/errors.js'
import { checkAliasName, objectKey } from '../common/paths.js'
import { toInvalidationPath } from '../cdn/invalidation.js'
import { writeCondition } from '../aws/lost-race.js'
import {
  deleteKeys,
  headObject,
  listPrefix,
  type ListedObject,
  sameMetadata
} from '../aws/stored-objects.js'
import { compareCodeUnits, manifestKey, serializeManifest } from '../publish/manifest.js'
import { readStoredManifest } from '../publish/manifest-store.js'
import { formatBytes } from '../common/progress.js'
import type { Logger, Manifest } from '../common/types.js'

/** HEAD requests at once when comparing alias objects. */
const HEAD_CONCURRENCY = 16
/** Files named in an error before "… and N more". */
const SHOWN = 20

/** A published version an alias can point to. */
export interface VersionSource {
  versionPrefix: string
  manifest: Manifest
  /**
   * The objects under the version, by key, as loadVersion listed them; copies then require the
   * listed ETags, so a source replaced meanwhile fails the copy instead of being published.
   */
  objects?: Map<string, ListedObject>
}

export interface LoadedVersion extends VersionSource {
  objects: Map<string, ListedObject>
}

export interface AliasInputs {
  bucket: string
  /** Normalised like version-prefix: no leading or trailing `/`. */
  alias: string
  /** Cache-Control of every object under the alias, its manifest included. */
  aliasCacheControl: string
}

/** One object the alias holds after the move. */
export interface AliasEntry extends CopyRequest {
  /** Relative path (`manifest.json` for the manifest). */
  path: string
  action: 'copy' | 'unchanged'
  /** The alias key held an object before: overwriting it needs an invalidation. */
  existed: boolean
}

export interface AliasPlan {
  bucket: string
  alias: string
  versionPrefix: string
  /** The version `<alias>/manifest.json` named before the move; undefined when there was none. */
  previousVersion?: string
  files: AliasEntry[]
  /** `<alias>/manifest.json`, a byte-for-byte copy of `<version>/manifest.json`. */
  manifest: AliasEntry
  /** Alias keys the version does not have, removed after the copies. */
  stale: string[]
  /**
   * The CloudFront paths whose cached copies are now wrong: overwritten and removed alias keys
   * and the manifest when it changed, as one path, or as one `/<alias>/*` when there are more
   * (a wildcard is billed as one path but counts against the 15 wildcards in progress).
   */
  invalidationPaths: string[]
}

export interface AliasResult {
  alias: string
  versionPrefix: string
  previousVersion?: string
  /** True: nothing was changed, the lists say what would be done. */
  dryRun: boolean
  /** Every file the alias holds after the move (manifest apart), by path: for `alias-urls`. */
  files: { path: string; key: string }[]
  /** Alias keys copied from the version (the manifest is reported apart). */
  copied: string[]
  /** Alias keys that already held the same bytes and headers. */
  unchanged: string[]
  /** Stale alias keys deleted. */
  removed: string[]
  manifestKey: string
  manifestAction: 'copied' | 'unchanged'
  invalidationPaths: string[]
}

export interface ApplyAliasOptions {
  /** Requests in flight at once: small copies, or the parts of one large copy. */
  concurrency: number
  logger: Logger
  signal?: AbortSignal
  dryRun?: boolean
  /** Passed to copyObject (tests lower it to exercise multipart copies). */
  maxSingleCopyBytes?: number
  partSize?: number
}

/**
 * Reads `<version>/manifest.json` and checks that every file it lists is stored with the listed
 * size, so an alias is never pointed at a version that is incomplete or was never published.
 * `stored` is the manifest the caller knows is stored there (a deploy's own): it is not read again.
 */
export async function loadVersion(
  s3: S3Client,
  bucket: string,
  versionPrefix: string,
  stored?: Manifest
): Promise<LoadedVersion> {
  const objects = await listPrefix(s3, bucket, versionPrefix)
  const key = manifestKey(versionPrefix)
  if (!objects.has(key)) {
    throw new DeployError(
      `${key} not found in s3://${bucket}: an alias can only point to a version published with \`manifest: true\`` +
        (objects.size > 0
          ? ` (${objects.size} other object(s) are under ${versionPrefix}/).`
          : '.'),
      'Check `version-prefix`, or publish that version with `manifest: true` first.'
    )
  }
  const manifest = stored ?? (await readStoredManifest(s3, bucket, key))
  if (!manifest) {
    throw new DeployError(
      `s3://${bucket}/${key} is not a manifest written by this action (no "files" list).`,
      'Publish the version again with `manifest: true` to rewrite it.'
    )
  }
  if (manifest.versionPrefix !== versionPrefix) {
    throw new DeployError(
      `s3://${bucket}/${key} describes version ${manifest.versionPrefix}, not ${versionPrefix}: ` +
        `${versionPrefix} is an alias, not a version.`,
      `Set \`version-prefix\` to ${manifest.versionPrefix} to point an alias at that version.`
    )
  }
  const problems: string[] = []
  for (const file of manifest.files) {
    const expected = objectKey(versionPrefix, file.path)
    const stored = objects.get(file.key)
    if (file.key !== expected) {
      problems.push(`${file.path} (listed under key ${file.key}, expected ${expected})`)
    } else if (!stored) {
      problems.push(`${file.path} (not found)`)
    } else if (stored.size !== file.size) {
      problems.push(`${file.path} (${stored.size} bytes stored, the manifest says ${file.size})`)
    }
  }
  if (problems.length > 0) {
    throw new DeployError(
      `${versionPrefix} is missing ${problems.length} of ${manifest.files.length} file(s) its manifest lists: ` +
        listed(problems),
      `Publish ${versionPrefix} again (same \`version-prefix\`, \`overwrite: true\` if bytes changed) before pointing an alias at it.`
    )
  }
  return { versionPrefix, manifest, objects }
}

/**
 * Decides, read-only, how `<alias>/` becomes a copy of the version: which files to copy (new, or
 * different SHA-256 or headers), which already match, which alias keys to remove, and what to
 * invalidate. Refuses an alias that overlaps the version, and refuses to delete from a prefix
 * that holds no alias manifest (it is then not known to be an alias this action manages).
 */
export async function planAlias(
  s3: S3Client,
  inputs: AliasInputs,
  version: VersionSource
): Promise<AliasPlan> {
  const { bucket, alias } = inputs
  const { versionPrefix } = version
  checkAliasName(alias, versionPrefix)
  checkAliasKeyLengths(alias, version.manifest)
  const aliasManifestKey = manifestKey(alias)
  const { held, current } = await readAlias(s3, bucket, alias)

  const files = await planFileEntries(s3, held, inputs, version)
  const manifestEntry = await planEntry(
    s3,
    held,
    await manifestCopy(s3, inputs, version, aliasManifestKey)
  )
  const stale = staleAliasKeys(held, files, aliasManifestKey)
  if (stale.length > 0 && current === undefined) {
    throw new DeployError(
      `s3://${bucket}/${alias}/ holds ${stale.length} object(s) ${versionPrefix} does not have, but no ` +
        `${aliasManifestKey}, so it is not an alias this action manages; nothing was changed: ${listed(stale)}`,
      `Choose another \`alias\`, or remove those objects from s3://${bucket}/${alias}/ first.`
    )
  }

  const overwritten = [...files, manifestEntry]
    .filter((f) => f.action === 'copy' && f.existed)
    .map((f) => f.destKey)
  return {
    bucket,
    alias,
    versionPrefix,
    previousVersion: current?.versionPrefix,
    files,
    manifest: manifestEntry,
    stale,
    invalidationPaths: aliasInvalidationPaths(alias, [...overwritten, ...stale])
  }
}

function checkAliasKeyLengths(alias: string, manifest: Manifest): void {
  const tooLong = manifest.files
    .map((f) => objectKey(alias, f.path))
    .filter((key) => Buffer.byteLength(key) > MAX_KEY_BYTES)
  if (tooLong.length > 0) {
    throw new InputError(
      `Under alias "${alias}" ${tooLong.length} key(s) would be longer than S3's ${MAX_KEY_BYTES} bytes: ${listed(tooLong)}`,
      'Use a shorter `alias`.'
    )
  }
}

/**
 * The objects under `<alias>/` and the manifest among them, if any; refuses a prefix whose
 * manifest describes itself, which is a version, not an alias.
 */
async function readAlias(
  s3: S3Client,
  bucket: string,
  alias: string
): Promise<{ held: Map<string, ListedObject>; current?: Manifest }> {
  const aliasManifestKey = manifestKey(alias)
  const held = await listPrefix(s3, bucket, alias)
  const current = held.has(aliasManifestKey)
    ? await readStoredManifest(s3, bucket, aliasManifestKey)
    : undefined
  if (current?.versionPrefix === alias) {
    throw new InputError(
      `${alias} is a published version (s3://${bucket}/${aliasManifestKey} describes it), not an alias.`,
      'Choose an `alias` name no version is published under.'
    )
  }
  return { held, current }
}

/** One entry per file of the version's manifest, with the alias's Cache-Control. */
function planFileEntries(
  s3: S3Client,
  held: Map<string, ListedObject>,
  inputs: AliasInputs,
  version: VersionSource
): Promise<AliasEntry[]> {
  const { bucket, alias, aliasCacheControl } = inputs
  return mapLimit(version.manifest.files, HEAD_CONCURRENCY, (file) =>
    planEntry(s3, held, {
      bucket,
      path: file.path,
      sourceKey: file.key,
      destKey: objectKey(alias, file.path),
      size: file.size,
      contentType: file.contentType,
      cacheControl: aliasCacheControl,
      metadata: { ...file.metadata, ...integrityMetadata(file) },
      sourceETag: version.objects?.get(file.key)?.eTag
    })
  )
}

/** Alias keys, the manifest apart, that no file of the version will occupy. */
function staleAliasKeys(
  held: Map<string, ListedObject>,
  files: AliasEntry[],
  aliasManifestKey: string
): string[] {
  const wanted = new Set(files.map((f) => f.destKey))
  return [...held.keys()]
    .filter((key) => key !== aliasManifestKey && !wanted.has(key))
    .sort(compareCodeUnits)
}

/**
 * Moves the alias as planned, in the order that keeps it readable: the files first, then the
 * manifest (which names the version once all its files are in place), then the stale keys
 * (which clients of the previous manifest may still fetch until then). With `dryRun` nothing
 * is sent and the result says what would be done.
 */
export async function applyAlias(
  s3: S3Client,
  plan: AliasPlan,
  opts: ApplyAliasOptions
): Promise<AliasResult> {
  const { logger } = opts
  const result = aliasResult(plan, opts.dryRun === true)
  const move = `alias ${plan.alias} from ${plan.previousVersion ?? '(none)'} to ${plan.versionPrefix}`
  if (opts.dryRun) {
    logger.info(
      `Dry run: would move ${move}: copy ${result.copied.length} file(s), keep ${result.unchanged.length}, ` +
        `${plan.manifest.action === 'copy' ? 'copy' : 'keep'} ${plan.manifest.destKey}, remove ` +
        `${plan.stale.length}, invalidate ${plan.invalidationPaths.length} path(s)` +
        `${plan.invalidationPaths.length ? `: ${plan.invalidationPaths.join(' ')}` : ''}. Nothing was changed.`
    )
    return result
  }
  await copyAliasFiles(s3, plan, move, opts)
  if (plan.manifest.action === 'copy') {
    await copyObject(s3, plan.manifest, copyOptions(opts))
    logger.info(`Copied ${plan.manifest.sourceKey} → ${plan.manifest.destKey}: ${move}.`)
  }
  await removeStaleKeys(s3, plan, move, opts)
  return result
}

function copyOptions(opts: ApplyAliasOptions): CopyOptions {
  return {
    concurrency: opts.concurrency,
    signal: opts.signal,
    logger: opts.logger,
    maxSingleCopyBytes: opts.maxSingleCopyBytes,
    partSize: opts.partSize
  }
}

function aliasResult(plan: AliasPlan, dryRun: boolean): AliasResult {
  const keysOf = (action: AliasEntry['action']): string[] =>
    plan.files.filter((f) => f.action === action).map((f) => f.destKey)
  return {
    alias: plan.alias,
    versionPrefix: plan.versionPrefix,
    previousVersion: plan.previousVersion,
    dryRun,
    files: plan.files.map((f) => ({ path: f.path, key: f.destKey })),
    copied: keysOf('copy'),
    unchanged: keysOf('unchanged'),
    removed: plan.stale,
    manifestKey: plan.manifest.destKey,
    manifestAction: plan.manifest.action === 'copy' ? 'copied' : 'unchanged',
    invalidationPaths: plan.invalidationPaths
  }
}

/**
 * Copies the plan's files (the manifest apart), stopping at the first failure or at the cancel;
 * either is thrown once the copies under way have ended.
 */
async function copyAliasFiles(
  s3: S3Client,
  plan: AliasPlan,
  move: string,
  opts: ApplyAliasOptions
): Promise<void> {
  const { logger, signal } = opts
  const copyOpts = copyOptions(opts)
  const copies = plan.files.filter((f) => f.action === 'copy')
  // Small copies run side by side; a large one uses the whole budget for its parts.
  const maxSingle = opts.maxSingleCopyBytes ?? MAX_SINGLE_COPY_BYTES
  let done = 0
  let failure: unknown
  const run = async (entry: AliasEntry): Promise<void> => {
    if (failure !== undefined || signal?.aborted) return
    try {
      const { parts } = await copyObject(s3, entry, copyOpts)
      logger.info(
        `Copied s3://${plan.bucket}/${entry.sourceKey} → ${entry.destKey} ` +
          `(${formatBytes(entry.size)}${parts > 1 ? `, ${parts} parts` : ''})`
      )
      done++
    } catch (err) {
      failure ??= err
    }
  }
  await mapLimit(
    copies.filter((f) => f.size <= maxSingle),
    Math.max(1, opts.concurrency),
    run
  )
  for (const entry of copies.filter((f) => f.size > maxSingle)) await run(entry)
  const state =
    `${done} of ${copies.length} file(s) were copied; ${plan.manifest.destKey} still names ` +
    `${plan.previousVersion ?? 'no version'}`
  // A copy cut short by the cancel fails too: the cancel is the news.
  if (signal?.aborted) {
    throw new DeployError(`Cancelled moving ${move}: ${state}.`, undefined, {
      cause: signal.reason
    })
  }
  if (failure !== undefined) {
    logger.warning(`Stopped moving ${move}: ${state}. Running the step again completes the move.`)
    throw failure
  }
}

/** Deletes the alias keys the version does not have, once the manifest names the version. */
async function removeStaleKeys(
  s3: S3Client,
  plan: AliasPlan,
  move: string,
  { logger, signal }: Pick<ApplyAliasOptions, 'logger' | 'signal'>
): Promise<void> {
  if (plan.stale.length > 0 && signal?.aborted) {
    throw new DeployError(
      `Cancelled after moving ${move}, before removing ${plan.stale.length} stale key(s) from it.`,
      'Running the step again removes them.',
      { cause: signal.reason }
    )
  }
  const { refused } = await deleteKeys(s3, plan.bucket, plan.stale, {
    what: `stale key(s) under s3://${plan.bucket}/${plan.alias}/`
  })
  if (refused.length > 0) {
    throw new DeployError(
      `S3 did not delete ${refused.length} stale alias key(s) from s3://${plan.bucket}: ${listed(refused.map((r) => `${r.key} (${r.code}: ${r.message})`))}`,
      'The credentials need s3:DeleteObject on the bucket. Running the step again retries the removal.'
    )
  }
  if (plan.stale.length > 0) {
    logger.info(
      `Removed ${plan.stale.length} key(s) ${plan.versionPrefix} does not have from ${plan.alias}/.`
    )
  }
}

/**
 * Points the alias at an existing version without uploading anything (promote, rollback): checks
 * the version is complete, plans, and applies (or, with `dryRun`, only reports the plan).
 */
export async function promote(
  s3: S3Client,
  inputs: AliasInputs & { versionPrefix: string },
  opts: ApplyAliasOptions
): Promise<AliasResult> {
  const version = await loadVersion(s3, inputs.bucket, inputs.versionPrefix)
  const plan = await planAlias(s3, inputs, version)
  return applyAlias(s3, plan, opts)
}

/** Exact paths for up to one key, else one wildcard over the alias. */
export function aliasInvalidationPaths(alias: string, keys: string[]): string[] {
  const unique = [...new Set(keys)]
  if (unique.length === 0) return []
  if (unique.length === 1) return [toInvalidationPath(unique[0])]
  return [`${toInvalidationPath(alias)}/*`]
}

/** The manifest copy: the version's stored manifest, or, before it is written (a dry run), the one given. */
async function manifestCopy(
  s3: S3Client,
  inputs: AliasInputs,
  version: VersionSource,
  destKey: string
): Promise<CopyRequest & { path: string }> {
  const sourceKey = manifestKey(version.versionPrefix)
  const common = { bucket: inputs.bucket, path: MANIFEST_FILE_NAME, sourceKey, destKey }
  const cacheControl = inputs.aliasCacheControl
  const stored = await headObject(s3, inputs.bucket, sourceKey)
  if (stored) {
    return {
      ...common,
      size: stored.size,
      contentType: stored.contentType ?? 'application/json',
      cacheControl,
      metadata: stored.metadata,
      sourceETag: stored.eTag
    }
  }
  const body = serializeManifest(version.manifest)
  return {
    ...common,
    size: Buffer.byteLength(body),
    contentType: 'application/json',
    cacheControl,
    metadata: { [SHA256_METADATA_KEY]: createHash('sha256').update(body).digest('hex') }
  }
}

/** Copy unless the alias key holds the same size, SHA-256 and headers already. */
async function planEntry(
  s3: S3Client,
  held: Map<string, ListedObject>,
  request: CopyRequest & { path: string }
): Promise<AliasEntry> {
  const listedObject = held.get(request.destKey)
  if (!listedObject) {
    return {
      ...request,
      action: 'copy',
      existed: false,
      destCondition: writeCondition({ existed: false })
    }
  }
  // A different size proves different bytes without a HEAD request.
  const stored =
    listedObject.size === request.size
      ? await headObject(s3, request.bucket, request.destKey)
      : undefined
  // Replacing only the object seen: a move that another writer overtook fails instead of mixing.
  const destCondition = writeCondition({
    existed: true,
    storedETag: stored?.eTag ?? listedObject.eTag
  })
  if (!stored) return { ...request, action: 'copy', existed: true, destCondition }
  const same =
    stored.metadata[SHA256_METADATA_KEY] !== undefined &&
    stored.contentType === request.contentType &&
    stored.cacheControl === request.cacheControl &&
    sameMetadata(stored.metadata, request.metadata)
  return { ...request, action: same ? 'unchanged' : 'copy', existed: true, destCondition }
}

function listed(items: string[]): string {
  const more = items.length > SHOWN ? `, … and ${items.length - SHOWN} more` : ''
  return items.slice(0, SHOWN).join(', ') + more
}
