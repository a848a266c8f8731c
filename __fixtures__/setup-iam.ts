/**
 * The mocked IAM and STS of the setup steps' unit tests, and a SetupContext that records the
 * changes a step reports.
 */
import { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import { IAMClient, NoSuchEntityException } from '@aws-sdk/client-iam'
import { S3Client } from '@aws-sdk/client-s3'
import { STSClient } from '@aws-sdk/client-sts'
import { mockClient } from 'aws-sdk-client-mock'
import type { SetupChange, SetupContext } from '../src/setup/types.js'
import { silentLogger } from './logger.js'

export const ACCOUNT = '123456789012'

/** Stubs IAM and STS, resetting both before each test. */
export function mockIamClients() {
  const iamMock = mockClient(IAMClient)
  const stsMock = mockClient(STSClient)
  beforeEach(() => {
    iamMock.reset()
    stsMock.reset()
  })
  return { iamMock, stsMock }
}

/** A context whose clients the mocks answer, with the changes it was told of. */
export function setupContext(dryRun = false): SetupContext & { changes: SetupChange[] } {
  const changes: SetupChange[] = []
  const region = 'us-east-1'
  return {
    clients: {
      s3: new S3Client({ region }),
      cloudfront: new CloudFrontClient({ region }),
      iam: new IAMClient({ region }),
      sts: new STSClient({ region })
    },
    dryRun,
    logger: silentLogger(),
    change: (change) => void changes.push(change),
    changes
  }
}

/** IAM's answer for a role or policy that does not exist. */
export const noSuchEntity = () =>
  new NoSuchEntityException({ message: 'The role cannot be found.', $metadata: {} })

/** A policy document as IAM returns it: URL-encoded. */
export const iamEncoded = (document: unknown): string =>
  encodeURIComponent(JSON.stringify(document))
