import { MANIFEST_FILE_NAME, MANIFEST_SCHEMA_VERSION } from '../common/constants.js'
import type { Manifest, ManifestFile, PublishedFile } from '../common/types.js'

export interface ManifestInput {
  versionPrefix: string
  bucket: string
  files: PublishedFile[]
  /** The user metadata stored on every object (the `metadata` input). */
  metadata: Record<string, string>
  distribution: { id: string; domain: string } | null
  git: Manifest['git']
  createdAt: Date
}

/** Manifest git fields and the runner variables they come from, in manifest order. */
const GIT_ENV = [
  ['sha', 'GITHUB_SHA'],
  ['ref', 'GITHUB_REF'],
  ['repository', 'GITHUB_REPOSITORY'],
  ['runId', 'GITHUB_RUN_ID'],
  ['runAttempt', 'GITHUB_RUN_ATTEMPT']
] as const

/** Code-unit order, so that sorting does not depend on the runner's locale. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export function manifestKey(versionPrefix: string): string {
  return `${versionPrefix}/${MANIFEST_FILE_NAME}`
}

export function gitContextFromEnv(env: NodeJS.ProcessEnv): Manifest['git'] {
  const git: Manifest['git'] = {}
  for (const [field, name] of GIT_ENV) {
    const value = env[name]
    if (value) git[field] = value
  }
  return git
}

export function buildManifest(input: ManifestInput): Manifest {
  return canonicalManifest({
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    versionPrefix: input.versionPrefix,
    bucket: input.bucket,
    createdAt: input.createdAt.toISOString(),
    git: input.git,
    distribution: input.distribution,
    files: input.files.map((f) => ({
      path: f.relativePath,
      key: f.key,
      url: f.url,
      size: f.size,
      ...(f.sha256 !== undefined ? { sha256: f.sha256 } : {}),
      ...(f.checksum ? { checksum: f.checksum } : {}),
      ...(f.copyFrom?.bucket ? { source: `s3://${f.copyFrom.bucket}/${f.copyFrom.key}` } : {}),
      contentType: f.contentType,
      metadata: input.metadata
    }))
  })
}

/** Pretty JSON with a trailing newline; the same manifest always gives the same bytes. */
export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(canonicalManifest(manifest), null, 2)}\n`
}

/**
 * Copies the manifest with fields in schema order, files sorted by path, metadata keys sorted and
 * absent git fields dropped, so that equal manifests serialise identically and share no objects
 * with the caller.
 */
function canonicalManifest(m: Manifest): Manifest {
  const git: Manifest['git'] = {}
  for (const [field] of GIT_ENV) {
    const value = m.git[field]
    if (value) git[field] = value
  }
  return {
    schemaVersion: m.schemaVersion,
    versionPrefix: m.versionPrefix,
    bucket: m.bucket,
    createdAt: m.createdAt,
    git,
    distribution: m.distribution && { id: m.distribution.id, domain: m.distribution.domain },
    files: [...m.files].sort((a, b) => compareCodeUnits(a.path, b.path)).map(canonicalFile)
  }
}

function canonicalFile(f: ManifestFile): ManifestFile {
  return {
    path: f.path,
    key: f.key,
    url: f.url,
    size: f.size,
    // A file copied from an `s3://` source has S3's checksum too, or only that.
    ...(f.sha256 !== undefined ? { sha256: f.sha256 } : {}),
    ...(f.checksum
      ? {
          checksum: {
            algorithm: f.checksum.algorithm,
            type: f.checksum.type,
            value: f.checksum.value
          }
        }
      : {}),
    ...(f.source !== undefined ? { source: f.source } : {}),
    contentType: f.contentType,
    metadata: Object.fromEntries(
      Object.entries(f.metadata).sort(([a], [b]) => compareCodeUnits(a, b))
    )
  }
}
