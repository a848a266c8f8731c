import { sameBytes } from '../../common/integrity.js'
import { planInvalidation } from '../../cdn/invalidation.js'
import { objectUrl } from '../../cdn/urls.js'
import { formatBytes } from '../../common/progress.js'
import type {
  DeployInputs,
  InvalidationOutcome,
  Logger,
  Manifest,
  PlannedFile,
  PublishedFile
} from '../../common/types.js'
import { buildManifest, gitContextFromEnv, manifestKey } from '../../publish/manifest.js'
import { sameFiles } from '../../publish/manifest-store.js'
import type { Plan } from '../../publish/plan.js'

/** What happens to the manifest object. */
export type ManifestAction = 'written' | 'unchanged' | 'none'

/** What the manifest and the invalidation will be, decided from the plan before any write. */
export interface Decisions {
  /** The plan's files, with their URLs. */
  planned: (PlannedFile & { url: string })[]
  manifestKey: string
  manifest: Manifest | null
  manifestAction: ManifestAction
  /** The stored manifest's ETag, when there is one: a rewrite replaces only it. */
  manifestETag?: string
  /** Builds the manifest from the files once their hashes are all read. */
  build(published: PublishedFile[]): Manifest
  invalidation: InvalidationOutcome
}

export type DecideInputs = Pick<
  DeployInputs,
  | 'versionPrefix'
  | 'bucket'
  | 'metadata'
  | 'manifest'
  | 'invalidate'
  | 'distributionId'
  | 'invalidationPaths'
>

/** What the manifest records of where and when it was published. */
export interface ManifestContext {
  urlBase: string
  distribution: { id: string; domain: string } | null
  env: NodeJS.ProcessEnv
  now: () => number
}

export async function decideManifestAndInvalidation(
  plan: Plan,
  inputs: DecideInputs,
  ctx: ManifestContext
): Promise<Decisions> {
  // Set on the plan's files rather than on copies: one record per file, not two, while they upload.
  for (const f of plan.files) Object.assign(f, { url: objectUrl(ctx.urlBase, f.key) })
  const planned = plan.files as PublishedFile[]
  const key = manifestKey(inputs.versionPrefix)
  const build = manifestBuilder(inputs, ctx)
  const { manifest, manifestAction, replacedEarlier } = inputs.manifest
    ? await decideManifest(plan, planned, build)
    : { manifest: null, manifestAction: 'none' as const, replacedEarlier: [] }
  const storedManifest = plan.existing.get(key)
  const invalidation = decideInvalidation(plan, planned, inputs, {
    overwritten: manifestAction === 'written' && storedManifest !== undefined,
    replacedEarlier
  })
  return {
    planned,
    manifestKey: key,
    manifest,
    manifestAction,
    manifestETag: storedManifest?.eTag,
    build,
    invalidation
  }
}

function manifestBuilder(
  inputs: Pick<DeployInputs, 'versionPrefix' | 'bucket' | 'metadata'>,
  ctx: ManifestContext
): (published: PublishedFile[]) => Manifest {
  return (published) =>
    buildManifest({
      versionPrefix: inputs.versionPrefix,
      bucket: inputs.bucket,
      files: published,
      metadata: inputs.metadata,
      distribution: ctx.distribution,
      git: gitContextFromEnv(ctx.env),
      createdAt: new Date(ctx.now())
    })
}

/** The manifest to leave when `manifest` is on: the stored one if it lists the same files. */
async function decideManifest(
  plan: Plan,
  planned: (PlannedFile & { url: string })[],
  build: (published: PublishedFile[]) => Manifest
): Promise<{
  manifest: Manifest | null
  manifestAction: ManifestAction
  /** Keys an earlier run overwrote but never finished publishing (and so never invalidated). */
  replacedEarlier: string[]
}> {
  const stored = plan.storedManifest
  // A file still being hashed has a key the version lacks (or holds at another size), so the
  // stored manifest cannot already describe it: the manifest is rewritten after the uploads.
  const allHashed = planned.every((f) => f.sha256 !== undefined || f.checksum !== undefined)
  const current = allHashed ? build(await plan.hashed(planned)) : undefined
  // Same files: keep the stored manifest, whose provenance is the run that published them.
  const unchanged = stored !== undefined && current !== undefined && sameFiles(stored, current)
  return {
    manifest: unchanged ? stored : (current ?? null),
    manifestAction: unchanged ? 'unchanged' : 'written',
    replacedEarlier: stored ? skippedSinceChanged(planned, stored) : []
  }
}

/** The CloudFront paths to invalidate (none without a distribution), and why. */
function decideInvalidation(
  plan: Plan,
  planned: PlannedFile[],
  inputs: Pick<
    DeployInputs,
    'invalidate' | 'versionPrefix' | 'manifest' | 'distributionId' | 'invalidationPaths'
  >,
  manifest: { overwritten: boolean; replacedEarlier: string[] }
): InvalidationOutcome {
  const toInvalidate = invalidationKeys(
    planned,
    inputs,
    manifest.overwritten,
    manifest.replacedEarlier
  )
  const keysUnderPrefix = new Set([...plan.existing.keys(), ...planned.map((f) => f.key)])
  if (inputs.manifest) keysUnderPrefix.add(manifestKey(inputs.versionPrefix))
  const paths = inputs.distributionId
    ? planInvalidation({
        keys: toInvalidate.keys,
        keysUnderPrefix: [...keysUnderPrefix],
        extraPaths: inputs.invalidationPaths
      })
    : []
  return {
    reason: inputs.distributionId
      ? toInvalidate.reason
      : 'No distribution-id given, so there is nothing to invalidate.',
    paths,
    ids: [],
    status: 'none',
    waitedMs: 0
  }
}

/** Which keys must be invalidated, and why, per the `invalidate` mode. */
function invalidationKeys(
  files: PlannedFile[],
  inputs: Pick<DeployInputs, 'invalidate' | 'versionPrefix'>,
  manifestOverwritten: boolean,
  replacedEarlier: string[]
): { keys: string[]; reason: string } {
  const uploaded = files.filter((f) => f.action !== 'skip')
  const manifest = manifestOverwritten ? [manifestKey(inputs.versionPrefix)] : []
  const resumed = replacedEarlier.length
    ? ` and ${replacedEarlier.length} key(s) an unfinished earlier run replaced`
    : ''
  switch (inputs.invalidate) {
    case 'none':
      return {
        keys: [],
        reason: 'invalidate is none: only the extra invalidation-paths, if any, are invalidated.'
      }
    case 'all':
      return {
        keys: [...uploaded.map((f) => f.key), ...replacedEarlier, ...manifest],
        reason: `invalidate is all: every uploaded or copied key (${uploaded.length})${resumed} is invalidated.`
      }
    case 'auto': {
      const overwritten = uploaded.filter((f) => f.existed)
      const count = overwritten.length + replacedEarlier.length + manifest.length
      return {
        keys: [...overwritten.map((f) => f.key), ...replacedEarlier, ...manifest],
        reason:
          count > 0
            ? `invalidate is auto: ${overwritten.length} overwritten key(s)${resumed}${manifest.length ? ' and the rewritten manifest' : ''} may be cached at the edge; new keys cannot be.`
            : 'invalidate is auto: every uploaded or copied key is new, so no edge cache can hold a stale copy.'
      }
    }
  }
}

/**
 * Skipped keys whose bytes differ from what the stored manifest (the last finished deploy)
 * recorded: an earlier run replaced them and then failed before invalidating them.
 */
function skippedSinceChanged(files: PlannedFile[], stored: Manifest): string[] {
  const published = new Map(stored.files.map((f) => [f.key, f]))
  return files
    .filter((f) => {
      const recorded = published.get(f.key)
      return f.action === 'skip' && recorded !== undefined && sameBytes(recorded, f) === false
    })
    .map((f) => f.key)
}

/** An `s3://` source's object, or the object of the bucket that holds the same bytes. */
function copySourceText(source: PlannedFile['copyFrom']): string {
  if (source?.bucket) return `s3://${source.bucket}/${source.key}`
  return `${source?.key}, which holds the same bytes`
}

/** Each file's action, as decided, in the log. */
export function logPlan(
  files: PlannedFile[],
  inputs: Pick<DeployInputs, 'dryRun' | 'bucket'>,
  logger: Logger
): void {
  const dry = inputs.dryRun
  for (const f of files) {
    const overwrite = f.existed ? ' (overwrite)' : ''
    const what =
      f.action === 'skip'
        ? `${dry ? 'Would skip' : 'Skip'} ${f.relativePath}: s3://${inputs.bucket}/${f.key} already holds these bytes`
        : f.action === 'copy'
          ? `${dry ? 'Would copy' : 'Copy'} ${f.relativePath} (${formatBytes(f.size)}) → s3://${inputs.bucket}/${f.key}${overwrite} server-side from ${copySourceText(f.copyFrom)}`
          : `${dry ? 'Would upload' : 'Upload'} ${f.relativePath} (${formatBytes(f.size)}) → s3://${inputs.bucket}/${f.key}${overwrite}`
    logger.info(what)
  }
}
