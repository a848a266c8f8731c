import { mapLimit, mapLimitUntilFailure } from './concurrency.js'

const tick = () => new Promise((resolve) => setTimeout(resolve, 1))

describe('mapLimit', () => {
  it('keeps the input order with at most `limit` at once', async () => {
    let inFlight = 0
    let most = 0
    const out = await mapLimit([5, 1, 3, 2], 2, async (n, i) => {
      most = Math.max(most, ++inFlight)
      await new Promise((resolve) => setTimeout(resolve, n))
      inFlight--
      return `${i}:${n}`
    })
    expect(out).toEqual(['0:5', '1:1', '2:3', '3:2'])
    expect(most).toBe(2)
  })
})

describe('mapLimitUntilFailure', () => {
  it('aborts the signal of the work in flight at the first failure and starts nothing after it', async () => {
    const failure = new Error('first')
    const started: number[] = []
    const reasons: unknown[] = []
    const work = mapLimitUntilFailure([0, 1, 2, 3], 2, undefined, async (n, signal) => {
      started.push(n)
      if (n === 0) throw failure
      await tick()
      reasons.push(signal.reason)
      return n
    })
    await expect(work).rejects.toBe(failure)
    await tick()
    await tick()
    expect(started).toEqual([0, 1])
    expect(reasons).toEqual([failure])
  })

  it('passes the caller’s cancellation on, and starts nothing once cancelled', async () => {
    const controller = new AbortController()
    const started: number[] = []
    const work = mapLimitUntilFailure([0, 1, 2], 1, controller.signal, async (n, signal) => {
      started.push(n)
      controller.abort(new Error('cancelled'))
      signal.throwIfAborted()
      return n
    })
    await expect(work).rejects.toThrow('cancelled')
    expect(started).toEqual([0])
  })
})
