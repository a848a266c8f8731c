/**
 * AWS's reference CloudFront signer (botocore's CloudFrontSigner, run by python3), so the tests
 * compare the action's signed URLs and cookies with what AWS's own code produces.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { REPO_ROOT } from './run-action.js'

const SCRIPT = join(REPO_ROOT, '__tests__/helpers/reference_signer.py')

export interface ReferenceRequest {
  privateKey: string
  keyPairId: string
  url: string
  /** Epoch seconds. */
  expires: number
  /** Signs a custom policy for this resource (e.g. `https://d/v1/*`) instead of a canned one. */
  policyResource?: string
}

export interface ReferenceResult {
  signedUrl: string
  /** The custom policy JSON, when policyResource was given. */
  policy?: string
}

/** Signs every request with botocore in one python3 process (it takes a moment to start). */
export function referenceSign(requests: ReferenceRequest[]): ReferenceResult[] {
  const out = execFileSync('python3', [SCRIPT], {
    input: JSON.stringify(requests),
    encoding: 'utf8',
    timeout: 60_000
  })
  return JSON.parse(out) as ReferenceResult[]
}
