/**
 * Transient faults between the action and AWS (issue 3, "Transient faults"): a fault-injecting
 * proxy in front of moto_server answers chosen requests with 503s, resets, stalls, CloudFront
 * quota errors and `InProgress` polls. Every scenario checks what is STORED afterwards (bytes =
 * local SHA-256, no multipart upload left, invalidations) and the result or error, and that the
 * faults were really injected; the log is checked only for saying what was retried.
 *
 * Most scenarios run deploy() in-process over the real network, with an instant `sleep` for our
 * own backoff (the SDK's own backoff is real but short); one runs the committed dist/index.js.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import type { S3Client } from '@aws-sdk/client-s3'
import { createClients, MAX_ATTEMPTS, type ClientOptions } from '../../src/aws/clients.js'
import { deploy, type DeployReport } from '../../src/commands/deploy/deploy.js'
import { parseInputs } from '../../src/inputs/parse.js'
import { LOCK_FILE_NAME, type LockRecord } from '../../src/aws/publish-lock.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import type { World } from '../../scripts/lib/emulator.mjs'
import {
  getStored,
  listInvalidations,
  listKeys,
  openUploads,
  sha256
} from '../helpers/emulator-state.js'
import {
  requireDist,
  startTestWorld,
  writeFiles,
  type TestWorld
} from '../helpers/emulator-world.js'
import {
  NOT_A_LOCK,
  S3_WRITES,
  startFaultProxy,
  type FaultProxy,
  type FaultRule
} from '../helpers/fault-proxy.js'
import { expectSuccess, runAction } from '../helpers/run-action.js'

const MiB = 1024 * 1024
const BUCKET = 'model-cdn-faults'

/** 11 MiB in 5 MiB parts: a three-part multipart upload; the others go in one PutObject. */
const BIG = 'big/model.gguf'
const files: Record<string, Buffer> = {
  [BIG]: randomBytes(11 * MiB),
  'tokenizer.json': Buffer.from(JSON.stringify({ vocab: { a: 1, b: 2 } })),
  'config.bin': randomBytes(64 * 1024)
}

/** The SDK reads credentials and the CloudFront endpoint from the environment. */
const ENV: Record<string, string> = {
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_EC2_METADATA_DISABLED: 'true'
}

let moto: TestWorld | undefined
let proxy: FaultProxy | undefined
let world: World
let s3: S3Client
let cloudfront: CloudFrontClient
let workspace: string
const savedEnv: Record<string, string | undefined> = {}

beforeAll(async () => {
  moto = await startTestWorld({ bucket: BUCKET, workspacePrefix: 'model-cdn-faults-' })
  // Checks read moto directly, never through the proxy.
  ;({ world, s3, cloudfront, workspace } = moto)
  proxy = await startFaultProxy(moto.emulator.endpoint)
  for (const [name, value] of Object.entries({
    ...ENV,
    AWS_ENDPOINT_URL_CLOUDFRONT: proxy.endpoint
  })) {
    savedEnv[name] = process.env[name]
    process.env[name] = value
  }
  await writeFiles(join(workspace, 'models'), files)
}, 60_000)

afterAll(async () => {
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
  await proxy?.stop()
  await moto?.stop()
})

/** The action's inputs (parsed as the action parses them), pointed at the proxy. */
function inputsFor(prefix: string, values: Record<string, string> = {}) {
  const all: Record<string, string> = {
    artifacts: 'models/**',
    bucket: BUCKET,
    'version-prefix': prefix,
    'distribution-id': world.distributionId,
    'multipart-threshold-mb': '5',
    'part-size-mb': '5',
    'endpoint-url': proxy!.endpoint,
    // Every scenario publishes the same files: they must be uploaded, not copied from the last.
    'reuse-from': 'none',
    // The emulator's CloudFront domain does not resolve.
    verify: 'false',
    ...values
  }
  return parseInputs((name) => all[name] ?? '', { GITHUB_WORKSPACE: workspace })
}

interface Run {
  logger: ReturnType<typeof silentLogger>
  result: Promise<DeployReport>
}

/** deploy() in-process through the proxy with `rules`; our own backoff does not wait. */
function runDeploy(
  prefix: string,
  rules: FaultRule[],
  values: Record<string, string> = {},
  clientOptions: Omit<ClientOptions, 'logger'> = {}
): Run {
  proxy!.setRules(rules)
  const logger = silentLogger()
  const inputs = inputsFor(prefix, values)
  const clients = createClients(inputs, process.env, { ...clientOptions, logger })
  const result = deploy(inputs, clients, {
    logger,
    sleep: async () => undefined,
    env: { GITHUB_RUN_ID: `faults-${prefix}`, GITHUB_RUN_ATTEMPT: '1' }
  }).finally(() => {
    clients.s3.destroy()
    clients.cloudfront.destroy()
  })
  return { logger, result }
}

/** Every deployed file is stored under `prefix` with exactly the local bytes. */
async function expectAllStored(prefix: string) {
  for (const rel of Object.keys(files)) {
    const stored = await getStored(s3, BUCKET, `${prefix}/${rel}`)
    expect(stored.sha256).toBe(sha256(files[rel]))
    expect(stored.metadata['sha256']).toBe(sha256(files[rel]))
  }
}

const multipartUploadsLeft = () => openUploads(s3, BUCKET)
const keysUnder = (prefix: string) => listKeys(s3, BUCKET, `${prefix}/`)

/** The log lines the retry middleware wrote, one per retried attempt. */
const retryLines = (lines: string[]) =>
  lines.filter((l) => / failed with .*; retrying \(attempt \d+\)/.test(l))

const injected = (kind?: string) =>
  proxy!.injected.filter((i) => kind === undefined || i.fault === kind)

describe('transient faults between the action and S3/CloudFront (moto_server behind a fault proxy)', () => {
  it('every 3rd S3 write answered 503 SlowDown: succeeds, bytes match, each retry is logged', async () => {
    const { logger, result } = runDeploy('v-slowdown', [
      { operations: S3_WRITES, every: 3, fault: { kind: 's3Error' } }
    ])
    const report = await result

    expect(report.files.filter((f) => f.action === 'upload')).toHaveLength(3)
    await expectAllStored('v-slowdown')
    const manifest = JSON.parse(
      (await getStored(s3, BUCKET, 'v-slowdown/manifest.json')).bytes.toString('utf8')
    ) as { files: { path: string; sha256: string }[] }
    expect(manifest.files.map((f) => [f.path, f.sha256]).sort()).toEqual(
      Object.entries(files)
        .map(([rel, bytes]) => [rel, sha256(bytes)])
        .sort()
    )
    expect(await multipartUploadsLeft()).toEqual([])

    // The faults happened, and each was retried and said so.
    const faults = injected('s3Error')
    expect(faults.length).toBeGreaterThanOrEqual(3)
    expect(faults.length).toBe(
      Math.floor(proxy!.requests.filter((r) => S3_WRITES.includes(r.operation)).length / 3)
    )
    const lines = retryLines(logger.lines)
    expect(lines).toHaveLength(faults.length)
    for (const line of lines) {
      expect(line).toMatch(
        /^S3 \w+ s3:\/\/model-cdn-faults\/v-slowdown\/.* failed with SlowDown \(HTTP 503\)/
      )
    }
  })

  it('connection resets during UploadPart: the parts are sent again and the object is whole', async () => {
    const { logger, result } = runDeploy('v-reset', [
      { operations: ['UploadPart'], every: 2, fault: { kind: 'reset', afterBytes: 256 * 1024 } }
    ])
    await result

    await expectAllStored('v-reset')
    expect((await getStored(s3, BUCKET, `v-reset/${BIG}`)).etag).toMatch(/-3"?$/)
    expect(await multipartUploadsLeft()).toEqual([])
    // Three parts: requests 1, 3, 5 succeed; 2 and 4 are reset mid-body.
    expect(injected('reset')).toHaveLength(2)
    const lines = retryLines(logger.lines)
    expect(lines).toHaveLength(2)
    for (const line of lines) {
      expect(line).toMatch(
        /^S3 UploadPart s3:\/\/model-cdn-faults\/v-reset\/big\/model\.gguf part \d: attempt \d of \d failed with (ECONNRESET|EPIPE)/
      )
    }
  })

  it('stalled sockets (an unread part body, a withheld answer) time out and are retried', async () => {
    const stallMs = 60_000
    const { logger, result } = runDeploy(
      'v-stall',
      [
        { operations: ['UploadPart'], first: 1, fault: { kind: 'stall', ms: stallMs } },
        {
          operations: ['PutObject'],
          first: 1,
          // A file's, not the version's lock.
          target: NOT_A_LOCK,
          fault: { kind: 'stall', ms: stallMs, phase: 'response' }
        }
      ],
      {},
      { socketTimeoutMs: 1500 }
    )
    await result

    await expectAllStored('v-stall')
    expect(await multipartUploadsLeft()).toEqual([])
    // Neither stalled request was let through: what is stored came from the retries. The proxy
    // sees the client leave a withheld answer; a connection it is not reading from it cannot.
    const stalls = Object.fromEntries(injected('stall').map((s) => [s.operation, s]))
    expect(Object.keys(stalls).sort()).toEqual(['PutObject', 'UploadPart'])
    expect(stalls.PutObject.outcome).toBe('client-gave-up')
    expect(stalls.UploadPart.outcome).not.toBe('resumed')
    const sent = (target: string) => proxy!.requests.filter((r) => r.target === target).length
    expect(sent(stalls.UploadPart.target)).toBe(2)
    const lines = retryLines(logger.lines)
    expect(lines).toHaveLength(2)
    expect(lines.map((l) => l.split(' ')[1]).sort()).toEqual(['PutObject', 'UploadPart'])
    for (const line of lines) {
      expect(line).toMatch(/failed with TimeoutError: .*timed out after 1500 ms of inactivity/)
    }
  })

  it('TooManyInvalidationsInProgress on the first 2 attempts: one invalidation, completed', async () => {
    const before = new Set(
      (await listInvalidations(cloudfront, world.distributionId)).map((i) => i.id)
    )
    const { logger, result } = runDeploy(
      'v-quota',
      [{ operations: ['CreateInvalidation'], first: 2, fault: { kind: 'tooManyInvalidations' } }],
      { invalidate: 'all' }
    )
    const report = await result

    await expectAllStored('v-quota')
    expect(injected('tooManyInvalidations')).toHaveLength(2)
    expect(proxy!.requests.filter((r) => r.operation === 'CreateInvalidation')).toHaveLength(3)
    const created = (await listInvalidations(cloudfront, world.distributionId)).filter(
      (i) => !before.has(i.id)
    )
    expect(created).toHaveLength(1)
    expect(report.invalidation.ids).toEqual([created[0].id])
    expect(created[0].paths.sort()).toEqual(report.invalidation.paths)
    expect(report.invalidation.status).toBe('Completed')
    // invalidation.ts retries this client fault itself (the SDK does not) and says so.
    expect(logger.lines.filter((l) => l.includes('TooManyInvalidationsInProgress'))).toHaveLength(2)
  })

  it('GetInvalidation says InProgress for 3 polls: the deploy waits and reports Completed', async () => {
    const { result } = runDeploy(
      'v-polls',
      [{ operations: ['GetInvalidation'], first: 3, fault: { kind: 'invalidationInProgress' } }],
      { invalidate: 'all' }
    )
    const report = await result

    await expectAllStored('v-polls')
    expect(report.invalidation.ids).toHaveLength(1)
    expect(report.invalidation.status).toBe('Completed')
    expect(report.warnings).toEqual([])
    expect(injected('invalidationInProgress')).toHaveLength(3)
    expect(proxy!.requests.filter((r) => r.operation === 'GetInvalidation')).toHaveLength(4)
  })

  it('UploadParts failing beyond the retry budget: rejects naming the file, keeps the upload, and a re-run resumes it', async () => {
    // 503 ServiceUnavailable rather than SlowDown: the same retries from a 50 ms backoff base
    // instead of 1 s, so exhausting them takes about a second, not half a minute. The first
    // part goes through; every other attempt fails.
    const single = { artifacts: `models/${BIG}`, root: 'models' }
    const { result } = runDeploy(
      'v-permanent',
      [
        {
          operations: ['UploadPart'],
          after: 1,
          fault: { kind: 's3Error', code: 'ServiceUnavailable' }
        }
      ],
      single
    )
    const error = await result.then(
      () => {
        throw new Error('the deploy succeeded although the UploadParts failed')
      },
      (err: Error & { cause?: { $metadata?: { attempts?: number } } }) => err
    )

    expect(error.message).toContain(BIG)
    expect(error.message).toContain(`s3://${BUCKET}/v-permanent/${BIG}`)
    expect(error.message).toContain('ServiceUnavailable')
    // The SDK gave up after its whole budget, not on the first 503.
    expect(error.cause?.$metadata?.attempts).toBe(MAX_ATTEMPTS)
    const attemptsPerPart = new Map<string, number>()
    for (const r of proxy!.requests.filter((r) => r.operation === 'UploadPart')) {
      attemptsPerPart.set(r.target, (attemptsPerPart.get(r.target) ?? 0) + 1)
    }
    expect(Math.max(...attemptsPerPart.values())).toBe(MAX_ATTEMPTS)

    // No object and no manifest; the upload is left open and journaled in the released lock.
    expect(proxy!.requests.some((r) => r.operation === 'AbortMultipartUpload')).toBe(false)
    const [left, ...more] = await multipartUploadsLeft()
    expect(more).toEqual([])
    expect(left).toMatch(new RegExp(`^v-permanent/${BIG} `))
    expect(await keysUnder('v-permanent')).toEqual([`v-permanent/${LOCK_FILE_NAME}`])
    const lock = JSON.parse(
      (await getStored(s3, BUCKET, `v-permanent/${LOCK_FILE_NAME}`)).bytes.toString('utf8')
    ) as LockRecord
    expect(lock).toMatchObject({ state: 'released', outcome: 'failed' })
    expect(lock.uploads.map((u) => `${u.key} ${u.uploadId}`)).toEqual([left])

    // The re-run sends only the two parts S3 does not hold, completes the same upload, and
    // leaves nothing open.
    const rerun = runDeploy('v-permanent', [], single)
    await rerun.result
    // runDeploy cleared the proxy's records: these are the re-run's requests.
    const sent = proxy!.requests
    expect(sent.filter((r) => r.operation === 'CreateMultipartUpload')).toEqual([])
    expect(sent.filter((r) => r.operation === 'UploadPart').map((r) => r.target)).toHaveLength(2)
    expect(rerun.logger.lines).toContainEqual(
      expect.stringMatching(
        /^Resuming the upload of big\/model\.gguf an earlier run left open \(upload id .*\): 1 of 3 part\(s\), 5\.0 MiB, already stored\.$/
      )
    )
    expect((await getStored(s3, BUCKET, `v-permanent/${BIG}`)).sha256).toBe(sha256(files[BIG]))
    expect(await multipartUploadsLeft()).toEqual([])
    expect(await keysUnder('v-permanent')).toEqual([
      `v-permanent/${BIG}`,
      'v-permanent/manifest.json'
    ])
  })

  it('a bucket the credentials cannot read: AccessDenied is explained and nothing is written', async () => {
    const { result } = runDeploy('v-denied', [
      {
        operations: ['ListObjectsV2'],
        fault: { kind: 's3Error', status: 403, code: 'AccessDenied' }
      }
    ])
    const error = await result.then(
      () => {
        throw new Error('the deploy succeeded although the bucket refused the listing')
      },
      (err: Error & { hint?: string }) => err
    )
    expect(error.message).toContain(`listing s3://${BUCKET}/v-denied/`)
    expect(error.message).toContain('AccessDenied (HTTP 403)')
    expect(error.hint).toContain('s3:ListBucket')
    // Not retried (a 403 is permanent) and nothing was sent after it.
    expect(proxy!.requests.filter((r) => r.operation === 'ListObjectsV2')).toHaveLength(1)
    expect(proxy!.requests.filter((r) => S3_WRITES.includes(r.operation))).toEqual([])
    expect(await keysUnder('v-denied')).toEqual([])
  })

  it('the committed dist/index.js rides out 503 SlowDown and resets, and logs each retry', async () => {
    requireDist()
    proxy!.setRules([
      { operations: ['UploadPart'], first: 1, fault: { kind: 'reset' } },
      { operations: S3_WRITES, every: 3, fault: { kind: 's3Error' } }
    ])
    const r = await runAction({
      cwd: workspace,
      endpoint: proxy!.endpoint,
      inputs: {
        artifacts: 'models/**',
        bucket: BUCKET,
        'version-prefix': 'v-dist',
        'distribution-id': world.distributionId,
        'multipart-threshold-mb': 5,
        'part-size-mb': 5,
        'reuse-from': 'none',
        // The emulator's CloudFront domain does not resolve.
        verify: false
      }
    })
    expectSuccess(r)

    await expectAllStored('v-dist')
    expect(await multipartUploadsLeft()).toEqual([])
    expect(r.outputs['uploaded']).toBe(String(Object.keys(files).length))
    expect(injected('reset')).toHaveLength(1)
    expect(injected('s3Error').length).toBeGreaterThanOrEqual(2)
    const lines = retryLines(r.stdout.split('\n'))
    expect(lines).toHaveLength(proxy!.injected.length)
    expect(lines.filter((l) => /failed with SlowDown \(HTTP 503\)/.test(l))).toHaveLength(
      injected('s3Error').length
    )
  })
})
