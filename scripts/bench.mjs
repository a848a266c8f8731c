#!/usr/bin/env node
/**
 * `npm run bench`: the bundled action (dist/index.js, run exactly as a GitHub runner runs it, via
 * scripts/lib/run-action.mjs) against its peers on the same S3 endpoint, on this machine:
 *
 *   aws-cli  AWS CLI v1 (`aws s3 cp`, `cp --recursive`, `sync`), its defaults
 *   boto3    the seed tutorial's own path: upload_file with its TransferConfig (50 MB parts,
 *            10 threads), one file after another (scripts/bench/boto3_seed.py)
 *   rclone   `rclone copy` / `rclone sync`, its defaults, configured through environment
 *            variables (see rcloneEnv for the one setting the sink needs)
 *   curl     a single `curl -T` of the 1 GiB file: the floor (scenario 1)
 *
 * The endpoint is ../shared/bench/s3sink.mjs over HTTPS (a self-signed certificate made with
 * `openssl`, trusted through NODE_EXTRA_CA_CERTS, AWS_CA_BUNDLE and RCLONE_CA_CERT): it answers S3
 * like a store (objects and their metadata are remembered for HEAD and List) but discards the
 * bytes, so the clients alone are measured. Scenario 6 repeats the main ones, smaller, against
 * moto_server, a store that keeps the bytes; scenario 7 publishes files already in a bucket, on
 * moto_server.
 *
 *   1  one 1 GiB file                     ours vs each peer, and a single `curl -T` (the floor)
 *   2  200 files × 5 MiB                  ours vs each peer
 *   3  peak RSS: 1 GiB (from 1) and 5 GiB ours vs each peer (5 GiB only with --large)
 *   4  first deploy, then unchanged       ours (same prefix again) vs each peer after a fresh
 *      re-deploy (12 files, 642 MiB)      checkout (new mtimes): `aws s3 sync`, the seed's loop,
 *                                        `rclone sync` (which then compares MD5s)
 *   5  new version, 9 of 10 shards known  ours (v3 then v4) vs each peer to a new prefix, and
 *                                        `rclone sync --copy-dest <v3>` (rclone's server-side
 *                                        copy of files it finds identical there)
 *   6  moto_server: 1, 2 and 4, smaller   ours vs the AWS CLI (skipped with a note when
 *                                        moto_server is missing)
 *   7  1 GiB + 2 small files promoted     ours (`artifacts: s3://bench-training-runs/run-42/**`)
 *      from a source bucket, on moto     vs `aws s3 cp --recursive` S3 to S3 (server-side copy)
 *                                        and vs `aws s3 cp --recursive` down to disk, then up.
 *      Not in the default list: ~40 s to write the source, then ~2 min a pair, most of it
 *      moto_server handling 1 GiB objects in Python. So it also reports the bytes through the
 *      runner: the clients reach moto through a proxy that counts them (and applies --latency
 *      and --rate). A build without `s3://` sources shows "not run: <its first error>" and the
 *      peers still run. The source is written as an SDK with default checksums would (CRC32;
 *      the 1 GiB file in 64 MiB parts).
 *   8  cost per file: 2,000 and 32,000    ours vs `aws s3 cp --recursive`: wall and peak RSS
 *      small JSON files (100,000 too     (scripts/bench/file-count.mjs). Not in the default
 *      with --huge)                       list: ~5 min a pair, most of it the CLI's.
 *
 * The targets in the table are issue 24's: behind a 200 MB/s uplink (`--rate 200`), scenario 1
 * ≤ 0.95× the fastest peer and ≤ 1.10× curl, 2 ≤ 0.85× the CLI, 4 ≤ 0.9× (first) and ≤ 0.2× with
 * 0 bytes sent (unchanged) of `aws s3 sync`, 5 ≤ 0.35× `aws s3 sync` with the 9 copied; on
 * loopback, scenario 1 ≤ 0.75× the CLI's wall and ≤ 0.8× its CPU; peak RSS ≤ 160 MB for 1 GiB
 * and ≤ 1.15× that for 5 GiB; and start-up: the first request at the endpoint within 0.2 s.
 *
 * Start-up is the time from spawning a contestant to its first connection at the endpoint: the
 * link proxy sees it when there is one, else /proc/net/tcp is polled every 2 ms until it shows.
 * Behind the proxy, each run also records when 1 MiB of its requests had gone through (its bulk
 * upload began) and when the link delivered its last byte, and the bytes it sent.
 *
 * Each run is timed from spawn to exit (wall); CPU (user+sys) and peak RSS come from GNU time
 * for the peers and from getrusage inside the action's process (scripts/bench/rusage-hook.mjs,
 * loaded with NODE_OPTIONS=--import) for ours, which runs in a single process. A pair runs every
 * contestant once, in an order that rotates from pair to pair; the table shows medians and the
 * median of the per-pair ratios, so a noisy machine skews both sides alike. Python console
 * scripts (`aws`, python3) are run directly, not through a pyenv shim, which costs ~0.4 s of bash
 * per start here.
 *
 * Usage: npm run bench -- [options]
 *   --pairs N              pairs per scenario (default 3)
 *   --scenarios 1,2,4      which scenarios (default 1,2,3,4,5,6; 7 and 8 only when named)
 *   --large                also the 5 GiB file in scenario 3 (~6 GiB more disk, ~2 min more)
 *   --huge                 also 100,000 files in scenario 8 (~10 min more a pair)
 *   --variant NAME=DIR[:k=v,…]  an action to measure: DIR holds action.yml and dist/index.js;
 *                          k=v are its inputs (e.g. part-size-mb=32,concurrency=8), env.K=V its
 *                          environment. Repeatable; default: ours=<this repository>. Variants
 *                          alternate with the peer and with each other.
 *   --input k=v            an input for every variant (repeatable)
 *   --env K=V              environment for the action's process (repeatable); NODE_OPTIONS
 *                          is added to the bench's own (e.g. --max-semi-space-size=4)
 *   --peers a,b            which peers (default aws-cli,boto3,rclone); one missing here is
 *                          reported as "not run" with the reason
 *   --no-peer, --no-curl   skip every peer / curl (e.g. to compare variants only)
 *   --http                 s3sink over plain HTTP instead of HTTPS
 *   --latency MS           put MS of round-trip time between every client and s3sink (a TCP
 *                          proxy that holds each chunk MS/2 each way), as a real link to a
 *                          region has: what one round trip after another costs shows
 *   --rate MBPS            let the clients send at most MBPS MB/s in all through that proxy, as
 *                          a runner's uplink would: what hides behind the transfer shows
 *   --data-dir DIR         generate the files there and keep them for the next run
 *   --cpu-prof DIR         write a .cpuprofile of each of our runs into DIR
 *   --json FILE            every run's numbers, as JSON
 */
import { spawn, spawnSync } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync
} from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { basename, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { REPO_ROOT, parseActionInputs, runAction } from './lib/run-action.mjs'
import {
  FILE_COUNTS,
  HUGE_FILE_COUNT,
  fileCountRows,
  runFileCountScenario
} from './bench/file-count.mjs'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
/** src/publish/reuse.ts MIN_REUSE_BYTES: smaller new files are uploaded without a search. */
const MIN_REUSE_BYTES = MiB
const BUCKET = 'bench'
const SINK = resolve(REPO_ROOT, '..', 'shared', 'bench', 's3sink.mjs')
const RUSAGE_HOOK = pathToFileURL(join(REPO_ROOT, 'scripts', 'bench', 'rusage-hook.mjs')).href
const PROF_HOOK = pathToFileURL(join(REPO_ROOT, 'scripts', 'bench', 'cpu-prof-hook.mjs')).href
const RUN_TIMEOUT_MS = 20 * 60_000
const AWS_CLI_HINT =
  'Install AWS CLI v1 with: python3 -m pip install awscli   (then `aws --version` must print aws-cli/1.x)'

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

const { values: opt } = parseArgs({
  options: {
    pairs: { type: 'string', default: '3' },
    scenarios: { type: 'string', default: '1,2,3,4,5,6' },
    large: { type: 'boolean', default: false },
    huge: { type: 'boolean', default: false },
    variant: { type: 'string', multiple: true },
    input: { type: 'string', multiple: true },
    env: { type: 'string', multiple: true },
    peers: { type: 'string', default: 'aws-cli,boto3,rclone' },
    'no-peer': { type: 'boolean', default: false },
    'no-curl': { type: 'boolean', default: false },
    http: { type: 'boolean', default: false },
    latency: { type: 'string', default: '0' },
    rate: { type: 'string', default: '0' },
    'data-dir': { type: 'string' },
    'cpu-prof': { type: 'string' },
    json: { type: 'string' },
    sink: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (opt.help) {
  const text = readFileSync(new URL(import.meta.url), 'utf8')
  console.log(
    text
      .slice(text.indexOf('/**') + 3, text.indexOf('*/'))
      .replace(/^ \* ?/gm, '')
      .trim()
  )
  process.exit(0)
}

const PAIRS = Number(opt.pairs)
if (!Number.isInteger(PAIRS) || PAIRS < 1) usage(`--pairs must be a whole number ≥ 1`)
const SCENARIOS = new Set(opt.scenarios.split(',').map((s) => s.trim()))
const LATENCY_MS = Number(opt.latency)
if (!(LATENCY_MS >= 0)) usage(`--latency must be a number of milliseconds ≥ 0`)
const RATE_MBPS = Number(opt.rate)
if (!(RATE_MBPS >= 0)) usage(`--rate must be a number of MB/s ≥ 0`)
/** What the proxy between the clients and the sink adds, for the log and the table; '' = none. */
const LINK = [
  LATENCY_MS > 0 ? `${LATENCY_MS} ms round trip` : '',
  RATE_MBPS > 0 ? `${RATE_MBPS} MB/s upload` : ''
]
  .filter(Boolean)
  .join(', ')
const keyValues = (list, what) =>
  Object.fromEntries(
    (list ?? []).map((kv) => {
      const eq = kv.indexOf('=')
      if (eq <= 0) usage(`${what} must be key=value, got "${kv}"`)
      return [kv.slice(0, eq), kv.slice(eq + 1)]
    })
  )
const COMMON_INPUTS = keyValues(opt.input, '--input')
const EXTRA_ENV = keyValues(opt.env, '--env')
const VARIANTS = (opt.variant?.length ? opt.variant : [`ours=${REPO_ROOT}`]).map((spec) => {
  const m = /^([\w.+-]+)=([^:]+)(?::(.*))?$/.exec(spec)
  if (!m) usage(`--variant must be NAME=DIR[:k=v,…], got "${spec}"`)
  const dir = resolve(m[2])
  if (!existsSync(join(dir, 'dist', 'index.js')) || !existsSync(join(dir, 'action.yml'))) {
    usage(`--variant ${m[1]}: ${dir} has no action.yml and dist/index.js (run npm run build there)`)
  }
  const settings = keyValues(m[3] ? m[3].split(',') : [], `--variant ${m[1]} input`)
  const inputs = {}
  const env = {}
  for (const [k, v] of Object.entries(settings)) {
    if (k.startsWith('env.')) env[k.slice(4)] = v
    else inputs[k] = v
  }
  // Builds from before server-side copies have no `reuse-from`: they upload every file of v4.
  const actionYml = join(dir, 'action.yml')
  const declared = parseActionInputs(readFileSync(actionYml, 'utf8'), actionYml)
  const copies = declared.has('reuse-from')
  // The sink is no CloudFront set-up and discards the bytes: pre-flight would refuse it and
  // verification could not succeed, and neither is part of the transfer measured here.
  const checksOff = Object.fromEntries(
    ['preflight', 'verify'].filter((name) => declared.has(name)).map((name) => [name, 'false'])
  )
  return { name: m[1], dir, inputs, env, copies, checksOff }
})
const PEER_NAMES = ['aws-cli', 'boto3', 'rclone']
const PEERS = opt['no-peer'] ? [] : opt.peers.split(',').map((name) => name.trim())
for (const name of PEERS) {
  if (!PEER_NAMES.includes(name))
    usage(`--peers: unknown peer "${name}" (${PEER_NAMES.join(', ')})`)
}
const WITH_PEER = PEERS.includes('aws-cli')
const WITH_CURL = !opt['no-curl']

/** Copies are only expected from a build that has them, with `reuse-from` left on. */
function reuses(v) {
  return v.copies && { ...COMMON_INPUTS, ...v.inputs }['reuse-from'] !== 'none'
}

/** A usage error, before anything has been started. */
function usage(message) {
  console.error(`bench: ${message}`)
  process.exit(2)
}

/** Stops the run with a message (no stack); what was started is cleaned up on the way out. */
function fail(message) {
  throw Object.assign(new Error(message), { benchMessage: true })
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

const now = () => Number(process.hrtime.bigint()) / 1e9
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '–')
const mb = (kib) => (kib * 1024) / 1e6

function tryRun(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return r.error || r.status !== 0 ? undefined : `${r.stdout}${r.stderr}`.trim()
}

async function freePort() {
  return new Promise((ok, ko) => {
    const server = createServer()
    server.on('error', ko)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => ok(port))
    })
  })
}

/** Kills what this script started, whatever way it ends. */
const cleanups = []
async function cleanup() {
  while (cleanups.length) {
    try {
      await cleanups.pop()()
    } catch {
      // best effort
    }
  }
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    cleanup().finally(() => process.exit(130))
  })
}

// ---------------------------------------------------------------------------------------------
// What the endpoint sees of a run: when it is first reached (start-up) and, behind the link
// proxy, when the bulk of the upload starts and ends
// ---------------------------------------------------------------------------------------------

/** Ports of the link proxies: they report what they see to the run being watched. */
const proxyPorts = new Set()
/** The run in progress: { first, bulk, last } as now() times, and the bytes it sent. */
let watched

/**
 * Watches the run spawned at `started` (now()) against `endpoint`. Returns stop(), which returns,
 * in seconds from the spawn, the run's first connection at the endpoint (`firstRequest`) and,
 * behind a link proxy, when 1 MiB of its requests had reached the proxy (`bulkStart`: the bulk
 * of the upload began), when the link delivered its last byte (`lastByte`), and the bytes it
 * sent (`sentBytes`).
 */
function watchRun(endpoint, started) {
  const run = { sent: 0 }
  watched = run
  const port = endpoint ? Number(new URL(endpoint).port) : 0
  const proxied = proxyPorts.has(port)
  const poll = port && !proxied ? pollFirstConnection(port, started, run) : undefined
  const since = (t) => (t === undefined ? undefined : t - started)
  return () => {
    clearInterval(poll)
    if (watched === run) watched = undefined
    const timeline = proxied
      ? { bulkStart: since(run.bulk), lastByte: since(run.last), sentBytes: run.sent }
      : {}
    return { firstRequest: since(run.first), ...timeline }
  }
}

/** Sets run.first when /proc/net/tcp first shows a new client connection to `port`. */
function pollFirstConnection(port, started, run) {
  const before = clientSockets(port)
  if (!before) return undefined
  const timer = setInterval(() => {
    const sockets = now() - started < 30 ? clientSockets(port) : undefined
    if (sockets && ![...sockets].some((local) => !before.has(local))) return
    if (sockets) run.first = now()
    clearInterval(timer)
  }, 2)
  return timer
}

/** Local addresses of the sockets connecting or connected to 127.0.0.1:`port`, or undefined. */
function clientSockets(port) {
  let table
  try {
    table = readFileSync('/proc/net/tcp', 'utf8')
  } catch {
    return undefined
  }
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const found = new Set()
  for (const line of table.split('\n').slice(1)) {
    const [, local, rem, state] = line.trim().split(/\s+/)
    // 01 ESTABLISHED, 02 SYN_SENT: being made or made; an earlier run's are closing (06 etc.).
    if (rem === remote && (state === '01' || state === '02')) found.add(local)
  }
  return found
}

/** What the link proxy reports of the run being watched. */
const seen = {
  connection() {
    if (watched && watched.first === undefined) watched.first = now()
  },
  received(bytes) {
    if (!watched) return
    watched.sent += bytes
    if (watched.bulk === undefined && watched.sent >= MiB) watched.bulk = now()
  },
  delivered() {
    if (watched) watched.last = now()
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring one process
// ---------------------------------------------------------------------------------------------

const GNU_TIME = /GNU/.test(tryRun('/usr/bin/time', ['--version']) ?? '') ? '/usr/bin/time' : null

/** Sum of utime+stime (s) and the largest VmHWM (KiB) over a process and its descendants. */
function procSnapshot(rootPid) {
  const tick = 100 // USER_HZ on Linux
  let cpu = 0
  let hwm = 0
  const visit = (pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      cpu += (Number(fields[11]) + Number(fields[12])) / tick
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m) hwm = Math.max(hwm, Number(m[1]))
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        const kids = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
        for (const kid of kids ? kids.split(' ') : []) visit(kid)
      }
    } catch {
      // gone
    }
  }
  visit(rootPid)
  return { cpu, hwm }
}

/**
 * Runs a command; wall from spawn to exit, CPU and peak RSS from GNU time (or, without it, by
 * sampling /proc every 20 ms, which misses the last few milliseconds of CPU), and what `endpoint`
 * saw of it (watchRun).
 */
async function measureCommand(cmd, args, { env, cwd, endpoint }) {
  const timeFile = join(TMP, `time-${process.hrtime.bigint()}.txt`)
  const argv = GNU_TIME ? ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args] : args
  const started = now()
  const child = spawn(GNU_TIME ?? cmd, argv, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  const stopWatching = watchRun(endpoint, started)
  let out = ''
  child.stdout.on('data', (b) => (out += b))
  child.stderr.on('data', (b) => (out += b))
  let sampled = { cpu: 0, hwm: 0 }
  const sampler = GNU_TIME
    ? undefined
    : setInterval(() => {
        const s = procSnapshot(child.pid)
        sampled = { cpu: Math.max(sampled.cpu, s.cpu), hwm: Math.max(sampled.hwm, s.hwm) }
      }, 20)
  const code = await new Promise((ok, ko) => {
    child.on('error', ko)
    child.on('close', ok)
  })
  const wall = now() - started
  const endpointSaw = stopWatching()
  if (sampler) clearInterval(sampler)
  if (code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${out.slice(-3000)}`)
  }
  if (!GNU_TIME) {
    return { wall, cpu: sampled.cpu, rssMB: mb(sampled.hwm), log: out, ...endpointSaw }
  }
  const [, user, sys, maxKiB] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ')
  rmSync(timeFile, { force: true })
  const cpu = Number(user) + Number(sys)
  return { wall, cpu, rssMB: mb(Number(maxKiB)), log: out, ...endpointSaw }
}

// ---------------------------------------------------------------------------------------------
// The contestants
// ---------------------------------------------------------------------------------------------

let TMP
let CERT
let runCounter = 0

/** A console script's own path, not its pyenv shim (which spends ~0.4 s in bash at each start). */
function unshimmed(name) {
  const path = tryRun('pyenv', ['which', name])
  return path && existsSync(path) ? path : name
}
const AWS = unshimmed('aws')
const PYTHON = unshimmed('python3')
const BOTO3_SEED = join(REPO_ROOT, 'scripts', 'bench', 'boto3_seed.py')
/** Peers wanted but not runnable here: name → why (a "not run" row in each scenario). */
const missingPeers = {}

function peerEnv(endpoint) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^AWS_/i.test(k)) env[k] = v
  Object.assign(env, {
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_DEFAULT_REGION: 'us-east-1',
    // No user configuration: the CLI's defaults (8 MiB parts, 10 threads) are what is compared.
    AWS_CONFIG_FILE: join(TMP, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(TMP, 'aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: ''
  })
  if (endpoint.startsWith('https:')) env.AWS_CA_BUNDLE = CERT
  return env
}

/** `aws <args>` against the endpoint. */
async function runPeer(endpoint, args, cwd) {
  return measureCommand(AWS, ['--endpoint-url', endpoint, ...args, '--only-show-errors'], {
    env: peerEnv(endpoint),
    cwd,
    endpoint
  })
}

/** The seed tutorial's upload code (scripts/bench/boto3_seed.py): `paths` to `prefix`/<name>. */
async function runBoto3(endpoint, prefix, paths) {
  return measureCommand(PYTHON, [BOTO3_SEED, BUCKET, prefix, ...paths], {
    env: { ...peerEnv(endpoint), AWS_ENDPOINT_URL: endpoint },
    endpoint
  })
}

/**
 * rclone's environment: a remote named `sink` for the endpoint, and nothing from a config file
 * or from the machine's AWS_* variables (rclone's SDK refuses to start with an AWS_CA_BUNDLE
 * set, as this machine sets it). One setting is not rclone's default: server_side_encryption
 * aws:kms, which s3sink ignores, makes rclone keep each file's MD5 in its metadata instead of
 * reading it from the ETag, as it does for SSE-KMS objects on S3. s3sink's ETags are random, so
 * without it rclone's check after every upload fails ("corrupted on transfer"); on S3 the ETag of
 * a plain upload is the MD5, so rclone makes the same checks there: after each upload, and on a
 * re-deploy with new mtimes, where it hashes each file and, when the MD5s match, copies the
 * object onto itself with the new mtime instead of uploading it.
 */
function rcloneEnv(endpoint) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^(AWS_|RCLONE_)/i.test(k)) env[k] = v
  const remote = 'RCLONE_CONFIG_SINK_'
  Object.assign(env, {
    RCLONE_CONFIG: join(TMP, 'rclone.conf'), // absent: no user configuration
    [`${remote}TYPE`]: 's3',
    [`${remote}PROVIDER`]: 'Other',
    [`${remote}ENDPOINT`]: endpoint,
    [`${remote}REGION`]: 'us-east-1',
    [`${remote}FORCE_PATH_STYLE`]: 'true',
    [`${remote}ACCESS_KEY_ID`]: 'test',
    [`${remote}SECRET_ACCESS_KEY`]: 'test',
    [`${remote}SERVER_SIDE_ENCRYPTION`]: 'aws:kms'
  })
  if (endpoint.startsWith('https:')) env.RCLONE_CA_CERT = CERT
  return env
}

/** `rclone <args>` against the endpoint; rcloneUrl(key) names a key there. */
async function runRclone(endpoint, args) {
  return measureCommand('rclone', args, { env: rcloneEnv(endpoint), endpoint })
}
const rcloneUrl = (key) => `sink:${BUCKET}/${key}`

async function runCurl(endpoint, file, key) {
  const args = ['-sS', '--fail', '-o', '/dev/null', '-T', file, `${endpoint}/${BUCKET}/${key}`]
  if (endpoint.startsWith('https:')) args.unshift('--cacert', CERT)
  return measureCommand('curl', args, { env: process.env, endpoint })
}

/**
 * Our action, via run-action (exactly as a runner runs dist/index.js). `expect` checks the
 * outputs, so a run that skipped work it should have done cannot pass for a fast one.
 */
async function runOurs(variant, { endpoint, cwd, artifacts, prefix, bucket = BUCKET, expect }) {
  const n = ++runCounter
  const rusageFile = join(TMP, `rusage-${n}.json`)
  const imports = [`--import ${RUSAGE_HOOK}`]
  const env = { BENCH_RUSAGE_FILE: rusageFile, ...EXTRA_ENV, ...variant.env }
  if (opt['cpu-prof']) {
    imports.push(`--import ${PROF_HOOK}`)
    env.BENCH_CPU_PROF_FILE = resolve(
      opt['cpu-prof'],
      `${variant.name}-${prefix.replace(/\W+/g, '_')}-${n}.cpuprofile`
    )
  }
  if (endpoint.startsWith('https:')) env.NODE_EXTRA_CA_CERTS = CERT
  // Node options given for the run (e.g. a V8 heap setting to compare) go after the hooks.
  env.NODE_OPTIONS = [...imports, env.NODE_OPTIONS].filter(Boolean).join(' ')
  let started
  let exited
  let stopWatching
  const result = await runAction({
    cwd,
    actionPath: variant.dir,
    endpoint,
    timeoutMs: RUN_TIMEOUT_MS,
    inputs: {
      artifacts,
      bucket,
      'version-prefix': prefix,
      ...variant.checksOff,
      ...COMMON_INPUTS,
      ...variant.inputs
    },
    env,
    onSpawn: (child) => {
      started = now()
      stopWatching = watchRun(endpoint, started)
      child.on('exit', () => (exited = now()))
    }
  })
  const endpointSaw = stopWatching?.() ?? {}
  if (result.exitCode !== 0) {
    const error = new Error(
      `${variant.name} (${variant.dir}) failed for ${prefix} (exit ${result.exitCode}${result.timedOut ? ', timed out' : ''}):\n` +
        `${result.errors.join('\n')}\n--- stdout ---\n${result.stdout.slice(-3000)}\n--- stderr ---\n${result.stderr.slice(-2000)}`
    )
    // Why, on one line: the action's first error, else the first line of its stderr.
    const why = result.errors[0]?.replace(/\s+/g, ' ') ?? result.stderr.trim().split('\n')[0]
    const reason = why && why.length > 160 ? `${why.slice(0, 159)}…` : why
    throw Object.assign(error, { reason: reason || `exit ${result.exitCode}` })
  }
  const usage = JSON.parse(readFileSync(rusageFile, 'utf8'))
  rmSync(rusageFile, { force: true })
  const outputs = result.outputs
  for (const [name, value] of Object.entries(expect ?? {})) {
    if (outputs[name] !== String(value)) {
      throw new Error(
        `${variant.name}: output ${name} is ${JSON.stringify(outputs[name])}, expected ${value} (${prefix})\n${result.stdout.slice(-3000)}`
      )
    }
  }
  return {
    wall: (exited ?? now()) - started,
    cpu: usage.userS + usage.sysS,
    rssMB: mb(usage.maxRssKiB),
    uploaded: Number(outputs.uploaded),
    skipped: Number(outputs.skipped),
    copied: outputs.copied === undefined ? undefined : Number(outputs.copied),
    bytesUploaded: Number(outputs['bytes-uploaded']),
    ...endpointSaw
  }
}

// ---------------------------------------------------------------------------------------------
// Test data: random (AES-CTR keystream) bytes, so no layer of the stack can compress them.
// ---------------------------------------------------------------------------------------------

function writeRandomFile(path, size, seed) {
  const key = createHash('sha256').update(`key:${seed}`).digest().subarray(0, 16)
  const iv = createHash('sha256').update(`iv:${seed}`).digest().subarray(0, 16)
  const cipher = createCipheriv('aes-128-ctr', key, iv)
  const zeros = Buffer.alloc(8 * MiB)
  const fd = openSync(path, 'w')
  try {
    for (let left = size; left > 0;) {
      const n = Math.min(left, zeros.length)
      const chunk = cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n))
      for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off)
      left -= n
    }
  } finally {
    closeSync(fd)
  }
}

/** Files (relative path → size and seed, or a hard link to another) per data set. */
function dataSets(large) {
  const sets = {
    one: { 'one/model.safetensors': { size: GiB, seed: 'one' } },
    many: {},
    release: {},
    large: large ? { 'large/model.safetensors': { size: 5 * GiB, seed: 'large' } } : {},
    moto: { 'moto/one/model.safetensors': { size: 256 * MiB, seed: 'moto-one' } }
  }
  for (let i = 0; i < 200; i++) {
    sets.many[`many/shard-${String(i).padStart(3, '0')}.bin`] = { size: 5 * MiB, seed: `m${i}` }
  }
  for (let i = 0; i < 50; i++) {
    const name = `moto/many/shard-${String(i).padStart(2, '0')}.bin`
    sets.moto[name] = { size: 5 * MiB, seed: `mm${i}` }
  }
  // A sharded model: v3, and v4 where 9 of the 10 shards are the same bytes (hard links).
  for (let i = 1; i <= 10; i++) {
    const shard = `model-${String(i).padStart(5, '0')}-of-00010.safetensors`
    sets.release[`release/v3/${shard}`] = { size: 64 * MiB, seed: `r3-${i}` }
    sets.release[`release/v4/${shard}`] =
      i === 7 ? { size: 64 * MiB, seed: `r4-${i}` } : { link: `release/v3/${shard}` }
  }
  for (const v of ['v3', 'v4']) {
    sets.release[`release/${v}/config.json`] = { size: 4096, seed: `config-${v}` }
    sets.release[`release/${v}/tokenizer.json`] = { size: 2 * MiB, seed: 'tokenizer' }
  }
  return sets
}

function prepareData(dir, large) {
  mkdirSync(dir, { recursive: true })
  const want = Object.assign({}, ...Object.values(dataSets(large)))
  let written = 0
  const started = now()
  for (const [rel, spec] of Object.entries(want)) {
    const path = join(dir, rel)
    const size = spec.link ? want[spec.link].size : spec.size
    const marker = join(dir, '.seeds', `${rel}.seed`)
    const seed = spec.link ? `link:${spec.link}` : spec.seed
    if (existsSync(path) && statSync(path).size === size && readMarker(marker) === seed) continue
    mkdirSync(resolve(path, '..'), { recursive: true })
    rmSync(path, { force: true })
    if (spec.link) linkSync(join(dir, spec.link), path)
    else writeRandomFile(path, size, spec.seed)
    // What each file was made from, outside the directories that are uploaded.
    mkdirSync(resolve(marker, '..'), { recursive: true })
    writeFileSync(marker, seed)
    written += spec.link ? 0 : size
  }
  if (written > 0) {
    console.log(`Generated ${fmt(written / GiB)} GiB of test data in ${fmt(now() - started, 1)} s.`)
  }
}
function readMarker(file) {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

/** ../shared/bench/s3sink.mjs (or --sink), or a clear stop when it is not there. */
function sinkPath() {
  const sink = opt.sink ? resolve(opt.sink) : SINK
  if (!existsSync(sink)) {
    fail(
      `the S3 sink ${sink} is missing. It lives in the shared folder next to the project ` +
        `(../shared/bench/s3sink.mjs); pass --sink PATH if it is elsewhere.`
    )
  }
  return sink
}

async function startSink(https) {
  const sink = sinkPath()
  const port = await freePort()
  const args = [sink, String(port)]
  if (https) args.push(join(TMP, 'cert.pem'), join(TMP, 'key.pem'))
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  serverPid = child.pid
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill('SIGTERM')
  })
  await new Promise((ok, ko) => {
    let out = ''
    const timer = setTimeout(() => ko(new Error(`s3sink did not start: ${out}`)), 10_000)
    const onData = (b) => {
      out += b
      if (/s3sink on/.test(out)) {
        clearTimeout(timer)
        ok()
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('exit', (code) => ko(new Error(`s3sink exited (${code}): ${out}`)))
  })
  return `${https ? 'https' : 'http'}://127.0.0.1:${port}`
}

/**
 * A TCP proxy in front of `target`, like a real link: every chunk is held half the round trip in
 * each direction, and what the clients send shares `uploadMBps` (MB/s, 0 = unlimited), in order
 * and with backpressure. Requests on one connection then cost a round trip each, and uploads
 * take the time a runner's uplink would give them. With `counter`, the bytes each way are added
 * to its `sent` (by the clients) and `received`. What it sees of the run being watched goes to
 * `seen` (see watchRun).
 */
async function startLinkProxy(target, { roundTripMs, uploadMBps, counter }) {
  const { protocol, port: targetPort } = new URL(target)
  const oneWay = roundTripMs / 2
  /** Chunks held at once per direction before the sender is paused. */
  const maxHeld = 64
  /** The upload link: busy until `freeAt` (ms) with the bytes already queued on it. */
  const uplink = uploadMBps > 0 ? { bytesPerMs: uploadMBps * 1000, freeAt: 0 } : undefined
  /** When (performance.now() ms) a chunk sent now arrives: after the link carried it, plus latency. */
  const arrival = (bytes, link) => {
    const now = performance.now()
    if (!link) return now + oneWay
    link.freeAt = Math.max(now, link.freeAt) + bytes / link.bytesPerMs
    return link.freeAt + oneWay
  }
  // One queue per direction, delivered in order (timers of different lengths may fire out of it).
  const relay = (from, to, link, count, delivered = () => {}) => {
    const queue = []
    let timer
    const deliver = () => {
      timer = undefined
      while (queue.length > 0 && queue[0].at <= performance.now()) {
        const { chunk } = queue.shift()
        if (chunk === null) {
          to.end()
          continue
        }
        if (!to.destroyed && !to.write(chunk)) from.pause()
        delivered()
      }
      if (queue.length < maxHeld && !to.writableNeedDrain) from.resume()
      if (queue.length > 0)
        timer = setTimeout(deliver, Math.max(1, queue[0].at - performance.now()))
    }
    const send = (chunk, bytes) => {
      queue.push({ chunk, at: arrival(bytes, link) })
      if (queue.length >= maxHeld) from.pause()
      timer ??= setTimeout(deliver, Math.max(1, queue[0].at - performance.now()))
    }
    from.on('data', (chunk) => {
      count(chunk.length)
      send(chunk, chunk.length)
    })
    from.on('end', () => send(null, 0))
    to.on('drain', () => queue.length < maxHeld && from.resume())
    from.on('error', () => to.destroy())
    // Closed without an end (reset): end the other side once what was queued is through.
    from.on('close', () => from.readableEnded || send(null, 0))
  }
  const server = createServer((client) => {
    seen.connection()
    const upstream = connect(Number(targetPort), '127.0.0.1')
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const sent = (n) => {
      seen.received(n)
      if (counter) counter.sent += n
    }
    relay(client, upstream, uplink, sent, seen.delivered)
    relay(upstream, client, undefined, (n) => counter && (counter.received += n))
  })
  const port = await freePort()
  await new Promise((ok, ko) => server.once('error', ko).listen(port, '127.0.0.1', ok))
  proxyPorts.add(port)
  cleanups.push(() => new Promise((ok) => server.close(ok)))
  return `${protocol}//127.0.0.1:${port}`
}

function makeCertificate() {
  const args = [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    join(TMP, 'key.pem'),
    '-out',
    join(TMP, 'cert.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost'
  ]
  const r = spawnSync('openssl', args, { encoding: 'utf8' })
  if (r.error || r.status !== 0) {
    fail(
      `openssl could not make a self-signed certificate (${r.error?.message ?? r.stderr.trim()}). ` +
        'Install openssl, or run with --http.'
    )
  }
  CERT = join(TMP, 'cert.pem')
}

/** moto_server with a bucket, or undefined (and why) when it cannot run here. */
async function startMoto() {
  let emulatorLib
  try {
    emulatorLib = await import('./lib/emulator.mjs')
  } catch (err) {
    return { why: `scripts/lib/emulator.mjs failed to load: ${err.message}` }
  }
  try {
    const emu = await emulatorLib.startEmulator()
    cleanups.push(() => emu.stop())
    serverPid = emu.pid
    const { s3 } = emulatorLib.makeClients(emu.endpoint)
    const sdk = await import('@aws-sdk/client-s3')
    await s3.send(new sdk.CreateBucketCommand({ Bucket: MOTO_BUCKET }))
    cleanups.push(async () => s3.destroy())
    /** The objects under a prefix: key → size. */
    const list = async (prefix, bucket = MOTO_BUCKET) => {
      const sizes = new Map()
      let token
      do {
        const page = await s3.send(
          new sdk.ListObjectsV2Command({
            Bucket: bucket,
            Prefix: `${prefix}/`,
            ContinuationToken: token
          })
        )
        for (const o of page.Contents ?? []) sizes.set(o.Key, o.Size)
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token)
      return sizes
    }
    /** Deletes a prefix: moto keeps objects in memory. */
    const clear = async (prefix) => {
      const keys = [...(await list(prefix)).keys()].map((Key) => ({ Key }))
      for (let i = 0; i < keys.length; i += 1000) {
        await s3.send(
          new sdk.DeleteObjectsCommand({
            Bucket: MOTO_BUCKET,
            Delete: { Objects: keys.slice(i, i + 1000) }
          })
        )
      }
    }
    return { endpoint: emu.endpoint, clear, list, s3, sdk }
  } catch (err) {
    return { why: err.message.split('\n')[0] }
  }
}
const MOTO_BUCKET = 'bench-moto'

// ---------------------------------------------------------------------------------------------
// Scenarios. Each contestant's `run(pair)` returns { step: measurement }; a pair runs every
// contestant once, in an order that rotates from pair to pair.
// ---------------------------------------------------------------------------------------------

/** The endpoint's process (s3sink or moto_server): its CPU per run shows what the server paid. */
let serverPid
const serverCpu = () => (serverPid ? procSnapshot(serverPid).cpu : NaN)

/** results[scenario][contestant][step] = measurements, one per pair */
const results = {}
/** titles[scenario] = what it runs */
const titles = {}
/** notRun[scenario][variant] = why that build failed, e.g. it lacks the feature measured. */
const notRun = {}

async function runScenario(id, title, contestants) {
  console.log(`\n== ${id}: ${title}`)
  results[id] = {}
  titles[id] = title
  for (let pair = 0; pair < PAIRS; pair++) {
    const shift = pair % contestants.length
    const order = [...contestants.slice(shift), ...contestants.slice(0, shift)]
    for (const c of order) {
      const sinkBefore = serverCpu()
      const steps = await c.run(pair)
      const sinkCpu = serverCpu() - sinkBefore
      for (const [step, m] of Object.entries(steps)) {
        ;((results[id][c.name] ??= {})[step] ??= [])[pair] = m
        const extra =
          (m.uploaded !== undefined
            ? `, uploaded ${m.uploaded}, skipped ${m.skipped}${m.copied !== undefined ? `, copied ${m.copied}` : ''}, ${fmt(m.bytesUploaded / MiB, 0)} MiB sent`
            : '') +
          (m.runnerBytes !== undefined
            ? `, ${fmt(m.runnerBytes / MiB, 1)} MiB through the runner`
            : '') +
          (m.firstRequest !== undefined ? `, first request at ${fmt(m.firstRequest)} s` : '') +
          (m.sentBytes !== undefined
            ? `, 1 MiB sent at ${fmt(m.bulkStart)} s, last byte at ${fmt(m.lastByte)} s, ${fmt(m.sentBytes / MiB, 0)} MiB through the link`
            : '')
        console.log(
          `  pair ${pair + 1}/${PAIRS} ${c.name.padEnd(10)} ${step.padEnd(6)} ` +
            `${fmt(m.wall).padStart(7)} s wall ${fmt(m.cpu).padStart(7)} CPU-s ${fmt(m.rssMB, 0).padStart(5)} MB${extra}` +
            (Object.keys(steps).length === 1 ? ` (server ${fmt(sinkCpu)} CPU-s)` : '')
        )
      }
    }
  }
}

/**
 * The peers' contestants: `runs` maps a contestant's name (a peer's, possibly followed by how it
 * is run, e.g. 'rclone --copy-dest') to its run(pair). Peers not wanted, or missing here, are
 * left out (the table reports the missing ones as not run).
 */
function peerContestants(runs) {
  return Object.entries(runs)
    .filter(([name]) => PEERS.includes(peerOf(name)) && !missingPeers[peerOf(name)])
    .map(([name, run]) => ({ name, peer: true, run }))
}
const peerOf = (name) => name.split(' ')[0]

function ourContestants(run) {
  return VARIANTS.map((v) => ({ name: v.name, variant: v, run: (pair) => run(v, pair) }))
}

/** Medians over pairs, and per-pair ratios of ours to the peer. */
function summarize(id, step, peerName = 'aws-cli') {
  const byContestant = results[id] ?? {}
  const peer = byContestant[peerName]?.[step] ?? []
  return VARIANTS.map((v) => {
    const ours = byContestant[v.name]?.[step] ?? []
    const ratio = (key) => median(ours.map((m, i) => (peer[i] ? m[key] / peer[i][key] : NaN)))
    const med = (list, key) => median(list.map((m) => m?.[key]))
    return {
      variant: v.name,
      n: ours.length,
      peerWall: med(peer, 'wall'),
      ourWall: med(ours, 'wall'),
      wallRatio: ratio('wall'),
      peerCpu: med(peer, 'cpu'),
      ourCpu: med(ours, 'cpu'),
      cpuRatio: ratio('cpu'),
      peerRss: med(peer, 'rssMB'),
      ourRss: med(ours, 'rssMB'),
      peerSent: med(peer, 'sentBytes'),
      ourSent: med(ours, 'sentBytes'),
      ours,
      peer
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Scenario 7: files already in a bucket (a training job's output), published by server-side copy
// ---------------------------------------------------------------------------------------------

const SOURCE_BUCKET = 'bench-training-runs'
const SOURCE_PREFIX = 'run-42'
/** Part size of the source's large file, as a training job's upload might use. */
const SOURCE_PART = 64 * MiB

/** The source's files: scenario 1's 1 GiB file and two small files of scenario 4's release. */
function sourceFiles(dataDir) {
  return {
    'model.safetensors': join(dataDir, 'one/model.safetensors'),
    'config.json': join(dataDir, 'release/v3/config.json'),
    'tokenizer.json': join(dataDir, 'release/v3/tokenizer.json')
  }
}

/**
 * Writes the source bucket as an SDK with default checksums would (CRC32; the large file in
 * parts, so its checksum is COMPOSITE). Returns name → size.
 */
async function seedSource(moto, files) {
  const { s3, sdk } = moto
  await s3.send(new sdk.CreateBucketCommand({ Bucket: SOURCE_BUCKET }))
  const sizes = new Map()
  for (const [name, path] of Object.entries(files)) {
    const object = { Bucket: SOURCE_BUCKET, Key: `${SOURCE_PREFIX}/${name}` }
    const size = statSync(path).size
    if (size > SOURCE_PART) await putInParts(moto, object, path, size)
    else {
      const Body = readFileSync(path)
      await s3.send(new sdk.PutObjectCommand({ ...object, Body, ChecksumAlgorithm: 'CRC32' }))
    }
    sizes.set(name, size)
  }
  return sizes
}

async function putInParts({ s3, sdk }, object, path, size) {
  const { UploadId } = await s3.send(
    new sdk.CreateMultipartUploadCommand({ ...object, ChecksumAlgorithm: 'CRC32' })
  )
  const Parts = []
  const fd = openSync(path, 'r')
  try {
    for (let offset = 0; offset < size; offset += SOURCE_PART) {
      const Body = Buffer.alloc(Math.min(SOURCE_PART, size - offset))
      readSync(fd, Body, 0, Body.length, offset)
      const PartNumber = Parts.length + 1
      const part = { ...object, UploadId, PartNumber, Body, ChecksumAlgorithm: 'CRC32' }
      const { ETag, ChecksumCRC32 } = await s3.send(new sdk.UploadPartCommand(part))
      Parts.push({ PartNumber, ETag, ChecksumCRC32 })
    }
  } finally {
    closeSync(fd)
  }
  await s3.send(
    new sdk.CompleteMultipartUploadCommand({ ...object, UploadId, MultipartUpload: { Parts } })
  )
}

/** Stops the bench unless every source file is at `prefix`/<name> with its size. */
async function checkPublished(moto, prefix, sizes, who) {
  const stored = await moto.list(prefix)
  const missing = [...sizes].filter(([name, size]) => stored.get(`${prefix}/${name}`) !== size)
  if (missing.length > 0) {
    fail(
      `${who} did not publish ${missing.map(([name]) => name).join(', ')} under ${prefix}/ ` +
        `(found: ${[...stored.keys()].join(', ') || 'nothing'})`
    )
  }
}

/** `aws s3 cp --recursive` from `from` to a directory of the runner, then from there to `to`. */
async function downThenUp(endpoint, from, to) {
  const dir = join(TMP, `download-${process.hrtime.bigint()}`)
  const down = await runPeer(endpoint, ['s3', 'cp', '--recursive', from, dir])
  const up = await runPeer(endpoint, ['s3', 'cp', '--recursive', dir, to])
  rmSync(dir, { recursive: true, force: true })
  return {
    wall: down.wall + up.wall,
    cpu: down.cpu + up.cpu,
    rssMB: Math.max(down.rssMB, up.rssMB)
  }
}

/**
 * Scenario 7. The clients reach moto through the link proxy, which counts the bytes through the
 * runner: a server-side copy moves next to none. A build of ours that fails (one without `s3://`
 * sources) is reported as not run, with its first error, and the peers still run.
 */
async function runSourceScenario(moto, { dataDir, tag, ownPrefix }) {
  const started = now()
  const sizes = await seedSource(moto, sourceFiles(dataDir))
  console.log(
    `\nWrote s3://${SOURCE_BUCKET}/${SOURCE_PREFIX}/ on moto_server in ${fmt(now() - started, 1)} s.`
  )
  const counter = { sent: 0, received: 0 }
  const link = { roundTripMs: LATENCY_MS, uploadMBps: RATE_MBPS, counter }
  const endpoint = await startLinkProxy(moto.endpoint, link)
  const from = `s3://${SOURCE_BUCKET}/${SOURCE_PREFIX}/`
  const to = (prefix) => `s3://${MOTO_BUCKET}/${prefix}/`
  /** Runs `run`, then checks and removes what it published; its measurement, with runnerBytes. */
  const measured = async (who, prefix, run) => {
    counter.sent = counter.received = 0
    const m = await run()
    m.runnerBytes = counter.sent + counter.received
    await checkPublished(moto, prefix, sizes, who)
    await moto.clear(prefix)
    return m
  }
  const ours = async (v, prefix) => {
    const inputs = { endpoint, cwd: dataDir, bucket: MOTO_BUCKET, artifacts: `${from}**`, prefix }
    try {
      return { copy: await measured(v.name, prefix, () => runOurs(v, inputs)) }
    } catch (err) {
      if (err.reason === undefined) throw err
      await moto.clear(prefix)
      notRun['7'][v.name] = err.reason
      console.log(`  ${v.name} not run: ${err.reason}`)
      return {}
    }
  }
  notRun['7'] = {}
  const total = [...sizes.values()].reduce((a, b) => a + b, 0)
  await runScenario('7', `${fmt(total / GiB)} GiB in ${sizes.size} files from a source bucket`, [
    ...peerContestants({
      'aws-cli': async (pair) => {
        const p = `s7/peer-${tag(pair)}`
        const cp = ['s3', 'cp', '--recursive', from, to(p)]
        return { copy: await measured('aws s3 cp', p, () => runPeer(endpoint, cp)) }
      }
    }),
    ...(WITH_PEER
      ? [
          {
            name: 'aws-dl+up',
            run: async (pair) => {
              const p = `s7/dl-up-${tag(pair)}`
              const run = () => downThenUp(endpoint, from, to(p))
              return { copy: await measured('aws s3 cp down, then up', p, run) }
            }
          }
        ]
      : []),
    ...ourContestants(async (v, pair) =>
      notRun['7'][v.name] ? {} : ours(v, ownPrefix('s7', v, pair))
    )
  ])
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function main() {
  TMP = await mkdtemp(join(os.tmpdir(), 'model-cdn-bench-'))
  cleanups.push(async () => rmSync(TMP, { recursive: true, force: true }))
  const dataDir = opt['data-dir'] ? resolve(opt['data-dir']) : join(TMP, 'data')

  // Tools, before any test data is written.
  sinkPath()
  const awsVersion = tryRun(AWS, ['--version'])
  if (WITH_PEER && !awsVersion) fail(`AWS CLI (\`aws\`) not found. ${AWS_CLI_HINT}`)
  if (WITH_PEER && !/^aws-cli\/1\./.test(awsVersion)) {
    console.warn(`Note: the peer is meant to be AWS CLI v1; found ${awsVersion}. ${AWS_CLI_HINT}`)
  }
  const boto3Version = PEERS.includes('boto3')
    ? tryRun(PYTHON, [
        '-c',
        'import boto3, botocore; print(boto3.__version__, botocore.__version__)'
      ])
    : undefined
  if (PEERS.includes('boto3') && !boto3Version) {
    missingPeers.boto3 = `boto3 not importable by ${PYTHON} (python3 -m pip install boto3)`
  }
  const rcloneVersion = PEERS.includes('rclone')
    ? tryRun('rclone', ['version'])?.split('\n')[0]
    : undefined
  if (PEERS.includes('rclone') && !rcloneVersion) {
    missingPeers.rclone = 'rclone not found (apt-get install rclone)'
  }
  for (const [name, why] of Object.entries(missingPeers))
    console.warn(`Note: ${name} not run: ${why}`)
  if (WITH_CURL && !tryRun('curl', ['--version'])) fail('curl not found (it gives the floor).')
  if (!GNU_TIME) {
    console.warn(
      'Note: GNU time (/usr/bin/time) not found; peer CPU and RSS are sampled from /proc.'
    )
  }
  const https = !opt.http
  if (https) makeCertificate()

  const cpuModel =
    /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0].model
  const machine = {
    cpu: cpuModel.trim(),
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: os.totalmem() / GiB,
    node: process.version,
    aws: awsVersion?.split(' ')[0] ?? 'not used',
    botocore: /botocore\/(\S+)/.exec(awsVersion ?? '')?.[1],
    python: /Python\/(\S+)/.exec(awsVersion ?? '')?.[1],
    boto3:
      boto3Version?.replace(' ', ' (botocore ').concat(')') ?? missingPeers.boto3 ?? 'not used',
    rclone: rcloneVersion?.replace(/^rclone /, '') ?? missingPeers.rclone ?? 'not used',
    curl: tryRun('curl', ['--version'])?.split(' ')[1],
    kernel: os.release(),
    loadAtStart: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')
  }
  console.log(
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${fmt(machine.memoryGiB, 1)} GiB, ` +
      `Node ${machine.node}, ${machine.aws} (botocore ${machine.botocore}), boto3 ${machine.boto3}, ` +
      `rclone ${machine.rclone}, curl ${machine.curl}; ` +
      `load ${machine.loadAtStart}`
  )
  console.log(
    `Variants: ${VARIANTS.map((v) => `${v.name}=${v.dir} ${JSON.stringify({ ...COMMON_INPUTS, ...v.inputs })}${Object.keys(v.env).length ? ` env ${JSON.stringify(v.env)}` : ''}`).join('; ')}`
  )

  for (const v of VARIANTS) {
    const built = statSync(join(v.dir, 'dist', 'index.js')).mtimeMs
    const src = join(v.dir, 'src')
    const newest = existsSync(src)
      ? Math.max(
          ...readdirSync(src, { recursive: true }).map((f) => statSync(join(src, f)).mtimeMs)
        )
      : 0
    if (newest > built) {
      console.warn(
        `Note: ${v.dir}/src is newer than its dist/index.js: run npm run build there first.`
      )
    }
  }

  const large = opt.large && SCENARIOS.has('3')
  prepareData(dataDir, large)
  if (opt['cpu-prof']) mkdirSync(resolve(opt['cpu-prof']), { recursive: true })

  /** Scenario 5: v4's files that hold v3's bytes and are big enough to be searched for. */
  let known
  const sink = await startSink(https)
  const endpoint = LINK
    ? await startLinkProxy(sink, { roundTripMs: LATENCY_MS, uploadMBps: RATE_MBPS })
    : sink
  console.log(
    `s3sink at ${sink}${LINK ? `, behind a proxy (${LINK}) at ${endpoint}` : ''}; ` +
      `test data in ${dataDir}; ${PAIRS} pair(s) per scenario.`
  )

  const ONE = join(dataDir, 'one/model.safetensors')
  const LARGE = join(dataDir, 'large/model.safetensors')
  const fileCount = (dir) => readdirSync(join(dataDir, dir)).length
  const tag = (pair) => `${Date.now().toString(36)}-${pair}`
  /**
   * A version prefix whose parent (where `reuse-from: auto` looks for identical objects) holds
   * nothing else: otherwise an earlier pair's upload of the same bytes would be copied
   * server-side, and an upload scenario would time a copy.
   */
  const ownPrefix = (scenario, v, pair) => `${scenario}/${v.name}-${tag(pair)}/v1`

  /** Each peer's upload of one file to `scenario`/<peer>-<tag>/, as its users would run it. */
  const peersUploadFile = (scenario, file) =>
    peerContestants({
      'aws-cli': async (pair) => ({
        cp: await runPeer(endpoint, [
          's3',
          'cp',
          file,
          `s3://${BUCKET}/${scenario}/aws-${tag(pair)}/${basename(file)}`
        ])
      }),
      boto3: async (pair) => ({
        cp: await runBoto3(endpoint, `${scenario}/boto3-${tag(pair)}`, [file])
      }),
      rclone: async (pair) => ({
        cp: await runRclone(endpoint, ['copy', file, rcloneUrl(`${scenario}/rclone-${tag(pair)}`)])
      })
    })

  if (SCENARIOS.has('1') || SCENARIOS.has('3')) {
    await runScenario('1', 'one 1 GiB file', [
      ...peersUploadFile('s1', ONE),
      ...ourContestants(async (v, pair) => ({
        cp: await runOurs(v, {
          endpoint,
          cwd: dataDir,
          artifacts: 'one/*.safetensors',
          prefix: ownPrefix('s1', v, pair),
          expect: { uploaded: 1, 'bytes-uploaded': GiB }
        })
      })),
      ...(WITH_CURL
        ? [
            {
              name: 'curl',
              run: async (pair) => ({
                cp: await runCurl(endpoint, ONE, `s1/curl-${tag(pair)}/model.safetensors`)
              })
            }
          ]
        : [])
    ])
  }

  if (SCENARIOS.has('2')) {
    const n = fileCount('many')
    const many = join(dataDir, 'many')
    await runScenario('2', `${n} files × 5 MiB`, [
      ...peerContestants({
        'aws-cli': async (pair) => ({
          cp: await runPeer(endpoint, [
            's3',
            'cp',
            '--recursive',
            many,
            `s3://${BUCKET}/s2/aws-${tag(pair)}/`
          ])
        }),
        boto3: async (pair) => ({ cp: await runBoto3(endpoint, `s2/boto3-${tag(pair)}`, [many]) }),
        rclone: async (pair) => ({
          cp: await runRclone(endpoint, ['copy', many, rcloneUrl(`s2/rclone-${tag(pair)}`)])
        })
      }),
      ...ourContestants(async (v, pair) => ({
        cp: await runOurs(v, {
          endpoint,
          cwd: dataDir,
          artifacts: 'many/*.bin',
          prefix: ownPrefix('s2', v, pair),
          expect: { uploaded: n, 'bytes-uploaded': n * 5 * MiB }
        })
      }))
    ])
  }

  if (SCENARIOS.has('3') && large) {
    await runScenario('3', 'memory: one 5 GiB file', [
      ...peersUploadFile('s3', LARGE),
      ...ourContestants(async (v, pair) => ({
        cp: await runOurs(v, {
          endpoint,
          cwd: dataDir,
          artifacts: 'large/*.safetensors',
          prefix: ownPrefix('s3', v, pair),
          expect: { uploaded: 1, 'bytes-uploaded': 5 * GiB }
        })
      }))
    ])
  }

  const v3 = join(dataDir, 'release/v3')
  const v4 = join(dataDir, 'release/v4')
  const releaseFiles = fileCount('release/v3')
  const releaseBytes = readdirSync(v3).reduce((sum, f) => sum + statSync(join(v3, f)).size, 0)
  const sync = (from, to) => ['s3', 'sync', from, to]
  /** CI checkouts have fresh mtimes: newer than the objects stored by the previous run. */
  const freshMtimes = (dir) => {
    const t = new Date(Date.now() + 3600_000)
    for (const f of readdirSync(dir)) utimesSync(join(dir, f), t, t)
  }
  /** A peer's deploy of v3 to `prefix`, then again from a fresh checkout of the same files. */
  const deployTwice = async (prefix, deploy) => {
    const first = await deploy(prefix)
    freshMtimes(v3)
    return { first, again: await deploy(prefix) }
  }

  if (SCENARIOS.has('4')) {
    await runScenario(
      '4',
      `unchanged re-deploy (${releaseFiles} files, ${fmt(releaseBytes / MiB, 0)} MiB)`,
      [
        ...peerContestants({
          'aws-cli': (pair) =>
            deployTwice(`s4/aws-${tag(pair)}`, (p) =>
              runPeer(endpoint, sync(v3, `s3://${BUCKET}/${p}/`))
            ),
          boto3: (pair) => deployTwice(`s4/boto3-${tag(pair)}`, (p) => runBoto3(endpoint, p, [v3])),
          rclone: (pair) =>
            deployTwice(`s4/rclone-${tag(pair)}`, (p) =>
              runRclone(endpoint, ['sync', v3, rcloneUrl(p)])
            )
        }),
        ...ourContestants(async (v, pair) => {
          const args = {
            endpoint,
            cwd: dataDir,
            artifacts: 'release/v3/*',
            prefix: ownPrefix('s4', v, pair)
          }
          const first = await runOurs(v, { ...args, expect: { uploaded: releaseFiles } })
          const again = await runOurs(v, {
            ...args,
            expect: { uploaded: 0, skipped: releaseFiles, 'bytes-uploaded': 0 }
          })
          return { first, again }
        })
      ]
    )
  }

  if (SCENARIOS.has('5')) {
    // v4's files with v3's bytes that are big enough to be searched for: these should be copied.
    const release = dataSets(false).release
    known = { count: 0, bytes: 0, v4Bytes: 0 }
    for (const [rel, spec] of Object.entries(release)) {
      if (!rel.startsWith('release/v4/')) continue
      const before = release[rel.replace('/v4/', '/v3/')]
      const size = spec.link ? release[spec.link].size : spec.size
      known.v4Bytes += size
      if ((spec.link || spec.seed === before?.seed) && size >= MIN_REUSE_BYTES) {
        known.count++
        known.bytes += size
      }
    }
    /** v3 to `base`/v3 with run(v3, prefix), then v4 to `base`/v4. */
    const v3ThenV4 = async (base, run) => ({
      full: await run(v3, `${base}/v3`),
      next: await run(v4, `${base}/v4`)
    })
    await runScenario('5', 'new version, 9 of 10 shards byte-identical to the previous one', [
      ...peerContestants({
        'aws-cli': (pair) =>
          v3ThenV4(`s5/aws-${tag(pair)}`, (dir, p) =>
            runPeer(endpoint, sync(dir, `s3://${BUCKET}/${p}/`))
          ),
        boto3: (pair) =>
          v3ThenV4(`s5/boto3-${tag(pair)}`, (dir, p) => runBoto3(endpoint, p, [dir])),
        rclone: (pair) =>
          v3ThenV4(`s5/rclone-${tag(pair)}`, (dir, p) =>
            runRclone(endpoint, ['sync', dir, rcloneUrl(p)])
          ),
        // rclone's own way to reuse: server-side copies of the files it finds identical in v3.
        'rclone --copy-dest': (pair) => {
          const base = `s5/rclone-copy-dest-${tag(pair)}`
          return v3ThenV4(base, (dir, p) => {
            const copyDest = dir === v4 ? ['--copy-dest', rcloneUrl(`${base}/v3`)] : []
            return runRclone(endpoint, ['sync', ...copyDest, dir, rcloneUrl(p)])
          })
        }
      }),
      ...ourContestants(async (v, pair) => {
        const base = `s5/${v.name}-${tag(pair)}`
        const common = { endpoint, cwd: dataDir }
        const full = await runOurs(v, {
          ...common,
          artifacts: 'release/v3/*',
          prefix: `${base}/v3`,
          expect: { uploaded: releaseFiles }
        })
        const next = await runOurs(v, {
          ...common,
          artifacts: 'release/v4/*',
          prefix: `${base}/v4`,
          // How many were copied is checked in the table: fewer copies is slower, not faster.
          expect: reuses(v) ? {} : { uploaded: releaseFiles }
        })
        return { full, next }
      })
    ])
  }

  if (SCENARIOS.has('8')) {
    const counts = opt.huge ? [...FILE_COUNTS, HUGE_FILE_COUNT] : FILE_COUNTS
    await runFileCountScenario(counts, {
      ...{ runScenario, peerContestants, ourContestants, runPeer, runOurs },
      ...{ endpoint, bucket: BUCKET, dataDir, tag, ownPrefix }
    })
  }

  let motoNote
  const onMoto = ['6', '7'].filter((id) => SCENARIOS.has(id))
  const moto = onMoto.length ? await startMoto() : undefined
  if (moto && !moto.endpoint) {
    motoNote = `Scenario ${onMoto.join(' and ')} skipped: moto_server unavailable (${moto.why}).`
    console.warn(motoNote)
  }
  if (SCENARIOS.has('6') && moto?.endpoint) {
    const motoDir = join(dataDir, 'moto')
    const nMany = fileCount('moto/many')
    const mOne = join(motoDir, 'one/model.safetensors')
    const ours = (v, prefix, artifacts, expect) =>
      runOurs(v, {
        endpoint: moto.endpoint,
        cwd: dataDir,
        bucket: MOTO_BUCKET,
        artifacts,
        prefix,
        expect
      })
    const peer = (args) => runPeer(moto.endpoint, args)
    await runScenario('6a', 'moto_server (HTTP): one 256 MiB file', [
      ...peerContestants({
        'aws-cli': async (pair) => {
          const p = `s6a/peer-${tag(pair)}`
          const cp = await peer(['s3', 'cp', mOne, `s3://${MOTO_BUCKET}/${p}/model.safetensors`])
          await moto.clear(p)
          return { cp }
        }
      }),
      ...ourContestants(async (v, pair) => {
        const p = ownPrefix('s6a', v, pair)
        const cp = await ours(v, p, 'moto/one/*.safetensors', { uploaded: 1 })
        await moto.clear(p)
        return { cp }
      })
    ])
    await runScenario('6b', `moto_server (HTTP): ${nMany} files × 5 MiB, then unchanged again`, [
      ...peerContestants({
        'aws-cli': async (pair) => {
          const p = `s6b/peer-${tag(pair)}`
          const to = `s3://${MOTO_BUCKET}/${p}/`
          const first = await peer(sync(join(motoDir, 'many'), to))
          freshMtimes(join(motoDir, 'many'))
          const again = await peer(sync(join(motoDir, 'many'), to))
          await moto.clear(p)
          return { first, again }
        }
      }),
      ...ourContestants(async (v, pair) => {
        const p = ownPrefix('s6b', v, pair)
        const first = await ours(v, p, 'moto/many/*.bin', { uploaded: nMany })
        const again = await ours(v, p, 'moto/many/*.bin', { uploaded: 0, 'bytes-uploaded': 0 })
        await moto.clear(p)
        return { first, again }
      })
    ])
  }
  if (SCENARIOS.has('7') && moto?.endpoint) {
    await runSourceScenario(moto, { dataDir, tag, ownPrefix })
  }

  machine.loadAtEnd = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')
  report(machine, { motoNote, releaseFiles, known })
  if (opt.json) {
    writeFileSync(
      resolve(opt.json),
      JSON.stringify({ machine, variants: VARIANTS, results }, null, 2)
    )
    console.log(`\nRaw numbers: ${resolve(opt.json)}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/** Issue 24's targets: scenarios 1–5 behind a 200 MB/s uplink; scenario 1 also on loopback. */
const TARGETS = {
  fastestPeer: 0.95,
  curl: 1.1,
  many: 0.85,
  firstDeploy: 0.9,
  unchanged: 0.2,
  nextVersion: 0.35,
  loopbackWall: 0.75,
  loopbackCpu: 0.8,
  rssMB: 160,
  largeRss: 1.15,
  startupS: 0.2
}
const check = (ok) => (ok === undefined ? '' : ok ? 'yes' : 'NO')
/** Contestants by scenario step: [name, how the table calls it]. */
const LABELS = {
  one: [
    ['aws-cli', 'aws s3 cp'],
    ['boto3', 'boto3 upload_file (seed)'],
    ['rclone', 'rclone copy'],
    ['curl', 'curl -T (floor)']
  ],
  many: [
    ['aws-cli', 'aws s3 cp --recursive'],
    ['boto3', 'boto3 seed loop'],
    ['rclone', 'rclone copy']
  ],
  first: [
    ['aws-cli', 'aws s3 sync'],
    ['boto3', 'boto3 seed loop'],
    ['rclone', 'rclone sync']
  ],
  again: [
    ['aws-cli', 'aws s3 sync (fresh checkout)'],
    ['boto3', 'boto3 seed loop (all again)'],
    ['rclone', 'rclone sync (fresh checkout)']
  ],
  next: [
    ['aws-cli', 'aws s3 sync (new prefix)'],
    ['boto3', 'boto3 seed loop'],
    ['rclone', 'rclone sync (new prefix)'],
    ['rclone --copy-dest', 'rclone sync --copy-dest v3']
  ]
}

function report(machine, context) {
  const machineLine =
    `${machine.cpu}, ${machine.cores} cores, ${fmt(machine.memoryGiB, 1)} GiB RAM, Linux ${machine.kernel}; ` +
    `Node ${machine.node}; ${machine.aws} (botocore ${machine.botocore}, Python ${machine.python}); ` +
    `boto3 ${machine.boto3}; rclone ${machine.rclone}; curl ${machine.curl}; ` +
    `load average ${machine.loadAtStart} at start, ${machine.loadAtEnd} at end`
  const motoIds = ['6', '7'].filter((id) => results[id === '6' ? '6a' : id])
  const how =
    `Medians of ${PAIRS} pair(s), each running every contestant once in a rotating order; ` +
    'ratios are medians of per-pair ratios. ' +
    `Endpoint: s3sink over ${opt.http ? 'HTTP' : 'HTTPS'} on loopback (discards bytes)` +
    `${LINK ? `, behind a proxy adding ${LINK}` : ''}` +
    `${motoIds.length ? `, and moto_server over HTTP (scenario ${motoIds.join(', ')})` : ''}. ` +
    'CPU = user+sys of the whole process; RSS = peak resident set (MB = 10^6 bytes). ' +
    `Targets: issue 24's ${RATE_MBPS > 0 ? 'behind an uplink cap' : 'on loopback'}.`
  const tables = [
    ['', mainTable(context)],
    ['Start-up: seconds from spawn to the first connection at the endpoint', startupTable()],
    [
      'Behind the link, scenario 1: seconds from spawn (1 MiB sent = the bulk upload began)',
      timelineTable()
    ]
  ].filter(([, t]) => t.rows.length > 0)

  console.log(`\n${'='.repeat(100)}\nResults — ${machineLine}\n${how}`)
  for (const [title, t] of tables) printText(title, t)
  if (context.motoNote) console.log(`\n${context.motoNote}`)
  if (VARIANTS.length > 1) printVariantComparison()

  console.log('\n--- Markdown (for docs/performance.md) ---\n')
  console.log(`Machine: ${machineLine}.\n\n${how}`)
  for (const [title, t] of tables) printMarkdown(title, t)
  if (context.motoNote) console.log(`\n${context.motoNote}`)
}

/** A table as { columns: [key, heading][], rows: object[] }, aligned for the terminal. */
function printText(title, { columns, rows }) {
  const cell = (r, k) => r[k] ?? ''
  const widths = columns.map(([k, h]) => Math.max(h.length, ...rows.map((r) => cell(r, k).length)))
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ')
  console.log(title ? `\n${title}\n` : '')
  console.log(line(columns.map(([, h]) => h)))
  console.log(line(widths.map((w) => '-'.repeat(w))))
  for (const r of rows) console.log(line(columns.map(([k]) => cell(r, k))))
}

function printMarkdown(title, { columns, rows }) {
  console.log(title ? `\n${title}:\n` : '')
  console.log(`| ${columns.map(([, h]) => h).join(' | ')} |`)
  console.log(`| ${columns.map(() => '---').join(' | ')} |`)
  for (const r of rows) {
    console.log(`| ${columns.map(([k]) => (r[k] ?? '').replace(/\|/g, '\\|')).join(' | ')} |`)
  }
}

/** Ours against every contestant, per scenario, with issue 24's targets. */
function mainTable({ releaseFiles, known }) {
  const rows = []
  const add = (scenario, peer, s, target = '', met = undefined) =>
    rows.push({
      scenario: VARIANTS.length > 1 ? `${scenario} [${s.variant}]` : scenario,
      peer,
      peerWall: fmt(s.peerWall),
      ourWall: fmt(s.ourWall),
      wallRatio: fmt(s.wallRatio),
      cpu: `${fmt(s.ourCpu)} / ${fmt(s.peerCpu)}`,
      cpuRatio: fmt(s.cpuRatio),
      rss: `${fmt(s.ourRss, 0)} / ${fmt(s.peerRss, 0)}`,
      sent: `${fmt(s.ourSent / MiB, 0)} / ${fmt(s.peerSent / MiB, 0)}`,
      target,
      met: check(met)
    })
  /** A row for each contestant of `labels` that ran; target(s, name) → [text, met]. */
  const versus = (id, step, scenario, labels, target = () => []) => {
    for (const [name, label] of labels) {
      if (!results[id]?.[name]) continue
      for (const s of summarize(id, step, name)) add(scenario, label, s, ...target(s, name))
    }
  }
  const notRunRows = (scenario) => {
    for (const [name, why] of Object.entries(missingPeers)) {
      rows.push({ scenario, peer: `${name}: not run: ${why}` })
    }
  }
  const behindLink = RATE_MBPS > 0
  /** The target against one peer only, behind the link: [text, met] on its row. */
  const against = (peer, limit) => (s, name) =>
    behindLink && name === peer ? [`≤ ${fmt(limit)}×`, s.wallRatio <= limit] : []

  if (results['1']) {
    const fastest = fastestPeer('1', 'cp')
    versus('1', 'cp', '1. one 1 GiB file', LABELS.one, (s, name) => {
      if (behindLink && name === fastest) {
        return [
          `≤ ${fmt(TARGETS.fastestPeer)}× the fastest peer`,
          s.wallRatio <= TARGETS.fastestPeer
        ]
      }
      if (behindLink && name === 'curl')
        return [`≤ ${fmt(TARGETS.curl)}×`, s.wallRatio <= TARGETS.curl]
      if (!behindLink && name === 'aws-cli') {
        return [
          `wall ≤ ${fmt(TARGETS.loopbackWall)}×, CPU ≤ ${fmt(TARGETS.loopbackCpu)}×`,
          s.wallRatio <= TARGETS.loopbackWall && s.cpuRatio <= TARGETS.loopbackCpu
        ]
      }
      return []
    })
    notRunRows('1. one 1 GiB file')
  }
  if (results['2']) {
    versus('2', 'cp', '2. 200 files × 5 MiB', LABELS.many, against('aws-cli', TARGETS.many))
    notRunRows('2. 200 files × 5 MiB')
  }
  memoryRows(add, versus)
  if (results['4']) {
    const scenario = `4. first deploy (${releaseFiles} files)`
    versus('4', 'first', scenario, LABELS.first, against('aws-cli', TARGETS.firstDeploy))
    notRunRows(scenario)
    const ours = summarize('4', 'again')
    const noBytes = ours.every((s) => s.ours.every((m) => m.bytesUploaded === 0))
    versus('4', 'again', '4. unchanged re-deploy', LABELS.again, (s, name) => {
      if (name !== 'aws-cli') return []
      const bytes = noBytes ? '0 bytes sent' : 'BYTES SENT'
      return behindLink
        ? [
            `≤ ${fmt(TARGETS.unchanged)}×, 0 bytes: ${bytes}`,
            s.wallRatio <= TARGETS.unchanged && noBytes
          ]
        : [`0 bytes: ${bytes}`, noBytes]
    })
  }
  if (results['5']) {
    const scenario = '5. v4, 9/10 shards known'
    versus('5', 'next', scenario, LABELS.next, (s, name) => {
      if (name !== 'aws-cli') return []
      const [text, copied] = copyCheck(s, known)
      return behindLink
        ? [`≤ ${fmt(TARGETS.nextVersion)}×, ${text}`, s.wallRatio <= TARGETS.nextVersion && copied]
        : [text, copied]
    })
    notRunRows(scenario)
  }
  motoRows(add)
  fileCountRows(results, summarize, add)
  const columns = [
    ['scenario', 'Scenario'],
    ['peer', 'Peer'],
    ['peerWall', 'Peer wall s'],
    ['ourWall', 'Our wall s'],
    ['wallRatio', 'Wall ours/peer'],
    ['cpu', 'CPU s ours / peer'],
    ['cpuRatio', 'CPU ours/peer'],
    ['rss', 'Peak RSS MB ours / peer'],
    ...(LINK ? [['sent', 'Sent MiB ours / peer']] : []),
    ['target', 'Target'],
    ['met', 'Met']
  ]
  return { columns, rows }
}

/** The peer (not curl) with the lowest median wall in a scenario's step. */
function fastestPeer(id, step) {
  const walls = Object.entries(results[id] ?? {})
    .filter(([name]) => PEER_NAMES.includes(peerOf(name)))
    .map(([name, steps]) => [name, median((steps[step] ?? []).map((m) => m?.wall))])
  return walls.sort((a, b) => a[1] - b[1])[0]?.[0]
}

/** Scenario 5's check: every known file copied and only the rest sent, in every pair. */
function copyCheck(s, known) {
  const v = VARIANTS.find((x) => x.name === s.variant)
  const last = s.ours[s.ours.length - 1]
  const how = last ? `${last.copied ?? 0} copied, ${last.uploaded} uploaded` : ''
  if (!reuses(v)) return [`${how} (baseline: no server-side copy)`, true]
  const all = s.ours.every(
    (m) => m.copied === known.count && m.bytesUploaded === known.v4Bytes - known.bytes
  )
  return [`${known.count} known copied: ${how}${all ? '' : ', NOT ALL COPIED'}`, all]
}

/** Peak RSS: the 1 GiB file of scenario 1, and the 5 GiB one (--large) against it. */
function memoryRows(add, versus) {
  const oneGiB = results['1'] ? summarize('1', 'cp') : []
  for (const s of oneGiB) {
    add(
      '3. peak RSS, 1 GiB file',
      'aws s3 cp',
      s,
      `RSS ≤ ${TARGETS.rssMB} MB`,
      s.ourRss <= TARGETS.rssMB
    )
  }
  if (results['3']) {
    versus('3', 'cp', '3. peak RSS, 5 GiB file', LABELS.one, (s, name) => {
      const base = oneGiB.find((x) => x.variant === s.variant)?.ourRss
      if (name !== 'aws-cli' || !Number.isFinite(base)) return []
      const limit = TARGETS.largeRss
      return [`RSS ≤ ${fmt(limit)}× 1 GiB: ${fmt(s.ourRss / base)}×`, s.ourRss <= limit * base]
    })
  }
}

/** Scenarios 6 and 7, on moto_server, against the AWS CLI. */
function motoRows(add) {
  if (results['6a']) {
    for (const s of summarize('6a', 'cp')) add('6. moto: one 256 MiB file', 'aws s3 cp', s)
    const firsts = summarize('6b', 'first')
    for (const s of summarize('6b', 'again')) {
      const f = firsts.find((x) => x.variant === s.variant)
      add('6. moto: 50 × 5 MiB', 'aws s3 sync', f)
      const noBytes = s.ours.every((m) => m.bytesUploaded === 0)
      add('6. moto: unchanged again', 'aws s3 sync (fresh checkout)', s, '0 bytes sent', noBytes)
    }
  }
  if (results['7']) {
    const bytes = (list) => median(list.map((m) => m?.runnerBytes))
    const peers = [
      ['aws-cli', 'aws s3 cp --recursive, S3 to S3'],
      ['aws-dl+up', 'aws s3 cp --recursive down, then up']
    ]
    for (const [peerName, label] of peers) {
      for (const s of summarize('7', 'copy', peerName)) {
        const why = notRun['7'][s.variant]
        const through = `${fmt(bytes(s.ours) / MiB, 1)} / ${fmt(bytes(s.peer) / MiB, 1)} MiB`
        const target = why ? `not run: ${why}` : `≤ 1 MiB through the runner: ${through}`
        add(
          '7. 1 GiB from a source bucket',
          label,
          s,
          target,
          why ? undefined : bytes(s.ours) <= MiB
        )
      }
    }
  }
}

/** Per scenario, the median start-up of each contestant over all its runs there. */
function startupTable() {
  const names = [...VARIANTS.map((v) => v.name), ...PEER_NAMES, 'curl']
  const rows = []
  for (const [id, byContestant] of Object.entries(results)) {
    const startup = (name) =>
      median(
        Object.values(byContestant[name] ?? {}).flatMap((runs) => runs.map((m) => m?.firstRequest))
      )
    const row = { scenario: `${id}. ${titles[id]}` }
    for (const name of names) row[name] = fmt(startup(name))
    const ours = VARIANTS.map((v) => startup(v.name))
    if (!ours.every(Number.isFinite)) continue
    row.target = `≤ ${fmt(TARGETS.startupS)} s`
    row.met = check(ours.every((t) => t <= TARGETS.startupS))
    rows.push(row)
  }
  const used = names.filter((name) => rows.some((r) => r[name] !== '–'))
  const columns = [
    ['scenario', 'Scenario'],
    ...used.map((name) => [name, name]),
    ['target', 'Target (ours)'],
    ['met', 'Met']
  ]
  return { columns, rows }
}

/** Behind the link: when each contestant of scenario 1 connected, began its bulk upload, ended. */
function timelineTable() {
  const rows = []
  for (const [name, steps] of Object.entries(results['1'] ?? {})) {
    const runs = steps.cp ?? []
    if (!runs.some((m) => m?.sentBytes !== undefined)) continue
    const med = (key) => fmt(median(runs.map((m) => m?.[key])))
    rows.push({
      name,
      first: med('firstRequest'),
      bulk: med('bulkStart'),
      last: med('lastByte'),
      exit: med('wall'),
      sent: fmt(median(runs.map((m) => m?.sentBytes)) / MiB, 0)
    })
  }
  const columns = [
    ['name', 'Contestant'],
    ['first', 'First request'],
    ['bulk', '1 MiB sent'],
    ['last', 'Last byte delivered'],
    ['exit', 'Exit'],
    ['sent', 'MiB sent']
  ]
  return { columns, rows }
}

/** Each variant against the first one, per scenario and step (per-pair ratios). */
function printVariantComparison() {
  const [base, ...others] = VARIANTS
  console.log(`\nVariants vs ${base.name} (median of per-pair ratios; wall / CPU / RSS):`)
  for (const [id, byContestant] of Object.entries(results)) {
    for (const step of Object.keys(byContestant[base.name] ?? {})) {
      const b = byContestant[base.name][step]
      const parts = [
        `${base.name} ${fmt(median(b.map((m) => m.wall)))} s / ${fmt(median(b.map((m) => m.cpu)))} CPU-s / ${fmt(median(b.map((m) => m.rssMB)), 0)} MB`
      ]
      for (const v of others) {
        const o = byContestant[v.name]?.[step] ?? []
        const r = (k) => median(o.map((m, i) => m[k] / b[i]?.[k]))
        parts.push(
          `${v.name} ${fmt(median(o.map((m) => m.wall)))} s (${fmt(r('wall'))}×) / ${fmt(median(o.map((m) => m.cpu)))} (${fmt(r('cpu'))}×) / ${fmt(median(o.map((m) => m.rssMB)), 0)} MB (${fmt(r('rssMB'))}×)`
        )
      }
      console.log(`  ${id} ${step}: ${parts.join('; ')}`)
    }
  }
}

try {
  await main()
} catch (err) {
  console.error(err?.benchMessage ? `bench: ${err.message}` : `\nbench failed: ${err.stack ?? err}`)
  process.exitCode = 1
} finally {
  await cleanup()
}
