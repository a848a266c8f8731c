/**
 * deploy() with signing and verification: S3 and CloudFront are mocked (an in-memory bucket),
 * and `url-base` points at a loopback HTTP server that serves what was uploaded, checking
 * signatures as CloudFront does when signing is on (verifyPublished uses the global fetch).
 */
import fs from 'node:fs'
import { CreateInvalidationCommand, GetInvalidationCommand } from '@aws-sdk/client-cloudfront'
import { CopyObjectCommand } from '@aws-sdk/client-s3'
import { deploy } from './deploy.js'
import { parseInputs } from '../../inputs/parse.js'
import type { DeployInputs } from '../../common/types.js'
import { silentLogger } from '../../../__fixtures__/logger.js'
import {
  makeWorkspace,
  mockAwsClients,
  mockDeployedDistribution
} from '../../../__fixtures__/aws-mocks.js'
import { decodeCloudFrontBase64, generateSigningKeys } from '../../../__fixtures__/signing.js'
import {
  installMockBucket,
  publishVersion,
  sha256Hex,
  startBucketServer,
  type BucketServer,
  type MockObject
} from '../../../__tests__/helpers/mock-bucket.js'

const BUCKET = 'models'
const KEY_PAIR_ID = 'K2JCJMDEHXQW5F'
const NOW = Date.UTC(2025, 2, 4, 5, 6, 7, 890)
const keys = generateSigningKeys()

const { s3Mock, cfMock, clients } = mockAwsClients()

let workspace: string
let objects: Map<string, MockObject>
let server: BucketServer | undefined

function inputs(values: Record<string, string>): DeployInputs {
  const all: Record<string, string> = {
    artifacts: 'models/**',
    bucket: BUCKET,
    'version-prefix': 'v1',
    preflight: 'false',
    ...values
  }
  return parseInputs((n) => all[n] ?? '', { GITHUB_WORKSPACE: workspace })
}

const deps = () => ({
  logger: silentLogger(),
  sleep: async () => undefined,
  env: { GITHUB_RUN_ID: '42', GITHUB_RUN_ATTEMPT: '1' },
  now: () => NOW
})

async function serve(opts: Parameters<typeof startBucketServer>[1] = {}): Promise<BucketServer> {
  server = await startBucketServer(objects, opts)
  return server
}

beforeEach(() => {
  objects = installMockBucket(s3Mock, BUCKET)
  mockDeployedDistribution(cfMock)
  workspace = makeWorkspace('mcd-private-', {
    'models/a.onnx': 'A',
    'models/sub dir/b.json': '{"b":2}'
  })
})
afterEach(async () => {
  await server?.stop()
  server = undefined
  fs.rmSync(workspace, { recursive: true, force: true })
})

describe('deploy with signing', () => {
  it('signs every file and the manifest with one expiry, and verifies them signed and refused unsigned', async () => {
    const cdn = await serve({ publicKey: keys.publicKey, now: () => NOW })
    const report = await deploy(
      inputs({
        'url-base': cdn.urlBase,
        'signing-key-pair-id': KEY_PAIR_ID,
        'signing-private-key': keys.pkcs1,
        'signed-url-expires-in': '600'
      }),
      clients,
      deps()
    )
    const expires = Math.floor(NOW / 1000) + 600
    const signing = report.signing
    expect(signing?.expiresAt.getTime()).toBe(expires * 1000)
    expect(signing?.keyPairId).toBe(KEY_PAIR_ID)
    const unsigned = {
      'a.onnx': `${cdn.urlBase}/v1/a.onnx`,
      'manifest.json': `${cdn.urlBase}/v1/manifest.json`,
      'sub dir/b.json': `${cdn.urlBase}/v1/sub%20dir/b.json`
    }
    expect(Object.keys(signing?.urls ?? {}).sort()).toEqual(Object.keys(unsigned))
    for (const [file, url] of Object.entries(unsigned)) {
      const signed = new URL(signing?.urls[file] as string)
      expect(`${signed.origin}${signed.pathname}`).toBe(url)
      expect(signed.searchParams.get('Expires')).toBe(String(expires))
      expect(signed.searchParams.get('Key-Pair-Id')).toBe(KEY_PAIR_ID)
    }
    expect(signing?.cookieResource).toBe(`${cdn.urlBase}/v1/*`)
    const policy = JSON.parse(
      decodeCloudFrontBase64(signing?.cookies['CloudFront-Policy'] as string).toString('utf8')
    )
    expect(policy.Statement[0].Condition.DateLessThan['AWS:EpochTime']).toBe(expires)

    expect(report.verification?.verified).toBe(true)
    expect(report.verification?.results.map((r) => [r.relativePath, r.ok, r.status])).toEqual([
      ['a.onnx', true, 200],
      ['sub dir/b.json', true, 200],
      ['manifest.json', true, 200]
    ])
    // Each file twice: signed (served) and unsigned (refused).
    const heads = cdn.requests.map((r) => `${r.url.split('?')[0]} ${r.status}`).sort()
    expect(heads).toEqual([
      '/v1/a.onnx 200',
      '/v1/a.onnx 403',
      '/v1/manifest.json 200',
      '/v1/manifest.json 403',
      '/v1/sub%20dir/b.json 200',
      '/v1/sub%20dir/b.json 403'
    ])
    expect(cdn.requests.every((r) => r.method === 'HEAD')).toBe(true)
  })

  it('fails verification when the files are served without a signature', async () => {
    const cdn = await serve()
    const report = await deploy(
      inputs({
        'url-base': cdn.urlBase,
        'signing-key-pair-id': KEY_PAIR_ID,
        'signing-private-key': keys.pkcs1
      }),
      clients,
      deps()
    )
    expect(report.signing).toBeDefined()
    expect(report.verification?.verified).toBe(false)
    expect(report.verification?.results.every((r) => r.kinds.includes('unsigned-served'))).toBe(
      true
    )
  })
})

describe('deploy verification', () => {
  it('puts the result of each URL in the report, failing a file served with other bytes', async () => {
    const cdn = await serve({ staleSha256: { 'v1/a.onnx': sha256Hex('old') } })
    const report = await deploy(inputs({ 'url-base': cdn.urlBase }), clients, deps())
    expect(report.signing).toBeUndefined()
    expect(report.verification?.verified).toBe(false)
    const [a, b, manifest] = report.verification?.results ?? []
    expect(a).toMatchObject({
      relativePath: 'a.onnx',
      url: `${cdn.urlBase}/v1/a.onnx`,
      ok: false,
      status: 200,
      kinds: ['content']
    })
    expect(a.problems).toEqual([
      `x-amz-meta-sha256 ${sha256Hex('old')}, expected ${sha256Hex('A')}`
    ])
    expect(b).toMatchObject({ relativePath: 'sub dir/b.json', ok: true })
    expect(manifest).toMatchObject({ relativePath: 'manifest.json', ok: true })
  })

  it('checks the manifest as written, against its own SHA-256', async () => {
    const cdn = await serve()
    const report = await deploy(inputs({ 'url-base': cdn.urlBase }), clients, deps())
    expect(report.verification?.verified).toBe(true)
    expect(report.verification?.results.at(-1)).toMatchObject({
      relativePath: 'manifest.json',
      url: report.manifestUrl,
      ok: true
    })

    cfMock.resetHistory()
    const stale = await startBucketServer(objects, {
      staleSha256: { 'v1/manifest.json': sha256Hex('an older manifest') }
    })
    try {
      const again = await deploy(inputs({ 'url-base': stale.urlBase }), clients, deps())
      expect(again.verification?.results.map((r) => r.ok)).toEqual([true, true, false])
    } finally {
      await stale.stop()
    }
  })

  it('is left out with verify: false', async () => {
    const cdn = await serve()
    const report = await deploy(
      inputs({ 'url-base': cdn.urlBase, verify: 'false' }),
      clients,
      deps()
    )
    expect(report.verification).toBeUndefined()
    expect(cdn.requests).toEqual([])
  })

  /** v1 as an earlier run published it, with other bytes for a.onnx: overwriting it invalidates. */
  function publishedBefore(): void {
    publishVersion(objects, BUCKET, 'v1', { 'a.onnx': 'Z', 'sub dir/b.json': '{"b":2}' })
  }

  /** Deploys v1 again with overwrite on, verifying through `cdn`. */
  const overwriteV1 = (cdn: BucketServer, values: Record<string, string> = {}) =>
    deploy(
      inputs({
        'url-base': cdn.urlBase,
        'distribution-id': 'E2ABCDEFGHIJKL',
        overwrite: 'true',
        ...values
      }),
      clients,
      deps()
    )

  it('is skipped with a warning while the invalidation of an overwrite is in progress', async () => {
    publishedBefore()
    const cdn = await serve()
    const report = await overwriteV1(cdn, { 'wait-for-invalidation': 'false' })
    expect(report.invalidation).toMatchObject({ ids: ['I1'], status: 'InProgress' })
    expect(cfMock.commandCalls(GetInvalidationCommand)).toHaveLength(0)
    expect(report.verification).toBeUndefined()
    expect(report.warnings).toContainEqual(
      expect.stringMatching(/^Verification skipped: invalidations are still in progress/)
    )
    expect(cdn.requests).toEqual([])
  })

  it('verifies once the invalidation of an overwrite was waited for', async () => {
    publishedBefore()
    const cdn = await serve()
    const report = await overwriteV1(cdn)
    expect(report.invalidation.status).toBe('Completed')
    expect(report.verification?.verified).toBe(true)
    expect(report.warnings.join('\n')).not.toContain('Verification skipped')
  })

  it("is left out, with a line in the log, when the URLs are the private bucket's own", async () => {
    const d = deps()
    const report = await deploy(inputs({}), clients, d)
    expect(report.verification).toBeUndefined()
    expect(report.warnings).toEqual([])
    expect(d.logger.lines).toContainEqual(
      expect.stringMatching(/^Not verified: without `distribution-id` or `url-base`/)
    )
  })
})

describe('deploy with an alias and verification', () => {
  /** `latest` as a previous run left it: a copy of v0. */
  function latestAtV0(): void {
    publishVersion(objects, BUCKET, 'v0', { 'a.onnx': 'Z', 'sub dir/b.json': '{"b":2}' })
    for (const [key, o] of [...objects]) {
      if (key.startsWith('v0/')) {
        objects.set(`latest/${key.slice(3)}`, { ...o, cacheControl: 'public, max-age=60' })
      }
    }
  }
  const aliasInputs = (urlBase: string) =>
    inputs({ 'url-base': urlBase, 'distribution-id': 'E2ABCDEFGHIJKL', alias: 'latest' })

  it('moves the alias once the version is verified', async () => {
    latestAtV0()
    const cdn = await serve()
    const report = await deploy(aliasInputs(cdn.urlBase), clients, deps())
    expect(report.verification?.verified).toBe(true)
    expect(report.alias?.result).toMatchObject({ previousVersion: 'v0', versionPrefix: 'v1' })
    expect(objects.get('latest/manifest.json')?.body).toEqual(objects.get('v1/manifest.json')?.body)
    // Only the version's URLs are verified, never the alias's.
    expect(cdn.requests.every((r) => r.url.startsWith('/v1/'))).toBe(true)
  })

  it('leaves the alias where it was when verification fails, with a warning', async () => {
    latestAtV0()
    const cdn = await serve({ staleSha256: { 'v1/a.onnx': sha256Hex('old') } })
    const report = await deploy(aliasInputs(cdn.urlBase), clients, deps())
    expect(report.verification?.verified).toBe(false)
    expect(report.alias).toBeUndefined()
    expect(report.warnings).toContain('Alias latest was not moved: v1 failed verification.')
    expect(objects.get('latest/manifest.json')?.body).toEqual(objects.get('v0/manifest.json')?.body)
    expect(
      s3Mock
        .commandCalls(CopyObjectCommand)
        .filter((c) => c.args[0].input.Key?.startsWith('latest/'))
    ).toEqual([])
    // The alias move's invalidation never happened either.
    expect(cfMock.commandCalls(CreateInvalidationCommand)).toHaveLength(0)
  })
})
