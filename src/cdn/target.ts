import { customS3Endpoint, type Clients } from '../aws/clients.js'
import { getDistribution, requestDistribution, type DistributionInfo } from './distribution.js'
import {
  formatFinding,
  preflightFailure,
  runPreflight,
  type PreflightFinding
} from './preflight/index.js'
import { s3UrlBase } from './urls.js'
import type { DeployInputs, Logger } from '../common/types.js'

/** Where a run publishes: the distribution (if any), the base of the URLs, and the checks run. */
export interface Target {
  distribution?: DistributionInfo
  urlBase: string
  /** Undefined when `preflight` is false. */
  preflight?: PreflightFinding[]
}

export interface TargetDeps {
  env: NodeJS.ProcessEnv
  logger: Logger
  /** Logs a warning and keeps it for the summary. */
  warn: (message: string) => void
  signal?: AbortSignal
}

/**
 * Runs the pre-flight checks (read-only; an error finding stops the run before anything is
 * written), reads the distribution, and settles the URL base: `url-base`, else the
 * distribution's domain, else the bucket's own URL.
 */
export async function resolveTarget(
  inputs: Pick<
    DeployInputs,
    | 'bucket'
    | 'region'
    | 'distributionId'
    | 'versionPrefix'
    | 'signing'
    | 'preflight'
    | 'urlBase'
    | 'endpointUrl'
  >,
  clients: Clients,
  deps: TargetDeps
): Promise<Target> {
  const distributionResponse = inputs.distributionId
    ? requestDistribution(clients.cloudfront, inputs.distributionId, deps.signal)
    : undefined
  // Awaited below or by the pre-flight; a pre-flight that fails first must not leave it unhandled.
  distributionResponse?.catch(() => undefined)
  let preflight: PreflightFinding[] | undefined
  if (inputs.preflight) {
    preflight = await runPreflight(
      clients,
      {
        bucket: inputs.bucket,
        region: inputs.region,
        distributionId: inputs.distributionId,
        versionPrefix: inputs.versionPrefix,
        signingKeyPairId: inputs.signing?.keyPairId
      },
      { signal: deps.signal, distribution: distributionResponse }
    )
    for (const finding of preflight) {
      if (finding.status === 'ok') deps.logger.info(formatFinding(finding))
      else if (finding.status !== 'error') deps.warn(formatFinding(finding))
    }
    const failure = preflightFailure(preflight)
    if (failure) throw failure
  }

  let distribution: DistributionInfo | undefined
  if (inputs.distributionId && distributionResponse) {
    distribution = await getDistribution(distributionResponse, inputs.distributionId)
    if (!distribution.enabled && !preflight) {
      deps.warn(
        `CloudFront distribution ${distribution.id} is disabled: the URLs will not serve until it is enabled.`
      )
    }
  }
  const urlBase =
    inputs.urlBase ??
    (distribution
      ? `https://${distribution.domain}`
      : s3UrlBase(inputs.bucket, inputs.region, customS3Endpoint(inputs, deps.env)))
  return { distribution, urlBase, preflight }
}
