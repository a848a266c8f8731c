import { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import { S3Client } from '@aws-sdk/client-s3'
import type { DeployInputs } from './types.js'

export interface Clients {
  s3: S3Client
  cloudfront: CloudFrontClient
}

/** SDK retries for transient faults (5xx, throttling, resets): standard mode's backoff with jitter. */
const MAX_ATTEMPTS = 6
/** Fail a connect that hangs, and a socket that sends or receives nothing for this long (a stall). */
const CONNECTION_TIMEOUT_MS = 10_000
const SOCKET_IDLE_TIMEOUT_MS = 60_000

/** The S3 endpoint in use when it is not AWS's own: the input, or the SDK's standard variables. */
export function customS3Endpoint(inputs: Pick<DeployInputs, 'endpointUrl'>, env = process.env) {
  return inputs.endpointUrl || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined
}

/**
 * The one place SDK clients are made; modules receive them as arguments. Credentials come only
 * from the SDK's default chain (environment, OIDC web identity, instance roles).
 */
export function createClients(inputs: DeployInputs, env = process.env): Clients {
  const requestHandler = {
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    socketTimeout: SOCKET_IDLE_TIMEOUT_MS,
    // Enough sockets for every part in flight plus HEAD/List calls.
    httpsAgent: { keepAlive: true, maxSockets: Math.max(50, inputs.concurrency * 2) },
    httpAgent: { keepAlive: true, maxSockets: Math.max(50, inputs.concurrency * 2) }
  }
  const endpoint = customS3Endpoint(inputs, env)
  const s3 = new S3Client({
    region: inputs.region,
    maxAttempts: MAX_ATTEMPTS,
    requestHandler,
    ...(endpoint
      ? {
          endpoint,
          // S3-compatible stores (MinIO, R2, emulators) want path-style URLs and reject or
          // mis-store the SDK's default aws-chunked CRC trailers (aws-sdk-js-v3 #6810).
          forcePathStyle: true,
          requestChecksumCalculation: 'WHEN_REQUIRED' as const,
          responseChecksumValidation: 'WHEN_REQUIRED' as const
        }
      : {})
  })
  // CloudFront is global; AWS_ENDPOINT_URL_CLOUDFRONT is honoured by the SDK itself.
  const cloudfront = new CloudFrontClient({
    region: 'us-east-1',
    maxAttempts: MAX_ATTEMPTS,
    requestHandler
  })
  return { s3, cloudfront }
}
