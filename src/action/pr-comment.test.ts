import { DeployError, InputError } from '../common/errors.js'
import {
  MAX_COMMENT_LENGTH,
  createGitHubClient,
  hasMarker,
  previewCommentBody,
  previewMarker,
  pullRequestFromEvent,
  removedCommentBody,
  upsertPreviewComment,
  type PreviewFile,
  type PullRequestContext,
  type UpsertOptions
} from './pr-comment.js'
import { validateCommentId } from '../inputs/parse.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import { OCTOCAT, startFakeGitHub, type FakeGitHub } from '../../__tests__/helpers/fake-github.js'

const TOKEN = 'ghs_fakeTokenValue0123456789'
const SHA = '0123456789abcdef0123456789abcdef01234567'
const pr: PullRequestContext = {
  eventName: 'pull_request',
  action: 'synchronize',
  owner: 'acme',
  repo: 'models',
  number: 42,
  headSha: SHA,
  fork: false,
  merged: false,
  repoUrl: 'https://github.com/acme/models',
  runUrl: 'https://github.com/acme/models/actions/runs/777'
}
const sha256 = (c: string): string => c.repeat(64)
const file = (relativePath: string, size: number, hex = 'a'): PreviewFile => ({
  relativePath,
  size,
  sha256: sha256(hex),
  url: `https://d111.cloudfront.net/pr-42/${relativePath.split('/').map(encodeURIComponent).join('/')}`
})
const at = new Date('2025-03-04T05:06:07.890Z')
const body = (files: PreviewFile[], extra: { commentId?: string } = {}): string =>
  previewCommentBody({
    pr,
    versionPrefix: 'pr-42',
    files,
    manifestUrl: 'https://d111.cloudfront.net/pr-42/manifest.json',
    updatedAt: at,
    ...extra
  })

let gh: FakeGitHub
beforeAll(async () => {
  gh = await startFakeGitHub({ token: TOKEN })
})
afterAll(() => gh.stop())
beforeEach(() => gh.reset())

const client = () => createGitHubClient(TOKEN, { GITHUB_API_URL: gh.apiUrl })
const noSleep = async (): Promise<void> => undefined
function options(extra: Partial<UpsertOptions> = {}) {
  const logger = silentLogger()
  return { logger, opts: { dryRun: false, logger, sleep: noSleep, ...extra } }
}
const writes = () => gh.requests.filter((r) => r.method !== 'GET')

describe('upsertPreviewComment against a fake GitHub', () => {
  it('creates one comment on the first run and edits that same comment on the next', async () => {
    const { logger, opts } = options()
    const first = await upsertPreviewComment(
      await client(),
      pr,
      body([file('model.onnx', 1536, 'b'), file('config.json', 300, 'c')]),
      opts
    )
    const [created] = gh.comments('acme', 'models', 42)
    expect(first).toEqual({
      action: 'created',
      url: created.html_url,
      message: `Commented ${created.html_url}.`
    })
    expect(gh.comments('acme', 'models', 42)).toHaveLength(1)
    expect(created.body.split('\n')[0]).toBe('<!-- model-cdn-deploy:preview -->')
    expect(created.body).toContain('### Model preview `pr-42`')
    expect(created.body).toContain(
      '| `model.onnx` | 1.5 KiB | `bbbbbbbbbbbb` | [link](<https://d111.cloudfront.net/pr-42/model.onnx>) |'
    )
    expect(created.body).toContain('| `config.json` | 300 B | `cccccccccccc` |')
    expect(created.body).toContain(
      `Built from [\`0123456\`](https://github.com/acme/models/pull/42/commits/${SHA})`
    )
    const post = gh.requests.find((r) => r.method === 'POST')
    expect(post).toMatchObject({
      path: '/repos/acme/models/issues/42/comments',
      authorization: `token ${TOKEN}`,
      status: 201
    })

    const firstRun = gh.requests.length
    const second = await upsertPreviewComment(
      await client(),
      pr,
      body([file('model-v2.onnx', 2048, 'd')]),
      opts
    )
    expect(second).toMatchObject({ action: 'updated', url: created.html_url })
    expect(gh.requests.slice(firstRun).map((r) => [r.method, r.path])).toEqual([
      ['GET', '/repos/acme/models/issues/42/comments'],
      ['PATCH', `/repos/acme/models/issues/comments/${created.id}`]
    ])
    const comments = gh.comments('acme', 'models', 42)
    expect(comments).toHaveLength(1)
    expect(comments[0].body).toContain('`model-v2.onnx`')
    expect(comments[0].body).not.toContain('`model.onnx`')
    expect(logger.warnings).toEqual([])
    // The token only ever travels in the Authorization header.
    expect(logger.lines.join('\n')).not.toContain(TOKEN)
  })

  it('finds its comment on page 3 of 250 by following the Link header', async () => {
    gh.seedComments(
      'acme',
      'models',
      42,
      Array.from({ length: 249 }, (_, i) => `comment ${i}`)
    )
    const [ours] = gh.seedComments('acme', 'models', 42, [
      { body: `${previewMarker()}\nold preview`, user: { login: 'bot', id: 1, type: 'Bot' } }
    ])
    const { opts } = options()
    const outcome = await upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), opts)
    expect(outcome).toMatchObject({ action: 'updated', url: ours.html_url })
    const reads = gh.requests.filter((r) => r.method === 'GET')
    expect(reads.map((r) => [r.path.replace(/\d{6}/, 'ID'), r.query])).toEqual([
      ['/repos/acme/models/issues/42/comments', { per_page: '100' }],
      ['/repositories/ID/issues/42/comments', { per_page: '100', page: '2' }],
      ['/repositories/ID/issues/42/comments', { per_page: '100', page: '3' }]
    ])
    expect(writes()).toHaveLength(1)
    expect(gh.comments('acme', 'models', 42)).toHaveLength(250)
    expect(gh.comments('acme', 'models', 42)[249].body).toContain('`a.bin`')
  })

  it('leaves comments with another marker, or quoting ours, alone', async () => {
    const seeded = gh.seedComments('acme', 'models', 42, [
      `${previewMarker('resnet')}\nresnet preview`,
      `How does this work? The action looks for\n${previewMarker()}`,
      `${previewMarker()} and text on the same line`
    ])
    const { opts } = options()
    const outcome = await upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), opts)
    expect(outcome.action).toBe('created')
    const comments = gh.comments('acme', 'models', 42)
    expect(comments).toHaveLength(4)
    expect(comments.slice(0, 3).map((c) => c.body)).toEqual(seeded.map((c) => c.body))

    // The step with its own id edits its own comment only.
    const resnet = body([file('r.bin', 2)], { commentId: 'resnet' })
    expect(await upsertPreviewComment(await client(), pr, resnet, opts)).toMatchObject({
      action: 'updated',
      url: seeded[0].html_url
    })
    expect(gh.comments('acme', 'models', 42)[3].body).toContain('`a.bin`')
  })

  it('edits the oldest marked comment when a race left two, whoever wrote them', async () => {
    const [oldest, newer] = gh.seedComments('acme', 'models', 42, [
      { body: `${previewMarker()}\r\nedited on github.com`, user: OCTOCAT },
      `${previewMarker()}\nduplicate`
    ])
    const { opts } = options()
    const outcome = await upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), opts)
    expect(outcome).toMatchObject({ action: 'updated', url: oldest.html_url })
    expect(gh.comments('acme', 'models', 42)[1].body).toBe(newer.body)
  })

  it('only warns when the token may not comment (a fork PR gets a read-only token)', async () => {
    gh.fail({ route: 'create-comment', failure: 'forbidden' })
    const { logger, opts } = options()
    const fork = { ...pr, fork: true }
    const outcome = await upsertPreviewComment(await client(), fork, body([file('a.bin', 1)]), opts)
    expect(outcome.action).toBe('failed')
    expect(outcome.url).toBeUndefined()
    expect(outcome.warning).toContain(
      'Could not create the preview comment on pull request #42 of acme/models: GitHub answered 403 (Resource not accessible by integration).'
    )
    expect(outcome.warning).toContain('comes from a fork')
    expect(outcome.warning).toContain('issues=write; pull_requests=write')
    expect(logger.warnings).toEqual([outcome.warning])
    // A permission problem is not retried.
    expect(gh.requests.filter((r) => r.method === 'POST')).toHaveLength(1)
    expect(gh.comments('acme', 'models', 42)).toHaveLength(0)
  })

  it.each([
    ['forbidden', 'update-comment', 'permissions: pull-requests: write'],
    ['unauthorized', 'list-comments', 'check `github-token`'],
    ['not-found', 'list-comments', 'without access to a private repository'],
    ['rate-limited', 'create-comment', 'rate limit']
  ] as const)('turns %s on %s into a warning', async (failure, route, hint) => {
    if (route === 'update-comment') gh.seedComments('acme', 'models', 42, [previewMarker()])
    gh.fail({ route, failure })
    const { logger, opts } = options()
    const outcome = await upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), opts)
    expect(outcome.action).toBe('failed')
    expect(outcome.warning).toContain(hint)
    expect(logger.warnings).toHaveLength(1)
    expect(gh.requests).toHaveLength(route === 'list-comments' ? 1 : 2)
  })

  it('retries a create that failed after GitHub stored it by editing, not duplicating', async () => {
    gh.fail({ route: 'create-comment', failure: 'server-error', status: 502, afterWrite: true })
    const sleeps: number[] = []
    const { logger, opts } = options({
      sleep: async (ms) => void sleeps.push(ms),
      random: () => 0
    })
    const outcome = await upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), opts)
    expect(outcome.action).toBe('updated')
    expect(gh.comments('acme', 'models', 42)).toHaveLength(1)
    expect(gh.requests.map((r) => [r.method, r.status])).toEqual([
      ['GET', 200],
      ['POST', 502],
      ['GET', 200],
      ['PATCH', 200]
    ])
    expect(sleeps).toEqual([500])
    expect(logger.lines[0]).toMatch(
      /^Could not create the preview comment \(Server Error\); attempt 2 of 3/
    )
  })

  it('looks again when the comment vanished between listing and editing it', async () => {
    const [ours] = gh.seedComments('acme', 'models', 42, [previewMarker()])
    gh.fail({ route: 'update-comment', failure: 'not-found', times: 1 })
    const outcome = await upsertPreviewComment(
      await client(),
      pr,
      body([file('a.bin', 1)]),
      options().opts
    )
    expect(outcome).toMatchObject({ action: 'updated', url: ours.html_url })
    expect(gh.requests.map((r) => [r.method, r.status])).toEqual([
      ['GET', 200],
      ['PATCH', 404],
      ['GET', 200],
      ['PATCH', 200]
    ])
  })

  it('retries reset connections, and warns after the last attempt fails', async () => {
    gh.fail({ route: 'list-comments', failure: 'reset', times: 1 })
    const first = await upsertPreviewComment(
      await client(),
      pr,
      body([file('a.bin', 1)]),
      options().opts
    )
    expect(first.action).toBe('created')

    gh.reset()
    gh.fail({ route: 'list-comments', failure: 'server-error' })
    const { logger, opts } = options()
    const outcome = await upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), opts)
    expect(outcome.action).toBe('failed')
    expect(outcome.warning).toContain('GitHub answered 500 (Server Error)')
    expect(outcome.warning).toContain('Gave up after 3 attempt(s).')
    expect(gh.requests).toHaveLength(3)
    expect(logger.warnings).toHaveLength(1)
  })

  it('gives up on a request that hangs, after its timeout', async () => {
    gh.fail({ route: 'list-comments', failure: 'stall' })
    const { opts } = options({ maxAttempts: 2, timeoutMs: 200 })
    const outcome = await upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), opts)
    expect(outcome.action).toBe('failed')
    expect(outcome.warning).toMatch(/the request failed: .*timeout.*Gave up after 2 attempt/)
    expect(gh.requests.map((r) => [r.method, r.status])).toEqual([
      ['GET', 0],
      ['GET', 0]
    ])
  })

  it('warns when GitHub cannot be reached', async () => {
    const closed = await startFakeGitHub()
    await closed.stop()
    const octokit = await createGitHubClient(TOKEN, { GITHUB_API_URL: closed.apiUrl })
    const { opts } = options({ maxAttempts: 2 })
    const outcome = await upsertPreviewComment(octokit, pr, body([file('a.bin', 1)]), opts)
    expect(outcome.action).toBe('failed')
    expect(outcome.warning).toMatch(/the request failed: .*ECONNREFUSED/)
  })

  it('writes nothing in a dry run and says what it would do', async () => {
    const { logger, opts } = options({ dryRun: true })
    const created = await upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), opts)
    expect(created).toEqual({
      action: 'skipped',
      message: 'Dry run: would comment on pull request #42 of acme/models.'
    })
    const [ours] = gh.seedComments('acme', 'models', 42, [previewMarker()])
    const updated = await upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), opts)
    expect(updated.message).toBe(`Dry run: would update the preview comment ${ours.html_url}.`)
    expect(writes()).toEqual([])
    expect(gh.comments('acme', 'models', 42)[0].body).toBe(previewMarker())
    expect(logger.lines).toEqual([created.message, updated.message])
  })

  it('updates the comment to say the preview was removed, and creates none without one', async () => {
    const removed = removedCommentBody({
      pr: { ...pr, action: 'closed', merged: true },
      versionPrefix: 'pr-42',
      deletedObjects: 12,
      deletedBytes: 3 * 1024 ** 3,
      removedAt: at
    })
    const { opts } = options({ create: false })
    const none = await upsertPreviewComment(await client(), pr, removed, opts)
    expect(none).toEqual({
      action: 'skipped',
      message: 'Pull request #42 has no preview comment to update.'
    })
    expect(writes()).toEqual([])

    await upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), options().opts)
    const outcome = await upsertPreviewComment(await client(), pr, removed, opts)
    expect(outcome.action).toBe('updated')
    expect(gh.comments('acme', 'models', 42).map((c) => c.body)).toEqual([removed])
  })

  it('stops with a DeployError when the run is cancelled', async () => {
    const controller = new AbortController()
    controller.abort(new Error('cancelled'))
    const { logger, opts } = options({ signal: controller.signal })
    await expect(
      upsertPreviewComment(await client(), pr, body([file('a.bin', 1)]), opts)
    ).rejects.toThrow(DeployError)
    expect(logger.warnings).toEqual([])
    expect(writes()).toEqual([])
  })

  it('accepts only bodies that start with the marker', async () => {
    await expect(
      upsertPreviewComment(await client(), pr, 'no marker', options().opts)
    ).rejects.toThrow(TypeError)
  })
})

describe('createGitHubClient', () => {
  it('talks to GITHUB_API_URL with its base path, as on GitHub Enterprise Server', async () => {
    const ghes = await startFakeGitHub({ basePath: '/api/v3', token: TOKEN })
    try {
      const octokit = await createGitHubClient(` ${TOKEN}\n`, { GITHUB_API_URL: `${ghes.apiUrl}/` })
      const outcome = await upsertPreviewComment(
        octokit,
        pr,
        body([file('a.bin', 1)]),
        options().opts
      )
      expect(outcome.action).toBe('created')
      expect(ghes.apiUrl).toMatch(/\/api\/v3$/)
      expect(ghes.requests.map((r) => [r.method, r.path, r.status])).toEqual([
        ['GET', '/repos/acme/models/issues/42/comments', 200],
        ['POST', '/repos/acme/models/issues/42/comments', 201]
      ])
    } finally {
      await ghes.stop()
    }
  })

  it('refuses an empty token with what to do', async () => {
    await expect(createGitHubClient('  ', {})).rejects.toThrow(InputError)
    await expect(createGitHubClient('', {})).rejects.toThrow(/github-token` is empty/)
  })
})

describe('previewCommentBody', () => {
  it('shows the files, the manifest, the commit, the run and the time', () => {
    const text = previewCommentBody({
      pr,
      versionPrefix: 'pr-42',
      commentId: 'resnet',
      files: [file('weights/model.onnx', 5 * 1024 ** 3)],
      manifestUrl: 'https://d111.cloudfront.net/pr-42/manifest.json',
      updatedAt: at
    })
    expect(text).toBe(
      [
        '<!-- model-cdn-deploy:preview:resnet -->',
        '### Model preview `pr-42` (`resnet`)',
        '',
        '1 file(s), 5.0 GiB, under `pr-42/`.',
        '',
        '| File | Size | SHA-256 | URL |',
        '| --- | ---: | --- | --- |',
        '| `weights/model.onnx` | 5.0 GiB | `aaaaaaaaaaaa` | [link](<https://d111.cloudfront.net/pr-42/weights/model.onnx>) |',
        '',
        'Manifest: [`pr-42/manifest.json`](<https://d111.cloudfront.net/pr-42/manifest.json>)',
        '',
        `Built from [\`0123456\`](https://github.com/acme/models/pull/42/commits/${SHA}) · ` +
          '[workflow run](https://github.com/acme/models/actions/runs/777) · updated 2025-03-04 05:06:07 UTC'
      ].join('\n')
    )
  })

  it('escapes file names so they cannot break the table or render as markdown', () => {
    const names = [
      'a|b.bin',
      'tick`s.bin',
      '`edge`',
      '<img src=x>.bin',
      'line\nbreak.bin',
      '@octocat *x*',
      'x\\|y.bin'
    ]
    const text = body(names.map((n) => file(n, 1)))
    const rows = text.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| File'))
    expect(rows.slice(1).map((r) => r.split(' | ')[0])).toEqual([
      '| `a\\|b.bin`',
      '| ``tick`s.bin``',
      '| `` `edge` ``',
      '| `<img src=x>.bin`',
      '| `line\u240abreak.bin`',
      '| `@octocat *x*`',
      // GitHub takes `\\|` as an escaped pipe too, and removes one backslash: `x\|y.bin` again.
      '| `x\\\\|y.bin`'
    ])
    // Every row still has exactly its four cells: no unescaped `|` inside them.
    for (const row of rows) expect(row.split(/(?<!\\)\|/)).toHaveLength(6)
    // Link destinations cannot end early at a `)` or `>` of the URL.
    const odd = body([{ ...file('x', 1), url: 'https://cdn/pr-42/a(1)<b>|c d' }])
    expect(odd).toContain('[link](<https://cdn/pr-42/a%281%29%3Cb%3E%7Cc%20d>)')
  })

  it('leaves signed URLs out and says when they expire', () => {
    const text = previewCommentBody({
      pr,
      versionPrefix: 'pr-42',
      files: [file('model.onnx', 10)],
      manifestUrl: 'https://d111.cloudfront.net/pr-42/manifest.json?Signature=abc',
      signedUrlsExpireAt: new Date('2025-03-04T06:06:07Z'),
      updatedAt: at
    })
    expect(text).toContain('expire at 2025-03-04 06:06:07 UTC')
    expect(text).toContain('`signed-urls`')
    expect(text).toContain(
      '| File | Size | SHA-256 |\n| --- | ---: | --- |\n| `model.onnx` | 10 B | `aaaaaaaaaaaa` |\n'
    )
    expect(text).not.toContain('https://d111')
    expect(text).toContain('Manifest: `pr-42/manifest.json` (signed like the files).')
  })

  it('summarises the rows that do not fit in a GitHub comment', async () => {
    const files = Array.from({ length: 3000 }, (_, i) =>
      file(`shards/model-${String(i).padStart(5, '0')}-of-03000.safetensors`, 4 * 1024 ** 3)
    )
    const text = body(files)
    expect(text.length).toBeLessThanOrEqual(MAX_COMMENT_LENGTH)
    const shown = text.split('\n').filter((l) => l.startsWith('| `shards/')).length
    expect(shown).toBeGreaterThan(100)
    expect(text).toContain(`\n\n… and ${3000 - shown} more file(s) (see the manifest).\n`)
    expect(text.endsWith('updated 2025-03-04 05:06:07 UTC')).toBe(true)
    // As tight as the limit allows: one more row would not have fitted.
    const rowLength = text.split('\n').find((l) => l.startsWith('| `shards/'))?.length as number
    expect(text.length + rowLength + 1).toBeGreaterThan(MAX_COMMENT_LENGTH)
    // GitHub (here, the fake, which enforces the same limit) takes it.
    const outcome = await upsertPreviewComment(await client(), pr, text, options().opts)
    expect(outcome.action).toBe('created')

    const small = previewCommentBody({
      pr,
      versionPrefix: 'pr-42',
      files: files.slice(0, 5),
      updatedAt: at,
      maxLength: body([]).length + 600
    })
    expect(small).toMatch(/… and \d more file\(s\) \(see the step outputs\)\./)
    expect(body(files.slice(0, 5))).not.toContain('more file(s)')
  })

  it('says when nothing was published', () => {
    expect(body([])).toContain('No files were published.')
  })
})

describe('removedCommentBody', () => {
  it('names the prefix, the count, the size and the time', () => {
    const text = removedCommentBody({
      pr: { ...pr, action: 'closed', merged: false },
      versionPrefix: 'pr-42',
      commentId: 'resnet',
      deletedObjects: 3,
      deletedBytes: 2048,
      removedAt: at
    })
    expect(text).toBe(
      [
        '<!-- model-cdn-deploy:preview:resnet -->',
        '### Model preview `pr-42` (`resnet`) removed',
        '',
        'This preview was removed after the pull request was closed: 3 object(s) (2.0 KiB) under `pr-42/` were deleted.',
        '',
        '[workflow run](https://github.com/acme/models/actions/runs/777) · removed 2025-03-04 05:06:07 UTC'
      ].join('\n')
    )
    const empty = removedCommentBody({
      pr: { ...pr, action: 'closed', merged: true, runUrl: undefined },
      versionPrefix: 'pr-42',
      deletedObjects: 0,
      removedAt: at
    })
    expect(empty).toContain(
      'removed after the pull request was merged: nothing was left under `pr-42/`.'
    )
    expect(empty.endsWith('\nremoved 2025-03-04 05:06:07 UTC')).toBe(true)
  })
})

describe('markers', () => {
  it('keeps ids apart and refuses ids that could end the HTML comment', () => {
    expect(previewMarker()).toBe('<!-- model-cdn-deploy:preview -->')
    expect(previewMarker(' bert/base ')).toBe('<!-- model-cdn-deploy:preview:bert/base -->')
    expect(hasMarker(`${previewMarker('a')}\nx`, previewMarker())).toBe(false)
    expect(hasMarker(`${previewMarker()}\r\nx`, previewMarker())).toBe(true)
    expect(hasMarker(null, previewMarker())).toBe(false)
    expect(validateCommentId('resnet-50_v2')).toBe('resnet-50_v2')
    for (const bad of ['', 'a--b', 'a>b', 'two words', 'x'.repeat(101)]) {
      expect(() => validateCommentId(bad)).toThrow(InputError)
    }
  })
})

describe('pullRequestFromEvent', () => {
  const payload = (over: object = {}, prOver: object = {}) =>
    JSON.stringify({
      action: 'opened',
      number: 42,
      repository: { name: 'models', full_name: 'acme/models', owner: { login: 'acme' } },
      ...over,
      pull_request: {
        number: 42,
        merged: false,
        head: {
          sha: SHA,
          repo: { name: 'models', full_name: 'acme/models', owner: { login: 'acme' } }
        },
        base: { repo: { name: 'models', full_name: 'acme/models', owner: { login: 'acme' } } },
        ...prOver
      }
    })
  const env = (eventName: string) => ({
    GITHUB_EVENT_NAME: eventName,
    GITHUB_EVENT_PATH: '/event.json',
    GITHUB_REPOSITORY: 'acme/models',
    GITHUB_SERVER_URL: 'https://ghe.example.com',
    GITHUB_RUN_ID: '777',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_SHA: 'ffffffffffffffffffffffffffffffffffffffff'
  })
  const read = (text: string) => (path: string) => {
    expect(path).toBe('/event.json')
    return text
  }

  it('reads a pull_request event: number, base repository, head sha, action', () => {
    expect(pullRequestFromEvent(env('pull_request'), read(payload()))).toEqual({
      eventName: 'pull_request',
      action: 'opened',
      owner: 'acme',
      repo: 'models',
      number: 42,
      headSha: SHA,
      fork: false,
      merged: false,
      repoUrl: 'https://ghe.example.com/acme/models',
      runUrl: 'https://ghe.example.com/acme/models/actions/runs/777'
    })
  })

  it('reads pull_request_target, forks, closed and merged PRs, and re-run attempts', () => {
    const fork = {
      sha: SHA,
      repo: { name: 'models', full_name: 'someone/models', owner: { login: 'someone' } }
    }
    const parsed = pullRequestFromEvent(
      { ...env('pull_request_target'), GITHUB_RUN_ATTEMPT: '2' },
      read(payload({ action: 'closed' }, { head: fork, merged: true }))
    )
    expect(parsed).toMatchObject({
      eventName: 'pull_request_target',
      action: 'closed',
      owner: 'acme',
      fork: true,
      merged: true,
      runUrl: 'https://ghe.example.com/acme/models/actions/runs/777/attempts/2'
    })
    const deletedFork = pullRequestFromEvent(
      env('pull_request'),
      read(payload({}, { head: { sha: SHA, repo: null } }))
    )
    expect(deletedFork?.fork).toBe(true)
    const sameRepoOtherCase = pullRequestFromEvent(
      env('pull_request'),
      read(payload({}, { head: { sha: SHA, repo: { full_name: 'ACME/Models' } } }))
    )
    expect(sameRepoOtherCase?.fork).toBe(false)
  })

  it('is undefined for other events and does not read the payload', () => {
    const never = () => {
      throw new Error('read')
    }
    expect(pullRequestFromEvent(env('push'), never)).toBeUndefined()
    expect(pullRequestFromEvent({}, never)).toBeUndefined()
  })

  it('explains a missing or broken payload', () => {
    expect(() => pullRequestFromEvent({ GITHUB_EVENT_NAME: 'pull_request' })).toThrow(
      /GITHUB_EVENT_PATH is not set/
    )
    expect(() => pullRequestFromEvent(env('pull_request'), read('{not json'))).toThrow(
      /at \/event.json could not be read/
    )
    expect(() => pullRequestFromEvent(env('pull_request'), read('{"action":"opened"}'))).toThrow(
      DeployError
    )
  })
})
