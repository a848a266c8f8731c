/**
 * Runs the committed dist/index.js as a GitHub runner does. The implementation lives in
 * scripts/lib/run-action.mjs because `npm run demo` (plain Node, no TypeScript) runs the action
 * the same way; this module is the tests' typed entry point to it.
 */
import type { RunActionResult } from '../../scripts/lib/run-action.mjs'

export {
  REPO_ROOT,
  inputEnvName,
  parseActionInputs,
  parseAnnotations,
  parseCommandFile,
  readActionInputs,
  runAction
} from '../../scripts/lib/run-action.mjs'
export type {
  ActionInput,
  Annotation,
  RunActionOptions,
  RunActionResult
} from '../../scripts/lib/run-action.mjs'

/** The run's own output, for the message of a failed expectation (add-mask lines left out). */
export function diagnostics(r: RunActionResult): string {
  const stdout = r.stdout
    .split('\n')
    .filter((line) => !line.startsWith('::add-mask::'))
    .join('\n')
  return [
    `exit ${r.exitCode}${r.signal ? ` signal ${r.signal}` : ''}`,
    `--- errors ---\n${r.errors.join('\n')}`,
    `--- warnings ---\n${r.warnings.join('\n')}`,
    `--- stdout ---\n${stdout.slice(-6000)}`,
    `--- stderr ---\n${r.stderr.slice(-4000)}`
  ].join('\n')
}

/** Throws with the run's diagnostics unless it exited with `code`. */
export function expectExit(r: RunActionResult, code: number): void {
  if (r.exitCode !== code) throw new Error(`Expected exit ${code}:\n${diagnostics(r)}`)
}

export const expectSuccess = (r: RunActionResult): void => expectExit(r, 0)
/** The action fails with exit code 1 (an `::error::`), not a crash or a signal. */
export const expectFailure = (r: RunActionResult): void => expectExit(r, 1)
