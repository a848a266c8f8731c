import type { Clients } from '../../aws/clients.js'
import { describeOwner, readLockHolder } from '../../aws/publish-lock.js'
import { resolveTarget, type Target, type TargetDeps } from '../../cdn/target.js'
import { anySignal } from '../../common/concurrency.js'
import { ConcurrentPublishError, ImmutableVersionError } from '../../common/errors.js'
import { formatBytes } from '../../common/progress.js'
import type {
  DeployInputs,
  LocalFile,
  Logger,
  S3Selection,
  SourceObject
} from '../../common/types.js'
import { discoverFiles } from '../../publish/files.js'
import { planSourceCopies } from '../../publish/plan-s3.js'
import { readSourceIntegrity } from '../../publish/s3-integrity.js'
import { discoverS3Sources } from '../../publish/s3-source-list.js'
import { hashFile, type FileHashes } from '../../publish/hash.js'
import { planDeploy, type Plan, type PlanInputs } from '../../publish/plan.js'
import { stopIfCancelled } from './stop-if-cancelled.js'

/**
 * What planning the version reads: the plan's inputs, where identical objects are searched, and
 * how an `s3://` source's integrity is known.
 */
export type VersionPlanInputs = PlanInputs & Pick<DeployInputs, 'reuseFrom' | 'sourceHash'>

/** What the artifacts found: files on this machine, or objects of `s3://` sources. */
export type FoundFiles =
  | { kind: 'local'; root: string; files: LocalFile[] }
  | { kind: 's3'; root: string; files: SourceObject[] }

type TargetInputs = Parameters<typeof resolveTarget>[0]

export interface PlanVersionDeps {
  logger: Logger
  signal?: AbortSignal
  /** What reads a file's hashes: sharedHashes, so that a second plan reads none again. */
  hash: typeof hashFile
}

/**
 * The files the artifact patterns find, and the root their keys are relative to; for `s3://`
 * patterns, the objects they select (listed, nothing read).
 */
export async function findFiles(
  inputs: Pick<DeployInputs, 'artifacts' | 'workspace' | 'root' | 's3Sources' | 'region'>,
  clients: Clients,
  deps: { logger: Logger; signal?: AbortSignal }
): Promise<FoundFiles> {
  const found: FoundFiles = inputs.s3Sources
    ? await findS3Files(inputs.s3Sources, clients, { region: inputs.region, signal: deps.signal })
    : {
        kind: 'local',
        ...(await discoverFiles(inputs.artifacts, {
          workspace: inputs.workspace,
          root: inputs.root
        }))
      }
  const total = found.files.reduce((sum, f) => sum + f.size, 0)
  const what = found.kind === 's3' ? 'object(s)' : 'file(s)'
  deps.logger.info(
    `Found ${found.files.length} ${what}, ${formatBytes(total)}, under ${found.root}.`
  )
  return found
}

async function findS3Files(
  selection: S3Selection,
  clients: Clients,
  opts: { region: string; signal?: AbortSignal }
): Promise<FoundFiles> {
  const { root, objects } = await discoverS3Sources(selection, {
    s3In: sourceClients(clients),
    defaultRegion: opts.region,
    signal: opts.signal
  })
  return { kind: 's3', root, files: objects }
}

/** An S3 client for a source bucket's region: the deploy's own when it has no other. */
function sourceClients(clients: Pick<Clients, 's3' | 's3In'>): (region: string) => Clients['s3'] {
  return clients.s3In ?? (() => clients.s3)
}

/**
 * Plans (hashing, listing the version) while the pre-flight checks and GetDistribution are
 * answered: the plan needs nothing from the target. The target's errors are reported first, and
 * stop the plan.
 */
export async function planWithTarget(
  found: FoundFiles,
  inputs: VersionPlanInputs & TargetInputs,
  clients: Clients,
  deps: PlanVersionDeps & TargetDeps
): Promise<{ plan: Plan; target: Target }> {
  const stopPlanning = new AbortController()
  const planning = planVersion(found, inputs, clients, deps, stopPlanning.signal)
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

/**
 * Plans the version: local files are hashed as needed and compared with what it holds; objects of
 * `s3://` sources have their integrity read from S3 (HEAD, or streamed with `source-hash: read`)
 * and are compared alike.
 */
export async function planVersion(
  found: FoundFiles,
  inputs: VersionPlanInputs,
  clients: Pick<Clients, 's3' | 's3In'>,
  deps: PlanVersionDeps,
  stop?: AbortSignal
): Promise<Plan> {
  const signal = anySignal(deps.signal, stop)
  if (found.kind === 's3') {
    const { objects, bytesRead } = await readSourceIntegrity(found.files, inputs.sourceHash, {
      s3In: sourceClients(clients),
      signal
    })
    if (bytesRead > 0) {
      deps.logger.info(
        `Read ${formatBytes(bytesRead)} of the sources through this machine to compute SHA-256s (source-hash: ${inputs.sourceHash}).`
      )
    }
    return planSourceCopies(clients.s3, objects, inputs, { logger: deps.logger, signal })
  }
  return planDeploy(clients.s3, found.files, inputs, {
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
  // By part size, then by path: the file's own path string is the key, no new string per file.
  const started = new Map<number, Map<string, Promise<FileHashes>>>()
  return (path, opts = {}) => {
    const partSize = opts.partSize ?? 0
    let byPath = started.get(partSize)
    if (!byPath) started.set(partSize, (byPath = new Map()))
    let hashes = byPath.get(path)
    if (!hashes) {
      hashes = hashFile(path, opts)
      byPath.set(path, hashes)
      // A cancelled or failed read is not kept: a later plan reads the file again.
      hashes.catch(() => byPath.delete(path))
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
