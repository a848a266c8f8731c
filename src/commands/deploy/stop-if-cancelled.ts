import { DeployError } from '../../common/errors.js'

/** Ends the deploy between stages once it is cancelled, saying how far it got. */
export function stopIfCancelled(signal: AbortSignal | undefined, state: string): void {
  if (signal?.aborted)
    throw new DeployError(`Cancelled ${state}.`, undefined, { cause: signal.reason })
}
