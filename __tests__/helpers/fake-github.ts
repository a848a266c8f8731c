/**
 * A local stand-in for the part of GitHub's REST API that the preview comment uses: listing,
 * creating and editing issue comments. Point GITHUB_API_URL (or createGitHubClient's env) at
 * `apiUrl`. It answers as api.github.com does: JSON bodies with `message`, `documentation_url`
 * and `status`, `per_page`/`page` pagination with a `Link` header whose URLs use the
 * `/repositories/<id>/…` form GitHub sends, 422 for bodies over 65,536 characters. Every request
 * is recorded (method, path, query, JSON body, Authorization header, status answered), and
 * faults can be set per route: the 403 a fork's read-only token gets, 401, 404, rate limits,
 * server errors (optionally after the write was applied), reset connections and stalls.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface FakeUser {
  login: string
  id: number
  type: 'Bot' | 'User'
}

export interface FakeComment {
  id: number
  node_id: string
  url: string
  html_url: string
  issue_url: string
  body: string
  user: FakeUser
  created_at: string
  updated_at: string
  author_association: string
}

export type FakeRoute = 'list-comments' | 'create-comment' | 'update-comment'

export interface RecordedRequest {
  method: string
  /** Without the base path or the query, e.g. `/repos/o/r/issues/7/comments`. */
  path: string
  query: Record<string, string>
  /** Parsed JSON, or the raw text when it is not JSON; undefined without a body. */
  body?: unknown
  authorization?: string
  route?: FakeRoute
  /** 0 when the connection was reset. */
  status: number
}

export type FakeFailure =
  /** 403 "Resource not accessible by integration", as for a fork PR's read-only token. */
  | 'forbidden'
  /** 401 "Bad credentials". */
  | 'unauthorized'
  /** 404 "Not Found", as for a token that cannot see a private repository. */
  | 'not-found'
  /** 403 "API rate limit exceeded", with `x-ratelimit-remaining: 0`. */
  | 'rate-limited'
  /** 500 (or `status`) "Server Error". */
  | 'server-error'
  /** The connection is destroyed without an answer. */
  | 'reset'
  /** No answer at all, until the client gives up or the fake stops. */
  | 'stall'

export interface FaultRule {
  route: FakeRoute
  failure: FakeFailure
  /** Only the first N matching requests; default every one. */
  times?: number
  /** For `server-error`: the status to answer. */
  status?: number
  /** For writes: store the change, then answer with the failure (GitHub failed after saving). */
  afterWrite?: boolean
}

export interface StartFakeGitHubOptions {
  /** GitHub Enterprise Server serves the API under `/api/v3`; default none, as api.github.com. */
  basePath?: string
  /** When set, requests without `Authorization: token <it>` (or Bearer) get 401. */
  token?: string
  /** Author of the comments created through the API; default github-actions[bot]. */
  user?: FakeUser
}

export interface FakeGitHub {
  /** What GITHUB_API_URL would be, e.g. `http://127.0.0.1:41234` (plus the base path). */
  apiUrl: string
  /** Every request, in arrival order. */
  readonly requests: readonly RecordedRequest[]
  /** The comments of an issue or pull request, oldest first. */
  comments(owner: string, repo: string, number: number): FakeComment[]
  /** Adds comments directly (not recorded as requests); default author octocat. */
  seedComments(
    owner: string,
    repo: string,
    number: number,
    comments: Array<string | { body: string; user?: FakeUser }>
  ): FakeComment[]
  /** Adds a fault rule; the first matching rule with uses left applies. */
  fail(rule: FaultRule): void
  /** Forgets comments, requests and faults. */
  reset(): void
  stop(): Promise<void>
}

export const GITHUB_ACTIONS_BOT: FakeUser = {
  login: 'github-actions[bot]',
  id: 41898282,
  type: 'Bot'
}
export const OCTOCAT: FakeUser = { login: 'octocat', id: 583231, type: 'User' }

const MAX_BODY = 65_536
const DOCS = 'https://docs.github.com/rest/issues/comments'
const DOC_ANCHORS: Record<FakeRoute, string> = {
  'list-comments': '#list-issue-comments',
  'create-comment': '#create-an-issue-comment',
  'update-comment': '#update-an-issue-comment'
}
const PERMISSIONS: Record<FakeRoute, string> = {
  'list-comments': 'issues=read; pull_requests=read',
  'create-comment': 'issues=write; pull_requests=write',
  'update-comment': 'issues=write; pull_requests=write'
}

interface Answer {
  status: number
  body: unknown
  headers?: Record<string, string>
}

function errorAnswer(
  status: number,
  message: string,
  documentationUrl: string,
  extra?: object
): Answer {
  return {
    status,
    body: { message, ...extra, documentation_url: documentationUrl, status: String(status) }
  }
}

function failureAnswer(rule: FaultRule): Answer | 'reset' | 'stall' {
  const docs = `${DOCS}${DOC_ANCHORS[rule.route]}`
  switch (rule.failure) {
    case 'forbidden':
      return {
        ...errorAnswer(403, 'Resource not accessible by integration', docs),
        headers: { 'x-accepted-github-permissions': PERMISSIONS[rule.route] }
      }
    case 'unauthorized':
      return errorAnswer(401, 'Bad credentials', 'https://docs.github.com/rest')
    case 'not-found':
      return errorAnswer(404, 'Not Found', docs)
    case 'rate-limited':
      return {
        ...errorAnswer(
          403,
          'API rate limit exceeded for installation ID 1234567. If you reach out to GitHub Support for help, please include the request ID.',
          'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api'
        ),
        headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-limit': '5000' }
      }
    case 'server-error':
      return { status: rule.status ?? 500, body: { message: 'Server Error' } }
    case 'reset':
    case 'stall':
      return rule.failure
  }
}

function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** Starts the fake on a free loopback port. */
export async function startFakeGitHub(opts: StartFakeGitHubOptions = {}): Promise<FakeGitHub> {
  const basePath = (opts.basePath ?? '').replace(/\/+$/, '')
  const author = opts.user ?? GITHUB_ACTIONS_BOT
  const requests: RecordedRequest[] = []
  const threads = new Map<string, FakeComment[]>()
  const repoIds = new Map<string, number>()
  let rules: Array<FaultRule & { used: number }> = []
  let nextCommentId = 1_000_001
  let origin = ''

  const repoKey = (owner: string, repo: string): string => `${owner}/${repo}`.toLowerCase()
  const repoId = (owner: string, repo: string): number => {
    const key = repoKey(owner, repo)
    if (!repoIds.has(key)) repoIds.set(key, 900_000 + repoIds.size + 1)
    return repoIds.get(key) as number
  }
  const threadOf = (owner: string, repo: string, number: number): FakeComment[] => {
    repoId(owner, repo)
    const key = `${repoKey(owner, repo)}#${number}`
    if (!threads.has(key)) threads.set(key, [])
    return threads.get(key) as FakeComment[]
  }
  const newComment = (
    owner: string,
    repo: string,
    number: number,
    body: string,
    user: FakeUser
  ): FakeComment => {
    const id = nextCommentId++
    const now = isoSeconds(new Date())
    const comment: FakeComment = {
      id,
      node_id: `IC_fake${id}`,
      url: `${origin}${basePath}/repos/${owner}/${repo}/issues/comments/${id}`,
      html_url: `https://github.com/${owner}/${repo}/pull/${number}#issuecomment-${id}`,
      issue_url: `${origin}${basePath}/repos/${owner}/${repo}/issues/${number}`,
      body,
      user,
      created_at: now,
      updated_at: now,
      author_association: user.type === 'Bot' ? 'NONE' : 'OWNER'
    }
    threadOf(owner, repo, number).push(comment)
    return comment
  }

  const tooLong = (route: FakeRoute): Answer =>
    errorAnswer(422, 'Validation Failed', `${DOCS}${DOC_ANCHORS[route]}`, {
      errors: [
        {
          resource: 'IssueComment',
          code: 'unprocessable',
          field: 'data',
          message: `Body is too long (maximum is ${MAX_BODY} characters)`
        }
      ]
    })
  const invalidBody = (route: FakeRoute): Answer =>
    errorAnswer(422, 'Invalid request.\n\n"body" wasn\'t supplied.', `${DOCS}${DOC_ANCHORS[route]}`)
  const notFound = (): Answer => errorAnswer(404, 'Not Found', 'https://docs.github.com/rest')

  function list(thread: FakeComment[], query: Record<string, string>, linkBase: string): Answer {
    const perPage = Math.min(100, Math.max(1, Number(query.per_page) || 30))
    const page = Math.max(1, Number(query.page) || 1)
    const last = Math.max(1, Math.ceil(thread.length / perPage))
    const link = (p: number): string => `<${linkBase}?per_page=${perPage}&page=${p}>`
    const links: string[] = []
    if (page > 1) links.push(`${link(page - 1)}; rel="prev"`)
    if (page < last) links.push(`${link(page + 1)}; rel="next"`, `${link(last)}; rel="last"`)
    if (page > 1) links.push(`${link(1)}; rel="first"`)
    return {
      status: 200,
      body: thread.slice((page - 1) * perPage, page * perPage),
      headers: links.length > 0 ? { link: links.join(', ') } : {}
    }
  }

  /** The route, and the operation that answers it (run after the fault rules). */
  function route(
    method: string,
    path: string,
    query: Record<string, string>,
    body: unknown
  ): { route?: FakeRoute; run: () => Answer } {
    let m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(path)
    if (m && (method === 'GET' || method === 'POST')) {
      const [, owner, repo, num] = m.map(decodeURIComponent)
      const number = Number(num)
      if (method === 'GET') {
        const linkBase = `${origin}${basePath}/repositories/${repoId(owner, repo)}/issues/${number}/comments`
        return {
          route: 'list-comments',
          run: () => list(threadOf(owner, repo, number), query, linkBase)
        }
      }
      return {
        route: 'create-comment',
        run: () => {
          const text = (body as { body?: unknown } | undefined)?.body
          if (typeof text !== 'string') return invalidBody('create-comment')
          if (text.length > MAX_BODY) return tooLong('create-comment')
          return { status: 201, body: newComment(owner, repo, number, text, author) }
        }
      }
    }
    m = /^\/repositories\/(\d+)\/issues\/(\d+)\/comments$/.exec(path)
    if (m && method === 'GET') {
      const [, id, num] = m
      const key = [...repoIds].find(([, value]) => value === Number(id))?.[0]
      if (!key) return { run: notFound }
      const [owner, repo] = key.split('/')
      const linkBase = `${origin}${basePath}/repositories/${id}/issues/${num}/comments`
      return {
        route: 'list-comments',
        run: () => list(threadOf(owner, repo, Number(num)), query, linkBase)
      }
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/.exec(path)
    if (m && method === 'PATCH') {
      const [, owner, repo, id] = m.map(decodeURIComponent)
      return {
        route: 'update-comment',
        run: () => {
          const prefix = `${repoKey(owner, repo)}#`
          const comment = [...threads]
            .filter(([key]) => key.startsWith(prefix))
            .flatMap(([, thread]) => thread)
            .find((c) => c.id === Number(id))
          if (!comment) return notFound()
          const text = (body as { body?: unknown } | undefined)?.body
          if (typeof text !== 'string') return invalidBody('update-comment')
          if (text.length > MAX_BODY) return tooLong('update-comment')
          comment.body = text
          comment.updated_at = isoSeconds(new Date())
          return { status: 200, body: comment }
        }
      }
    }
    return { run: notFound }
  }

  function send(res: ServerResponse, answer: Answer): void {
    res.writeHead(answer.status, {
      'content-type': 'application/json; charset=utf-8',
      'x-github-request-id': `FAKE:${requests.length}`,
      ...answer.headers
    })
    res.end(JSON.stringify(answer.body))
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const raw = Buffer.concat(chunks).toString('utf8')
    let body: unknown
    if (raw) {
      try {
        body = JSON.parse(raw)
      } catch {
        body = raw
      }
    }
    const url = new URL(req.url ?? '/', 'http://fake')
    const method = req.method ?? 'GET'
    const path =
      basePath && url.pathname.startsWith(basePath + '/')
        ? url.pathname.slice(basePath.length)
        : basePath
          ? ''
          : url.pathname
    const record: RecordedRequest = {
      method,
      path: path || url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
      authorization: req.headers.authorization,
      status: 0
    }
    requests.push(record)

    const { route: name, run } = route(method, path, record.query, body)
    record.route = name
    const auth = req.headers.authorization ?? ''
    if (opts.token && auth !== `token ${opts.token}` && auth !== `Bearer ${opts.token}`) {
      const answer = errorAnswer(401, 'Bad credentials', 'https://docs.github.com/rest')
      record.status = answer.status
      return send(res, answer)
    }
    const rule = name && rules.find((r) => r.route === name && (r.times ?? Infinity) > r.used)
    let answer: Answer | 'reset' | 'stall'
    if (rule) {
      rule.used++
      if (rule.afterWrite) run()
      answer = failureAnswer(rule)
    } else {
      answer = run()
    }
    if (answer === 'reset') {
      req.socket.destroy()
      return
    }
    if (answer === 'stall') return
    record.status = answer.status
    send(res, answer)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' })
      res.end(JSON.stringify({ message: `fake-github: ${String(err)}` }))
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    apiUrl: `${origin}${basePath}`,
    requests,
    comments: (owner, repo, number) => [...threadOf(owner, repo, number)],
    seedComments: (owner, repo, number, comments) =>
      comments.map((c) =>
        typeof c === 'string'
          ? newComment(owner, repo, number, c, OCTOCAT)
          : newComment(owner, repo, number, c.body, c.user ?? OCTOCAT)
      ),
    fail: (rule) => {
      rules.push({ ...rule, used: 0 })
    },
    reset: () => {
      requests.length = 0
      threads.clear()
      rules = []
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      })
  }
}
