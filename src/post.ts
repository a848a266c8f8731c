import * as core from '@actions/core'
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3'
import { createClients } from './clients.js'
import { State } from './constants.js'
import { explainAwsError, failureMessage } from './errors.js'
import {
  abortFailureWarning,
  abortMultipartUploads,
  describeUpload,
  LIFECYCLE_ADVICE,
  trackMultipartUploads,
  type MultipartTracker,
  type MultipartUpload
} from './multipart-tracker.js'
import { maskCredentials } from './secrets.js'
import type { DeployInputs, Logger } from './types.js'

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
    succeeded: getState(State.Succeeded) === 'true'
  }
}

/**
 * The post step (`post-if: always()`): after a failed, cancelled or killed main step, aborts
 * every multipart upload this run left open. It never fails the job: what it cannot abort, it
 * warns about.
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
    const { s3 } = createClients(
      { region: state.region, endpointUrl: state.endpointUrl, concurrency: 1 },
      process.env,
      { logger }
    )
    try {
      await abortLeftovers(s3, state, logger)
    } finally {
      s3.destroy()
    }
  } catch (err) {
    logger.warning(
      `Could not clean up after the deploy: ${failureMessage(err)} ${LIFECYCLE_ADVICE}`
    )
  }
}

/** Aborts the uploads recorded and, as a second net, those under the prefix since the start. */
async function abortLeftovers(s3: S3Client, state: CleanupState, logger: Logger): Promise<void> {
  const prefix = `${state.versionPrefix}/`
  const where = `s3://${state.bucket}/${prefix}`
  const candidates = new Map(state.uploads.map((u) => [u.UploadId, u]))
  try {
    for (const upload of await listUploadsSince(s3, state.bucket, prefix, state.startedAt)) {
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

/**
 * The multipart uploads under the prefix initiated since `since`, all pages. S3 reports
 * `Initiated` to the second, so the comparison is too.
 */
async function listUploadsSince(
  s3: S3Client,
  bucket: string,
  prefix: string,
  since: Date
): Promise<MultipartUpload[]> {
  const from = Math.floor(since.getTime() / 1000) * 1000
  const found: MultipartUpload[] = []
  let KeyMarker: string | undefined
  let UploadIdMarker: string | undefined
  do {
    const page = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, UploadIdMarker })
    )
    for (const { Key, UploadId, Initiated } of page.Uploads ?? []) {
      // The prefix again: an S3-compatible store may ignore it.
      if (Key?.startsWith(prefix) && UploadId && Initiated && Initiated.getTime() >= from) {
        found.push({ Bucket: bucket, Key, UploadId })
      }
    }
    KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined
    UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined
  } while (KeyMarker)
  return found
}
