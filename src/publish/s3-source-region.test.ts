import { Readable } from 'node:stream'
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3'
import type { HttpResponse } from '@smithy/types'
import { mockClient } from 'aws-sdk-client-mock'
import { AwsError, InputError } from '../common/errors.js'
import { sourceRegion } from './s3-source-region.js'
import { s3Error } from '../../__fixtures__/aws-mocks.js'
import { rejectionOf } from '../../__fixtures__/rejection.js'

const s3 = new S3Client({ region: 'us-east-1' })
// This client only: the last tests go through the real SDK stack with clients of their own.
const s3Mock = mockClient(s3)

beforeEach(() => s3Mock.reset())

describe('sourceRegion', () => {
  it("reads HeadBucket's BucketRegion", async () => {
    s3Mock.on(HeadBucketCommand, { Bucket: 'train-out' }).resolves({ BucketRegion: 'eu-west-1' })
    expect(await sourceRegion(s3, 'train-out')).toBe('eu-west-1')
  })

  it("takes the client's region when the store names none", async () => {
    s3Mock.on(HeadBucketCommand).resolves({})
    expect(await sourceRegion(s3, 'train-out')).toBe('us-east-1')
  })

  it.each([
    ['PermanentRedirect', 301],
    ['AuthorizationHeaderMalformed', 400],
    ['AccessDenied', 403]
  ])('reads the x-amz-bucket-region header of a %s (%i)', async (name, status) => {
    s3Mock
      .on(HeadBucketCommand)
      .rejects(s3Error(name, status, { headers: { 'x-amz-bucket-region': 'ap-south-1' } }))
    expect(await sourceRegion(s3, 'train-out')).toBe('ap-south-1')
  })

  it('reads BucketRegion from an error that carries it', async () => {
    const err = Object.assign(s3Error('PermanentRedirect', 301), { BucketRegion: 'sa-east-1' })
    s3Mock.on(HeadBucketCommand).rejects(err)
    expect(await sourceRegion(s3, 'train-out')).toBe('sa-east-1')
  })

  it('says a missing bucket does not exist', async () => {
    s3Mock.on(HeadBucketCommand).rejects(s3Error('NotFound', 404))
    const err = await rejectionOf(sourceRegion(s3, 'train-out'), InputError)
    expect(err.message).toBe('The source bucket s3://train-out does not exist.')
    expect(err.hint).toMatch(/bucket name in `artifacts`/)
  })

  it('names s3:ListBucket on the bucket when refused without a region', async () => {
    s3Mock.on(HeadBucketCommand).rejects(s3Error('Forbidden', 403))
    const err = await rejectionOf(sourceRegion(s3, 'train-out'), InputError)
    expect(err.hint).toMatch(/s3:ListBucket on arn:aws:s3:::train-out/)
    expect(err.hint).toMatch(/bucket's policy must grant it/)
  })

  it('explains other failures, naming the bucket', async () => {
    s3Mock.on(HeadBucketCommand).rejects(s3Error('InternalError', 500))
    const err = await rejectionOf(sourceRegion(s3, 'train-out'), AwsError)
    expect(err.message).toMatch(/finding the region of s3:\/\/train-out/)
  })

  it('reports a cancellation as such', async () => {
    const controller = new AbortController()
    s3Mock.on(HeadBucketCommand).callsFake(async () => {
      controller.abort(new Error('cancelled'))
      throw s3Error('RequestAborted', 0)
    })
    await expect(sourceRegion(s3, 'train-out', controller.signal)).rejects.toThrow('cancelled')
  })
})

describe('sourceRegion through the real SDK stack', () => {
  /** A client whose every request is answered with `status`, `headers` and no body, as S3 answers HEAD. */
  function answering(status: number, headers: Record<string, string>): S3Client {
    return new S3Client({
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      maxAttempts: 1,
      requestHandler: {
        handle: async () => ({
          response: { statusCode: status, headers, body: Readable.from([]) } as HttpResponse
        })
      }
    })
  }

  it("finds the region in the redirect's x-amz-bucket-region header", async () => {
    const client = answering(301, { 'x-amz-bucket-region': 'eu-north-1' })
    expect(await sourceRegion(client, 'train-out')).toBe('eu-north-1')
    client.destroy()
  })

  it('reads BucketRegion from a 200', async () => {
    const client = answering(200, { 'x-amz-bucket-region': 'eu-north-1' })
    expect(await sourceRegion(client, 'train-out')).toBe('eu-north-1')
    client.destroy()
  })

  it('tells a missing bucket from a refused one', async () => {
    const missing = answering(404, {})
    await expect(sourceRegion(missing, 'train-out')).rejects.toThrow('does not exist')
    const refused = answering(403, {})
    await expect(sourceRegion(refused, 'train-out')).rejects.toThrow(/was denied/)
    missing.destroy()
    refused.destroy()
  })
})
