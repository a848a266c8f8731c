import type { Clients } from '../../aws/clients.js'
import { writeCondition } from '../../aws/lost-race.js'
import { describeOwner, lockDeps, type HeldLock, withLock } from '../../aws/publish-lock.js'
import { listPrefix, type ListedObject } from '../../aws/stored-objects.js'
import { anySignal } from '../../common/concurrency.js'
import { ConcurrentPublishError, ImmutableVersionError } from '../../common/errors.js'
import type { DeployInputs, Logger, PublishedFile, Sleep } from '../../common/types.js'
import { serializeManifest } from '../../publish/manifest.js'
import { writeManifest } from '../../publish/manifest-store.js'
import type { Plan } from '../../publish/plan.js'
import { planSourceCopies } from '../../publish/plan-s3.js'
import { logPlan, type Decisions } from './decide.js'
import { planVersion, type PlanVersionDeps, type VersionPlanInputs } from './prepare.js'
import { stopIfCancelled } from './stop-if-cancelled.js'
import { copyAndUpload, earlierUploads, type TransferInputs } from './transfer.js'

export interface Published {
  decided: Decisions
  /** Every file with its SHA-256. */
  files: PublishedFile[]
  bytesUploaded: number
  bytesCopied: number
}

export type WriteInputs = VersionPlanInputs &
  TransferInputs &
  Pick<DeployInputs, 'lockTimeoutMinutes'>

export interface WriteDeps extends PlanVersionDeps {
  sleep: Sleep
  env: NodeJS.ProcessEnv
  now?: () => number
  /** Tags for every object written (URL-encoded); none when undefined. */
  objectTagging?: string
}

/**
 * Takes the version's lock, plans again if the version changed since it was planned (another run
 * published to it meanwhile), then writes: files, then the manifest. The lock is released after
 * the manifest, also when the run fails (journaling the uploads a re-run resumes). A plan with
 * nothing to write (every file in place, the manifest unchanged) takes no lock: it only read.
 */
export async function publishLocked(
  firstPlan: Plan,
  decide: (plan: Plan) => Promise<Decisions>,
  inputs: WriteInputs,
  s3: Clients['s3'],
  deps: WriteDeps
): Promise<Published> {
  const first = await decide(firstPlan)
  if (nothingToWrite(first)) {
    logPlan(first.planned, inputs, deps.logger)
    const files = await firstPlan.hashed(first.planned)
    return { decided: first, files, bytesUploaded: 0, bytesCopied: 0 }
  }
  let plan = firstPlan
  try {
    return await withLock(
      s3,
      {
        bucket: inputs.bucket,
        prefix: inputs.versionPrefix,
        purpose: 'publish',
        tagging: deps.objectTagging
      },
      lockDeps(inputs, deps),
      // Always given here: only a clean-up asks to run unlocked when the lock is refused.
      async (lock) => {
        plan = await planAgainIfChanged(firstPlan, lock!, inputs, s3, deps)
        const decided = plan === firstPlan ? first : await decide(plan)
        return writeVersion(plan, decided, lock!, inputs, s3, deps)
      }
    )
  } catch (err) {
    plan.stopHashing(err)
    throw err
  } finally {
    if (plan !== firstPlan) firstPlan.stopHashing(new Error('Planned again.'))
  }
}

function nothingToWrite(decided: Decisions): boolean {
  return decided.planned.every((f) => f.action === 'skip') && decided.manifestAction !== 'written'
}

/**
 * The plan still holds when the version lists as it did; otherwise another run published to it
 * between the plan and the lock, and the files are planned again against what it left.
 */
async function planAgainIfChanged(
  plan: Plan,
  lock: HeldLock,
  inputs: VersionPlanInputs,
  s3: Clients['s3'],
  deps: PlanVersionDeps
): Promise<Plan> {
  const now = await listPrefix(s3, inputs.bucket, inputs.versionPrefix, deps.signal)
  if (sameListing(plan.existing, now)) return plan
  const who = lock.waitedFor ? `another run (${describeOwner(lock.waitedFor)})` : 'another run'
  deps.logger.info(
    `${inputs.versionPrefix}/ changed after this run planned it: ${who} published to it. Planning again.`
  )
  const local = plan.files.map(({ absolutePath, relativePath, size }) => ({
    absolutePath,
    relativePath,
    size
  }))
  try {
    // The sources' integrity is known: only what the version holds now is read again.
    if (plan.sources) return await planSourceCopies(s3, plan.sources, inputs, deps)
    return await planVersion({ kind: 'local', root: '', files: local }, inputs, { s3 }, deps)
  } catch (err) {
    if (!(err instanceof ImmutableVersionError)) throw err
    throw new ConcurrentPublishError(
      `${who[0].toUpperCase()}${who.slice(1)} published ${inputs.versionPrefix} while this run waited to: ${err.message}`,
      err.hint,
      { cause: err }
    )
  }
}

function sameListing(a: Map<string, ListedObject>, b: Map<string, ListedObject>): boolean {
  if (a.size !== b.size) return false
  for (const [key, object] of a) {
    const other = b.get(key)
    if (!other || other.size !== object.size || other.eTag !== object.eTag) return false
  }
  return true
}

/** The files (copied and uploaded at once), then the manifest; leftovers of a dead run aborted. */
async function writeVersion(
  plan: Plan,
  decided: Decisions,
  lock: HeldLock,
  inputs: TransferInputs & Pick<DeployInputs, 'dryRun' | 'manifest'>,
  s3: Clients['s3'],
  deps: Pick<WriteDeps, 'logger' | 'signal' | 'objectTagging'>
): Promise<Published> {
  logPlan(decided.planned, inputs, deps.logger)
  const signal = anySignal(deps.signal, lock.lost)!
  const leftovers = await earlierUploads(lock, inputs, s3, deps.logger)
  const transferred = await copyAndUpload(s3, decided.planned, inputs, {
    ...deps,
    signal,
    hashesOf: plan.hashesOf,
    journal: {
      resumable: leftovers.resumable,
      started: (upload) => lock.started(upload),
      ended: (uploadId) => {
        leftovers.ended.add(uploadId)
        lock.ended(uploadId)
      },
      keepFailed: () => !deps.signal?.aborted
    }
  })
  for (const file of decided.planned) {
    if (transferred.alreadyThere.has(file.key)) Object.assign(file, { action: 'skip' })
  }
  await leftovers.abortUnused(decided.planned)
  // Every hash was read before its file was sent.
  const files = await plan.hashed(decided.planned)

  // uploadFiles rejects once cancelled already; the manifest's guarantee is kept here too.
  stopIfCancelled(signal, 'after every file was uploaded: the manifest was not written')
  if (inputs.manifest && decided.manifestAction === 'written') {
    await writeDecidedManifest(decided, files, plan.existing, inputs.bucket, s3, deps)
  }
  return {
    decided,
    files,
    bytesUploaded: transferred.bytesUploaded,
    bytesCopied: transferred.bytesCopied
  }
}

/**
 * Writes the manifest decided on (built now when some hashes were read during the uploads),
 * only over the stored manifest this run planned against.
 */
async function writeDecidedManifest(
  decided: Decisions,
  files: PublishedFile[],
  existing: Map<string, ListedObject>,
  bucket: string,
  s3: Clients['s3'],
  deps: { logger: Logger; objectTagging?: string }
): Promise<void> {
  decided.manifest ??= decided.build(files)
  const outcome = await writeManifest(
    s3,
    bucket,
    decided.manifestKey,
    serializeManifest(decided.manifest),
    {
      tagging: deps.objectTagging,
      condition: writeCondition({
        existed: existing.has(decided.manifestKey),
        storedETag: decided.manifestETag
      })
    }
  )
  if (outcome === 'unchanged') decided.manifestAction = 'unchanged'
  else deps.logger.info(`Wrote s3://${bucket}/${decided.manifestKey}.`)
}
