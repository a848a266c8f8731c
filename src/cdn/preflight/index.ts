/**
 * Pre-flight: read-only checks, before the first upload, that the bucket and the distribution are
 * set up so the models end up private and reachable. Each finding says what is wrong and how to
 * fix it. Severity follows one rule: `error` when every request for the deployed models would
 * fail (AccessDenied, 403, wrong origin) or a private setup would serve them to anyone; `warning`
 * when the deploy works but something is weaker than the documented setup (rollback, cleanup,
 * legacy OAI). A check the credentials may not read is `unchecked`, never a failure.
 */
import type { CloudFrontClient, GetDistributionCommandOutput } from '@aws-sdk/client-cloudfront'
import type { S3Client } from '@aws-sdk/client-s3'
import { DeployError } from '../../common/errors.js'
import { bucketSettingChecks, readBucketSettings, unreachableBucketCheck } from './bucket.js'
import { policyCheck } from './bucket-policy.js'
import { distributionChecks } from './distribution.js'
import type { PreflightCheck, PreflightFinding, PreflightTarget } from './types.js'

export { PREFLIGHT_PERMISSIONS } from './read.js'
export type { PreflightCheck, PreflightFinding, PreflightStatus, PreflightTarget } from './types.js'

/** The order findings are reported in: from the distribution down to the bucket. */
const CHECK_ORDER: PreflightCheck[] = [
  'bucket',
  'distribution',
  'origin',
  'origin-access-control',
  'bucket-policy',
  'signed-urls',
  'public-access-block',
  'versioning',
  'lifecycle'
]

export interface PreflightClients {
  s3: S3Client
  cloudfront: CloudFrontClient
}

export interface PreflightOptions {
  signal?: AbortSignal
  /** GetDistribution already sent for the target's distribution (requestDistribution). */
  distribution?: Promise<GetDistributionCommandOutput>
}

/**
 * Runs every check that applies, concurrently where independent, with read-only calls. Never
 * throws for what it finds or cannot read; rethrows only when `signal` aborts.
 */
export async function runPreflight(
  clients: PreflightClients,
  target: PreflightTarget,
  opts: PreflightOptions = {}
): Promise<PreflightFinding[]> {
  const { bucket, distributionId } = target
  const [settings, distribution] = await Promise.all([
    readBucketSettings(clients.s3, bucket, opts.signal),
    distributionId
      ? distributionChecks(
          clients.cloudfront,
          target,
          distributionId,
          opts.signal,
          opts.distribution
        )
      : undefined
  ])
  if (opts.signal?.aborted) throw opts.signal.reason

  const findings = [...(distribution?.findings ?? [])]
  const unreachable = unreachableBucketCheck(bucket, settings)
  if (unreachable) {
    findings.push(unreachable)
  } else {
    if (distributionId && distribution?.arn) {
      findings.push(
        policyCheck(target, settings.policy, {
          ...distribution,
          id: distributionId,
          arn: distribution.arn
        })
      )
    }
    findings.push(...bucketSettingChecks(target, settings))
  }
  return findings.sort((a, b) => CHECK_ORDER.indexOf(a.check) - CHECK_ORDER.indexOf(b.check))
}

/** A finding as the log shows it: the message, then the fix on its own line. */
export function formatFinding(finding: PreflightFinding): string {
  return `Pre-flight ${finding.check}: ${finding.message}${finding.fix ? `\nFix: ${finding.fix}` : ''}`
}

/** Pre-flight found errors; carries every finding, so the job summary can show the table. */
export class PreflightError extends DeployError {
  constructor(
    message: string,
    hint: string,
    readonly findings: PreflightFinding[]
  ) {
    super(message, hint)
  }
}

/** One PreflightError listing every error finding with its fix, or undefined when there is none. */
export function preflightFailure(findings: PreflightFinding[]): PreflightError | undefined {
  const errors = findings.filter((f) => f.status === 'error')
  if (errors.length === 0) return undefined
  const list = errors
    .map((f, i) => `${i + 1}. ${f.check}: ${f.message}${f.fix ? `\n   Fix: ${f.fix}` : ''}`)
    .join('\n')
  return new PreflightError(
    `Pre-flight found ${errors.length} problem(s) that would leave the models unreachable or unprotected; nothing was uploaded.\n${list}`,
    'Fix the setup as described and run again, or set `preflight: false` to deploy without these checks.',
    findings
  )
}
