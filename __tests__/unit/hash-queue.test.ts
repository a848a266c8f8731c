import { HashQueue } from '../../src/hash-queue.js'
import type { FileHashes } from '../../src/hash.js'

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

describe('HashQueue', () => {
  it('hashes at most `limit` files at once, in order, each result its own file', async () => {
    const { started, release, hash } = heldHashes()
    const queue = new HashQueue(5, 2, hash)
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
    const queue = new HashQueue(6, 1, hash)
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
      const queue = new HashQueue(3, 1, hash)
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
    const queue = new HashQueue(2, 2, hash, AbortSignal.abort(new Error('cancelled')))
    await expect(queue.of(1)).rejects.toThrow('cancelled')
    expect(started).toEqual([])
  })
})
