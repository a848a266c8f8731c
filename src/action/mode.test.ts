/**
 * runActionMode: deploy, promote and cleanup as main runs them, with S3 and CloudFront mocked (an
 * in-memory bucket) and the pull request comment written to a fake GitHub on loopback.
 */
import fs from 'node:fs'
import path from 'node:path'
import { CreateInvalidationCommand } from '@aws-sdk/client-cloudfront'
import { DeleteObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { Outputs } from '../common/constants.js'
import { DeployError } from '../common/errors.js'
import { parseInputs } from '../inputs/parse.js'
import { LOCK_FILE_NAME } from '../aws/publish-lock.js'
import type { ModeDeps } from '../commands/mode-deps.js'
import { runActionMode } from './mode.js'
import { sortedJson } from '../report/outputs.js'
import type { DeployInputs } from '../common/types.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import {
  dataPuts,
  lockPuts,
  makeWorkspace,
  mockAwsClients,
  mockDeployedDistribution
} from '../../__fixtures__/aws-mocks.js'
import { startFakeGitHub, type FakeGitHub } from '../../__tests__/helpers/fake-github.js'
import {
  installMockBucket,
  publishVersion,
  sha256Hex,
  startBucketServer,
  type MockObject
} from '../../__tests__/helpers/mock-bucket.js'

const BUCKET = 'models'
const DIST = 'E2ABCDEFGHIJKL'
const TOKEN = 'ghs_modesTestToken0123456789'
const HEAD_SHA = '0123456789abcdef0123456789abcdef01234567'
const NOW = Date.UTC(2025, 2, 4, 5, 6, 7)
const PREVIEW_TAGGING = 'model-cdn-deploy%3Apreview=true'
const MARKER = '<!-- model-cdn-deploy:preview -->'

const { s3Mock, cfMock, clients } = mockAwsClients()

let gh: FakeGitHub
let workspace: string
let objects: Map<string, MockObject>

beforeAll(async () => {
  gh = await startFakeGitHub({ token: TOKEN })
})
afterAll(() => gh.stop())

beforeEach(() => {
  gh.reset()
  objects = installMockBucket(s3Mock, BUCKET)
  mockDeployedDistribution(cfMock)
  workspace = makeWorkspace('mcd-modes-', { 'models/a.onnx': 'A', 'models/b.json': '{"b":2}' })
})
afterEach(() => fs.rmSync(workspace, { recursive: true, force: true }))

function inputs(values: Record<string, string>): DeployInputs {
  const all: Record<string, string> = {
    artifacts: 'models/**',
    bucket: BUCKET,
    'version-prefix': 'previews/pr-7',
    'url-base': 'https://models.example.com',
    preflight: 'false',
    verify: 'false',
    'github-token': TOKEN,
    ...values
  }
  return parseInputs((n) => all[n] ?? '', { GITHUB_WORKSPACE: workspace })
}

/** The runner's variables of a pull_request run; the payload is written to the workspace. */
function prEnv(payload: object | string = prPayload()): NodeJS.ProcessEnv {
  const eventPath = path.join(workspace, 'event.json')
  fs.writeFileSync(eventPath, typeof payload === 'string' ? payload : JSON.stringify(payload))
  return {
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_REPOSITORY: 'acme/models',
    GITHUB_RUN_ID: '42',
    GITHUB_RUN_ATTEMPT: '1'
  }
}

function prPayload(extra: { action?: string; merged?: boolean } = {}): object {
  const repo = { name: 'models', full_name: 'acme/models', owner: { login: 'acme' } }
  return {
    action: extra.action ?? 'synchronize',
    number: 7,
    repository: repo,
    pull_request: {
      number: 7,
      merged: extra.merged ?? false,
      head: { sha: HEAD_SHA, repo },
      base: { repo }
    }
  }
}

const pushEnv = (): NodeJS.ProcessEnv => ({
  GITHUB_EVENT_NAME: 'push',
  GITHUB_API_URL: gh.apiUrl,
  GITHUB_RUN_ID: '42'
})

function deps(env: NodeJS.ProcessEnv): ModeDeps & { logger: ReturnType<typeof silentLogger> } {
  return { logger: silentLogger(), sleep: async () => undefined, env, now: () => NOW }
}

const comments = () => gh.comments('acme', 'models', 7)
const puts = () => dataPuts(s3Mock)
const invalidated = () =>
  cfMock
    .commandCalls(CreateInvalidationCommand)
    .map((c) => c.args[0].input.InvalidationBatch?.Paths?.Items)
const keysUnder = (prefix: string) =>
  [...objects.keys()].filter((k) => k.startsWith(`${prefix}/`)).sort()

/** `alias` as a previous promote left it: a byte copy of the version, manifest included. */
function pointAlias(alias: string, version: string): void {
  for (const [key, o] of [...objects]) {
    if (key.startsWith(`${version}/`)) {
      objects.set(`${alias}/${key.slice(version.length + 1)}`, {
        ...o,
        cacheControl: 'public, max-age=60'
      })
    }
  }
}

describe('runActionMode: deploy', () => {
  it('tags a pull request preview and comments its URLs on the pull request', async () => {
    const outcome = await runActionMode(inputs({}), clients, deps(prEnv()))
    expect(outcome.failure).toBeUndefined()
    expect(
      puts()
        .map((p) => p.Key)
        .sort()
    ).toEqual(['previews/pr-7/a.onnx', 'previews/pr-7/b.json', 'previews/pr-7/manifest.json'])
    expect(puts().every((p) => p.Tagging === PREVIEW_TAGGING)).toBe(true)
    // The version's lock was tagged as a preview too (it expires with it if left), and removed.
    expect(lockPuts(s3Mock).map((p) => [p.Key, p.IfNoneMatch, p.Tagging])).toEqual([
      [`previews/pr-7/${LOCK_FILE_NAME}`, '*', PREVIEW_TAGGING]
    ])
    expect(keysUnder('previews/pr-7')).not.toContain(`previews/pr-7/${LOCK_FILE_NAME}`)

    const [comment, ...more] = comments()
    expect(more).toEqual([])
    expect(comment.body.split('\n')[0]).toBe(MARKER)
    expect(comment.body).toContain('### Model preview `previews/pr-7`')
    expect(comment.body).toContain('[link](<https://models.example.com/previews/pr-7/a.onnx>)')
    expect(comment.body).toContain(`/pull/7/commits/${HEAD_SHA}`)
    expect(comment.body).toContain('updated 2025-03-04 05:06:07 UTC')
    expect(gh.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /repos/acme/models/issues/7/comments',
      'POST /repos/acme/models/issues/7/comments'
    ])
    expect(gh.requests[1].authorization).toBe(`token ${TOKEN}`)

    expect(outcome.outputs[Outputs.CommentUrl]).toBe(comment.html_url)
    expect(outcome.outputs[Outputs.VersionPrefix]).toBe('previews/pr-7')
    expect(outcome.outputs[Outputs.Uploaded]).toBe('2')
    expect(outcome.outputs[Outputs.Verified]).toBe('')
    expect(outcome.summary).toContain(`**Pull request comment:** Commented ${comment.html_url}.`)
  })

  it('neither tags nor comments outside a pull request', async () => {
    const outcome = await runActionMode(inputs({}), clients, deps(pushEnv()))
    expect(puts()).toHaveLength(3)
    expect(puts().every((p) => p.Tagging === undefined)).toBe(true)
    expect(gh.requests).toEqual([])
    expect(outcome.outputs[Outputs.CommentUrl]).toBe('')
    expect(outcome.summary).not.toContain('Pull request comment')
  })

  it('tags but does not comment with pr-comment: false', async () => {
    const outcome = await runActionMode(inputs({ 'pr-comment': 'false' }), clients, deps(prEnv()))
    expect(puts().every((p) => p.Tagging === PREVIEW_TAGGING)).toBe(true)
    expect(gh.requests).toEqual([])
    expect(outcome.outputs[Outputs.CommentUrl]).toBe('')
  })

  it('turns a missing token into a warning, not a failure', async () => {
    const d = deps(prEnv())
    const outcome = await runActionMode(inputs({ 'github-token': '' }), clients, d)
    expect(outcome.failure).toBeUndefined()
    expect(gh.requests).toEqual([])
    expect(d.logger.warnings).toContainEqual(
      expect.stringContaining('`github-token` is empty, so the preview comment cannot be written.')
    )
    expect(outcome.summary).toContain('**Pull request comment:** not written (no token)')
    expect(outcome.summary).toMatch(/### Warnings\n\n- ⚠️ \\`github-token\\` is empty/)
  })

  it('on a failed verification returns the failure with outputs and summary, and does not comment', async () => {
    const cdn = await startBucketServer(objects, {
      staleSha256: { 'previews/pr-7/a.onnx': sha256Hex('stale') }
    })
    try {
      const outcome = await runActionMode(
        inputs({ 'url-base': cdn.urlBase, verify: 'true' }),
        clients,
        deps(prEnv())
      )
      expect(outcome.failure).toBeInstanceOf(DeployError)
      expect(outcome.failure?.message).toMatch(
        /^Verification failed for 1 of 3 published file\(s\):\n- http:\/\/127\.0\.0\.1:\d+\/previews\/pr-7\/a\.onnx: x-amz-meta-sha256 /
      )
      expect(outcome.outputs[Outputs.Verified]).toBe('false')
      expect(outcome.outputs[Outputs.Uploaded]).toBe('2')
      expect(JSON.parse(outcome.outputs[Outputs.Urls])).toEqual({
        'a.onnx': `${cdn.urlBase}/previews/pr-7/a.onnx`,
        'b.json': `${cdn.urlBase}/previews/pr-7/b.json`
      })
      expect(outcome.outputs[Outputs.CommentUrl]).toBe('')
      expect(gh.requests).toEqual([])
      expect(outcome.summary).toContain('### Verification')
      expect(outcome.summary).toContain('❌ 1 of 3 URL(s) did not serve what was uploaded.')
      expect(outcome.summary).not.toContain('Pull request comment')
    } finally {
      await cdn.stop()
    }
  })

  it('comments when verification passes', async () => {
    const cdn = await startBucketServer(objects)
    try {
      const outcome = await runActionMode(
        inputs({ 'url-base': cdn.urlBase, verify: 'true' }),
        clients,
        deps(prEnv())
      )
      expect(outcome.failure).toBeUndefined()
      expect(outcome.outputs[Outputs.Verified]).toBe('true')
      expect(comments()).toHaveLength(1)
    } finally {
      await cdn.stop()
    }
  })
})

describe('runActionMode: promote', () => {
  beforeEach(() => {
    publishVersion(objects, BUCKET, 'v1', { 'a.onnx': 'A1', 'b.json': '{"b":1}' })
    publishVersion(objects, BUCKET, 'v2', { 'a.onnx': 'A2', 'b.json': '{"b":1}' })
    pointAlias('latest', 'v1')
  })

  const promoteInputs = (values: Record<string, string> = {}) =>
    inputs({
      mode: 'promote',
      artifacts: '',
      'version-prefix': 'v2',
      alias: 'latest',
      'distribution-id': DIST,
      'url-base': '',
      ...values
    })

  it('moves the alias and sets the promote outputs and summary', async () => {
    const outcome = await runActionMode(promoteInputs(), clients, deps(pushEnv()))
    expect(outcome.failure).toBeUndefined()
    expect(outcome.outputs).toEqual({
      [Outputs.VersionPrefix]: 'v2',
      [Outputs.AliasUrls]: sortedJson({
        'a.onnx': 'https://d111.cloudfront.net/latest/a.onnx',
        'b.json': 'https://d111.cloudfront.net/latest/b.json',
        'manifest.json': 'https://d111.cloudfront.net/latest/manifest.json'
      }),
      [Outputs.InvalidationIds]: '["I1"]',
      [Outputs.InvalidationStatus]: 'Completed'
    })
    expect(invalidated()).toEqual([['/latest/*']])
    expect(objects.get('latest/manifest.json')?.body).toEqual(objects.get('v2/manifest.json')?.body)
    expect(puts()).toEqual([])
    // The move held the alias's lock, and removed it when done.
    expect(lockPuts(s3Mock).map((p) => p.Key)).toEqual([`latest/${LOCK_FILE_NAME}`])
    expect(objects.has(`latest/${LOCK_FILE_NAME}`)).toBe(false)
    expect(
      outcome.summary.startsWith('## Model CDN promote: latest → v2\n\n**Bucket:** models\n')
    ).toBe(true)
    expect(outcome.summary).toContain('- `latest` pointed to `v1`; it now points to `v2`.')
  })

  it('in a dry run changes nothing and says what it would do', async () => {
    const outcome = await runActionMode(
      promoteInputs({ 'dry-run': 'true' }),
      clients,
      deps(pushEnv())
    )
    expect(outcome.outputs[Outputs.InvalidationIds]).toBe('[]')
    expect(outcome.outputs[Outputs.InvalidationStatus]).toBe('none')
    expect(cfMock.commandCalls(CreateInvalidationCommand)).toHaveLength(0)
    expect(objects.get('latest/manifest.json')?.body).toEqual(objects.get('v1/manifest.json')?.body)
    expect(outcome.summary).toContain('> **Dry run — nothing was changed.**')
    expect(outcome.summary).toContain('it now would point to `v2`')
  })

  it('writes no comment, even on a pull request', async () => {
    const outcome = await runActionMode(promoteInputs(), clients, deps(prEnv()))
    expect(gh.requests).toEqual([])
    expect(outcome.outputs[Outputs.CommentUrl]).toBeUndefined()
  })
})

describe('runActionMode: cleanup', () => {
  beforeEach(() => {
    publishVersion(objects, BUCKET, 'previews/pr-7', { 'a.onnx': 'A', 'b.json': '{"b":2}' })
    publishVersion(objects, BUCKET, 'previews/pr-8', { 'a.onnx': 'A8' })
  })

  const cleanupInputs = (values: Record<string, string> = {}) =>
    inputs({ mode: 'cleanup', artifacts: '', 'distribution-id': DIST, ...values })

  it('deletes the prefix and invalidates /<prefix>/*', async () => {
    const outcome = await runActionMode(cleanupInputs(), clients, deps(pushEnv()))
    expect(keysUnder('previews/pr-7')).toEqual([])
    expect(keysUnder('previews/pr-8')).toHaveLength(2)
    expect(invalidated()).toEqual([['/previews/pr-7/*']])
    expect(outcome.outputs).toEqual({
      [Outputs.VersionPrefix]: 'previews/pr-7',
      [Outputs.Deleted]: '3',
      [Outputs.InvalidationIds]: '["I1"]',
      [Outputs.InvalidationStatus]: 'Completed',
      [Outputs.CommentUrl]: ''
    })
    expect(outcome.summary).toContain('Removed 3 object(s)')
    expect(outcome.summary).toContain('- /previews/pr-7/\\*')
  })

  it('waits for a deploy of the same prefix to finish, then removes what it published too', async () => {
    const lock = `previews/pr-7/${LOCK_FILE_NAME}`
    objects.set(lock, {
      body: Buffer.from(
        JSON.stringify({
          schemaVersion: 1,
          prefix: 'previews/pr-7',
          purpose: 'publish',
          owner: { token: 'deploy', host: 'runner-b', pid: 7, runId: '99', startedAt: '' },
          state: 'held',
          updatedAt: '',
          uploads: []
        })
      ),
      metadata: {}
    })
    const waiting = deps(pushEnv())
    // The deploy adds a file and finishes while the clean-up waits.
    waiting.sleep = async () => {
      publishVersion(objects, BUCKET, 'previews/pr-7', { 'a.onnx': 'A', 'late.bin': 'late' })
      objects.delete(lock)
    }

    const outcome = await runActionMode(cleanupInputs(), clients, waiting)

    expect(keysUnder('previews/pr-7')).toEqual([])
    expect(outcome.outputs[Outputs.Deleted]).toBe('4')
    expect(waiting.logger.lines).toContainEqual(
      expect.stringMatching(
        /^Waiting for another run \(workflow run 99 .*\), which is publishing previews\/pr-7/
      )
    )
    // Its own lock was taken for the deletes, and removed with them.
    expect(lockPuts(s3Mock).at(-1)).toMatchObject({ Key: lock, IfNoneMatch: '*' })
  })

  it('removes the prefix without its lock, with a warning, when the role may not write objects', async () => {
    s3Mock.on(PutObjectCommand).rejects(
      Object.assign(new Error('Access Denied'), {
        name: 'AccessDenied',
        $metadata: { httpStatusCode: 403 }
      })
    )
    const outcome = await runActionMode(cleanupInputs(), clients, deps(pushEnv()))
    expect(keysUnder('previews/pr-7')).toEqual([])
    expect(outcome.summary).toMatch(
      /Removing previews\/pr-7 without its lock \(Failed writing the lock .*AccessDenied.*\): a deploy of it running now could write files back\./
    )
  })

  it('invalidates nothing without a distribution', async () => {
    const outcome = await runActionMode(
      cleanupInputs({ 'distribution-id': '' }),
      clients,
      deps(pushEnv())
    )
    expect(keysUnder('previews/pr-7')).toEqual([])
    expect(cfMock.calls()).toHaveLength(0)
    expect(outcome.outputs[Outputs.InvalidationStatus]).toBe('none')
    expect(outcome.summary).toContain(
      'No distribution-id given, so there is nothing to invalidate.'
    )
  })

  it('in a dry run deletes and invalidates nothing', async () => {
    const outcome = await runActionMode(
      cleanupInputs({ 'dry-run': 'true' }),
      clients,
      deps(pushEnv())
    )
    expect(keysUnder('previews/pr-7')).toHaveLength(3)
    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(0)
    expect(cfMock.calls()).toHaveLength(0)
    expect(outcome.outputs[Outputs.Deleted]).toBe('3')
    expect(outcome.outputs[Outputs.InvalidationIds]).toBe('[]')
    expect(outcome.summary).toContain('Would remove 3 object(s)')
  })

  it.each([
    ['alias', { alias: 'latest' }, 'latest'],
    ['aliases', { aliases: 'stable' }, 'stable']
  ])('refuses a prefix the %s input points to, deleting nothing', async (_, values, alias) => {
    pointAlias(alias, 'previews/pr-7')
    const promise = runActionMode(cleanupInputs(values), clients, deps(prEnv()))
    await expect(promise).rejects.toThrow(DeployError)
    await expect(promise).rejects.toThrow(
      `Refusing to delete s3://models/previews/pr-7/: the alias ${alias}/ points to it`
    )
    expect(keysUnder('previews/pr-7')).toHaveLength(3)
    expect(s3Mock.commandCalls(DeleteObjectsCommand)).toHaveLength(0)
    expect(cfMock.calls()).toHaveLength(0)
    expect(gh.requests).toEqual([])
  })

  it('does not look for an alias outside the parent unless named', async () => {
    pointAlias('latest', 'previews/pr-7')
    await runActionMode(cleanupInputs(), clients, deps(pushEnv()))
    expect(keysUnder('previews/pr-7')).toEqual([])
  })

  it("edits the pull request's preview comment to say it was removed", async () => {
    const [seeded] = gh.seedComments('acme', 'models', 7, [`${MARKER}\n### Model preview`])
    const outcome = await runActionMode(
      cleanupInputs(),
      clients,
      deps(prEnv(prPayload({ action: 'closed', merged: true })))
    )
    expect(gh.requests.map((r) => r.method)).toEqual(['GET', 'PATCH'])
    const [comment] = comments()
    expect(comment.id).toBe(seeded.id)
    expect(comment.body.split('\n')[0]).toBe(MARKER)
    expect(comment.body).toContain(
      'This preview was removed after the pull request was merged: 3 object(s)'
    )
    expect(outcome.outputs[Outputs.CommentUrl]).toBe(seeded.html_url)
    expect(outcome.summary).toContain(
      `**Pull request comment:** Updated the preview comment ${seeded.html_url}.`
    )
  })

  it('never creates a comment when the pull request has none', async () => {
    const outcome = await runActionMode(cleanupInputs(), clients, deps(prEnv()))
    expect(gh.requests.map((r) => r.method)).toEqual(['GET'])
    expect(comments()).toEqual([])
    expect(outcome.outputs[Outputs.CommentUrl]).toBe('')
    expect(outcome.summary).toContain(
      '**Pull request comment:** Pull request #7 has no preview comment to update.'
    )
  })
})

describe('runActionMode: a broken pull request payload', () => {
  it.each(['deploy', 'promote', 'cleanup'])('fails %s before anything is sent', async (mode) => {
    const promise = runActionMode(
      inputs({ mode, alias: mode === 'promote' ? 'latest' : '' }),
      clients,
      deps(prEnv('{"pull_request": '))
    )
    await expect(promise).rejects.toThrow(DeployError)
    await expect(promise).rejects.toThrow(/^The pull_request event payload at .+ could not be read/)
    expect(s3Mock.calls()).toHaveLength(0)
    expect(cfMock.calls()).toHaveLength(0)
    expect(gh.requests).toEqual([])
  })

  it('fails when the payload has no pull request number', async () => {
    const promise = runActionMode(inputs({}), clients, deps(prEnv({ action: 'opened' })))
    await expect(promise).rejects.toThrow('has no pull_request with a number and a head.sha')
    expect(s3Mock.calls()).toHaveLength(0)
  })
})
