import path from 'node:path'
import { Inputs } from '../common/constants.js'
import { collectInputError, InputError } from '../common/errors.js'
import { checkAliasName, isInside } from '../common/paths.js'
import { validateExtraPath } from '../cdn/invalidation.js'
import { parseSigningInputs } from '../cdn/signing.js'
import type { DeployInputs, InvalidateMode, Mode } from '../common/types.js'
import {
  MAX_METADATA_BYTES,
  MAX_PART_SIZE,
  MiB,
  MIN_PART_SIZE,
  SHA256_METADATA_KEY
} from '../common/constants.js'

/** Reads one raw input (core.getInput in the action; a map in tests). */
export type InputReader = (name: string) => string

const INVALIDATE_MODES: readonly InvalidateMode[] = ['auto', 'all', 'none']
const MODES: readonly Mode[] = ['deploy', 'promote', 'cleanup']
/** Characters a version segment may hold: safe unencoded in S3 keys, URLs and CloudFront paths. */
const SAFE_SEGMENT = /^[A-Za-z0-9._+=@,-]+$/
/** S3 bucket naming rules (general purpose buckets). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/
/** CloudFront ids: upper-case letters and digits, e.g. E1A2B3C4D5E6F7. */
const DISTRIBUTION_ID = /^[A-Z0-9]{8,32}$/
/** AWS regions (us-east-1), and the names S3-compatible stores use (R2's `auto`). */
const REGION = /^[a-z0-9]+(-[a-z0-9]+)*$/
const METADATA_KEY = /^[A-Za-z0-9][A-Za-z0-9_-]*$/
const MIME_TYPE = /^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/

/**
 * Parses and validates every input at once, so a run with several mistakes reports all of
 * them before anything is sent.
 */
export function parseInputs(read: InputReader, env: NodeJS.ProcessEnv = process.env): DeployInputs {
  const problems: string[] = []
  const text = (name: string): string => read(name).trim()
  const required = (name: string): string => {
    const value = text(name)
    if (!value) problems.push(`\`${name}\` is required.`)
    return value
  }
  const bool = (name: string, fallback: boolean): boolean => {
    const value = text(name)
    if (!value) return fallback
    if (/^(true|yes|on|1)$/i.test(value)) return true
    if (/^(false|no|off|0)$/i.test(value)) return false
    problems.push(`\`${name}\` must be true or false, got "${value}".`)
    return fallback
  }
  const num = (name: string, fallback: number | undefined, min: number, max: number, unit = '') => {
    const value = text(name)
    if (!value) return fallback
    const n = Number(value)
    if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(n)) {
      problems.push(`\`${name}\` must be a number, got "${value}".`)
      return fallback
    }
    if (n < min || n > max) {
      problems.push(`\`${name}\` must be between ${min} and ${max}${unit}, got ${value}.`)
      return fallback
    }
    return n
  }
  const lines = (name: string): string[] =>
    read(name)
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))

  const attempt = <T>(parse: () => T) => collectInputError(problems, parse)

  const workspace = path.resolve(env.GITHUB_WORKSPACE || process.cwd())

  const mode = (text(Inputs.Mode) || 'deploy').toLowerCase() as Mode
  if (!MODES.includes(mode)) {
    problems.push(`\`mode\` must be one of ${MODES.join(', ')}; got "${text(Inputs.Mode)}".`)
  }

  const artifacts = lines(Inputs.Artifacts)
  if (artifacts.length === 0 && mode === 'deploy') {
    problems.push('`artifacts` is required: one glob pattern per line.')
  }
  for (const pattern of artifacts) {
    const problem = patternEscapesWorkspace(pattern, workspace)
    if (problem) problems.push(problem)
  }

  let root: string | undefined
  const rootInput = text(Inputs.Root)
  if (rootInput) {
    root = path.resolve(workspace, rootInput)
    if (!isInside(root, workspace)) {
      problems.push(
        `\`root\` "${rootInput}" is outside the workspace ${workspace}; give a directory inside it, relative to the workspace, or leave \`root\` empty.`
      )
    }
  }

  const bucket = required(Inputs.Bucket)
  if (bucket && !BUCKET_NAME.test(bucket)) {
    problems.push(
      `\`bucket\` "${bucket}" is not a valid S3 bucket name (3–63 characters: lower-case letters, digits, dots, hyphens). Give the name only, not an ARN or s3:// URL.`
    )
  }

  const versionPrefix = validatePrefix(required(Inputs.VersionPrefix), problems)

  const distributionId = text(Inputs.DistributionId) || undefined
  if (distributionId && !DISTRIBUTION_ID.test(distributionId)) {
    problems.push(
      `\`distribution-id\` "${distributionId}" is not a CloudFront distribution id (upper-case letters and digits, e.g. E1A2B3C4D5E6F7). Give the id, not the domain or ARN.`
    )
  }

  let urlBase = text(Inputs.UrlBase) || undefined
  if (urlBase) {
    urlBase = urlBase.replace(/\/+$/, '')
    if (!isHttpUrl(urlBase)) problems.push(`\`url-base\` "${urlBase}" must be an http(s) URL.`)
  }

  const invalidate = (text(Inputs.Invalidate) || 'auto').toLowerCase() as InvalidateMode
  if (!INVALIDATE_MODES.includes(invalidate)) {
    problems.push(
      `\`invalidate\` must be one of auto, all, none; got "${text(Inputs.Invalidate)}".`
    )
  }

  const invalidationPaths: string[] = []
  for (const p of lines(Inputs.InvalidationPaths)) {
    try {
      invalidationPaths.push(validateExtraPath(p))
    } catch (err) {
      problems.push((err as Error).message)
    }
  }
  if (invalidationPaths.length > 0 && !distributionId) {
    problems.push('`invalidation-paths` needs `distribution-id`.')
  }

  // Above 1 GiB a single PutObject is a poor bet: a failure late in it resends every byte.
  const multipartThresholdMb = num(Inputs.MultipartThresholdMb, 16, 5, 1024, ' MiB')
  const partSizeMb = num(
    Inputs.PartSizeMb,
    undefined,
    MIN_PART_SIZE / MiB,
    MAX_PART_SIZE / MiB,
    ' MiB'
  )
  const concurrency = num(Inputs.Concurrency, 8, 1, 64)
  if (concurrency !== undefined && !Number.isInteger(concurrency)) {
    problems.push(`\`concurrency\` must be a whole number, got ${concurrency}.`)
  }

  const contentType = text(Inputs.ContentType) || undefined
  if (contentType && !MIME_TYPE.test(contentType)) {
    problems.push(
      `\`content-type\` "${contentType}" is not a MIME type such as application/octet-stream.`
    )
  }

  const cacheControl = text(Inputs.CacheControl) || 'public, max-age=31536000, immutable'
  if (/[\r\n]/.test(cacheControl) || !isAscii(cacheControl)) {
    problems.push('`cache-control` must be one line of ASCII text.')
  }

  const metadata = parseMetadata(lines(Inputs.Metadata), problems)

  const reuseFrom = parseReuseFrom(lines(Inputs.ReuseFrom), problems)
  const manifest = bool(Inputs.Manifest, true)

  const alias = validatePrefix(text(Inputs.Alias), problems, Inputs.Alias) || undefined
  if (alias && versionPrefix) attempt(() => checkAliasName(alias, versionPrefix))
  if (mode === 'promote' && !alias) {
    problems.push('`mode: promote` needs `alias`: the alias to point at `version-prefix`.')
  }
  if (alias && mode === 'deploy' && !manifest) {
    problems.push(
      '`alias` needs `manifest: true`: `<alias>/manifest.json` is how clients and later runs tell which version the alias points to.'
    )
  }
  const aliasCacheControl = text(Inputs.AliasCacheControl) || 'public, max-age=60'
  if (/[\r\n]/.test(aliasCacheControl) || !isAscii(aliasCacheControl)) {
    problems.push('`alias-cache-control` must be one line of ASCII text.')
  }
  const aliases = lines(Inputs.Aliases).map((a) => validatePrefix(a, problems, Inputs.Aliases))

  const signing = parseSigningInputs(
    {
      keyPairId: read(Inputs.SigningKeyPairId),
      privateKey: read(Inputs.SigningPrivateKey),
      expiresIn: text(Inputs.SignedUrlExpiresIn)
    },
    problems
  )
  if (signing && !distributionId && !urlBase) {
    problems.push(
      '`signing-private-key` needs `distribution-id` or `url-base`: signed URLs are CloudFront URLs.'
    )
  }

  const prCommentIdInput = text(Inputs.PrCommentId)
  const prCommentId = prCommentIdInput
    ? attempt(() => validateCommentId(prCommentIdInput))
    : undefined

  const region = text(Inputs.AwsRegion) || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1'
  if (!REGION.test(region)) {
    problems.push(`\`aws-region\` "${region}" is not a region name such as us-east-1.`)
  }

  const endpointUrl = text(Inputs.EndpointUrl) || undefined
  if (endpointUrl && !isHttpUrl(endpointUrl)) {
    problems.push(`\`endpoint-url\` "${endpointUrl}" must be an http(s) URL.`)
  }

  const inputs: DeployInputs = {
    mode,
    artifacts,
    root,
    bucket,
    versionPrefix,
    distributionId,
    urlBase,
    invalidate,
    invalidationPaths,
    waitForInvalidation: bool(Inputs.WaitForInvalidation, true),
    waitTimeoutMinutes: num(Inputs.WaitTimeoutMinutes, 15, 0, 360, ' minutes') ?? 15,
    lockTimeoutMinutes: num(Inputs.LockTimeoutMinutes, 60, 0, 360, ' minutes') ?? 60,
    multipartThresholdBytes: Math.round((multipartThresholdMb ?? 16) * MiB),
    partSizeBytes: partSizeMb === undefined ? undefined : Math.round(partSizeMb * MiB),
    concurrency: concurrency ?? 8,
    contentType,
    cacheControl,
    metadata,
    overwrite: bool(Inputs.Overwrite, false),
    manifest,
    reuseFrom,
    dryRun: bool(Inputs.DryRun, false),
    region,
    endpointUrl,
    workspace,
    alias,
    aliasCacheControl,
    aliases,
    preflight: bool(Inputs.Preflight, true),
    verify: bool(Inputs.Verify, true),
    signing,
    prComment: bool(Inputs.PrComment, true),
    prCommentId,
    githubToken: text(Inputs.GithubToken)
  }
  if (problems.length > 0) {
    throw new InputError(
      `Invalid input${problems.length > 1 ? 's' : ''}; nothing was uploaded:\n- ${problems.join('\n- ')}`
    )
  }
  return inputs
}

/** A key prefix given as an input (`version-prefix`, `alias`…): normalised, or problems added. */
export function validatePrefix(
  raw: string,
  problems: string[],
  name: string = Inputs.VersionPrefix
): string {
  if (!raw) return raw
  const where = `\`${name}\` "${raw}"`
  if (raw.startsWith('/')) problems.push(`${where} must not start with "/" (write v3, not /v3).`)
  const prefix = raw.replace(/^\/+/, '').replace(/\/$/, '')
  const segments = prefix.split('/')
  if (segments.some((s) => s === '')) problems.push(`${where} has an empty segment ("//").`)
  if (segments.some((s) => s === '.' || s === '..')) {
    problems.push(`${where} must not contain "." or ".." segments.`)
  }
  const bad = segments.filter((s) => s && s !== '.' && s !== '..' && !SAFE_SEGMENT.test(s))
  if (bad.length > 0) {
    problems.push(
      `${where} may only use letters, digits and . _ - + = @ , (S3, URLs and CloudFront paths treat other characters differently).`
    )
  }
  return prefix
}

/** `auto` (or empty), `none`, or the prefixes to search for identical objects. */
function parseReuseFrom(entries: string[], problems: string[]): DeployInputs['reuseFrom'] {
  if (entries.length === 0 || (entries.length === 1 && entries[0].toLowerCase() === 'auto')) {
    return 'auto'
  }
  if (entries.length === 1 && entries[0].toLowerCase() === 'none') return []
  return entries.map((entry) => validatePrefix(entry, problems, Inputs.ReuseFrom))
}

function parseMetadata(entries: string[], problems: string[]): Record<string, string> {
  const metadata: Record<string, string> = {}
  for (const line of entries) {
    const eq = line.indexOf('=')
    if (eq <= 0) {
      problems.push(`\`metadata\` line "${line}" must be key=value.`)
      continue
    }
    const key = line.slice(0, eq).trim().toLowerCase()
    const value = line.slice(eq + 1).trim()
    if (!METADATA_KEY.test(key)) {
      problems.push(`\`metadata\` key "${key}" may only use letters, digits, "-" and "_".`)
    } else if (key === SHA256_METADATA_KEY) {
      problems.push(
        `\`metadata\` key "${key}" is reserved: the action stores each file's SHA-256 there.`
      )
    } else if (key in metadata) {
      problems.push(`\`metadata\` key "${key}" is given twice (keys are case-insensitive).`)
    } else if (!isAscii(value)) {
      problems.push(
        `\`metadata\` value of "${key}" must be printable ASCII (S3 sends metadata as HTTP headers).`
      )
    } else {
      metadata[key] = value
    }
  }
  // S3 counts user metadata as the UTF-8 bytes of keys and values; the sha256 entry is ours.
  const size = Object.entries({ ...metadata, [SHA256_METADATA_KEY]: '0'.repeat(64) }).reduce(
    (sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v),
    0
  )
  if (size > MAX_METADATA_BYTES) {
    problems.push(
      `\`metadata\` is ${size} bytes with the sha256 entry; S3 allows ${MAX_METADATA_BYTES} bytes of user metadata per object.`
    )
  }
  return metadata
}

/** A reason the pattern reaches outside the workspace, or undefined when it stays inside. */
function patternEscapesWorkspace(pattern: string, workspace: string): string | undefined {
  const body = pattern.replace(/^!+/, '')
  const resolved = path.resolve(workspace, body)
  if (!isInside(resolved, workspace)) {
    return `artifact pattern "${pattern}" points outside the workspace ${workspace}; patterns are relative to the workspace.`
  }
  return undefined
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:'
  } catch {
    return false
  }
}

function isAscii(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value)
}

const COMMENT_ID = /^[A-Za-z0-9._/@+-]{1,100}$/

/**
 * Checks a comment discriminator (e.g. a model name) and returns it trimmed. It goes into an
 * HTML comment, so `--` and `>` could end the marker early; the allowed set excludes both.
 */
export function validateCommentId(id: string): string {
  const trimmed = id.trim()
  if (!COMMENT_ID.test(trimmed) || trimmed.includes('--')) {
    throw new InputError(
      `Comment id "${id}" is not usable.`,
      'Use 1 to 100 letters, digits and . _ / @ + - (no "--"), e.g. the model name, so each deploy step of a pull request keeps its own comment.'
    )
  }
  return trimmed
}
