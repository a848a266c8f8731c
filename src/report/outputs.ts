import { Outputs } from '../common/constants.js'
import { compareCodeUnits } from '../publish/manifest.js'
import type { SigningReport } from '../cdn/signing.js'
import type { InvalidationOutcome, Manifest, PublishedFile } from '../common/types.js'
import type { VerifyResult } from '../cdn/verify.js'

/**
 * GitHub keeps at most 1 MB of outputs per job; `urls` and `manifest` must leave room for the
 * small outputs and for the caller's own.
 */
export const OUTPUTS_BUDGET_BYTES = 900_000

export interface OutputsReport {
  versionPrefix: string
  files: PublishedFile[]
  manifest: Manifest | null
  manifestUrl: string
  invalidation: InvalidationOutcome
  bytesUploaded: number
  signing?: SigningReport
  verification?: VerifyResult
  /** Relative path → URL under the alias, when one was moved. */
  aliasUrls?: Record<string, string>
  /** The alias move's own invalidation, reported with the deploy's. */
  aliasInvalidation?: InvalidationOutcome
}

export interface BuiltOutputs {
  /** Keyed by the `Outputs` names. */
  outputs: Record<string, string>
  /** For core.warning: why an output was left out or may be too large. */
  warnings: string[]
}

export function buildOutputs(r: OutputsReport): BuiltOutputs {
  const urls = urlsJson(r.files)
  const urlsBytes = Buffer.byteLength(urls)
  const bothBytes = urlsBytes + (r.manifest ? jsonBytes(r.manifest) : 0)
  const limits =
    `the ${kilobytes(OUTPUTS_BUDGET_BYTES)} this action keeps for urls and manifest ` +
    '(GitHub allows 1 MB of outputs per job)'
  const manifestAt = r.manifestUrl && `manifest-url (${r.manifestUrl})`
  const warnings: string[] = []

  let manifest = ''
  if (r.manifest && bothBytes <= OUTPUTS_BUDGET_BYTES) manifest = JSON.stringify(r.manifest)
  else if (r.manifest) {
    warnings.push(
      `The manifest output is empty: with urls it would take ${kilobytes(bothBytes)}, ` +
        `over ${limits}; ` +
        (manifestAt
          ? `read it from ${manifestAt} instead.`
          : 'the manifest was not uploaded in this run, so manifest-url is empty.')
    )
  }
  if (urlsBytes > OUTPUTS_BUDGET_BYTES) {
    warnings.push(
      `The urls output takes ${kilobytes(urlsBytes)}, over ${limits}, ` +
        'so it may not reach other jobs; ' +
        (manifestAt
          ? `read the file list from ${manifestAt} instead.`
          : 'set manifest to true and read the file list from manifest-url instead.')
    )
  }

  return {
    outputs: {
      [Outputs.VersionPrefix]: r.versionPrefix,
      [Outputs.Urls]: urls,
      [Outputs.Manifest]: manifest,
      [Outputs.ManifestUrl]: r.manifestUrl,
      [Outputs.Uploaded]: String(r.files.filter((f) => f.action === 'upload').length),
      [Outputs.Copied]: String(r.files.filter((f) => f.action === 'copy').length),
      [Outputs.Skipped]: String(r.files.filter((f) => f.action === 'skip').length),
      [Outputs.BytesUploaded]: String(r.bytesUploaded),
      [Outputs.InvalidationIds]: JSON.stringify([
        ...r.invalidation.ids,
        ...(r.aliasInvalidation?.ids ?? [])
      ]),
      [Outputs.InvalidationStatus]: overallStatus([
        r.invalidation,
        ...(r.aliasInvalidation ? [r.aliasInvalidation] : [])
      ]),
      [Outputs.SignedUrls]: r.signing ? sortedJson(r.signing.urls) : '',
      [Outputs.SignedCookies]: r.signing ? JSON.stringify(r.signing.cookies) : '',
      [Outputs.SignedUrlsExpireAt]: r.signing ? r.signing.expiresAt.toISOString() : '',
      [Outputs.Verified]: verifiedOutput(r.verification),
      [Outputs.AliasUrls]: r.aliasUrls ? sortedJson(r.aliasUrls) : ''
    },
    warnings: [...warnings, ...signedUrlsWarning(r.signing)]
  }
}

/** InProgress if any invalidation is, else Completed if any completed, else none. */
function overallStatus(outcomes: InvalidationOutcome[]): InvalidationOutcome['status'] {
  if (outcomes.some((o) => o.status === 'InProgress')) return 'InProgress'
  return outcomes.some((o) => o.status === 'Completed') ? 'Completed' : 'none'
}

/** `true`/`false`, or empty when nothing was verified. */
export function verifiedOutput(verification: VerifyResult | undefined): string {
  return verification ? String(verification.verified) : ''
}

/**
 * Signed URLs are ~400 bytes each and cannot be shortened: past the budget they may not reach
 * other jobs, and the cookies (one credential for the whole version) are the way to go.
 */
function signedUrlsWarning(signing: SigningReport | undefined): string[] {
  if (!signing) return []
  const bytes = Buffer.byteLength(sortedJson(signing.urls))
  return bytes > OUTPUTS_BUDGET_BYTES
    ? [
        `The signed-urls output takes ${kilobytes(bytes)} (GitHub allows 1 MB of outputs per job), so it may not reach other jobs; use the signed-cookies output, which opens every file of the version.`
      ]
    : []
}

/**
 * A record as JSON with its keys in code-unit order. Written by hand because JSON.stringify puts
 * integer-like keys (a file named `0`) first, whatever the order.
 */
export function sortedJson(record: Record<string, string>): string {
  const entries = Object.keys(record)
    .sort(compareCodeUnits)
    .map((key) => `${JSON.stringify(key)}:${JSON.stringify(record[key])}`)
  return `{${entries.join(',')}}`
}

/** relative path → URL, sorted by path (as sortedJson, without a record of every file first). */
function urlsJson(files: PublishedFile[]): string {
  const entries = files
    .map((f): [string, string] => [f.relativePath, f.url])
    .sort(([a], [b]) => compareCodeUnits(a, b))
    .map(([path, url]) => `${JSON.stringify(path)}:${JSON.stringify(url)}`)
  return `{${entries.join(',')}}`
}

/**
 * The UTF-8 bytes of JSON.stringify(manifest), counted file by file: with thousands of files the
 * whole string (~300 bytes a file) is made only when it is small enough to be an output.
 */
function jsonBytes(manifest: Manifest): number {
  const withoutFiles = Buffer.byteLength(JSON.stringify({ ...manifest, files: [] }))
  const commas = Math.max(0, manifest.files.length - 1)
  return manifest.files.reduce(
    (sum, file) => sum + Buffer.byteLength(JSON.stringify(file)),
    withoutFiles + commas
  )
}

function kilobytes(bytes: number): string {
  return `${Math.ceil(bytes / 1000)} KB`
}
