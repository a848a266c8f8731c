/**
 * Runs the committed dist/index.js as a GitHub runner does. The implementation lives in
 * scripts/lib/run-action.mjs because `npm run demo` (plain Node, no TypeScript) runs the action
 * the same way; this module is the tests' typed entry point to it.
 */
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
