import { hostname } from 'node:os'
import * as core from '@actions/core'
import type { S3Client } from '@aws-sdk/client-s3'
import { createClients } from '../aws/clients.js'
import { State } from '../common/constants.js'
import { explainAwsError, failureMessage } from '../common/errors.js'
import {
  abortFailureWarning,
  abortMultipartUploads,
  describeUpload,
  LIFECYCLE_ADVICE,
  listOpenUploads,
  trackMultipartUploads,
  type MultipartTracker,
  type MultipartUpload
} from '../aws/multipart-tracker.js'
import { lockKey, removeLockOf } from '../aws/publish-lock.js'
import { maskCredentials } from '../common/secrets.js'
import type { DeployInputs, Logger } from '../common/types.js'

/** What the main step saved for the post step. */
export interface CleanupState {
  bucket: string
  versionPrefix: string
  region: string
  endpointUrl?: string
  startedAt: Date
  /** The multipart uploads open when the main step last saved them. */
  uploads: MultipartUpload[]
  succeeded: boolean
  /** The run was cancelled (SIGINT/SIGTERM), rather than failed or killed. */
  cancelled: boolean
  /** The main step's process, which held the version's lock. */
  mainPid?: number
}

/**
 * In the main step, once the clients exist: saves what the post step needs to find this run's
 * multipart uploads, and keeps the list of open ones saved as they start and end.
 */
export function prepareCleanup(
  inputs: DeployInputs,
  s3: S3Client,
  startedAt: Date
): MultipartTracker {
  core.saveState(State.Bucket, inputs.bucket)
  core.saveState(State.VersionPrefix, inputs.versionPrefix)
  core.saveState(State.Region, inputs.region)
  core.saveState(State.EndpointUrl, inputs.endpointUrl ?? '')
  core.saveState(State.StartedAt, startedAt.toISOString())
  core.saveState(State.MainPid, String(process.pid))
  return trackMultipartUploads(s3, (open) =>
    core.saveState(State.MultipartUploads, JSON.stringify(open))
  )
}

/** The saved state; undefined when the main step stopped before it could start any upload. */
export function readCleanupState(getState: (name: string) => string): CleanupState | undefined {
  const bucket = getState(State.Bucket)
  const startedAt = new Date(getState(State.StartedAt))
  if (!bucket || Number.isNaN(startedAt.getTime())) return undefined
  const uploads = getState(State.MultipartUploads)
  return {
    bucket,
    versionPrefix: getState(State.VersionPrefix),
    region: getState(State.Region),
    endpointUrl: getState(State.EndpointUrl) || undefined,
    startedAt,
    uploads: uploads ? (JSON.parse(uploads) as MultipartUpload[]) : [],
    succeeded: getState(State.Succeeded) === 'true',
    cancelled: getState(State.Cancelled) === 'true',
    mainPid: Number(getState(State.MainPid)) || undefined
  }
}

/**
 * The post step (`post-if: always()`): after a cancelled main step, aborts every multipart upload
 * the run left open. After a failed or killed one it leaves them: they are journaled in the
 * version's lock, and a re-run of the same files resumes them instead of sending every part
 * again (a lifecycle rule removes those nobody resumes). It never fails the job: what it cannot
 * abort, it warns about.
 */
export async function runPost(): Promise<void> {
  maskCredentials(process.env, core.setSecret)
  const logger: Logger = { info: core.info, warning: core.warning, debug: core.debug }
  try {
    const state = readCleanupState(core.getState)
    if (!state) {
      logger.info('Nothing to clean up: the deploy stopped before it could upload anything.')
      return
    }
    if (state.succeeded) {
      logger.info('Nothing to clean up: the deploy succeeded.')
      return
    }
    if (!state.cancelled) {
      logger.info(
        state.uploads.length > 0
          ? `Left ${state.uploads.length} multipart upload(s) open under s3://${state.bucket}/${state.versionPrefix}/: ` +
              'the deploy failed (it was not cancelled), so a re-run of the same files resumes them, ' +
              `sending only the parts S3 does not hold. ${LIFECYCLE_ADVICE}`
          : 'Nothing to clean up: no multipart upload of this run is open.'
      )
      return
    }
    const { s3 } = createClients(
      { region: state.region, endpointUrl: state.endpointUrl, concurrency: 1 },
      process.env,
      { logger }
    )
    try {
      await abortLeftovers(s3, state, logger)
      await removeCancelledLock(s3, state, logger)
    } finally {
      s3.destroy()
    }
  } catch (err) {
    logger.warning(
      `Could not clean up after the deploy: ${failureMessage(err)} ${LIFECYCLE_ADVICE}`
    )
  }
}

/** The version's lock, when the cancelled main step had to exit before releasing it. */
async function removeCancelledLock(
  s3: S3Client,
  state: CleanupState,
  logger: Logger
): Promise<void> {
  if (state.mainPid === undefined) return
  const target = { bucket: state.bucket, prefix: state.versionPrefix }
  if (await removeLockOf(s3, target, { host: hostname(), pid: state.mainPid })) {
    logger.info(
      `Removed the lock s3://${state.bucket}/${lockKey(state.versionPrefix)} the cancelled run held.`
    )
  }
}

/** Aborts the uploads recorded and, as a second net, those under the prefix since the start. */
async function abortLeftovers(s3: S3Client, state: CleanupState, logger: Logger): Promise<void> {
  const prefix = `${state.versionPrefix}/`
  const where = `s3://${state.bucket}/${prefix}`
  const candidates = new Map(state.uploads.map((u) => [u.UploadId, u]))
  try {
    for (const upload of await listOpenUploads(s3, state.bucket, prefix, state.startedAt)) {
      candidates.set(upload.UploadId, upload)
    }
  } catch (err) {
    logger.warning(
      `Could not list the multipart uploads under ${where} (this needs ` +
        `s3:ListBucketMultipartUploads), so only the ${candidates.size} this run recorded are ` +
        'aborted: ' +
        explainAwsError(err, {
          action: `listing multipart uploads under ${where}`,
          bucket: state.bucket
        }).message
    )
  }
  if (candidates.size === 0) {
    logger.info(`No multipart upload of this run is left open under ${where}.`)
    return
  }
  const outcome = await abortMultipartUploads(s3, [...candidates.values()])
  for (const failure of outcome.failed) logger.warning(abortFailureWarning(failure))
  if (outcome.aborted.length > 0) {
    logger.info(
      `Aborted ${outcome.aborted.length} multipart upload(s) this run left open:\n` +
        outcome.aborted.map((u) => `- ${describeUpload(u)}`).join('\n')
    )
  }
  for (const upload of outcome.gone) logger.debug(`Already ended: ${describeUpload(upload)}`)
}
