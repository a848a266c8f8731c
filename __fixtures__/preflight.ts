/** Pre-flight: reading findings, and the tutorial's settings as AWS answers them; unit and integration tests alike. */
import type { OriginAccessControlConfig } from '@aws-sdk/client-cloudfront'
import type { PreflightCheck, PreflightFinding } from '../src/cdn/preflight/index.js'

/** Every check, in the order runPreflight reports them for a signed world with a distribution. */
export const ALL_CHECKS: PreflightCheck[] = [
  'distribution',
  'origin',
  'origin-access-control',
  'bucket-policy',
  'signed-urls',
  'public-access-block',
  'versioning',
  'lifecycle'
]

/** The checks that still run without a distribution, or when it cannot be read. */
export const BUCKET_CHECKS: PreflightCheck[] = ['public-access-block', 'versioning', 'lifecycle']

/** Each check paired with `ok`: what a correct world reports. */
export const allOk = (checks: PreflightCheck[]): [PreflightCheck, PreflightFinding['status']][] =>
  checks.map((check) => [check, 'ok'])

/** Each finding as [check, status], in the order reported. */
export const statusesOf = (
  findings: PreflightFinding[]
): [PreflightCheck, PreflightFinding['status']][] => findings.map((f) => [f.check, f.status])

/** The only finding of a check. */
export function only(findings: PreflightFinding[], check: PreflightCheck): PreflightFinding {
  const matching = findings.filter((f) => f.check === check)
  expect(matching).toHaveLength(1)
  return matching[0]
}

/** Every finding is ok except the listed checks. */
export function expectOkExcept(findings: PreflightFinding[], ...checks: PreflightCheck[]): void {
  const notOk = findings.filter((f) => f.status !== 'ok').map((f) => f.check)
  expect(notOk.sort()).toEqual([...checks].sort())
}

/** The bucket policy the tutorial sets: CloudFront reads the bucket's objects for one distribution. */
export function oacBucketPolicy(bucket: string, distributionArn: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 'cloudfront.amazonaws.com' },
        Action: 's3:GetObject',
        Resource: `arn:aws:s3:::${bucket}/*`,
        Condition: { StringEquals: { 'AWS:SourceArn': distributionArn } }
      }
    ]
  })
}

/** GetPublicAccessBlock's answer with every setting on, as the tutorial leaves the bucket. */
export const ALL_PUBLIC_ACCESS_BLOCKED = {
  PublicAccessBlockConfiguration: {
    BlockPublicAcls: true,
    IgnorePublicAcls: true,
    BlockPublicPolicy: true,
    RestrictPublicBuckets: true
  }
}

/** GetOriginAccessControl's answer for OAC `id`: the tutorial's (sigv4, always, S3) unless overridden. */
export function originAccessControl(
  id: string,
  overrides: Partial<OriginAccessControlConfig> = {}
) {
  return {
    OriginAccessControl: {
      Id: id,
      OriginAccessControlConfig: {
        Name: 'oac',
        SigningProtocol: 'sigv4',
        SigningBehavior: 'always',
        OriginAccessControlOriginType: 's3',
        ...overrides
      } as OriginAccessControlConfig
    }
  }
}
