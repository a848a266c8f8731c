import {
  applyAlias,
  loadVersion,
  planAlias,
  type AliasResult,
  type VersionSource
} from './alias.js'
import type { Clients } from '../aws/clients.js'
import { anySignal } from '../common/concurrency.js'
import { invalidateAndWait } from '../cdn/invalidation.js'
import { lockDeps, withLock } from '../aws/publish-lock.js'
import { objectUrl } from '../cdn/urls.js'
import type { DeployInputs, InvalidationOutcome, Logger, Sleep } from '../common/types.js'

export interface ReleaseDeps {
  logger: Logger
  sleep: Sleep
  env: NodeJS.ProcessEnv
  now: () => number
  signal?: AbortSignal
  /** Collects warnings for the summary (and logs them). */
  warn: (message: string) => void
}

/** An alias moved to a version: what changed, its URLs and its invalidation. */
export interface AliasMove {
  result: AliasResult
  /** Relative path → URL under the alias, the manifest as `manifest.json`. */
  urls: Record<string, string>
  invalidation: InvalidationOutcome
}

type ReleaseInputs = Pick<
  DeployInputs,
  | 'bucket'
  | 'alias'
  | 'aliasCacheControl'
  | 'concurrency'
  | 'dryRun'
  | 'distributionId'
  | 'waitForInvalidation'
  | 'waitTimeoutMinutes'
  | 'partSizeBytes'
  | 'lockTimeoutMinutes'
>

/**
 * Points `inputs.alias` at the version: server-side copies, the version's manifest, stale keys
 * removed (alias.ts), then exactly the alias paths that changed invalidated and waited for.
 * `version` is the published version (loadVersion), or, in a dry run before anything is
 * uploaded, the manifest this run would write.
 */
export async function moveAlias(
  clients: Clients,
  inputs: ReleaseInputs & { alias: string },
  version: VersionSource,
  urlBase: string,
  deps: ReleaseDeps
): Promise<AliasMove> {
  const result = inputs.dryRun
    ? await planAndApply(clients, inputs, version, deps)
    : // Moves of one alias take turns: a second waits, then plans against what the first left,
      // so the alias always ends a whole copy of one version.
      await withLock(
        clients.s3,
        { bucket: inputs.bucket, prefix: inputs.alias, purpose: 'alias' },
        lockDeps(inputs, deps),
        (lock) =>
          planAndApply(clients, inputs, version, {
            ...deps,
            signal: anySignal(deps.signal, lock?.lost)
          })
      )
  const paths = inputs.distributionId ? result.invalidationPaths : []
  const invalidation: InvalidationOutcome = {
    reason: !inputs.distributionId
      ? 'No distribution-id given, so there is nothing to invalidate.'
      : paths.length
        ? `alias ${inputs.alias} now serves ${result.versionPrefix}: its overwritten and removed paths and its manifest may be cached at the edge.`
        : `alias ${inputs.alias}: no path that was served before changed.`,
    paths,
    ids: [],
    status: 'none',
    waitedMs: 0
  }
  if (inputs.distributionId && paths.length > 0 && !inputs.dryRun) {
    await invalidateAndWait(clients.cloudfront, inputs.distributionId, invalidation, {
      env: deps.env,
      logger: deps.logger,
      sleep: deps.sleep,
      now: deps.now,
      wait: inputs.waitForInvalidation,
      waitTimeoutMinutes: inputs.waitTimeoutMinutes,
      label: `alias ${inputs.alias}`,
      warn: deps.warn
    })
  }
  const urls: Record<string, string> = {}
  for (const file of result.files) urls[file.path] = objectUrl(urlBase, file.key)
  urls['manifest.json'] = objectUrl(urlBase, result.manifestKey)
  return { result, urls, invalidation }
}

async function planAndApply(
  clients: Clients,
  inputs: ReleaseInputs & { alias: string },
  version: VersionSource,
  deps: Pick<ReleaseDeps, 'logger' | 'signal'>
): Promise<AliasResult> {
  const plan = await planAlias(
    clients.s3,
    { bucket: inputs.bucket, alias: inputs.alias, aliasCacheControl: inputs.aliasCacheControl },
    version
  )
  return applyAlias(clients.s3, plan, {
    concurrency: inputs.concurrency,
    logger: deps.logger,
    signal: deps.signal,
    dryRun: inputs.dryRun,
    partSize: inputs.partSizeBytes
  })
}

/** `mode: promote`: the alias moves to an existing, complete version; nothing is uploaded. */
export async function promoteVersion(
  clients: Clients,
  inputs: ReleaseInputs & { alias: string; versionPrefix: string },
  urlBase: string,
  deps: ReleaseDeps
): Promise<AliasMove> {
  const version = await loadVersion(clients.s3, inputs.bucket, inputs.versionPrefix)
  deps.logger.info(
    `${inputs.versionPrefix} is complete: ${version.manifest.files.length} file(s) as its manifest lists them.`
  )
  return moveAlias(clients, inputs, version, urlBase, deps)
}
