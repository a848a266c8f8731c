import path from 'node:path'
import { Inputs, MiB } from '../common/constants.js'
import { InputError } from '../common/errors.js'
import { checkAliasName, isInside } from '../common/paths.js'
import { validateExtraPath } from '../cdn/invalidation.js'
import { parseSigningInputs } from '../cdn/signing.js'
import type { DeployInputs, InvalidateMode, Mode } from '../common/types.js'
import {
  isAscii,
  isHttpUrl,
  parseMetadata,
  parseReuseFrom,
  patternEscapesWorkspace,
  validatePrefix
} from './checks.js'
import { InputValues, type InputReader } from './values.js'
import { isS3Pattern, parseS3Patterns } from '../publish/s3-source.js'

/** S3 bucket naming rules (general purpose buckets). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/
/** CloudFront ids: upper-case letters and digits, e.g. E1A2B3C4D5E6F7. */
const DISTRIBUTION_ID = /^[A-Z0-9]{8,32}$/
/** AWS regions (us-east-1), and the names S3-compatible stores use (R2's `auto`). */
const REGION = /^[a-z0-9]+(-[a-z0-9]+)*$/
const MIME_TYPE = /^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/

/**
 * Parses and validates every input at once, so a run with several mistakes reports all of
 * them before anything is sent.
 */
export function parseInputs(read: InputReader, env: NodeJS.ProcessEnv = process.env): DeployInputs {
  const values = new InputValues(read)
  const workspace = path.resolve(env.GITHUB_WORKSPACE || process.cwd())
  // The problems are listed in the order of these calls; later groups check against earlier ones.
  const mode = values.choice<Mode>(Inputs.Mode)
  const sources = parseSources(values, { mode, workspace })
  const target = parseTarget(values)
  const invalidation = parseInvalidation(values, target)
  const transfer = parseTransfer(values)
  const objects = parseObjects(values)
  const release = parseRelease(values, {
    mode,
    versionPrefix: target.versionPrefix,
    manifest: objects.manifest
  })
  const signing = parseSigning(values, target)
  const prCommentId = parsePrCommentId(values)
  const aws = parseAws(values, env)
  const waits = parseWaits(values)
  const switches = parseSwitches(values)

  if (values.problems.length > 0) {
    const { problems } = values
    throw new InputError(
      `Invalid input${problems.length > 1 ? 's' : ''}; nothing was uploaded:\n- ${problems.join('\n- ')}`
    )
  }
  return {
    mode,
    workspace,
    ...sources,
    ...target,
    ...invalidation,
    ...transfer,
    ...objects,
    ...release,
    signing,
    prCommentId,
    ...aws,
    ...waits,
    ...switches,
    // Its default (`${{ github.token }}`) is an expression only the runner expands.
    githubToken: values.text(Inputs.GithubToken)
  }
}

/**
 * The files to publish: the patterns, and the directory their keys are relative to; or the
 * objects `s3://` patterns select, and the prefix their keys are relative to.
 */
function parseSources(
  values: InputValues,
  { mode, workspace }: Pick<DeployInputs, 'mode' | 'workspace'>
): Pick<DeployInputs, 'artifacts' | 'root' | 's3Sources' | 'sourceHash'> {
  const artifacts = values.lines(Inputs.Artifacts)
  const sourceHash = values.choice<DeployInputs['sourceHash']>(Inputs.SourceHash)
  if (artifacts.length === 0 && mode === 'deploy') {
    values.problem('`artifacts` is required: one glob pattern per line.')
  }
  const s3Lines = artifacts.filter(isS3Pattern)
  if (s3Lines.length > 0) {
    return { artifacts, sourceHash, ...parseS3Sources(values, artifacts, s3Lines.length) }
  }
  return { artifacts, sourceHash, ...parseLocalSources(values, artifacts, workspace) }
}

/**
 * `s3://` patterns: all lines must be, since a key relative to a local directory and one relative
 * to an S3 prefix could not say which root a `root` is.
 */
function parseS3Sources(
  values: InputValues,
  artifacts: string[],
  s3Count: number
): Pick<DeployInputs, 's3Sources'> {
  if (s3Count < artifacts.length) {
    const local = artifacts.filter((line) => !isS3Pattern(line))
    values.problem(
      `\`artifacts\` mixes \`s3://\` patterns with local ones (${local.join(', ')}); publish S3 objects and local files in separate steps (or separate versions), or copy the local files to the source bucket first.`
    )
    return {}
  }
  try {
    return { s3Sources: parseS3Patterns(artifacts, values.text(Inputs.Root) || undefined) }
  } catch (err) {
    if (!(err instanceof InputError)) throw err
    values.problem(err.hint ? `${err.message} ${err.hint}` : err.message)
    return {}
  }
}

function parseLocalSources(
  values: InputValues,
  artifacts: string[],
  workspace: string
): Pick<DeployInputs, 'root'> {
  for (const pattern of artifacts) {
    const problem = patternEscapesWorkspace(pattern, workspace)
    if (problem) values.problem(problem)
  }

  const rootInput = values.text(Inputs.Root)
  if (!rootInput) return { root: undefined }
  if (isS3Pattern(rootInput)) {
    values.problem(
      `\`root\` "${rootInput}" is an S3 prefix, but \`artifacts\` are local files; give \`s3://\` patterns to publish objects from S3, or a directory in the workspace as \`root\`.`
    )
    return { root: undefined }
  }
  const root = path.resolve(workspace, rootInput)
  if (!isInside(root, workspace)) {
    values.problem(
      `\`root\` "${rootInput}" is outside the workspace ${workspace}; give a directory inside it, relative to the workspace, or leave \`root\` empty.`
    )
  }
  return { root }
}

/** Where the files go: the bucket, the version's prefix, the distribution and its URL. */
function parseTarget(
  values: InputValues
): Pick<DeployInputs, 'bucket' | 'versionPrefix' | 'distributionId' | 'urlBase'> {
  const bucket = values.required(Inputs.Bucket)
  if (bucket && !BUCKET_NAME.test(bucket)) {
    values.problem(
      `\`bucket\` "${bucket}" is not a valid S3 bucket name (3–63 characters: lower-case letters, digits, dots, hyphens). Give the name only, not an ARN or s3:// URL.`
    )
  }

  const versionPrefix = validatePrefix(values.required(Inputs.VersionPrefix), values.problems)

  const distributionId = values.text(Inputs.DistributionId) || undefined
  if (distributionId && !DISTRIBUTION_ID.test(distributionId)) {
    values.problem(
      `\`distribution-id\` "${distributionId}" is not a CloudFront distribution id (upper-case letters and digits, e.g. E1A2B3C4D5E6F7). Give the id, not the domain or ARN.`
    )
  }

  const urlBaseInput = values.text(Inputs.UrlBase)
  const urlBase = urlBaseInput ? urlBaseInput.replace(/\/+$/, '') : undefined
  if (urlBase !== undefined && !isHttpUrl(urlBase)) {
    values.problem(`\`url-base\` "${urlBase}" must be an http(s) URL.`)
  }
  return { bucket, versionPrefix, distributionId, urlBase }
}

/** Which paths to invalidate. */
function parseInvalidation(
  values: InputValues,
  { distributionId }: Pick<DeployInputs, 'distributionId'>
): Pick<DeployInputs, 'invalidate' | 'invalidationPaths'> {
  const invalidate = values.choice<InvalidateMode>(Inputs.Invalidate)
  const invalidationPaths: string[] = []
  for (const p of values.lines(Inputs.InvalidationPaths)) {
    try {
      invalidationPaths.push(validateExtraPath(p))
    } catch (err) {
      values.problem((err as Error).message)
    }
  }
  if (invalidationPaths.length > 0 && !distributionId) {
    values.problem('`invalidation-paths` needs `distribution-id`.')
  }
  return { invalidate, invalidationPaths }
}

/** How the bytes are sent: multipart threshold, part size, parallelism. */
function parseTransfer(
  values: InputValues
): Pick<DeployInputs, 'multipartThresholdBytes' | 'partSizeBytes' | 'concurrency'> {
  const multipartThresholdMb = values.number(Inputs.MultipartThresholdMb)
  const partSizeMb = values.optionalNumber(Inputs.PartSizeMb)
  return {
    multipartThresholdBytes: Math.round(multipartThresholdMb * MiB),
    partSizeBytes: partSizeMb === undefined ? undefined : Math.round(partSizeMb * MiB),
    concurrency: values.number(Inputs.Concurrency)
  }
}

/** What is written with each object, where its bytes may be copied from, and the manifest. */
function parseObjects(
  values: InputValues
): Pick<DeployInputs, 'contentType' | 'cacheControl' | 'metadata' | 'reuseFrom' | 'manifest'> {
  const contentType = values.text(Inputs.ContentType) || undefined
  if (contentType && !MIME_TYPE.test(contentType)) {
    values.problem(
      `\`content-type\` "${contentType}" is not a MIME type such as application/octet-stream.`
    )
  }
  return {
    contentType,
    cacheControl: parseCacheControl(values, Inputs.CacheControl),
    metadata: parseMetadata(values.lines(Inputs.Metadata), values.problems),
    reuseFrom: parseReuseFrom(values.lines(Inputs.ReuseFrom), values.problems),
    manifest: values.bool(Inputs.Manifest)
  }
}

function parseCacheControl(
  values: InputValues,
  name: typeof Inputs.CacheControl | typeof Inputs.AliasCacheControl
): string {
  const cacheControl = values.textOrDefault(name)
  if (/[\r\n]/.test(cacheControl) || !isAscii(cacheControl)) {
    values.problem(`\`${name}\` must be one line of ASCII text.`)
  }
  return cacheControl
}

/** The alias moved to the version, and the aliases a clean-up must not delete. */
function parseRelease(
  values: InputValues,
  { mode, versionPrefix, manifest }: Pick<DeployInputs, 'mode' | 'versionPrefix' | 'manifest'>
): Pick<DeployInputs, 'alias' | 'aliasCacheControl' | 'aliases'> {
  const alias =
    validatePrefix(values.text(Inputs.Alias), values.problems, Inputs.Alias) || undefined
  if (alias && versionPrefix) values.attempt(() => checkAliasName(alias, versionPrefix))
  if (mode === 'promote' && !alias) {
    values.problem('`mode: promote` needs `alias`: the alias to point at `version-prefix`.')
  }
  if (alias && mode === 'deploy' && !manifest) {
    values.problem(
      '`alias` needs `manifest: true`: `<alias>/manifest.json` is how clients and later runs tell which version the alias points to.'
    )
  }
  return {
    alias,
    aliasCacheControl: parseCacheControl(values, Inputs.AliasCacheControl),
    aliases: values
      .lines(Inputs.Aliases)
      .map((a) => validatePrefix(a, values.problems, Inputs.Aliases))
  }
}

/** The key that signs URLs and cookies, and their lifetime (checked by cdn/signing.ts). */
function parseSigning(
  values: InputValues,
  { distributionId, urlBase }: Pick<DeployInputs, 'distributionId' | 'urlBase'>
): DeployInputs['signing'] {
  const signing = parseSigningInputs(
    {
      keyPairId: values.raw(Inputs.SigningKeyPairId),
      privateKey: values.raw(Inputs.SigningPrivateKey),
      expiresIn: values.text(Inputs.SignedUrlExpiresIn)
    },
    values.problems
  )
  if (signing && !distributionId && !urlBase) {
    values.problem(
      '`signing-private-key` needs `distribution-id` or `url-base`: signed URLs are CloudFront URLs.'
    )
  }
  return signing
}

function parsePrCommentId(values: InputValues): string | undefined {
  const id = values.text(Inputs.PrCommentId)
  return id ? values.attempt(() => validateCommentId(id)) : undefined
}

/** The region, and the endpoint of an S3-compatible store. */
function parseAws(
  values: InputValues,
  env: NodeJS.ProcessEnv
): Pick<DeployInputs, 'region' | 'endpointUrl'> {
  const region =
    values.text(Inputs.AwsRegion) || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1'
  if (!REGION.test(region)) {
    values.problem(`\`aws-region\` "${region}" is not a region name such as us-east-1.`)
  }
  const endpointUrl = values.text(Inputs.EndpointUrl) || undefined
  if (endpointUrl && !isHttpUrl(endpointUrl)) {
    values.problem(`\`endpoint-url\` "${endpointUrl}" must be an http(s) URL.`)
  }
  return { region, endpointUrl }
}

/** How long the run waits: for its invalidations, and for another run's lock. */
function parseWaits(
  values: InputValues
): Pick<DeployInputs, 'waitForInvalidation' | 'waitTimeoutMinutes' | 'lockTimeoutMinutes'> {
  return {
    waitForInvalidation: values.bool(Inputs.WaitForInvalidation),
    waitTimeoutMinutes: values.number(Inputs.WaitTimeoutMinutes),
    lockTimeoutMinutes: values.number(Inputs.LockTimeoutMinutes)
  }
}

/** The on/off inputs that depend on no other. */
function parseSwitches(
  values: InputValues
): Pick<DeployInputs, 'overwrite' | 'dryRun' | 'preflight' | 'verify' | 'prComment'> {
  return {
    overwrite: values.bool(Inputs.Overwrite),
    dryRun: values.bool(Inputs.DryRun),
    preflight: values.bool(Inputs.Preflight),
    verify: values.bool(Inputs.Verify),
    prComment: values.bool(Inputs.PrComment)
  }
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
