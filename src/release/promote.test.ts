import { CreateInvalidationCommand, GetInvalidationCommand } from '@aws-sdk/client-cloudfront'
import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  PutObjectCommand
} from '@aws-sdk/client-s3'
import { loadVersion } from './alias.js'
import { DeployError } from '../common/errors.js'
import { moveAlias, promoteVersion, type ReleaseDeps } from './promote.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import { mockAwsClients } from '../../__fixtures__/aws-mocks.js'
import { invalidation } from '../../__fixtures__/cloudfront.js'
import {
  installMockBucket,
  publishVersion,
  type MockObject
} from '../../__tests__/helpers/mock-bucket.js'

const BUCKET = 'models'
const DIST = 'E2ABCDEFGHIJKL'
const URL_BASE = 'https://cdn.example.com'
const { s3Mock, cfMock, clients } = mockAwsClients()

const V1 = { 'a.bin': 'aaaa', 'b.bin': 'b1', 'old.bin': 'gone soon' }
const V2 = { 'a.bin': 'aaaa', 'b.bin': 'b2', 'dir/new é.bin': 'new' }

let objects: Map<string, MockObject>

type Inputs = Parameters<typeof moveAlias>[1]
function inputs(overrides: Partial<Inputs> = {}): Inputs {
  return {
    bucket: BUCKET,
    alias: 'latest',
    aliasCacheControl: 'public, max-age=60',
    concurrency: 4,
    dryRun: false,
    distributionId: DIST,
    waitForInvalidation: true,
    waitTimeoutMinutes: 15,
    lockTimeoutMinutes: 1,
    partSizeBytes: undefined,
    ...overrides
  }
}

function deps(): ReleaseDeps & { logger: ReturnType<typeof silentLogger>; warned: string[] } {
  const warned: string[] = []
  return {
    logger: silentLogger(),
    sleep: async () => undefined,
    env: { GITHUB_RUN_ID: '7', GITHUB_RUN_ATTEMPT: '1' },
    now: () => 0,
    warn: (m) => void warned.push(m),
    warned
  }
}

/** `latest` as a previous run left it: a copy of v1. */
async function aliasAtV1(): Promise<void> {
  await moveAlias(
    clients,
    inputs({ distributionId: undefined }),
    await loadVersion(clients.s3, BUCKET, 'v1'),
    URL_BASE,
    deps()
  )
  s3Mock.resetHistory()
  cfMock.resetHistory()
}

/** Moves `latest` to v2 with these inputs: the move most tests check. */
async function moveLatestToV2(overrides: Partial<Inputs> = {}, d: ReleaseDeps = deps()) {
  return moveAlias(
    clients,
    inputs(overrides),
    await loadVersion(clients.s3, BUCKET, 'v2'),
    URL_BASE,
    d
  )
}

const invalidated = () =>
  cfMock
    .commandCalls(CreateInvalidationCommand)
    .map((c) => c.args[0].input.InvalidationBatch?.Paths?.Items)
const latestKeys = () => [...objects.keys()].filter((k) => k.startsWith('latest/')).sort()

beforeEach(() => {
  objects = installMockBucket(s3Mock, BUCKET)
  publishVersion(objects, BUCKET, 'v1', V1)
  publishVersion(objects, BUCKET, 'v2', V2)
  cfMock.on(CreateInvalidationCommand).resolves(invalidation('InProgress'))
  cfMock.on(GetInvalidationCommand).resolves(invalidation('Completed'))
})

describe('moveAlias', () => {
  it('invalidates exactly the paths the move changed, once, and waits for them', async () => {
    await aliasAtV1()
    const move = await moveLatestToV2()
    // b.bin overwritten, old.bin removed, manifest overwritten: more than one path, one wildcard.
    expect(move.result.invalidationPaths).toEqual(['/latest/*'])
    expect(invalidated()).toEqual([move.result.invalidationPaths])
    expect(cfMock.commandCalls(CreateInvalidationCommand)[0].args[0].input.DistributionId).toBe(
      DIST
    )
    expect(cfMock.commandCalls(GetInvalidationCommand)).toHaveLength(1)
    expect(move.invalidation).toMatchObject({
      paths: ['/latest/*'],
      ids: ['I1'],
      status: 'Completed'
    })
    expect(move.invalidation.reason).toContain('alias latest now serves v2')
    expect(latestKeys()).toEqual([
      'latest/a.bin',
      'latest/b.bin',
      'latest/dir/new é.bin',
      'latest/manifest.json'
    ])
  })

  it('invalidates the one path that changed as an exact path', async () => {
    publishVersion(objects, BUCKET, 'v1-rebuild', V1)
    await aliasAtV1()
    const version = await loadVersion(clients.s3, BUCKET, 'v1-rebuild')
    const move = await moveAlias(clients, inputs(), version, URL_BASE, deps())
    // Same files: only the manifest (which names the version) changed.
    expect(move.result.invalidationPaths).toEqual(['/latest/manifest.json'])
    expect(invalidated()).toEqual([['/latest/manifest.json']])
  })

  it('creates no invalidation when no served path changed', async () => {
    const move = await moveLatestToV2()
    expect(move.result.invalidationPaths).toEqual([])
    expect(cfMock.calls()).toHaveLength(0)
    expect(move.invalidation).toMatchObject({ paths: [], ids: [], status: 'none' })
    expect(move.invalidation.reason).toBe('alias latest: no path that was served before changed.')
  })

  it('without a distribution invalidates nothing and never calls CloudFront', async () => {
    await aliasAtV1()
    const move = await moveLatestToV2({ distributionId: undefined })
    expect(move.result.invalidationPaths).toEqual(['/latest/*'])
    expect(cfMock.calls()).toHaveLength(0)
    expect(move.invalidation).toMatchObject({ paths: [], ids: [], status: 'none' })
    expect(move.invalidation.reason).toContain('No distribution-id given')
  })

  it('in a dry run reports the paths it would invalidate and sends nothing', async () => {
    await aliasAtV1()
    const move = await moveLatestToV2({ dryRun: true })
    expect(move.invalidation).toMatchObject({ paths: ['/latest/*'], ids: [], status: 'none' })
    expect(cfMock.calls()).toHaveLength(0)
    expect(s3Mock.commandCalls(CopyObjectCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(0)
    expect(latestKeys()).toContain('latest/old.bin')
  })

  it('does not wait when wait-for-invalidation is false', async () => {
    await aliasAtV1()
    const d = deps()
    const move = await moveLatestToV2({ waitForInvalidation: false }, d)
    expect(invalidated()).toEqual([['/latest/*']])
    expect(cfMock.commandCalls(GetInvalidationCommand)).toHaveLength(0)
    expect(move.invalidation).toMatchObject({ ids: ['I1'], status: 'InProgress', waitedMs: 0 })
    expect(d.warned).toEqual([])
  })

  it('passes a timed-out wait to warn and reports InProgress', async () => {
    await aliasAtV1()
    cfMock.on(GetInvalidationCommand).resolves(invalidation('InProgress'))
    let clock = 0
    const d = { ...deps(), now: () => clock, sleep: async (ms: number) => void (clock += ms) }
    const warned: string[] = []
    const move = await moveLatestToV2(
      { waitTimeoutMinutes: 1 },
      { ...d, warn: (m) => void warned.push(m) }
    )
    expect(move.invalidation.status).toBe('InProgress')
    expect(move.invalidation.waitedMs).toBe(60_000)
    expect(warned).toHaveLength(1)
    expect(warned[0]).toContain('I1 (alias latest) still in progress after 1 min')
  })

  it('returns a URL under the alias for every file and for manifest.json', async () => {
    const move = await moveLatestToV2({ distributionId: undefined })
    expect(move.urls).toEqual({
      'a.bin': `${URL_BASE}/latest/a.bin`,
      'b.bin': `${URL_BASE}/latest/b.bin`,
      'dir/new é.bin': `${URL_BASE}/latest/dir/new%20%C3%A9.bin`,
      'manifest.json': `${URL_BASE}/latest/manifest.json`
    })
  })
})

describe('promoteVersion', () => {
  it('moves the alias to a complete version and says so', async () => {
    await aliasAtV1()
    const d = deps()
    const move = await promoteVersion(clients, { ...inputs(), versionPrefix: 'v2' }, URL_BASE, d)
    expect(move.result).toMatchObject({ previousVersion: 'v1', versionPrefix: 'v2' })
    expect(d.logger.lines).toContain('v2 is complete: 3 file(s) as its manifest lists them.')
    expect(objects.get('latest/manifest.json')?.body).toEqual(objects.get('v2/manifest.json')?.body)
    expect(invalidated()).toEqual([['/latest/*']])
  })

  it('refuses a version missing a listed file before any copy, delete or invalidation', async () => {
    await aliasAtV1()
    objects.delete('v2/b.bin')
    const promise = promoteVersion(clients, { ...inputs(), versionPrefix: 'v2' }, URL_BASE, deps())
    await expect(promise).rejects.toThrow(DeployError)
    await expect(promise).rejects.toThrow('v2 is missing 1 of 3 file(s) its manifest lists: b.bin')
    expect(s3Mock.commandCalls(CopyObjectCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(PutObjectCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(0)
    expect(cfMock.calls()).toHaveLength(0)
    expect(objects.get('latest/manifest.json')?.body).toEqual(objects.get('v1/manifest.json')?.body)
  })

  it('refuses a version with no manifest without reading further', async () => {
    objects.delete('v2/manifest.json')
    await expect(
      promoteVersion(clients, { ...inputs(), versionPrefix: 'v2' }, URL_BASE, deps())
    ).rejects.toThrow('v2/manifest.json not found in s3://models')
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(0)
    expect(s3Mock.commandCalls(CopyObjectCommand)).toHaveLength(0)
    expect(cfMock.calls()).toHaveLength(0)
  })
})

describe('loadVersion', () => {
  it("checks a deploy's own manifest against the listing without reading it again", async () => {
    const written = publishVersion(objects, BUCKET, 'v3', { 'a.bin': 'a3' })
    s3Mock.resetHistory()

    const version = await loadVersion(clients.s3, BUCKET, 'v3', written)

    expect(version.manifest).toBe(written)
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(0)
    objects.delete('v3/a.bin')
    await expect(loadVersion(clients.s3, BUCKET, 'v3', written)).rejects.toThrow(
      'v3 is missing 1 of 1 file(s) its manifest lists: a.bin'
    )
  })
})
