import { createHash } from 'node:crypto'
import fs from 'node:fs'
import {
  CreateInvalidationCommand,
  GetDistributionCommand,
  GetInvalidationCommand
} from '@aws-sdk/client-cloudfront'
import path from 'node:path'
import {
  CopyObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand
} from '@aws-sdk/client-s3'
import { deploy } from './deploy.js'
import { AwsError } from '../../common/errors.js'
import { parseInputs } from '../../inputs/parse.js'
import type { DeployInputs } from '../../common/types.js'
import { silentLogger } from '../../../__fixtures__/logger.js'
import {
  dataPuts,
  makeWorkspace,
  mockAwsClients,
  mockDeployedDistribution
} from '../../../__fixtures__/aws-mocks.js'
import { deployedDistribution, invalidation } from '../../../__fixtures__/cloudfront.js'

const { s3Mock, cfMock, clients } = mockAwsClients()
const sha = (s: string) => createHash('sha256').update(s).digest('hex')
let workspace: string

function inputs(values: Record<string, string> = {}): DeployInputs {
  const all: Record<string, string> = {
    artifacts: 'models/**',
    bucket: 'models',
    'version-prefix': 'v1',
    'distribution-id': 'E2ABCDEFGHIJKL',
    // Covered by preflight.test.ts and verify.test.ts; the pipeline around them is tested here.
    preflight: 'false',
    verify: 'false',
    ...values
  }
  return parseInputs((n) => all[n] ?? '', { GITHUB_WORKSPACE: workspace })
}

const env = { GITHUB_RUN_ID: '42', GITHUB_RUN_ATTEMPT: '1', GITHUB_SHA: 'abc123' }
const deps = () => ({ logger: silentLogger(), sleep: async () => undefined, env })

beforeEach(() => {
  workspace = makeWorkspace('mcd-deploy-', {
    'models/a.onnx': 'A',
    'models/sub dir/b.json': '{"b":2}'
  })
  mockDeployedDistribution(cfMock)
  s3Mock.on(PutObjectCommand).resolves({})
})
afterEach(() => fs.rmSync(workspace, { recursive: true, force: true }))

/** The bucket already holds v1 as published before: a.onnx with other bytes, and a manifest. */
function previousVersion(): void {
  s3Mock.on(ListObjectsV2Command).resolves({
    Contents: [
      { Key: 'v1/a.onnx', Size: 1 },
      { Key: 'v1/sub dir/b.json', Size: 7 },
      { Key: 'v1/manifest.json', Size: 300 }
    ]
  })
  s3Mock
    .on(HeadObjectCommand, { Key: 'v1/a.onnx' })
    .resolves({ ContentLength: 1, Metadata: { sha256: sha('Z') } })
  s3Mock.on(HeadObjectCommand, { Key: 'v1/sub dir/b.json' }).resolves({
    ContentLength: 7,
    ContentType: 'application/json',
    CacheControl: 'public, max-age=31536000, immutable',
    Metadata: { sha256: sha('{"b":2}') }
  })
  const stored = JSON.stringify({ versionPrefix: 'v1', files: [] })
  s3Mock.on(GetObjectCommand).resolves({
    Body: { transformToString: async () => stored } as unknown as GetObjectCommandOutput['Body']
  })
}

/** The keys of the files and manifest written, in order; the version's lock apart. */
const putKeys = () => dataPuts(s3Mock).map((p) => p.Key)
const invalidatedPaths = () =>
  cfMock
    .commandCalls(CreateInvalidationCommand)
    .flatMap((c) => c.args[0].input.InvalidationBatch?.Paths?.Items ?? [])

describe('deploy', () => {
  it('publishes a new version: uploads everything, writes the manifest last, invalidates nothing', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({})
    const report = await deploy(inputs(), clients, deps())
    expect([...putKeys()].sort()).toEqual(['v1/a.onnx', 'v1/manifest.json', 'v1/sub dir/b.json'])
    expect(putKeys().at(-1)).toBe('v1/manifest.json')
    expect(cfMock.commandCalls(CreateInvalidationCommand)).toHaveLength(0)
    expect(report.invalidation.status).toBe('none')
    expect(report.invalidation.reason).toContain('every uploaded or copied key is new')
    expect(report.files.map((f) => f.url)).toEqual([
      'https://d111.cloudfront.net/v1/a.onnx',
      'https://d111.cloudfront.net/v1/sub%20dir/b.json'
    ])
    expect(report.manifestUrl).toBe('https://d111.cloudfront.net/v1/manifest.json')
    // Both keys are new, so both files were hashed while uploading, and reported as such.
    expect(report.files.map((f) => f.sha256)).toEqual([sha('A'), sha('{"b":2}')])
    const manifestPut = s3Mock
      .commandCalls(PutObjectCommand)
      .find((c) => c.args[0].input.Key === 'v1/manifest.json')
    const manifest = JSON.parse(String(manifestPut?.args[0].input.Body))
    expect(manifest.files.map((f: { sha256: string }) => f.sha256)).toEqual([
      sha('A'),
      sha('{"b":2}')
    ])
    expect(manifest.git.sha).toBe('abc123')
  })

  it('auto: overwriting invalidates exactly the overwritten key and the rewritten manifest', async () => {
    previousVersion()
    const report = await deploy(inputs({ overwrite: 'true' }), clients, deps())
    expect(putKeys()).toEqual(['v1/a.onnx', 'v1/manifest.json'])
    expect(invalidatedPaths().sort()).toEqual(['/v1/a.onnx', '/v1/manifest.json'])
    const batch = cfMock.commandCalls(CreateInvalidationCommand)[0].args[0].input
    expect(batch.DistributionId).toBe('E2ABCDEFGHIJKL')
    expect(report.invalidation).toMatchObject({ ids: ['I1'], status: 'Completed' })
  })

  it('all: invalidates every uploaded key; none: only the extra paths', async () => {
    previousVersion()
    await deploy(inputs({ overwrite: 'true', invalidate: 'all' }), clients, deps())
    expect(invalidatedPaths().sort()).toEqual(['/v1/a.onnx', '/v1/manifest.json'])

    cfMock.resetHistory()
    s3Mock.resetHistory()
    await deploy(
      inputs({ overwrite: 'true', invalidate: 'none', 'invalidation-paths': '/latest/*' }),
      clients,
      deps()
    )
    expect(invalidatedPaths()).toEqual(['/latest/*'])
  })

  it('dry run reads but writes nothing and creates no invalidation', async () => {
    previousVersion()
    const report = await deploy(inputs({ overwrite: 'true', 'dry-run': 'true' }), clients, deps())
    expect(putKeys()).toEqual([])
    expect(cfMock.commandCalls(CreateInvalidationCommand)).toHaveLength(0)
    expect(report.dryRun).toBe(true)
    expect(report.invalidation.paths.sort()).toEqual(['/v1/a.onnx', '/v1/manifest.json'])
    expect(report.files.map((f) => f.action)).toEqual(['upload', 'skip'])
    expect(report.files.map((f) => f.sha256)).toEqual([sha('A'), sha('{"b":2}')])
  })

  it('without a distribution returns S3 URLs and never calls CloudFront', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({})
    const report = await deploy(
      inputs({ 'distribution-id': '', 'aws-region': 'eu-west-1' }),
      clients,
      deps()
    )
    expect(report.files[0].url).toBe('https://models.s3.eu-west-1.amazonaws.com/v1/a.onnx')
    expect(cfMock.calls()).toHaveLength(0)
    expect(report.invalidation.reason).toContain('No distribution-id given')
  })

  it('warns and reports InProgress when the wait times out', async () => {
    previousVersion()
    cfMock.on(GetInvalidationCommand).resolves(invalidation('InProgress'))
    let clock = 0
    const d = { ...deps(), now: () => clock, sleep: async (ms: number) => void (clock += ms) }
    const report = await deploy(
      inputs({ overwrite: 'true', 'wait-timeout-minutes': '1' }),
      clients,
      d
    )
    expect(report.invalidation.status).toBe('InProgress')
    expect(report.warnings.join('\n')).toContain('I1 still in progress after 1 min')
  })

  it('hashes and lists the version while the distribution is read', async () => {
    // GetDistribution answers only once the version's listing was sent: reading the target
    // first and planning after it would wait forever.
    let listed!: () => void
    const listing = new Promise<void>((resolve) => (listed = resolve))
    s3Mock.on(ListObjectsV2Command).callsFake(async () => {
      listed()
      return {}
    })
    cfMock.on(GetDistributionCommand).callsFake(async () => {
      await listing
      return deployedDistribution
    })
    const report = await deploy(inputs(), clients, deps())
    expect(report.distribution?.domain).toBe('d111.cloudfront.net')
    expect([...putKeys()].sort()).toEqual(['v1/a.onnx', 'v1/manifest.json', 'v1/sub dir/b.json'])
  }, 5_000)

  it('fails before any upload when the distribution does not exist', async () => {
    // The plan fails too, at once; the target's error is the one reported.
    s3Mock.on(ListObjectsV2Command).rejects(
      Object.assign(new Error('Access Denied'), {
        name: 'AccessDenied',
        $metadata: { httpStatusCode: 403 }
      })
    )
    cfMock.on(GetDistributionCommand).rejects(
      Object.assign(new Error('The specified distribution does not exist.'), {
        name: 'NoSuchDistribution',
        $metadata: { httpStatusCode: 404 }
      })
    )
    await expect(deploy(inputs(), clients, deps())).rejects.toThrow(
      /reading CloudFront distribution E2ABCDEFGHIJKL/
    )
    expect(putKeys()).toEqual([])
  })

  it('stops while hashing when the run is cancelled, before any upload', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({})
    const controller = new AbortController()
    controller.abort(new Error('SIGINT'))
    await expect(
      deploy(inputs(), clients, { ...deps(), signal: controller.signal })
    ).rejects.toThrow('Cancelled while hashing and checking existing keys: nothing was uploaded.')
    expect(putKeys()).toEqual([])
  })

  it('auto: invalidates keys an unfinished earlier overwrite replaced, when resuming', async () => {
    // The earlier run stored the new a.onnx, then died before the manifest and invalidation.
    const headers = { CacheControl: 'public, max-age=31536000, immutable' }
    s3Mock.on(ListObjectsV2Command).resolves({
      Contents: [
        { Key: 'v1/a.onnx', Size: 1 },
        { Key: 'v1/sub dir/b.json', Size: 7 },
        { Key: 'v1/manifest.json', Size: 300 }
      ]
    })
    s3Mock.on(HeadObjectCommand, { Key: 'v1/a.onnx' }).resolves({
      ...headers,
      ContentLength: 1,
      ContentType: 'application/octet-stream',
      Metadata: { sha256: sha('A') }
    })
    s3Mock.on(HeadObjectCommand, { Key: 'v1/sub dir/b.json' }).resolves({
      ...headers,
      ContentLength: 7,
      ContentType: 'application/json',
      Metadata: { sha256: sha('{"b":2}') }
    })
    const stored = JSON.stringify({
      versionPrefix: 'v1',
      files: [
        { key: 'v1/a.onnx', sha256: sha('Z') },
        { key: 'v1/sub dir/b.json', sha256: sha('{"b":2}') }
      ]
    })
    s3Mock.on(GetObjectCommand).resolves({
      Body: { transformToString: async () => stored } as unknown as GetObjectCommandOutput['Body']
    })
    const report = await deploy(inputs(), clients, deps())
    expect(report.files.map((f) => f.action)).toEqual(['skip', 'skip'])
    expect(putKeys()).toEqual(['v1/manifest.json'])
    expect(invalidatedPaths().sort()).toEqual(['/v1/a.onnx', '/v1/manifest.json'])
    expect(report.invalidation.reason).toContain('1 key(s) an unfinished earlier run replaced')
  })

  describe('with a file another version already stores', () => {
    const shard = Buffer.alloc(1024 * 1024, 5)
    beforeEach(() => {
      fs.writeFileSync(path.join(workspace, 'models/shard.bin'), shard)
      s3Mock.on(ListObjectsV2Command, { Prefix: 'v1/' }).resolves({})
      s3Mock
        .on(ListObjectsV2Command, { Prefix: '' })
        .resolves({ Contents: [{ Key: 'v0/shard.bin', Size: shard.length, ETag: '"e0"' }] })
      s3Mock.on(HeadObjectCommand, { Key: 'v0/shard.bin' }).resolves({
        Metadata: { sha256: createHash('sha256').update(shard).digest('hex') }
      })
    })
    /** A promise and what settles it, for requests that wait on one another. */
    const signal = () => {
      let fire!: () => void
      const fired = new Promise<void>((resolve) => (fire = resolve))
      return { fire, fired }
    }

    it('copies it while the other files upload', async () => {
      // Each request waits for the other to have been sent: done one after the other, they never end.
      const copyStarted = signal()
      const uploadStarted = signal()
      s3Mock.on(CopyObjectCommand).callsFake(async () => {
        copyStarted.fire()
        await uploadStarted.fired
        return { CopyObjectResult: { ETag: '"c"' } }
      })
      s3Mock.on(PutObjectCommand, { Key: 'v1/a.onnx' }).callsFake(async () => {
        uploadStarted.fire()
        await copyStarted.fired
        return {}
      })

      const report = await deploy(inputs(), clients, deps())

      expect(Object.fromEntries(report.files.map((f) => [f.relativePath, f.action]))).toEqual({
        'a.onnx': 'upload',
        'shard.bin': 'copy',
        'sub dir/b.json': 'upload'
      })
      expect(s3Mock.commandCalls(CopyObjectCommand)[0].args[0].input).toMatchObject({
        Key: 'v1/shard.bin',
        CopySourceIfMatch: '"e0"'
      })
      expect(report.bytesCopied).toBe(shard.length)
      expect(report.bytesUploaded).toBe(1 + 7)
      expect(putKeys().at(-1)).toBe('v1/manifest.json')
    }, 5_000)

    it('reports a failed copy, not the uploads it cancelled, and writes no manifest', async () => {
      const uploadStarted = signal()
      s3Mock.on(CopyObjectCommand).callsFake(async () => {
        await uploadStarted.fired
        throw Object.assign(new Error('Access Denied'), {
          name: 'AccessDenied',
          $metadata: { httpStatusCode: 403 }
        })
      })
      s3Mock.on(PutObjectCommand, { Key: 'v1/a.onnx' }).callsFake(async () => {
        uploadStarted.fire()
        return {}
      })

      const err = await deploy(inputs(), clients, deps()).catch((e: unknown) => e)

      expect(err).toBeInstanceOf(AwsError)
      expect((err as AwsError).message).toMatch(/copying.*AccessDenied/)
      expect(putKeys()).not.toContain('v1/manifest.json')
    })

    it('uploads it instead when its source changed since it was found', async () => {
      // The destination is still absent, so the 412 was the source's condition.
      s3Mock
        .on(HeadObjectCommand, { Key: 'v1/shard.bin' })
        .rejects(Object.assign(new Error('NotFound'), { $metadata: { httpStatusCode: 404 } }))
      s3Mock.on(CopyObjectCommand).rejects(
        Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
          name: 'PreconditionFailed',
          $metadata: { httpStatusCode: 412 }
        })
      )

      const report = await deploy(inputs(), clients, deps())

      expect(report.files.find((f) => f.relativePath === 'shard.bin')?.action).toBe('upload')
      expect(report.bytesCopied).toBe(0)
      expect(report.bytesUploaded).toBe(1 + 7 + shard.length)
      expect([...putKeys()].sort()).toEqual([
        'v1/a.onnx',
        'v1/manifest.json',
        'v1/shard.bin',
        'v1/sub dir/b.json'
      ])
      expect(putKeys().at(-1)).toBe('v1/manifest.json')
    })
  })
})
