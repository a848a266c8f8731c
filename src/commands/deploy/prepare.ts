import type { Clients } from '../../aws/clients.js'
import { describeOwner, readLockHolder } from '../../aws/publish-lock.js'
import { resolveTarget, type Target, type TargetDeps } from '../../cdn/target.js'
import { anySignal } from '../../common/concurrency.js'
import { ConcurrentPublishError, ImmutableVersionError } from '../../common/errors.js'
import { formatBytes } from '../../common/progress.js'
import type { DeployInputs, LocalFile, Logger } from '../../common/types.js'
import { discoverFiles } from '../../publish/files.js'
import { hashFile, type FileHashes } from '../../publish/hash.js'
import { planDeploy, type Plan, type PlanInputs } from '../../publish/plan.js'
import { stopIfCancelled } from './stop-if-cancelled.js'

/** What planning the version reads: the plan's inputs and where identical objects are searched. */
export type VersionPlanInputs = PlanInputs & Pick<DeployInputs, 'reuseFrom'>

type TargetInputs = Parameters<typeof resolveTarget>[0]

export interface PlanVersionDeps {
  logger: Logger
  signal?: AbortSignal
  /** What reads a file's hashes: sharedHashes, so that a second plan reads none again. */
  hash: typeof hashFile
}

/** The files the artifact patterns find, and the root their keys are relative to. */
export async function findFiles(
  inputs: Pick<DeployInputs, 'artifacts' | 'workspace' | 'root'>,
  logger: Logger
): Promise<{ root: string; files: LocalFile[] }> {
  const { root, files } = await discoverFiles(inputs.artifacts, {
    workspace: inputs.workspace,
    root: inputs.root
  })
  const total = files.reduce((sum, f) => sum + f.size, 0)
  logger.info(`Found ${files.length} file(s), ${formatBytes(total)}, under ${root}.`)
  return { root, files }
}

/**
 * Plans (hashing, listing the version) while the pre-flight checks and GetDistribution are
 * answered: the plan needs nothing from the target. The target's errors are reported first, and
 * stop the plan.
 */
export async function planWithTarget(
  local: LocalFile[],
  inputs: VersionPlanInputs & TargetInputs,
  clients: Clients,
  deps: PlanVersionDeps & TargetDeps
): Promise<{ plan: Plan; target: Target }> {
  const stopPlanning = new AbortController()
  const planning = planVersion(local, inputs, clients.s3, deps, stopPlanning.signal)
  // Awaited once the target is known; a target that fails first must not leave it unhandled.
  planning.catch(() => undefined)
  let target: Target
  try {
    target = await resolveTarget(inputs, clients, {
      env: deps.env,
      logger: deps.logger,
      warn: deps.warn,
      signal: deps.signal
    })
  } catch (err) {
    stopPlanning.abort(err)
    throw err
  }
  const plan = await planning.catch(async (err: unknown) => {
    stopIfCancelled(deps.signal, 'while hashing and checking existing keys: nothing was uploaded')
    throw await withLockHolder(err, clients.s3, inputs)
  })
  return { plan, target }
}

export function planVersion(
  local: LocalFile[],
  inputs: VersionPlanInputs,
  s3: Clients['s3'],
  deps: PlanVersionDeps,
  stop?: AbortSignal
): Promise<Plan> {
  const signal = anySignal(deps.signal, stop)
  return planDeploy(s3, local, inputs, {
    logger: deps.logger,
    signal,
    hash: deps.hash,
    reuse: {
      bucket: inputs.bucket,
      versionPrefix: inputs.versionPrefix,
      searchPrefixes: reuseSearchPrefixes(inputs),
      logger: deps.logger,
      signal
    }
  })
}

/**
 * An immutability error found while another run holds the version's lock says so: that run is
 * publishing other bytes under the same version prefix.
 */
async function withLockHolder(
  err: unknown,
  s3: Clients['s3'],
  inputs: Pick<DeployInputs, 'bucket' | 'versionPrefix'>
): Promise<unknown> {
  if (!(err instanceof ImmutableVersionError) || err instanceof ConcurrentPublishError) return err
  const holder = await readLockHolder(s3, inputs.bucket, inputs.versionPrefix).catch(
    () => undefined
  )
  if (!holder) return err
  return new ConcurrentPublishError(
    `Another run (${describeOwner(holder)}) is publishing ${inputs.versionPrefix} with different bytes. ${err.message}`,
    err.hint,
    { cause: err }
  )
}

/** SHA-256s read once per file and part size, though two plans may ask for them. */
export function sharedHashes(): typeof hashFile {
  const started = new Map<string, Promise<FileHashes>>()
  return (path, opts = {}) => {
    const key = `${opts.partSize ?? 0}:${path}`
    let hashes = started.get(key)
    if (!hashes) {
      hashes = hashFile(path, opts)
      started.set(key, hashes)
      // A cancelled or failed read is not kept: a later plan reads the file again.
      hashes.catch(() => started.delete(key))
    }
    return hashes
  }
}

/** The prefixes `reuse-from` stands for; `auto` is the version's parent ('' = the bucket). */
function reuseSearchPrefixes(inputs: Pick<DeployInputs, 'reuseFrom' | 'versionPrefix'>): string[] {
  if (inputs.reuseFrom !== 'auto') return inputs.reuseFrom
  const slash = inputs.versionPrefix.lastIndexOf('/')
  return [slash === -1 ? '' : inputs.versionPrefix.slice(0, slash)]
}
