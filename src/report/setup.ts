import type { SetupReport } from '../commands/setup.js'

/** `--json`'s object: the ids by name (empty where not asked for), what changed, the checks. */
export function setupOutputs(report: SetupReport): Record<string, unknown> {
  return {
    bucket: report.bucket,
    'distribution-id': report.distributionId ?? '',
    'distribution-domain': report.distributionDomain ?? '',
    'origin-access-control-id': report.originAccessControlId ?? '',
    'public-key-id': report.publicKeyId ?? '',
    'key-group-id': report.keyGroupId ?? '',
    'role-arn': report.roleArn ?? '',
    changes: report.changes,
    preflight: report.preflight ?? null,
    'dry-run': report.dryRun
  }
}

/** What a person reads: what changed, the ids, the checks, and the workflow to paste. */
export function setupText(report: SetupReport): string {
  const where = `${report.bucket} (${report.region})`
  const heading = report.changes.length
    ? `${report.dryRun ? 'Dry run, nothing changed. Would change' : 'Changed'} in ${where}:`
    : `Nothing to change in ${where}: the set-up is complete.`
  const changes = report.changes.map(
    (c) => `  ${report.dryRun ? `would ${c.action}` : `${c.action}d`}  ${c.resource}: ${c.detail}`
  )
  const ids = Object.entries(setupOutputs(report))
    .filter(([, value]) => typeof value === 'string' && value !== '')
    .map(([name, value]) => `  ${name.padEnd(26)}${value as string}`)
  return [
    heading,
    ...changes,
    '',
    ...ids,
    ...preflightLines(report),
    '',
    'A workflow that publishes to it:',
    '',
    workflowSnippet(report)
  ].join('\n')
}

function preflightLines(report: SetupReport): string[] {
  if (!report.preflight) return []
  const problems = report.preflight.filter((f) => f.status !== 'ok')
  return [
    '',
    problems.length
      ? `Pre-flight: ${problems.length} finding(s) to look at:`
      : `Pre-flight: all ${report.preflight.length} checks pass; a deploy will too.`,
    ...problems.map(
      (f) => `  ${f.status}  ${f.check}: ${f.message}${f.fix ? `\n    Fix: ${f.fix}` : ''}`
    )
  ]
}

/** The GitHub workflow with the ids filled in (placeholders where setup made no role or key). */
export function workflowSnippet(report: SetupReport): string {
  const signing = report.publicKeyId
    ? [
        `          signing-key-pair-id: ${report.publicKeyId}`,
        '          signing-private-key: ${{ secrets.CLOUDFRONT_PRIVATE_KEY }}'
      ]
    : []
  return [
    'jobs:',
    '  publish:',
    '    runs-on: ubuntu-latest',
    '    permissions:',
    '      id-token: write',
    '      contents: read',
    '    steps:',
    '      - uses: actions/checkout@v5',
    '      - uses: aws-actions/configure-aws-credentials@v4',
    '        with:',
    `          role-to-assume: ${report.roleArn || 'arn:aws:iam::ACCOUNT_ID:role/ROLE (setup --github-repo OWNER/NAME makes one)'}`,
    `          aws-region: ${report.region}`,
    '      - uses: acme/model-cdn-deploy@v1',
    '        with:',
    '          artifacts: models/**',
    `          bucket: ${report.bucket}`,
    '          version-prefix: v1',
    `          distribution-id: ${report.distributionId || 'DISTRIBUTION_ID'}`,
    ...signing
  ].join('\n')
}
