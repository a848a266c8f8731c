/**
 * Concurrent runs and dead runners (issue "Concurrent runs and dead runners"), end to end: two
 * real processes of the committed dist/index.js at once against one moto_server (patched to
 * answer conditional writes atomically, as S3 does), through a proxy that counts what each sends.
 * Each race is repeated, with the second run started after a different delay each round, so
 * that no lucky interleaving can pass it; what is STORED is checked every round.
 *
 * - Different bytes for one new version: exactly one run succeeds, the other fails naming the
 *   version, and every object under it holds what the winner's manifest lists.
 * - The same bytes: both succeed, one manifest, every key written once.
 * - Two promotes of one alias: the alias ends a whole copy of one version.
 * - A run killed half way through a 300 MiB upload: the next attempt resumes it.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ListPartsCommand, type S3Client } from '@aws-sdk/client-s3'
import { LOCK_FILE_NAME } from '../../src/aws/publish-lock.js'
import { getStored, listKeys, openUploads, sha256 } from '../helpers/emulator-state.js'
import { startTestWorld, writeFiles, type TestWorld } from '../helpers/emulator-world.js'
import { startFaultProxy, type FaultProxy, type SeenRequest } from '../helpers/fault-proxy.js'
import {
  diagnostics,
  expectSuccess,
  runAction,
  type RunActionResult
} from '../helpers/run-action.js'

const MiB = 1024 * 1024
const BUCKET = 'model-cdn-races'
/** Rounds per race, each with another head start for the second run. */
const ROUNDS = 5
const HEAD_STARTS_MS = [0, 40, 120, 250, 400]
/** The same paths with other bytes: two trainings of one model. */
const NAMES = ['model.safetensors', 'tokenizer.json', 'config.json', 'shards/a.bin', 'shards/b.bin']
const side = () =>
  Object.fromEntries(
    NAMES.map((name) => [name, randomBytes(name === 'model.safetensors' ? 11 * MiB : 64 * 1024)])
  )
const FILES = { one: side(), two: side() }

let moto: TestWorld | undefined
let proxy: FaultProxy | undefined
let s3: S3Client
let workspace: string

beforeAll(async () => {
  moto = await startTestWorld({
    bucket: BUCKET,
    requireDist: true,
    workspacePrefix: 'model-cdn-races-'
  })
  ;({ s3, workspace } = moto)
  proxy = await startFaultProxy(moto.emulator.endpoint)
  await writeFiles(join(workspace, 'one'), FILES.one)
  await writeFiles(join(workspace, 'two'), FILES.two)
}, 60_000)

afterAll(async () => {
  await proxy?.stop()
  await moto?.stop()
})

type Side = keyof typeof FILES

function publish(from: Side, prefix: string, more: Record<string, string> = {}) {
  return runAction({
    cwd: workspace,
    endpoint: proxy!.endpoint,
    inputs: {
      artifacts: `${from}/**`,
      root: from,
      bucket: BUCKET,
      'version-prefix': prefix,
      'multipart-threshold-mb': 5,
      'part-size-mb': 5,
      // Each round's files must be sent, not copied from the round before.
      'reuse-from': 'none',
      // Without a distribution the URLs are the emulator's, which refuses anonymous requests.
      verify: false,
      ...more
    }
  })
}

/** Two runs at once, the second `headStartMs` after the first. */
async function race(
  first: () => Promise<RunActionResult>,
  second: () => Promise<RunActionResult>,
  headStartMs: number
): Promise<[RunActionResult, RunActionResult]> {
  return Promise.all([first(), sleep(headStartMs).then(second)])
}

interface StoredManifest {
  versionPrefix: string
  files: { path: string; key: string; sha256: string }[]
}

async function storedManifest(prefix: string): Promise<StoredManifest> {
  const { bytes } = await getStored(s3, BUCKET, `${prefix}/manifest.json`)
  return JSON.parse(bytes.toString('utf8')) as StoredManifest
}

/** The prefix holds exactly its manifest's files, each with the bytes it lists; no lock, no upload. */
async function expectWhole(prefix: string): Promise<StoredManifest> {
  const manifest = await storedManifest(prefix)
  expect(await listKeys(s3, BUCKET, `${prefix}/`)).toEqual(
    [...manifest.files.map((f) => `${prefix}/${f.path}`), `${prefix}/manifest.json`].sort()
  )
  for (const file of manifest.files) {
    const stored = await getStored(s3, BUCKET, `${prefix}/${file.path}`)
    expect([file.path, stored.sha256]).toEqual([file.path, file.sha256])
  }
  expect(await openUploads(s3, BUCKET, `${prefix}/`)).toEqual([])
  return manifest
}

const shaOf = (from: Side) =>
  Object.fromEntries(Object.entries(FILES[from]).map(([path, bytes]) => [path, sha256(bytes)]))

describe('two runs at once', () => {
  it('different bytes for one new version: one succeeds, the other fails naming it, the version is the winner’s', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const prefix = `race-${round}`
      // Alternate who starts first, so each side wins in some rounds.
      const [a, b]: Side[] = round % 2 ? ['two', 'one'] : ['one', 'two']
      const runs = await race(
        () => publish(a, prefix),
        () => publish(b, prefix),
        HEAD_STARTS_MS[round]
      )
      const codes = runs.map((r) => r.exitCode)
      if (codes.sort().join() !== '0,1') {
        throw new Error(
          `Round ${round}: expected one success and one failure:\n${runs.map(diagnostics).join('\n\n')}`
        )
      }
      const winner = runs.find((r) => r.exitCode === 0)!
      const loser = runs.find((r) => r.exitCode === 1)!
      const winnerSide = winner === runs[0] ? a : b
      expect(loser.errors).toHaveLength(1)
      // It names the version and says another run published it, or holds different bytes.
      expect(loser.errors[0]).toContain(prefix)
      expect(loser.errors[0]).toMatch(/another run|already hold a different object/i)

      const manifest = await expectWhole(prefix)
      expect(Object.fromEntries(manifest.files.map((f) => [f.path, f.sha256]))).toEqual(
        shaOf(winnerSide)
      )
      expect(JSON.parse(winner.outputs['manifest'])).toEqual(manifest)
    }
  }, 240_000)

  it('the same bytes for one new version: both succeed, one manifest, every key written once', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const prefix = `same-${round}`
      const before = proxy!.requests.length
      const runs = await race(
        () => publish('one', prefix),
        () => publish('one', prefix),
        HEAD_STARTS_MS[round]
      )
      for (const r of runs) expectSuccess(r)
      // One run uploaded everything; the other found it in place.
      expect(runs.map((r) => r.outputs['uploaded']).sort()).toEqual(['0', String(NAMES.length)])
      expect(runs[0].outputs['urls']).toEqual(runs[1].outputs['urls'])

      const written = writesPerKey(proxy!.requests.slice(before), prefix)
      expect(written).toEqual(
        Object.fromEntries(
          [...NAMES, 'manifest.json'].sort().map((name) => [`${BUCKET}/${prefix}/${name}`, 1])
        )
      )
      const manifest = await expectWhole(prefix)
      expect(Object.fromEntries(manifest.files.map((f) => [f.path, f.sha256]))).toEqual(
        shaOf('one')
      )
    }
  }, 240_000)

  it('two promotes of one alias: it ends a whole copy of one version, its manifest last', async () => {
    expectSuccess(await publish('one', 'v1'))
    expectSuccess(await publish('two', 'v2'))
    const versions = { v1: await storedManifest('v1'), v2: await storedManifest('v2') }
    const promote = (version: 'v1' | 'v2') =>
      publish(version === 'v1' ? 'one' : 'two', version, { mode: 'promote', alias: 'latest' })

    for (let round = 0; round < ROUNDS; round++) {
      const [first, second] = round % 2 ? (['v2', 'v1'] as const) : (['v1', 'v2'] as const)
      const runs = await race(
        () => promote(first),
        () => promote(second),
        HEAD_STARTS_MS[round]
      )
      for (const r of runs) expectSuccess(r)

      const alias = await storedManifest('latest')
      const version = versions[alias.versionPrefix as 'v1' | 'v2']
      expect(version).toBeDefined()
      // A byte copy of the version's manifest, whose URLs name the version, not the alias.
      expect(alias).toEqual(version)
      expect(await listKeys(s3, BUCKET, 'latest/')).toEqual(
        [...version.files.map((f) => `latest/${f.path}`), 'latest/manifest.json'].sort()
      )
      for (const file of version.files) {
        const stored = await getStored(s3, BUCKET, `latest/${file.path}`)
        expect([file.path, stored.sha256]).toEqual([file.path, file.sha256])
      }
    }
  }, 240_000)
})

/** PutObjects, CopyObjects and CompleteMultipartUploads per key under the prefix: the writes that create an object. */
function writesPerKey(requests: readonly SeenRequest[], prefix: string): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const r of requests) {
    if (!['PutObject', 'CopyObject', 'CompleteMultipartUpload'].includes(r.operation)) continue
    const key = r.target.replace(/#.*$/, '')
    if (!key.startsWith(`${BUCKET}/${prefix}/`) || key.endsWith(`/${LOCK_FILE_NAME}`)) continue
    counts[key] = (counts[key] ?? 0) + 1
  }
  return Object.fromEntries(Object.entries(counts).sort(([x], [y]) => (x < y ? -1 : 1)))
}

describe('a runner that dies mid-upload', () => {
  const BIG = 'big/weights.gguf'
  const PARTS = 19 // 300 MiB in the default 16 MiB parts

  it('is resumed by the next attempt, which re-sends at most 60% of a 300 MiB file', async () => {
    await writeFiles(join(workspace, 'big'), { [BIG]: randomBytes(300 * MiB) })
    const inputs = {
      artifacts: `big/**`,
      root: 'big',
      bucket: BUCKET,
      'version-prefix': 'v-dead',
      verify: false,
      // Two parts at a time, so the parts stored grow in small steps and the kill lands near half.
      concurrency: 2
    }
    // Parts answered after 150 ms, as on a slow link.
    proxy!.setRules([
      { operations: ['UploadPart'], every: 1, fault: { kind: 'stall', ms: 150, phase: 'response' } }
    ])
    let stored = 0
    const killed = await runAction({
      cwd: workspace,
      endpoint: proxy!.endpoint,
      inputs,
      onSpawn: (child) => {
        void (async () => {
          while (child.exitCode === null && stored < PARTS / 2) {
            stored = await partsStored('v-dead/' + BIG)
            await sleep(25)
          }
          child.kill('SIGKILL')
        })()
      }
    })
    expect(killed.signal).toBe('SIGKILL')
    expect(stored).toBeGreaterThanOrEqual(PARTS / 2)
    expect(stored).toBeLessThan(PARTS)
    proxy!.setRules([])

    const before = proxy!.requests.length
    const rerun = await runAction({
      cwd: workspace,
      endpoint: proxy!.endpoint,
      inputs,
      env: { GITHUB_RUN_ID: killed.env.GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT: '2' }
    })
    expectSuccess(rerun)
    const sent = proxy!.requests.slice(before).filter((r) => r.operation === 'UploadPart')
    expect(sent.length).toBeLessThanOrEqual(Math.floor(PARTS * 0.6))
    expect(sent.length).toBe(PARTS - (await keptParts(rerun)))
    expect(rerun.outputs['bytes-uploaded']).not.toBe(String(300 * MiB))

    const object = await getStored(s3, BUCKET, `v-dead/${BIG}`)
    expect(object.sha256).toBe(sha256(await readFile(join(workspace, 'big', BIG))))
    expect(await openUploads(s3, BUCKET, 'v-dead/')).toEqual([])
    expect(await listKeys(s3, BUCKET, 'v-dead/')).toEqual([`v-dead/${BIG}`, 'v-dead/manifest.json'])
  }, 180_000)

  /** The parts moto holds for the key's open upload (0 before it starts). */
  async function partsStored(key: string): Promise<number> {
    const [upload] = await openUploads(s3, BUCKET, key)
    if (!upload) return 0
    const { Parts } = await s3.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: upload.split(' ')[1] })
    )
    return Parts?.length ?? 0
  }

  /** The parts the re-run said it kept. */
  async function keptParts(r: RunActionResult): Promise<number> {
    const said =
      /Resuming the upload of \S+ an earlier run left open \(upload id \S+\): (\d+) of (\d+) part/.exec(
        r.stdout
      )
    if (!said) throw new Error(`The re-run did not resume:\n${diagnostics(r)}`)
    expect(Number(said[2])).toBe(PARTS)
    return Number(said[1])
  }
})
