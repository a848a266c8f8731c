import path from 'node:path'
import { Inputs, MAX_METADATA_BYTES, SHA256_METADATA_KEY } from '../common/constants.js'
import { isInside } from '../common/paths.js'
import type { DeployInputs } from '../common/types.js'

/** Characters a version segment may hold: safe unencoded in S3 keys, URLs and CloudFront paths. */
const SAFE_SEGMENT = /^[A-Za-z0-9._+=@,-]+$/
const METADATA_KEY = /^[A-Za-z0-9][A-Za-z0-9_-]*$/

/** A key prefix given as an input (`version-prefix`, `alias`…): normalised, or problems added. */
export function validatePrefix(
  raw: string,
  problems: string[],
  name: string = Inputs.VersionPrefix
): string {
  if (!raw) return raw
  const where = `\`${name}\` "${raw}"`
  if (raw.startsWith('/')) problems.push(`${where} must not start with "/" (write v3, not /v3).`)
  const prefix = raw.replace(/^\/+/, '').replace(/\/$/, '')
  const segments = prefix.split('/')
  if (segments.some((s) => s === '')) problems.push(`${where} has an empty segment ("//").`)
  if (segments.some((s) => s === '.' || s === '..')) {
    problems.push(`${where} must not contain "." or ".." segments.`)
  }
  const bad = segments.filter((s) => s && s !== '.' && s !== '..' && !SAFE_SEGMENT.test(s))
  if (bad.length > 0) {
    problems.push(
      `${where} may only use letters, digits and . _ - + = @ , (S3, URLs and CloudFront paths treat other characters differently).`
    )
  }
  return prefix
}

/** `auto` (the default), `none`, or the prefixes to search for identical objects. */
export function parseReuseFrom(entries: string[], problems: string[]): DeployInputs['reuseFrom'] {
  if (entries.length === 1 && entries[0].toLowerCase() === 'auto') return 'auto'
  if (entries.length === 1 && entries[0].toLowerCase() === 'none') return []
  return entries.map((entry) => validatePrefix(entry, problems, Inputs.ReuseFrom))
}

export function parseMetadata(entries: string[], problems: string[]): Record<string, string> {
  const metadata: Record<string, string> = {}
  for (const line of entries) {
    const eq = line.indexOf('=')
    if (eq <= 0) {
      problems.push(`\`metadata\` line "${line}" must be key=value.`)
      continue
    }
    const key = line.slice(0, eq).trim().toLowerCase()
    const value = line.slice(eq + 1).trim()
    if (!METADATA_KEY.test(key)) {
      problems.push(`\`metadata\` key "${key}" may only use letters, digits, "-" and "_".`)
    } else if (key === SHA256_METADATA_KEY) {
      problems.push(
        `\`metadata\` key "${key}" is reserved: the action stores each file's SHA-256 there.`
      )
    } else if (key in metadata) {
      problems.push(`\`metadata\` key "${key}" is given twice (keys are case-insensitive).`)
    } else if (!isAscii(value)) {
      problems.push(
        `\`metadata\` value of "${key}" must be printable ASCII (S3 sends metadata as HTTP headers).`
      )
    } else {
      metadata[key] = value
    }
  }
  // S3 counts user metadata as the UTF-8 bytes of keys and values; the sha256 entry is ours.
  const size = Object.entries({ ...metadata, [SHA256_METADATA_KEY]: '0'.repeat(64) }).reduce(
    (sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v),
    0
  )
  if (size > MAX_METADATA_BYTES) {
    problems.push(
      `\`metadata\` is ${size} bytes with the sha256 entry; S3 allows ${MAX_METADATA_BYTES} bytes of user metadata per object.`
    )
  }
  return metadata
}

/** A reason the pattern reaches outside the workspace, or undefined when it stays inside. */
export function patternEscapesWorkspace(pattern: string, workspace: string): string | undefined {
  const body = pattern.replace(/^!+/, '')
  const resolved = path.resolve(workspace, body)
  if (!isInside(resolved, workspace)) {
    return `artifact pattern "${pattern}" points outside the workspace ${workspace}; patterns are relative to the workspace.`
  }
  return undefined
}

export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:'
  } catch {
    return false
  }
}

export function isAscii(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value)
}
