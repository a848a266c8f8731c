import { jest } from '@jest/globals'
import { backoffDelay, retryWithBackoff } from './retry.js'

describe('retryWithBackoff', () => {
  it('retries retryable errors with growing, capped delays and then succeeds', async () => {
    const waits: number[] = []
    let calls = 0
    const result = await retryWithBackoff(
      async () => {
        calls++
        if (calls < 4) throw new Error('busy')
        return 'done'
      },
      () => true,
      {
        attempts: 5,
        baseMs: 100,
        capMs: 300,
        random: () => 0.999,
        sleep: async (ms) => void waits.push(ms)
      }
    )
    expect(result).toBe('done')
    expect(calls).toBe(4)
    expect(waits).toEqual([100, 200, 300])
  })

  it('rethrows at once an error that is not retryable', async () => {
    const sleep = jest.fn(async () => undefined)
    await expect(
      retryWithBackoff(
        async () => Promise.reject(new Error('fatal')),
        () => false,
        {
          attempts: 5,
          baseMs: 1,
          capMs: 1,
          sleep
        }
      )
    ).rejects.toThrow('fatal')
    expect(sleep).not.toHaveBeenCalled()
  })

  it('gives up after the configured attempts with the last error', async () => {
    let calls = 0
    await expect(
      retryWithBackoff(
        async () => {
          calls++
          throw new Error(`attempt ${calls}`)
        },
        () => true,
        { attempts: 3, baseMs: 1, capMs: 1, sleep: async () => undefined }
      )
    ).rejects.toThrow('attempt 3')
    expect(calls).toBe(3)
  })

  it('jitters within [ceiling/2, ceiling]', () => {
    expect(backoffDelay(3, { baseMs: 1000, capMs: 60000, random: () => 0 })).toBe(4000)
    expect(backoffDelay(3, { baseMs: 1000, capMs: 60000, random: () => 0.5 })).toBe(6000)
    expect(backoffDelay(10, { baseMs: 1000, capMs: 60000, random: () => 0 })).toBe(30000)
  })
})
