import type { Clients } from '../aws/clients.js'
import type { ModeDeps } from '../commands/mode-deps.js'
import { runMode, type ModeResult } from '../commands/run.js'
import { InputError, type DeployError } from '../common/errors.js'
import type { DeployInputs } from '../common/types.js'
import { previewTagging } from '../release/cleanup.js'
import { renderResult } from '../report/render.js'
import {
  createGitHubClient,
  previewCommentBody,
  pullRequestFromEvent,
  removedCommentBody,
  upsertPreviewComment,
  type CommentOutcome,
  type PullRequestContext
} from './pr-comment.js'

/** What a run hands the runner: outputs, the job summary, and a failure to raise after them. */
export interface ModeOutcome {
  /** Keyed by the `Outputs` names. */
  outputs: Record<string, string>
  summary: string
  failure?: DeployError
}

/** The core's command, plus what only a pull request run has: preview tags and the comment. */
export async function runActionMode(
  inputs: DeployInputs,
  clients: Clients,
  deps: ModeDeps
): Promise<ModeOutcome> {
  // Read first: a broken event payload is reported before anything is written.
  const pr = pullRequestFromEvent(deps.env)
  // Preview objects carry a tag, so a lifecycle rule can expire previews nobody cleaned up.
  const result = await runMode(inputs, clients, {
    ...deps,
    objectTagging: pr ? previewTagging() : undefined
  })
  const comment = pr && inputs.prComment ? await commentOn(result, inputs, pr, deps) : undefined
  const rendered = renderResult(result, comment)
  for (const warning of rendered.warnings) deps.logger.warning(warning)
  return { outputs: rendered.outputs, summary: rendered.summary, failure: result.failure }
}

/** The preview's comment after a deploy, its removal notice after a clean-up. */
async function commentOn(
  result: ModeResult,
  inputs: Pick<DeployInputs, 'githubToken' | 'dryRun' | 'prCommentId'>,
  pr: PullRequestContext,
  deps: ModeDeps
): Promise<CommentOutcome | undefined> {
  switch (result.mode) {
    case 'deploy': {
      // A comment would advertise URLs that do not serve what was uploaded.
      if (result.failure) return undefined
      const report = result.report
      const body = previewCommentBody({
        pr,
        versionPrefix: report.versionPrefix,
        commentId: inputs.prCommentId,
        files: report.files,
        manifestUrl: report.manifest ? report.manifestUrl : undefined,
        signedUrlsExpireAt: report.signing?.expiresAt,
        updatedAt: new Date(deps.now())
      })
      return commentOnPullRequest(inputs, pr, body, deps, true)
    }
    case 'cleanup': {
      const body = removedCommentBody({
        pr,
        versionPrefix: result.report.versionPrefix,
        commentId: inputs.prCommentId,
        deletedObjects: result.report.result.deleted,
        deletedBytes: result.report.result.bytes,
        removedAt: new Date(deps.now())
      })
      return commentOnPullRequest(inputs, pr, body, deps, false)
    }
    case 'promote':
      return undefined
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
