import type { FileHashes } from './hash.js'

interface Waiter {
  promise: Promise<FileHashes>
  resolve(hashes: FileHashes): void
  reject(reason: unknown): void
}

/** Per-file flags (one byte each, so 100,000 files cost 100 KB, not a Set entry or a promise). */
const STARTED = 1
const DONE = 2
const FAILED = 4
/** A decision waits for it. */
const WANTED = 8
/** Its upload asked for it. */
const TAKEN = 16
/** Started for the uploads (neither wanted nor taken then): counted in `ahead` until taken. */
const COUNTED = 32

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
 * (`first`) jump ahead of those not started yet. The planner awaits only the hashes it needs
 * (`of`) and the uploader the rest (`take`), each just before that file is sent. What a file costs
 * here is a byte of flags and its hashes once read: a promise is made only for a file awaited
 * before its hash is read, so tens of thousands of small files hold no promise each. The others are hashed only `aheadBytes` ahead of the uploads:
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
  private readonly flags: Uint8Array
  /** Each file's hashes once read: kept, since the manifest reads every one again. */
  private readonly results: (FileHashes | undefined)[]
  /** Why a started file's hash failed. */
  private readonly failures = new Map<number, unknown>()
  /** Promises only for the files someone awaits before their hash is read. */
  private readonly waiters = new Map<number, Waiter>()
  private waiting: number[]
  private running = 0
  private ahead = 0

  constructor(
    private readonly sizes: readonly number[],
    private readonly limits: HashQueueLimits,
    private readonly hash: (index: number, signal: AbortSignal) => Promise<FileHashes>,
    signal?: AbortSignal
  ) {
    this.signal = signal ? AbortSignal.any([signal, this.stopper.signal]) : this.stopper.signal
    this.flags = new Uint8Array(sizes.length)
    this.results = new Array<FileHashes | undefined>(sizes.length)
    this.waiting = [...sizes.keys()]
    if (this.signal.aborted) this.rejectWaiting()
    else this.signal.addEventListener('abort', () => this.rejectWaiting(), { once: true })
    this.startMore()
  }

  /** File `index`'s hashes, for a decision (see `first`). */
  of(index: number): Promise<FileHashes> {
    const flags = this.flags[index]
    if (flags & DONE) return Promise.resolve(this.results[index]!)
    if (flags & FAILED) return Promise.reject(this.failures.get(index))
    if (!(flags & STARTED) && this.signal.aborted) return Promise.reject(this.signal.reason)
    let waiter = this.waiters.get(index)
    if (!waiter) {
      waiter = newWaiter()
      this.waiters.set(index, waiter)
    }
    return waiter.promise
  }

  /** File `index`'s hashes, for its upload, which is about to start: the lookahead moves on. */
  take(index: number): Promise<FileHashes> {
    const flags = this.flags[index]
    if (!(flags & TAKEN)) {
      this.flags[index] |= TAKEN
      if (flags & COUNTED) this.ahead -= this.sizes[index]
      // A file already started needs no moving; one not started goes first.
      if (flags & STARTED) this.startMore()
      else this.moveAhead((i) => i === index)
    }
    return this.of(index)
  }

  /** Hashes these files (in file order) before any other not started yet, whatever the lookahead. */
  first(indices: Iterable<number>): void {
    for (const index of indices) this.flags[index] |= WANTED
    this.moveAhead((i) => (this.flags[i] & WANTED) !== 0)
  }

  stop(reason: unknown): void {
    this.stopper.abort(reason)
  }

  private moveAhead(ahead: (index: number) => boolean): void {
    this.waiting = [
      ...this.waiting.filter((index) => ahead(index)),
      ...this.waiting.filter((index) => !ahead(index))
    ]
    this.startMore()
  }

  private startMore(): void {
    while (this.running < this.limits.workers && this.waiting.length > 0 && !this.signal.aborted) {
      const index = this.waiting[0]
      const lookahead = (this.flags[index] & (WANTED | TAKEN)) === 0
      // Wanted and taken files are at the front: once one must wait, all the rest do.
      if (lookahead && this.ahead >= this.limits.aheadBytes) return
      this.waiting.shift()
      this.flags[index] |= STARTED
      if (lookahead) {
        this.flags[index] |= COUNTED
        this.ahead += this.sizes[index]
      }
      this.running++
      this.hash(index, this.signal)
        .then(
          (hashes) => this.settle(index, hashes),
          (err: unknown) => this.settle(index, undefined, err)
        )
        .finally(() => {
          this.running--
          this.startMore()
        })
    }
  }

  private settle(index: number, hashes: FileHashes | undefined, err?: unknown): void {
    if (hashes) {
      this.results[index] = hashes
      this.flags[index] |= DONE
    } else {
      this.failures.set(index, err)
      this.flags[index] |= FAILED
    }
    const waiter = this.waiters.get(index)
    if (!waiter) return
    this.waiters.delete(index)
    if (hashes) waiter.resolve(hashes)
    else waiter.reject(err)
  }

  private rejectWaiting(): void {
    for (const index of this.waiting) {
      this.waiters.get(index)?.reject(this.signal.reason)
      this.waiters.delete(index)
    }
    this.waiting = []
  }
}

function newWaiter(): Waiter {
  let resolve!: Waiter['resolve']
  let reject!: Waiter['reject']
  const promise = new Promise<FileHashes>((res, rej) => {
    resolve = res
    reject = rej
  })
  // Handled here so a result nobody awaits is not an unhandled rejection; awaiting still throws.
  promise.catch(() => undefined)
  return { promise, resolve, reject }
}
