import { writeFile } from 'node:fs/promises'
import type { PreflightFinding } from '../cdn/preflight/index.js'
import type { CheckReport } from '../commands/check.js'
import { checkSummary } from '../report/summary.js'

const MARKS: Record<PreflightFinding['status'], string> = {
  ok: 'ok',
  warning: 'warning',
  error: 'ERROR',
  unchecked: 'not checked'
}

/**
 * `check`'s result: each finding on a line (its fix below it), then the verdict; or with `--json`
 * `{"passed": …, "findings": [...]}`. Returns whether it passed (no error finding).
 */
export async function showCheck(
  report: CheckReport,
  show: { json: boolean; summaryFile?: string },
  io: { stdout: Pick<NodeJS.WriteStream, 'write'>; stderr: NodeJS.WritableStream }
): Promise<boolean> {
  if (show.summaryFile)
    await writeFile(show.summaryFile, checkSummary(report.bucket, report.findings))
  io.stdout.write(
    show.json
      ? `${JSON.stringify({ passed: !report.failure, findings: report.findings })}\n`
      : findingsText(report)
  )
  // The findings and their fixes are on stdout already (or in the JSON).
  if (report.failure) {
    const errors = report.findings.filter((f) => f.status === 'error').length
    io.stderr.write(`error: the set-up has ${errors} problem(s); each is listed with its fix.\n`)
  }
  return !report.failure
}

function findingsText(report: CheckReport): string {
  const width = Math.max(...report.findings.map((f) => f.check.length))
  const lines = report.findings.map((f) => {
    const fix = f.fix && f.status !== 'ok' ? `\n${' '.repeat(width + 16)}Fix: ${f.fix}` : ''
    return `${MARKS[f.status].padEnd(12)}  ${f.check.padEnd(width)}  ${f.message}${fix}`
  })
  const count = (status: PreflightFinding['status']) =>
    report.findings.filter((f) => f.status === status).length
  const where = `${report.bucket}${report.distributionId ? ` behind ${report.distributionId}` : ''}`
  const verdict = report.failure
    ? `${where}: ${count('error')} problem(s) to fix before a deploy can pass its pre-flight.`
    : `${where}: no problem found${count('warning') ? `, ${count('warning')} warning(s)` : ''}; a deploy would pass its pre-flight.`
  return `${[...lines, '', verdict].join('\n')}\n`
}
