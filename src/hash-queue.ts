import type { FileHashes } from './hash.js'

interface Pending {
  promise: Promise<FileHashes>
  resolve(hashes: FileHashes): void
  reject(reason: unknown): void
}

/**
 * Hashes files `limit` at a time, in their order, except that the ones a decision waits for
 * (`first`) jump ahead of those not started yet. Every file's result is a promise from the start,
 * so the planner awaits only the hashes it needs and the uploader the rest, each just before that
 * file is sent. Aborting the signal, or `stop`, ends the hashing: files not started reject with
 * the reason, running ones as `hash` does on the signal. A result nobody awaits (the run failed
 * first) is never reported as an unhandled rejection.
 */
export class HashQueue {
  /** Aborted by `stop` or by the signal given. */
  private readonly signal: AbortSignal
  private readonly stopper = new AbortController()
  private readonly pending: Pending[]
  private waiting: number[]
  private running = 0

  constructor(
    count: number,
    private readonly limit: number,
    private readonly hash: (index: number, signal: AbortSignal) => Promise<FileHashes>,
    signal?: AbortSignal
  ) {
    this.signal = signal ? AbortSignal.any([signal, this.stopper.signal]) : this.stopper.signal
    this.pending = Array.from({ length: count }, pendingHashes)
    this.waiting = this.pending.map((_, index) => index)
    if (this.signal.aborted) this.rejectWaiting()
    else this.signal.addEventListener('abort', () => this.rejectWaiting(), { once: true })
    this.startMore()
  }

  /** File `index`'s hashes. */
  of(index: number): Promise<FileHashes> {
    return this.pending[index].promise
  }

  /** Hashes these files (in file order) before any other not started yet. */
  first(indices: Iterable<number>): void {
    const wanted = new Set(indices)
    this.waiting = [
      ...this.waiting.filter((index) => wanted.has(index)),
      ...this.waiting.filter((index) => !wanted.has(index))
    ]
  }

  stop(reason: unknown): void {
    this.stopper.abort(reason)
  }

  private startMore(): void {
    while (this.running < this.limit && this.waiting.length > 0 && !this.signal.aborted) {
      const index = this.waiting.shift()!
      this.running++
      this.hash(index, this.signal)
        .then(this.pending[index].resolve, this.pending[index].reject)
        .finally(() => {
          this.running--
          this.startMore()
        })
    }
  }

  private rejectWaiting(): void {
    for (const index of this.waiting) this.pending[index].reject(this.signal.reason)
    this.waiting = []
  }
}

function pendingHashes(): Pending {
  let resolve!: Pending['resolve']
  let reject!: Pending['reject']
  const promise = new Promise<FileHashes>((res, rej) => {
    resolve = res
    reject = rej
  })
  // Handled here so a result nobody awaits is not an unhandled rejection; awaiting still throws.
  promise.catch(() => undefined)
  return { promise, resolve, reject }
}
