import { createHash } from 'node:crypto'
import type { Clients } from './clients.js'
import { DeployError } from './errors.js'
import { discoverFiles } from './files.js'
import { invalidateAndWait, planInvalidation } from './invalidation.js'
import { loadVersion } from './alias.js'
import { MANIFEST_FILE_NAME } from './constants.js'
import { buildManifest, gitContextFromEnv, manifestKey, serializeManifest } from './manifest.js'
import { sameFiles, writeManifest } from './manifest-store.js'
import { planDeploy } from './plan.js'
import { formatBytes } from './progress.js'
import type { PreflightFinding } from './preflight.js'
import { moveAlias, type AliasMove } from './release.js'
import { copyFiles } from './reuse.js'
import { signPublished, type SigningReport } from './signing.js'
import { resolveTarget, type Target } from './target.js'
import { verifyPublished, type VerifyResult, type VerifyTarget } from './verify.js'
import { uploadFiles, type UploadOptions } from './upload.js'
import { objectUrl } from './urls.js'
import type {
  DeployInputs,
  InvalidationOutcome,
  Logger,
  Manifest,
  PlannedFile,
  PublishedFile,
  Sleep
} from './types.js'

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
 * uploads (each new file hashed just before it is sent), then the manifest (so it never lists an
 * object that is not there), then invalidation.
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

  // The plan needs nothing from the target: files are hashed and the version listed while the
  // pre-flight checks and GetDistribution are answered. The target's errors are reported first,
  // and stop the plan.
  const stopPlanning = new AbortController()
  const planSignal = deps.signal
    ? AbortSignal.any([deps.signal, stopPlanning.signal])
    : stopPlanning.signal
  const planning = planDeploy(clients.s3, local, inputs, {
    logger,
    signal: planSignal,
    reuse: {
      bucket: inputs.bucket,
      versionPrefix: inputs.versionPrefix,
      searchPrefixes: reuseSearchPrefixes(inputs),
      logger,
      signal: planSignal
    }
  })
  // Awaited once the target is known; a target that fails first must not leave it unhandled.
  planning.catch(() => undefined)
  let target: Target
  try {
    target = await resolveTarget(inputs, clients, {
      env: deps.env,
      logger,
      warn,
      signal: deps.signal
    })
  } catch (err) {
    stopPlanning.abort(err)
    throw err
  }
  const { distribution, urlBase, preflight } = target

  const plan = await planning.catch((err) => {
    stopIfCancelled(deps.signal, 'while hashing and checking existing keys: nothing was uploaded')
    throw err
  })
  const planned = plan.files.map((f) => ({ ...f, url: objectUrl(urlBase, f.key) }))
  logPlan(planned, inputs, logger)
  /** Every file with its SHA-256; files hashed while uploading are added once uploaded. */
  let files: PublishedFile[] = []

  const distributionRef = distribution ? { id: distribution.id, domain: distribution.domain } : null
  const manifestObjectKey = manifestKey(inputs.versionPrefix)
  const manifestExisted = plan.existing.has(manifestObjectKey)
  const build = (published: PublishedFile[]): Manifest =>
    buildManifest({
      versionPrefix: inputs.versionPrefix,
      bucket: inputs.bucket,
      files: published,
      metadata: inputs.metadata,
      distribution: distributionRef,
      git: gitContextFromEnv(deps.env),
      createdAt: new Date(now())
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

  const toInvalidate = invalidationKeys(
    planned,
    inputs,
    manifestAction === 'written' && manifestExisted,
    replacedEarlier
  )
  const keysUnderPrefix = [...new Set([...plan.existing.keys(), ...planned.map((f) => f.key)])]
  if (inputs.manifest) keysUnderPrefix.push(manifestObjectKey)
  const paths = inputs.distributionId
    ? planInvalidation({
        keys: toInvalidate.keys,
        keysUnderPrefix: [...new Set(keysUnderPrefix)],
        extraPaths: inputs.invalidationPaths
      })
    : []
  const invalidation: InvalidationOutcome = {
    reason: inputs.distributionId
      ? toInvalidate.reason
      : 'No distribution-id given, so there is nothing to invalidate.',
    paths,
    ids: [],
    status: 'none',
    waitedMs: 0
  }

  let alias: AliasMove | undefined
  let signing: SigningReport | undefined
  const releaseDeps = { logger, sleep: deps.sleep, env: deps.env, now, signal: deps.signal, warn }
  const manifestTarget = (m: Manifest): VerifyTarget => {
    const body = serializeManifest(m)
    return {
      relativePath: MANIFEST_FILE_NAME,
      url: objectUrl(urlBase, manifestObjectKey),
      size: Buffer.byteLength(body),
      sha256: createHash('sha256').update(body).digest('hex')
    }
  }
  const report = (bytesUploaded: number, bytesCopied = 0): DeployReport => ({
    versionPrefix: inputs.versionPrefix,
    bucket: inputs.bucket,
    dryRun: inputs.dryRun,
    root,
    files,
    manifest,
    manifestUrl: manifest ? objectUrl(urlBase, manifestObjectKey) : '',
    manifestAction,
    invalidation,
    bytesUploaded,
    bytesCopied,
    durationMs: now() - started,
    distribution: distributionRef,
    warnings,
    preflight,
    alias,
    signing
  })

  if (inputs.dryRun) {
    // A dry run reads every file's SHA-256 in the plan.
    files = await plan.hashed(planned)
    if (inputs.alias && manifest) {
      const version = { versionPrefix: inputs.versionPrefix, manifest }
      alias = await moveAlias(
        clients,
        { ...inputs, alias: inputs.alias },
        version,
        urlBase,
        releaseDeps
      )
    }
    logger.info(
      `Dry run: would ${manifestAction === 'written' ? 'write' : 'keep'} ${manifestObjectKey}` +
        `${manifest ? '' : ' (manifest disabled)'} and invalidate ${paths.length} path(s)${paths.length ? `: ${paths.join(' ')}` : ''}. Nothing was changed.`
    )
    return report(0)
  }

  let transferred: Awaited<ReturnType<typeof copyAndUpload>>
  try {
    transferred = await copyAndUpload(clients.s3, planned, inputs, {
      ...deps,
      hashesOf: plan.hashesOf
    })
  } catch (err) {
    plan.stopHashing(err)
    throw err
  }
  const { bytesUploaded, bytesCopied } = transferred
  // Every hash was read before its file was sent.
  files = await plan.hashed(planned)

  // uploadFiles rejects once cancelled already; the manifest's guarantee is kept here too.
  stopIfCancelled(deps.signal, 'after every file was uploaded: the manifest was not written')
  if (inputs.manifest && manifestAction === 'written') {
    manifest ??= build(files)
    await writeManifest(
      clients.s3,
      inputs.bucket,
      manifestObjectKey,
      serializeManifest(manifest),
      deps.objectTagging
    )
    logger.info(`Wrote s3://${inputs.bucket}/${manifestObjectKey}.`)
  }

  if (inputs.distributionId && paths.length > 0) {
    stopIfCancelled(
      deps.signal,
      `after publishing the files${manifest ? ' and the manifest' : ''}, before invalidating ` +
        `${paths.length} path(s): edge caches may serve their old bytes until they expire`
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
  const targets: VerifyTarget[] = [...files, ...(manifest ? [manifestTarget(manifest)] : [])]
  if (inputs.signing) {
    signing = signPublished(targets, urlBase, inputs.versionPrefix, inputs.signing, now())
  }
  const verification = await verifyDeployed(targets, inputs, {
    logger,
    warn,
    signedUrls: signing?.urls,
    invalidations: [invalidation],
    sleep: deps.sleep,
    signal: deps.signal
  })

  // Verified first: an alias must never move to a version that does not serve what was uploaded.
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
  return { ...report(bytesUploaded, bytesCopied), verification }
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
  deps: Pick<DeployDeps, 'logger' | 'signal' | 'objectTagging'> & Pick<UploadOptions, 'hashesOf'>
): Promise<{ bytesUploaded: number; bytesCopied: number }> {
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
    hashesOf: deps.hashesOf
  }
  const [copied, uploaded] = await Promise.allSettled([
    cancelOnFailure(copyFiles(s3, files, { ...headers, signal })),
    cancelOnFailure(uploadFiles(s3, files, { ...uploadOptions, signal }))
  ])
  if (copied.status === 'rejected' || uploaded.status === 'rejected') throw failure
  const { bytesCopied, fallBack } = copied.value
  let { bytesUploaded } = uploaded.value
  if (fallBack.length > 0) {
    const again = files.filter((f) => fallBack.some((fb) => fb.key === f.key))
    for (const file of again) Object.assign(file, { action: 'upload', copyFrom: undefined })
    bytesUploaded += (await uploadFiles(s3, again, { ...uploadOptions, signal: deps.signal }))
      .bytesUploaded
  }
  return { bytesUploaded, bytesCopied }
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
