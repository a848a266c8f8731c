import type { Clients } from '../aws/clients.js'
import { verificationError } from '../cdn/verify.js'
import type { DeployError } from '../common/errors.js'
import type { DeployInputs } from '../common/types.js'
import { cleanupVersion, type CleanupReport } from './cleanup.js'
import { deploy, type DeployReport } from './deploy/deploy.js'
import type { ModeDeps } from './mode-deps.js'
import { promote, type PromoteReport } from './promote.js'

/**
 * What a command did, for a front-end to render (outputs, summary, a PR comment, JSON); with the
 * failure to raise after rendering, when the run must fail although its result is worth showing.
 */
export type ModeResult = (
  | { mode: 'deploy'; report: DeployReport }
  | { mode: 'promote'; report: PromoteReport }
  | { mode: 'cleanup'; report: CleanupReport }
) & { failure?: DeployError }

/** Runs the `mode` the inputs ask for. */
export async function runMode(
  inputs: DeployInputs,
  clients: Clients,
  deps: ModeDeps
): Promise<ModeResult> {
  switch (inputs.mode) {
    case 'deploy': {
      const report = await deploy(inputs, clients, deps)
      // Published, but the URLs do not serve what was uploaded.
      const failure =
        report.verification && !report.verification.verified
          ? verificationError(report.verification)
          : undefined
      return { mode: 'deploy', report, failure }
    }
    case 'promote':
      return { mode: 'promote', report: await promote(inputs, clients, deps) }
    case 'cleanup':
      return { mode: 'cleanup', report: await cleanupVersion(inputs, clients, deps) }
  }
}
