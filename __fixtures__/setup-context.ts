/**
 * The unit tests of setup's steps: a SetupContext whose clients aws-sdk-client-mock answers, and
 * the changes a step recorded.
 */
import { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import { IAMClient } from '@aws-sdk/client-iam'
import { S3Client } from '@aws-sdk/client-s3'
import { STSClient } from '@aws-sdk/client-sts'
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock'
import type { SetupChange, SetupClients, SetupContext } from '../src/setup/types.js'

/** Stubs S3 (reset before each test); `context()` gives a fresh context and its recorded changes. */
export function mockSetupS3() {
  const s3Mock = mockClient(S3Client)
  beforeEach(() => s3Mock.reset())
  const clients: SetupClients = {
    s3: new S3Client({ region: 'us-east-1' }),
    cloudfront: new CloudFrontClient({ region: 'us-east-1' }),
    iam: new IAMClient({ region: 'us-east-1' }),
    sts: new STSClient({ region: 'us-east-1' })
  }
  function context(dryRun = false): { ctx: SetupContext; changes: SetupChange[] } {
    const changes: SetupChange[] = []
    const logger = { info: () => undefined, warning: () => undefined, debug: () => undefined }
    return { ctx: { clients, dryRun, logger, change: (c) => changes.push(c) }, changes }
  }
  return { s3Mock, clients, context }
}

/** The names of the commands an S3 stub received, in order. */
export function sentCommands(s3Mock: AwsClientStub<S3Client>): string[] {
  return s3Mock.calls().map((call) => call.args[0].constructor.name)
}
