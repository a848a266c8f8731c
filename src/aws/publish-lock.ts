import { randomUUID } from 'node:crypto'
import { readlinkSync } from 'node:fs'
import { hostname } from 'node:os'
import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client
} from '@aws-sdk/client-s3'
import {
  AwsError,
  DeployError,
  awsErrorCode,
  explainAwsError,
  httpStatusOf
} from '../common/errors.js'
import type { Logger, Sleep } from '../common/types.js'

/**
 * One publisher per prefix. Two runs writing one version (or moving one alias) at once would each
 * win some keys with conditional writes alone, and leave a mix in which both fail. So a run first
 * creates `<prefix>/LOCK_FILE_NAME` with `If-None-Match: *` (atomic in S3), renews it while it
 * writes, and removes it when done; another run waits for it, then plans again against what the
 * first one published. A lock whose holder died is taken over with `If-Match` on the ETag seen,
 * so two waiting runs cannot both take it. The lock also journals the run's multipart uploads, so
 * the run that takes over knows which open uploads hold which file's bytes, and resumes them.
 */
export const LOCK_FILE_NAME = '.model-cdn-deploy-lock.json'
/** A lock not renewed for this long is stale: its holder is gone (or cut off) and it can be taken. */
export const LEASE_MS = 120_000
/** How often a holder renews: well within the lease, so a slow request or two cannot lose it. */
const RENEW_MS = 30_000
/** Allowance for the difference between S3's clock (LastModified) and this machine's. */
const CLOCK_MARGIN_MS = 30_000
/** Polls of a lock held by another run: soon at first, then every 10 s. */
const FIRST_POLL_MS = 1000
const MAX_POLL_MS = 10_000
/** The wait before creating again a lock that was gone when read. */
const RETRY_CREATE_MS = 100
/** A waiting run says so once a minute. */
const WAIT_LOG_MS = 60_000

/** Who holds a lock: enough to tell whether that run is still alive, and to name it to a person. */
export interface LockOwner {
  /** Random, per process: tells this run's lock from another's. */
  token: string
  host: string
  pid: number
  /** The pid namespace (Linux), so a pid is only judged within the namespace it belongs to. */
  pidNamespace?: string
  repository?: string
  runId?: string
  runAttempt?: string
  startedAt: string
}

/** A multipart upload the holder started: enough for a later run to resume it with the same file. */
export interface JournaledUpload {
  key: string
  uploadId: string
  /** The file's SHA-256 (hex), as stored in x-amz-meta-sha256 when the upload was created. */
  sha256: string
  partSize: number
  /** Digest of the headers the upload was created with (S3 fixes them at creation). */
  headers: string
}

export type LockPurpose = 'publish' | 'alias' | 'cleanup'

/** The lock object's body. */
export interface LockRecord {
  schemaVersion: 1
  prefix: string
  purpose: LockPurpose
  owner: LockOwner
  state: 'held' | 'released'
  outcome?: 'succeeded' | 'failed' | 'cancelled'
  /** This holder's clock when it last wrote the lock; for people reading it. */
  updatedAt: string
  uploads: JournaledUpload[]
}

export interface HeldLock {
  /** The record this run took over (a released lock, or a dead holder's), with its uploads. */
  readonly previous?: LockRecord
  /** The run this one waited for, when another held the lock at first. */
  readonly waitedFor?: LockOwner
  /** Aborted with a DeployError if another run takes the lock over (this one went silent). */
  readonly lost: AbortSignal
  /** Records a multipart upload this run started (written with the next renewal, or at once). */
  started(upload: JournaledUpload): void
  /** Forgets an upload that was completed or aborted. */
  ended(uploadId: string): void
  /**
   * Ends the hold: the lock is removed, or, while it journals uploads left open (a failed run's),
   * left `released` with them for the next run to resume. Never throws: a lock that cannot be
   * released goes stale.
   */
  release(outcome: 'succeeded' | 'failed' | 'cancelled'): Promise<void>
}

export interface LockTarget {
  bucket: string
  /** The version prefix or alias, normalised (no leading or trailing `/`). */
  prefix: string
  purpose: LockPurpose
  /** Object tags, URL-encoded, e.g. a preview's, so a lock left behind expires with it. */
  tagging?: string
}

export interface LockDeps {
  owner: LockOwner
  logger: Logger
  sleep: Sleep
  now?: () => number
  signal?: AbortSignal
  /** How long to wait for a live holder before failing. */
  timeoutMs: number
  /** For tests: whether a process of this machine is alive. */
  isAlive?: (pid: number) => boolean
  /** For tests: the renewal timer. */
  renewEveryMs?: number
}

export function lockKey(prefix: string): string {
  return `${prefix}/${LOCK_FILE_NAME}`
}

/** This process as a lock owner, with the GitHub run it belongs to when there is one. */
export function lockOwner(env: NodeJS.ProcessEnv, now = Date.now): LockOwner {
  return {
    token: randomUUID(),
    host: hostname(),
    pid: process.pid,
    pidNamespace: pidNamespace(),
    repository: env.GITHUB_REPOSITORY || undefined,
    runId: env.GITHUB_RUN_ID || undefined,
    runAttempt: env.GITHUB_RUN_ATTEMPT || undefined,
    startedAt: new Date(now()).toISOString()
  }
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch {
    return undefined
  }
}

/** `run 123 (attempt 2) of acme/models`, or `process 4242 on build-7`, for messages. */
export function describeOwner(owner: LockOwner): string {
  const since = ` since ${owner.startedAt}`
  if (owner.runId) {
    const attempt = owner.runAttempt ? ` (attempt ${owner.runAttempt})` : ''
    const repo = owner.repository ? ` of ${owner.repository}` : ''
    return `workflow run ${owner.runId}${attempt}${repo}${since}`
  }
  return `process ${owner.pid} on ${owner.host}${since}`
}

/**
 * Why the holder is certainly gone, or undefined when it may be alive: an earlier attempt of
 * this same workflow run (GitHub re-runs a job only once its attempt has ended), or a process
 * of this machine and pid namespace that no longer exists.
 */
export function goneHolder(
  holder: LockOwner,
  me: LockOwner,
  isAlive: (pid: number) => boolean = processAlive
): string | undefined {
  if (
    holder.runId !== undefined &&
    holder.runId === me.runId &&
    holder.repository === me.repository &&
    Number(holder.runAttempt) < Number(me.runAttempt)
  ) {
    return `it was attempt ${holder.runAttempt} of this workflow run, which has ended`
  }
  const sameNamespace =
    holder.host === me.host &&
    holder.pidNamespace !== undefined &&
    holder.pidNamespace === me.pidNamespace
  if (sameNamespace && holder.pid !== me.pid && !isAlive(holder.pid)) {
    return `process ${holder.pid} on this machine no longer exists`
  }
  return undefined
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, and belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

interface StoredLock {
  record?: LockRecord
  eTag?: string
  lastModified?: number
}

/**
 * Takes the lock on `target.prefix`: at once when nobody holds it, after the holder releases it
 * (or dies) otherwise. Fails after `timeoutMs` of waiting for a live holder, naming it.
 */
export async function acquireLock(
  s3: S3Client,
  target: LockTarget,
  deps: LockDeps
): Promise<HeldLock> {
  const now = deps.now ?? Date.now
  const record = (uploads: JournaledUpload[]): LockRecord => ({
    schemaVersion: 1,
    prefix: target.prefix,
    purpose: target.purpose,
    owner: deps.owner,
    state: 'held',
    updatedAt: new Date(now()).toISOString(),
    uploads
  })
  const waitForHolder = lockWaiter(target, deps, now)
  let waitedFor: LockOwner | undefined
  /** The ETag seen and since when, to tell a lock nobody renews. */
  let watched: { eTag?: string; since: number } | undefined
  for (;;) {
    deps.signal?.throwIfAborted()
    const created = await putLock(s3, target, record([]), { IfNoneMatch: '*' })
    if (created !== undefined)
      return holdLock(s3, target, { eTag: created, record: record([]), waitedFor }, deps)

    const stored = await readLock(s3, target.bucket, lockKey(target.prefix))
    if (!stored) {
      // Released (deleted) in between, or another creation still in progress (409): soon again.
      await deps.sleep(RETRY_CREATE_MS)
      continue
    }
    // A retried creation whose first attempt landed (its answer was lost): the lock is ours.
    if (stored.record?.owner.token === deps.owner.token) {
      const mine = record(stored.record.uploads)
      return holdLock(s3, target, { eTag: stored.eTag ?? '', record: mine, waitedFor }, deps)
    }
    if (!watched || stored.eTag !== watched.eTag) watched = { eTag: stored.eTag, since: now() }
    const why = takeoverReason(stored, watched.since, deps, now())
    if (why) {
      const taken = await takeOver(s3, target, stored, why, record, deps.logger)
      if (taken) return holdLock(s3, target, { ...taken, waitedFor }, deps)
      continue // another run took it first
    }

    waitedFor ??= stored.record?.owner
    await waitForHolder(stored.record)
  }
}

/**
 * Takes over a lock found released or abandoned, keeping the uploads it journals; undefined when
 * another run took it first.
 */
async function takeOver(
  s3: S3Client,
  target: LockTarget,
  stored: StoredLock,
  why: string,
  record: (uploads: JournaledUpload[]) => LockRecord,
  logger: Logger
): Promise<{ eTag: string; record: LockRecord; previous?: LockRecord } | undefined> {
  const holder = stored.record
  const uploads = holder?.uploads ?? []
  const taken = await putLock(s3, target, record(uploads), { IfMatch: stored.eTag })
  if (taken === undefined) return undefined
  if (holder?.state === 'held') {
    const where = `s3://${target.bucket}/${lockKey(target.prefix)}`
    logger.warning(`Took over the lock ${where} from ${describeHolder(holder)}: ${why}.`)
  }
  return { eTag: taken, record: record(uploads), previous: holder }
}

/**
 * Waits out one poll of a lock a live holder has: sooner at first, saying so once a minute, and
 * failing once `deps.timeoutMs` have passed since the waiter was made.
 */
function lockWaiter(
  target: LockTarget,
  deps: Pick<LockDeps, 'logger' | 'sleep' | 'timeoutMs'>,
  now: () => number
): (holder: LockRecord | undefined) => Promise<void> {
  const where = `s3://${target.bucket}/${lockKey(target.prefix)}`
  const started = now()
  let poll = FIRST_POLL_MS
  let lastLog = -Infinity
  return async (holder) => {
    const waited = now() - started
    if (waited >= deps.timeoutMs) throw lockTimeout(target, holder, waited)
    if (now() - lastLog >= WAIT_LOG_MS) {
      lastLog = now()
      deps.logger.info(
        `Waiting for ${describeHolder(holder)}, which is ${activity(target, holder)} (lock ${where}); ` +
          `this run continues when it finishes, or fails after ${Math.round(deps.timeoutMs / 60_000)} minute(s) (\`lock-timeout-minutes\`).`
      )
    }
    await deps.sleep(Math.min(poll, Math.max(0, deps.timeoutMs - waited)))
    poll = Math.min(MAX_POLL_MS, poll * 2)
  }
}

/** Why a lock found held may be taken now, or undefined while its holder may still be at work. */
function takeoverReason(
  stored: StoredLock,
  unchangedSince: number,
  deps: Pick<LockDeps, 'owner' | 'isAlive'>,
  now: number
): string | undefined {
  const holder = stored.record
  if (holder?.state === 'released') return 'released'
  if (holder) {
    const gone = goneHolder(holder.owner, deps.owner, deps.isAlive)
    if (gone) return gone
  }
  const silentFor = Math.max(
    now - unchangedSince,
    stored.lastModified === undefined ? 0 : now - stored.lastModified - CLOCK_MARGIN_MS
  )
  if (silentFor >= LEASE_MS) {
    return `it was not renewed for ${Math.round(silentFor / 1000)} s (renewed every ${RENEW_MS / 1000} s while its run is alive)`
  }
  return undefined
}

/** What the lock's holder (this run, or the other run whose record was read) is doing. */
function activity(target: LockTarget, holder?: LockRecord): string {
  switch (holder?.purpose ?? target.purpose) {
    case 'alias':
      return `moving alias ${target.prefix}`
    case 'cleanup':
      return `removing ${target.prefix}`
    case 'publish':
      return `publishing ${target.prefix}`
  }
}

function describeHolder(holder: LockRecord | undefined): string {
  return holder ? `another run (${describeOwner(holder.owner)})` : 'another run'
}

function lockTimeout(
  target: LockTarget,
  holder: LockRecord | undefined,
  waitedMs: number
): DeployError {
  return new DeployError(
    `${describeHolder(holder)} is still ${activity(target, holder)} after this run waited ${Math.round(waitedMs / 60_000)} minute(s) ` +
      `(lock s3://${target.bucket}/${lockKey(target.prefix)}); nothing was written.`,
    'Run again once that run has finished, or raise `lock-timeout-minutes`. A lock whose run has died is taken over automatically within ' +
      `${LEASE_MS / 60_000} minutes.`
  )
}

/** The new ETag, or undefined when the condition failed (another run got there first). */
async function putLock(
  s3: S3Client,
  target: LockTarget,
  record: LockRecord,
  condition: { IfNoneMatch: string } | { IfMatch?: string }
): Promise<string | undefined> {
  try {
    const { ETag } = await s3.send(
      new PutObjectCommand({
        Bucket: target.bucket,
        Key: lockKey(target.prefix),
        Body: `${JSON.stringify(record, null, 2)}\n`,
        ContentType: 'application/json',
        // Served by the distribution like any key: never cached.
        CacheControl: 'no-store',
        ...condition,
        ...(target.tagging ? { Tagging: target.tagging } : {})
      })
    )
    // A store that returns no ETag cannot take a conditional renewal; '' marks that.
    return ETag ?? ''
  } catch (err) {
    if (lostRace(err)) return undefined
    throw explainAwsError(err, {
      action: `writing the lock s3://${target.bucket}/${lockKey(target.prefix)}`,
      bucket: target.bucket
    })
  }
}

/**
 * 412 (the condition failed), 409 (a concurrent conditional write), or 404 NoSuchKey (If-Match on
 * a key deleted since), as the SDK raises them or wrapped (AwsError).
 */
export function lostRace(err: unknown): boolean {
  const code = err instanceof AwsError ? err.code : awsErrorCode(err)
  const status = err instanceof AwsError ? err.httpStatus : httpStatusOf(err)
  return (
    status === 412 ||
    status === 409 ||
    code === 'PreconditionFailed' ||
    code === 'ConditionalRequestConflict' ||
    (status === 404 && code === 'NoSuchKey')
  )
}

async function readLock(
  s3: S3Client,
  bucket: string,
  key: string
): Promise<StoredLock | undefined> {
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    const text = (await got.Body?.transformToString('utf-8')) ?? ''
    return {
      record: parseLock(text),
      eTag: got.ETag,
      lastModified: got.LastModified?.getTime()
    }
  } catch (err) {
    if (httpStatusOf(err) === 404) return undefined
    throw explainAwsError(err, { action: `reading the lock s3://${bucket}/${key}`, bucket })
  }
}

/**
 * Runs `work` holding the lock on `target.prefix`, and releases it after: removed, or left
 * `released` while it journals uploads to resume. `work` receives the lock (undefined when it
 * runs unlocked, see below), whose `lost` signal aborts if another run takes it over.
 */
export async function withLock<T>(
  s3: S3Client,
  target: LockTarget,
  deps: LockDeps,
  work: (lock?: HeldLock) => Promise<T>,
  /**
   * When given, a role that may not write the lock (403) runs `work` without it, after this is
   * told why: for work that needed no s3:PutObject before it took locks (a clean-up).
   */
  unlockedIfDenied?: (why: string) => void
): Promise<T> {
  let lock: HeldLock
  try {
    lock = await acquireLock(s3, target, deps)
  } catch (err) {
    if (!unlockedIfDenied || !(err instanceof AwsError) || err.httpStatus !== 403) throw err
    unlockedIfDenied(err.message)
    return work()
  }
  try {
    const done = await work(lock)
    await lock.release('succeeded')
    return done
  } catch (err) {
    await lock.release(deps.signal?.aborted ? 'cancelled' : 'failed')
    // Work stopped because another run took the lock over: that is the news.
    throw lock.lost.aborted && !deps.signal?.aborted ? lock.lost.reason : err
  }
}

/** How a run waits for a lock: as long as `lock-timeout-minutes`, as this process. */
export function lockDeps(
  inputs: { lockTimeoutMinutes: number },
  deps: Pick<LockDeps, 'logger' | 'sleep' | 'signal'> & {
    env: NodeJS.ProcessEnv
    now?: () => number
  }
): LockDeps {
  return {
    owner: lockOwner(deps.env, deps.now),
    logger: deps.logger,
    sleep: deps.sleep,
    now: deps.now,
    signal: deps.signal,
    timeoutMs: inputs.lockTimeoutMinutes * 60_000
  }
}

/** Who holds the lock on `prefix` now; undefined when nobody does (or it is released). */
export async function readLockHolder(
  s3: S3Client,
  bucket: string,
  prefix: string
): Promise<LockOwner | undefined> {
  const stored = await readLock(s3, bucket, lockKey(prefix))
  return stored?.record?.state === 'held' ? stored.record.owner : undefined
}

/** The record, or undefined for a body that is not one (it then goes stale like a silent lock). */
function parseLock(text: string): LockRecord | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<LockRecord>
    return parsed.owner && Array.isArray(parsed.uploads) ? (parsed as LockRecord) : undefined
  } catch {
    return undefined
  }
}

/** A held lock's state, shared by its renewals and its release. */
interface Holding {
  s3: S3Client
  target: LockTarget
  deps: LockDeps
  now: () => number
  record: LockRecord
  /** The ETag this run last wrote; '' when the store returns none. */
  eTag: string
  lastWritten: number
  lost: AbortController
  timer?: NodeJS.Timeout
  /** The last write queued: writes run one after another. */
  writing: Promise<void>
  /** A write is queued that has not started, so it will carry any change made now. */
  queued: boolean
}

/** The lock held: renewed on a timer and whenever the journal changes, until released. */
function holdLock(
  s3: S3Client,
  target: LockTarget,
  initial: { eTag: string; record: LockRecord; waitedFor?: LockOwner; previous?: LockRecord },
  deps: LockDeps
): HeldLock {
  const now = deps.now ?? Date.now
  const holding: Holding = {
    s3,
    target,
    deps,
    now,
    record: initial.record,
    eTag: initial.eTag,
    lastWritten: now(),
    lost: new AbortController(),
    writing: Promise.resolve(),
    queued: false
  }
  holding.timer = setInterval(() => void scheduleWrite(holding), deps.renewEveryMs ?? RENEW_MS)
  holding.timer.unref()

  return {
    previous: initial.previous,
    waitedFor: initial.waitedFor,
    lost: holding.lost.signal,
    started(upload) {
      holding.record.uploads.push(upload)
      void scheduleWrite(holding)
    },
    ended(uploadId) {
      // Written with the next renewal: a journal naming an ended upload only costs a lookup.
      holding.record.uploads = holding.record.uploads.filter((u) => u.uploadId !== uploadId)
    },
    release: (outcome) => releaseLock(holding, outcome)
  }
}

/** Queues a write of the record, unless one is queued already; resolves once it is done. */
function scheduleWrite(holding: Holding): Promise<void> {
  if (!holding.queued) {
    holding.queued = true
    holding.writing = holding.writing.then(() => renewLock(holding))
  }
  return holding.writing
}

/** Writes the record over the lock this run wrote last; loses the lock if another run took it. */
async function renewLock(holding: Holding): Promise<void> {
  const { s3, target, deps, now, record } = holding
  holding.queued = false
  if (holding.lost.signal.aborted) return
  record.updatedAt = new Date(now()).toISOString()
  try {
    const written =
      (await putLock(s3, target, record, holding.eTag ? { IfMatch: holding.eTag } : {})) ??
      (await ownWrite(s3, target, deps.owner))
    if (written === undefined) return loseLock(holding, 'another run took it over')
    holding.eTag = written
    holding.lastWritten = now()
  } catch (err) {
    deps.logger.warning(
      `Could not renew the lock s3://${target.bucket}/${lockKey(target.prefix)}: ${(err as Error).message}`
    )
    if (now() - holding.lastWritten >= LEASE_MS - (deps.renewEveryMs ?? RENEW_MS)) {
      loseLock(
        holding,
        `it could not be renewed for ${Math.round((now() - holding.lastWritten) / 1000)} s`
      )
    }
  }
}

function loseLock(holding: Holding, why: string): void {
  const { target, lost } = holding
  if (lost.signal.aborted) return
  clearInterval(holding.timer)
  lost.abort(
    new DeployError(
      `Lost the lock s3://${target.bucket}/${lockKey(target.prefix)}: ${why}. This run stopped ${activity(target)} so that the two cannot mix.`,
      'Run again: files already in place are skipped, and uploads left open are resumed.'
    )
  )
}

async function releaseLock(
  holding: Holding,
  outcome: 'succeeded' | 'failed' | 'cancelled'
): Promise<void> {
  const { s3, target, record } = holding
  clearInterval(holding.timer)
  await holding.writing
  if (holding.lost.signal.aborted) return
  try {
    // Kept only while it journals uploads a re-run can resume.
    if (record.uploads.length === 0 && (await removeLock(s3, target, holding.eTag))) return
    record.state = 'released'
    record.outcome = outcome
    await putLock(s3, target, record, holding.eTag ? { IfMatch: holding.eTag } : {})
  } catch (err) {
    holding.deps.logger.warning(
      `Could not release the lock s3://${target.bucket}/${lockKey(target.prefix)} (${(err as Error).message}); ` +
        `another run takes it over once it is ${LEASE_MS / 60_000} minutes old.`
    )
  }
}

/**
 * Removes the lock a process of this machine held and can no longer release (a cancelled run
 * that had to exit at once): for the post step. True when there was one to remove.
 */
export async function removeLockOf(
  s3: S3Client,
  target: Pick<LockTarget, 'bucket' | 'prefix'>,
  holder: Pick<LockOwner, 'host' | 'pid'>
): Promise<boolean> {
  const key = lockKey(target.prefix)
  const stored = await readLock(s3, target.bucket, key)
  const owner = stored?.record?.owner
  if (!stored?.eTag || owner?.host !== holder.host || owner.pid !== holder.pid) return false
  try {
    await s3.send(
      new DeleteObjectCommand({ Bucket: target.bucket, Key: key, IfMatch: stored.eTag })
    )
    return true
  } catch (err) {
    if (lostRace(err)) return false
    throw explainAwsError(err, {
      action: `removing the lock s3://${target.bucket}/${key}`,
      bucket: target.bucket
    })
  }
}

/**
 * The lock's ETag when the body stored is this run's: a retried write whose first attempt landed
 * fails its own condition. Undefined when another run holds it.
 */
async function ownWrite(
  s3: S3Client,
  target: LockTarget,
  owner: LockOwner
): Promise<string | undefined> {
  const stored = await readLock(s3, target.bucket, lockKey(target.prefix))
  return stored?.record?.owner.token === owner.token ? (stored.eTag ?? '') : undefined
}

/** Deletes the lock if it is still this run's; false when S3 would not delete it conditionally. */
async function removeLock(s3: S3Client, target: LockTarget, eTag: string): Promise<boolean> {
  if (!eTag) return false
  try {
    await s3.send(
      new DeleteObjectCommand({ Bucket: target.bucket, Key: lockKey(target.prefix), IfMatch: eTag })
    )
    return true
  } catch (err) {
    // Taken over already: it is not ours to release.
    if (lostRace(err)) return true
    // A store without conditional deletes, or no s3:DeleteObject: leave it released instead.
    return false
  }
}
