import type { SetupClientSet } from '../aws/clients.js'
import { runPreflight, type PreflightFinding } from '../cdn/preflight/index.js'
import type { Logger } from '../common/types.js'
import type { SetupOptions } from '../inputs/setup.js'
import { accountIdOf } from '../setup/account.js'
import { ensureBucket, inspectBucket } from '../setup/bucket.js'
import { ensureBucketPolicy } from '../setup/bucket-policy.js'
import { ensureDistribution } from '../setup/distribution.js'
import { ensureGitHubOidcProvider } from '../setup/github-oidc-provider.js'
import { ensureGitHubRole } from '../setup/github-role.js'
import { githubSubjects } from '../setup/github-subjects.js'
import { ensureOriginAccessControl } from '../setup/origin-access-control.js'
import { ensureKeyGroup, ensurePublicKey } from '../setup/signing-keys.js'
import type { SetupChange, SetupContext } from '../setup/types.js'

/** What setup made or found: the ids a deploy needs, what changed, and the pre-flight after. */
export interface SetupReport {
  bucket: string
  region: string
  dryRun: boolean
  distributionId?: string
  distributionDomain?: string
  originAccessControlId?: string
  publicKeyId?: string
  keyGroupId?: string
  roleArn?: string
  /** Empty when everything was in place already. */
  changes: SetupChange[]
  /** The deploy's pre-flight checks on the result; undefined in a dry run. */
  preflight?: PreflightFinding[]
}

export interface SetupDeps {
  logger: Logger
  signal?: AbortSignal
}

/**
 * Creates what is missing and tightens what is loose, in dependency order: the bucket, the
 * signing keys and the OAC, the distribution that uses them, the bucket policy naming the
 * distribution, the GitHub role naming both. Read-only checks come first, so a bucket of another
 * account or region, or a refused read, stops it before anything is changed.
 */
export async function setup(
  options: SetupOptions,
  clients: SetupClientSet,
  deps: SetupDeps
): Promise<SetupReport> {
  const changes: SetupChange[] = []
  const ctx = setupContext(options.dryRun, clients, deps, changes)
  const { bucket, region } = options
  const { exists } = await inspectBucket(clients, { bucket, region }, deps.signal)
  const accountId = await accountIdOf(ctx)
  await ensureBucket(ctx, { ...options, exists })
  // An adopted distribution switches its origin to the OAC below: the bucket must already let
  // it read, or it serves 403s in between.
  if (options.distributionId) {
    const distributionArn = `arn:aws:cloudfront::${accountId}:distribution/${options.distributionId}`
    await ensureBucketPolicy(ctx, { bucket, distributionArn })
  }
  const signing = await ensureSigningKeys(ctx, options)
  const originAccessControlId = await ensureOriginAccessControl(ctx, { bucket })
  const distribution = await ensureDistribution(ctx, {
    ...options,
    originAccessControlId,
    keyGroupId: signing.keyGroupId,
    signedUrls: options.publicKeyPem !== undefined
  })
  await ensureBucketPolicy(ctx, { bucket, distributionArn: distribution?.arn })
  const roleArn = await ensureRole(ctx, options, accountId, distribution?.id)
  const report: SetupReport = {
    bucket,
    region,
    dryRun: options.dryRun,
    distributionId: distribution?.id,
    distributionDomain: distribution?.domain,
    originAccessControlId,
    ...signing,
    roleArn,
    changes
  }
  if (options.dryRun || !distribution) return report
  return { ...report, preflight: await checkResult(clients, options, report, deps.signal) }
}

/** What each step is given: the clients, and where it records what it changed (and logs it). */
function setupContext(
  dryRun: boolean,
  clients: SetupClientSet,
  deps: SetupDeps,
  changes: SetupChange[]
): SetupContext {
  return {
    clients,
    dryRun,
    logger: deps.logger,
    signal: deps.signal,
    change: (change) => {
      changes.push(change)
      const verb = dryRun
        ? `Would ${change.action}`
        : `${change.action === 'create' ? 'Created' : 'Updated'}`
      deps.logger.info(`${verb} ${change.resource}: ${change.detail}`)
    }
  }
}

async function ensureSigningKeys(
  ctx: SetupContext,
  options: Pick<SetupOptions, 'bucket' | 'publicKeyPem'>
): Promise<{ publicKeyId?: string; keyGroupId?: string }> {
  if (!options.publicKeyPem) return {}
  const publicKeyId = await ensurePublicKey(ctx, {
    bucket: options.bucket,
    publicKeyPem: options.publicKeyPem
  })
  const keyGroupId = await ensureKeyGroup(ctx, { bucket: options.bucket, publicKeyId })
  return { publicKeyId, keyGroupId }
}

async function ensureRole(
  ctx: SetupContext,
  options: Pick<SetupOptions, 'github' | 'roleName' | 'bucket'>,
  accountId: string,
  distributionId: string | undefined
): Promise<string | undefined> {
  if (!options.github) return undefined
  const providerArn = await ensureGitHubOidcProvider(ctx)
  return ensureGitHubRole(ctx, {
    roleName: options.roleName,
    providerArn,
    subjects: githubSubjects(options.github),
    bucket: options.bucket,
    accountId,
    distributionId
  })
}

/** The checks a deploy runs before its first write, on what setup made: none may fail. */
function checkResult(
  clients: SetupClientSet,
  options: Pick<SetupOptions, 'bucket' | 'region' | 'signedPathPattern'>,
  report: SetupReport,
  signal: AbortSignal | undefined
): Promise<PreflightFinding[]> {
  return runPreflight(
    clients,
    {
      bucket: options.bucket,
      region: options.region,
      distributionId: report.distributionId,
      // A version as a deploy would publish it: under the signed path pattern when there is one.
      versionPrefix: samplePrefix(options.signedPathPattern),
      signingKeyPairId: report.publicKeyId
    },
    { signal }
  )
}

/** `private/*` → `private/v1`: a prefix the pattern covers. */
function samplePrefix(pattern: string | undefined): string {
  if (!pattern) return 'v1'
  const base = pattern.replace(/\*.*$/, '').replace(/\/+$/, '')
  return base ? `${base}/v1` : 'v1'
}
