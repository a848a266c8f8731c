/**
 * What every step of `setup` shares. Each step finds its resource again (by name, tag or the
 * distribution's comment), creates it when missing, tightens what is loose, never loosens and
 * never deletes, and records what it changed; in a dry run it records what it would change and
 * writes nothing.
 */
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import type { IAMClient } from '@aws-sdk/client-iam'
import type { S3Client } from '@aws-sdk/client-s3'
import type { STSClient } from '@aws-sdk/client-sts'
import type { Logger } from '../common/types.js'

export interface SetupClients {
  s3: S3Client
  cloudfront: CloudFrontClient
  iam: IAMClient
  sts: STSClient
}

/** One thing created or changed (or, in a dry run, that would be). */
export interface SetupChange {
  /** e.g. `bucket`, `bucket-policy`, `origin-access-control`, `distribution`, `role`. */
  resource: string
  action: 'create' | 'update'
  /** What exactly, for a person: `versioning Enabled`, `statement AllowCloudFrontRead added`. */
  detail: string
}

export interface SetupContext {
  clients: SetupClients
  dryRun: boolean
  logger: Logger
  signal?: AbortSignal
  /** Records a change (logged as it happens); in a dry run, one that would be made. */
  change: (change: SetupChange) => void
}

/** Names setup gives what it creates, so a second run finds them again. */
export const SETUP_TAG = { key: 'model-cdn-deploy', value: 'setup' } as const
