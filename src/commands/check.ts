import type { Clients } from '../aws/clients.js'
import {
  preflightFailure,
  runPreflight,
  type PreflightError,
  type PreflightFinding
} from '../cdn/preflight/index.js'
import type { DeployInputs } from '../common/types.js'

/** What `check` found: every pre-flight finding, and the failure its errors make. */
export interface CheckReport {
  bucket: string
  distributionId?: string
  findings: PreflightFinding[]
  /** Set when a finding is an error: the set-up would leave models unreachable or unprotected. */
  failure?: PreflightError
}

/** The pre-flight checks alone, read-only: what a deploy would check before its first write. */
export async function check(
  inputs: Pick<DeployInputs, 'bucket' | 'region' | 'distributionId' | 'versionPrefix' | 'signing'>,
  clients: Clients,
  deps: { signal?: AbortSignal }
): Promise<CheckReport> {
  const findings = await runPreflight(
    clients,
    {
      bucket: inputs.bucket,
      region: inputs.region,
      distributionId: inputs.distributionId,
      versionPrefix: inputs.versionPrefix,
      signingKeyPairId: inputs.signing?.keyPairId
    },
    { signal: deps.signal }
  )
  return {
    bucket: inputs.bucket,
    distributionId: inputs.distributionId,
    findings,
    failure: preflightFailure(findings)
  }
}
