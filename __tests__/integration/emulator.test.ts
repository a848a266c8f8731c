/**
 * The emulator launcher the integration tests and the demo rely on: it fails loudly without
 * moto_server, and never leaves a server behind, even when the process that started it is killed.
 * And the S3 conditional writes MOTO_PATCH adds to moto answer as AWS's do: CopyObject and
 * CompleteMultipartUpload honour If-None-Match / If-Match, and concurrent creators of one key
 * never both win.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client
} from '@aws-sdk/client-s3'
import { startEmulator } from '../../scripts/lib/emulator.mjs'
import { startTestEmulator, type TestEmulator } from '../helpers/emulator-world.js'
import { REPO_ROOT } from '../helpers/run-action.js'

/** True when something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Gone, or a zombie waiting for an init that does not reap (as in some containers). */
function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return true
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z'
  } catch {
    return false
  }
}

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) return false
    await sleep(100)
  }
  return true
}

describe('startEmulator', () => {
  it('fails with install instructions when moto_server is missing (never skips)', async () => {
    await expect(startEmulator({ command: 'moto_server_that_does_not_exist' })).rejects.toThrow(
      /not found on PATH.*python3 -m pip install 'moto\[server\]'/s
    )
  })

  it('starts on a free loopback port and stop() kills it', async () => {
    const emulator = await startEmulator()
    expect(emulator.endpoint).toBe(`http://127.0.0.1:${emulator.port}`)
    expect((await fetch(`${emulator.endpoint}/`)).status).toBeLessThan(500)
    await emulator.stop()
    await emulator.stop() // idempotent
    expect(await listening(emulator.port)).toBe(false)
    expect(await eventually(() => processGone(emulator.pid))).toBe(true)
  })

  it('does not outlive a process that is killed without calling stop()', async () => {
    const module = pathToFileURL(join(REPO_ROOT, 'scripts/lib/emulator.mjs')).href
    const child = spawn(
      process.execPath,
      [
        '--no-warnings',
        '--input-type=module',
        '-e',
        `import { startEmulator } from '${module}'
         const e = await startEmulator()
         console.log(JSON.stringify({ pid: e.pid, port: e.port }))
         setInterval(() => {}, 1000)`
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] }
    )
    const line = await new Promise<string>((resolve, reject) => {
      let text = ''
      child.stdout.on('data', (b: Buffer) => {
        text += b.toString()
        if (text.includes('\n')) resolve(text.split('\n')[0])
      })
      child.once('exit', (code) => reject(new Error(`child exited early (${code})`)))
    })
    const { pid, port } = JSON.parse(line) as { pid: number; port: number }
    expect(await listening(port)).toBe(true)
    child.kill('SIGKILL')
    expect(await eventually(async () => !(await listening(port)))).toBe(true)
    expect(await eventually(() => processGone(pid))).toBe(true)
  })
})

describe('MOTO_PATCH: S3 conditional writes', () => {
  const BUCKET = 'conditional-writes'
  const PRECONDITION_FAILED = { name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } }
  const NO_SUCH_KEY = { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }

  let moto: TestEmulator | undefined
  let s3: S3Client

  beforeAll(async () => {
    moto = await startTestEmulator({ workspacePrefix: 'model-cdn-emulator-it-' })
    s3 = moto.s3
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }))
    // Versioned, as the bucket the action deploys to.
    await s3.send(
      new PutBucketVersioningCommand({
        Bucket: BUCKET,
        VersioningConfiguration: { Status: 'Enabled' }
      })
    )
  })

  afterAll(async () => {
    await moto?.stop()
  })

  /** Stores `body` at `key`; its ETag. */
  async function put(key: string, body: string | Buffer): Promise<string> {
    const { ETag } = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }))
    if (!ETag) throw new Error(`PutObject ${key} returned no ETag`)
    return ETag
  }

  /** The current object's body. */
  async function read(key: string): Promise<string> {
    const { Body } = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
    return Buffer.from(await Body!.transformToByteArray()).toString()
  }

  /** `key` replaced once: the ETag it no longer has (stale) and the one it has (current). */
  async function replacedOnce(key: string): Promise<{ stale: string; current: string }> {
    const stale = await put(key, `${key}: first`)
    const current = await put(key, `${key}: second`)
    return { stale, current }
  }

  /** A one-part multipart upload of `key`, and how to complete it under an If-Match. */
  async function onePartUpload(key: string) {
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key })
    )
    const { ETag } = await s3.send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId,
        PartNumber: 1,
        Body: 'multipart'
      })
    )
    const complete = (IfMatch?: string) =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] },
          IfMatch
        })
      )
    return { ETag, complete }
  }

  const copy = (
    key: string,
    source: string,
    condition: { IfNoneMatch?: string; IfMatch?: string }
  ) =>
    s3.send(
      new CopyObjectCommand({
        Bucket: BUCKET,
        Key: key,
        CopySource: `${BUCKET}/${source}`,
        ...condition
      })
    )

  it('CopyObject with If-None-Match: * onto an existing key answers 412 and leaves it as it was', async () => {
    await put('copy-inm/source', 'source')
    const before = await put('copy-inm/taken', 'taken')
    await expect(
      copy('copy-inm/taken', 'copy-inm/source', { IfNoneMatch: '*' })
    ).rejects.toMatchObject(PRECONDITION_FAILED)
    expect(await read('copy-inm/taken')).toBe('taken')
    const { ETag } = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'copy-inm/taken' }))
    expect(ETag).toBe(before)
  })

  it('CopyObject with If-None-Match: * onto a new key copies', async () => {
    await put('copy-inm-new/source', 'source')
    const copied = await copy('copy-inm-new/fresh', 'copy-inm-new/source', { IfNoneMatch: '*' })
    expect(copied.CopyObjectResult?.ETag).toBeDefined()
    expect(await read('copy-inm-new/fresh')).toBe('source')
  })

  it('CopyObject with If-Match replaces only the object with that ETag (404 when there is none)', async () => {
    await put('copy-im/source', 'source')
    const { stale, current } = await replacedOnce('copy-im/target')

    await expect(
      copy('copy-im/target', 'copy-im/source', { IfMatch: stale })
    ).rejects.toMatchObject(PRECONDITION_FAILED)
    expect(await read('copy-im/target')).toBe('copy-im/target: second')

    await expect(
      copy('copy-im/absent', 'copy-im/source', { IfMatch: current })
    ).rejects.toMatchObject(NO_SUCH_KEY)

    // Quotes do not matter, as for PutObject.
    await copy('copy-im/target', 'copy-im/source', { IfMatch: current.replaceAll('"', '') })
    expect(await read('copy-im/target')).toBe('source')
  })

  it('CompleteMultipartUpload with If-Match completes only over that ETag; a 412 leaves the upload open', async () => {
    const key = 'complete-im/model.bin'
    const { stale, current } = await replacedOnce(key)
    const { complete } = await onePartUpload(key)

    await expect(complete(stale)).rejects.toMatchObject(PRECONDITION_FAILED)
    expect(await read(key)).toBe(`${key}: second`)

    // The same upload completes once the condition holds: the 412 did not abort it.
    const completed = await complete(current)
    expect(completed.ETag).toMatch(/-1"$/)
    expect(await read(key)).toBe('multipart')
  })

  it('CompleteMultipartUpload with If-Match on a key that does not exist answers 404', async () => {
    const key = 'complete-im/absent.bin'
    const { ETag, complete } = await onePartUpload(key)
    await expect(complete(ETag)).rejects.toMatchObject(NO_SUCH_KEY)
  })

  it('of concurrent If-None-Match: * PutObjects of one key, exactly one wins, and its body is stored', async () => {
    // moto keeps a body under 5 MiB - 1 KiB in memory and writes a larger one to a temporary
    // file, between its If-None-Match check and storing the key: there other requests' threads
    // run, and without MOTO_PATCH's lock several writers (up to all 8) won in 9 to 16 of 20
    // rounds (a few runs here); with in-memory bodies, in none of 40.
    const size = 5 * 1024 * 1024
    const writers = 8
    for (let round = 0; round < 20; round++) {
      const key = `race/round-${round}.bin`
      const bodies = Array.from({ length: writers }, (_, i) => Buffer.alloc(size, `${round}.${i};`))
      const results = await Promise.allSettled(
        bodies.map((Body) =>
          s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body, IfNoneMatch: '*' }))
        )
      )
      const winners = results.flatMap((result, i) => (result.status === 'fulfilled' ? [i] : []))
      expect({ round, winners: winners.length }).toEqual({ round, winners: 1 })
      for (const result of results) {
        if (result.status === 'rejected') expect(result.reason).toMatchObject(PRECONDITION_FAILED)
      }
      const { Body } = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
      const stored = Buffer.from(await Body!.transformToByteArray())
      expect(stored.equals(bodies[winners[0]])).toBe(true)
    }
  })
})
