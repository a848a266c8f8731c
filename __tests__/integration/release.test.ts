/**
 * Issue 6 end to end: the committed dist/index.js, run as a GitHub runner runs it, against its own
 * moto_server (S3 + CloudFront) and a fake GitHub REST API (GITHUB_API_URL). Release channels
 * (v1 then v2 behind `latest`), rollback with `mode: promote`, pull request previews with a sticky
 * comment and preview tags, and their clean-up. Every scenario checks what S3 and CloudFront
 * stored and what the fake was asked, not only what the action printed. They build on each other,
 * in order.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import {
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client
} from '@aws-sdk/client-s3'
import type { World } from '../../scripts/lib/emulator.mjs'
import {
  getStored,
  listInvalidations,
  listKeys,
  sha256,
  versionSnapshot,
  type StoredInvalidation
} from '../helpers/emulator-state.js'
import { startFakeGitHub, type FakeComment, type FakeGitHub } from '../helpers/fake-github.js'
import { startTestWorld, writeFiles, type TestWorld } from '../helpers/emulator-world.js'
import {
  expectFailure,
  expectSuccess,
  runAction,
  type RunActionResult
} from '../helpers/run-action.js'

const BUCKET = 'model-cdn-release'
const OWNER = 'acme'
const REPO = 'models'
const VERSION_CACHE_CONTROL = 'public, max-age=31536000, immutable'
/** Not the default, so the copies prove the input reached them. */
const ALIAS_CACHE_CONTROL = 'public, max-age=42'
const TOKEN = 'ghs_release0test0token0AbCdEf0123456789'
const PREVIEW_TAG = { Key: 'model-cdn-deploy:preview', Value: 'true' }
const MARKER = '<!-- model-cdn-deploy:preview -->'

type Files = Record<string, Buffer>

const V1: Files = {
  'model.onnx': randomBytes(48 * 1024),
  'tokenizer.json': Buffer.from(JSON.stringify({ vocab: { a: 1, b: 2 } })),
  'configs/日本語 config.json': Buffer.from(JSON.stringify({ layers: 12, note: 'ünïcode' })),
  'only-in-v1.bin': randomBytes(3000)
}
const V2: Files = {
  'model.onnx': randomBytes(48 * 1024),
  'tokenizer.json': V1['tokenizer.json'],
  'configs/日本語 config.json': V1['configs/日本語 config.json'],
  'new in v2.bin': randomBytes(2000)
}
const PR7_FIRST: Files = {
  'model.onnx': randomBytes(20 * 1024),
  'labels.txt': Buffer.from('cat\ndog\n')
}
/** The same paths with other bytes: a later push to the pull request. */
const PR7_SECOND: Files = {
  'model.onnx': randomBytes(20 * 1024),
  'labels.txt': Buffer.from('cat\ndog\nbird\n')
}
const PR8: Files = { 'model.onnx': randomBytes(4 * 1024) }

let moto: TestWorld | undefined
let github: FakeGitHub | undefined
let world: World
let s3: S3Client
let cloudfront: CloudFrontClient
let temp: string
let emptyWorkspace: string
let workspaces = 0

/** A workspace holding `files` under `models/`. */
async function workspaceWith(files: Files): Promise<string> {
  const dir = join(temp, `workspace-${++workspaces}`)
  await writeFiles(join(dir, 'models'), files)
  return dir
}

/** The environment of a `pull_request` run: the event payload as the runner writes it. */
async function pullRequestEnv(
  number: number,
  action: string,
  headSha: string
): Promise<Record<string, string>> {
  const repo = { name: REPO, full_name: `${OWNER}/${REPO}`, owner: { login: OWNER } }
  const payload = {
    action,
    number,
    pull_request: {
      number,
      state: action === 'closed' ? 'closed' : 'open',
      merged: false,
      head: { ref: `feature-${number}`, sha: headSha, repo },
      base: { ref: 'main', sha: randomBytes(20).toString('hex'), repo }
    },
    repository: repo
  }
  const path = join(temp, `event-${number}-${action}-${headSha.slice(0, 7)}.json`)
  await writeFile(path, JSON.stringify(payload))
  return {
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_EVENT_PATH: path,
    GITHUB_REF: `refs/pull/${number}/merge`,
    GITHUB_REF_NAME: `${number}/merge`,
    GITHUB_HEAD_REF: `feature-${number}`,
    GITHUB_BASE_REF: 'main'
  }
}

/** One step of a workflow: every test changes only what it is about. */
function run(
  cwd: string,
  inputs: Record<string, string | number | boolean | undefined>,
  env: Record<string, string> = {}
): Promise<RunActionResult> {
  return runAction({
    cwd,
    endpoint: moto!.emulator.endpoint,
    githubToken: TOKEN,
    env: {
      GITHUB_API_URL: github!.apiUrl,
      GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
      ...env
    },
    inputs: {
      bucket: BUCKET,
      'distribution-id': world.distributionId,
      // The emulator's CloudFront domain does not resolve (verify.test.ts verifies for real).
      verify: false,
      ...inputs
    }
  })
}

/** A deploy of `files` under `version`, moving `latest` to it. */
async function release(version: string, files: Files): Promise<RunActionResult> {
  return run(await workspaceWith(files), {
    artifacts: 'models/**',
    'version-prefix': version,
    alias: 'latest',
    'alias-cache-control': ALIAS_CACHE_CONTROL,
    // The same for both versions, so files with the same bytes stay the same alias objects.
    metadata: 'framework=onnx'
  })
}

function promote(version: string, inputs: Record<string, string | boolean> = {}) {
  return run(emptyWorkspace, {
    mode: 'promote',
    'version-prefix': version,
    alias: 'latest',
    'alias-cache-control': ALIAS_CACHE_CONTROL,
    ...inputs
  })
}

/** Every key under `<prefix>/`, all pages, sorted. */
const keysUnder = (prefix: string) => listKeys(s3, BUCKET, `${prefix}/`)

async function tagsOf(key: string): Promise<{ Key?: string; Value?: string }[]> {
  const { TagSet } = await s3.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: key }))
  return TagSet ?? []
}

/** Invalidations created since `known` was taken. */
async function invalidationsSince(known: StoredInvalidation[]): Promise<StoredInvalidation[]> {
  const ids = new Set(known.map((i) => i.id))
  return (await listInvalidations(cloudfront, world.distributionId)).filter((i) => !ids.has(i.id))
}

/** Snapshot entries under `prefix/`. */
function under(snapshot: Record<string, string[]>, prefix: string): Record<string, string[]> {
  return Object.fromEntries(Object.entries(snapshot).filter(([k]) => k.startsWith(`${prefix}/`)))
}

/** Snapshot entries outside `prefix/`: what a run must not have touched. */
function outside(snapshot: Record<string, string[]>, prefix: string): Record<string, string[]> {
  return Object.fromEntries(Object.entries(snapshot).filter(([k]) => !k.startsWith(`${prefix}/`)))
}

/**
 * `latest/` holds exactly the version's files (bytes, SHA-256 metadata, the version's other
 * metadata and content type, the alias cache-control) and a byte copy of its manifest.
 */
async function expectLatestIs(version: string, files: Files): Promise<void> {
  expect(await keysUnder('latest')).toEqual(
    [...Object.keys(files).map((p) => `latest/${p}`), 'latest/manifest.json'].sort()
  )
  for (const [path, bytes] of Object.entries(files)) {
    const copy = await getStored(s3, BUCKET, `latest/${path}`)
    const original = await getStored(s3, BUCKET, `${version}/${path}`)
    expect(copy.bytes.equals(bytes)).toBe(true)
    expect(copy.metadata['sha256']).toBe(sha256(bytes))
    expect(copy.metadata).toEqual(original.metadata)
    expect(copy.metadata['framework']).toBe('onnx')
    expect(copy.contentType).toBe(original.contentType)
    expect(copy.cacheControl).toBe(ALIAS_CACHE_CONTROL)
    expect(original.cacheControl).toBe(VERSION_CACHE_CONTROL)
  }
  const manifest = await getStored(s3, BUCKET, 'latest/manifest.json')
  const original = await getStored(s3, BUCKET, `${version}/manifest.json`)
  expect(manifest.bytes.equals(original.bytes)).toBe(true)
  expect(JSON.parse(manifest.bytes.toString('utf8')).versionPrefix).toBe(version)
  expect(manifest.cacheControl).toBe(ALIAS_CACHE_CONTROL)
}

/** The `alias-urls` output: every file of the version and the manifest, under latest/. */
function expectAliasUrls(r: RunActionResult, files: Files): void {
  const urls = JSON.parse(r.outputs['alias-urls']) as Record<string, string>
  expect(Object.keys(urls).sort()).toEqual([...Object.keys(files), 'manifest.json'].sort())
  for (const [path, url] of Object.entries(urls)) {
    const parsed = new URL(url)
    expect(parsed.origin).toBe(`https://${world.domain}`)
    expect(parsed.href).toBe(url)
    expect(decodeURIComponent(parsed.pathname)).toBe(`/latest/${path}`)
  }
}

/** The fake's requests from index `from` on. */
const requestsSince = (from: number) => github!.requests.slice(from)
const writes = (from: number) =>
  requestsSince(from).filter((r) => r.method === 'POST' || r.method === 'PATCH')

const thread = (number: number): FakeComment[] => github!.comments(OWNER, REPO, number)

beforeAll(async () => {
  moto = await startTestWorld({
    bucket: BUCKET,
    requireDist: true,
    workspacePrefix: 'model-cdn-release-'
  })
  // Each step gets its own workspace below this one; the event payloads are written here too.
  ;({ world, s3, cloudfront, workspace: temp } = moto)
  github = await startFakeGitHub({ token: TOKEN })
  emptyWorkspace = join(temp, 'empty')
  await mkdir(emptyWorkspace)
}, 60_000)

afterAll(async () => {
  await github?.stop()
  await moto?.stop()
})

describe('1. release with an alias', () => {
  it('deploys v1 with alias latest: latest is a copy of v1, nothing to invalidate', async () => {
    const r = await release('v1', V1)
    expectSuccess(r)
    await expectLatestIs('v1', V1)
    expectAliasUrls(r, V1)
    // Every key, under v1/ and under latest/, is new: no edge can hold an old copy.
    expect(await listInvalidations(cloudfront, world.distributionId)).toEqual([])
    expect(r.summary).toContain('`latest` pointed to nothing; it now points to `v1`.')
    // Not a pull request: no preview tag, no comment.
    expect(await tagsOf('v1/model.onnx')).toEqual([])
    expect(r.outputs['comment-url']).toBe('')
    expect(github!.requests).toEqual([])
  })

  it('deploys v2 with alias latest: the v1-only file leaves latest, one /latest/* invalidation', async () => {
    const before = await versionSnapshot(s3, BUCKET)
    const known = await listInvalidations(cloudfront, world.distributionId)
    const r = await release('v2', V2)
    expectSuccess(r)

    await expectLatestIs('v2', V2)
    await expect(
      s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'latest/only-in-v1.bin' }))
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } })
    // The version itself is immutable: v1 keeps its file.
    expect(
      (await getStored(s3, BUCKET, 'v1/only-in-v1.bin')).bytes.equals(V1['only-in-v1.bin'])
    ).toBe(true)
    const after = await versionSnapshot(s3, BUCKET)
    // Files with the same bytes and headers were not copied again; v1 was not touched.
    expect(after['latest/tokenizer.json']).toEqual(before['latest/tokenizer.json'])
    expect(after['latest/model.onnx']).toHaveLength(2)
    expect(under(after, 'v1')).toEqual(under(before, 'v1'))

    // Exactly one invalidation, for the alias: several alias paths changed, so one wildcard.
    const created = await invalidationsSince(known)
    expect(created).toHaveLength(1)
    expect(created[0].paths).toEqual(['/latest/*'])
    expect(created[0].status.toLowerCase()).toBe('completed')
    // The alias's invalidation is reported with the deploy's (which had none: v2 is new).
    expect(JSON.parse(r.outputs['invalidation-ids'])).toEqual([created[0].id])
    expect(r.outputs['invalidation-status']).toBe('Completed')

    expectAliasUrls(r, V2)
    expect(r.summary).toContain('`latest` pointed to `v1`; it now points to `v2`.')
    expect(r.summary).toContain('`/latest/*`')
  })
})

describe('2. rollback with mode: promote', () => {
  it('promotes v1 to latest again without uploading anything', async () => {
    const before = await versionSnapshot(s3, BUCKET)
    const known = await listInvalidations(cloudfront, world.distributionId)
    const r = await promote('v1')
    expectSuccess(r)

    // Nothing outside latest/ was written: no new object, no new version, under v1/ or v2/.
    expect(outside(await versionSnapshot(s3, BUCKET), 'latest')).toEqual(outside(before, 'latest'))
    await expectLatestIs('v1', V1)
    await expect(
      s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'latest/new in v2.bin' }))
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } })

    const created = await invalidationsSince(known)
    expect(created).toHaveLength(1)
    expect(created[0].paths).toEqual(['/latest/*'])
    expect(JSON.parse(r.outputs['invalidation-ids'])).toEqual([created[0].id])
    expect(r.outputs['invalidation-status']).toBe('Completed')
    expect(r.outputs['version-prefix']).toBe('v1')
    expectAliasUrls(r, V1)
    expect(r.summary).toContain('`latest` pointed to `v2`; it now points to `v1`.')
  })

  it('refuses to promote a prefix without a manifest, and changes nothing', async () => {
    // A version whose upload stopped before its manifest was written.
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'v9/model.onnx', Body: randomBytes(1024) })
    )
    const before = await versionSnapshot(s3, BUCKET)
    const known = await listInvalidations(cloudfront, world.distributionId)
    const r = await promote('v9')
    expectFailure(r)
    const error = r.errors.join('\n')
    expect(error).toContain('v9/manifest.json not found')
    expect(error).toContain('manifest: true')
    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
    expect(await invalidationsSince(known)).toEqual([])
    await expectLatestIs('v1', V1)
  })

  it('dry-run: true promote changes nothing', async () => {
    const before = await versionSnapshot(s3, BUCKET)
    const known = await listInvalidations(cloudfront, world.distributionId)
    const r = await promote('v2', { 'dry-run': true })
    expectSuccess(r)
    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
    expect(await invalidationsSince(known)).toEqual([])
    expect(JSON.parse(r.outputs['invalidation-ids'])).toEqual([])
    await expectLatestIs('v1', V1)
    expect(r.summary).toContain('Dry run')
    expect(r.summary).toContain('`latest` pointed to `v1`; it now would point to `v2`.')
  })
})

describe('3. pull request preview', () => {
  const firstSha = randomBytes(20).toString('hex')
  const secondSha = randomBytes(20).toString('hex')
  let commentUrl: string

  const deployPreview = async (files: Files, env: Record<string, string>, prefix = 'pr-7') =>
    run(
      await workspaceWith(files),
      { artifacts: 'models/**', 'version-prefix': prefix, overwrite: true },
      env
    )

  /** The comment names the prefix, every file with its short SHA-256, and the head commit. */
  function expectPreviewBody(body: string, files: Files, headSha: string): void {
    expect(body.split('\n')[0]).toBe(MARKER)
    expect(body).toContain('`pr-7`')
    for (const [path, bytes] of Object.entries(files)) {
      expect(body).toContain(`\`${path}\``)
      expect(body).toContain(`\`${sha256(bytes).slice(0, 12)}\``)
      expect(body).toContain(`https://${world.domain}/pr-7/${path}`)
    }
    expect(body).toContain(`[\`${headSha.slice(0, 7)}\`]`)
    expect(body).toContain(`/${OWNER}/${REPO}/pull/7/commits/${headSha}`)
  }

  it('a pull_request run publishes pr-7 with preview tags and creates one comment', async () => {
    const from = github!.requests.length
    const r = await deployPreview(PR7_FIRST, await pullRequestEnv(7, 'opened', firstSha))
    expectSuccess(r)

    for (const [path, bytes] of Object.entries(PR7_FIRST)) {
      expect((await getStored(s3, BUCKET, `pr-7/${path}`)).bytes.equals(bytes)).toBe(true)
    }
    const keys = await keysUnder('pr-7')
    expect(keys).toEqual(
      [...Object.keys(PR7_FIRST).map((p) => `pr-7/${p}`), 'pr-7/manifest.json'].sort()
    )
    // Every preview object, the manifest included, carries the tag a lifecycle rule expires.
    for (const key of keys) expect(await tagsOf(key)).toContainEqual(PREVIEW_TAG)

    const comments = thread(7)
    expect(comments).toHaveLength(1)
    expectPreviewBody(comments[0].body, PR7_FIRST, firstSha)
    // The preview is built from the PR's head, not from the merge commit in GITHUB_SHA.
    expect(comments[0].body).not.toContain(r.env['GITHUB_SHA'].slice(0, 7))
    commentUrl = comments[0].html_url
    expect(r.outputs['comment-url']).toBe(commentUrl)

    const posts = writes(from)
    expect(posts.map((q) => [q.method, q.path])).toEqual([
      ['POST', `/repos/${OWNER}/${REPO}/issues/7/comments`]
    ])
    for (const q of requestsSince(from)) expect(q.authorization).toBe(`token ${TOKEN}`)
    // The token reaches the log only in the command that masks it (the runner prints ***).
    expect(r.stdout).toContain(`::add-mask::${TOKEN}`)
    const printed = r.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::'))
    expect(printed.join('\n')).not.toContain(TOKEN)
    expect(r.stderr).not.toContain(TOKEN)
  })

  it('a second run on the pull request edits the same comment', async () => {
    const from = github!.requests.length
    const r = await deployPreview(PR7_SECOND, await pullRequestEnv(7, 'synchronize', secondSha))
    expectSuccess(r)
    for (const [path, bytes] of Object.entries(PR7_SECOND)) {
      expect((await getStored(s3, BUCKET, `pr-7/${path}`)).bytes.equals(bytes)).toBe(true)
    }

    const comments = thread(7)
    expect(comments).toHaveLength(1)
    expect(comments[0].html_url).toBe(commentUrl)
    expectPreviewBody(comments[0].body, PR7_SECOND, secondSha)
    expect(comments[0].body).not.toContain(firstSha.slice(0, 7))
    expect(comments[0].body).not.toContain(sha256(PR7_FIRST['model.onnx']).slice(0, 12))
    expect(writes(from).map((q) => [q.method, q.path])).toEqual([
      ['PATCH', `/repos/${OWNER}/${REPO}/issues/comments/${comments[0].id}`]
    ])
    expect(r.outputs['comment-url']).toBe(commentUrl)
  })

  it('a 403 from the comments API only warns: the preview is published, no comment', async () => {
    github!.fail({ route: 'create-comment', failure: 'forbidden', times: 1 })
    const from = github!.requests.length
    const r = await deployPreview(
      PR8,
      await pullRequestEnv(8, 'opened', randomBytes(20).toString('hex')),
      'pr-8'
    )
    expectSuccess(r)
    expect(r.stdout).toMatch(/^::warning::.*Resource not accessible by integration/m)
    expect(r.warnings.join('\n')).toContain('403')
    expect(r.outputs['comment-url']).toBe('')
    expect(thread(8)).toEqual([])
    expect(
      requestsSince(from)
        .filter((q) => q.method === 'POST')
        .map((q) => q.status)
    ).toEqual([403])
    expect(await keysUnder('pr-8')).toEqual(['pr-8/manifest.json', 'pr-8/model.onnx'])
    expect((await getStored(s3, BUCKET, 'pr-8/model.onnx')).bytes.equals(PR8['model.onnx'])).toBe(
      true
    )
  })
})

describe('4. clean-up', () => {
  it('removes every object under pr-7/ (not pr-70/), invalidates /pr-7/*, edits the comment', async () => {
    for (const key of ['pr-70/model.onnx', 'pr-70/labels.txt']) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: randomBytes(512) }))
    }
    const preview = await keysUnder('pr-7')
    expect(preview.length).toBeGreaterThan(0)
    const before = await versionSnapshot(s3, BUCKET)
    const known = await listInvalidations(cloudfront, world.distributionId)
    const [comment] = thread(7)
    const from = github!.requests.length

    const r = await run(
      emptyWorkspace,
      { mode: 'cleanup', 'version-prefix': 'pr-7' },
      await pullRequestEnv(7, 'closed', randomBytes(20).toString('hex'))
    )
    expectSuccess(r)

    expect(await keysUnder('pr-7')).toEqual([])
    expect(r.outputs['deleted']).toBe(String(preview.length))
    // Delete markers under pr-7/ only: pr-70/, versions and the alias are as they were.
    expect(outside(await versionSnapshot(s3, BUCKET), 'pr-7')).toEqual(outside(before, 'pr-7'))
    expect(await keysUnder('pr-70')).toEqual(['pr-70/labels.txt', 'pr-70/model.onnx'])

    const created = await invalidationsSince(known)
    expect(created).toHaveLength(1)
    expect(created[0].paths).toEqual(['/pr-7/*'])
    expect(JSON.parse(r.outputs['invalidation-ids'])).toEqual([created[0].id])

    const comments = thread(7)
    expect(comments).toHaveLength(1)
    expect(comments[0].id).toBe(comment.id)
    expect(comments[0].body.split('\n')[0]).toBe(MARKER)
    expect(comments[0].body).toContain('This preview was removed')
    expect(comments[0].body).toContain(`${preview.length} object(s)`)
    expect(comments[0].body).toContain('`pr-7/`')
    expect(comments[0].body).not.toContain(`https://${world.domain}/pr-7/`)
    expect(writes(from).map((q) => [q.method, q.path])).toEqual([
      ['PATCH', `/repos/${OWNER}/${REPO}/issues/comments/${comment.id}`]
    ])
    expect(r.outputs['comment-url']).toBe(comment.html_url)
  })

  it('refuses to clean up v2 while latest points to it, and deletes nothing', async () => {
    expectSuccess(await promote('v2'))
    await expectLatestIs('v2', V2)
    const before = await versionSnapshot(s3, BUCKET)
    const known = await listInvalidations(cloudfront, world.distributionId)

    const r = await run(emptyWorkspace, { mode: 'cleanup', 'version-prefix': 'v2' })
    expectFailure(r)
    const error = r.errors.join('\n')
    expect(error).toContain('latest')
    expect(error).toContain('mode: promote')
    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
    expect(await invalidationsSince(known)).toEqual([])
  })

  it('dry-run: true clean-up deletes nothing and writes no comment', async () => {
    const preview = await keysUnder('pr-8')
    const before = await versionSnapshot(s3, BUCKET)
    const known = await listInvalidations(cloudfront, world.distributionId)
    const from = github!.requests.length

    const r = await run(
      emptyWorkspace,
      { mode: 'cleanup', 'version-prefix': 'pr-8', 'dry-run': true },
      await pullRequestEnv(8, 'closed', randomBytes(20).toString('hex'))
    )
    expectSuccess(r)
    expect(r.outputs['deleted']).toBe(String(preview.length))
    expect(await versionSnapshot(s3, BUCKET)).toEqual(before)
    expect(await invalidationsSince(known)).toEqual([])
    expect(JSON.parse(r.outputs['invalidation-ids'])).toEqual([])
    expect(writes(from)).toEqual([])
    expect(r.outputs['comment-url']).toBe('')
    expect(r.summary).toContain('Dry run')
  })
})
