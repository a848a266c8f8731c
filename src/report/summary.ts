import { shortIntegrity } from '../common/integrity.js'
import type { CleanupResult } from '../release/cleanup.js'
import { compareCodeUnits } from '../publish/manifest.js'
import { escapeMarkdown, inlineCode } from './markdown.js'
import type { PreflightFinding } from '../cdn/preflight/index.js'
import { formatBytes } from '../common/progress.js'
import type { AliasMove } from '../release/promote.js'
import type { SigningReport } from '../cdn/signing.js'
import type { InvalidationOutcome, PublishedFile } from '../common/types.js'
import type { VerifyResult } from '../cdn/verify.js'

/**
 * GitHub rejects a step summary over 1 MiB; stay under 900 KiB so that thousands of files still
 * leave room for anything else main appends.
 */
export const SUMMARY_BUDGET_BYTES = 900 * 1024
/**
 * When not everything fits, the invalidation path list gets at most this much: the file table
 * matters more.
 */
const PATH_LIST_SHARE_BYTES = 64 * 1024
/** Warnings are ours and few; the caps only guarantee that they cannot crowd out the tables. */
const MAX_WARNINGS_SHOWN = 50
const MAX_WARNING_CHARS = 1000

export interface SummaryReport {
  versionPrefix: string
  bucket: string
  dryRun: boolean
  files: PublishedFile[]
  bytesUploaded: number
  bytesCopied: number
  durationMs: number
  invalidation: InvalidationOutcome
  distribution: { id: string; domain: string } | null
  manifestUrl: string
  warnings: string[]
  preflight?: PreflightFinding[]
  alias?: AliasMove
  signing?: SigningReport
  verification?: VerifyResult
  /** What happened to the pull request comment, when there is one. */
  comment?: string
}

/** Rows of a verification table at most: the failures first, so they are never the ones cut. */
const MAX_VERIFICATION_ROWS = 50

export function headingSection(
  report: Pick<SummaryReport, 'versionPrefix' | 'bucket' | 'distribution' | 'dryRun'>
): string {
  const distribution = report.distribution
    ? `${escapeMarkdown(report.distribution.id)} (${escapeMarkdown(report.distribution.domain)})`
    : 'none'
  const lines = [
    `## Model CDN deploy: ${escapeMarkdown(report.versionPrefix)}`,
    '',
    `**Bucket:** ${escapeMarkdown(report.bucket)} · **Distribution:** ${distribution}`
  ]
  if (report.dryRun) {
    lines.push('', '> **Dry run — nothing was changed.** This is what a real run would do.')
  }
  return lines.join('\n')
}

/** The table, sorted by path; `limit` rows at most, with a line saying where the rest is. */
export function filesSection(
  report: Pick<SummaryReport, 'files' | 'dryRun' | 'manifestUrl'>,
  limit = report.files.length
): string {
  return fileTable(report).text(limit)
}

/**
 * The file table at any length, from rows rendered once, and its size in UTF-8 bytes at any
 * length without rendering it: thousands of files would otherwise be rendered again for every
 * length buildSummary tries.
 */
function fileTable(report: Pick<SummaryReport, 'files' | 'dryRun' | 'manifestUrl'>): {
  text(limit: number): string
  bytes(limit: number): number
} {
  const count = report.files.length
  if (count === 0) {
    const empty = '### Files\n\nNo files.'
    return { text: () => empty, bytes: () => utf8Bytes(empty) }
  }
  const files = [...report.files].sort((a, b) => compareCodeUnits(a.relativePath, b.relativePath))
  const rows = files.map((f) => fileRow(f, report.dryRun))
  // rowEnd[n]: the bytes of the first n rows, each after a line break.
  const rowEnd = [0]
  for (const row of rows) rowEnd.push(rowEnd[rowEnd.length - 1] + utf8Bytes(row) + 1)
  const head = ['### Files', '', '| File | Size | SHA-256 | Status |', '| --- | ---: | --- | --- |']
  const fullList = report.manifestUrl && !report.dryRun ? 'manifest.json' : 'the `urls` output'
  const shown = (limit: number) => Math.min(count, Math.max(0, limit))
  const tail = (n: number) =>
    n < count ? `\n\nShowing ${n} of ${count} files; the full list is in ${fullList}.` : ''
  return {
    text: (limit) => {
      const n = shown(limit)
      return [...head, ...rows.slice(0, n)].join('\n') + tail(n)
    },
    bytes: (limit) => {
      const n = shown(limit)
      return utf8Bytes(head.join('\n')) + rowEnd[n] + utf8Bytes(tail(n))
    }
  }
}

const FILE_STATUS: Record<PublishedFile['action'], [string, string]> = {
  upload: ['uploaded', 'would upload'],
  copy: ['copied in S3', 'would copy in S3'],
  skip: ['skipped', 'would skip']
}

/** An `s3://` source's file: "copied from s3://…" (or skipped, already there). */
function sourceStatus(
  source: { bucket?: string; key: string },
  action: PublishedFile['action'],
  dryRun: boolean
): string {
  const from = `s3://${source.bucket}/${source.key}`
  if (action === 'skip')
    return `${dryRun ? 'would skip' : 'skipped'} (from ${escapeMarkdown(from)})`
  return `${dryRun ? 'would copy' : 'copied'} from ${escapeMarkdown(from)}`
}

function fileRow(f: PublishedFile, dryRun: boolean): string {
  const [done, planned] = FILE_STATUS[f.action]
  const cells = [
    `[${escapeMarkdown(f.relativePath)}](${linkTarget(f.url)})`,
    formatBytes(f.size),
    `\`${shortIntegrity(f)}\``,
    f.copyFrom?.bucket ? sourceStatus(f.copyFrom, f.action, dryRun) : dryRun ? planned : done
  ]
  return `| ${cells.join(' | ')} |`
}

export function totalsSection(
  report: Pick<SummaryReport, 'files' | 'bytesUploaded' | 'bytesCopied' | 'durationMs' | 'dryRun'>
): string {
  const count = (action: PublishedFile['action']) => report.files.filter((f) => f.action === action)
  const [uploads, copies, skips] = [count('upload'), count('copy'), count('skip')]
  const bytesOf = (files: PublishedFile[]) => files.reduce((sum, f) => sum + f.size, 0)
  const all = report.files.length
  const duration = `- **Duration:** ${formatDuration(report.durationMs)}`
  const copied = copies.length
    ? [
        `- **Bytes ${report.dryRun ? 'to copy' : 'copied'} server-side (not uploaded):** ${exactBytes(report.dryRun ? bytesOf(copies) : report.bytesCopied)}`
      ]
    : []
  const copiedCount = (verb: string) => (copies.length ? `, ${copies.length} ${verb}` : '')
  const lines = report.dryRun
    ? [
        `- **Files:** ${uploads.length} would upload${copiedCount('would copy in S3')}, ${skips.length} would skip (${all} in all)`,
        `- **Bytes to upload:** ${exactBytes(bytesOf(uploads))}`,
        ...copied,
        duration
      ]
    : [
        `- **Files:** ${uploads.length} uploaded${copiedCount('copied in S3')}, ${skips.length} skipped (${all} in all)`,
        `- **Bytes uploaded:** ${exactBytes(report.bytesUploaded)}`,
        ...copied,
        duration,
        `- **Average throughput:** ${throughput(report.bytesUploaded, report.durationMs)}`
      ]
  return ['### Totals', '', ...lines].join('\n')
}

function throughput(bytes: number, durationMs: number): string {
  if (bytes <= 0) return '— (nothing uploaded)'
  if (!(durationMs > 0)) return '— (too fast to measure)'
  return `${(bytes / 1e6 / (durationMs / 1000)).toFixed(1)} MB/s`
}

/** Reason, ids, status, time waited and the paths; `pathLimit` paths at most. */
export function invalidationSection(
  report: Pick<SummaryReport, 'invalidation' | 'dryRun'>,
  pathLimit = report.invalidation.paths.length
): string {
  const inv = report.invalidation
  const lines = ['### CloudFront invalidation', '']
  if (inv.paths.length === 0 && inv.ids.length === 0) {
    lines.push(`No invalidation: ${escapeMarkdown(inv.reason)}`)
    return lines.join('\n')
  }
  lines.push(`- **Reason:** ${escapeMarkdown(inv.reason)}`)
  if (report.dryRun) {
    lines.push('- **Status:** not created (dry run)')
  } else {
    const ids = inv.ids.length > 0 ? inv.ids.map(escapeMarkdown).join(', ') : 'none'
    lines.push(`- **Invalidation ids:** ${ids}`, `- **Status:** ${invalidationStatus(inv)}`)
    if (inv.waitedMs > 0) lines.push(`- **Waited:** ${formatDuration(inv.waitedMs)}`)
  }
  const shown = inv.paths.slice(0, Math.max(0, pathLimit))
  lines.push(
    '',
    `<details><summary>${plural(inv.paths.length, 'path')}</summary>`,
    '',
    ...shown.map((p) => `- ${escapeMarkdown(p)}`)
  )
  if (shown.length < inv.paths.length) {
    lines.push('', `Showing ${shown.length} of ${inv.paths.length} paths.`)
  }
  lines.push('', '</details>')
  return lines.join('\n')
}

function invalidationStatus(inv: InvalidationOutcome): string {
  if (inv.status !== 'InProgress') return inv.status
  return inv.waitedMs > 0
    ? 'InProgress (the wait timed out; CloudFront carries on)'
    : 'InProgress (not waited for)'
}

export function manifestSection(report: Pick<SummaryReport, 'manifestUrl' | 'dryRun'>): string {
  const url = report.manifestUrl
  if (!url) return '**Manifest:** not uploaded.'
  if (report.dryRun) return `**Manifest:** would be uploaded to ${escapeMarkdown(url)}`
  return `**Manifest:** [${escapeMarkdown(url)}](${linkTarget(url)})`
}

const FINDING_ICONS: Record<PreflightFinding['status'], string> = {
  ok: '✅ ok',
  warning: '⚠️ warning',
  error: '❌ error',
  unchecked: '❔ not checked'
}

/** One row per pre-flight check; empty when pre-flight was off. */
export function preflightSection(findings: PreflightFinding[] | undefined): string {
  if (!findings) return ''
  const rows = findings.map(
    (f) =>
      `| ${escapeMarkdown(f.check)} | ${FINDING_ICONS[f.status]} | ${escapeMarkdown(f.message)}${f.fix && f.status !== 'ok' ? `<br>**Fix:** ${escapeMarkdown(f.fix)}` : ''} |`
  )
  return [
    '### Pre-flight',
    '',
    '| Check | Result | Details |',
    '| --- | --- | --- |',
    ...rows
  ].join('\n')
}

/** Which version the alias served before and after, and what moved; empty without an alias. */
export function aliasSection(move: AliasMove | undefined, dryRun: boolean): string {
  if (!move) return ''
  const r = move.result
  const alias = inlineCode(r.alias)
  const before = r.previousVersion ? inlineCode(r.previousVersion) : 'nothing'
  const verb = dryRun ? 'would point' : 'points'
  const lines = [
    '### Alias',
    '',
    `- ${alias} pointed to ${before}; it now ${verb} to ${inlineCode(r.versionPrefix)}.`,
    `- Files ${dryRun ? 'to copy' : 'copied'} server-side: ${r.copied.length}; unchanged: ${r.unchanged.length}; ${dryRun ? 'to remove' : 'removed'}: ${r.removed.length}; manifest ${r.manifestAction === 'copied' ? (dryRun ? 'to copy' : 'copied') : 'unchanged'}.`,
    `- Invalidation: ${move.invalidation.paths.length ? `${move.invalidation.paths.map(inlineCode).join(', ')} → ${invalidationStatus(move.invalidation)}` : escapeMarkdown(move.invalidation.reason)}`
  ]
  const manifestUrl = move.urls['manifest.json']
  if (manifestUrl && !dryRun) {
    lines.push(`- Manifest: [${escapeMarkdown(manifestUrl)}](${linkTarget(manifestUrl)})`)
  }
  return lines.join('\n')
}

/** When the signatures expire and what the cookies open; never a signature. */
export function signingSection(signing: SigningReport | undefined): string {
  if (!signing) return ''
  return [
    '### Signed URLs',
    '',
    `- ${plural(Object.keys(signing.urls).length, 'signed URL')} and signed cookies (key ${inlineCode(signing.keyPairId)}) expire at **${signing.expiresAt.toISOString()}**.`,
    `- The cookies open ${inlineCode(signing.cookieResource)}.`,
    '- They are in the `signed-urls` and `signed-cookies` outputs (never in this summary or the log).'
  ].join('\n')
}

/** The outcome of the HEAD requests: failures listed first; empty when nothing was verified. */
export function verificationSection(verification: VerifyResult | undefined): string {
  if (!verification) return ''
  const { results } = verification
  const failed = results.filter((r) => !r.ok)
  const head = verification.verified
    ? `✅ All ${results.length} URL(s) serve their size and SHA-256.`
    : `❌ ${failed.length} of ${results.length} URL(s) did not serve what was uploaded.`
  const rows = [...failed, ...results.filter((r) => r.ok)]
    .slice(0, MAX_VERIFICATION_ROWS)
    .map(
      (r) =>
        `| ${escapeMarkdown(r.relativePath)} | ${r.status ?? '—'} | ${r.ok ? '✅' : `❌ ${escapeMarkdown(r.problems.join('; '))}`} |`
    )
  const more =
    results.length > MAX_VERIFICATION_ROWS
      ? [
          '',
          `… and ${results.length - MAX_VERIFICATION_ROWS} more (${failed.length > MAX_VERIFICATION_ROWS ? 'every failure is listed in the step log' : 'all verified'}).`
        ]
      : []
  return [
    '### Verification',
    '',
    head,
    '',
    '| File | Status | Result |',
    '| --- | ---: | --- |',
    ...rows,
    ...more
  ].join('\n')
}

export function commentSection(comment: string | undefined): string {
  return comment ? `**Pull request comment:** ${escapeMarkdown(comment)}` : ''
}

/** The summary of a run pre-flight stopped: every check, with the fixes. */
export function preflightFailureSummary(findings: PreflightFinding[]): string {
  return [
    '## Model CDN deploy: stopped by pre-flight',
    '',
    'Nothing was uploaded. Fix the problems below and run again, or set `preflight: false`.',
    '',
    preflightSection(findings)
  ].join('\n')
}

/** The summary of the command line's `check`: every finding, and the verdict. */
export function checkSummary(bucket: string, findings: PreflightFinding[]): string {
  const errors = findings.filter((f) => f.status === 'error').length
  return [
    `## Model CDN check: ${escapeMarkdown(bucket)}`,
    '',
    errors
      ? `${errors} problem(s) would leave the models unreachable or unprotected; a deploy would stop before writing.`
      : 'No problem found: a deploy would pass its pre-flight.',
    '',
    preflightSection(findings)
  ].join('\n')
}

/** The summary of `mode: promote`: the alias move and its invalidation. */
export function promoteSummary(move: AliasMove, bucket: string, warnings: string[]): string {
  return (
    [
      `## Model CDN promote: ${escapeMarkdown(move.result.alias)} → ${escapeMarkdown(move.result.versionPrefix)}`,
      '',
      `**Bucket:** ${escapeMarkdown(bucket)}${move.result.dryRun ? '\n\n> **Dry run — nothing was changed.** This is what a real run would do.' : ''}`,
      aliasSection(move, move.result.dryRun),
      warningsSection(warnings)
    ]
      .filter((section) => section !== '')
      .join('\n\n') + '\n'
  )
}

/** The summary of `mode: cleanup`: what was removed and its invalidation. */
export function cleanupSummary(
  result: CleanupResult,
  target: { bucket: string; versionPrefix: string },
  invalidation: InvalidationOutcome,
  warnings: string[],
  comment?: string
): string {
  const where = `s3://${target.bucket}/${target.versionPrefix}/`
  const done = result.dryRun
    ? `Would remove ${result.deleted} object(s), ${exactBytes(result.bytes)}, from ${escapeMarkdown(where)}, and abort ${result.abortedUploads} multipart upload(s).`
    : `Removed ${result.deleted} object(s), ${exactBytes(result.bytes)}, from ${escapeMarkdown(where)}; aborted ${result.abortedUploads} multipart upload(s). In a versioned bucket their old versions stay until a lifecycle rule expires them.`
  return (
    [
      `## Model CDN clean-up: ${escapeMarkdown(target.versionPrefix)}`,
      result.dryRun ? '> **Dry run — nothing was changed.** This is what a real run would do.' : '',
      done,
      invalidationSection({ invalidation, dryRun: result.dryRun }),
      commentSection(comment),
      warningsSection(warnings)
    ]
      .filter((section) => section !== '')
      .join('\n\n') + '\n'
  )
}

/** Empty when there is nothing to warn about, so buildSummary leaves the section out. */
export function warningsSection(warnings: string[]): string {
  if (warnings.length === 0) return ''
  const lines = warnings
    .slice(0, MAX_WARNINGS_SHOWN)
    .map((w) => `- ⚠️ ${escapeMarkdown(truncateChars(w, MAX_WARNING_CHARS))}`)
  if (warnings.length > MAX_WARNINGS_SHOWN) {
    lines.push(`- … and ${warnings.length - MAX_WARNINGS_SHOWN} more in the step log`)
  }
  return ['### Warnings', '', ...lines].join('\n')
}

/**
 * All sections, with the file table and the path list cut so that the summary stays within
 * SUMMARY_BUDGET_BYTES of UTF-8.
 */
export function buildSummary(report: SummaryReport): string {
  const table = fileTable(report)
  const render = (fileLimit: number, pathLimit: number): string =>
    [
      headingSection(report),
      totalsSection(report),
      table.text(fileLimit),
      invalidationSection(report, pathLimit),
      manifestSection(report),
      preflightSection(report.preflight),
      aliasSection(report.alias, report.dryRun),
      signingSection(report.signing),
      verificationSection(report.verification),
      commentSection(report.comment),
      warningsSection(report.warnings)
    ]
      .filter((section) => section !== '')
      .join('\n\n') + '\n'
  // The summary's size with the table at any length: with no row, plus the rows' bytes.
  const bytes = (fileLimit: number, pathLimit: number): number =>
    utf8Bytes(render(0, pathLimit)) - table.bytes(0) + table.bytes(fileLimit)
  const fits = (fileLimit: number, pathLimit: number): boolean =>
    bytes(fileLimit, pathLimit) <= SUMMARY_BUDGET_BYTES

  const fileCount = report.files.length
  const pathCount = report.invalidation.paths.length
  if (fits(fileCount, pathCount)) return render(fileCount, pathCount)
  // Cap the path list at its share, give the table what is left, then let the list use any rest.
  const pathShare = largestFitting(
    pathCount,
    (n) => utf8Bytes(invalidationSection(report, n)) <= PATH_LIST_SHARE_BYTES
  )
  const fileLimit = largestFitting(fileCount, (n) => fits(n, pathShare))
  const pathLimit = largestFitting(pathCount, (n) => fits(fileLimit, n))
  return render(fileLimit, pathLimit)
}

/**
 * The largest n in [0, max] for which `ok(n)` holds (0 if none), given that `ok` holds up to some
 * n and no further.
 */
function largestFitting(max: number, ok: (n: number) => boolean): number {
  let lo = 0
  let hi = max
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (ok(mid)) lo = mid
    else hi = mid - 1
  }
  return lo
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8')
}

/** Percent-encodes what would end a Markdown link destination or split a table cell. */
function linkTarget(url: string): string {
  return url.replace(/[\s()<>|\\`]/g, (c) =>
    c.charCodeAt(0) < 0x80
      ? `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`
      : encodeURIComponent(c)
  )
}

function truncateChars(text: string, max: number): string {
  if (text.length <= max) return text
  // By code point, so that an emoji or CJK supplement is never cut in half.
  const chars = Array.from(text)
  return chars.length <= max ? text : `${chars.slice(0, max).join('')}…`
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

function exactBytes(n: number): string {
  return n < 1024 ? formatBytes(n) : `${formatBytes(n)} (${n.toLocaleString('en-US')} bytes)`
}

function formatDuration(ms: number): string {
  if (!(ms > 0)) return '0 s'
  if (ms < 999.5) return `${Math.round(ms)} ms`
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`
  const totalSeconds = Math.round(ms / 1000)
  const hours = Math.floor(totalSeconds / 3600)
  const minutes = Math.floor((totalSeconds % 3600) / 60)
  const seconds = totalSeconds % 60
  return hours > 0 ? `${hours} h ${minutes} min` : `${minutes} min ${seconds} s`
}
