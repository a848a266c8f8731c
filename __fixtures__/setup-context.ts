/**
 * The unit tests of setup's steps: a SetupContext whose clients aws-sdk-client-mock answers (a
 * stub answers every client of its class), with the changes a step recorded and what it logged.
 */
import { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import { IAMClient } from '@aws-sdk/client-iam'
import { S3Client } from '@aws-sdk/client-s3'
import { STSClient } from '@aws-sdk/client-sts'
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock'
import type { SetupChange, SetupContext } from '../src/setup/types.js'
import { silentLogger } from './logger.js'

/** A fresh context (a dry run when asked), the changes it was told of, and its logger. */
export function setupContext(dryRun = false) {
  const changes: SetupChange[] = []
  const logger = silentLogger()
  const region = 'us-east-1'
  const ctx: SetupContext = {
    clients: {
      s3: new S3Client({ region }),
      cloudfront: new CloudFrontClient({ region }),
      iam: new IAMClient({ region }),
      sts: new STSClient({ region })
    },
    dryRun,
    logger,
    change: (change) => void changes.push(change)
  }
  return { ctx, changes, logger }
}

/** Stubs S3, reset before each test. */
export function mockSetupS3(): AwsClientStub<S3Client> {
  const s3Mock = mockClient(S3Client)
  beforeEach(() => s3Mock.reset())
  return s3Mock
}

/** The names of the commands an S3 stub received, in order. */
export function sentCommands(s3Mock: AwsClientStub<S3Client>): string[] {
  return s3Mock.calls().map((call) => call.args[0].constructor.name)
}
