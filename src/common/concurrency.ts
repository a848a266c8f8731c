/** Runs `fn` over `items` with at most `limit` at once, keeping the input order in the result. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await fn(items[index], index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/** Aborts when any of the signals given does; undefined when none is. */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined)
  return present.length > 1 ? AbortSignal.any(present) : present[0]
}

/**
 * mapLimit for work that should stop at the first failure: `fn` gets a signal that aborts then
 * (or when `signal` does), so requests in flight end and no item starts after it.
 */
export async function mapLimitUntilFailure<T, R>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  fn: (item: T, signal: AbortSignal) => Promise<R>
): Promise<R[]> {
  const failed = new AbortController()
  const stop = anySignal(signal, failed.signal) ?? failed.signal
  return mapLimit(items, limit, async (item) => {
    stop.throwIfAborted()
    return fn(item, stop).catch((err: unknown) => {
      failed.abort(err)
      throw err
    })
  })
}
