import type { EventEmitter } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import type { S3Client } from '@aws-sdk/client-s3'
import { DeployError } from '../common/errors.js'
import {
  abortFailureWarning,
  abortMultipartUploads,
  type MultipartTracker
} from '../aws/multipart-tracker.js'
import type { Logger, Sleep } from '../common/types.js'

/**
 * A runner cancels a step with SIGINT, then SIGTERM 7.5 s later, then kills it 2.5 s after that.
 * Either signal may come first (a runner shutting down sends SIGTERM alone).
 */
const SIGNALS = ['SIGINT', 'SIGTERM'] as const
/** Within the 2.5 s between the runner's SIGTERM and its kill. */
export const FORCED_ABORT_TIMEOUT_MS = 2000

export interface CancelOnSignalsOptions {
  logger: Logger
  s3: S3Client
  /** The multipart uploads to abort at once on a second signal. */
  uploads: MultipartTracker
  /** Fails the step with this message and ends the process (it must not return to work). */
  exit: (message: string) => void
  /** Where the signals come from: the process, or a stand-in in tests. */
  emitter?: Pick<EventEmitter, 'on' | 'off'>
  forcedAbortTimeoutMs?: number
}

export interface Cancellation {
  /** Aborted on the first signal, with a DeployError naming it as the reason. */
  signal: AbortSignal
  /** Waits that end at once, rejecting with the reason, when the run is cancelled. */
  sleep: Sleep
  /** Stops listening, so signals after the run get Node's default handling. */
  dispose(): void
}

/**
 * First SIGINT/SIGTERM: aborts `signal`, which stops the deploy in order (uploads in flight
 * settle, their multipart uploads are aborted, nothing later starts) and lets it fail.
 * Second: no time is left for that, so every upload still open is aborted directly, in
 * parallel and within a short timeout, and the process exits failed.
 */
export function cancelOnSignals(opts: CancelOnSignalsOptions): Cancellation {
  const emitter = opts.emitter ?? process
  const controller = new AbortController()
  const signal = controller.signal
  let first: NodeJS.Signals | undefined
  let forced = false
  let disposed = false

  const onSignal = (name: NodeJS.Signals): void => {
    if (!first) {
      first = name
      opts.logger.warning(
        `Received ${name}: the workflow run was cancelled. Stopping the deploy: no new file ` +
          'starts, transfers in flight are cancelled and their multipart uploads aborted.'
      )
      controller.abort(new DeployError(`The workflow run was cancelled (${name}).`))
      return
    }
    if (forced) return
    forced = true
    void abortAndExit(name)
  }

  const abortAndExit = async (second: NodeJS.Signals): Promise<void> => {
    const open = opts.uploads.open()
    opts.logger.warning(
      `Received ${second} after ${first}: aborting the ${open.length} multipart upload(s) still ` +
        'open and exiting now.'
    )
    const outcome = await abortMultipartUploads(opts.s3, open, {
      timeoutMs: opts.forcedAbortTimeoutMs ?? FORCED_ABORT_TIMEOUT_MS
    })
    for (const failure of outcome.failed) opts.logger.warning(abortFailureWarning(failure))
    // The orderly stop may have ended the run meanwhile, and reported it already.
    if (disposed) return
    opts.exit(
      `The workflow run was cancelled (${first}, then ${second}) and the deploy stopped at once: ` +
        `${outcome.aborted.length + outcome.gone.length} of ${open.length} open multipart ` +
        `upload(s) aborted${outcome.failed.length ? '; the post step retries the others' : ''}.`
    )
  }

  for (const name of SIGNALS) emitter.on(name, onSignal)
  return {
    signal,
    sleep: (ms) =>
      delay(ms, undefined, { signal }).catch((err: unknown) => {
        throw signal.aborted ? signal.reason : err
      }),
    dispose: () => {
      disposed = true
      for (const name of SIGNALS) emitter.off(name, onSignal)
    }
  }
}
