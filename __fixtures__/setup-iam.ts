/** The mocked IAM and STS of the setup steps' unit tests, and IAM's answers. */
import { IAMClient, NoSuchEntityException } from '@aws-sdk/client-iam'
import { STSClient } from '@aws-sdk/client-sts'
import { mockClient } from 'aws-sdk-client-mock'

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

/** IAM's answer for a role or policy that does not exist. */
export const noSuchEntity = () =>
  new NoSuchEntityException({ message: 'The role cannot be found.', $metadata: {} })

/** A policy document as IAM returns it: URL-encoded. */
export const iamEncoded = (document: unknown): string =>
  encodeURIComponent(JSON.stringify(document))
