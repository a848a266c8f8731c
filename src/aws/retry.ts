import type { Sleep } from '../common/types.js'

export const sleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export interface BackoffOptions {
  /** Attempts in all, including the first. */
  attempts: number
  baseMs: number
  capMs: number
  sleep: Sleep
  /** Returns a number in [0, 1); injectable so tests are deterministic. */
  random?: () => number
  /** Called before each wait, to log what is retried. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void
}

/** "Equal jitter" backoff: half of min(cap, base * 2^attempt) plus a random share of the other half. */
export function backoffDelay(
  attempt: number,
  opts: Pick<BackoffOptions, 'baseMs' | 'capMs' | 'random'>
): number {
  const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** attempt)
  return Math.round(ceiling / 2 + (opts.random ?? Math.random)() * (ceiling / 2))
}

/** Runs `fn`, retrying the errors `isRetryable` accepts with capped, jittered backoff. */
export async function retryWithBackoff<T>(
  fn: (attempt: number) => Promise<T>,
  isRetryable: (err: unknown) => boolean,
  opts: BackoffOptions
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (attempt + 1 >= opts.attempts || !isRetryable(err)) throw err
      const delay = backoffDelay(attempt, opts)
      opts.onRetry?.(err, attempt + 1, delay)
      await opts.sleep(delay)
    }
  }
}
