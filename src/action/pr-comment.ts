import { shortIntegrity } from '../common/integrity.js'
import type { S3Checksum } from '../common/types.js'
import { readFileSync } from 'node:fs'
import type * as ActionsGitHub from '@actions/github'
import { DeployError, InputError } from '../common/errors.js'
import { inlineCode } from '../report/markdown.js'
import { formatBytes } from '../common/progress.js'
import { retryWithBackoff, sleep as realSleep } from '../aws/retry.js'
import { redact } from '../common/secrets.js'
import type { Logger, Sleep } from '../common/types.js'
import { validateCommentId } from '../inputs/parse.js'

/**
 * The sticky pull-request comment of a preview deploy: built from the deploy's result, found
 * again on later runs by a hidden marker, and edited in place. Commenting is a convenience on
 * top of a deploy that has already succeeded, so no failure here throws: it becomes a warning.
 */

/** GitHub refuses comment bodies longer than this. */
export const MAX_COMMENT_LENGTH = 65_536
const MARKER_PREFIX = 'model-cdn-deploy:preview'

/** The pull request a run was triggered by, from the event payload. */
export interface PullRequestContext {
  eventName: 'pull_request' | 'pull_request_target'
  /** `opened`, `synchronize`, `reopened`, `closed`, … */
  action: string
  /** The base repository: where the pull request and its comments live. */
  owner: string
  repo: string
  number: number
  /** The PR's head commit, which the preview is built from (GITHUB_SHA is the merge commit). */
  headSha: string
  /** The head branch is in another repository (or a deleted one). */
  fork: boolean
  merged: boolean
  /** `${GITHUB_SERVER_URL}/${owner}/${repo}` */
  repoUrl: string
  /** This workflow run's page; undefined without GITHUB_RUN_ID. */
  runUrl?: string
}

interface RepoPayload {
  name?: string
  full_name?: string
  owner?: { login?: string }
}
interface PullRequestPayload {
  action?: string
  number?: number
  repository?: RepoPayload
  pull_request?: {
    number?: number
    merged?: boolean
    head?: { sha?: string; repo?: RepoPayload | null }
    base?: { repo?: RepoPayload }
  }
}

const PR_EVENTS = new Set(['pull_request', 'pull_request_target'])

/**
 * The pull request of a `pull_request`/`pull_request_target` run; undefined for other events.
 * Reads GITHUB_EVENT_PATH, since the head SHA and the fork flag are only in the payload.
 */
export function pullRequestFromEvent(
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8')
): PullRequestContext | undefined {
  const eventName = env.GITHUB_EVENT_NAME ?? ''
  if (!PR_EVENTS.has(eventName)) return undefined
  const where = env.GITHUB_EVENT_PATH
  const broken = (what: string): DeployError =>
    new DeployError(
      `The ${eventName} event payload ${where ? `at ${where} ` : ''}${what}.`,
      'The runner writes it for every job (GITHUB_EVENT_PATH): run the action as a step of a workflow the pull_request event triggered (it is read to tag preview objects and to comment).'
    )
  if (!where) throw broken('is missing: GITHUB_EVENT_PATH is not set')
  let payload: PullRequestPayload
  try {
    payload = JSON.parse(readFile(where)) as PullRequestPayload
  } catch (err) {
    throw broken(`could not be read: ${err instanceof Error ? err.message : String(err)}`)
  }
  const pr = payload.pull_request
  const number = pr?.number ?? payload.number
  const headSha = pr?.head?.sha
  if (!pr || !Number.isInteger(number) || (number as number) < 1 || !headSha) {
    throw broken('has no pull_request with a number and a head.sha')
  }

  const base = pr.base?.repo ?? payload.repository
  const [envOwner, envRepo] = (env.GITHUB_REPOSITORY ?? '').split('/')
  const owner = base?.owner?.login ?? envOwner
  const repo = base?.name ?? envRepo
  if (!owner || !repo) throw broken('names no repository, and GITHUB_REPOSITORY is not set')
  const baseName = `${owner}/${repo}`.toLowerCase()
  // head.repo is null when the fork was deleted; a same-repo PR has the base's full name.
  const headName = pr.head?.repo?.full_name?.toLowerCase()
  const serverUrl = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '')
  const repoUrl = `${serverUrl}/${owner}/${repo}`
  return {
    eventName: eventName as PullRequestContext['eventName'],
    action: payload.action ?? '',
    owner,
    repo,
    number: number as number,
    headSha,
    fork: headName !== baseName,
    merged: pr.merged === true,
    repoUrl,
    runUrl: runUrl(env, serverUrl)
  }
}

function runUrl(env: NodeJS.ProcessEnv, serverUrl: string): string | undefined {
  if (!env.GITHUB_RUN_ID || !env.GITHUB_REPOSITORY) return undefined
  const url = `${serverUrl}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
  const attempt = Number(env.GITHUB_RUN_ATTEMPT)
  return attempt > 1 ? `${url}/attempts/${attempt}` : url
}

/** The hidden first line that marks our comment: one per PR, or one per id. */
export function previewMarker(id?: string): string {
  return id ? `<!-- ${MARKER_PREFIX}:${validateCommentId(id)} -->` : `<!-- ${MARKER_PREFIX} -->`
}

/**
 * True when the comment is the one this marker names. The marker must be the whole first line:
 * a comment that quotes or discusses the marker elsewhere is a person's, not ours, and the exact
 * match keeps `…:preview` and `…:preview:resnet` apart. Bodies edited on github.com use CRLF.
 */
export function hasMarker(body: string | null | undefined, marker: string): boolean {
  return (body ?? '').split(/\r?\n/, 1)[0].trim() === marker
}

/** A table cell: GitHub splits cells on `|` before it parses code spans, so escape them. */
function cell(markdown: string): string {
  return markdown.replace(/\|/g, '\\|')
}

/** A link destination GitHub cannot misread: no spaces, brackets, angle brackets or pipes. */
function href(url: string): string {
  return url.replace(
    /[\s()<>|]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`
  )
}

/** `2024-05-01 12:34:56 UTC` */
function utc(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`
}

export interface PreviewFile {
  relativePath: string
  size: number
  sha256?: string
  checksum?: S3Checksum
  url: string
}

interface CommentCommon {
  pr: PullRequestContext
  versionPrefix: string
  /** Keeps one comment per id in a PR (see previewMarker). */
  commentId?: string
}

export interface PreviewBodyInput extends CommentCommon {
  files: readonly PreviewFile[]
  /** Undefined when no manifest was written. */
  manifestUrl?: string
  /**
   * Set when the URLs are signed: they are left out (anyone who can read the PR could use
   * them) and the comment says when they expire and where to find them.
   */
  signedUrlsExpireAt?: Date
  updatedAt: Date
  /** For tests; GitHub's limit otherwise. */
  maxLength?: number
}

function title(input: CommentCommon, suffix = ''): string {
  const id = input.commentId ? ` (${inlineCode(input.commentId)})` : ''
  return `### Model preview ${inlineCode(input.versionPrefix)}${id}${suffix}`
}

/** The comment of a published preview; rows beyond GitHub's length limit are summarised. */
export function previewCommentBody(input: PreviewBodyInput): string {
  const { files } = input
  const signed = input.signedUrlsExpireAt !== undefined
  const head = previewHead(input)
  const tail = previewTail(input, signed)
  if (files.length === 0) return [...head, 'No files were published.', ...tail].join('\n')
  const header = signed
    ? ['| File | Size | SHA-256 |', '| --- | ---: | --- |']
    : ['| File | Size | SHA-256 | URL |', '| --- | ---: | --- | --- |']
  const rows = files.map((f) => fileRow(f, signed))
  const where = input.manifestUrl !== undefined ? 'the manifest' : 'the step outputs'
  const note = (n: number): string => `… and ${n} more file(s) (see ${where}).`
  // The blank line ends the table: a text line right after it would become a row.
  const join = (kept: string[], extra?: string): string =>
    [...head, ...header, ...kept, ...(extra ? ['', extra] : []), ...tail].join('\n')
  return fitRows(rows, join, note, input.maxLength ?? MAX_COMMENT_LENGTH)
}

/** Marker, title, the totals line and, for signed URLs, why they are not shown. */
function previewHead(input: PreviewBodyInput): string[] {
  const { files } = input
  const total = files.reduce((sum, f) => sum + f.size, 0)
  const head = [
    previewMarker(input.commentId),
    title(input),
    '',
    `${files.length} file(s), ${formatBytes(total)}, under ${inlineCode(`${input.versionPrefix}/`)}.`,
    ''
  ]
  if (input.signedUrlsExpireAt !== undefined) {
    head.push(
      `> The URLs are signed and expire at ${utc(input.signedUrlsExpireAt)}. They are not ` +
        'shown here, since anyone who can read this pull request could use them: take them from ' +
        'the step output `signed-urls`.',
      ''
    )
  }
  return head
}

function fileRow(f: PreviewFile, signed: boolean): string {
  const cells = [
    cell(inlineCode(f.relativePath)),
    formatBytes(f.size),
    inlineCode(shortIntegrity(f))
  ]
  if (!signed) cells.push(`[link](<${href(f.url)}>)`)
  return `| ${cells.join(' | ')} |`
}

/** The manifest's link, if one was written, and the commit, run and time the preview is of. */
function previewTail(input: PreviewBodyInput, signed: boolean): string[] {
  const { pr } = input
  const manifestKey = `${input.versionPrefix}/manifest.json`
  const tail = ['']
  if (input.manifestUrl !== undefined) {
    tail.push(
      signed
        ? `Manifest: ${inlineCode(manifestKey)} (signed like the files).`
        : `Manifest: [${inlineCode(manifestKey)}](<${href(input.manifestUrl)}>)`,
      ''
    )
  }
  const shortSha = pr.headSha.slice(0, 7)
  tail.push(
    [
      `Built from [${inlineCode(shortSha)}](${pr.repoUrl}/pull/${pr.number}/commits/${pr.headSha})`,
      ...(pr.runUrl ? [`[workflow run](${pr.runUrl})`] : []),
      `updated ${utc(input.updatedAt)}`
    ].join(' · ')
  )
  return tail
}

/** The whole table if it fits in `max`, else as many rows as fit followed by a note. */
function fitRows(
  rows: string[],
  join: (kept: string[], extra?: string) => string,
  note: (n: number) => string,
  max: number
): string {
  const full = join(rows)
  if (full.length <= max) return full
  // Row by row while the rest, including the longest note it could need, still fits.
  let used = join([], note(rows.length)).length
  const kept: string[] = []
  for (const row of rows) {
    if (used + 1 + row.length > max) break
    kept.push(row)
    used += row.length + 1
  }
  return join(kept, note(rows.length - kept.length))
}

export interface RemovedBodyInput extends CommentCommon {
  deletedObjects: number
  /** Undefined when the clean-up does not count them. */
  deletedBytes?: number
  removedAt: Date
}

/** The comment once the preview's objects are deleted (clean-up mode). */
export function removedCommentBody(input: RemovedBodyInput): string {
  const { pr } = input
  const after = pr.merged
    ? 'after the pull request was merged'
    : pr.action === 'closed'
      ? 'after the pull request was closed'
      : ''
  const what =
    input.deletedObjects === 0
      ? `nothing was left under ${inlineCode(`${input.versionPrefix}/`)}`
      : `${input.deletedObjects} object(s)` +
        (input.deletedBytes !== undefined ? ` (${formatBytes(input.deletedBytes)})` : '') +
        ` under ${inlineCode(`${input.versionPrefix}/`)} were deleted`
  return [
    previewMarker(input.commentId),
    title(input, ' removed'),
    '',
    `This preview was removed${after ? ` ${after}` : ''}: ${what}.`,
    '',
    [
      ...(pr.runUrl ? [`[workflow run](${pr.runUrl})`] : []),
      `removed ${utc(input.removedAt)}`
    ].join(' · ')
  ].join('\n')
}

export type GitHubClient = ReturnType<typeof ActionsGitHub.getOctokit>

/**
 * The REST client, against GITHUB_API_URL (GitHub Enterprise Server sets it). @actions/github
 * picks its proxy-aware fetch for the API URL in process.env at import; on a runner that is the
 * same variable, so proxies configured for the runner apply.
 */
export async function createGitHubClient(
  token: string,
  env: NodeJS.ProcessEnv
): Promise<GitHubClient> {
  if (!token.trim()) {
    throw new InputError(
      '`github-token` is empty, so the preview comment cannot be written.',
      'Leave `github-token` at its default (`${{ github.token }}`), pass a token that can write pull request comments, or set `pr-comment: false`.'
    )
  }
  const baseUrl = (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '')
  // Loaded only to write a comment: every other run would pay Octokit's start-up and memory.
  const { getOctokit } = await import('@actions/github')
  return getOctokit(token.trim(), { baseUrl, userAgent: 'model-cdn-deploy' })
}

/** The fields of an issue comment used here. */
interface IssueComment {
  id: number
  body?: string | null
  html_url: string
}

/** Where the comment goes: the repository and number of the pull request. */
export type CommentTarget = Pick<PullRequestContext, 'owner' | 'repo' | 'number'> &
  Partial<Pick<PullRequestContext, 'fork' | 'eventName'>>

export interface UpsertOptions {
  dryRun: boolean
  logger: Logger
  /** false: only edit an existing comment (the removal notice needs no new one). Default true. */
  create?: boolean
  signal?: AbortSignal
  sleep?: Sleep
  random?: () => number
  /** Attempts in all for server errors and network failures. */
  maxAttempts?: number
  /** Per request. */
  timeoutMs?: number
}

export interface CommentOutcome {
  /** `failed`: the comment was not written; `warning` says why. */
  action: 'created' | 'updated' | 'skipped' | 'failed'
  /** The comment's page, when it was written. */
  url?: string
  /** Why it was not written: already logged as a warning, for the job summary. */
  warning?: string
  /** What was done, or in a dry run what would be; already logged. */
  message: string
}

interface HttpErrorShape {
  status?: number
  message?: string
  response?: { headers?: Record<string, string | undefined> }
}

/** Octokit reports network failures and timeouts as status 500 without a response. */
function httpStatus(err: unknown): number | undefined {
  const e = err as HttpErrorShape | null
  return e?.response ? e.status : undefined
}

class StaleComment extends Error {}

/**
 * 5xx, network failures, timeouts (octokit's errors all carry a status), and a comment deleted
 * between finding and editing it. Anything else is not GitHub's answer, so asking again won't help.
 */
function isTransient(err: unknown): boolean {
  if (err instanceof StaleComment) return true
  if (typeof (err as HttpErrorShape | null)?.status !== 'number') return false
  const status = httpStatus(err)
  return status === undefined || status >= 500
}

function isRateLimit(err: unknown): boolean {
  const e = err as HttpErrorShape
  const status = httpStatus(err)
  return (
    status === 429 ||
    (status === 403 &&
      (e.response?.headers?.['x-ratelimit-remaining'] === '0' ||
        /rate limit/i.test(e.message ?? '')))
  )
}

/**
 * What GitHub said, without its documentation link and anything secret. Octokit words network
 * failures as "fetch failed" or "Unknown Error", so those are described by their innermost cause
 * (`connect ECONNREFUSED …`, `The operation was aborted due to timeout`).
 */
function said(err: unknown): string {
  let e = err as { message?: unknown; cause?: unknown } | null
  if (httpStatus(err) === undefined) {
    while (typeof e?.cause === 'object' && e.cause !== null && 'message' in e.cause) {
      e = e.cause as typeof e
    }
  }
  const message = typeof e?.message === 'string' ? e.message : String(e)
  return redact(message.replace(/ - https:\/\/docs\.github\.com\S*$/, ''))
}

function failureWarning(
  err: unknown,
  stage: string,
  target: CommentTarget,
  attempts: number
): string {
  const pr = `pull request #${target.number} of ${target.owner}/${target.repo}`
  const status = httpStatus(err)
  const answer = status
    ? `GitHub answered ${status} (${said(err)})`
    : `the request failed: ${said(err)}`
  const head = `Could not ${stage} the preview comment on ${pr}: ${answer}.`
  const tail =
    ' The step does not fail for this: the comment only repeats the step outputs and the job summary.'
  let why: string
  if (isRateLimit(err)) {
    why = ' The token hit a GitHub rate limit; the next run will update the comment.'
  } else if (status === 401) {
    why = ' The token was refused: check `github-token` (an expired or revoked token?).'
  } else if (status === 403) {
    const needs = (err as HttpErrorShape).response?.headers?.['x-accepted-github-permissions']
    const fork = target.fork && target.eventName === 'pull_request'
    why =
      (fork
        ? ' The pull request comes from a fork, and GitHub gives pull_request runs from forks a ' +
          'read-only GITHUB_TOKEN, so no comment can be written from this run.'
        : ' The token cannot write comments: give the job `permissions: pull-requests: write` ' +
          '(a `permissions:` block that omits it makes the token read-only; Dependabot pull ' +
          'requests always get a read-only token), or pass another `github-token`.') +
      (needs ? ` GitHub names the permissions the call needs: ${needs}.` : '')
  } else if (status === 404) {
    why =
      ' The token cannot see the pull request (GitHub answers 404 to a token without access to a ' +
      'private repository): check `github-token`.'
  } else if (isTransient(err)) {
    why = ` Gave up after ${attempts} attempt(s).`
  } else {
    why = ''
  }
  return head + why + tail
}

/**
 * What the requests of one upsert share. `stage` names the request under way (`look for`,
 * `update`, `create`) and `attempts` counts the tries, for the retry log and the warning.
 */
interface CommentWrite {
  octokit: GitHubClient
  target: CommentTarget
  marker: string
  body: string
  dryRun: boolean
  create: boolean
  request: () => { signal: AbortSignal }
  stage: string
  attempts: number
}

/**
 * Creates the marked comment on the pull request, or edits it when a run made one already. The
 * marker is the body's first line (see previewMarker). Failures come back as a warning.
 *
 * When several comments carry the marker (two runs racing to create one), the oldest is edited:
 * it is where the conversation first showed the preview, every run picks the same one, and the
 * listing can stop at the first match. The author is not compared: GITHUB_TOKEN cannot ask who
 * it is, and a repository moving from GITHUB_TOKEN to an app or personal token keeps its comment.
 */
export async function upsertPreviewComment(
  octokit: GitHubClient,
  target: CommentTarget,
  body: string,
  opts: UpsertOptions
): Promise<CommentOutcome> {
  const marker = body.split('\n', 1)[0]
  if (!marker.startsWith(`<!-- ${MARKER_PREFIX}`)) {
    throw new TypeError('The comment body must start with previewMarker()')
  }
  const { logger } = opts
  const write: CommentWrite = {
    octokit,
    target,
    marker,
    body,
    dryRun: opts.dryRun,
    create: opts.create !== false,
    request: requestOptions(opts.signal, opts.timeoutMs ?? 30_000),
    stage: 'look for',
    attempts: 0
  }
  try {
    const outcome = await writeWithRetries(write, opts)
    logger.info(outcome.message)
    if (opts.dryRun) logger.debug(`The comment would read:\n${body}`)
    return outcome
  } catch (err) {
    if (opts.signal?.aborted) {
      throw new DeployError(`Cancelled while writing the preview comment.`, undefined, {
        cause: opts.signal.reason
      })
    }
    const warning = failureWarning(err, write.stage, target, write.attempts)
    logger.warning(warning)
    return { action: 'failed', warning, message: warning }
  }
}

function writeWithRetries(
  write: CommentWrite,
  opts: Pick<UpsertOptions, 'logger' | 'signal' | 'sleep' | 'random' | 'maxAttempts'>
): Promise<CommentOutcome> {
  const maxAttempts = opts.maxAttempts ?? 3
  // The unit retried is find-then-write: after a failed create GitHub may have stored the
  // comment anyway, and finding it first turns the retry into an edit, not a duplicate.
  return retryWithBackoff(
    () => {
      write.attempts++
      return writeComment(write)
    },
    (err) => !opts.signal?.aborted && isTransient(err),
    {
      attempts: maxAttempts,
      baseMs: 1000,
      capMs: 8000,
      sleep: opts.sleep ?? realSleep,
      random: opts.random,
      onRetry: (err, attempt, delayMs) =>
        opts.logger.info(
          `Could not ${write.stage} the preview comment (${said(err)}); attempt ${attempt + 1} of ` +
            `${maxAttempts} in ${(delayMs / 1000).toFixed(1)} s.`
        )
    }
  )
}

/** Fresh request options per call: each request has its own timeout, and stops on `signal`. */
function requestOptions(
  signal: AbortSignal | undefined,
  timeoutMs: number
): () => { signal: AbortSignal } {
  return () => ({
    signal: signal
      ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
      : AbortSignal.timeout(timeoutMs)
  })
}

/** One attempt: find the marked comment, then edit it, create one, or in a dry run say which. */
async function writeComment(write: CommentWrite): Promise<CommentOutcome> {
  const { owner, repo, number } = write.target
  const existing = await findMarkedComment(write)
  if (write.dryRun) {
    const message = existing
      ? `Dry run: would update the preview comment ${existing.html_url}.`
      : !write.create
        ? `Dry run: pull request #${number} has no preview comment to update.`
        : `Dry run: would comment on pull request #${number} of ${owner}/${repo}.`
    return { action: 'skipped', message }
  }
  if (existing) return updateMarkedComment(write, existing)
  if (!write.create) {
    return {
      action: 'skipped',
      message: `Pull request #${number} has no preview comment to update.`
    }
  }
  write.stage = 'create'
  const { data } = await write.octokit.rest.issues.createComment({
    owner,
    repo,
    issue_number: number,
    body: write.body,
    request: write.request()
  })
  return { action: 'created', url: data.html_url, message: `Commented ${data.html_url}.` }
}

/** The oldest comment whose first line is the marker, page by page until one matches. */
async function findMarkedComment(write: CommentWrite): Promise<IssueComment | undefined> {
  const { octokit, target, marker } = write
  write.stage = 'look for'
  let response: { data: unknown; headers: { link?: string } } =
    await octokit.rest.issues.listComments({
      owner: target.owner,
      repo: target.repo,
      issue_number: target.number,
      per_page: 100,
      request: write.request()
    })
  for (;;) {
    const found = (response.data as IssueComment[]).find((c) => hasMarker(c.body, marker))
    if (found) return found
    // Follow GitHub's own next link, as octokit.paginate does, rather than guessing page URLs.
    const next = /<([^<>]+)>;\s*rel="next"/.exec(response.headers.link ?? '')?.[1]
    if (!next) return undefined
    response = await octokit.request({ method: 'GET', url: next, request: write.request() })
  }
}

async function updateMarkedComment(
  write: CommentWrite,
  existing: IssueComment
): Promise<CommentOutcome> {
  write.stage = 'update'
  try {
    const { data } = await write.octokit.rest.issues.updateComment({
      owner: write.target.owner,
      repo: write.target.repo,
      comment_id: existing.id,
      body: write.body,
      request: write.request()
    })
    return {
      action: 'updated',
      url: data.html_url,
      message: `Updated the preview comment ${data.html_url}.`
    }
  } catch (err) {
    // Deleted since we listed it: look again rather than report a permission problem.
    if (httpStatus(err) === 404) throw new StaleComment('the comment was deleted meanwhile')
    throw err
  }
}
