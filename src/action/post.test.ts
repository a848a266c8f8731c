/**
 * The post step as the runner runs it: the main step's state in STATE_* variables, the log on
 * stdout, S3 mocked for every client the step creates.
 */
import { jest } from '@jest/globals'
import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  S3Client,
  type MultipartUpload as ListedUpload
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { State } from '../common/constants.js'
import type { MultipartUpload } from '../aws/multipart-tracker.js'
import { runPost } from './post.js'

const s3Mock = mockClient(S3Client)
const STARTED_AT = new Date('2026-11-20T10:00:00.250Z')
let stdout: string[]

const upload = (UploadId: string, Key = 'v1/a.bin'): MultipartUpload => ({
  Bucket: 'models',
  Key,
  UploadId
})
const listed = (UploadId: string, Key: string, Initiated: Date): ListedUpload => ({
  UploadId,
  Key,
  Initiated
})
const accessDenied = () =>
  Object.assign(new Error('Access Denied'), {
    name: 'AccessDenied',
    $metadata: { httpStatusCode: 403, requestId: 'REQ1' }
  })

function saveState(state: Partial<Record<keyof typeof State, string>>): void {
  for (const [name, value] of Object.entries(state)) {
    process.env[`STATE_${State[name as keyof typeof State]}`] = value
  }
}

/** A main step that failed (or was killed) with these uploads open. */
function failedRun(uploads: MultipartUpload[]): void {
  saveState({
    IsPost: 'true',
    Bucket: 'models',
    VersionPrefix: 'v1',
    Region: 'us-east-1',
    EndpointUrl: '',
    StartedAt: STARTED_AT.toISOString(),
    MultipartUploads: JSON.stringify(uploads)
  })
}

/** A main step that was cancelled with these uploads open. */
function cancelledRun(uploads: MultipartUpload[]): void {
  failedRun(uploads)
  saveState({ Cancelled: 'true' })
}

const aborted = () =>
  s3Mock
    .commandCalls(AbortMultipartUploadCommand)
    .map((c) => c.args[0].input.UploadId)
    .sort()
const warnings = () =>
  stdout.filter((line) => line.startsWith('::warning::')).map((l) => l.slice(11).trim())
const log = () => stdout.join('')

beforeEach(() => {
  s3Mock.reset()
  s3Mock.on(ListMultipartUploadsCommand).resolves({})
  s3Mock.on(AbortMultipartUploadCommand).resolves({})
  stdout = []
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout.push(String(chunk))
    return true
  })
})

afterEach(() => {
  jest.restoreAllMocks()
  for (const name of Object.values(State)) delete process.env[`STATE_${name}`]
  process.exitCode = undefined
})

describe('post step', () => {
  // Only a cancelled run's uploads are aborted: a failed run's are resumed by the next.
  it('does nothing after a successful deploy: no AWS call', async () => {
    failedRun([upload('u1')])
    saveState({ Succeeded: 'true' })
    await runPost()
    expect(s3Mock.calls()).toHaveLength(0)
    expect(log()).toMatch(/Nothing to clean up: the deploy succeeded\./)
  })

  it('does nothing when the main step stopped before any upload could start', async () => {
    saveState({ IsPost: 'true' })
    await runPost()
    expect(s3Mock.calls()).toHaveLength(0)
  })

  it('leaves the uploads of a failed or killed run open for a re-run to resume: no AWS call', async () => {
    failedRun([upload('u1'), upload('u2', 'v1/b.bin')])
    await runPost()
    expect(s3Mock.calls()).toHaveLength(0)
    expect(log()).toContain(
      'Left 2 multipart upload(s) open under s3://models/v1/: the deploy failed (it was not ' +
        'cancelled), so a re-run of the same files resumes them, sending only the parts S3 does not hold.'
    )
    expect(log()).toContain('AbortIncompleteMultipartUpload (DaysAfterInitiation: 1)')
    expect(warnings()).toEqual([])
  })

  it('aborts the recorded uploads and those listed under the prefix since the run started', async () => {
    cancelledRun([upload('recorded-1'), upload('recorded-2', 'v1/b.bin')])
    s3Mock
      .on(ListMultipartUploadsCommand)
      .resolvesOnce({
        IsTruncated: true,
        NextKeyMarker: 'v1/c.bin',
        NextUploadIdMarker: 'listed-1',
        Uploads: [
          listed('recorded-1', 'v1/a.bin', new Date('2026-11-20T10:00:05Z')),
          // Initiated in the run's first second: S3 reports whole seconds.
          listed('listed-1', 'v1/c.bin', new Date('2026-11-20T10:00:00Z')),
          listed('older', 'v1/d.bin', new Date('2026-11-20T09:59:59Z'))
        ]
      })
      .resolvesOnce({
        IsTruncated: false,
        Uploads: [
          listed('listed-2', 'v1/e.bin', new Date('2026-11-20T10:03:00Z')),
          // Another version's prefix, in case a store ignores `Prefix`.
          listed('other-prefix', 'v10/a.bin', new Date('2026-11-20T10:03:00Z'))
        ]
      })

    await runPost()

    expect(s3Mock.commandCalls(ListMultipartUploadsCommand).map((c) => c.args[0].input)).toEqual([
      {
        Bucket: 'models',
        Prefix: 'v1/',
        KeyMarker: undefined,
        UploadIdMarker: undefined
      },
      { Bucket: 'models', Prefix: 'v1/', KeyMarker: 'v1/c.bin', UploadIdMarker: 'listed-1' }
    ])
    expect(aborted()).toEqual(['listed-1', 'listed-2', 'recorded-1', 'recorded-2'])
    expect(
      s3Mock
        .commandCalls(AbortMultipartUploadCommand, { UploadId: 'listed-2' })
        .map((c) => c.args[0].input)
    ).toEqual([{ Bucket: 'models', Key: 'v1/e.bin', UploadId: 'listed-2' }])
    expect(log()).toMatch(
      /Aborted 4 multipart upload\(s\) this run left open:\n- s3:\/\/models\/v1\/a\.bin \(upload id recorded-1\)/
    )
    expect(warnings()).toEqual([])
    expect(process.exitCode).toBeUndefined()
  })

  it('warns, naming the upload, when an abort fails, and never fails the job', async () => {
    cancelledRun([upload('denied'), upload('ok', 'v1/b.bin'), upload('gone', 'v1/c.bin')])
    s3Mock.on(AbortMultipartUploadCommand, { UploadId: 'denied' }).rejects(accessDenied())
    s3Mock
      .on(AbortMultipartUploadCommand, { UploadId: 'gone' })
      .rejects(Object.assign(new Error('gone'), { name: 'NoSuchUpload' }))

    await runPost()

    expect(aborted()).toEqual(['denied', 'gone', 'ok'])
    expect(warnings()).toEqual([
      'Failed aborting multipart upload denied of s3://models/v1/a.bin: AWS said AccessDenied ' +
        '(HTTP 403): Access Denied [request id REQ1]. Until it is aborted its parts stay stored ' +
        'and billed; a bucket lifecycle rule with AbortIncompleteMultipartUpload ' +
        '(DaysAfterInitiation: 1) removes them (see the README).'
    ])
    expect(log()).toMatch(
      /Aborted 1 multipart upload\(s\) this run left open:\n- s3:\/\/models\/v1\/b\.bin/
    )
    expect(process.exitCode).toBeUndefined()
  })

  it('still aborts the recorded uploads when listing is not allowed', async () => {
    cancelledRun([upload('recorded-1')])
    s3Mock.on(ListMultipartUploadsCommand).rejects(accessDenied())

    await runPost()

    expect(aborted()).toEqual(['recorded-1'])
    expect(warnings()).toHaveLength(1)
    expect(warnings()[0]).toMatch(
      /^Could not list the multipart uploads under s3:\/\/models\/v1\/ \(this needs s3:ListBucketMultipartUploads\), so only the 1 this run recorded are aborted: Failed listing .*AccessDenied/
    )
    expect(process.exitCode).toBeUndefined()
  })

  it('says so when nothing was left open', async () => {
    cancelledRun([])
    await runPost()
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0)
    expect(log()).toMatch(
      /No multipart upload of this run is left open under s3:\/\/models\/v1\/\./
    )
  })

  it('warns rather than fails on state it cannot read', async () => {
    failedRun([])
    saveState({ MultipartUploads: '[{"Bucket":' })
    await runPost()
    expect(s3Mock.calls()).toHaveLength(0)
    expect(warnings()[0]).toMatch(/^Could not clean up after the deploy: /)
    expect(process.exitCode).toBeUndefined()
  })
})
