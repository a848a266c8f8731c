/**
 * Resuming a multipart upload left open by a runner that died, or by a run that failed after its
 * retries: the parts S3 already holds that match the local file are kept, so a re-run of the
 * same file sends only the rest.
 */
import { createHash } from 'node:crypto'
import { open, type FileHandle } from 'node:fs/promises'
import { ListPartsCommand, type CompletedPart, type Part, type S3Client } from '@aws-sdk/client-s3'
import { MiB } from '../common/constants.js'
import { awsErrorCode, explainAwsError, httpStatusOf } from '../common/errors.js'
import { partCount } from './part-size.js'

/** Parts of an open multipart upload that hold exactly the local file's bytes for their range. */
export interface ResumedParts {
  /** PartNumber → the CompletedPart to pass to CompleteMultipartUpload (ETag, and ChecksumCRC32 when S3 stored one). */
  kept: Map<number, CompletedPart>
  /** Bytes those parts cover (not sent again). */
  bytes: number
  /** Parts listed but not kept (wrong size or checksum), for the log. */
  rejected: number
}

/** Parts hashed at once: reading competes with the uploads for the disk. */
const MD5_CONCURRENCY = 2
/** Read size per hashing worker, each with its own reused buffer. */
const READ_SIZE = MiB

/** The bytes of the local file a part number stands for. */
interface Range {
  partNumber: number
  start: number
  length: number
}

/** A listed part that may be kept: at once (its CRC32 matched), or once its range's MD5 is `md5`. */
interface Candidate extends Range {
  completed: CompletedPart
  md5?: string
}

/**
 * Lists every part of the upload (ListParts, all pages: PartNumberMarker/NextPartNumberMarker, IsTruncated)
 * and keeps those that match the local file: the size its range must have, and either the CRC32 S3
 * stored (when the part has ChecksumCRC32 and `partCrc32` is given) or, without one, an ETag equal to the
 * MD5 of the local range (read from the file; an ETag that is not a plain 32-hex MD5, e.g. SSE-KMS, is not kept).
 * Returns undefined when the upload no longer exists (NoSuchUpload / 404): completed or aborted meanwhile.
 */
export async function resumableParts(
  s3: S3Client,
  upload: { Bucket: string; Key: string; UploadId: string },
  file: { absolutePath: string; size: number },
  partSize: number,
  opts: { partCrc32?: string[]; signal?: AbortSignal }
): Promise<ResumedParts | undefined> {
  const listed = await listParts(s3, upload, opts.signal)
  if (!listed) return undefined

  const candidates = listed.flatMap((part) => candidate(part, file.size, partSize, opts.partCrc32))
  const crcMatched = candidates.filter((c) => c.md5 === undefined)
  const toHash = candidates.filter((c) => c.md5 !== undefined)
  const md5Matched = await matchingMd5(file.absolutePath, toHash, partSize, opts.signal)
  const matched = [...crcMatched, ...md5Matched].sort((a, b) => a.partNumber - b.partNumber)
  // Keyed by part number, so a part listed twice counts once.
  const byNumber = new Map(matched.map((c) => [c.partNumber, c]))
  let bytes = 0
  for (const c of byNumber.values()) bytes += c.length
  return {
    kept: new Map([...byNumber].map(([n, c]) => [n, c.completed])),
    bytes,
    rejected: listed.length - byNumber.size
  }
}

/** The part as a candidate to keep, or none when its number, size or checksum rules it out. */
function candidate(
  part: Part,
  size: number,
  partSize: number,
  partCrc32: string[] | undefined
): Candidate[] {
  const range = rangeOf(part.PartNumber, size, partSize)
  if (!range || part.Size !== range.length || !part.ETag) return []
  const completed: CompletedPart = {
    PartNumber: range.partNumber,
    ETag: part.ETag,
    // Complete must repeat the checksum of a part uploaded with one.
    ...(part.ChecksumCRC32 ? { ChecksumCRC32: part.ChecksumCRC32 } : {})
  }
  const crc32 = partCrc32?.[range.partNumber - 1]
  if (part.ChecksumCRC32 && crc32 !== undefined) {
    // S3 checked the bytes it stored against this CRC32: the file need not be read.
    return part.ChecksumCRC32 === crc32 ? [{ ...range, completed }] : []
  }
  const md5 = plainMd5(part.ETag)
  return md5 ? [{ ...range, completed, md5 }] : []
}

/** Every listed part, or undefined when the upload is gone; a cancel rejects with its reason. */
async function listParts(
  s3: S3Client,
  upload: { Bucket: string; Key: string; UploadId: string },
  signal?: AbortSignal
): Promise<Part[] | undefined> {
  const parts: Part[] = []
  let marker: string | undefined
  try {
    for (;;) {
      signal?.throwIfAborted()
      const page = await s3.send(new ListPartsCommand({ ...upload, PartNumberMarker: marker }), {
        abortSignal: signal
      })
      parts.push(...(page.Parts ?? []))
      const next = page.NextPartNumberMarker
      // A store that says "truncated" without moving the marker on would loop forever; parts it
      // did not list are simply sent again.
      if (!page.IsTruncated || !next || next === marker) return parts
      marker = next
    }
  } catch (err) {
    if (signal?.aborted) throw signal.reason
    if (isGone(err)) return undefined
    const { Bucket, Key, UploadId } = upload
    throw explainAwsError(err, {
      action: `listing the parts of multipart upload ${UploadId} of s3://${Bucket}/${Key}`,
      bucket: Bucket
    })
  }
}

/** Completed or aborted meanwhile. A missing bucket is a 404 too, but one to report. */
function isGone(err: unknown): boolean {
  const code = awsErrorCode(err)
  return code === 'NoSuchUpload' || (httpStatusOf(err) === 404 && code !== 'NoSuchBucket')
}

/** The local bytes part `partNumber` must hold, or undefined when it is not one of the file's. */
function rangeOf(
  partNumber: number | undefined,
  size: number,
  partSize: number
): Range | undefined {
  if (partNumber === undefined || !Number.isInteger(partNumber)) return undefined
  if (partNumber < 1 || partNumber > partCount(size, partSize)) return undefined
  const start = (partNumber - 1) * partSize
  return { partNumber, start, length: Math.min(partSize, size - start) }
}

/** The hex MD5 an ETag states, or undefined when it is something else (SSE-KMS, SSE-C, a store's own). */
function plainMd5(etag: string): string | undefined {
  return /^"?([0-9a-f]{32})"?$/i.exec(etag)?.[1].toLowerCase()
}

/** The candidates whose local range has the MD5 they state, hashed MD5_CONCURRENCY at a time. */
async function matchingMd5(
  path: string,
  candidates: Candidate[],
  partSize: number,
  signal?: AbortSignal
): Promise<Candidate[]> {
  if (candidates.length === 0) return []
  const matched: Candidate[] = []
  const handle = await open(path, 'r')
  let next = 0
  let failure: unknown
  const worker = async (): Promise<void> => {
    const buffer = Buffer.allocUnsafe(Math.min(READ_SIZE, partSize))
    while (next < candidates.length && failure === undefined) {
      const c = candidates[next++]
      try {
        if ((await md5Of(handle, c, buffer, signal)) === c.md5) matched.push(c)
      } catch (err) {
        failure ??= err
      }
    }
  }
  try {
    // The workers stop at the first failure and settle before the file is closed.
    await Promise.all(Array.from({ length: Math.min(MD5_CONCURRENCY, candidates.length) }, worker))
  } finally {
    await handle.close()
  }
  if (failure !== undefined) throw failure
  return matched
}

/** Hex MD5 of a range of the file, read through `buffer`; a cancel rejects with its reason. */
async function md5Of(
  handle: FileHandle,
  { start, length }: Range,
  buffer: Buffer,
  signal?: AbortSignal
): Promise<string> {
  const md5 = createHash('md5')
  for (let done = 0; done < length;) {
    signal?.throwIfAborted()
    const want = Math.min(buffer.length, length - done)
    const { bytesRead } = await handle.read(buffer, 0, want, start + done)
    // The file shrank since it was planned: what is there cannot match a full-size part.
    if (bytesRead === 0) break
    md5.update(buffer.subarray(0, bytesRead))
    done += bytesRead
  }
  return md5.digest('hex')
}
