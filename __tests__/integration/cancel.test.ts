/**
 * A cancelled deploy leaves nothing behind (issue 3, "No orphaned multipart uploads"), and a
 * failed or killed one leaves its multipart upload for a re-run to resume: the committed
 * dist/index.js runs as a runner runs it, against moto_server, and is stopped mid-upload as a
 * runner stops it (SIGINT; SIGINT then SIGTERM 7.5 s later; or killed), or fails for good. Then
 * the post step runs with the state the main step saved. Each scenario checks what is STORED:
 * after a cancel no multipart upload open, no object, no manifest and no lock under the version
 * prefix; after a failure or kill the upload left open, and then the re-run's complete version.
 *
 * A fault proxy holds back every UploadPart answer, as a slow link would, so the main step is
 * reliably mid-upload when it is signalled; "mid-upload" is read from the requests seen and
 * from moto's ListMultipartUploads, never guessed from a fixed sleep.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type S3Client } from '@aws-sdk/client-s3'
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js'
import { LOCK_FILE_NAME } from '../../src/aws/publish-lock.js'
import {
  getStored,
  listKeys,
  openUploadKeys,
  sha256,
  versionSnapshot
} from '../helpers/emulator-state.js'
import { startTestWorld, writeFiles, type TestWorld } from '../helpers/emulator-world.js'
import { diagnostics, runAction, type RunActionResult } from '../helpers/run-action.js'

const MiB = 1024 * 1024
const BUCKET = 'model-cdn-cancel'
/** The runner's cancel sequence: SIGINT, SIGTERM 7.5 s later, kill 2.5 s after that. */
const SIGTERM_AFTER_MS = 7500
const KILL_AFTER_MS = 2500

let moto: TestWorld | undefined
let proxy: FaultProxy | undefined
let s3: S3Client
let workspace: string

beforeAll(async () => {
  moto = await startTestWorld({
    bucket: BUCKET,
    requireDist: true,
    workspacePrefix: 'model-cdn-cancel-'
  })
  // Checks read moto directly, never through the proxy.
  ;({ s3, workspace } = moto)
  proxy = await startFaultProxy(moto.emulator.endpoint)
  // Three multipart files of six 5 MiB parts; with concurrency 2 one uploads at a time.
  await writeFiles(
    join(workspace, 'models'),
    Object.fromEntries(
      ['a', 'b', 'c'].map((name) => [`${name}.safetensors`, randomBytes(30 * MiB)])
    )
  )
}, 60_000)

afterAll(async () => {
  await proxy?.stop()
  await moto?.stop()
})

const inputs = (prefix: string) => ({
  artifacts: 'models/**',
  bucket: BUCKET,
  'version-prefix': prefix,
  'multipart-threshold-mb': 5,
  'part-size-mb': 5,
  concurrency: 2,
  // Every scenario sends the same files: they must be uploaded, not copied from the last.
  'reuse-from': 'none',
  // Without a distribution the URLs are the emulator's, which refuses anonymous requests.
  verify: false
})

/** Every UploadPart answer held back `ms`, as on a slow link. */
function slowParts(ms: number): void {
  proxy!.setRules([
    { operations: ['UploadPart'], every: 1, fault: { kind: 'stall', ms, phase: 'response' } }
  ])
}

const openUploads = (prefix: string) => openUploadKeys(s3, BUCKET, `${prefix}/`)

/**
 * Every key ever written under the prefix, versions and delete markers too, but the version's
 * lock, which a deploy writes before its first file (it must be gone: currentKeys).
 */
const storedKeys = async (prefix: string) =>
  Object.keys(await versionSnapshot(s3, BUCKET, `${prefix}/`)).filter(
    (key) => key !== `${prefix}/${LOCK_FILE_NAME}`
  )
/** The keys under the prefix now. */
const currentKeys = (prefix: string) => listKeys(s3, BUCKET, `${prefix}/`)

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`)
    await sleep(20)
  }
}

/**
 * Runs the main step and, once it is mid-upload (a part sent, a multipart upload open in moto),
 * hands its process to `stop`.
 */
function mainStep(prefix: string, stop: (child: ChildProcess) => Promise<void>) {
  let stopping: Promise<void> | undefined
  const result = runAction({
    cwd: workspace,
    endpoint: proxy!.endpoint,
    inputs: inputs(prefix),
    onSpawn: (child) => {
      stopping = (async () => {
        await until('a part is sent', () =>
          proxy!.requests.some((r) => r.operation === 'UploadPart')
        )
        expect(await openUploads(prefix)).not.toEqual([])
        await stop(child)
      })()
      // Awaited with the result below; this only keeps an early failure from going unhandled.
      stopping.catch(() => undefined)
    }
  })
  return result.then(async (r) => {
    await stopping
    return r
  })
}

const postStep = (prefix: string, main: RunActionResult) =>
  runAction({
    cwd: workspace,
    endpoint: proxy!.endpoint,
    inputs: inputs(prefix),
    phase: 'post',
    state: main.state
  })

function expectNoWarnings(r: RunActionResult): void {
  if (r.exitCode !== 0 || r.warnings.length > 0) {
    throw new Error(`The post step should succeed quietly:\n${diagnostics(r)}`)
  }
}

describe('cancelling the deploy', () => {
  it('SIGINT mid-upload: aborts in order, fails with the cause, writes no manifest', async () => {
    slowParts(1000)
    const main = await mainStep('v-sigint', async (child) => {
      child.kill('SIGINT')
    })

    expect(main.exitCode).toBe(1)
    expect(main.signal).toBeNull()
    expect(main.warnings[0]).toMatch(/^Received SIGINT: the workflow run was cancelled\./)
    expect(main.errors).toEqual([
      'Upload to s3://model-cdn-cancel cancelled: 0 of 3 file(s) were uploaded.'
    ])
    // The main step cleaned up on its own; the post step finds nothing left.
    expect(await openUploads('v-sigint')).toEqual([])
    expect(JSON.parse(main.state.multipartUploads)).toEqual([])
    expect(main.state.succeeded).toBeUndefined()

    const post = await postStep('v-sigint', main)
    expectNoWarnings(post)
    expect(post.stdout).toMatch(/No multipart upload of this run is left open/)
    expect(await openUploads('v-sigint')).toEqual([])
    expect(await storedKeys('v-sigint')).toEqual([])
    expect(await currentKeys('v-sigint')).toEqual([])
  })

  it('SIGINT, then SIGTERM 7.5 s later: aborts every open upload at once and exits before the kill', async () => {
    // Parts in flight never finish in time, so the orderly stop cannot complete.
    slowParts(60_000)
    let killedByRunner = false
    const main = await mainStep('v-sigterm', async (child) => {
      child.kill('SIGINT')
      await sleep(SIGTERM_AFTER_MS)
      if (child.exitCode !== null) throw new Error('The orderly stop was expected not to finish')
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const runnerKill = setTimeout(() => {
        killedByRunner = true
        child.kill('SIGKILL')
      }, KILL_AFTER_MS)
      await exited
      clearTimeout(runnerKill)
    })

    expect({ killedByRunner, exitCode: main.exitCode }).toEqual({
      killedByRunner: false,
      exitCode: 1
    })
    expect(main.errors).toEqual([
      'The workflow run was cancelled (SIGINT, then SIGTERM) and the deploy stopped at once: ' +
        '1 of 1 open multipart upload(s) aborted.'
    ])
    // Aborted by the main step itself, before the post step runs.
    expect(await openUploads('v-sigterm')).toEqual([])

    // Exited at once: the lock is still there, held by the exited process.
    expect(await currentKeys('v-sigterm')).toEqual([`v-sigterm/${LOCK_FILE_NAME}`])

    const post = await postStep('v-sigterm', main)
    expectNoWarnings(post)
    expect(post.stdout).toContain(
      `Removed the lock s3://${BUCKET}/v-sigterm/${LOCK_FILE_NAME} the cancelled run held.`
    )
    expect(await openUploads('v-sigterm')).toEqual([])
    expect(await storedKeys('v-sigterm')).toEqual([])
    expect(await currentKeys('v-sigterm')).toEqual([])
  }, 60_000)

  it('a part refused for good: reports the part, keeps the upload, which the post step leaves and a re-run resumes', async () => {
    const denied = { kind: 's3Error', status: 403, code: 'AccessDenied' } as const
    proxy!.setRules([{ operations: ['UploadPart'], first: 1, fault: denied }])
    const main = await runAction({
      cwd: workspace,
      endpoint: proxy!.endpoint,
      inputs: inputs('v-refused')
    })

    expect(main.exitCode).toBe(1)
    expect(main.errors).toHaveLength(1)
    expect(main.errors[0]).toMatch(
      /^Failed uploading a\.safetensors to s3:\/\/model-cdn-cancel\/v-refused\/a\.safetensors: AWS said AccessDenied/
    )
    expect(main.warnings).toEqual([])
    expect(main.stdout).toMatch(
      /Left the multipart upload of s3:\/\/model-cdn-cancel\/v-refused\/a\.safetensors open \(upload id \S+\): a re-run resumes it/
    )
    expect(proxy!.requests.some((r) => r.operation === 'AbortMultipartUpload')).toBe(false)
    expect(await openUploads('v-refused')).toEqual(['v-refused/a.safetensors'])

    proxy!.setRules([])
    const post = await postStep('v-refused', main)
    expectNoWarnings(post)
    expect(post.stdout).toMatch(
      /Left 1 multipart upload\(s\) open under s3:\/\/model-cdn-cancel\/v-refused\//
    )
    expect(await openUploads('v-refused')).toEqual(['v-refused/a.safetensors'])

    await expectResumed('v-refused', main)
  })

  it('killed mid-upload: the post step leaves the upload, and the next attempt resumes it', async () => {
    slowParts(1000)
    const main = await mainStep('v-killed', async (child) => {
      child.kill('SIGKILL')
    })

    expect(main.signal).toBe('SIGKILL')
    const left = await openUploads('v-killed')
    expect(left).toEqual(['v-killed/a.safetensors'])
    expect(JSON.parse(main.state.multipartUploads)).toMatchObject([
      { Bucket: BUCKET, Key: 'v-killed/a.safetensors' }
    ])

    const post = await postStep('v-killed', main)
    expectNoWarnings(post)
    expect(post.stdout).toMatch(
      /Left 1 multipart upload\(s\) open under s3:\/\/model-cdn-cancel\/v-killed\//
    )
    expect(await openUploads('v-killed')).toEqual(['v-killed/a.safetensors'])

    proxy!.setRules([])
    await expectResumed('v-killed', main)
  })
})

/**
 * The next attempt of the same workflow run takes the lock the failed or killed one left at once,
 * resumes its upload (no new CreateMultipartUpload for that file), publishes every file and
 * leaves nothing open.
 */
async function expectResumed(prefix: string, failed: RunActionResult): Promise<void> {
  const sentBefore = proxy!.requests.length
  const rerun = await runAction({
    cwd: workspace,
    endpoint: proxy!.endpoint,
    inputs: inputs(prefix),
    env: { GITHUB_RUN_ID: failed.env.GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT: '2' }
  })
  if (rerun.exitCode !== 0) throw new Error(`The re-run failed:\n${diagnostics(rerun)}`)
  expect(rerun.stdout).toMatch(
    /Resuming the upload of a\.safetensors an earlier run left open \(upload id \S+\): \d of 6 part\(s\)/
  )
  const created = proxy!.requests
    .slice(sentBefore)
    .filter((r) => r.operation === 'CreateMultipartUpload')
    .map((r) => r.target)
  expect(created).not.toContain(`${BUCKET}/${prefix}/a.safetensors`)
  expect(await openUploads(prefix)).toEqual([])
  expect(await currentKeys(prefix)).toEqual(
    ['a', 'b', 'c'].map((n) => `${prefix}/${n}.safetensors`).concat(`${prefix}/manifest.json`)
  )
  for (const name of ['a', 'b', 'c']) {
    const stored = await getStored(s3, BUCKET, `${prefix}/${name}.safetensors`)
    const local = await readFile(join(workspace, 'models', `${name}.safetensors`))
    expect(stored.sha256).toBe(sha256(local))
  }
}
