/**
 * The mocked S3 and CloudFront of the unit tests: aws-sdk-client-mock stubs every client of a
 * class, so one pair of stubs and one pair of clients serve a whole test file.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  CloudFrontClient,
  CreateInvalidationCommand,
  GetDistributionCommand,
  GetInvalidationCommand
} from '@aws-sdk/client-cloudfront'
import { PutObjectCommand, S3Client, type PutObjectCommandInput } from '@aws-sdk/client-s3'
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock'
import { LOCK_FILE_NAME } from '../src/aws/publish-lock.js'
import { deployedDistribution, invalidation } from './cloudfront.js'

/** Stubs S3 and CloudFront, resets both before each test, and returns clients they answer. */
export function mockAwsClients() {
  const s3Mock = mockClient(S3Client)
  const cfMock = mockClient(CloudFrontClient)
  beforeEach(() => {
    s3Mock.reset()
    cfMock.reset()
  })
  const clients = {
    s3: new S3Client({ region: 'us-east-1' }),
    cloudfront: new CloudFrontClient({ region: 'us-east-1' })
  }
  return { s3Mock, cfMock, clients }
}

const isLock = (input: PutObjectCommandInput): boolean =>
  input.Key?.endsWith(`/${LOCK_FILE_NAME}`) === true

/** The PutObjects of files and manifests, in order: the locks (publish-lock.ts) left out. */
export function dataPuts(s3Mock: AwsClientStub<S3Client>): PutObjectCommandInput[] {
  return s3Mock
    .commandCalls(PutObjectCommand)
    .map((c) => c.args[0].input)
    .filter((input) => !isLock(input))
}

/** The PutObjects of locks: taken, renewed, released. */
export function lockPuts(s3Mock: AwsClientStub<S3Client>): PutObjectCommandInput[] {
  return s3Mock
    .commandCalls(PutObjectCommand)
    .map((c) => c.args[0].input)
    .filter(isLock)
}

/** A deployed distribution whose invalidations are created and then found completed. */
export function mockDeployedDistribution(cfMock: AwsClientStub<CloudFrontClient>): void {
  cfMock.on(GetDistributionCommand).resolves(deployedDistribution)
  cfMock.on(CreateInvalidationCommand).resolves(invalidation('InProgress'))
  cfMock.on(GetInvalidationCommand).resolves(invalidation('Completed'))
}

/** A temporary directory holding `files` (paths relative to it, parents created); the caller removes it. */
export function makeWorkspace(prefix: string, files: Record<string, string | Buffer>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  for (const [rel, contents] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
    fs.writeFileSync(path.join(dir, rel), contents)
  }
  return dir
}

/**
 * An S3 error as the SDK throws it: name, HTTP status and, hidden in `$response` as the SDK
 * keeps them, the response headers (e.g. x-amz-bucket-region).
 */
export function s3Error(
  name: string,
  status: number,
  opts: { message?: string; headers?: Record<string, string> } = {}
): Error {
  const err = Object.assign(new Error(opts.message ?? name), {
    name,
    $metadata: { httpStatusCode: status }
  })
  return Object.defineProperty(err, '$response', {
    value: { statusCode: status, headers: opts.headers ?? {} }
  })
}

/** An `s3In` as createClients gives it: one client per region, made once. */
export function s3ClientsByRegion(): (region: string) => S3Client {
  const made = new Map<string, S3Client>()
  return (region) => {
    if (!made.has(region)) made.set(region, new S3Client({ region }))
    return made.get(region)!
  }
}
