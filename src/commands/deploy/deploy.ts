import type { Clients } from '../../aws/clients.js'
import type { PreflightFinding } from '../../cdn/preflight/index.js'
import type { SigningReport } from '../../cdn/signing.js'
import { objectUrl } from '../../cdn/urls.js'
import type { VerifyResult } from '../../cdn/verify.js'
import type {
  DeployInputs,
  InvalidationOutcome,
  Logger,
  Manifest,
  PublishedFile,
  Sleep
} from '../../common/types.js'
import type { Plan } from '../../publish/plan.js'
import { moveAlias, type AliasMove, type ReleaseDeps } from '../../release/promote.js'
import {
  decideManifestAndInvalidation,
  logPlan,
  type Decisions,
  type ManifestAction
} from './decide.js'
import { finishDeploy, type AliasInputs } from './finish.js'
import { findFiles, planWithTarget, sharedHashes } from './prepare.js'
import { publishLocked } from './write-version.js'

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
  manifestAction: ManifestAction
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

  const sources = await findFiles(inputs, clients, { logger, signal: deps.signal })
  const { root } = sources
  // Shared by a second plan, made when the version changed while this run waited for its lock.
  const hash = sharedHashes()
  const { plan, target } = await planWithTarget(sources, inputs, clients, { ...deps, warn, hash })
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
  const found = { root, urlBase, distribution: distributionRef, preflight, warnings }
  const report = (decided: Decisions, files: PublishedFile[], outcome: Partial<DeployReport>) =>
    deployReport(inputs, { ...found, durationMs: now() - started }, decided, files, outcome)

  if (inputs.dryRun) {
    const dry = await dryRunDeploy(plan, decide, inputs, clients, urlBase, releaseDeps)
    return report(dry.decided, dry.files, { alias: dry.alias })
  }
  const published = await publishLocked(plan, decide, inputs, clients.s3, { ...deps, hash })
  const { decided, files, bytesUploaded, bytesCopied } = published
  const finished = await finishDeploy(decided, files, inputs, clients, urlBase, releaseDeps)
  return report(decided, files, { ...finished, bytesUploaded, bytesCopied })
}

/** What a real deploy would do, logged; every SHA-256 read and the alias planned, nothing written. */
async function dryRunDeploy(
  plan: Plan,
  decide: (plan: Plan) => Promise<Decisions>,
  inputs: AliasInputs,
  clients: Clients,
  urlBase: string,
  deps: ReleaseDeps
): Promise<{ decided: Decisions; files: PublishedFile[]; alias?: AliasMove }> {
  const decided = await decide(plan)
  logPlan(decided.planned, inputs, deps.logger)
  // A dry run reads every file's SHA-256 in the plan.
  const files = await plan.hashed(decided.planned)
  let alias: AliasMove | undefined
  if (inputs.alias && decided.manifest) {
    const version = { versionPrefix: inputs.versionPrefix, manifest: decided.manifest }
    alias = await moveAlias(clients, { ...inputs, alias: inputs.alias }, version, urlBase, deps)
  }
  const { manifestAction, manifest, invalidation } = decided
  const paths = invalidation.paths
  deps.logger.info(
    `Dry run: would ${manifestAction === 'written' ? 'write' : 'keep'} ${decided.manifestKey}` +
      `${manifest ? '' : ' (manifest disabled)'} and invalidate ${paths.length} path(s)${paths.length ? `: ${paths.join(' ')}` : ''}. Nothing was changed.`
  )
  return { decided, files, alias }
}

/** Where the run published (root, URLs, distribution), its warnings and how long it took. */
interface Found extends Pick<
  DeployReport,
  'root' | 'distribution' | 'preflight' | 'warnings' | 'durationMs'
> {
  urlBase: string
}

/** The report of the decisions and files, with what the later stages added (`outcome`). */
function deployReport(
  inputs: Pick<DeployInputs, 'versionPrefix' | 'bucket' | 'dryRun'>,
  found: Found,
  decided: Decisions,
  files: PublishedFile[],
  outcome: Partial<DeployReport>
): DeployReport {
  return {
    versionPrefix: inputs.versionPrefix,
    bucket: inputs.bucket,
    dryRun: inputs.dryRun,
    root: found.root,
    files,
    manifest: decided.manifest,
    manifestUrl: decided.manifest ? objectUrl(found.urlBase, decided.manifestKey) : '',
    manifestAction: decided.manifestAction,
    invalidation: decided.invalidation,
    bytesUploaded: 0,
    bytesCopied: 0,
    durationMs: found.durationMs,
    distribution: found.distribution,
    warnings: found.warnings,
    preflight: found.preflight,
    ...outcome
  }
}
