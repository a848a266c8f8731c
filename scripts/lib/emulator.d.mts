import type { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import type { S3Client } from '@aws-sdk/client-s3'

export declare const TEST_REGION: 'us-east-1'
export declare const TEST_ACCESS_KEY_ID: string
export declare const TEST_SECRET_ACCESS_KEY: string

export interface StartEmulatorOptions {
  /** Executable to run; default `$MOTO_SERVER_COMMAND` or `moto_server` on PATH. */
  command?: string
  /** Loopback address to bind; default 127.0.0.1. */
  host?: string
  /** How long to wait for the server to answer; default 30 s. */
  readyTimeoutMs?: number
  /**
   * Apply MOTO_PATCH (default true): origins keep OriginAccessControlId and S3OriginConfig in
   * GetDistribution, unknown key groups/public keys are 404s, and S3 conditional writes answer
   * as AWS's do (If-Match on CompleteMultipartUpload, If-None-Match/If-Match on CopyObject's
   * destination, each check atomic with its write), copies honour x-amz-copy-source-if-match, and
   * HeadObject names the checksum type as AWS does. The Python is `$MOTO_PYTHON`, the one
   * moto_server's script names, or python3 on PATH.
   */
  patchMoto?: boolean
}

export interface Emulator {
  /** e.g. `http://127.0.0.1:41234` */
  endpoint: string
  host: string
  port: number
  pid: number
  /** moto_server's stdout/stderr (removed by stop()). */
  logFile: string
  /** Kills the server and its process group; idempotent. */
  stop(): Promise<void>
}

/** Starts moto_server on a free loopback port; rejects with install instructions when missing. */
export declare function startEmulator(options?: StartEmulatorOptions): Promise<Emulator>

/** S3 (path-style) and CloudFront clients for the emulator, with test credentials. */
export declare function makeClients(endpoint: string): {
  s3: S3Client
  cloudfront: CloudFrontClient
}

export interface World {
  bucket: string
  distributionId: string
  /** e.g. `d1234abcdef.cloudfront.net` */
  domain: string
  distributionArn: string
  oacId: string
  /** The id of the distribution's only origin, the bucket. */
  originId: string
  /** With `signing`: the public key, and the key group holding it that the default behavior trusts. */
  publicKeyId?: string
  keyGroupId?: string
}

export interface WorldOptions {
  bucket: string
  /** Require signed URLs: a key group with this public key, trusted by the default behavior. */
  signing?: { publicKeyPem: string }
}

/**
 * Creates a versioned, private bucket (public access blocked, incomplete multipart uploads
 * aborted after a day), an Origin Access Control, a distribution whose origin is the bucket, and
 * the bucket policy scoped to the distribution; with `signing`, a trusted key group.
 */
export declare function setupWorld(endpoint: string, options: WorldOptions): Promise<World>
