import { jest } from '@jest/globals'
import { GiB, MiB } from './constants.js'
import {
  createProgressReporter,
  formatBytes,
  formatProgress,
  type ProgressSnapshot
} from './progress.js'

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1, '1 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [MiB - 1, '1.0 MiB'],
    [12 * MiB, '12.0 MiB'],
    [1.5 * GiB, '1.5 GiB'],
    [5 * 1024 * GiB, '5.0 TiB']
  ])('%d bytes → %s', (n, text) => {
    expect(formatBytes(n)).toBe(text)
  })
})

describe('formatProgress', () => {
  it('reports bytes, percent, files, average rate and ETA', () => {
    const line = formatProgress({
      sentBytes: 1.2 * GiB,
      totalBytes: 4 * GiB,
      elapsedMs: 15_100,
      filesDone: 3,
      totalFiles: 10
    })
    // 1,288,490,188.8 B in 15.1 s = 85.33 MB/s; 2.8 GiB left at that rate = 35.2 s.
    expect(line).toBe('Uploaded 1.2 GiB of 4.0 GiB (30%), 3 of 10 files, 85.3 MB/s, ETA 36s')
  })

  it('rounds the percentage down so that 100% means done', () => {
    const line = formatProgress({
      sentBytes: 999,
      totalBytes: 1000,
      elapsedMs: 1000,
      filesDone: 0,
      totalFiles: 1
    })
    expect(line).toBe('Uploaded 999 B of 1000 B (99%), 0 of 1 files, 0.0 MB/s, ETA 1s')
  })

  it('writes long ETAs in minutes and hours', () => {
    const at = (sentBytes: number) =>
      formatProgress({ sentBytes, totalBytes: 100e6, elapsedMs: 1000, filesDone: 0, totalFiles: 1 })
    expect(at(1e6)).toBe('Uploaded 976.6 KiB of 95.4 MiB (1%), 0 of 1 files, 1.0 MB/s, ETA 1m 39s')
    expect(at(20_000)).toBe(
      'Uploaded 19.5 KiB of 95.4 MiB (0%), 0 of 1 files, 0.0 MB/s, ETA 1h 23m'
    )
  })

  it('has no ETA before any byte or any time has passed', () => {
    const base = { totalBytes: GiB, filesDone: 0, totalFiles: 2 }
    expect(formatProgress({ ...base, sentBytes: 0, elapsedMs: 5000 })).toBe(
      'Uploaded 0 B of 1.0 GiB (0%), 0 of 2 files, 0.0 MB/s, ETA unknown'
    )
    expect(formatProgress({ ...base, sentBytes: MiB, elapsedMs: 0 })).toMatch(/ETA unknown$/)
  })

  it('treats an empty total as complete', () => {
    expect(
      formatProgress({ sentBytes: 0, totalBytes: 0, elapsedMs: 10, filesDone: 1, totalFiles: 1 })
    ).toBe('Uploaded 0 B of 0 B (100%), 1 of 1 files, 0.0 MB/s, ETA unknown')
  })
})

describe('createProgressReporter', () => {
  /** A reporter on a hand-driven clock and timer. */
  function setup(intervalMs?: number) {
    let time = 50_000
    let tick: (() => void) | undefined
    const handle = { id: 'timer' }
    const setInterval = jest.fn((fn: () => void) => {
      tick = fn
      return handle
    })
    const clearInterval = jest.fn()
    const info = jest.fn<(message: string) => void>()
    const reporter = createProgressReporter({
      totalBytes: 100 * MiB,
      totalFiles: 4,
      logger: { info, warning: jest.fn(), debug: jest.fn() },
      intervalMs,
      now: () => time,
      setInterval,
      clearInterval
    })
    return {
      reporter,
      info,
      setInterval,
      clearInterval,
      handle,
      advance: (ms: number) => {
        time += ms
        tick?.()
      }
    }
  }

  it('logs on each tick with the totals so far, measured from creation', () => {
    const { reporter, info, setInterval, advance } = setup()
    expect(setInterval).toHaveBeenCalledWith(expect.any(Function), 10_000)
    reporter.addBytes(30 * MiB)
    reporter.addBytes(10 * MiB)
    reporter.fileDone()
    advance(10_000)
    reporter.addBytes(20 * MiB)
    advance(10_000)
    expect(info.mock.calls.map(([line]) => line)).toEqual([
      'Uploaded 40.0 MiB of 100.0 MiB (40%), 1 of 4 files, 4.2 MB/s, ETA 15s',
      'Uploaded 60.0 MiB of 100.0 MiB (60%), 1 of 4 files, 3.1 MB/s, ETA 14s'
    ])
  })

  it('measures the rate from the first send, not from the wait for the first hash', () => {
    const { reporter, info, advance } = setup()
    advance(10_000)
    reporter.begin()
    reporter.addBytes(40 * MiB)
    advance(10_000)
    // Starting a later file changes nothing.
    reporter.begin()
    reporter.addBytes(40 * MiB)
    advance(10_000)
    expect(info.mock.calls.map(([line]) => line)).toEqual([
      'Uploaded 40.0 MiB of 100.0 MiB (40%), 0 of 4 files, 4.2 MB/s, ETA 15s',
      'Uploaded 80.0 MiB of 100.0 MiB (80%), 0 of 4 files, 4.2 MB/s, ETA 5s'
    ])
  })

  it('stays silent on ticks where nothing changed', () => {
    const { reporter, info, advance } = setup()
    advance(10_000)
    expect(info).not.toHaveBeenCalled()
    reporter.addBytes(MiB)
    advance(10_000)
    advance(10_000)
    expect(info).toHaveBeenCalledTimes(1)
    reporter.fileDone()
    advance(10_000)
    expect(info).toHaveBeenCalledTimes(2)
    expect(info).toHaveBeenLastCalledWith(expect.stringContaining('1 of 4 files'))
  })

  it('logs nothing for an upload that finishes before the first tick, and stops its timer', () => {
    const { reporter, info, clearInterval, handle } = setup(2000)
    reporter.addBytes(100 * MiB)
    reporter.fileDone()
    reporter.stop()
    expect(info).not.toHaveBeenCalled()
    expect(clearInterval).toHaveBeenCalledWith(handle)
  })

  it('uses the given interval', () => {
    const { setInterval } = setup(2000)
    expect(setInterval).toHaveBeenCalledWith(expect.any(Function), 2000)
  })

  it("feeds a terminal's progress view instead of logging lines, at its interval, and ends it", () => {
    let tick: (() => void) | undefined
    const updates: ProgressSnapshot[] = []
    const end = jest.fn()
    const info = jest.fn<(message: string) => void>()
    const setInterval = jest.fn((fn: () => void) => {
      tick = fn
      return 'timer'
    })
    const reporter = createProgressReporter({
      totalBytes: 10 * MiB,
      totalFiles: 2,
      logger: {
        info,
        warning: jest.fn(),
        debug: jest.fn(),
        progress: { intervalMs: 250, update: (s) => void updates.push(s), end }
      },
      now: () => 0,
      setInterval,
      clearInterval: jest.fn()
    })
    expect(setInterval).toHaveBeenCalledWith(expect.any(Function), 250)
    reporter.addBytes(4 * MiB)
    tick?.()
    reporter.addBytes(6 * MiB)
    reporter.fileDone()
    reporter.fileDone()
    reporter.stop()
    expect(updates.map((u) => [u.sentBytes, u.filesDone])).toEqual([
      [4 * MiB, 0],
      [10 * MiB, 2]
    ])
    expect(end).toHaveBeenCalledTimes(1)
    expect(info).not.toHaveBeenCalled()
  })

  it('shows no view when nothing is to be sent', () => {
    const update = jest.fn()
    const end = jest.fn()
    const reporter = createProgressReporter({
      totalBytes: 0,
      totalFiles: 0,
      logger: {
        info: jest.fn(),
        warning: jest.fn(),
        debug: jest.fn(),
        progress: { intervalMs: 250, update, end }
      }
    })
    reporter.stop()
    expect(update).not.toHaveBeenCalled()
    expect(end).not.toHaveBeenCalled()
  })
})
