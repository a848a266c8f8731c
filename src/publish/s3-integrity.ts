import { createHash } from 'node:crypto'
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  type HeadObjectCommandOutput,
  type S3Client
} from '@aws-sdk/client-s3'
import { mapLimitUntilFailure } from '../common/concurrency.js'
import { SHA256_METADATA_KEY } from '../common/constants.js'
import { awsErrorCode, bulletList, DeployError, InputError } from '../common/errors.js'
import { redact } from '../common/secrets.js'
import type { S3Checksum, S3ChecksumAlgorithm, SourceObject } from '../common/types.js'
import { headSource } from './s3-source-list.js'
import { archivedError, restoreState, sourceReadError } from './s3-source-errors.js'

/**
 * `known`: what S3 already knows of each object (no payload bytes through the runner); `read`:
 * also the SHA-256 of each object that has none, by reading it once through the runner.
 */
export type SourceHashMode = 'known' | 'read'

export interface SourceIntegrityDeps {
  s3In: (region: string) => S3Client
  signal?: AbortSignal
  /** Objects read at once in `read` mode (default 4). */
  concurrency?: number
}

export interface SourceIntegrity<T> {
  /** The objects given, in order, with `sha256` and/or `checksum` set. */
  objects: T[]
  /** Payload bytes read through the runner: the KMS probes' and, in `read` mode, the objects'. */
  bytesRead: number
}

const HEAD_CONCURRENCY = 16
const DEFAULT_READ_CONCURRENCY = 4
/** S3's checksums, in the order one is taken when the SHA-256 is not known. */
const CHECKSUM_ALGORITHMS: readonly S3ChecksumAlgorithm[] = [
  'CRC64NVME',
  'CRC32',
  'CRC32C',
  'SHA1',
  'SHA256'
]

/**
 * Reads what S3 knows of each source object's bytes (one HEAD each, `If-Match` the listed
 * ETag) and proves, with one 1-byte read per SSE-KMS key, that the role may decrypt them. All
 * before anything is written: archived objects, objects without any integrity value (in `known`
 * mode) and an unusable KMS key are refused with what to do.
 */
export async function readSourceIntegrity<T extends SourceObject>(
  objects: T[],
  mode: SourceHashMode,
  deps: SourceIntegrityDeps
): Promise<SourceIntegrity<T>> {
  const heads = await mapLimitUntilFailure(objects, HEAD_CONCURRENCY, deps.signal, (o, signal) =>
    headSource(deps.s3In(o.region), o, signal)
  )
  refuseArchiveTiers(objects, heads)
  const known = objects.map((o, i) => ({ ...o, ...integrityOf(heads[i]) }))
  if (mode === 'known') refuseUnknown(known)
  let bytesRead = await proveKmsAccess(known, heads, deps)
  if (mode === 'known') return { objects: known, bytesRead }

  const unread = known.flatMap((o, i) => (o.sha256 === undefined ? [{ o, head: heads[i] }] : []))
  const hashes = await mapLimitUntilFailure(
    unread,
    deps.concurrency ?? DEFAULT_READ_CONCURRENCY,
    deps.signal,
    ({ o, head }, signal) => hashSource(deps.s3In(o.region), o, head, signal)
  )
  const sha256Of = new Map(unread.map(({ o }, i) => [o, hashes[i]]))
  bytesRead += unread.reduce((sum, { o }) => sum + o.size, 0)
  return { objects: known.map((o) => ({ ...o, sha256: o.sha256 ?? sha256Of.get(o) })), bytesRead }
}

/** The object's SHA-256, from our metadata or S3's full-object SHA-256, else S3's checksum. */
function integrityOf(head: HeadObjectCommandOutput): Pick<SourceObject, 'sha256' | 'checksum'> {
  const recorded = head.Metadata?.[SHA256_METADATA_KEY]
  if (recorded && /^[0-9a-f]{64}$/i.test(recorded)) return { sha256: recorded.toLowerCase() }
  const sha256 = head.ChecksumType === 'FULL_OBJECT' ? hexOf(head.ChecksumSHA256) : undefined
  if (sha256) return { sha256 }
  const checksum = checksumOf(head)
  return checksum ? { checksum } : {}
}

/** A base64 SHA-256 as hex; undefined unless it is one. */
function hexOf(base64: string | undefined): string | undefined {
  const bytes = base64 === undefined ? undefined : Buffer.from(base64, 'base64')
  return bytes?.length === 32 ? bytes.toString('hex') : undefined
}

/** S3's first checksum present; a composite one (of parts) ends in `-<parts>`. */
function checksumOf(head: HeadObjectCommandOutput): S3Checksum | undefined {
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    const value = head[`Checksum${algorithm}`]
    if (!value) continue
    const type = head.ChecksumType ?? (/-\d+$/.test(value) ? 'COMPOSITE' : 'FULL_OBJECT')
    return { algorithm, type, value }
  }
  return undefined
}

/** Intelligent-Tiering's archive tiers: like Glacier, nothing is read before a restore. */
function refuseArchiveTiers(objects: SourceObject[], heads: HeadObjectCommandOutput[]): void {
  const archived = objects.flatMap((o, i) => {
    const { ArchiveStatus, Restore } = heads[i]
    const state = restoreState(Restore)
    if (!ArchiveStatus || state === 'restored') return []
    const why = `Intelligent-Tiering ${ArchiveStatus}, ${state === 'restoring' ? 'restore in progress' : 'not restored'}`
    return [{ url: o.absolutePath, why }]
  })
  if (archived.length > 0) throw archivedError(archived)
}

function refuseUnknown(objects: SourceObject[]): void {
  const unknown = objects.filter((o) => o.sha256 === undefined && o.checksum === undefined)
  if (unknown.length === 0) return
  throw new InputError(
    `S3 knows no checksum of ${unknown.length} source object(s), so the manifest could not say what bytes they hold:${bulletList(unknown.map((o) => o.absolutePath))}`,
    'Set `source-hash: read` to compute their SHA-256 by reading each object once through the runner, ' +
      'or upload them again with a checksum (e.g. `aws s3 cp --checksum-algorithm CRC64NVME`).'
  )
}

/** The KMS key of an SSE-KMS object, as HEAD names it; undefined for other encryption. */
function kmsKeyOf(head: HeadObjectCommandOutput): string | undefined {
  if (!head.ServerSideEncryption?.startsWith('aws:kms')) return undefined
  return head.SSEKMSKeyId ?? '(not named by S3)'
}

/**
 * A copy decrypts SSE-KMS sources with the role's own kms:Decrypt, which nothing but a read
 * proves: one 1-byte ranged GET per key, on a non-empty object using it. Returns bytes read.
 */
async function proveKmsAccess(
  objects: SourceObject[],
  heads: HeadObjectCommandOutput[],
  deps: SourceIntegrityDeps
): Promise<number> {
  const probes = new Map<string, SourceObject>()
  objects.forEach((o, i) => {
    const key = kmsKeyOf(heads[i])
    if (key !== undefined && o.size > 0 && !probes.has(key)) probes.set(key, o)
  })
  const read = await mapLimitUntilFailure(
    [...probes],
    HEAD_CONCURRENCY,
    deps.signal,
    async ([key, o], signal) => {
      const got = await getSource(deps.s3In(o.region), o, key, signal, 'bytes=0-0')
      return readBody(got, signal, () => undefined)
    }
  )
  return read.reduce((sum, n) => sum + n, 0)
}

/** SHA-256 of the object's bytes, streamed (never the whole object in memory). */
async function hashSource(
  s3: S3Client,
  object: SourceObject,
  head: HeadObjectCommandOutput,
  signal: AbortSignal
): Promise<string> {
  const got = await getSource(s3, object, kmsKeyOf(head), signal)
  const hash = createHash('sha256')
  const bytes = await readBody(got, signal, (chunk) => hash.update(chunk))
  if (bytes !== object.size) {
    throw new DeployError(
      `Read ${bytes} of the ${object.size} bytes of ${object.absolutePath}: the transfer was cut short.`,
      'Run again.'
    )
  }
  return hash.digest('hex')
}

/** Streams a GET's body to `onChunk`, chunk by chunk; returns the bytes read. */
async function readBody(
  got: GetObjectCommandOutput,
  signal: AbortSignal,
  onChunk: (chunk: Uint8Array) => void
): Promise<number> {
  let bytes = 0
  for await (const chunk of (got.Body ?? []) as AsyncIterable<Uint8Array>) {
    signal.throwIfAborted()
    onChunk(chunk)
    bytes += chunk.length
  }
  return bytes
}

/** GET of the source as listed (`If-Match`), a refusal by KMS named as such. */
async function getSource(
  s3: S3Client,
  object: SourceObject,
  kmsKey: string | undefined,
  signal: AbortSignal,
  range?: string
): Promise<GetObjectCommandOutput> {
  signal.throwIfAborted()
  const input = { Bucket: object.bucket, Key: object.key, IfMatch: object.eTag, Range: range }
  return s3.send(new GetObjectCommand(input), { abortSignal: signal }).catch((err: unknown) => {
    signal.throwIfAborted()
    if (kmsKey !== undefined && isKmsRefusal(err)) throw kmsDenied(object, kmsKey, err)
    throw sourceReadError(err, object, 'reading')
  })
}

/** S3 reports a key the role may not use as AccessDenied, a `KMS.*` code, or a message naming KMS. */
function isKmsRefusal(err: unknown): boolean {
  const code = awsErrorCode(err) ?? ''
  const message = err instanceof Error ? err.message : ''
  return code === 'AccessDenied' || code.startsWith('KMS.') || /\bKMS\b/i.test(message)
}

function kmsDenied(object: SourceObject, kmsKey: string, err: unknown): InputError {
  const said = redact(err instanceof Error ? err.message : String(err))
  return new InputError(
    `${object.absolutePath} is encrypted with the KMS key ${kmsKey}, which the role may not use (AWS said ${awsErrorCode(err) ?? 'Error'}: ${said}).`,
    `Copying it needs kms:Decrypt on ${kmsKey}: grant it to the role, and for a key of another account in that key's policy too.`
  )
}
