import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput
} from '@aws-sdk/client-s3'
import { mockClient } from 'aws-sdk-client-mock'
import { DeployError } from '../common/errors.js'
import {
  LEASE_MS,
  LOCK_FILE_NAME,
  acquireLock,
  goneHolder,
  lostRace,
  type LockDeps,
  type LockOwner,
  type LockRecord
} from './publish-lock.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import { eTagOf, installMockBucket, type MockObject } from '../../__tests__/helpers/mock-bucket.js'

const s3Mock = mockClient(S3Client)
const s3 = new S3Client({ region: 'us-east-1' })
const BUCKET = 'models'
const KEY = `v5/${LOCK_FILE_NAME}`
const TARGET = { bucket: BUCKET, prefix: 'v5', purpose: 'publish' as const }
let objects: Map<string, MockObject>
let clock: number

const owner = (overrides: Partial<LockOwner> = {}): LockOwner => ({
  token: 'me',
  host: 'runner-a',
  pid: 100,
  pidNamespace: 'pid:[1]',
  repository: 'acme/models',
  runId: '42',
  runAttempt: '1',
  startedAt: '2026-12-01T00:00:00.000Z',
  ...overrides
})
/** Another run's lock as stored: held by a live process elsewhere unless told otherwise. */
const record = (overrides: Partial<LockRecord> = {}): LockRecord => ({
  schemaVersion: 1,
  prefix: 'v5',
  purpose: 'publish',
  owner: owner({ token: 'other', host: 'runner-b', pid: 200, runId: '43' }),
  state: 'held',
  updatedAt: '2026-12-01T00:00:00.000Z',
  uploads: [],
  ...overrides
})
const store = (r: LockRecord): void => {
  objects.set(KEY, { body: Buffer.from(JSON.stringify(r)), metadata: {} })
}
const stored = (): LockRecord | undefined => {
  const o = objects.get(KEY)
  return o && (JSON.parse(o.body.toString('utf8')) as LockRecord)
}
const lockPuts = (): PutObjectCommandInput[] =>
  s3Mock.commandCalls(PutObjectCommand).map((c) => c.args[0].input)

function deps(overrides: Partial<LockDeps> = {}): LockDeps & {
  logger: ReturnType<typeof silentLogger>
} {
  return {
    owner: owner(),
    logger: silentLogger(),
    now: () => clock,
    // Time passes only in the waits.
    sleep: async (ms) => {
      clock += ms
    },
    timeoutMs: 60 * 60_000,
    isAlive: () => true,
    ...overrides
  } as LockDeps & { logger: ReturnType<typeof silentLogger> }
}

beforeEach(() => {
  s3Mock.reset()
  objects = installMockBucket(s3Mock, BUCKET)
  clock = Date.parse('2026-12-01T00:00:00Z')
})

describe('acquireLock', () => {
  it('creates a free lock with If-None-Match, and removes it (If-Match) after success', async () => {
    const lock = await acquireLock(s3, TARGET, deps())

    expect(lockPuts()).toHaveLength(1)
    expect(lockPuts()[0]).toMatchObject({ Key: KEY, IfNoneMatch: '*', CacheControl: 'no-store' })
    expect(stored()).toMatchObject({ state: 'held', owner: { token: 'me' }, uploads: [] })
    expect(lock.previous).toBeUndefined()
    expect(lock.waitedFor).toBeUndefined()

    const eTag = eTagOf(objects.get(KEY)!.body)
    await lock.release('succeeded')
    expect(objects.has(KEY)).toBe(false)
    expect(s3Mock.commandCalls(DeleteObjectCommand)[0].args[0].input).toEqual({
      Bucket: BUCKET,
      Key: KEY,
      IfMatch: eTag
    })
  })

  it('leaves a failed run released with its open uploads, which the next run takes over at once', async () => {
    const upload = { key: 'v5/a.bin', uploadId: 'u1', sha256: 'ab', partSize: 16, headers: 'h' }
    const first = await acquireLock(s3, TARGET, deps())
    first.started(upload)
    await first.release('failed')
    expect(stored()).toMatchObject({ state: 'released', outcome: 'failed', uploads: [upload] })

    const sleeps: number[] = []
    const next = await acquireLock(
      s3,
      TARGET,
      deps({ owner: owner({ token: 'next' }), sleep: async (ms) => void sleeps.push(ms) })
    )
    expect(sleeps).toEqual([])
    expect(next.previous).toMatchObject({ state: 'released', uploads: [upload] })
    // The journal goes on: a run that fails before resuming keeps it for the one after.
    expect(stored()).toMatchObject({ state: 'held', owner: { token: 'next' }, uploads: [upload] })
    expect(lockPuts().at(-1)?.IfMatch).toMatch(/^"/)
  })

  it('waits for a live holder, then takes the lock once it is released, naming whom it waited for', async () => {
    store(record())
    const d = deps({
      sleep: async (ms) => {
        clock += ms
        // The holder renews twice, then finishes.
        const polls = s3Mock.commandCalls(GetObjectCommand).length
        if (polls < 3) store(record({ updatedAt: new Date(clock).toISOString() }))
        else objects.delete(KEY)
      }
    })

    const lock = await acquireLock(s3, TARGET, d)

    expect(lock.waitedFor).toMatchObject({ runId: '43', host: 'runner-b' })
    expect(stored()?.owner.token).toBe('me')
    expect(d.logger.lines[0]).toMatch(
      /^Waiting for another run \(workflow run 43 \(attempt 1\) of acme\/models since .*\), which is publishing v5 \(lock s3:\/\/models\/v5\/\.model-cdn-deploy-lock\.json\); this run continues when it finishes, or fails after 60 minute\(s\)/
    )
    expect(d.logger.warnings).toEqual([])
  })

  it('fails after lock-timeout-minutes of waiting for a holder that keeps renewing, writing nothing', async () => {
    store(record())
    const d = deps({
      timeoutMs: 5 * 60_000,
      sleep: async (ms) => {
        clock += ms
        store(record({ updatedAt: new Date(clock).toISOString() }))
      }
    })

    const err = await acquireLock(s3, TARGET, d).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toMatch(
      /^another run \(workflow run 43 .*\) is still publishing v5 after this run waited 5 minute\(s\) \(lock s3:\/\/models\/v5\/\.model-cdn-deploy-lock\.json\); nothing was written\.$/
    )
    expect((err as DeployError).hint).toMatch(/raise `lock-timeout-minutes`/)
    expect(stored()?.owner.token).toBe('other')
    // Only the creations that found it held: never a takeover.
    expect(lockPuts().every((p) => p.IfNoneMatch === '*')).toBe(true)
  })

  it('takes over a lock nobody renewed for the lease, warning whose it was', async () => {
    store(record())
    const d = deps()

    const lock = await acquireLock(s3, TARGET, d)

    expect(clock - Date.parse('2026-12-01T00:00:00Z')).toBeGreaterThanOrEqual(LEASE_MS)
    expect(lock.previous?.owner.token).toBe('other')
    expect(stored()?.owner.token).toBe('me')
    expect(d.logger.warnings).toEqual([
      expect.stringMatching(
        /^Took over the lock s3:\/\/models\/v5\/\.model-cdn-deploy-lock\.json from another run \(workflow run 43 .*\): it was not renewed for 12\d s/
      )
    ])
  })

  it.each([
    [
      'an earlier attempt of this workflow run',
      { runId: '42', runAttempt: '1' },
      { runAttempt: '2' }
    ],
    [
      'a process of this machine that has exited',
      { runId: undefined, host: 'runner-a', pid: 200 },
      { runId: undefined }
    ]
  ])('takes over at once from %s', async (_, holder, me) => {
    store(record({ owner: owner({ token: 'dead', ...holder }) }))
    const sleeps: number[] = []
    const lock = await acquireLock(
      s3,
      TARGET,
      deps({
        owner: owner(me),
        isAlive: (pid) => pid !== 200,
        sleep: async (ms) => void sleeps.push(ms)
      })
    )
    expect(sleeps).toEqual([])
    expect(lock.previous?.owner.token).toBe('dead')
  })

  it('tries again when another run takes the lock over first (If-Match lost)', async () => {
    store(record({ state: 'released' }))
    const racer = record({ owner: owner({ token: 'racer', host: 'runner-c' }) })
    let raced = false
    s3Mock.on(PutObjectCommand, { IfMatch: eTagOf(objects.get(KEY)!.body) }).callsFake(async () => {
      // Another waiting run took the released lock between our read and our write.
      raced = true
      store(racer)
      throw Object.assign(new Error('PreconditionFailed'), {
        name: 'PreconditionFailed',
        $metadata: { httpStatusCode: 412 }
      })
    })
    const d = deps({
      sleep: async (ms) => {
        clock += ms
        objects.delete(KEY) // the racer finishes
      }
    })

    const lock = await acquireLock(s3, TARGET, d)

    expect(raced).toBe(true)
    expect(lock.waitedFor?.token).toBe('racer')
    expect(stored()?.owner.token).toBe('me')
  })

  it('reads the lock again after a 409 ConditionalRequestConflict on creation', async () => {
    // A concurrent writer won the creation, and released its lock since.
    s3Mock.on(PutObjectCommand, { IfNoneMatch: '*' }).callsFake(async () => {
      store(record({ state: 'released' }))
      throw Object.assign(new Error('conflict'), {
        name: 'ConditionalRequestConflict',
        $metadata: { httpStatusCode: 409 }
      })
    })
    const lock = await acquireLock(s3, TARGET, deps())
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(1)
    expect(lock.previous?.owner.token).toBe('other')
    expect(stored()?.owner.token).toBe('me')
  })

  it('names the failure when S3 refuses the lock write (AccessDenied)', async () => {
    s3Mock.on(PutObjectCommand).rejects(
      Object.assign(new Error('Access Denied'), {
        name: 'AccessDenied',
        $metadata: { httpStatusCode: 403 }
      })
    )
    await expect(acquireLock(s3, TARGET, deps())).rejects.toThrow(
      /^Failed writing the lock s3:\/\/models\/v5\/\.model-cdn-deploy-lock\.json: AWS said AccessDenied/
    )
  })
})

describe('a held lock', () => {
  it('is renewed conditionally, journaling uploads, and reports when another run took it over', async () => {
    const d = deps({ renewEveryMs: 20, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) })
    const lock = await acquireLock(s3, TARGET, d)
    lock.started({ key: 'v5/a.bin', uploadId: 'u1', sha256: 'ab', partSize: 16, headers: 'h' })
    await new Promise((r) => setTimeout(r, 60))
    expect(stored()?.uploads.map((u) => u.uploadId)).toEqual(['u1'])
    expect(
      lockPuts()
        .slice(1)
        .every((p) => p.IfMatch !== undefined)
    ).toBe(true)

    lock.ended('u1')
    await new Promise((r) => setTimeout(r, 60))
    expect(stored()?.uploads).toEqual([])

    // Another run decided this one was dead and took the lock.
    store(record({ owner: owner({ token: 'thief', host: 'runner-c' }) }))
    await new Promise((r) => setTimeout(r, 60))
    expect(lock.lost.aborted).toBe(true)
    expect((lock.lost.reason as DeployError).message).toBe(
      'Lost the lock s3://models/v5/.model-cdn-deploy-lock.json: another run took it over. ' +
        'This run stopped publishing v5 so that the two cannot mix.'
    )
    // Not ours any more: releasing leaves the other run's lock alone.
    await lock.release('failed')
    expect(stored()?.owner.token).toBe('thief')
  })

  it('never throws on release: a lock it cannot write is left to go stale, with a warning', async () => {
    const d = deps()
    const lock = await acquireLock(s3, TARGET, d)
    // An upload left open: the lock must be written (released, journaling it), not removed.
    lock.started({ key: 'v5/a.bin', uploadId: 'u1', sha256: 'ab', partSize: 16, headers: 'h' })
    s3Mock.on(PutObjectCommand).rejects(new Error('socket hang up'))
    await expect(lock.release('failed')).resolves.toBeUndefined()
    expect(d.logger.warnings.at(-1)).toMatch(
      /^Could not release the lock s3:\/\/models\/v5\/\.model-cdn-deploy-lock\.json \(.*socket hang up\); another run takes it over once it is 2 minutes old\.$/
    )
  })
})

describe('goneHolder', () => {
  const me = owner({ runAttempt: '2' })
  it.each([
    ['a later attempt of this run', { runAttempt: '3' }],
    ['the same attempt', { runAttempt: '2' }],
    ['another repository', { repository: 'acme/other', runAttempt: '1' }],
    ['a live process of this machine', { runId: undefined, pid: 300 }],
    ['a process in another pid namespace', { runId: undefined, pid: 200, pidNamespace: 'pid:[2]' }],
    ['a process on another host', { runId: undefined, pid: 200, host: 'runner-b' }]
  ])('may still be alive: %s', (_, holder) => {
    expect(goneHolder(owner(holder), me, (pid) => pid !== 200)).toBeUndefined()
  })
})

describe('lostRace', () => {
  const err = (name: string, status: number) =>
    Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } })
  it.each([
    ['PreconditionFailed', 412, true],
    ['ConditionalRequestConflict', 409, true],
    ['NoSuchKey', 404, true],
    ['NotFound', 404, false],
    ['AccessDenied', 403, false],
    ['SlowDown', 503, false]
  ])('%s (HTTP %d): %s', (name, status, lost) => {
    expect(lostRace(err(name, status))).toBe(lost)
  })
})
