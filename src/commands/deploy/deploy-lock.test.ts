/**
 * deploy() and the version's lock (publish-lock.ts), against an in-memory bucket that answers
 * conditional writes as S3 does: a run that finds another publishing waits, then plans again
 * against what that run left; a run with nothing to write takes no lock.
 */
import fs from 'node:fs'
import { deploy } from './deploy.js'
import { ConcurrentPublishError } from '../../common/errors.js'
import { parseInputs } from '../../inputs/parse.js'
import { LOCK_FILE_NAME, type LockRecord } from '../../aws/publish-lock.js'
import type { DeployInputs } from '../../common/types.js'
import { silentLogger } from '../../../__fixtures__/logger.js'
import {
  dataPuts,
  lockPuts,
  makeWorkspace,
  mockAwsClients
} from '../../../__fixtures__/aws-mocks.js'
import {
  installMockBucket,
  publishVersion,
  type MockObject
} from '../../../__tests__/helpers/mock-bucket.js'

const { s3Mock, clients } = mockAwsClients()
const BUCKET = 'models'
const LOCK = `v1/${LOCK_FILE_NAME}`
const FILES = { 'a.bin': 'weights', 'b.bin': 'tokenizer' }
let workspace: string
let objects: Map<string, MockObject>

function inputs(): DeployInputs {
  const values: Record<string, string> = {
    artifacts: 'models/**',
    bucket: BUCKET,
    'version-prefix': 'v1',
    // The URLs publishVersion's manifests list.
    'url-base': 'https://d111.cloudfront.net',
    preflight: 'false',
    verify: 'false',
    'reuse-from': 'none'
  }
  return parseInputs((n) => values[n] ?? '', { GITHUB_WORKSPACE: workspace })
}

/** Another run's lock, held by a live process on another machine. */
function holdLock(): void {
  const record: LockRecord = {
    schemaVersion: 1,
    prefix: 'v1',
    purpose: 'publish',
    owner: {
      token: 'other',
      host: 'runner-b',
      pid: 7,
      repository: 'acme/models',
      runId: '43',
      runAttempt: '1',
      startedAt: '2026-12-01T00:00:00.000Z'
    },
    state: 'held',
    updatedAt: '2026-12-01T00:00:00.000Z',
    uploads: []
  }
  objects.set(LOCK, { body: Buffer.from(JSON.stringify(record)), metadata: {} })
}

/** The other run finishes while this one waits: its files and manifest in place, its lock gone. */
function otherRunPublishes(files: Record<string, string>) {
  const logger = silentLogger()
  let finished = false
  return {
    logger,
    deps: {
      logger,
      env: { GITHUB_REPOSITORY: 'acme/models', GITHUB_RUN_ID: '44', GITHUB_RUN_ATTEMPT: '1' },
      sleep: async () => {
        if (finished) return
        finished = true
        publishVersion(objects, BUCKET, 'v1', files)
        objects.delete(LOCK)
      }
    }
  }
}

beforeEach(() => {
  objects = installMockBucket(s3Mock, BUCKET)
  workspace = makeWorkspace('mcd-deploy-lock-', {
    'models/a.bin': FILES['a.bin'],
    'models/b.bin': FILES['b.bin']
  })
})
afterEach(() => fs.rmSync(workspace, { recursive: true, force: true }))

describe('deploy under the version lock', () => {
  it('waits for the run publishing the version, then finds the same bytes in place: writes no file and keeps its manifest', async () => {
    holdLock()
    const run = otherRunPublishes(FILES)

    const report = await deploy(inputs(), clients, run.deps)

    expect(report.files.map((f) => [f.relativePath, f.action])).toEqual([
      ['a.bin', 'skip'],
      ['b.bin', 'skip']
    ])
    expect(report.manifestAction).toBe('unchanged')
    expect(dataPuts(s3Mock)).toEqual([])
    expect(run.logger.lines).toContainEqual(
      expect.stringMatching(
        /^Waiting for another run \(workflow run 43 \(attempt 1\) of acme\/models/
      )
    )
    expect(run.logger.lines).toContainEqual(
      expect.stringMatching(
        /^v1\/ changed after this run planned it: another run \(workflow run 43 .*\) published to it\. Planning again\.$/
      )
    )
    // Taken after the wait, and removed.
    expect(lockPuts(s3Mock).at(-1)?.IfNoneMatch).toBe('*')
    expect(objects.has(LOCK)).toBe(false)
  })

  it('fails naming the version and the other run when that run published different bytes meanwhile', async () => {
    holdLock()
    const run = otherRunPublishes({ 'a.bin': 'other weights', 'b.bin': FILES['b.bin'] })

    const err = await deploy(inputs(), clients, run.deps).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(ConcurrentPublishError)
    expect((err as Error).message).toMatch(
      /^Another run \(workflow run 43 \(attempt 1\) of acme\/models since .*\) published v1 while this run waited to: 1 key\(s\) already hold a different object .*s3:\/\/models\/v1\/a\.bin/s
    )
    expect(dataPuts(s3Mock)).toEqual([])
    expect(objects.get('v1/a.bin')?.body.toString()).toBe('other weights')
    expect(objects.has(LOCK)).toBe(false)
  })

  it('names the run holding the lock when the plan finds its different bytes already in place', async () => {
    publishVersion(objects, BUCKET, 'v1', { 'a.bin': 'half-published weights' })
    objects.delete('v1/manifest.json')
    holdLock()

    const err = await deploy(inputs(), clients, otherRunPublishes(FILES).deps).catch(
      (e: unknown) => e
    )

    expect(err).toBeInstanceOf(ConcurrentPublishError)
    expect((err as Error).message).toMatch(
      /^Another run \(workflow run 43 .*\) is publishing v1 with different bytes\. 1 key\(s\) already hold a different object/
    )
    // Refused by the plan, before any write: not even a lock.
    expect(lockPuts(s3Mock)).toEqual([])
    expect(dataPuts(s3Mock)).toEqual([])
  })

  it('takes no lock when there is nothing to write (every file in place, the manifest unchanged)', async () => {
    publishVersion(objects, BUCKET, 'v1', FILES)

    const report = await deploy(inputs(), clients, otherRunPublishes(FILES).deps)

    expect(report.manifestAction).toBe('unchanged')
    expect(lockPuts(s3Mock)).toEqual([])
    expect(dataPuts(s3Mock)).toEqual([])
  })
})
