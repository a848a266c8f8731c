import type { Clients } from '../../aws/clients.js'
import {
  abortFailureWarning,
  abortMultipartUploads,
  listOpenUploads,
  type MultipartUpload
} from '../../aws/multipart-tracker.js'
import type { HeldLock, JournaledUpload } from '../../aws/publish-lock.js'
import { explainAwsError } from '../../common/errors.js'
import type { DeployInputs, Logger, PlannedFile } from '../../common/types.js'
import { copyFiles } from '../../publish/reuse.js'
import { uploadFiles, type UploadOptions } from '../../publish/upload.js'

/** What the objects are written with, and how many parts at once. */
export type TransferInputs = Pick<
  DeployInputs,
  | 'bucket'
  | 'versionPrefix'
  | 'cacheControl'
  | 'metadata'
  | 'partSizeBytes'
  | 'concurrency'
  | 'multipartThresholdBytes'
>

/**
 * Copies and uploads at once: a copy is S3's work and an upload the runner's bandwidth, so neither
 * need wait for the other (a multi-GB copy takes S3 seconds). A file whose copy source changed
 * since it was found is uploaded afterwards. The first failure cancels the other side, and both
 * settle (multipart uploads aborted) before it is thrown.
 */
export async function copyAndUpload(
  s3: Clients['s3'],
  files: PlannedFile[],
  inputs: TransferInputs,
  deps: { logger: Logger; signal?: AbortSignal; objectTagging?: string } & Pick<
    UploadOptions,
    'hashesOf' | 'journal'
  >
): Promise<{ bytesUploaded: number; bytesCopied: number; alreadyThere: Set<string> }> {
  const failed = new AbortController()
  const signal = deps.signal ? AbortSignal.any([deps.signal, failed.signal]) : failed.signal
  let failure: unknown
  const cancelOnFailure = <T>(work: Promise<T>): Promise<T> =>
    work.catch((err: unknown) => {
      failure ??= err
      failed.abort(err)
      throw err
    })
  const headers = {
    bucket: inputs.bucket,
    versionPrefix: inputs.versionPrefix,
    cacheControl: inputs.cacheControl,
    metadata: inputs.metadata,
    tagging: deps.objectTagging,
    partSizeBytes: inputs.partSizeBytes,
    concurrency: inputs.concurrency,
    logger: deps.logger
  }
  const uploadOptions = {
    ...headers,
    multipartThresholdBytes: inputs.multipartThresholdBytes,
    hashesOf: deps.hashesOf,
    journal: deps.journal
  }
  const [copied, uploaded] = await Promise.allSettled([
    cancelOnFailure(copyFiles(s3, files, { ...headers, signal })),
    cancelOnFailure(uploadFiles(s3, files, { ...uploadOptions, signal }))
  ])
  if (copied.status === 'rejected' || uploaded.status === 'rejected') throw failure
  const { bytesCopied, fallBack } = copied.value
  let { bytesUploaded } = uploaded.value
  const alreadyThere = new Set([...copied.value.alreadyThere, ...uploaded.value.alreadyThere])
  if (fallBack.length > 0) {
    const again = files.filter((f) => fallBack.some((fb) => fb.key === f.key))
    for (const file of again) Object.assign(file, { action: 'upload', copyFrom: undefined })
    const more = await uploadFiles(s3, again, { ...uploadOptions, signal: deps.signal })
    bytesUploaded += more.bytesUploaded
    for (const key of more.alreadyThere) alreadyThere.add(key)
  }
  return { bytesUploaded, bytesCopied, alreadyThere }
}

/**
 * The multipart uploads an earlier holder of the lock (a dead or failed run) journaled and left
 * open: resumable when the same file is uploaded again; those of files this run published by
 * other means are aborted once the files are in place, so none is left open.
 */
export async function earlierUploads(
  lock: HeldLock,
  inputs: Pick<DeployInputs, 'bucket' | 'versionPrefix'>,
  s3: Clients['s3'],
  logger: Logger
): Promise<{
  resumable: (key: string) => JournaledUpload | undefined
  ended: Set<string>
  abortUnused: (files: PlannedFile[]) => Promise<void>
}> {
  const journaled = lock.previous?.uploads ?? []
  const ended = new Set<string>()
  if (journaled.length === 0) {
    return { resumable: () => undefined, ended, abortUnused: async () => undefined }
  }
  let open: MultipartUpload[] = []
  try {
    open = await listOpenUploads(s3, inputs.bucket, `${inputs.versionPrefix}/`)
  } catch (err) {
    logger.warning(
      `Could not list the multipart uploads an earlier run left open under ${inputs.versionPrefix}/, so none is resumed: ` +
        explainAwsError(err, { action: 'listing multipart uploads', bucket: inputs.bucket }).message
    )
  }
  const openIds = new Set(open.map((u) => u.UploadId))
  for (const upload of journaled) if (!openIds.has(upload.uploadId)) lock.ended(upload.uploadId)
  return {
    resumable: (key) => journaled.find((u) => u.key === key && openIds.has(u.uploadId)),
    ended,
    abortUnused: async (files) => {
      const keys = new Set(files.map((f) => f.key))
      const unused = open.filter((u) => keys.has(u.Key) && !ended.has(u.UploadId))
      if (unused.length === 0) return
      const outcome = await abortMultipartUploads(s3, unused)
      for (const f of outcome.failed) logger.warning(abortFailureWarning(f))
      for (const u of [...outcome.aborted, ...outcome.gone]) lock.ended(u.UploadId)
      logger.info(
        `Aborted ${outcome.aborted.length} multipart upload(s) an earlier run left open for files now in place.`
      )
    }
  }
}
