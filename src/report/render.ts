import type { ModeResult } from '../commands/run.js'
import { Outputs } from '../common/constants.js'
import { buildOutputs, sortedJson } from './outputs.js'
import { buildSummary, cleanupSummary, promoteSummary } from './summary.js'

/** What a front-end shows of a command: the action's outputs and the Markdown summary. */
export interface Rendered {
  /** Keyed by the `Outputs` names. */
  outputs: Record<string, string>
  summary: string
  /** Why an output was left out or may be too large; for the log (also in the summary). */
  warnings: string[]
}

/** The pull request comment written after the command, when there is one (the Action's). */
export interface CommentShown {
  url?: string
  /** What happened to it, for the summary. */
  message?: string
  /** Already logged; repeated in the summary. */
  warning?: string
}

/** The same outputs and summary for both front-ends, so `--json` holds what the Action sets. */
export function renderResult(result: ModeResult, comment?: CommentShown): Rendered {
  const commentWarnings = comment?.warning ? [comment.warning] : []
  switch (result.mode) {
    case 'deploy': {
      const report = result.report
      const built = buildOutputs({
        ...report,
        aliasUrls: report.alias?.urls,
        aliasInvalidation: report.alias?.invalidation
      })
      return {
        outputs: { ...built.outputs, [Outputs.CommentUrl]: comment?.url ?? '' },
        summary: buildSummary({
          ...report,
          warnings: [...report.warnings, ...built.warnings, ...commentWarnings],
          comment: comment?.message
        }),
        warnings: built.warnings
      }
    }
    case 'promote': {
      const { move, bucket, versionPrefix, warnings } = result.report
      return {
        outputs: {
          [Outputs.VersionPrefix]: versionPrefix,
          [Outputs.AliasUrls]: sortedJson(move.urls),
          [Outputs.InvalidationIds]: JSON.stringify(move.invalidation.ids),
          [Outputs.InvalidationStatus]: move.invalidation.status
        },
        summary: promoteSummary(move, bucket, warnings),
        warnings: []
      }
    }
    case 'cleanup': {
      const report = result.report
      return {
        outputs: {
          [Outputs.VersionPrefix]: report.versionPrefix,
          [Outputs.Deleted]: String(report.result.deleted),
          [Outputs.InvalidationIds]: JSON.stringify(report.invalidation.ids),
          [Outputs.InvalidationStatus]: report.invalidation.status,
          [Outputs.CommentUrl]: comment?.url ?? ''
        },
        summary: cleanupSummary(
          report.result,
          report,
          report.invalidation,
          [...report.warnings, ...commentWarnings],
          comment?.message
        ),
        warnings: []
      }
    }
  }
}
