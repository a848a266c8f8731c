import { CHECKSUM_METADATA_KEY, SHA256_METADATA_KEY } from './constants.js'
import type { S3Checksum, S3ChecksumAlgorithm } from './types.js'

/**
 * What a file's bytes are known by: its SHA-256 and, for an `s3://` source's object, S3's own
 * checksum (the only one when the SHA-256 is not known).
 */
export interface Integrity {
  sha256?: string
  checksum?: S3Checksum
}

const ALGORITHMS: readonly S3ChecksumAlgorithm[] = [
  'CRC64NVME',
  'CRC32',
  'CRC32C',
  'SHA1',
  'SHA256'
]

/**
 * S3's checksum as one value, e.g. `CRC64NVME:nC7n2J+0ELs=` or `CRC32-COMPOSITE:AAAAAA==-3`: what
 * x-amz-meta-checksum holds, and how summaries show it.
 */
export function checksumText(checksum: S3Checksum): string {
  const type = checksum.type === 'COMPOSITE' ? '-COMPOSITE' : ''
  return `${checksum.algorithm}${type}:${checksum.value}`
}

/** checksumText read back; undefined for anything else. */
export function parseChecksumText(text: string | undefined): S3Checksum | undefined {
  const match = /^([A-Z0-9]+?)(-COMPOSITE)?:(\S+)$/.exec(text ?? '')
  const algorithm = ALGORITHMS.find((a) => a === match?.[1])
  if (!match || !algorithm) return undefined
  return { algorithm, type: match[2] ? 'COMPOSITE' : 'FULL_OBJECT', value: match[3] }
}

/** The user metadata recording a file's bytes: x-amz-meta-sha256 and/or x-amz-meta-checksum. */
export function integrityMetadata(file: Integrity): Record<string, string> {
  return {
    ...(file.sha256 !== undefined ? { [SHA256_METADATA_KEY]: file.sha256 } : {}),
    ...(file.checksum ? { [CHECKSUM_METADATA_KEY]: checksumText(file.checksum) } : {})
  }
}

/** What stored user metadata records of the bytes (integrityMetadata read back). */
export function integrityFromMetadata(metadata: Record<string, string>): Integrity {
  const sha256 = metadata[SHA256_METADATA_KEY]
  const checksum = parseChecksumText(metadata[CHECKSUM_METADATA_KEY])
  return { ...(sha256 !== undefined ? { sha256 } : {}), ...(checksum ? { checksum } : {}) }
}

/**
 * Whether two records describe the same bytes: false when a value both have differs, true when
 * one agrees and none differs, undefined when they have nothing in common to compare.
 */
export function sameBytes(a: Integrity, b: Integrity): boolean | undefined {
  let agreed = false
  if (a.sha256 !== undefined && b.sha256 !== undefined) {
    if (a.sha256.toLowerCase() !== b.sha256.toLowerCase()) return false
    agreed = true
  }
  if (a.checksum && b.checksum && checksumText(a.checksum) !== checksumText(b.checksum)) {
    const comparable =
      a.checksum.algorithm === b.checksum.algorithm && a.checksum.type === b.checksum.type
    if (comparable) return false
  } else if (a.checksum && b.checksum) {
    agreed = true
  }
  return agreed ? true : undefined
}

/**
 * A table cell's short form: the SHA-256's first 12 hex digits, or S3's checksum named, e.g.
 * `CRC64NVME:nC7n2J+0ELs=`.
 */
export function shortIntegrity(file: Integrity): string {
  if (file.sha256 !== undefined) return file.sha256.slice(0, 12)
  return file.checksum ? checksumText(file.checksum) : 'not known'
}
