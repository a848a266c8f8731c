import { HashQueue } from './hash-queue.js'
import type { FileHashes } from './hash.js'

/** A hash per file that ends when released (or rejects when its signal aborts). */
function heldHashes() {
  const started: number[] = []
  const release = new Map<number, () => void>()
  const hash = (index: number, signal: AbortSignal) =>
    new Promise<FileHashes>((resolve, reject) => {
      started.push(index)
      release.set(index, () => resolve({ sha256: `sha-${index}`, partCrc32: [] }))
      signal.addEventListener('abort', () => reject(signal.reason), { once: true })
    })
  return { started, release, hash }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

/** `count` files of one byte, hashed `workers` at a time with no lookahead limit. */
const unbounded = (count: number, workers: number) =>
  [Array<number>(count).fill(1), { workers, aheadBytes: Infinity }] as const

describe('HashQueue', () => {
  it('hashes at most `limit` files at once, in order, each result its own file', async () => {
    const { started, release, hash } = heldHashes()
    const queue = new HashQueue(...unbounded(5, 2), hash)
    expect(started).toEqual([0, 1])
    release.get(1)!()
    await tick()
    expect(started).toEqual([0, 1, 2])
    release.get(0)!()
    release.get(2)!()
    await tick()
    expect(started).toEqual([0, 1, 2, 3, 4])
    release.get(3)!()
    release.get(4)!()
    const results = await Promise.all([0, 1, 2, 3, 4].map((i) => queue.of(i)))
    expect(results.map((r) => r.sha256)).toEqual(['sha-0', 'sha-1', 'sha-2', 'sha-3', 'sha-4'])
  })

  it('starts the files asked for first before the others not started yet', async () => {
    const { started, release, hash } = heldHashes()
    const queue = new HashQueue(...unbounded(6, 1), hash)
    queue.first([5, 3])
    release.get(0)!()
    await tick()
    release.get(3)!()
    await tick()
    release.get(5)!()
    await tick()
    // In file order among themselves, as the uploads will want them.
    expect(started).toEqual([0, 3, 5, 1])
    await expect(queue.of(3)).resolves.toEqual({ sha256: 'sha-3', partCrc32: [] })
  })

  it('rejects running and waiting files when stopped, and starts no more', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const { started, hash } = heldHashes()
      const queue = new HashQueue(...unbounded(3, 1), hash)
      const reason = new Error('upload failed')
      queue.stop(reason)
      await expect(queue.of(0)).rejects.toBe(reason)
      await expect(queue.of(2)).rejects.toBe(reason)
      // Nobody awaits file 1's result: that must not be an unhandled rejection.
      await new Promise((resolve) => setTimeout(resolve, 10))
      expect(started).toEqual([0])
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('starts nothing when its signal is already aborted', async () => {
    const { started, hash } = heldHashes()
    const queue = new HashQueue(...unbounded(2, 2), hash, AbortSignal.abort(new Error('cancelled')))
    await expect(queue.of(1)).rejects.toThrow('cancelled')
    expect(started).toEqual([])
  })

  it('hashes for the uploads only `aheadBytes` ahead of those they have taken', async () => {
    const { started, release, hash } = heldHashes()
    const queue = new HashQueue([600, 600, 100, 300, 50], { workers: 2, aheadBytes: 1000 }, hash)
    // 600 ahead, under the limit: the next starts too, and then 1200 is past it.
    expect(started).toEqual([0, 1])
    release.get(0)!()
    release.get(1)!()
    await tick()
    // Finished hashes still count until their upload takes them: no worker is kept busy.
    expect(started).toEqual([0, 1])
    await expect(queue.take(0)).resolves.toEqual({ sha256: 'sha-0', partCrc32: [] })
    await tick()
    // 600 + 100 ahead, and 300 more starts while that is under 1000.
    expect(started).toEqual([0, 1, 2, 3])
    queue.take(1)
    await tick()
    expect(started).toEqual([0, 1, 2, 3])
    release.get(2)!()
    await tick()
    expect(started).toEqual([0, 1, 2, 3, 4])
  })

  it('always lets one file ahead, however large', async () => {
    const { started, release, hash } = heldHashes()
    const queue = new HashQueue([5000, 5000, 5000], { workers: 2, aheadBytes: 1000 }, hash)
    expect(started).toEqual([0])
    queue.take(0)
    await tick()
    expect(started).toEqual([0, 1])
    // Taking a file twice (the manifest reads every hash again) moves nothing on.
    queue.take(0)
    release.get(0)!()
    await tick()
    expect(started).toEqual([0, 1])
    queue.take(1)
    await tick()
    expect(started).toEqual([0, 1, 2])
  })

  it('starts files a decision waits for, or an upload takes, past the lookahead', async () => {
    const { started, hash } = heldHashes()
    const queue = new HashQueue([5000, 1, 1, 1, 1], { workers: 3, aheadBytes: 1000 }, hash)
    expect(started).toEqual([0])
    queue.first([3])
    expect(started).toEqual([0, 3])
    queue.take(2)
    expect(started).toEqual([0, 3, 2])
    // Neither counted in the lookahead, which file 0 alone fills.
    await expect(Promise.race([queue.of(1), tick().then(() => 'not started')])).resolves.toBe(
      'not started'
    )
    expect(started).toEqual([0, 3, 2])
  })
})
