import { createHash } from 'node:crypto'
import type { Clients } from '../aws/clients.js'
import { anySignal } from '../common/concurrency.js'
import {
  ConcurrentPublishError,
  DeployError,
  ImmutableVersionError,
  explainAwsError
} from '../common/errors.js'
import { discoverFiles } from '../publish/files.js'
import { hashFile, type FileHashes } from '../publish/hash.js'
import { invalidateAndWait, planInvalidation } from '../cdn/invalidation.js'
import { loadVersion } from '../release/alias.js'
import { MANIFEST_FILE_NAME } from '../common/constants.js'
import { writeCondition } from '../aws/lost-race.js'
import { buildManifest, gitContextFromEnv, manifestKey, serializeManifest } from '../publish/manifest.js'
import { sameFiles, writeManifest } from '../publish/manifest-store.js'
import {
  abortFailureWarning,
  abortMultipartUploads,
  listOpenUploads,
  type MultipartUpload
} from '../aws/multipart-tracker.js'
import { planDeploy, type Plan } from '../publish/plan.js'
import { formatBytes } from '../common/progress.js'
import type { PreflightFinding } from '../cdn/preflight/index.js'
import {
  describeOwner,
  lockDeps,
  readLockHolder,
  type HeldLock,
  withLock,
  type JournaledUpload
} from '../aws/publish-lock.js'
import { moveAlias, type AliasMove } from '../release/promote.js'
import { copyFiles } from '../publish/reuse.js'
import { signPublished, type SigningReport } from '../cdn/signing.js'
import { listPrefix, type ListedObject } from '../aws/stored-objects.js'
import { resolveTarget, type Target } from '../cdn/target.js'
import { verifyPublished, type VerifyResult, type VerifyTarget } from '../cdn/verify.js'
import { uploadFiles, type UploadOptions } from '../publish/upload.js'
import { objectUrl } from '../cdn/urls.js'
import type {
  DeployInputs,
  InvalidationOutcome,
  LocalFile,
  Logger,
  Manifest,
  PlannedFile,
  PublishedFile,
  Sleep
} from '../common/types.js'

export interface DeployDeps {
  logger: Logger
  sleep: Sleep
  env: NodeJS.ProcessEnv
  now?: () => number
  /**
   * Cancels the deploy: uploads stop and their multipart uploads are aborted, and no later stage
   * (manifest, invalidation) starts. `sleep` should end early on it too.
   */
  signal?: AbortSignal
  /** Tags for every object written (URL-encoded), e.g. a preview's; none when undefined. */
  objectTagging?: string
}

export interface DeployReport {
  versionPrefix: string
  bucket: string
  dryRun: boolean
  root: string
  files: PublishedFile[]
  manifest: Manifest | null
  manifestUrl: string
  /** What happened to the manifest object. */
  manifestAction: 'written' | 'unchanged' | 'none'
  invalidation: InvalidationOutcome
  bytesUploaded: number
  /** Bytes S3 copied server-side instead of uploading them. */
  bytesCopied: number
  durationMs: number
  distribution: { id: string; domain: string } | null
  warnings: string[]
  /** Undefined when `preflight` is false. */
  preflight?: PreflightFinding[]
  /** The alias moved to this version, when `alias` is set. */
  alias?: AliasMove
  /** Signed URLs and cookies, when signing is configured. */
  signing?: SigningReport
  /**
   * Undefined when not verified: `verify: false`, a dry run, invalidations still running, or no
   * public URL (neither `distribution-id` nor `url-base`).
   */
  verification?: VerifyResult
}

/**
 * The whole deploy, in the order that keeps a failed run harmless: everything read-only and
 * validated first (files, distribution, existing keys, the hashes a decision needs), then the
 * version's lock (one publisher at a time: publish-lock.ts), then the uploads (each new file
 * hashed just before it is sent, every write conditional), then the manifest (so it never lists
 * an object that is not there), then invalidation, verification and the alias.
 */
export async function deploy(
  inputs: DeployInputs,
  clients: Clients,
  deps: DeployDeps
): Promise<DeployReport> {
  const { logger } = deps
  const now = deps.now ?? Date.now
  const started = now()
  const warnings: string[] = []
  const warn = (message: string): void => {
    warnings.push(message)
    logger.warning(message)
  }

  const { root, files: local } = await discoverFiles(inputs.artifacts, {
    workspace: inputs.workspace,
    root: inputs.root
  })
  const total = local.reduce((sum, f) => sum + f.size, 0)
  logger.info(`Found ${local.length} file(s), ${formatBytes(total)}, under ${root}.`)

  // Shared by a second plan, made when the version changed while this run waited for its lock.
  const hash = sharedHashes()
  const { plan, target } = await planWithTarget(local, inputs, clients, { ...deps, warn, hash })
  const { distribution, urlBase, preflight } = target
  const distributionRef = distribution ? { id: distribution.id, domain: distribution.domain } : null
  const decide = (current: Plan): Promise<Decisions> =>
    decideManifestAndInvalidation(current, inputs, {
      urlBase,
      distribution: distributionRef,
      env: deps.env,
      now
    })
  const releaseDeps = { logger, sleep: deps.sleep, env: deps.env, now, signal: deps.signal, warn }
  const report = (d: Decisions, files: PublishedFile[], extra: Partial<DeployReport> = {}) => ({
    versionPrefix: inputs.versionPrefix,
    bucket: inputs.bucket,
    dryRun: inputs.dryRun,
    root,
    files,
    manifest: d.manifest,
    manifestUrl: d.manifest ? objectUrl(urlBase, d.manifestKey) : '',
    manifestAction: d.manifestAction,
    invalidation: d.invalidation,
    bytesUploaded: 0,
    bytesCopied: 0,
    durationMs: now() - started,
    distribution: distributionRef,
    warnings,
    preflight,
    ...extra
  })

  if (inputs.dryRun) {
    const decided = await decide(plan)
    logPlan(decided.planned, inputs, logger)
    // A dry run reads every file's SHA-256 in the plan.
    const files = await plan.hashed(decided.planned)
    let alias: AliasMove | undefined
    if (inputs.alias && decided.manifest) {
      const version = { versionPrefix: inputs.versionPrefix, manifest: decided.manifest }
      alias = await moveAlias(
        clients,
        { ...inputs, alias: inputs.alias },
        version,
        urlBase,
        releaseDeps
      )
    }
    const { manifestAction, manifest, invalidation } = decided
    const paths = invalidation.paths
    logger.info(
      `Dry run: would ${manifestAction === 'written' ? 'write' : 'keep'} ${decided.manifestKey}` +
        `${manifest ? '' : ' (manifest disabled)'} and invalidate ${paths.length} path(s)${paths.length ? `: ${paths.join(' ')}` : ''}. Nothing was changed.`
    )
    return report(decided, files, { alias })
  }

  const published = await publishLocked(plan, decide, inputs, clients, { ...deps, hash, warn })
  const { decided, files } = published
  const { invalidation, manifest } = decided
  if (inputs.distributionId && invalidation.paths.length > 0) {
    stopIfCancelled(
      deps.signal,
      `after publishing the files${manifest ? ' and the manifest' : ''}, before invalidating ` +
        `${invalidation.paths.length} path(s): edge caches may serve their old bytes until they expire`
    )
    await invalidateAndWait(clients.cloudfront, inputs.distributionId, invalidation, {
      env: deps.env,
      logger,
      sleep: deps.sleep,
      now,
      wait: inputs.waitForInvalidation,
      waitTimeoutMinutes: inputs.waitTimeoutMinutes,
      warn
    })
  }
  const targets: VerifyTarget[] = [
    ...files,
    ...(manifest ? [manifestTarget(manifest, objectUrl(urlBase, decided.manifestKey))] : [])
  ]
  const signing = inputs.signing
    ? signPublished(targets, urlBase, inputs.versionPrefix, inputs.signing, now())
    : undefined
  const verification = await verifyDeployed(targets, inputs, {
    logger,
    warn,
    signedUrls: signing?.urls,
    invalidations: [invalidation],
    sleep: deps.sleep,
    signal: deps.signal
  })

  // Verified first: an alias must never move to a version that does not serve what was uploaded.
  let alias: AliasMove | undefined
  if (inputs.alias && verification?.verified !== false) {
    stopIfCancelled(
      deps.signal,
      `after publishing ${inputs.versionPrefix}, before moving alias ${inputs.alias}`
    )
    // Listed again for the ETags the alias copies require; the manifest is this run's.
    const version = await loadVersion(
      clients.s3,
      inputs.bucket,
      inputs.versionPrefix,
      manifest ?? undefined
    )
    alias = await moveAlias(
      clients,
      { ...inputs, alias: inputs.alias },
      version,
      urlBase,
      releaseDeps
    )
  } else if (inputs.alias) {
    warn(`Alias ${inputs.alias} was not moved: ${inputs.versionPrefix} failed verification.`)
  }
  return {
    ...report(decided, files, { alias, signing, verification }),
    bytesUploaded: published.bytesUploaded,
    bytesCopied: published.bytesCopied
  }
}

type PlanDeps = DeployDeps & { warn: (message: string) => void; hash: typeof hashFile }

/**
 * Plans (hashing, listing the version) while the pre-flight checks and GetDistribution are
 * answered: the plan needs nothing from the target. The target's errors are reported first, and
 * stop the plan.
 */
async function planWithTarget(
  local: LocalFile[],
  inputs: DeployInputs,
  clients: Clients,
  deps: PlanDeps
): Promise<{ plan: Plan; target: Target }> {
  const stopPlanning = new AbortController()
  const planning = planVersion(local, inputs, clients.s3, deps, stopPlanning.signal)
  // Awaited once the target is known; a target that fails first must not leave it unhandled.
  planning.catch(() => undefined)
  let target: Target
  try {
    target = await resolveTarget(inputs, clients, {
      env: deps.env,
      logger: deps.logger,
      warn: deps.warn,
      signal: deps.signal
    })
  } catch (err) {
    stopPlanning.abort(err)
    throw err
  }
  const plan = await planning.catch(async (err: unknown) => {
    stopIfCancelled(deps.signal, 'while hashing and checking existing keys: nothing was uploaded')
    throw await withLockHolder(err, clients.s3, inputs)
  })
  return { plan, target }
}

function planVersion(
  local: LocalFile[],
  inputs: DeployInputs,
  s3: Clients['s3'],
  deps: PlanDeps,
  stop?: AbortSignal
): Promise<Plan> {
  const signal = anySignal(deps.signal, stop)
  return planDeploy(s3, local, inputs, {
    logger: deps.logger,
    signal,
    hash: deps.hash,
    reuse: {
      bucket: inputs.bucket,
      versionPrefix: inputs.versionPrefix,
      searchPrefixes: reuseSearchPrefixes(inputs),
      logger: deps.logger,
      signal
    }
  })
}

/**
 * An immutability error found while another run holds the version's lock says so: that run is
 * publishing other bytes under the same version prefix.
 */
async function withLockHolder(
  err: unknown,
  s3: Clients['s3'],
  inputs: Pick<DeployInputs, 'bucket' | 'versionPrefix'>
): Promise<unknown> {
  if (!(err instanceof ImmutableVersionError) || err instanceof ConcurrentPublishError) return err
  const holder = await readLockHolder(s3, inputs.bucket, inputs.versionPrefix).catch(
    () => undefined
  )
  if (!holder) return err
  return new ConcurrentPublishError(
    `Another run (${describeOwner(holder)}) is publishing ${inputs.versionPrefix} with different bytes. ${err.message}`,
    err.hint,
    { cause: err }
  )
}

/** SHA-256s read once per file and part size, though two plans may ask for them. */
function sharedHashes(): typeof hashFile {
  const started = new Map<string, Promise<FileHashes>>()
  return (path, opts = {}) => {
    const key = `${opts.partSize ?? 0}:${path}`
    let hashes = started.get(key)
    if (!hashes) {
      hashes = hashFile(path, opts)
      started.set(key, hashes)
      // A cancelled or failed read is not kept: a later plan reads the file again.
      hashes.catch(() => started.delete(key))
    }
    return hashes
  }
}

/** What the manifest and the invalidation will be, decided from the plan before any write. */
interface Decisions {
  /** The plan's files, with their URLs. */
  planned: (PlannedFile & { url: string })[]
  manifestKey: string
  manifest: Manifest | null
  manifestAction: DeployReport['manifestAction']
  /** The stored manifest's ETag, when there is one: a rewrite replaces only it. */
  manifestETag?: string
  /** Builds the manifest from the files once their hashes are all read. */
  build(published: PublishedFile[]): Manifest
  invalidation: InvalidationOutcome
}

async function decideManifestAndInvalidation(
  plan: Plan,
  inputs: DeployInputs,
  ctx: {
    urlBase: string
    distribution: { id: string; domain: string } | null
    env: NodeJS.ProcessEnv
    now: () => number
  }
): Promise<Decisions> {
  const planned = plan.files.map((f) => ({ ...f, url: objectUrl(ctx.urlBase, f.key) }))
  const key = manifestKey(inputs.versionPrefix)
  const build = (published: PublishedFile[]): Manifest =>
    buildManifest({
      versionPrefix: inputs.versionPrefix,
      bucket: inputs.bucket,
      files: published,
      metadata: inputs.metadata,
      distribution: ctx.distribution,
      git: gitContextFromEnv(ctx.env),
      createdAt: new Date(ctx.now())
    })
  let manifest: Manifest | null = null
  let manifestAction: DeployReport['manifestAction'] = 'none'
  /** Keys an earlier run overwrote but never finished publishing (and so never invalidated). */
  let replacedEarlier: string[] = []
  if (inputs.manifest) {
    const stored = plan.storedManifest
    // A file still being hashed has a key the version lacks (or holds at another size), so the
    // stored manifest cannot already describe it: the manifest is rewritten after the uploads.
    const allHashed = planned.every((f) => f.sha256 !== undefined)
    const current = allHashed ? build(await plan.hashed(planned)) : undefined
    // Same files: keep the stored manifest, whose provenance is the run that published them.
    const unchanged = stored !== undefined && current !== undefined && sameFiles(stored, current)
    replacedEarlier = stored ? skippedSinceChanged(planned, stored) : []
    manifest = unchanged ? stored : (current ?? null)
    manifestAction = unchanged ? 'unchanged' : 'written'
  }
  const storedManifest = plan.existing.get(key)
  const toInvalidate = invalidationKeys(
    planned,
    inputs,
    manifestAction === 'written' && storedManifest !== undefined,
    replacedEarlier
  )
  const keysUnderPrefix = new Set([...plan.existing.keys(), ...planned.map((f) => f.key)])
  if (inputs.manifest) keysUnderPrefix.add(key)
  const paths = inputs.distributionId
    ? planInvalidation({
        keys: toInvalidate.keys,
        keysUnderPrefix: [...keysUnderPrefix],
        extraPaths: inputs.invalidationPaths
      })
    : []
  return {
    planned,
    manifestKey: key,
    manifest,
    manifestAction,
    manifestETag: storedManifest?.eTag,
    build,
    invalidation: {
      reason: inputs.distributionId
        ? toInvalidate.reason
        : 'No distribution-id given, so there is nothing to invalidate.',
      paths,
      ids: [],
      status: 'none',
      waitedMs: 0
    }
  }
}

interface Published {
  decided: Decisions
  /** Every file with its SHA-256. */
  files: PublishedFile[]
  bytesUploaded: number
  bytesCopied: number
}

/**
 * Takes the version's lock, plans again if the version changed since it was planned (another run
 * published to it meanwhile), then writes: files, then the manifest. The lock is released after
 * the manifest, also when the run fails (journaling the uploads a re-run resumes). A plan with
 * nothing to write (every file in place, the manifest unchanged) takes no lock: it only read.
 */
async function publishLocked(
  firstPlan: Plan,
  decide: (plan: Plan) => Promise<Decisions>,
  inputs: DeployInputs,
  clients: Clients,
  deps: PlanDeps
): Promise<Published> {
  const { s3 } = clients
  const first = await decide(firstPlan)
  if (nothingToWrite(first)) {
    logPlan(first.planned, inputs, deps.logger)
    const files = await firstPlan.hashed(first.planned)
    return { decided: first, files, bytesUploaded: 0, bytesCopied: 0 }
  }
  let plan = firstPlan
  try {
    return await withLock(
      s3,
      {
        bucket: inputs.bucket,
        prefix: inputs.versionPrefix,
        purpose: 'publish',
        tagging: deps.objectTagging
      },
      lockDeps(inputs, deps),
      // Always given here: only a clean-up asks to run unlocked when the lock is refused.
      async (lock) => {
        plan = await planAgainIfChanged(firstPlan, lock!, inputs, s3, deps)
        const decided = plan === firstPlan ? first : await decide(plan)
        return writeVersion(plan, decided, lock!, inputs, s3, deps)
      }
    )
  } catch (err) {
    plan.stopHashing(err)
    throw err
  } finally {
    if (plan !== firstPlan) firstPlan.stopHashing(new Error('Planned again.'))
  }
}

function nothingToWrite(decided: Decisions): boolean {
  return decided.planned.every((f) => f.action === 'skip') && decided.manifestAction !== 'written'
}

/**
 * The plan still holds when the version lists as it did; otherwise another run published to it
 * between the plan and the lock, and the files are planned again against what it left.
 */
async function planAgainIfChanged(
  plan: Plan,
  lock: HeldLock,
  inputs: DeployInputs,
  s3: Clients['s3'],
  deps: PlanDeps
): Promise<Plan> {
  const now = await listPrefix(s3, inputs.bucket, inputs.versionPrefix, deps.signal)
  if (sameListing(plan.existing, now)) return plan
  const who = lock.waitedFor ? `another run (${describeOwner(lock.waitedFor)})` : 'another run'
  deps.logger.info(
    `${inputs.versionPrefix}/ changed after this run planned it: ${who} published to it. Planning again.`
  )
  const local = plan.files.map(({ absolutePath, relativePath, size }) => ({
    absolutePath,
    relativePath,
    size
  }))
  try {
    return await planVersion(local, inputs, s3, deps)
  } catch (err) {
    if (!(err instanceof ImmutableVersionError)) throw err
    throw new ConcurrentPublishError(
      `${who[0].toUpperCase()}${who.slice(1)} published ${inputs.versionPrefix} while this run waited to: ${err.message}`,
      err.hint,
      { cause: err }
    )
  }
}

function sameListing(a: Map<string, ListedObject>, b: Map<string, ListedObject>): boolean {
  if (a.size !== b.size) return false
  for (const [key, object] of a) {
    const other = b.get(key)
    if (!other || other.size !== object.size || other.eTag !== object.eTag) return false
  }
  return true
}

/** The files (copied and uploaded at once), then the manifest; leftovers of a dead run aborted. */
async function writeVersion(
  plan: Plan,
  decided: Decisions,
  lock: HeldLock,
  inputs: DeployInputs,
  s3: Clients['s3'],
  deps: PlanDeps
): Promise<Published> {
  logPlan(decided.planned, inputs, deps.logger)
  const signal = anySignal(deps.signal, lock.lost)!
  const leftovers = await earlierUploads(lock, inputs, s3, deps.logger)
  const transferred = await copyAndUpload(s3, decided.planned, inputs, {
    ...deps,
    signal,
    hashesOf: plan.hashesOf,
    journal: {
      resumable: leftovers.resumable,
      started: (upload) => lock.started(upload),
      ended: (uploadId) => {
        leftovers.ended.add(uploadId)
        lock.ended(uploadId)
      },
      keepFailed: () => !deps.signal?.aborted
    }
  })
  for (const file of decided.planned) {
    if (transferred.alreadyThere.has(file.key)) Object.assign(file, { action: 'skip' })
  }
  await leftovers.abortUnused(decided.planned)
  // Every hash was read before its file was sent.
  const files = await plan.hashed(decided.planned)

  // uploadFiles rejects once cancelled already; the manifest's guarantee is kept here too.
  stopIfCancelled(signal, 'after every file was uploaded: the manifest was not written')
  if (inputs.manifest && decided.manifestAction === 'written') {
    decided.manifest ??= decided.build(files)
    const outcome = await writeManifest(
      s3,
      inputs.bucket,
      decided.manifestKey,
      serializeManifest(decided.manifest),
      {
        tagging: deps.objectTagging,
        condition: writeCondition({
          existed: plan.existing.has(decided.manifestKey),
          storedETag: decided.manifestETag
        })
      }
    )
    if (outcome === 'unchanged') decided.manifestAction = 'unchanged'
    else deps.logger.info(`Wrote s3://${inputs.bucket}/${decided.manifestKey}.`)
  }
  return {
    decided,
    files,
    bytesUploaded: transferred.bytesUploaded,
    bytesCopied: transferred.bytesCopied
  }
}

/**
 * The multipart uploads an earlier holder of the lock (a dead or failed run) journaled and left
 * open: resumable when the same file is uploaded again; those of files this run published by
 * other means are aborted once the files are in place, so none is left open.
 */
async function earlierUploads(
  lock: HeldLock,
  inputs: Pick<DeployInputs, 'bucket' | 'versionPrefix'>,
  s3: Clients['s3'],
  logger: Logger
): Promise<{
  resumable: (key: string) => JournaledUpload | undefined
  ended: Set<string>
  abortUnused: (files: PlannedFile[]) => Promise<void>
}> {
  const journaled = lock.previous?.uploads ?? []
  const ended = new Set<string>()
  if (journaled.length === 0) {
    return { resumable: () => undefined, ended, abortUnused: async () => undefined }
  }
  let open: MultipartUpload[] = []
  try {
    open = await listOpenUploads(s3, inputs.bucket, `${inputs.versionPrefix}/`)
  } catch (err) {
    logger.warning(
      `Could not list the multipart uploads an earlier run left open under ${inputs.versionPrefix}/, so none is resumed: ` +
        explainAwsError(err, { action: 'listing multipart uploads', bucket: inputs.bucket }).message
    )
  }
  const openIds = new Set(open.map((u) => u.UploadId))
  for (const upload of journaled) if (!openIds.has(upload.uploadId)) lock.ended(upload.uploadId)
  return {
    resumable: (key) => journaled.find((u) => u.key === key && openIds.has(u.uploadId)),
    ended,
    abortUnused: async (files) => {
      const keys = new Set(files.map((f) => f.key))
      const unused = open.filter((u) => keys.has(u.Key) && !ended.has(u.UploadId))
      if (unused.length === 0) return
      const outcome = await abortMultipartUploads(s3, unused)
      for (const f of outcome.failed) logger.warning(abortFailureWarning(f))
      for (const u of [...outcome.aborted, ...outcome.gone]) lock.ended(u.UploadId)
      logger.info(
        `Aborted ${outcome.aborted.length} multipart upload(s) an earlier run left open for files now in place.`
      )
    }
  }
}

function manifestTarget(m: Manifest, url: string): VerifyTarget {
  const body = serializeManifest(m)
  return {
    relativePath: MANIFEST_FILE_NAME,
    url,
    size: Buffer.byteLength(body),
    sha256: createHash('sha256').update(body).digest('hex')
  }
}

/**
 * Copies and uploads at once: a copy is S3's work and an upload the runner's bandwidth, so neither
 * need wait for the other (a multi-GB copy takes S3 seconds). A file whose copy source changed
 * since it was found is uploaded afterwards. The first failure cancels the other side, and both
 * settle (multipart uploads aborted) before it is thrown.
 */
async function copyAndUpload(
  s3: Clients['s3'],
  files: PlannedFile[],
  inputs: DeployInputs,
  deps: Pick<DeployDeps, 'logger' | 'signal' | 'objectTagging'> &
    Pick<UploadOptions, 'hashesOf' | 'journal'>
): Promise<{ bytesUploaded: number; bytesCopied: number; alreadyThere: Set<string> }> {
  const failed = new AbortController()
  const signal = deps.signal ? AbortSignal.any([deps.signal, failed.signal]) : failed.signal
  let failure: unknown
  const cancelOnFailure = <T>(work: Promise<T>): Promise<T> =>
    work.catch((err: unknown) => {
      failure ??= err
      failed.abort(err)
      throw err
    })
  const headers = {
    bucket: inputs.bucket,
    versionPrefix: inputs.versionPrefix,
    cacheControl: inputs.cacheControl,
    metadata: inputs.metadata,
    tagging: deps.objectTagging,
    partSizeBytes: inputs.partSizeBytes,
    concurrency: inputs.concurrency,
    logger: deps.logger
  }
  const uploadOptions = {
    ...headers,
    multipartThresholdBytes: inputs.multipartThresholdBytes,
    hashesOf: deps.hashesOf,
    journal: deps.journal
  }
  const [copied, uploaded] = await Promise.allSettled([
    cancelOnFailure(copyFiles(s3, files, { ...headers, signal })),
    cancelOnFailure(uploadFiles(s3, files, { ...uploadOptions, signal }))
  ])
  if (copied.status === 'rejected' || uploaded.status === 'rejected') throw failure
  const { bytesCopied, fallBack } = copied.value
  let { bytesUploaded } = uploaded.value
  const alreadyThere = new Set([...copied.value.alreadyThere, ...uploaded.value.alreadyThere])
  if (fallBack.length > 0) {
    const again = files.filter((f) => fallBack.some((fb) => fb.key === f.key))
    for (const file of again) Object.assign(file, { action: 'upload', copyFrom: undefined })
    const more = await uploadFiles(s3, again, { ...uploadOptions, signal: deps.signal })
    bytesUploaded += more.bytesUploaded
    for (const key of more.alreadyThere) alreadyThere.add(key)
  }
  return { bytesUploaded, bytesCopied, alreadyThere }
}

/**
 * HEADs every published URL through `url-base` (verify.ts), unless `verify` is false or an
 * invalidation is still running: an edge may then serve the bytes it replaced, and the check
 * would fail for a deploy that is right.
 */
async function verifyDeployed(
  targets: VerifyTarget[],
  inputs: Pick<DeployInputs, 'verify' | 'concurrency' | 'distributionId' | 'urlBase'>,
  opts: {
    logger: Logger
    warn: (message: string) => void
    signedUrls?: Record<string, string>
    invalidations: InvalidationOutcome[]
    sleep: Sleep
    signal?: AbortSignal
  }
): Promise<VerifyResult | undefined> {
  if (!inputs.verify) return undefined
  if (!inputs.distributionId && !inputs.urlBase) {
    opts.logger.info(
      "Not verified: without `distribution-id` or `url-base` the URLs are the private bucket's own, which refuse anonymous requests. Set `url-base` to where clients download to verify."
    )
    return undefined
  }
  if (opts.invalidations.some((i) => i.status === 'InProgress')) {
    opts.warn(
      'Verification skipped: invalidations are still in progress, so edges may serve the bytes they replace. Set `wait-for-invalidation: true` (and a long enough `wait-timeout-minutes`) to verify.'
    )
    return undefined
  }
  const result = await verifyPublished(targets, {
    logger: opts.logger,
    signedUrls: opts.signedUrls,
    concurrency: inputs.concurrency,
    sleep: opts.sleep,
    signal: opts.signal
  })
  const failedFiles = result.results.filter((r) => !r.ok)
  // Every failure in the log: the error lists 20, the summary 50 rows.
  for (const r of failedFiles) opts.logger.info(`Not verified: ${r.url}: ${r.problems.join('; ')}`)
  const failed = failedFiles.length
  opts.logger.info(
    result.verified
      ? `Verified ${result.results.length} URL(s): each serves its size and SHA-256${opts.signedUrls ? ', signed; unsigned requests are refused' : ''}.`
      : `Verification failed for ${failed} of ${result.results.length} URL(s).`
  )
  return result
}

/** The prefixes `reuse-from` stands for; `auto` is the version's parent ('' = the bucket). */
function reuseSearchPrefixes(inputs: Pick<DeployInputs, 'reuseFrom' | 'versionPrefix'>): string[] {
  if (inputs.reuseFrom !== 'auto') return inputs.reuseFrom
  const slash = inputs.versionPrefix.lastIndexOf('/')
  return [slash === -1 ? '' : inputs.versionPrefix.slice(0, slash)]
}

/** Ends the deploy between stages once it is cancelled, saying how far it got. */
function stopIfCancelled(signal: AbortSignal | undefined, state: string): void {
  if (signal?.aborted)
    throw new DeployError(`Cancelled ${state}.`, undefined, { cause: signal.reason })
}

/** Which keys must be invalidated, and why, per the `invalidate` mode. */
function invalidationKeys(
  files: PlannedFile[],
  inputs: Pick<DeployInputs, 'invalidate' | 'versionPrefix'>,
  manifestOverwritten: boolean,
  replacedEarlier: string[]
): { keys: string[]; reason: string } {
  const uploaded = files.filter((f) => f.action !== 'skip')
  const manifest = manifestOverwritten ? [manifestKey(inputs.versionPrefix)] : []
  const resumed = replacedEarlier.length
    ? ` and ${replacedEarlier.length} key(s) an unfinished earlier run replaced`
    : ''
  switch (inputs.invalidate) {
    case 'none':
      return {
        keys: [],
        reason: 'invalidate is none: only the extra invalidation-paths, if any, are invalidated.'
      }
    case 'all':
      return {
        keys: [...uploaded.map((f) => f.key), ...replacedEarlier, ...manifest],
        reason: `invalidate is all: every uploaded or copied key (${uploaded.length})${resumed} is invalidated.`
      }
    case 'auto': {
      const overwritten = uploaded.filter((f) => f.existed)
      const count = overwritten.length + replacedEarlier.length + manifest.length
      return {
        keys: [...overwritten.map((f) => f.key), ...replacedEarlier, ...manifest],
        reason:
          count > 0
            ? `invalidate is auto: ${overwritten.length} overwritten key(s)${resumed}${manifest.length ? ' and the rewritten manifest' : ''} may be cached at the edge; new keys cannot be.`
            : 'invalidate is auto: every uploaded or copied key is new, so no edge cache can hold a stale copy.'
      }
    }
  }
}

/**
 * Skipped keys whose bytes differ from what the stored manifest (the last finished deploy)
 * recorded: an earlier run replaced them and then failed before invalidating them.
 */
function skippedSinceChanged(files: PlannedFile[], stored: Manifest): string[] {
  const published = new Map(stored.files.map((f) => [f.key, f.sha256]))
  return files
    .filter((f) => f.action === 'skip' && published.has(f.key) && published.get(f.key) !== f.sha256)
    .map((f) => f.key)
}

function logPlan(
  files: PlannedFile[],
  inputs: Pick<DeployInputs, 'dryRun' | 'bucket'>,
  logger: Logger
): void {
  const dry = inputs.dryRun
  for (const f of files) {
    const overwrite = f.existed ? ' (overwrite)' : ''
    const what =
      f.action === 'skip'
        ? `${dry ? 'Would skip' : 'Skip'} ${f.relativePath}: s3://${inputs.bucket}/${f.key} already holds these bytes`
        : f.action === 'copy'
          ? `${dry ? 'Would copy' : 'Copy'} ${f.relativePath} (${formatBytes(f.size)}) → s3://${inputs.bucket}/${f.key}${overwrite} server-side from ${f.copyFrom?.key}, which holds the same bytes`
          : `${dry ? 'Would upload' : 'Upload'} ${f.relativePath} (${formatBytes(f.size)}) → s3://${inputs.bucket}/${f.key}${overwrite}`
    logger.info(what)
  }
}
