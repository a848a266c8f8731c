/**
 * `artifacts: s3://…`: objects of a training bucket published by server-side copy, through the
 * committed bundles (dist/cli.js as a shell runs it, dist/index.js as a runner does) against
 * moto_server, with a fault proxy in front of it that sees every request and counts its bytes.
 */
import { randomBytes } from 'node:crypto'
import { crc32 as zlibCrc32 } from 'node:zlib'
import {
  CreateBucketCommand,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput
} from '@aws-sdk/client-s3'
import type { World } from '../../scripts/lib/emulator.mjs'
import { runCli, type CliResult } from '../helpers/cli.js'
import { getStored, listKeys, sha256 } from '../helpers/emulator-state.js'
import { startTestWorld, type TestWorld } from '../helpers/emulator-world.js'
import {
  S3_WRITES,
  startFaultProxy,
  type FaultProxy,
  type SeenRequest
} from '../helpers/fault-proxy.js'
import { expectSuccess, runAction } from '../helpers/run-action.js'
import { generateSigningKeys } from '../../__fixtures__/signing.js'

const BUCKET = 'model-cdn-s3src'
const SOURCE = 'training-checkpoints'
const FAR_SOURCE = 'training-eu'
const FAR_REGION = 'eu-west-1'

/** The run's files: each stored in the source with a different integrity S3 knows. */
const FILES = {
  'model.safetensors': randomBytes(3 * 1024 * 1024 + 17),
  'onnx/model.onnx': randomBytes(1024 * 1024),
  'tokenizer.json': Buffer.from('{"vocab":{"a":1}}'),
  'config.json': Buffer.from('{"arch":"resnet50"}')
}
type Path = keyof typeof FILES
/** How each is put: a SHA-256 checksum, a CRC32 one, x-amz-meta-sha256, and one with none. */
const PUT_WITH: Record<Path, Partial<PutObjectCommandInput>> = {
  'model.safetensors': { ChecksumAlgorithm: 'SHA256' },
  'onnx/model.onnx': { ChecksumAlgorithm: 'CRC32' },
  'tokenizer.json': { Metadata: { sha256: sha256(FILES['tokenizer.json']) } },
  'config.json': { ChecksumAlgorithm: 'CRC32' }
}

let moto: TestWorld | undefined
let proxy: FaultProxy | undefined
let s3: S3Client
let world: World

beforeAll(async () => {
  moto = await startTestWorld({ bucket: BUCKET, requireDist: true, workspacePrefix: 'mcd-s3src-' })
  ;({ s3, world } = moto)
  proxy = await startFaultProxy(moto.emulator.endpoint)
  await s3.send(new CreateBucketCommand({ Bucket: SOURCE }))
  for (const [path, bytes] of Object.entries(FILES) as [Path, Buffer][]) {
    await put(SOURCE, `runs/42/export/${path}`, bytes, PUT_WITH[path])
  }
  // Not matched by the pattern, and excluded by it.
  await put(SOURCE, 'runs/42/optimizer.pt', randomBytes(2048), { ChecksumAlgorithm: 'CRC32' })
  await put(SOURCE, 'runs/42/export/optimizer-state.pt', randomBytes(1024), {
    ChecksumAlgorithm: 'CRC32'
  })
}, 60_000)

afterAll(async () => {
  await proxy?.stop()
  await moto?.stop()
})

function put(
  bucket: string,
  key: string,
  body: Buffer,
  extra: Partial<PutObjectCommandInput> = {}
): Promise<unknown> {
  return s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...extra }))
}

/** `node dist/cli.js deploy …` through the fault proxy. */
function deploy(prefix: string, ...extra: string[]): Promise<CliResult> {
  return runCli(
    [
      'deploy',
      '--artifacts',
      `s3://${SOURCE}/runs/42/export/**`,
      `!s3://${SOURCE}/**/optimizer*`,
      '--bucket',
      BUCKET,
      '--version-prefix',
      prefix,
      '--distribution-id',
      world.distributionId,
      '--no-verify',
      '--json',
      ...extra
    ],
    { cwd: moto!.workspace, endpoint: proxy!.endpoint }
  )
}

const isSource = (r: SeenRequest): boolean =>
  r.target.startsWith(`${SOURCE}/`) || r.target === SOURCE

describe('artifacts: s3://… (dist/cli.js)', () => {
  it('copies every object server-side: byte-identical, manifest complete, no payload through the runner', async () => {
    proxy!.setRules([])
    const r = await deploy('v1')
    expect([r.code, r.stderr]).toEqual([0, expect.not.stringContaining('error:')])
    const outputs = JSON.parse(r.stdout) as Record<string, string>
    expect([outputs['uploaded'], outputs['copied'], outputs['bytes-uploaded']]).toEqual([
      '0',
      '4',
      '0'
    ])

    for (const [path, bytes] of Object.entries(FILES)) {
      expect((await getStored(s3, BUCKET, `v1/${path}`)).bytes.equals(bytes)).toBe(true)
    }
    expect(await listKeys(s3, BUCKET, 'v1/')).toEqual(
      ['config.json', 'manifest.json', 'model.safetensors', 'onnx/model.onnx', 'tokenizer.json']
        .map((p) => `v1/${p}`)
        .sort()
    )

    const manifest = JSON.parse((await getStored(s3, BUCKET, 'v1/manifest.json')).bytes.toString())
    const entry = (path: string) =>
      (manifest.files as Record<string, unknown>[]).find((f) => f['path'] === path)
    // x-amz-meta-sha256 and a full-object SHA-256 checksum are the SHA-256.
    expect(entry('model.safetensors')).toMatchObject({
      size: FILES['model.safetensors'].length,
      sha256: sha256(FILES['model.safetensors']),
      source: `s3://${SOURCE}/runs/42/export/model.safetensors`
    })
    expect(entry('tokenizer.json')).toMatchObject({ sha256: sha256(FILES['tokenizer.json']) })
    // A CRC32 is recorded as such, and not passed off as a SHA-256.
    expect(entry('onnx/model.onnx')).toMatchObject({
      size: FILES['onnx/model.onnx'].length,
      checksum: { algorithm: 'CRC32', type: 'FULL_OBJECT', value: crc32(FILES['onnx/model.onnx']) }
    })
    expect(entry('onnx/model.onnx')).not.toHaveProperty('sha256')
    // The copy records it too, for re-runs and verification.
    expect((await getStored(s3, BUCKET, 'v1/onnx/model.onnx')).metadata).toMatchObject({
      checksum: `CRC32:${crc32(FILES['onnx/model.onnx'])}`
    })

    const sent = proxy!.requests
    // Only listing, HEADs and copies touch the source: no GetObject of its objects.
    expect([...new Set(sent.filter(isSource).map((r) => r.operation))].sort()).toEqual([
      'HeadBucket',
      'HeadObject',
      'ListObjectsV2'
    ])
    const copies = sent.filter((r) => r.operation === 'CopyObject')
    expect(copies.map((r) => r.target).sort()).toEqual(
      Object.keys(FILES)
        .map((p) => `${BUCKET}/v1/${p}`)
        .sort()
    )
    // No upload at all: the only bodies sent are the lock's and the manifest's (a few KB).
    expect(
      sent.filter((r) => ['UploadPart', 'CreateMultipartUpload'].includes(r.operation))
    ).toEqual([])
    const puts = sent.filter((r) => r.operation === 'PutObject').map((r) => r.target)
    expect(
      puts.filter((t) => !/\/(manifest\.json|\.model-cdn-deploy-lock\.json)$/.test(t))
    ).toEqual([])
    const bodyBytes = sent.reduce((sum, r) => sum + r.requestBytes, 0)
    const payload = Object.values(FILES).reduce((sum, b) => sum + b.length, 0)
    expect(bodyBytes).toBeLessThan(16 * 1024)
    expect(payload).toBeGreaterThan(4 * 1024 * 1024)
    const downloaded = sent.filter(isSource).reduce((sum, r) => sum + r.responseBytes, 0)
    expect(downloaded).toBeLessThan(16 * 1024)
  }, 120_000)

  it('shows the copies in a dry run, writing nothing', async () => {
    proxy!.setRules([])
    const r = await deploy('v-dry', '--dry-run')
    expect(r.code).toBe(0)
    expect(r.stderr).toContain(
      `Would copy onnx/model.onnx (1.0 MiB) → s3://${BUCKET}/v-dry/onnx/model.onnx server-side from s3://${SOURCE}/runs/42/export/onnx/model.onnx`
    )
    expect(JSON.parse(r.stdout)).toMatchObject({ copied: '4', 'bytes-uploaded': '0' })
    expect(await listKeys(s3, BUCKET, 'v-dry/')).toEqual([])
    expect(proxy!.requests.filter((x) => S3_WRITES.includes(x.operation))).toEqual([])
  }, 120_000)

  it('copies nothing on a re-run: every key already holds its source', async () => {
    proxy!.setRules([])
    const r = await deploy('v1')
    expect(r.code).toBe(0)
    const outputs = JSON.parse(r.stdout) as Record<string, string>
    expect([outputs['skipped'], outputs['copied']]).toEqual(['4', '0'])
    expect(proxy!.requests.filter((x) => x.operation === 'CopyObject')).toEqual([])
  }, 120_000)

  it('fails, writing no manifest, when a source object changes between its listing and its copy', async () => {
    // The first copy is held until the source has been replaced.
    proxy!.setRules([{ operations: ['CopyObject'], first: 1, fault: { kind: 'stall', ms: 4000 } }])
    const running = deploy('v-changed')
    await waitFor(() => proxy!.injected.length > 0)
    const copied = proxy!.injected[0].target.replace(`${BUCKET}/v-changed/`, '') as Path
    await put(
      SOURCE,
      `runs/42/export/${copied}`,
      randomBytes(FILES[copied].length),
      PUT_WITH[copied]
    )
    const r = await running
    // Put the source back for the other tests.
    await put(SOURCE, `runs/42/export/${copied}`, FILES[copied], PUT_WITH[copied])

    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      `s3://${SOURCE}/runs/42/export/${copied} changed or was deleted after it was listed`
    )
    expect(await listKeys(s3, BUCKET, 'v-changed/')).not.toContain('v-changed/manifest.json')
    expect(await listKeys(s3, BUCKET, 'v-changed/')).not.toContain(`v-changed/${copied}`)
  }, 120_000)

  it('reads a source bucket in its own region', async () => {
    const far = new S3Client({
      endpoint: moto!.emulator.endpoint,
      region: FAR_REGION,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      forcePathStyle: true
    })
    await far.send(
      new CreateBucketCommand({
        Bucket: FAR_SOURCE,
        CreateBucketConfiguration: { LocationConstraint: FAR_REGION }
      })
    )
    const bytes = randomBytes(200_000)
    await s3.send(
      new PutObjectCommand({
        Bucket: FAR_SOURCE,
        Key: 'ckpt/w.bin',
        Body: bytes,
        ChecksumAlgorithm: 'CRC32'
      })
    )
    far.destroy()
    proxy!.setRules([])
    const r = await runCli(
      [
        'deploy',
        '--artifacts',
        `s3://${FAR_SOURCE}/ckpt/w.bin`,
        '--bucket',
        BUCKET,
        '--version-prefix',
        'v-far',
        '--no-verify'
      ],
      { cwd: moto!.workspace, endpoint: proxy!.endpoint }
    )
    expect([r.code, r.stderr]).toEqual([0, expect.anything()])
    expect((await getStored(s3, BUCKET, 'v-far/w.bin')).bytes.equals(bytes)).toBe(true)
    const listing = proxy!.requests.find(
      (x) => x.operation === 'ListObjectsV2' && x.target === FAR_SOURCE
    )
    expect(listing?.region).toBe(FAR_REGION)
    const copy = proxy!.requests.find((x) => x.operation === 'CopyObject')
    expect(copy?.region).toBe('us-east-1')
  }, 120_000)

  it('records a SHA-256 of every object with source-hash: read, reading each once', async () => {
    proxy!.setRules([])
    const r = await deploy('v-read', '--source-hash', 'read')
    expect(r.code).toBe(0)
    const manifest = JSON.parse(
      (await getStored(s3, BUCKET, 'v-read/manifest.json')).bytes.toString()
    )
    for (const f of manifest.files as { path: Path; sha256: string }[]) {
      expect([f.path, f.sha256]).toEqual([f.path, sha256(FILES[f.path])])
    }
    const reads = proxy!.requests.filter((x) => isSource(x) && x.operation === 'GetObject')
    // Only the objects whose SHA-256 S3 did not know (a CRC32 only) were read.
    expect(reads.map((x) => x.target).sort()).toEqual(
      ['config.json', 'onnx/model.onnx'].map((p) => `${SOURCE}/runs/42/export/${p}`)
    )
  }, 120_000)
})

/** Each an input error (exit 2), found before anything is written. */
describe('artifacts: s3://… refused before anything is written', () => {
  const refused = async (artifacts: string[], prefix: string): Promise<CliResult> => {
    const r = await runCli(
      ['deploy', '--artifacts', ...artifacts, '--bucket', BUCKET, '--version-prefix', prefix],
      { cwd: moto!.workspace, endpoint: moto!.emulator.endpoint }
    )
    expect(await listKeys(s3, BUCKET, `${prefix}/`)).toEqual([])
    return r
  }

  it('a source bucket that does not exist', async () => {
    const r = await refused(['s3://no-such-training-bucket/run/**'], 'v-e1')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no-such-training-bucket.*does not exist/)
  }, 60_000)

  it('patterns that match nothing', async () => {
    const r = await refused([`s3://${SOURCE}/runs/43/**`], 'v-e2')
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`s3://${SOURCE}/runs/43/**`)
  }, 60_000)

  it('an object in Glacier', async () => {
    await put(SOURCE, 'cold/old.bin', randomBytes(100), {
      StorageClass: 'GLACIER',
      ChecksumAlgorithm: 'CRC32'
    })
    const r = await refused([`s3://${SOURCE}/cold/**`], 'v-e3')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/GLACIER/)
    expect(r.stderr).toContain('restore')
  }, 60_000)

  it('an object with no integrity S3 knows, naming source-hash: read', async () => {
    await put(SOURCE, 'bare/w.bin', randomBytes(100))
    const r = await refused([`s3://${SOURCE}/bare/**`], 'v-e4')
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('source-hash')
  }, 60_000)

  it('local and s3:// patterns mixed', async () => {
    const r = await refused([`s3://${SOURCE}/runs/42/export/**`, 'models/**'], 'v-e5')
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('mixes `s3://` patterns with local ones')
  }, 60_000)
})

describe('artifacts: s3://… (dist/index.js, as a runner runs it)', () => {
  /** The action's run of the export, under `version-prefix` with `inputs` added. */
  const publish = (versionPrefix: string, inputs: Record<string, string | boolean>) =>
    runAction({
      cwd: moto!.workspace,
      endpoint: moto!.emulator.endpoint,
      inputs: {
        artifacts: `s3://${SOURCE}/runs/42/export/**\n!s3://${SOURCE}/**/optimizer*`,
        bucket: BUCKET,
        'version-prefix': versionPrefix,
        ...inputs
      }
    })

  it('publishes and marks each file "copied from s3://…" in the job summary', async () => {
    const result = await publish('v-action', {
      'distribution-id': world.distributionId,
      verify: false
    })
    expectSuccess(result)
    expect(result.outputs['copied']).toBe('4')
    const { summary } = result
    expect(summary).toContain(`copied from s3://${SOURCE}/runs/42/export/onnx/model.onnx`)
    expect(summary).toContain(`CRC32:${crc32(FILES['onnx/model.onnx'])}`)
  }, 120_000)

  it('moves an alias to the copies, signs their URLs, and verifies through them what S3 recorded', async () => {
    const result = await publish('v-release', {
      alias: 'latest',
      // moto's path-style bucket URL stands in for the CDN: it serves a request carrying a
      // `Signature` parameter, and refuses an unsigned one (see verify.test.ts).
      'url-base': `${moto!.emulator.endpoint}/${BUCKET}`,
      'signing-key-pair-id': 'K2JCJMDEHXQW5F',
      'signing-private-key': generateSigningKeys().pkcs8,
      // The key is not one the distribution trusts: that check is not what this test is about.
      preflight: false
    })
    expectSuccess(result)
    expect(result.outputs['verified']).toBe('true')
    expect(Object.keys(JSON.parse(result.outputs['signed-urls'])).sort()).toEqual(
      [...Object.keys(FILES), 'manifest.json'].sort()
    )
    for (const [path, bytes] of Object.entries(FILES)) {
      expect((await getStored(s3, BUCKET, `latest/${path}`)).bytes.equals(bytes)).toBe(true)
    }
    expect((await getStored(s3, BUCKET, 'latest/onnx/model.onnx')).metadata).toMatchObject({
      checksum: `CRC32:${crc32(FILES['onnx/model.onnx'])}`
    })
    const aliasManifest = JSON.parse(
      (await getStored(s3, BUCKET, 'latest/manifest.json')).bytes.toString()
    )
    expect(
      (aliasManifest.files as { path: string; checksum?: unknown }[]).find(
        (f) => f.path === 'onnx/model.onnx'
      )?.checksum
    ).toEqual({ algorithm: 'CRC32', type: 'FULL_OBJECT', value: crc32(FILES['onnx/model.onnx']) })
  }, 120_000)
})

async function waitFor(ready: () => boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!ready()) {
    if (Date.now() > until) throw new Error('timed out waiting')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Base64 CRC32, as S3 reports it. */
function crc32(bytes: Buffer): string {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(zlibCrc32(bytes))
  return out.toString('base64')
}
