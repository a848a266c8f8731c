import type { Logger } from '../common/types.js'
import type { DeployDeps } from './deploy/deploy.js'

/** What every command runs with: the deploy's dependencies and a clock. */
export type ModeDeps = DeployDeps & { now: () => number }

/** A `warn` that logs each warning and keeps it for the command's report. */
export function collectWarnings(logger: Logger): {
  warnings: string[]
  warn: (message: string) => void
} {
  const warnings: string[] = []
  return {
    warnings,
    warn: (message) => {
      warnings.push(message)
      logger.warning(message)
    }
  }
}
