import { CHECKSUM_METADATA_KEY, SHA256_METADATA_KEY } from './constants.js'
import type { S3Checksum } from './types.js'

/** What a file's bytes are known by: its SHA-256 or, for some `s3://` sources' objects, S3's checksum. */
export interface Integrity {
  sha256?: string
  checksum?: S3Checksum
}

/**
 * S3's checksum as one value, e.g. `CRC64NVME:nC7n2J+0ELs=` or `CRC32-COMPOSITE:AAAAAA==-3`: the
 * metadata value a copy carries and what two objects are compared by.
 */
export function checksumText(checksum: S3Checksum): string {
  const type = checksum.type === 'COMPOSITE' ? '-COMPOSITE' : ''
  return `${checksum.algorithm}${type}:${checksum.value}`
}

/** The user metadata recording a file's bytes: x-amz-meta-sha256, else x-amz-meta-checksum. */
export function integrityMetadata(file: Integrity): Record<string, string> {
  if (file.sha256 !== undefined) return { [SHA256_METADATA_KEY]: file.sha256 }
  if (file.checksum !== undefined) return { [CHECKSUM_METADATA_KEY]: checksumText(file.checksum) }
  return {}
}

/** One comparable value for a file's bytes (`sha256:<hex>` or checksumText); undefined if unknown. */
export function integrityOf(file: Integrity): string | undefined {
  if (file.sha256 !== undefined) return `sha256:${file.sha256}`
  return file.checksum && checksumText(file.checksum)
}

/**
 * A table cell's short form: the SHA-256's first 12 hex digits, or S3's checksum named, e.g.
 * `CRC64NVME:nC7n2J+0ELs=`.
 */
export function shortIntegrity(file: Integrity): string {
  if (file.sha256 !== undefined) return file.sha256.slice(0, 12)
  return file.checksum ? checksumText(file.checksum) : 'not known'
}
