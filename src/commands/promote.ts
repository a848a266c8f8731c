import type { Clients } from '../aws/clients.js'
import { resolveTarget } from '../cdn/target.js'
import type { DeployInputs } from '../common/types.js'
import { promoteVersion, type AliasMove } from '../release/promote.js'
import { collectWarnings, type ModeDeps } from './mode-deps.js'

/** What `promote` did: the alias move, and the warnings met on the way. */
export interface PromoteReport {
  bucket: string
  versionPrefix: string
  move: AliasMove
  warnings: string[]
}

/** Points `alias` at an existing version (a rollback too), without uploading. */
export async function promote(
  inputs: DeployInputs,
  clients: Clients,
  deps: ModeDeps
): Promise<PromoteReport> {
  const { warnings, warn } = collectWarnings(deps.logger)
  const alias = inputs.alias as string
  const target = await resolveTarget(inputs, clients, { ...deps, warn })
  const move = await promoteVersion(clients, { ...inputs, alias }, target.urlBase, {
    ...deps,
    warn
  })
  return { bucket: inputs.bucket, versionPrefix: inputs.versionPrefix, move, warnings }
}
