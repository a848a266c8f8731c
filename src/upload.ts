import { setMaxListeners } from 'node:events'
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { GiB, SHA256_METADATA_KEY } from './constants.js'
import { DeployError, explainAwsError } from './errors.js'
import { abortFailureWarning, abortMultipartUploads } from './multipart-tracker.js'
import { choosePartSize, partCount } from './part-size.js'
import {
  createProgressReporter,
  formatBytes,
  type ProgressClock,
  type ProgressReporter
} from './progress.js'
import type { Logger, PlannedFile } from './types.js'

export interface UploadOptions {
  bucket: string
  multipartThresholdBytes: number
  /** undefined = choosePartSize per file. */
  partSizeBytes?: number
  /** Parts (or small files) in flight at once, across all files. */
  concurrency: number
  cacheControl: string
  /** User metadata; the file's sha256 is added under SHA256_METADATA_KEY. */
  metadata: Record<string, string>
  logger: Logger
  /** Aborting stops new files, cancels those in flight, and rejects once they have settled. */
  signal?: AbortSignal
  progressIntervalMs?: number
  /** For tests: the clock and timers behind durationMs and the progress lines. */
  clock?: ProgressClock
}

export interface UploadStats {
  bytesUploaded: number
  durationMs: number
}

/** fs.readFile refuses files of 2 GiB or more, so those go multipart whatever the threshold. */
const MAX_SINGLE_PUT_BYTES = 2 * GiB

/** Whether a file of this size goes up as a multipart upload. */
export function isMultipart(size: number, multipartThresholdBytes: number): boolean {
  return size >= Math.min(multipartThresholdBytes, MAX_SINGLE_PUT_BYTES)
}

interface Job {
  file: PlannedFile
  /** undefined: one PutObject from a Buffer. */
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
  const now = opts.clock?.now ?? Date.now
  const started = now()
  // At least one slot, or nothing could ever be admitted.
  const budget = Math.max(1, Math.floor(opts.concurrency))
  // Part sizes are checked for every file before any byte is sent.
  const jobs = files.filter((f) => f.action === 'upload').map((f) => planJob(f, opts, budget))

  const controller = new AbortController()
  const cancel = controller.signal
  // A listener or two per file in flight, each removed when it settles: no leak, so no warning.
  setMaxListeners(0, cancel)
  const cancelled = new Error('Upload cancelled.')
  const onSignal = (): void => controller.abort(cancelled)
  if (opts.signal?.aborted) onSignal()
  opts.signal?.addEventListener('abort', onSignal, { once: true })

  let free = budget
  let wake: (() => void) | undefined
  cancel.addEventListener('abort', () => wake?.(), { once: true })

  const progress = createProgressReporter({
    ...opts.clock,
    totalBytes: jobs.reduce((sum, job) => sum + job.file.size, 0),
    totalFiles: jobs.length,
    logger: opts.logger,
    intervalMs: opts.progressIntervalMs
  })
  const ctx: JobContext = { s3, opts, progress, cancel, cancelled }
  let failure: DeployError | undefined
  let filesDone = 0
  let bytesUploaded = 0
  const running: Promise<void>[] = []
  try {
    for (const job of jobs) {
      while (free < job.slots && !cancel.aborted) await new Promise<void>((r) => (wake = r))
      if (cancel.aborted) break
      free -= job.slots
      const run = sendFile(job, ctx).then(
        () => {
          filesDone++
          bytesUploaded += job.file.size
          progress.fileDone()
          opts.logger.info(uploadedLine(job, opts.bucket))
        },
        (err: unknown) => {
          if (!cancel.aborted) {
            failure = explain(err, job.file, opts.bucket)
            controller.abort(cancelled)
          } else if (err !== cancelled && (err as Error | undefined)?.name !== 'AbortError') {
            // Not the cancellation itself: a transfer that failed on its own meanwhile.
            opts.logger.warning(`While stopping: ${explain(err, job.file, opts.bucket).message}`)
          }
        }
      )
      running.push(
        run.finally(() => {
          free += job.slots
          wake?.()
        })
      )
    }
    await Promise.all(running)
  } finally {
    progress.stop()
    opts.signal?.removeEventListener('abort', onSignal)
  }

  if (failure) throw failure
  if (cancel.aborted) {
    throw new DeployError(
      `Upload to s3://${opts.bucket} cancelled: ${filesDone} of ${jobs.length} file(s) were uploaded.`,
      undefined,
      { cause: opts.signal?.reason }
    )
  }
  return { bytesUploaded, durationMs: now() - started }
}

function planJob(file: PlannedFile, opts: UploadOptions, budget: number): Job {
  if (!isMultipart(file.size, opts.multipartThresholdBytes)) {
    return { file, slots: 1 }
  }
  const partSize = choosePartSize(file.size, opts.partSizeBytes, file.relativePath)
  return { file, partSize, slots: Math.min(budget, partCount(file.size, partSize)) }
}

async function sendFile(job: Job, ctx: JobContext): Promise<void> {
  const { file } = job
  const { opts, progress, cancel } = ctx
  const params = {
    Bucket: opts.bucket,
    Key: file.key,
    ContentType: file.contentType,
    CacheControl: opts.cacheControl,
    Metadata: { ...opts.metadata, [SHA256_METADATA_KEY]: file.sha256 }
  }

  if (job.partSize === undefined) {
    // A Buffer, not a stream, so the SDK can resend it when it retries.
    const body = await readFile(file.absolutePath, { signal: cancel })
    await ctx.s3.send(new PutObjectCommand({ ...params, Body: body, ContentLength: body.length }), {
      abortSignal: cancel
    })
    progress.addBytes(body.length)
    return
  }

  // No `{ start: 0 }`: lib-storage then cannot tell the stream's size (see aws-facts.md).
  const body = createReadStream(file.absolutePath)
  // lib-storage sees read errors through its iterator; this only keeps an error emitted while
  // no iterator is attached (a cancel racing lib-storage's own shutdown) from crashing Node.
  body.on('error', () => undefined)
  // Cancel by failing the body rather than with upload.abort(): abort() makes done() reject at
  // once while parts are still in flight and AbortMultipartUpload is sent later, unobserved.
  // A failed body makes lib-storage stop reading and let its parts finish before done() rejects.
  const onCancel = (): void => {
    body.destroy(ctx.cancelled)
  }
  cancel.addEventListener('abort', onCancel, { once: true })
  try {
    const upload = new Upload({
      client: ctx.s3,
      params: { ...params, Body: body },
      partSize: job.partSize,
      queueSize: job.slots,
      // We abort ourselves: lib-storage's abort, when refused, replaces the original error.
      leavePartsOnError: true
    })
    // One event per completed part, in completion order, with this upload's running total.
    let loaded = 0
    upload.on('httpUploadProgress', (p) => {
      if (p.loaded !== undefined && p.loaded > loaded) {
        progress.addBytes(p.loaded - loaded)
        loaded = p.loaded
      }
    })
    try {
      await upload.done()
    } catch (err) {
      if (upload.uploadId) {
        const { Bucket, Key } = params
        const outcome = await abortMultipartUploads(ctx.s3, [
          { Bucket, Key, UploadId: upload.uploadId }
        ])
        for (const failure of outcome.failed) opts.logger.warning(abortFailureWarning(failure))
      }
      throw err
    }
  } finally {
    cancel.removeEventListener('abort', onCancel)
    // Closes the file descriptor on every path, including a failed part.
    body.destroy()
  }
}

function uploadedLine(job: Job, bucket: string): string {
  const { file } = job
  const parts = job.partSize === undefined ? 1 : partCount(file.size, job.partSize)
  return (
    `Uploaded ${file.relativePath} → s3://${bucket}/${file.key} ` +
    `(${formatBytes(file.size)}, ${parts} part${parts === 1 ? '' : 's'})`
  )
}

/** Names the file and key; a local read error is not reported as something AWS said. */
function explain(err: unknown, file: PlannedFile, bucket: string): DeployError {
  const target = `${file.relativePath} to s3://${bucket}/${file.key}`
  const local = err as NodeJS.ErrnoException | undefined
  if (typeof local?.path === 'string') {
    return new DeployError(
      `Failed reading ${file.absolutePath} to upload ${target}: ${local.message}`,
      'The file changed or disappeared after it was found and hashed. Run the step again.',
      { cause: err }
    )
  }
  return explainAwsError(err, { action: `uploading ${target}`, bucket })
}
