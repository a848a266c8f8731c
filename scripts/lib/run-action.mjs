/**
 * Runs the committed `dist/index.js` the way a GitHub runner runs a `node24` action, for the
 * integration tests and `npm run demo`:
 *
 * - every input declared in action.yml is passed as `INPUT_<NAME>` (name upper-cased, spaces to
 *   `_`, hyphens KEPT: `INPUT_DISTRIBUTION-ID`); inputs not given get their action.yml default,
 *   or '' without one (as the runner does); an input action.yml does not declare is an error here
 *   (the runner only warns, but in a test it is a typo);
 * - the working directory and GITHUB_WORKSPACE are the workspace; GITHUB_OUTPUT,
 *   GITHUB_STEP_SUMMARY, GITHUB_STATE, GITHUB_ENV, GITHUB_PATH are fresh temp files read back
 *   afterwards; the usual GITHUB_* / RUNNER_* context variables are set;
 * - `phase: 'post'` runs action.yml's `runs.post` instead of `runs.main`, with the state the main
 *   step saved (its result's `state`) as `STATE_<name>` variables, as the runner passes it;
 * - nothing of the parent's INPUT_*, GITHUB_*, RUNNER_*, ACTIONS_*, AWS_*, STATE_* or NODE_OPTIONS
 *   leaks in: the child sees test credentials and, given `endpoint`, the emulator's endpoints.
 */
import { spawn } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository this script lives in (scripts/lib/ → ../../). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

const LEAKY_ENV = /^(INPUT_|GITHUB_|RUNNER_|ACTIONS_|AWS_|STATE_)/i
const DROPPED_ENV = new Set(['NODE_OPTIONS', 'CI'])

// ---------------------------------------------------------------------------------------------
// action.yml: a reader for its `inputs:` block (there is no YAML dependency in the project).
// It accepts the subset of YAML an action.yml uses there — block mappings, plain, single- and
// double-quoted scalars, folded/literal block scalars — and refuses anything else loudly rather
// than misread it.
// ---------------------------------------------------------------------------------------------

const indentOf = (line) => line.length - line.trimStart().length
const isBlankOrComment = (line) => /^\s*(#.*)?$/.test(line)

/**
 * Reads the `inputs:` block of an action.yml text.
 * @param {string} text
 * @returns {Map<string, { required: boolean, default?: string, description?: string }>}
 */
export function parseActionInputs(text, source = 'action.yml') {
  const lines = text.split(/\r?\n/)
  const fail = (index, why) => {
    throw new Error(`${source}:${index + 1}: ${why}: ${JSON.stringify(lines[index] ?? '')}`)
  }
  lines.forEach((line, i) => {
    if (/^\t| \t/.test(line.match(/^\s*/)[0])) fail(i, 'tab in indentation')
  })

  const start = lines.findIndex((line) => /^inputs:\s*(#.*)?$/.test(line))
  if (start < 0) throw new Error(`${source}: no top-level \`inputs:\` block`)
  let end = start + 1
  while (end < lines.length && (isBlankOrComment(lines[end]) || indentOf(lines[end]) > 0)) end++

  const inputs = new Map()
  let nameIndent
  let i = start + 1
  while (i < end) {
    if (isBlankOrComment(lines[i])) {
      i++
      continue
    }
    const m = /^( +)([A-Za-z0-9_][A-Za-z0-9_ -]*?):\s*(#.*)?$/.exec(lines[i])
    if (!m) fail(i, 'expected an input name followed by `:`')
    nameIndent ??= m[1].length
    if (m[1].length !== nameIndent) fail(i, 'unexpected indentation for an input name')
    const name = m[2]
    if (inputs.has(name)) fail(i, `input "${name}" declared twice`)
    i++
    const props = {}
    let propIndent
    while (i < end && (isBlankOrComment(lines[i]) || indentOf(lines[i]) > nameIndent)) {
      if (isBlankOrComment(lines[i])) {
        i++
        continue
      }
      const p = /^( +)([A-Za-z0-9_-]+):(?:\s+(.*?))?\s*$/.exec(lines[i])
      if (!p) fail(i, 'expected `key: value`')
      propIndent ??= p[1].length
      if (p[1].length !== propIndent) fail(i, 'unexpected indentation for a property')
      const key = p[2]
      if (key in props) fail(i, `property "${key}" given twice`)
      const raw = p[3] ?? ''
      const first = i
      i++
      // Lines indented deeper than the property belong to its value.
      const more = []
      while (i < end && (lines[i].trim() === '' || indentOf(lines[i]) > propIndent)) {
        more.push(lines[i])
        i++
      }
      while (more.length && more[more.length - 1].trim() === '') more.pop()
      props[key] = parseScalar(raw, more, (why) => fail(first, why))
    }
    const required = props.required === undefined ? false : parseBool(props.required)
    if (required === undefined) fail(i - 1, `input "${name}": required must be true or false`)
    if (
      props.default !== undefined &&
      props.default.includes('${{') &&
      !GITHUB_TOKEN_EXPRESSION.test(props.default)
    ) {
      throw new Error(`${source}: input "${name}": expression defaults are not supported here`)
    }
    inputs.set(name, { required, default: props.default, description: props.description })
  }
  return inputs
}

function parseBool(value) {
  if (/^(true|True|TRUE)$/.test(value)) return true
  if (/^(false|False|FALSE)$/.test(value)) return false
  return undefined
}

function parseScalar(raw, continuation, fail) {
  const block = /^([|>])([+-]?)\s*(#.*)?$/.exec(raw)
  if (block && block[2] === '+') fail('keep chomping (`|+`, `>+`) is not supported')
  if (block) return parseBlockScalar(block[1], block[2], continuation, fail)
  if (/^[[{&*!%@`]/.test(raw)) fail('flow collections, anchors, aliases and tags are not supported')
  if (raw.startsWith("'") || raw.startsWith('"')) {
    if (continuation.length) fail('multi-line quoted scalars are not supported')
    if (raw.startsWith("'")) {
      const m = /^'((?:[^']|'')*)'\s*(#.*)?$/.exec(raw)
      if (!m) fail('unterminated single-quoted scalar')
      return m[1].replace(/''/g, "'")
    }
    const m = /^"((?:[^"\\]|\\.)*)"\s*(#.*)?$/.exec(raw)
    if (!m) fail('unterminated double-quoted scalar')
    try {
      return JSON.parse(`"${m[1]}"`)
    } catch {
      return fail('unsupported escape in a double-quoted scalar')
    }
  }
  // Plain scalar, possibly continued on deeper-indented lines (folded with single spaces).
  const strip = (s) => s.replace(/\s+#.*$/, '').trim()
  const parts = [strip(raw), ...continuation.map(strip)]
  let out = ''
  let pendingBreaks = 0
  for (const part of parts) {
    if (part === '') {
      pendingBreaks++
      continue
    }
    if (out) out += pendingBreaks ? '\n'.repeat(pendingBreaks) : ' '
    out += part
    pendingBreaks = 0
  }
  if (out === '~' || out === 'null' || out === 'Null' || out === 'NULL') return ''
  return out
}

function parseBlockScalar(style, chomping, lines, fail) {
  const contentIndent = Math.min(
    ...lines.filter((l) => l.trim() !== '').map((l) => indentOf(l)),
    Number.POSITIVE_INFINITY
  )
  if (!Number.isFinite(contentIndent)) return ''
  const body = lines.map((l) => (l.trim() === '' ? '' : l.slice(contentIndent)))
  if (body.some((l, k) => l !== '' && indentOf(lines[k]) < contentIndent)) fail('bad block indent')
  let text
  if (style === '|') {
    text = body.join('\n')
  } else {
    // Folded: a single break between two lines becomes a space, n empty lines become n breaks;
    // lines indented deeper than the block keep their breaks.
    text = ''
    let previous
    let empty = 0
    for (const line of body) {
      if (line === '') {
        empty++
        continue
      }
      if (previous === undefined) text += '\n'.repeat(empty)
      else if (/^\s/.test(previous) || /^\s/.test(line)) text += '\n'.repeat(empty + 1)
      else text += empty ? '\n'.repeat(empty) : ' '
      text += line
      previous = line
      empty = 0
    }
  }
  if (chomping === '-') return text.replace(/\n+$/, '')
  return `${text.replace(/\n+$/, '')}\n` // clip: exactly one final line break
}

/** The one expression default the harness evaluates, as the runner does: the job's token. */
const GITHUB_TOKEN_EXPRESSION = /^\$\{\{\s*github\.token\s*\}\}$/

/** The inputs of the action in `actionPath` (a directory holding action.yml). */
export function readActionInputs(actionPath = REPO_ROOT) {
  const file = join(actionPath, 'action.yml')
  return parseActionInputs(readFileSync(file, 'utf8'), file)
}

/** The script action.yml's `runs.main` or `runs.post` names, as an absolute path. */
function readActionEntry(phase, actionPath = REPO_ROOT) {
  const file = join(actionPath, 'action.yml')
  const runs = /^runs:[^\n]*\n((?:(?:[ \t][^\n]*)?\n?)*)/m.exec(readFileSync(file, 'utf8'))?.[1]
  const entry = runs && new RegExp(`^[ \\t]+${phase}:[ \\t]*['"]?([^'"\\s#]+)`, 'm').exec(runs)?.[1]
  if (!entry) throw new Error(`${file}: no runs.${phase}`)
  return join(actionPath, entry)
}

/** The environment variable a runner uses for an input (`distribution-id` → `INPUT_DISTRIBUTION-ID`). */
export function inputEnvName(name) {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
}

// ---------------------------------------------------------------------------------------------
// Files the runner reads back.
// ---------------------------------------------------------------------------------------------

/**
 * Parses a GITHUB_OUTPUT / GITHUB_ENV / GITHUB_STATE file: `name=value` lines and the
 * `name<<DELIMITER` … `DELIMITER` blocks @actions/core writes.
 * @returns {Record<string, string>}
 */
export function parseCommandFile(text) {
  const out = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '')
    if (line === '') continue
    const heredoc = /^([^=]+?)<<(.+)$/.exec(line)
    if (heredoc) {
      const [, name, delimiter] = heredoc
      const value = []
      let j = i + 1
      while (j < lines.length && lines[j].replace(/\r$/, '') !== delimiter) value.push(lines[j++])
      if (j >= lines.length)
        throw new Error(`Unterminated value for "${name}" (delimiter ${delimiter})`)
      out[name] = value.join('\n')
      i = j
      continue
    }
    const eq = line.indexOf('=')
    if (eq <= 0) throw new Error(`Malformed command file line: ${JSON.stringify(line)}`)
    out[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return out
}

/** Workflow commands (`::error file=x::message`) printed on stdout, decoded. */
export function parseAnnotations(stdout) {
  const found = []
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^::(error|warning|notice)(?: [^:]*)?::(.*)$/.exec(line)
    if (!m) continue
    const message = m[2].replace(/%0A/gi, '\n').replace(/%0D/gi, '\r').replace(/%25/g, '%')
    found.push({ level: m[1], message })
  }
  return found
}

// ---------------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------------

/**
 * @param {import('./run-action.d.mts').RunActionOptions} options
 * @returns {Promise<import('./run-action.d.mts').RunActionResult>}
 */
export async function runAction(options) {
  const {
    inputs = {},
    env = {},
    cwd,
    endpoint,
    actionPath = REPO_ROOT,
    timeoutMs = 120_000,
    keepTemp = false,
    onSpawn,
    phase = 'main',
    state = {},
    githubToken = 'ghs_harness-job-token'
  } = options
  if (!cwd) throw new Error('runAction: cwd (the workspace) is required')
  if (phase !== 'main' && phase !== 'post') throw new Error(`runAction: unknown phase "${phase}"`)
  const workspace = resolve(cwd)
  const entry = readActionEntry(phase, actionPath)

  const declared = readActionInputs(actionPath)
  for (const name of Object.keys(inputs)) {
    if (!declared.has(name)) {
      throw new Error(
        `runAction: action.yml declares no input "${name}" (inputs: ${[...declared.keys()].join(', ')})`
      )
    }
  }
  const values = {}
  for (const [name, def] of declared) {
    values[name] = GITHUB_TOKEN_EXPRESSION.test(def.default ?? '')
      ? githubToken
      : (def.default ?? '')
  }
  if (endpoint && inputs['endpoint-url'] === undefined) values['endpoint-url'] = endpoint
  for (const [name, value] of Object.entries(inputs)) {
    if (value !== undefined) values[name] = String(value)
  }

  const temp = await mkdtemp(join(tmpdir(), 'run-action-'))
  const files = {
    GITHUB_OUTPUT: join(temp, 'output'),
    GITHUB_STEP_SUMMARY: join(temp, 'step_summary'),
    GITHUB_STATE: join(temp, 'state'),
    GITHUB_ENV: join(temp, 'env'),
    GITHUB_PATH: join(temp, 'path'),
    GITHUB_EVENT_PATH: join(temp, 'event.json')
  }
  const runnerTemp = join(temp, 'runner-temp')
  const sha = randomBytes(20).toString('hex')
  const repository = 'acme/models'
  const ref = 'refs/heads/main'
  await Promise.all([
    ...['GITHUB_OUTPUT', 'GITHUB_STEP_SUMMARY', 'GITHUB_STATE', 'GITHUB_ENV', 'GITHUB_PATH'].map(
      (k) => writeFile(files[k], '')
    ),
    writeFile(
      files.GITHUB_EVENT_PATH,
      JSON.stringify({ ref, after: sha, repository: { full_name: repository, name: 'models' } })
    ),
    mkdir(runnerTemp)
  ])

  const childEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!LEAKY_ENV.test(k) && !DROPPED_ENV.has(k) && v !== undefined) childEnv[k] = v
  }
  Object.assign(childEnv, {
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: workspace,
    ...files,
    GITHUB_SHA: sha,
    GITHUB_REF: ref,
    GITHUB_REF_NAME: 'main',
    GITHUB_REF_TYPE: 'branch',
    GITHUB_REPOSITORY: repository,
    GITHUB_REPOSITORY_OWNER: 'acme',
    GITHUB_RUN_ID: String(randomInt(1_000_000_000, 9_999_999_999)),
    GITHUB_RUN_NUMBER: '1',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_WORKFLOW: 'release',
    GITHUB_JOB: 'deploy',
    GITHUB_ACTION: '__self',
    GITHUB_ACTOR: 'octocat',
    GITHUB_EVENT_NAME: 'push',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_API_URL: 'https://api.github.com',
    GITHUB_GRAPHQL_URL: 'https://api.github.com/graphql',
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_NAME: 'run-action',
    RUNNER_TEMP: runnerTemp,
    RUNNER_TOOL_CACHE: join(temp, 'tool-cache'),
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_EC2_METADATA_DISABLED: 'true'
  })
  if (endpoint) childEnv.AWS_ENDPOINT_URL_CLOUDFRONT = endpoint
  for (const [name, value] of Object.entries(values)) childEnv[inputEnvName(name)] = value
  for (const [name, value] of Object.entries(state)) childEnv[`STATE_${name}`] = value
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k]
    else childEnv[k] = String(v)
  }

  const started = Date.now()
  try {
    const { exitCode, signal, stdout, stderr, timedOut } = await new Promise((done, reject) => {
      const child = spawn(process.execPath, [entry], {
        cwd: workspace,
        env: childEnv,
        stdio: ['ignore', 'pipe', 'pipe']
      })
      onSpawn?.(child)
      const out = []
      const err = []
      child.stdout.on('data', (b) => out.push(b))
      child.stderr.on('data', (b) => err.push(b))
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        child.kill('SIGKILL')
      }, timeoutMs)
      child.on('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
      child.on('close', (code, sig) => {
        clearTimeout(timer)
        done({
          exitCode: code,
          signal: sig,
          timedOut,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8')
        })
      })
    })
    const [outputText, summary, stateText] = await Promise.all([
      readFile(files.GITHUB_OUTPUT, 'utf8'),
      readFile(files.GITHUB_STEP_SUMMARY, 'utf8'),
      readFile(files.GITHUB_STATE, 'utf8')
    ])
    const annotations = parseAnnotations(stdout)
    return {
      exitCode,
      signal,
      timedOut,
      durationMs: Date.now() - started,
      stdout,
      stderr,
      outputs: parseCommandFile(outputText),
      summary,
      state: parseCommandFile(stateText),
      annotations,
      errors: annotations.filter((a) => a.level === 'error').map((a) => a.message),
      warnings: annotations.filter((a) => a.level === 'warning').map((a) => a.message),
      env: childEnv,
      tempDir: keepTemp ? temp : undefined
    }
  } finally {
    if (!keepTemp) await rm(temp, { recursive: true, force: true })
  }
}
