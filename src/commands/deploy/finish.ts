import { createHash } from 'node:crypto'
import type { Clients } from '../../aws/clients.js'
import { invalidateAndWait } from '../../cdn/invalidation.js'
import { signPublished, type SigningReport } from '../../cdn/signing.js'
import { objectUrl } from '../../cdn/urls.js'
import { verifyPublished, type VerifyResult, type VerifyTarget } from '../../cdn/verify.js'
import { MANIFEST_FILE_NAME } from '../../common/constants.js'
import type {
  DeployInputs,
  InvalidationOutcome,
  Logger,
  Manifest,
  PublishedFile,
  Sleep
} from '../../common/types.js'
import { serializeManifest } from '../../publish/manifest.js'
import { loadVersion } from '../../release/alias.js'
import { moveAlias, type AliasMove, type ReleaseDeps } from '../../release/promote.js'
import type { Decisions } from './decide.js'
import { stopIfCancelled } from './stop-if-cancelled.js'

/** What moving the alias reads; none is moved when `alias` is unset. */
export type AliasInputs = Omit<Parameters<typeof moveAlias>[1], 'alias'> &
  Pick<DeployInputs, 'alias' | 'versionPrefix'>

export type FinishInputs = AliasInputs &
  Pick<
    DeployInputs,
    'waitForInvalidation' | 'waitTimeoutMinutes' | 'signing' | 'verify' | 'concurrency' | 'urlBase'
  >

/** What the stages after the writes add to the report. */
export interface Finished {
  alias?: AliasMove
  signing?: SigningReport
  verification?: VerifyResult
}

/**
 * After the version is written: its invalidation, then its signed URLs, the check that every
 * URL serves what was uploaded, and the alias.
 */
export async function finishDeploy(
  decided: Decisions,
  files: PublishedFile[],
  inputs: FinishInputs,
  clients: Clients,
  urlBase: string,
  deps: ReleaseDeps
): Promise<Finished> {
  const { invalidation, manifest } = decided
  await invalidateVersion(invalidation, manifest !== null, inputs, clients.cloudfront, deps)
  // The manifest's digest serializes it again: only for signing or verifying.
  const withManifest = manifest && (inputs.signing || inputs.verify)
  const targets: VerifyTarget[] = [
    ...files,
    ...(withManifest ? [manifestTarget(manifest, objectUrl(urlBase, decided.manifestKey))] : [])
  ]
  const signing = inputs.signing
    ? signPublished(targets, urlBase, inputs.versionPrefix, inputs.signing, deps.now())
    : undefined
  const verification = await verifyDeployed(targets, inputs, {
    logger: deps.logger,
    warn: deps.warn,
    signedUrls: signing?.urls,
    invalidations: [invalidation],
    sleep: deps.sleep,
    signal: deps.signal
  })
  const alias = await aliasIfVerified(manifest, verification, inputs, clients, urlBase, deps)
  return { alias, signing, verification }
}

/** Invalidates the decided paths (when there are any and a distribution), waiting if asked. */
async function invalidateVersion(
  invalidation: InvalidationOutcome,
  withManifest: boolean,
  inputs: Pick<DeployInputs, 'distributionId' | 'waitForInvalidation' | 'waitTimeoutMinutes'>,
  cloudfront: Clients['cloudfront'],
  deps: ReleaseDeps
): Promise<void> {
  if (!inputs.distributionId || invalidation.paths.length === 0) return
  stopIfCancelled(
    deps.signal,
    `after publishing the files${withManifest ? ' and the manifest' : ''}, before invalidating ` +
      `${invalidation.paths.length} path(s): edge caches may serve their old bytes until they expire`
  )
  await invalidateAndWait(cloudfront, inputs.distributionId, invalidation, {
    env: deps.env,
    logger: deps.logger,
    sleep: deps.sleep,
    now: deps.now,
    wait: inputs.waitForInvalidation,
    waitTimeoutMinutes: inputs.waitTimeoutMinutes,
    warn: deps.warn
  })
}

async function aliasIfVerified(
  manifest: Manifest | null,
  verification: VerifyResult | undefined,
  inputs: AliasInputs,
  clients: Clients,
  urlBase: string,
  deps: ReleaseDeps
): Promise<AliasMove | undefined> {
  if (!inputs.alias) return undefined
  // Verified first: an alias must never move to a version that does not serve what was uploaded.
  if (verification?.verified === false) {
    deps.warn(`Alias ${inputs.alias} was not moved: ${inputs.versionPrefix} failed verification.`)
    return undefined
  }
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
  return moveAlias(clients, { ...inputs, alias: inputs.alias }, version, urlBase, deps)
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
