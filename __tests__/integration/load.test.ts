/**
 * Load: 5,000 small files in one deploy through the committed dist/index.js against moto_server.
 * The deploy must store every object with its SHA-256, a re-run must skip all of them, and the
 * action's process must stay within resource bounds while it runs (peak RSS, open file
 * descriptors, open sockets) — bounds with headroom, not timings. The invalidation planner is
 * checked for the same scale: 5,000 overwritten keys stay within CloudFront's quotas.
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import type { S3Client } from '@aws-sdk/client-s3'
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import type { World } from '../../scripts/lib/emulator.mjs'
import {
  MAX_PATHS_PER_BATCH,
  MAX_WILDCARDS_IN_PROGRESS,
  planInvalidation,
  toBatches,
  toInvalidationPath
} from '../../src/cdn/invalidation.js'
import {
  getStored,
  listInvalidations,
  listKeys,
  sha256,
  versionSnapshot
} from '../helpers/emulator-state.js'
import { startTestWorld, writeFiles, type TestWorld } from '../helpers/emulator-world.js'
import { expectSuccess, runAction, type RunActionResult } from '../helpers/run-action.js'

const BUCKET = 'model-cdn-load'
const PREFIX = 'load-v1'
const FILE_COUNT = 5000
/** Every 50th object is read back in full; the manifest vouches for the SHA-256 of all. */
const SAMPLE_EVERY = 50
/**
 * Resource bounds with headroom, which an implementation that scales with the file count breaks
 * (one descriptor or socket per file, all files in memory). Sockets: the clients' agents allow
 * 50 each (clients.ts), and the stdio pipes to the runner are sockets too.
 */
const MAX_PEAK_RSS_MB = 400
const MAX_OPEN_FDS = 300
const MAX_OPEN_SOCKETS = 120

let moto: TestWorld | undefined
let world: World
let s3: S3Client
let cloudfront: CloudFrontClient
let workspace: string
/** Relative path → SHA-256 of the bytes written. */
const local = new Map<string, string>()

/** 20 layers × 25 blocks × 10 shards, 1–4 KiB each. */
const relPathOf = (i: number) =>
  `layer-${String(i % 20).padStart(2, '0')}/block-${String(Math.floor(i / 20) % 25).padStart(2, '0')}/shard-${String(i).padStart(4, '0')}.bin`

interface Usage {
  peakRssMb: number
  maxFds: number
  maxSockets: number
  samples: number
}

/**
 * Samples a process's peak RSS (VmHWM, which only grows), open descriptors and sockets from
 * /proc until it exits. The last sample before exit holds the peak up to then.
 */
function watch(child: ChildProcess): Promise<Usage> {
  const usage: Usage = { peakRssMb: 0, maxFds: 0, maxSockets: 0, samples: 0 }
  const proc = `/proc/${child.pid}`
  const sample = () => {
    try {
      const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`${proc}/status`, 'utf8'))
      const fds = readdirSync(`${proc}/fd`)
      let sockets = 0
      for (const fd of fds) {
        try {
          if (readlinkSync(`${proc}/fd/${fd}`).startsWith('socket:')) sockets++
        } catch {
          // closed between readdir and readlink
        }
      }
      if (hwm) usage.peakRssMb = Math.max(usage.peakRssMb, Number(hwm[1]) / 1024)
      usage.maxFds = Math.max(usage.maxFds, fds.length)
      usage.maxSockets = Math.max(usage.maxSockets, sockets)
      usage.samples++
    } catch {
      // the process has exited
    }
  }
  const timer = setInterval(sample, 20)
  return new Promise((resolve) => {
    child.once('exit', () => {
      clearInterval(timer)
      resolve(usage)
    })
  })
}

async function deploy(): Promise<{ r: RunActionResult; usage: Usage }> {
  let usage: Promise<Usage> | undefined
  const r = await runAction({
    cwd: workspace,
    endpoint: moto!.emulator.endpoint,
    timeoutMs: 170_000,
    onSpawn: (child) => (usage = watch(child)),
    inputs: {
      artifacts: 'models/**',
      bucket: BUCKET,
      'version-prefix': PREFIX,
      'distribution-id': world.distributionId,
      // The emulator's CloudFront domain does not resolve.
      verify: false
    }
  })
  expectSuccess(r)
  return { r, usage: await usage! }
}

function expectBounded(usage: Usage, run: string) {
  // Printed for the record; asserted below.
  console.log(
    `${run}: peak RSS ${usage.peakRssMb.toFixed(0)} MB, max ${usage.maxFds} fds, ` +
      `max ${usage.maxSockets} sockets (${usage.samples} samples)`
  )
  expect(usage.samples).toBeGreaterThan(10)
  expect(usage.peakRssMb).toBeLessThan(MAX_PEAK_RSS_MB)
  expect(usage.maxFds).toBeLessThan(MAX_OPEN_FDS)
  expect(usage.maxSockets).toBeLessThan(MAX_OPEN_SOCKETS)
}

const keysUnderPrefix = () => listKeys(s3, BUCKET, `${PREFIX}/`)

beforeAll(async () => {
  moto = await startTestWorld({
    bucket: BUCKET,
    requireDist: true,
    workspacePrefix: 'model-cdn-load-'
  })
  ;({ world, s3, cloudfront, workspace } = moto)
  const files: Record<string, Buffer> = {}
  for (let i = 0; i < FILE_COUNT; i++) {
    const bytes = randomBytes(1024 + ((i * 613) % 3073))
    files[relPathOf(i)] = bytes
    local.set(relPathOf(i), sha256(bytes))
  }
  await writeFiles(join(workspace, 'models'), files)
}, 60_000)

afterAll(() => moto?.stop())

describe(`${FILE_COUNT} small files in one deploy`, () => {
  it('stores every file with its SHA-256, within bounded memory, descriptors and sockets', async () => {
    const started = Date.now()
    const { r, usage } = await deploy()
    console.log(
      `first deploy of ${FILE_COUNT} files: ${((Date.now() - started) / 1000).toFixed(1)} s`
    )
    expect(r.outputs['uploaded']).toBe(String(FILE_COUNT))
    expect(r.outputs['skipped']).toBe('0')

    const keys = await keysUnderPrefix()
    expect(keys).toHaveLength(FILE_COUNT + 1)
    expect(new Set(keys)).toEqual(
      new Set([...[...local.keys()].map((rel) => `${PREFIX}/${rel}`), `${PREFIX}/manifest.json`])
    )

    // The stored manifest lists every file with the SHA-256 of the local bytes …
    const manifest = JSON.parse(
      (await getStored(s3, BUCKET, `${PREFIX}/manifest.json`)).bytes.toString('utf8')
    )
    expect(manifest.files).toHaveLength(FILE_COUNT)
    for (const f of manifest.files as { path: string; sha256: string }[]) {
      expect(f.sha256).toBe(local.get(f.path))
    }
    // … and a sample of objects holds exactly those bytes, with the SHA-256 in its metadata.
    for (let i = 0; i < FILE_COUNT; i += SAMPLE_EVERY) {
      const rel = relPathOf(i)
      const stored = await getStored(s3, BUCKET, `${PREFIX}/${rel}`)
      expect(stored.bytes.equals(readFileSync(join(workspace, 'models', rel)))).toBe(true)
      expect(stored.metadata['sha256']).toBe(local.get(rel))
    }

    // GitHub caps a step summary at 1 MiB: 5,000 rows must not break it.
    expect(Buffer.byteLength(r.summary)).toBeLessThan(1024 * 1024)
    expectBounded(usage, 'first deploy')
  }, 180_000)

  it('a second run skips all of them and writes nothing', async () => {
    const before = await versionSnapshot(s3, BUCKET)
    const started = Date.now()
    const { r, usage } = await deploy()
    console.log(`re-run over ${FILE_COUNT} files: ${((Date.now() - started) / 1000).toFixed(1)} s`)
    expect(r.outputs['uploaded']).toBe('0')
    expect(r.outputs['skipped']).toBe(String(FILE_COUNT))
    expect(r.outputs['bytes-uploaded']).toBe('0')
    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
    expect(await listInvalidations(cloudfront, world.distributionId)).toEqual([])
    expectBounded(usage, 're-run')
  }, 180_000)
})

describe(`invalidating ${FILE_COUNT} overwritten keys (invalidate: all)`, () => {
  it(`stays within ${MAX_PATHS_PER_BATCH} paths per request and ${MAX_WILDCARDS_IN_PROGRESS} wildcards`, () => {
    // 40 directories of 125 overwritten keys; 20 of them also hold a key this run left alone, so
    // only the other 20 can become wildcards, and only 15 may.
    const keys = Array.from(
      { length: FILE_COUNT },
      (_, i) => `${PREFIX}/dir-${String(i % 40).padStart(2, '0')}/shard-${i}.bin`
    )
    const untouched = Array.from(
      { length: 20 },
      (_, d) => `${PREFIX}/dir-${String(d * 2).padStart(2, '0')}/README.md`
    )
    const paths = planInvalidation({
      keys,
      keysUnderPrefix: [...keys, ...untouched, `${PREFIX}/manifest.json`],
      extraPaths: []
    })
    const batches = toBatches(paths)

    const wildcards = paths.filter((p) => p.endsWith('/*'))
    expect(wildcards).toHaveLength(MAX_WILDCARDS_IN_PROGRESS)
    expect(batches.length).toBeGreaterThan(1)
    for (const batch of batches) expect(batch.length).toBeLessThanOrEqual(MAX_PATHS_PER_BATCH)
    expect(batches.flat()).toEqual(paths)

    // Every overwritten key is covered, and no untouched key is.
    const exact = new Set(paths)
    const prefixes = wildcards.map((p) => p.slice(0, -1))
    const covered = (key: string) => {
      const path = toInvalidationPath(key)
      return exact.has(path) || prefixes.some((prefix) => path.startsWith(prefix))
    }
    expect(keys.filter((key) => !covered(key))).toEqual([])
    expect([...untouched, `${PREFIX}/manifest.json`].filter(covered)).toEqual([])
    // 15 wildcards stand for 15 × 125 keys; the other 25 directories are listed key by key.
    expect(paths).toHaveLength(
      MAX_WILDCARDS_IN_PROGRESS + (FILE_COUNT - MAX_WILDCARDS_IN_PROGRESS * 125)
    )
  })
})
