/** Input, output and state names: the one place they are spelled. */
export const Inputs = {
  Artifacts: 'artifacts',
  Root: 'root',
  SourceHash: 'source-hash',
  Bucket: 'bucket',
  VersionPrefix: 'version-prefix',
  DistributionId: 'distribution-id',
  UrlBase: 'url-base',
  Invalidate: 'invalidate',
  InvalidationPaths: 'invalidation-paths',
  WaitForInvalidation: 'wait-for-invalidation',
  WaitTimeoutMinutes: 'wait-timeout-minutes',
  LockTimeoutMinutes: 'lock-timeout-minutes',
  MultipartThresholdMb: 'multipart-threshold-mb',
  PartSizeMb: 'part-size-mb',
  Concurrency: 'concurrency',
  ContentType: 'content-type',
  CacheControl: 'cache-control',
  Metadata: 'metadata',
  Overwrite: 'overwrite',
  Manifest: 'manifest',
  ReuseFrom: 'reuse-from',
  DryRun: 'dry-run',
  AwsRegion: 'aws-region',
  EndpointUrl: 'endpoint-url',
  Mode: 'mode',
  Alias: 'alias',
  AliasCacheControl: 'alias-cache-control',
  Aliases: 'aliases',
  Preflight: 'preflight',
  Verify: 'verify',
  SigningKeyPairId: 'signing-key-pair-id',
  SigningPrivateKey: 'signing-private-key',
  SignedUrlExpiresIn: 'signed-url-expires-in',
  PrComment: 'pr-comment',
  PrCommentId: 'pr-comment-id',
  GithubToken: 'github-token'
} as const

export const Outputs = {
  VersionPrefix: 'version-prefix',
  Urls: 'urls',
  Manifest: 'manifest',
  ManifestUrl: 'manifest-url',
  Uploaded: 'uploaded',
  Copied: 'copied',
  Skipped: 'skipped',
  BytesUploaded: 'bytes-uploaded',
  InvalidationIds: 'invalidation-ids',
  InvalidationStatus: 'invalidation-status',
  SignedUrls: 'signed-urls',
  SignedCookies: 'signed-cookies',
  SignedUrlsExpireAt: 'signed-urls-expire-at',
  Verified: 'verified',
  AliasUrls: 'alias-urls',
  CommentUrl: 'comment-url',
  Deleted: 'deleted'
} as const

/**
 * What the main step leaves for the post step (core.saveState; the runner hands each value to
 * the post step as `STATE_<name>`). A value saved again replaces the earlier one.
 */
export const State = {
  /** Set by the main step: the same bundle then knows it runs as the post step. */
  IsPost: 'isPost',
  Bucket: 'bucket',
  VersionPrefix: 'versionPrefix',
  Region: 'region',
  /** The custom S3 endpoint in use, or '' for AWS's own. */
  EndpointUrl: 'endpointUrl',
  /** When the main step started (ISO 8601): multipart uploads initiated since are this run's. */
  StartedAt: 'startedAt',
  /** JSON array of the multipart uploads started and not yet completed or aborted. */
  MultipartUploads: 'multipartUploads',
  /** 'true' once the deploy has succeeded: the post step then has nothing to do. */
  Succeeded: 'succeeded',
  /**
   * 'true' once the run was cancelled (SIGINT/SIGTERM): the post step then aborts its uploads. A run
   * that failed or was killed leaves them open, journaled in its lock, for a re-run to resume.
   */
  Cancelled: 'cancelled',
  /** The main step's pid: a lock it held and could not release is removed by the post step. */
  MainPid: 'mainPid'
} as const

/** User metadata key holding the whole-object SHA-256 (S3 has none for multipart objects). */
export const SHA256_METADATA_KEY = 'sha256'
/**
 * User metadata key of a copy from an `s3://` source whose SHA-256 is not known: S3's checksum
 * of the source (integrity.ts checksumText), so a re-run and verification can compare it.
 */
export const CHECKSUM_METADATA_KEY = 'checksum'
export const MANIFEST_FILE_NAME = 'manifest.json'
export const MANIFEST_SCHEMA_VERSION = 1

export const MiB = 1024 * 1024
export const GiB = 1024 * MiB
/** S3 multipart limits. */
export const MIN_PART_SIZE = 5 * MiB
export const MAX_PART_SIZE = 5 * GiB
export const MAX_PARTS = 10_000
/** S3 limits on keys and user metadata. */
export const MAX_KEY_BYTES = 1024
export const MAX_METADATA_BYTES = 2048

/** The object tag of preview uploads, which setup's lifecycle rule expires. */
export const PREVIEW_TAG = { key: 'model-cdn-deploy:preview', value: 'true' } as const
