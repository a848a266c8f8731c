import type { Clients } from '../aws/clients.js'
import { lockDeps, withLock } from '../aws/publish-lock.js'
import { invalidateAndWait } from '../cdn/invalidation.js'
import { anySignal } from '../common/concurrency.js'
import type { DeployInputs, InvalidationOutcome } from '../common/types.js'
import {
  executeCleanup,
  planCleanup,
  type CleanupPlan,
  type CleanupResult
} from '../release/cleanup.js'
import { collectWarnings, type ModeDeps } from './mode-deps.js'

/** What `cleanup` did: the objects and uploads removed, and the invalidation of their paths. */
export interface CleanupReport {
  bucket: string
  versionPrefix: string
  result: CleanupResult
  invalidation: InvalidationOutcome
  warnings: string[]
}

/** Deletes one version prefix (e.g. a preview), refusing one an alias points to. */
export async function cleanupVersion(
  inputs: DeployInputs,
  clients: Clients,
  deps: ModeDeps
): Promise<CleanupReport> {
  const { warnings, warn } = collectWarnings(deps.logger)
  const result = await removeVersion(inputs, clients, deps, warn)
  const invalidation = await invalidateRemoved(inputs, clients, deps, warn, result)
  return {
    bucket: inputs.bucket,
    versionPrefix: inputs.versionPrefix,
    result,
    invalidation,
    warnings
  }
}

async function removeVersion(
  inputs: DeployInputs,
  clients: Clients,
  deps: ModeDeps,
  warn: (message: string) => void
): Promise<CleanupResult> {
  const plan = (signal: AbortSignal | undefined) =>
    planCleanup(
      clients.s3,
      {
        bucket: inputs.bucket,
        versionPrefix: inputs.versionPrefix,
        aliases: [...inputs.aliases, ...(inputs.alias ? [inputs.alias] : [])]
      },
      { concurrency: inputs.concurrency, logger: deps.logger, signal }
    )
  const execute = (planned: CleanupPlan, signal: AbortSignal | undefined) =>
    executeCleanup(clients.s3, planned, { logger: deps.logger, dryRun: inputs.dryRun, signal })
  // Read-only first: a refused clean-up, a dry run or an empty prefix writes nothing, no lock.
  const first = await plan(deps.signal)
  const nothingToRemove = first.objects.length === 0 && first.uploads.length === 0
  if (inputs.dryRun || nothingToRemove) return execute(first, deps.signal)
  // Then under the version's lock, planned again: a deploy of the same prefix still running
  // finishes first, and what it published is removed too instead of written back afterwards.
  return withLock(
    clients.s3,
    { bucket: inputs.bucket, prefix: inputs.versionPrefix, purpose: 'cleanup' },
    lockDeps(inputs, deps),
    async (lock) => {
      const signal = anySignal(deps.signal, lock?.lost)
      return execute(await plan(signal), signal)
    },
    (why) =>
      warn(
        `Removing ${inputs.versionPrefix} without its lock (${why}): a deploy of it running now could write files back. Grant s3:PutObject on the bucket's objects to make clean-ups wait for it.`
      )
  )
}

async function invalidateRemoved(
  inputs: DeployInputs,
  clients: Clients,
  deps: ModeDeps,
  warn: (message: string) => void,
  result: CleanupResult
): Promise<InvalidationOutcome> {
  const invalidation: InvalidationOutcome = {
    reason: inputs.distributionId
      ? `the objects under ${inputs.versionPrefix}/ were deleted; edges may still cache them.`
      : 'No distribution-id given, so there is nothing to invalidate.',
    paths: inputs.distributionId ? [result.invalidationPath] : [],
    ids: [],
    status: 'none',
    waitedMs: 0
  }
  // Even with nothing left to delete: an earlier, interrupted clean-up may have left edge copies.
  if (inputs.distributionId && !inputs.dryRun) {
    await invalidateAndWait(clients.cloudfront, inputs.distributionId, invalidation, {
      env: deps.env,
      logger: deps.logger,
      sleep: deps.sleep,
      now: deps.now,
      wait: inputs.waitForInvalidation,
      waitTimeoutMinutes: inputs.waitTimeoutMinutes,
      warn
    })
  }
  return invalidation
}
