import { customS3Endpoint, type Clients } from './clients.js'
import { getDistribution, type DistributionInfo } from './distribution.js'
import { DeployError } from './errors.js'
import { discoverFiles } from './files.js'
import {
  createInvalidations,
  planInvalidation,
  toBatches,
  waitForInvalidations
} from './invalidation.js'
import { buildManifest, gitContextFromEnv, manifestKey, serializeManifest } from './manifest.js'
import { readStoredManifest, sameFiles, writeManifest } from './manifest-store.js'
import { planDeploy } from './plan.js'
import { formatBytes } from './progress.js'
import { copyFiles, findReusableObjects } from './reuse.js'
import { uploadFiles } from './upload.js'
import { objectUrl, s3UrlBase } from './urls.js'
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
}

/**
 * The whole deploy, in the order that keeps a failed run harmless: everything read-only and
 * validated first (files, distribution, existing keys, hashes), then the uploads, then the
 * manifest (so it never lists an object that is not there), then invalidation.
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

  let distribution: DistributionInfo | undefined
  if (inputs.distributionId) {
    distribution = await getDistribution(clients.cloudfront, inputs.distributionId)
    if (!distribution.enabled) {
      warn(
        `CloudFront distribution ${distribution.id} is disabled: the URLs will not serve until it is enabled.`
      )
    }
  }
  const urlBase =
    inputs.urlBase ??
    (distribution
      ? `https://${distribution.domain}`
      : s3UrlBase(inputs.bucket, inputs.region, customS3Endpoint(inputs, deps.env)))

  const plan = await planDeploy(clients.s3, local, inputs, logger, deps.signal).catch((err) => {
    stopIfCancelled(deps.signal, 'while hashing and checking existing keys: nothing was uploaded')
    throw err
  })
  const planned = await findReusableObjects(clients.s3, plan.files, {
    bucket: inputs.bucket,
    versionPrefix: inputs.versionPrefix,
    searchPrefixes: reuseSearchPrefixes(inputs),
    logger,
    signal: deps.signal
  })
  const files: PublishedFile[] = planned.map((f) => ({ ...f, url: objectUrl(urlBase, f.key) }))
  logPlan(files, inputs, logger)

  const distributionRef = distribution ? { id: distribution.id, domain: distribution.domain } : null
  const manifestObjectKey = manifestKey(inputs.versionPrefix)
  const manifestExisted = plan.existing.has(manifestObjectKey)
  let manifest: Manifest | null = null
  let manifestAction: DeployReport['manifestAction'] = 'none'
  /** Keys an earlier run overwrote but never finished publishing (and so never invalidated). */
  let replacedEarlier: string[] = []
  if (inputs.manifest) {
    const built = buildManifest({
      versionPrefix: inputs.versionPrefix,
      bucket: inputs.bucket,
      files,
      metadata: inputs.metadata,
      distribution: distributionRef,
      git: gitContextFromEnv(deps.env),
      createdAt: new Date(now())
    })
    const stored = manifestExisted
      ? await readStoredManifest(clients.s3, inputs.bucket, manifestObjectKey)
      : undefined
    // Same files: keep the stored manifest, whose provenance is the run that published them.
    const unchanged = stored !== undefined && sameFiles(stored, built)
    replacedEarlier = stored ? skippedSinceChanged(files, stored) : []
    manifest = unchanged ? stored : built
    manifestAction = unchanged ? 'unchanged' : 'written'
  }

  const toInvalidate = invalidationKeys(
    files,
    inputs,
    manifestAction === 'written' && manifestExisted,
    replacedEarlier
  )
  const keysUnderPrefix = [...new Set([...plan.existing.keys(), ...files.map((f) => f.key)])]
  if (manifest) keysUnderPrefix.push(manifestObjectKey)
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
    warnings
  })

  if (inputs.dryRun) {
    logger.info(
      `Dry run: would ${manifestAction === 'written' ? 'write' : 'keep'} ${manifestObjectKey}` +
        `${manifest ? '' : ' (manifest disabled)'} and invalidate ${paths.length} path(s)${paths.length ? `: ${paths.join(' ')}` : ''}. Nothing was changed.`
    )
    return report(0)
  }

  // Copies first: a source that changed since it was found falls back to an upload.
  const { bytesCopied, fallBack } = await copyFiles(clients.s3, files, {
    bucket: inputs.bucket,
    cacheControl: inputs.cacheControl,
    metadata: inputs.metadata,
    partSizeBytes: inputs.partSizeBytes,
    concurrency: inputs.concurrency,
    logger,
    signal: deps.signal
  })
  for (const file of fallBack) {
    const published = files.find((f) => f.key === file.key)
    if (published) Object.assign(published, { action: 'upload', copyFrom: undefined })
  }
  const { bytesUploaded } = await uploadFiles(clients.s3, files, {
    bucket: inputs.bucket,
    multipartThresholdBytes: inputs.multipartThresholdBytes,
    partSizeBytes: inputs.partSizeBytes,
    concurrency: inputs.concurrency,
    cacheControl: inputs.cacheControl,
    metadata: inputs.metadata,
    logger,
    signal: deps.signal
  })

  // uploadFiles rejects once cancelled already; the manifest's guarantee is kept here too.
  stopIfCancelled(deps.signal, 'after every file was uploaded: the manifest was not written')
  if (manifest && manifestAction === 'written') {
    await writeManifest(clients.s3, inputs.bucket, manifestObjectKey, serializeManifest(manifest))
    logger.info(`Wrote s3://${inputs.bucket}/${manifestObjectKey}.`)
  }

  if (inputs.distributionId && paths.length > 0) {
    stopIfCancelled(
      deps.signal,
      `after publishing the files${manifest ? ' and the manifest' : ''}, before invalidating ` +
        `${paths.length} path(s): edge caches may serve their old bytes until they expire`
    )
    const batches = toBatches(paths)
    invalidation.ids = await createInvalidations(
      clients.cloudfront,
      inputs.distributionId,
      batches,
      {
        runId: deps.env.GITHUB_RUN_ID ?? `local-${started}`,
        runAttempt: deps.env.GITHUB_RUN_ATTEMPT ?? '1',
        logger,
        sleep: deps.sleep,
        // A second batch waits for the first to leave CloudFront's 3,000-paths-in-progress
        // quota, which takes minutes: give it ~25 min of capped backoff rather than ~3.
        maxAttempts: batches.length > 1 ? 30 : undefined
      }
    )
    logger.info(
      `Created invalidation(s) ${invalidation.ids.join(', ')} for ${paths.length} path(s).`
    )
    invalidation.status = 'InProgress'
    if (inputs.waitForInvalidation) {
      const waited = await waitForInvalidations(
        clients.cloudfront,
        inputs.distributionId,
        invalidation.ids,
        {
          timeoutMs: inputs.waitTimeoutMinutes * 60_000,
          logger,
          sleep: deps.sleep,
          now
        }
      )
      invalidation.status = waited.status
      invalidation.waitedMs = waited.waitedMs
      if (waited.status !== 'Completed') {
        warn(
          `Invalidation(s) ${waited.pending.join(', ')} still in progress after ${inputs.waitTimeoutMinutes} min; CloudFront finishes them on its own. Edge caches may serve the old bytes until then.`
        )
      }
    }
  }
  return report(bytesUploaded, bytesCopied)
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
  files: PublishedFile[],
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
