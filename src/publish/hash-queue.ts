import type { FileHashes } from './hash.js'

interface Pending {
  promise: Promise<FileHashes>
  resolve(hashes: FileHashes): void
  reject(reason: unknown): void
}

export interface HashQueueLimits {
  /** Files hashed at once. */
  workers: number
  /**
   * Bytes of files hashed (or being hashed) for the uploads and not taken by them yet; past it,
   * no more are started until the uploads take one. At least one such file is always allowed.
   */
  aheadBytes: number
}

/**
 * Hashes files `workers` at a time, in their order, except that the ones a decision waits for
 * (`first`) jump ahead of those not started yet. Every file's result is a promise from the start,
 * so the planner awaits only the hashes it needs (`of`) and the uploader the rest (`take`), each
 * just before that file is sent. The others are hashed only `aheadBytes` ahead of the uploads:
 * each file is read twice (hash, then send), and the second read must still find it in the page
 * cache when the model is larger than the runner's memory.
 *
 * Aborting the signal, or `stop`, ends the hashing: files not started reject with the reason,
 * running ones as `hash` does on the signal. A result nobody awaits (the run failed first) is
 * never reported as an unhandled rejection.
 */
export class HashQueue {
  /** Aborted by `stop` or by the signal given. */
  private readonly signal: AbortSignal
  private readonly stopper = new AbortController()
  private readonly pending: Pending[]
  private waiting: number[]
  private running = 0
  /** Files a decision waits for, outside the lookahead. */
  private readonly wanted = new Set<number>()
  private readonly taken = new Set<number>()
  /** Started files counted in `ahead`: not wanted, not taken yet. */
  private readonly counted = new Set<number>()
  private ahead = 0

  constructor(
    private readonly sizes: readonly number[],
    private readonly limits: HashQueueLimits,
    private readonly hash: (index: number, signal: AbortSignal) => Promise<FileHashes>,
    signal?: AbortSignal
  ) {
    this.signal = signal ? AbortSignal.any([signal, this.stopper.signal]) : this.stopper.signal
    this.pending = sizes.map(pendingHashes)
    this.waiting = this.pending.map((_, index) => index)
    if (this.signal.aborted) this.rejectWaiting()
    else this.signal.addEventListener('abort', () => this.rejectWaiting(), { once: true })
    this.startMore()
  }

  /** File `index`'s hashes, for a decision (see `first`). */
  of(index: number): Promise<FileHashes> {
    return this.pending[index].promise
  }

  /** File `index`'s hashes, for its upload, which is about to start: the lookahead moves on. */
  take(index: number): Promise<FileHashes> {
    if (!this.taken.has(index)) {
      this.taken.add(index)
      if (this.counted.delete(index)) this.ahead -= this.sizes[index]
      this.moveAhead([index])
    }
    return this.pending[index].promise
  }

  /** Hashes these files (in file order) before any other not started yet, whatever the lookahead. */
  first(indices: Iterable<number>): void {
    for (const index of indices) this.wanted.add(index)
    this.moveAhead(this.wanted)
  }

  stop(reason: unknown): void {
    this.stopper.abort(reason)
  }

  private moveAhead(indices: ReadonlySet<number> | number[]): void {
    const ahead = new Set(indices)
    this.waiting = [
      ...this.waiting.filter((index) => ahead.has(index)),
      ...this.waiting.filter((index) => !ahead.has(index))
    ]
    this.startMore()
  }

  private startMore(): void {
    while (this.running < this.limits.workers && this.waiting.length > 0 && !this.signal.aborted) {
      const index = this.waiting[0]
      const lookahead = !this.wanted.has(index) && !this.taken.has(index)
      // Wanted and taken files are at the front: once one must wait, all the rest do.
      if (lookahead && this.ahead >= this.limits.aheadBytes) return
      this.waiting.shift()
      if (lookahead) {
        this.counted.add(index)
        this.ahead += this.sizes[index]
      }
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
