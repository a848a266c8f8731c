/** Domain types shared by the modules. Core logic depends on these, not on @actions/core. */

import type { ProgressView } from './progress.js'

export type InvalidateMode = 'auto' | 'all' | 'none'

/** deploy: publish files; promote: point an alias at an existing version; cleanup: delete one. */
export type Mode = 'deploy' | 'promote' | 'cleanup'

/** Inputs, parsed once and validated (see inputs/parse.ts). */
export interface DeployInputs {
  mode: Mode
  /** Glob patterns, one per line as given; `!` lines exclude. */
  artifacts: string[]
  /** Absolute directory keys are relative to; undefined = common ancestor of the search paths. */
  root?: string
  /** When `artifacts` are `s3://` patterns: what they select (then `root` is undefined). */
  s3Sources?: S3Selection
  /** For `s3://` artifacts: record the integrity S3 knows, or also read each SHA-256. */
  sourceHash: 'known' | 'read'
  bucket: string
  /** Normalised: no leading or trailing `/`. */
  versionPrefix: string
  distributionId?: string
  /** Without trailing `/`. */
  urlBase?: string
  invalidate: InvalidateMode
  /** Extra CloudFront paths, each starting with `/`. */
  invalidationPaths: string[]
  waitForInvalidation: boolean
  waitTimeoutMinutes: number
  /**
   * How long to wait for another run that holds the version's (or alias's) lock before failing;
   * 0 fails at once.
   */
  lockTimeoutMinutes: number
  multipartThresholdBytes: number
  /** undefined = automatic per file (see part-size.ts). */
  partSizeBytes?: number
  concurrency: number
  contentType?: string
  cacheControl: string
  /** Lower-cased keys, as S3 stores them. */
  metadata: Record<string, string>
  overwrite: boolean
  manifest: boolean
  /**
   * Where objects holding a new file's exact bytes are looked for, to copy them server-side:
   * `auto` = the version prefix's parent; [] = nowhere. '' means the whole bucket.
   */
  reuseFrom: 'auto' | string[]
  dryRun: boolean
  region: string
  endpointUrl?: string
  /** Absolute path of the workspace (GITHUB_WORKSPACE or cwd). */
  workspace: string
  /** A prefix that receives copies of the version (e.g. `latest`), normalised like versionPrefix. */
  alias?: string
  aliasCacheControl: string
  /** Alias prefixes cleanup checks besides the version's siblings. */
  aliases: string[]
  /** Check the bucket and distribution set-up before the first upload. */
  preflight: boolean
  /** HEAD every published URL after the deploy. */
  verify: boolean
  signing?: SigningConfig
  prComment: boolean
  /** Tells this step's PR comment from other steps' (matrix jobs). */
  prCommentId?: string
  githubToken: string
}

/** One `s3://` artifact pattern, parsed. */
export interface S3Pattern {
  bucket: string
  /**
   * The literal key part before the first segment with a glob character, ending in `/` (or ''):
   * what is listed, and what keys are relative to. For a pattern naming one object, its folder.
   */
  prefix: string
  /** The whole key pattern (after `s3://bucket/`). */
  glob: string
  /** The line as given. */
  text: string
}

/** What `s3://` artifact patterns select, and the prefix keys are relative to. */
export interface S3Selection {
  includes: S3Pattern[]
  /** `!s3://…` lines: a key they match, or one under a folder they name, is left out. */
  excludes: S3Pattern[]
  /** `root` given as `s3://bucket/prefix/`; undefined = each pattern's own prefix. */
  root?: { bucket: string; prefix: string }
}

/** A regular file found by the artifact patterns, or an object of an `s3://` source. */
export interface LocalFile {
  /** The file's path on this machine; for an object of an `s3://` source, its `s3://` URL. */
  absolutePath: string
  /** Relative to root, always with `/`. */
  relativePath: string
  size: number
}

/** What happens to one file: sent, copied server-side from identical bytes, or already there. */
export type FileAction = 'upload' | 'copy' | 'skip'

/** An object holding a file's exact bytes: elsewhere in the bucket, or in an `s3://` source. */
export interface CopySource {
  key: string
  /** As listed: the copy is refused if the source changed since. */
  eTag?: string
  /** An `s3://` source's bucket; undefined = the destination bucket (an identical object found). */
  bucket?: string
}

/** The checksum algorithms S3 computes and reports (HeadObject with ChecksumMode ENABLED). */
export type S3ChecksumAlgorithm = 'CRC64NVME' | 'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256'

/** S3's own checksum of an object, named as S3 names it. */
export interface S3Checksum {
  algorithm: S3ChecksumAlgorithm
  /** FULL_OBJECT: of the whole bytes; COMPOSITE: a checksum of the parts' checksums. */
  type: 'FULL_OBJECT' | 'COMPOSITE'
  /** Base64, as S3 reports it (a composite one ends in `-<parts>`). */
  value: string
}

/** An object of an `s3://` source, as listed and HEADed before anything is written. */
export interface SourceObject extends LocalFile {
  bucket: string
  /** The bucket's region, where it is listed and read. */
  region: string
  key: string
  /** As listed: every copy carries it as `x-amz-copy-source-if-match`. */
  eTag: string
  /** Hex SHA-256, when known: x-amz-meta-sha256, a full-object SHA-256 checksum, or read. */
  sha256?: string
  /** S3's checksum, when S3 has one. */
  checksum?: S3Checksum
}

export interface PlannedFile extends LocalFile {
  key: string
  /**
   * Hex. Undefined when the plan did not need it: the key is new (or of another size) and no
   * object elsewhere has the file's size, so nothing could be skipped or copied. Such files are
   * hashed while earlier ones upload (Plan.hashesOf), each before its own first byte is sent.
   */
  sha256?: string
  contentType: string
  action: FileAction
  /** The key held an object before this run (so `auto` invalidation must cover it if uploaded). */
  existed: boolean
  /**
   * The ETag of the object the key held when planned: an overwrite replaces only that object
   * (`If-Match`), so one written by another run meanwhile is not replaced unseen.
   */
  storedETag?: string
  /** Set when action is `copy`, and for every file of an `s3://` source. */
  copyFrom?: CopySource
  /**
   * S3's checksum of an `s3://` source's object, when S3 has one: recorded in the manifest and the
   * copy's metadata (x-amz-meta-checksum), beside the SHA-256 or, when that is not known, instead.
   */
  checksum?: S3Checksum
  /**
   * Base64 CRC32 of each part, read with the SHA-256, for a multipart upload to AWS (which
   * checks every part's CRC32).
   */
  partCrc32?: string[]
}

/** A file as published: its SHA-256, or for an `s3://` source's object without one, `checksum`. */
export interface PublishedFile extends PlannedFile {
  url: string
}

export interface InvalidationOutcome {
  /** Why these paths (or none) were chosen; shown in the summary. */
  reason: string
  paths: string[]
  ids: string[]
  status: 'Completed' | 'InProgress' | 'none'
  waitedMs: number
}

export interface ManifestFile {
  path: string
  key: string
  url: string
  size: number
  /** Hex. Absent only for a file copied from an `s3://` source whose SHA-256 was not known. */
  sha256?: string
  /** S3's checksum of a file copied from an `s3://` source, named as S3 names it. */
  checksum?: S3Checksum
  /** `s3://bucket/key` the file was copied from, for a file of an `s3://` source. */
  source?: string
  contentType: string
  metadata: Record<string, string>
}

export interface Manifest {
  schemaVersion: number
  versionPrefix: string
  bucket: string
  createdAt: string
  git: { sha?: string; ref?: string; repository?: string; runId?: string; runAttempt?: string }
  distribution: { id: string; domain: string } | null
  files: ManifestFile[]
}

/** Where progress and decisions are reported; main passes @actions/core's functions. */
export interface Logger {
  info(message: string): void
  warning(message: string): void
  debug(message: string): void
  /** A terminal's progress bar (the command line's, on a TTY); else progress lines every 10 s. */
  progress?: ProgressView
}

/** Signed URLs and cookies for a private distribution (see cdn/signing.ts). */
export interface SigningConfig {
  /** A CloudFront public key id (`K…`) or a legacy key pair id (`APKA…`). */
  keyPairId: string
  /** The private key as canonical PEM (PKCS#1 or PKCS#8, RSA 2048). */
  privateKey: string
  expiresInSeconds: number
}

export type Sleep = (ms: number) => Promise<void>
