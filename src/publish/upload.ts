import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import {
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type CreateMultipartUploadCommandInput,
  type PutObjectCommandInput,
  type PutObjectCommandOutput,
  type S3Client
} from '@aws-sdk/client-s3'
import type { BuildMiddleware } from '@smithy/types'
import { SHA256_METADATA_KEY } from '../common/constants.js'
import { DeployError, explainAwsError } from '../common/errors.js'
import { withFields } from '../common/objects.js'
import { FILE_BODY_POSITION, FileBody, fileBodyMiddleware } from './file-body.js'
import { LostRace, settleLostRace, writeCondition } from '../aws/lost-race.js'
import {
  abortFailureWarning,
  abortMultipartUploads,
  LIFECYCLE_ADVICE
} from '../aws/multipart-tracker.js'
import { lostRace, type JournaledUpload } from '../aws/publish-lock.js'
import { resumableParts } from './resume.js'
import { multipartPartSize, partCount } from './part-size.js'
import {
  createProgressReporter,
  formatBytes,
  type ProgressClock,
  type ProgressReporter
} from '../common/progress.js'
import type { FileHashes } from './hash.js'
import type { Logger, PlannedFile } from '../common/types.js'

/**
 * Where multipart uploads are recorded while they run (the version's lock), so that one a dead or
 * failed run left open is resumed by the next run instead of sent again.
 */
export interface UploadJournal {
  /** An upload of this key an earlier run left open, as it recorded it; undefined when none. */
  resumable(key: string): JournaledUpload | undefined
  started(upload: JournaledUpload): void
  ended(uploadId: string): void
  /** Whether an upload that failed is left open for a re-run (not when the run was cancelled). */
  keepFailed(): boolean
}

export interface UploadOptions {
  bucket: string
  /** The version prefix the keys are under, for messages. */
  versionPrefix?: string
  multipartThresholdBytes: number
  /** undefined = choosePartSize per file. */
  partSizeBytes?: number
  /** Parts (or small files) in flight at once, across all files. */
  concurrency: number
  cacheControl: string
  /** User metadata; the file's sha256 is added under SHA256_METADATA_KEY. */
  metadata: Record<string, string>
  /** Object tags, URL-encoded (`k=v&…`), e.g. a preview's; none when undefined. */
  tagging?: string
  logger: Logger
  /**
   * The hashes of a file planned without them (Plan.hashesOf), asked for once the file's slots
   * are free and awaited before it is sent; files come in order, so hashing running ahead keeps
   * the uploads fed.
   */
  hashesOf?: (file: PlannedFile) => Promise<FileHashes>
  /** Aborting stops new files, cancels those in flight, and rejects once they have settled. */
  signal?: AbortSignal
  /** Without one, a failed multipart upload is aborted (nothing could resume it). */
  journal?: UploadJournal
  progressIntervalMs?: number
  /** For tests: the clock and timers behind the progress lines. */
  clock?: ProgressClock
}

export interface UploadStats {
  bytesUploaded: number
  /** Keys another run wrote with the same bytes and headers first (a lost race): not uploaded. */
  alreadyThere: string[]
}

interface Job {
  file: PlannedFile
  /** Set once the file's hashes are read, just before it is sent. */
  hashes?: FileHashes
  /** undefined: one PutObject streamed from the file. */
  partSize?: number
  /** Share of the concurrency budget; a multipart upload also runs this many parts at once. */
  slots: number
}

interface JobContext {
  s3: S3Client
  opts: UploadOptions
  progress: ProgressReporter
  cancel: AbortSignal
  /** The reason in-flight transfers are cancelled with, told apart from real failures. */
  cancelled: Error
}

/**
 * Uploads the files whose action is `upload`, several at once under one budget of
 * `concurrency` slots: a small file takes one, a multipart file min(concurrency, its parts).
 * Files are admitted in order, so a big file waiting for slots is not overtaken forever.
 * Memory stays about part size × (concurrency + files in flight).
 *
 * On the first failure (or when `signal` aborts) no further file starts, transfers in flight
 * are cancelled, and the call rejects only after they have settled, so incomplete multipart
 * uploads have been aborted by then.
 */
export async function uploadFiles(
  s3: S3Client,
  files: PlannedFile[],
  opts: UploadOptions
): Promise<UploadStats> {
  // At least one slot, or nothing could ever be admitted.
  const budget = Math.max(1, Math.floor(opts.concurrency))
  const uploads = files.filter((f) => f.action === 'upload')
  // Part sizes are checked for every file before any byte is sent; each job is made as it starts.
  for (const file of uploads) planJob(file, opts, budget)
  const { cancel, cancelled, stop, unlink } = uploadCancellation(opts.signal)
  const progress = createProgressReporter({
    ...opts.clock,
    totalBytes: uploads.reduce((sum, file) => sum + file.size, 0),
    totalFiles: uploads.length,
    logger: opts.logger,
    intervalMs: opts.progressIntervalMs
  })
  const ctx: JobContext = { s3, opts, progress, cancel, cancelled }
  const run: UploadRun = { filesDone: 0, bytesUploaded: 0, alreadyThere: [], stop }
  try {
    await runJobs(uploads, budget, ctx, run)
  } finally {
    progress.stop()
    unlink()
  }

  if (run.failure) throw run.failure
  if (cancel.aborted) {
    throw new DeployError(
      `Upload to s3://${opts.bucket} cancelled: ${run.filesDone} of ${uploads.length} file(s) were uploaded.`,
      undefined,
      { cause: opts.signal?.reason }
    )
  }
  return { bytesUploaded: run.bytesUploaded, alreadyThere: run.alreadyThere }
}

/** How the upload is going: counts for the result, and the first failure, which stops it. */
interface UploadRun {
  filesDone: number
  bytesUploaded: number
  alreadyThere: string[]
  failure?: DeployError
  /** Cancels the transfers in flight: no further file is admitted. */
  stop: () => void
}

/**
 * The upload's own signal: aborted with `cancelled` when the caller's `signal` aborts or on the
 * first failure (`stop`). `unlink` detaches it from the caller's signal.
 */
function uploadCancellation(signal: AbortSignal | undefined): {
  cancel: AbortSignal
  cancelled: Error
  stop: () => void
  unlink: () => void
} {
  const controller = new AbortController()
  const cancel = controller.signal
  // A listener or two per file in flight, each removed when it settles: no leak, so no warning.
  setMaxListeners(0, cancel)
  const cancelled = new Error('Upload cancelled.')
  const stop = (): void => controller.abort(cancelled)
  if (signal?.aborted) stop()
  signal?.addEventListener('abort', stop, { once: true })
  return { cancel, cancelled, stop, unlink: () => signal?.removeEventListener('abort', stop) }
}

/**
 * Admits the jobs in order, each once it has its slots and its hashes, and waits until every
 * job started has settled. Admits nothing more once the upload is cancelled or has failed.
 */
async function runJobs(
  files: PlannedFile[],
  budget: number,
  ctx: JobContext,
  run: UploadRun
): Promise<void> {
  const { cancel, opts } = ctx
  let free = budget
  let wake: (() => void) | undefined
  cancel.addEventListener('abort', () => wake?.(), { once: true })
  // A count, not the jobs' promises: tens of thousands of settled ones would be kept to the end.
  let inFlight = 0
  for (const file of files) {
    const job = planJob(file, opts, budget)
    // Slots first: asking for the hash tells the hashing this file is being sent now, and only
    // this loop takes slots, so waiting for them before the hash delays no byte.
    while (free < job.slots && !cancel.aborted) await new Promise<void>((r) => (wake = r))
    // Asking would start hashing a file nothing will send.
    if (cancel.aborted) break
    try {
      job.hashes = await untilCancelled(hashesOf(job.file, opts), cancel)
    } catch (err) {
      run.failure = explain(err, job.file, opts.bucket)
      run.stop()
    }
    if (cancel.aborted) break
    free -= job.slots
    inFlight++
    ctx.progress.begin()
    void startJob(job, ctx, run)
      .catch((err: unknown) => {
        // Its bookkeeping failed (a logger that threw): that fails the upload too.
        run.failure ??= explain(err, job.file, opts.bucket)
        run.stop()
      })
      .finally(() => {
        free += job.slots
        inFlight--
        wake?.()
      })
  }
  while (inFlight > 0) await new Promise<void>((r) => (wake = r))
}

/**
 * Sends the job and counts what it sent. Its failure stops the upload; once the upload is
 * stopping, a failure of its own is only logged.
 */
function startJob(job: Job, ctx: JobContext, run: UploadRun): Promise<void> {
  const { opts, cancel } = ctx
  return sendOrSettle(job, ctx).then(
    (sent) => {
      run.filesDone++
      ctx.progress.fileDone()
      if (sent === undefined) {
        run.alreadyThere.push(job.file.key)
        opts.logger.info(alreadyThereLine(job, opts.bucket))
        return
      }
      run.bytesUploaded += sent
      opts.logger.info(uploadedLine(job, opts.bucket, sent))
    },
    (err: unknown) => {
      if (!cancel.aborted) {
        run.failure = explain(err, job.file, opts.bucket)
        run.stop()
      } else if (err !== ctx.cancelled && (err as Error | undefined)?.name !== 'AbortError') {
        // Not the cancellation itself: a transfer that failed on its own meanwhile.
        opts.logger.warning(`While stopping: ${explain(err, job.file, opts.bucket).message}`)
      }
    }
  )
}

/**
 * Sends the file; the bytes sent, or undefined when a conditional write lost the race to another
 * run that stored the same bytes and headers (anything else fails: settleLostRace).
 */
async function sendOrSettle(job: Job, ctx: JobContext): Promise<number | undefined> {
  try {
    return await sendFile(job, ctx)
  } catch (err) {
    if (!(err instanceof LostRace)) throw err
    const { opts } = ctx
    await settleLostRace(
      ctx.s3,
      {
        bucket: opts.bucket,
        prefix: opts.versionPrefix ?? job.file.key.slice(0, job.file.key.lastIndexOf('/')),
        relativePath: job.file.relativePath,
        key: job.file.key
      },
      {
        sha256: job.hashes!.sha256,
        contentType: job.file.contentType,
        cacheControl: opts.cacheControl,
        metadata: opts.metadata
      }
    )
    return undefined
  }
}

function planJob(file: PlannedFile, opts: UploadOptions, budget: number): Job {
  // Checked here, for every file before any byte is sent, with the file named.
  const partSize = multipartPartSize(
    file.size,
    opts.multipartThresholdBytes,
    opts.partSizeBytes,
    file.relativePath
  )
  if (partSize === undefined) return { file, slots: 1 }
  return { file, partSize, slots: Math.min(budget, partCount(file.size, partSize)) }
}

/** The file's hashes: the plan's, or those still being read (undefined once cancelled). */
async function hashesOf(file: PlannedFile, opts: UploadOptions): Promise<FileHashes> {
  if (file.sha256 !== undefined) return { sha256: file.sha256, partCrc32: file.partCrc32 ?? [] }
  if (!opts.hashesOf) throw new Error(`${file.relativePath} was planned without its SHA-256.`)
  return opts.hashesOf(file)
}

/** `work`'s result, or undefined as soon as `cancel` aborts. */
function untilCancelled<T>(work: Promise<T>, cancel: AbortSignal): Promise<T | undefined> {
  if (cancel.aborted) return Promise.resolve(undefined)
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(undefined)
    cancel.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => cancel.removeEventListener('abort', onAbort))
  })
}

/** Sends the file (one PutObject, or a multipart upload) and returns the bytes sent. */
async function sendFile(job: Job, ctx: JobContext): Promise<number> {
  const { file } = job
  const { opts, progress } = ctx
  const { sha256, partCrc32 } = job.hashes!
  const params = {
    Bucket: opts.bucket,
    Key: file.key,
    ContentType: file.contentType,
    CacheControl: opts.cacheControl,
    Metadata: withFields(opts.metadata, { [SHA256_METADATA_KEY]: sha256 }),
    ...(opts.tagging ? { Tagging: opts.tagging } : {})
  }

  if (job.partSize === undefined) {
    const onAws = (await ctx.s3.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED'
    const put = new PutObjectCommand(
      withFields(params, {
        Body: fileRange(file.absolutePath, 0, file.size),
        ContentLength: file.size,
        ...writeCondition(file),
        // On AWS, S3 checks and keeps the file's SHA-256 (known from the plan) in place of the
        // CRC32 the SDK would compute from the body.
        ...(onAws ? { ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64') } : {})
      })
    )
    put.middlewareStack.add(fileBodyMiddleware(), FILE_BODY_POSITION)
    // SigV4's payload hash is the file's SHA-256, known from the plan: the signer need not
    // hash the bytes again, and S3 refuses them (XAmzContentSHA256Mismatch) if they changed.
    put.middlewareStack.add(knownPayloadHash(sha256), KNOWN_PAYLOAD_HASH_POSITION)
    try {
      await ctx.s3.send(put, { abortSignal: ctx.cancel })
    } catch (err) {
      throw lostRace(err) ? new LostRace(file.key, { cause: err }) : err
    }
    progress.addBytes(file.size)
    return file.size
  }
  return sendMultipart(job, job.partSize, partCrc32, params, ctx)
}

type UploadParams = CreateMultipartUploadCommandInput & { Bucket: string; Key: string }
type OpenUpload = { Bucket: string; Key: string; UploadId: string }

/**
 * A multipart upload without lib-storage: lib-storage copies every byte into part-sized
 * Buffers, and Buffer bodies are encrypted whole into the socket's queue, so memory grew with
 * part size × concurrency (~310 MB for 16 MiB × 8) and a GiB cost ~1.5 CPU-s of copies and GC.
 * Here `job.slots` workers each take the next part and stream it from the file; memory stays
 * flat for any part size and file size. An upload an earlier run left open for this file is
 * resumed: parts S3 holds with the right size and checksum are not sent again.
 *
 * On failure or cancel no further part starts and the parts in flight settle. A cancelled run
 * aborts the upload; a failed one leaves it open (and journaled) for a re-run to resume, when
 * there is a journal. Returns the bytes sent.
 */
async function sendMultipart(
  job: Job,
  partSize: number,
  partCrc32: string[],
  params: UploadParams,
  ctx: JobContext
): Promise<number> {
  const { file } = job
  const count = partCount(file.size, partSize)
  // On AWS (WHEN_SUPPORTED) every part carries a CRC32 S3 checks, as the SDK would add itself.
  const crc32 = (await ctx.s3.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED'
  if (crc32 && partCrc32.length !== count) {
    // The planner hashes with the same part size (multipartPartSize); anything else is a bug.
    throw new Error(`${file.relativePath} was planned without the CRC32s of its ${count} parts.`)
  }
  const checksums = crc32 ? partCrc32 : undefined
  const created = { ...params, ...(crc32 ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {}) }
  const opened = await openUpload(job, partSize, checksums, created, ctx)
  const { upload, parts } = opened
  let failure: unknown
  try {
    const outcome = await sendParts(job, partSize, checksums, opened, ctx)
    failure = outcome.failure
    if (failure === undefined && ctx.cancel.aborted) failure = ctx.cancelled
    if (failure === undefined) {
      await completeUpload(upload, parts as CompletedPart[], file, ctx)
      return outcome.sent
    }
  } catch (err) {
    failure ??= err
  }
  await endFailedUpload(upload, failure, ctx)
  throw failure
}

/**
 * Sends the parts `parts` lacks, `job.slots` at a time, each streamed from the file, filling
 * `parts` in. Starts no further part after the first failure or the cancel; never rejects.
 */
async function sendParts(
  job: Job,
  partSize: number,
  partCrc32: string[] | undefined,
  { upload, parts }: { upload: OpenUpload; parts: (CompletedPart | undefined)[] },
  ctx: JobContext
): Promise<{ sent: number; failure: unknown }> {
  const { s3, progress, cancel } = ctx
  const { file } = job
  let next = 0
  let sent = 0
  let failure: unknown
  const pending = [...parts.keys()].filter((i) => parts[i] === undefined)
  const worker = async (): Promise<void> => {
    while (next < pending.length && failure === undefined && !cancel.aborted) {
      const index = pending[next++]
      const start = index * partSize
      const length = Math.min(partSize, file.size - start)
      try {
        // On AWS every part carries a CRC32 S3 checks, computed by the planner in the same read
        // as the SHA-256 rather than by the SDK from the body, which would have to be a Buffer.
        const checksum = partCrc32 ? { ChecksumCRC32: partCrc32[index] } : {}
        const part = new UploadPartCommand({
          ...upload,
          ...checksum,
          PartNumber: index + 1,
          Body: fileRange(file.absolutePath, start, length),
          ContentLength: length
        })
        part.middlewareStack.add(fileBodyMiddleware(), FILE_BODY_POSITION)
        // No abortSignal: on cancel no further part starts, but the parts in flight finish
        // before the upload is aborted; a second signal forces it (commands/cancellation.ts).
        const { ETag } = await s3.send(part)
        // Complete must repeat each part's checksum: the one sent, which S3 has checked.
        parts[index] = { PartNumber: index + 1, ETag, ...checksum }
        sent += length
        progress.addBytes(length)
      } catch (err) {
        failure ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(job.slots, pending.length) }, worker))
  return { sent, failure }
}

/** An upload an earlier run left open for these bytes and headers, with its parts; else a new one. */
async function openUpload(
  job: Job,
  partSize: number,
  partCrc32: string[] | undefined,
  created: UploadParams,
  ctx: JobContext
): Promise<{ upload: OpenUpload; parts: (CompletedPart | undefined)[] }> {
  const { s3, opts, cancel, progress } = ctx
  const { file } = job
  const parts = new Array<CompletedPart | undefined>(partCount(file.size, partSize)).fill(undefined)
  const entry: Omit<JournaledUpload, 'uploadId'> = {
    key: file.key,
    sha256: job.hashes!.sha256,
    partSize,
    headers: headersDigest(created)
  }
  const earlier = opts.journal?.resumable(file.key)
  if (
    earlier &&
    earlier.sha256 === entry.sha256 &&
    earlier.partSize === partSize &&
    earlier.headers === entry.headers
  ) {
    const upload = { Bucket: created.Bucket, Key: created.Key, UploadId: earlier.uploadId }
    const found = await resumableParts(s3, upload, file, partSize, {
      partCrc32,
      signal: cancel
    }).catch((err: unknown) => {
      if (cancel.aborted) throw err
      // Resuming saves time; a role that may not list parts still uploads the file anew.
      opts.logger.warning(
        `Could not resume the upload of ${file.relativePath} an earlier run left open ` +
          `(${(err as Error).message}); sending it anew. Resuming needs s3:ListMultipartUploadParts.`
      )
      return undefined
    })
    if (found) {
      for (const [number, part] of found.kept) parts[number - 1] = part
      progress.addBytes(found.bytes)
      opts.logger.info(
        `Resuming the upload of ${file.relativePath} an earlier run left open (upload id ${upload.UploadId}): ` +
          `${found.kept.size} of ${parts.length} part(s), ${formatBytes(found.bytes)}, already stored` +
          `${found.rejected ? `; ${found.rejected} stored part(s) did not match the file and are sent again` : ''}.`
      )
      return { upload, parts }
    }
  }
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand(created), {
    abortSignal: cancel
  })
  if (!UploadId) throw new Error(`CreateMultipartUpload for ${created.Key} returned no UploadId.`)
  opts.journal?.started({ ...entry, uploadId: UploadId })
  return { upload: { Bucket: created.Bucket, Key: created.Key, UploadId }, parts }
}

/** Completes the upload, creating the key only if absent or replacing only what the plan saw. */
async function completeUpload(
  upload: OpenUpload,
  parts: CompletedPart[],
  file: PlannedFile,
  ctx: JobContext
): Promise<void> {
  try {
    await ctx.s3.send(
      new CompleteMultipartUploadCommand({
        ...upload,
        ...writeCondition(file),
        MultipartUpload: { Parts: parts }
      }),
      { abortSignal: ctx.cancel }
    )
  } catch (err) {
    throw lostRace(err) ? new LostRace(file.key, { cause: err }) : err
  }
  ctx.opts.journal?.ended(upload.UploadId)
}

/**
 * A failed upload stays open for a re-run to resume, when it is journaled and the run was not
 * cancelled; otherwise (and after a lost race, whose parts nobody needs) it is aborted.
 */
async function endFailedUpload(
  upload: OpenUpload,
  failure: unknown,
  ctx: JobContext
): Promise<void> {
  const { opts, s3 } = ctx
  if (opts.journal?.keepFailed() && !(failure instanceof LostRace)) {
    opts.logger.info(
      `Left the multipart upload of s3://${upload.Bucket}/${upload.Key} open (upload id ${upload.UploadId}): ` +
        `a re-run resumes it, sending only the parts S3 does not hold. ${LIFECYCLE_ADVICE}`
    )
    return
  }
  const outcome = await abortMultipartUploads(s3, [upload])
  for (const f of outcome.failed) opts.logger.warning(abortFailureWarning(f))
  if (outcome.failed.length === 0) opts.journal?.ended(upload.UploadId)
}

/** What S3 fixed when the upload was created: a resumed upload must have been created the same. */
function headersDigest(created: UploadParams): string {
  const metadata = Object.entries(created.Metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))
  const fixed = [
    created.ContentType ?? '',
    created.CacheControl ?? '',
    metadata,
    created.Tagging ?? '',
    created.ChecksumAlgorithm ?? ''
  ]
  return createHash('sha256').update(JSON.stringify(fixed)).digest('hex')
}

/**
 * `length` bytes of a file from `start`, as a request body; the command must carry
 * fileBodyMiddleware, which streams them on each attempt.
 */
function fileRange(path: string, start: number, length: number): Uint8Array {
  return new FileBody(path, start, start + length - 1) as unknown as Uint8Array
}

export const KNOWN_PAYLOAD_HASH_POSITION = {
  step: 'build',
  name: 'knownPayloadHashMiddleware'
} as const

/** Has SigV4 sign the body as `sha256` (hex), which S3 checks, instead of hashing it again. */
export function knownPayloadHash(
  sha256: string
): BuildMiddleware<PutObjectCommandInput, PutObjectCommandOutput> {
  return (next) => async (args) => {
    const headers = (args.request as { headers?: Record<string, string> }).headers
    if (headers) headers['x-amz-content-sha256'] = sha256
    return next(args)
  }
}

function uploadedLine(job: Job, bucket: string, sent: number): string {
  const { file } = job
  const parts = job.partSize === undefined ? 1 : partCount(file.size, job.partSize)
  const resumed = sent < file.size ? `, ${formatBytes(sent)} sent: resumed` : ''
  return (
    `Uploaded ${file.relativePath} → s3://${bucket}/${file.key} ` +
    `(${formatBytes(file.size)}, ${parts} part${parts === 1 ? '' : 's'}${resumed})`
  )
}

function alreadyThereLine(job: Job, bucket: string): string {
  return (
    `Skipped ${job.file.relativePath}: another run stored the same bytes at ` +
    `s3://${bucket}/${job.file.key} first`
  )
}

/** Names the file and key; a local read error is not reported as something AWS said. */
function explain(err: unknown, file: PlannedFile, bucket: string): DeployError {
  const target = `${file.relativePath} to s3://${bucket}/${file.key}`
  const local = err as NodeJS.ErrnoException | undefined
  if (typeof local?.path === 'string') {
    return new DeployError(
      `Failed reading ${file.absolutePath} to upload ${target}: ${local.message}`,
      'The file changed or disappeared after it was found. Run the step again.',
      { cause: err }
    )
  }
  return explainAwsError(err, { action: `uploading ${target}`, bucket })
}
