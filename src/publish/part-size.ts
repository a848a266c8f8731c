import { GiB, Inputs, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, MiB } from '../common/constants.js'
import { InputError } from '../common/errors.js'
import { formatBytes } from '../common/progress.js'

/** Automatic part size: large enough for throughput, small enough that a retried part costs little. */
export const DEFAULT_PART_SIZE = 16 * MiB
/**
 * Automatic part size of a multipart copy. S3 moves the bytes, so a part costs one request, not
 * runner memory or a resend of much data: large parts mean few requests (a 100 GiB checkpoint in
 * 200 parts), while a 5–10 GiB file still splits into parts copied in parallel.
 */
export const DEFAULT_COPY_PART_SIZE = 512 * MiB
/** The largest object S3 stores. */
export const MAX_OBJECT_SIZE = 5 * 1024 * GiB

/** Requests needed to send `fileSize` bytes in `partSize` parts; an empty file still takes one. */
export function partCount(fileSize: number, partSize: number): number {
  return Math.max(1, Math.ceil(fileSize / partSize))
}

/**
 * The part size for a multipart upload of `fileSize` bytes: `requested` when S3 can take it,
 * otherwise DEFAULT_PART_SIZE raised to a whole MiB so the file fits in MAX_PARTS parts.
 * Throws InputError for what S3 would refuse, so callers can check every file before sending any.
 * `fileName` only makes the message name the file.
 */
export function choosePartSize(fileSize: number, requested?: number, fileName?: string): number {
  // A function: toLocaleString sets up a locale (~25 ms), which only an error message needs.
  const file = () =>
    `${fileName ?? 'A file'} of ${formatBytes(fileSize)} (${fileSize.toLocaleString('en-US')} bytes)`
  if (fileSize > MAX_OBJECT_SIZE) {
    throw new InputError(
      `${file()} is larger than 5 TiB, the largest object S3 can store.`,
      'Split it into smaller files (e.g. sharded safetensors) and publish the shards.'
    )
  }
  const smallest = Math.max(MIN_PART_SIZE, Math.ceil(fileSize / (MAX_PARTS * MiB)) * MiB)
  if (requested === undefined) return Math.max(DEFAULT_PART_SIZE, smallest)

  if (!Number.isSafeInteger(requested) || requested < MIN_PART_SIZE || requested > MAX_PART_SIZE) {
    throw new InputError(
      `\`${Inputs.PartSizeMb}\` must be 5 to 5120 MiB (S3's part size limits); got ${size(requested)}.`
    )
  }
  const parts = partCount(fileSize, requested)
  if (parts > MAX_PARTS) {
    throw new InputError(
      `${file()} would need ${parts.toLocaleString('en-US')} parts of ${size(requested)}, ` +
        `but S3 allows at most ${MAX_PARTS.toLocaleString('en-US')}.`,
      `Set \`${Inputs.PartSizeMb}\` to at least ${smallest / MiB}, or leave it empty to size parts automatically.`
    )
  }
  return requested
}

/**
 * The part size of a multipart copy (UploadPartCopy) of `fileSize` bytes: DEFAULT_COPY_PART_SIZE,
 * raised to a whole MiB so the object fits in MAX_PARTS parts (525 MiB for 5 TiB). Used when
 * `part-size-mb` is not set.
 */
export function copyPartSize(fileSize: number, fileName?: string): number {
  return Math.max(DEFAULT_COPY_PART_SIZE, choosePartSize(fileSize, undefined, fileName))
}

function size(bytes: number): string {
  return bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes.toLocaleString('en-US')} bytes`
}

/**
 * The part size a file is uploaded with, or undefined for one PutObject: below the threshold, or
 * when it fits in one part (three requests instead of one gain nothing). The planner, which
 * computes the parts' CRC32s, and the uploader decide alike through this.
 */
export function multipartPartSize(
  fileSize: number,
  thresholdBytes: number,
  requested?: number,
  fileName?: string
): number | undefined {
  if (fileSize < thresholdBytes) return undefined
  const partSize = choosePartSize(fileSize, requested, fileName)
  return partCount(fileSize, partSize) > 1 ? partSize : undefined
}
