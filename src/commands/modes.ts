import { executeCleanup, planCleanup, previewTagging, type CleanupPlan } from '../release/cleanup.js'
import type { Clients } from '../aws/clients.js'
import { Outputs } from '../common/constants.js'
import { deploy, type DeployDeps } from './deploy.js'
import { InputError, type DeployError } from '../common/errors.js'
import { invalidateAndWait } from '../cdn/invalidation.js'
import { buildOutputs, sortedJson } from '../report/outputs.js'
import {
  createGitHubClient,
  previewCommentBody,
  pullRequestFromEvent,
  removedCommentBody,
  upsertPreviewComment,
  type CommentOutcome,
  type PullRequestContext
} from '../action/pr-comment.js'
import { promoteVersion } from '../release/promote.js'
import { lockDeps, withLock } from '../aws/publish-lock.js'
import { anySignal } from '../common/concurrency.js'
import { buildSummary, cleanupSummary, promoteSummary } from '../report/summary.js'
import { resolveTarget } from '../cdn/target.js'
import type { DeployInputs, InvalidationOutcome, Logger } from '../common/types.js'
import { verificationError } from '../cdn/verify.js'

/** What a run hands the runner: outputs, the job summary, and a failure to raise after them. */
export interface ModeOutcome {
  /** Keyed by the `Outputs` names. */
  outputs: Record<string, string>
  summary: string
  /** Set when the run must fail although its outputs and summary are worth writing. */
  failure?: DeployError
}

export type ModeDeps = DeployDeps & { now: () => number }

/** Runs the `mode` the inputs ask for. */
export async function runMode(
  inputs: DeployInputs,
  clients: Clients,
  deps: ModeDeps
): Promise<ModeOutcome> {
  // Read first: a broken event payload is reported before anything is written.
  const pr = pullRequestFromEvent(deps.env)
  switch (inputs.mode) {
    case 'deploy':
      return deployMode(inputs, clients, deps, pr)
    case 'promote':
      return promoteMode(inputs, clients, deps)
    case 'cleanup':
      return cleanupMode(inputs, clients, deps, pr)
  }
}

async function deployMode(
  inputs: DeployInputs,
  clients: Clients,
  deps: ModeDeps,
  pr: PullRequestContext | undefined
): Promise<ModeOutcome> {
  // Preview objects carry a tag, so a lifecycle rule can expire previews nobody cleaned up.
  const report = await deploy(inputs, clients, {
    ...deps,
    objectTagging: pr ? previewTagging() : undefined
  })
  const failure =
    report.verification && !report.verification.verified
      ? verificationError(report.verification)
      : undefined
  // A comment would advertise URLs that do not serve what was uploaded.
  const comment =
    pr && inputs.prComment && !failure
      ? await commentOnPullRequest(
          inputs,
          pr,
          previewCommentBody({
            pr,
            versionPrefix: report.versionPrefix,
            commentId: inputs.prCommentId,
            files: report.files,
            manifestUrl: report.manifest ? report.manifestUrl : undefined,
            signedUrlsExpireAt: report.signing?.expiresAt,
            updatedAt: new Date(deps.now())
          }),
          deps,
          true
        )
      : undefined
  const built = buildOutputs({
    ...report,
    aliasUrls: report.alias?.urls,
    aliasInvalidation: report.alias?.invalidation
  })
  for (const warning of built.warnings) deps.logger.warning(warning)
  return {
    outputs: { ...built.outputs, [Outputs.CommentUrl]: comment?.url ?? '' },
    summary: buildSummary({
      ...report,
      warnings: [...report.warnings, ...built.warnings, ...commentWarnings(comment)],
      comment: comment?.message
    }),
    failure
  }
}

async function promoteMode(
  inputs: DeployInputs,
  clients: Clients,
  deps: ModeDeps
): Promise<ModeOutcome> {
  const { warnings, warn } = collectWarnings(deps.logger)
  const alias = inputs.alias as string
  const target = await resolveTarget(inputs, clients, { ...deps, warn })
  const move = await promoteVersion(clients, { ...inputs, alias }, target.urlBase, {
    ...deps,
    warn
  })
  return {
    outputs: {
      [Outputs.VersionPrefix]: inputs.versionPrefix,
      [Outputs.AliasUrls]: sortedJson(move.urls),
      [Outputs.InvalidationIds]: JSON.stringify(move.invalidation.ids),
      [Outputs.InvalidationStatus]: move.invalidation.status
    },
    summary: promoteSummary(move, inputs.bucket, warnings)
  }
}

async function cleanupMode(
  inputs: DeployInputs,
  clients: Clients,
  deps: ModeDeps,
  pr: PullRequestContext | undefined
): Promise<ModeOutcome> {
  const { warnings, warn } = collectWarnings(deps.logger)
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
  // Then under the version's lock, planned again: a deploy of the same prefix still running
  // finishes first, and what it published is removed too instead of written back afterwards.
  const result =
    inputs.dryRun || nothingToRemove
      ? await execute(first, deps.signal)
      : await withLock(
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
  const paths = inputs.distributionId ? [result.invalidationPath] : []
  const invalidation: InvalidationOutcome = {
    reason: inputs.distributionId
      ? `the objects under ${inputs.versionPrefix}/ were deleted; edges may still cache them.`
      : 'No distribution-id given, so there is nothing to invalidate.',
    paths,
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
  const comment =
    pr && inputs.prComment
      ? await commentOnPullRequest(
          inputs,
          pr,
          removedCommentBody({
            pr,
            versionPrefix: inputs.versionPrefix,
            commentId: inputs.prCommentId,
            deletedObjects: result.deleted,
            deletedBytes: result.bytes,
            removedAt: new Date(deps.now())
          }),
          deps,
          false
        )
      : undefined
  return {
    outputs: {
      [Outputs.VersionPrefix]: inputs.versionPrefix,
      [Outputs.Deleted]: String(result.deleted),
      [Outputs.InvalidationIds]: JSON.stringify(invalidation.ids),
      [Outputs.InvalidationStatus]: invalidation.status,
      [Outputs.CommentUrl]: comment?.url ?? ''
    },
    summary: cleanupSummary(
      result,
      inputs,
      invalidation,
      [...warnings, ...commentWarnings(comment)],
      comment?.message
    )
  }
}

/**
 * Creates or edits this step's comment on the pull request. Never fails the run: the deploy has
 * succeeded by then, so a missing permission (fork PRs get a read-only token) is a warning.
 */
async function commentOnPullRequest(
  inputs: Pick<DeployInputs, 'githubToken' | 'dryRun'>,
  pr: PullRequestContext,
  body: string,
  deps: ModeDeps,
  create: boolean
): Promise<CommentOutcome> {
  try {
    const github = await createGitHubClient(inputs.githubToken, deps.env)
    return await upsertPreviewComment(github, pr, body, {
      dryRun: inputs.dryRun,
      logger: deps.logger,
      create,
      signal: deps.signal,
      sleep: deps.sleep
    })
  } catch (err) {
    if (!(err instanceof InputError)) throw err
    const warning = `${err.message} ${err.hint ?? ''}`.trim()
    deps.logger.warning(warning)
    return { action: 'failed', warning, message: 'not written (no token)' }
  }
}

/** The comment's warning, already logged, for the summary. */
function commentWarnings(comment: CommentOutcome | undefined): string[] {
  return comment?.warning ? [comment.warning] : []
}

function collectWarnings(logger: Logger): { warnings: string[]; warn: (m: string) => void } {
  const warnings: string[] = []
  return {
    warnings,
    warn: (message) => {
      warnings.push(message)
      logger.warning(message)
    }
  }
}
