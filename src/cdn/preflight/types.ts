/** What pre-flight checks and what it reports: the shapes every check shares. */

export type PreflightCheck =
  | 'bucket'
  | 'distribution'
  | 'origin'
  | 'origin-access-control'
  | 'bucket-policy'
  | 'signed-urls'
  | 'public-access-block'
  | 'versioning'
  | 'lifecycle'

export type PreflightStatus = 'ok' | 'warning' | 'error' | 'unchecked'

export interface PreflightFinding {
  check: PreflightCheck
  status: PreflightStatus
  message: string
  /** What to do, concretely (a policy statement, a CLI command, a console path). */
  fix?: string
}

export interface PreflightTarget {
  bucket: string
  /** The bucket's region (`aws-region`). */
  region: string
  /** Without it only the bucket's own settings are checked. */
  distributionId?: string
  /** Normalised: no leading or trailing `/`. */
  versionPrefix: string
  /** The CloudFront public key ID URLs are signed with, when signing is configured. */
  signingKeyPairId?: string
}
