import type { Logger } from './types.js'

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** Binary units, one decimal: `0 B`, `512 B`, `1.5 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  let value = n / 1024
  let unit = 0
  // 1023.95 and up would print as "1024.0", so move to the next unit instead.
  while (value >= 1023.95 && unit < BYTE_UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${BYTE_UNITS[unit]}`
}

export interface ProgressSnapshot {
  /** What is done to the bytes: `Uploaded` (default) or `Copied` (server-side, by S3). */
  verb?: 'Uploaded' | 'Copied'
  sentBytes: number
  totalBytes: number
  elapsedMs: number
  filesDone: number
  totalFiles: number
}

/** E.g. `Uploaded 1.2 GiB of 4.0 GiB (30%), 3 of 10 files, 85.3 MB/s, ETA 33s`. */
export function formatProgress(s: ProgressSnapshot): string {
  // Rounded down, so 100% means done.
  const percent =
    s.totalBytes > 0 ? Math.min(100, Math.floor((s.sentBytes / s.totalBytes) * 100)) : 100
  // The average since the start: steadier than the last interval's rate, so the ETA jumps less.
  const bytesPerSecond = s.elapsedMs > 0 ? (s.sentBytes * 1000) / s.elapsedMs : 0
  const eta =
    bytesPerSecond > 0
      ? formatEta(Math.max(0, s.totalBytes - s.sentBytes) / bytesPerSecond)
      : 'unknown'
  return (
    `${s.verb ?? 'Uploaded'} ${formatBytes(s.sentBytes)} of ${formatBytes(s.totalBytes)} (${percent}%), ` +
    `${s.filesDone} of ${s.totalFiles} files, ${(bytesPerSecond / 1e6).toFixed(1)} MB/s, ETA ${eta}`
  )
}

/** `33s`, `2m 05s`, `1h 02m`. */
function formatEta(seconds: number): string {
  const s = Math.ceil(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`
  return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`
}

function pad(n: number): string {
  return String(n).padStart(2, '0')
}

/** Time sources, injectable so tests drive the ticks and the clock. */
/**
 * Where a terminal shows transfer progress (a bar, updated often), given as the logger's
 * `progress`; without one, a line is logged every 10 seconds.
 */
export interface ProgressView {
  intervalMs: number
  update(snapshot: ProgressSnapshot): void
  /** The transfers of this reporter are over: the view may be taken down. */
  end(): void
}

export interface ProgressClock {
  now?: () => number
  setInterval?(tick: () => void, ms: number): unknown
  clearInterval?(handle: unknown): void
}

export interface ProgressReporterOptions extends ProgressClock {
  verb?: ProgressSnapshot['verb']
  totalBytes: number
  totalFiles: number
  logger: Logger
  intervalMs?: number
}

export interface ProgressReporter {
  /**
   * The first file is about to be sent: the rate and ETA count from here, not from the time spent
   * waiting for its hash. Later calls change nothing; without one they count from creation.
   */
  begin(): void
  addBytes(n: number): void
  fileDone(): void
  stop(): void
}

/**
 * Logs one progress line per interval, not per event: a multi-GB upload emits thousands of
 * events, and a log line per part buries everything else. Silent when nothing changed since the
 * last line, so a transfer that ends before the first tick prints none.
 */
export function createProgressReporter({
  verb,
  totalBytes,
  totalFiles,
  logger,
  intervalMs = 10_000,
  now = Date.now,
  setInterval = globalThis.setInterval,
  clearInterval = globalThis.clearInterval
}: ProgressReporterOptions): ProgressReporter {
  let started = now()
  let begun = false
  let sentBytes = 0
  let filesDone = 0
  let logged = { sentBytes, filesDone }
  const view = logger.progress
  const snapshot = (): ProgressSnapshot => {
    const elapsedMs = now() - started
    return { ...(verb ? { verb } : {}), sentBytes, totalBytes, elapsedMs, filesDone, totalFiles }
  }
  const handle = setInterval(() => {
    if (sentBytes === logged.sentBytes && filesDone === logged.filesDone) return
    logged = { sentBytes, filesDone }
    if (view) view.update(snapshot())
    else logger.info(formatProgress(snapshot()))
  }, view?.intervalMs ?? intervalMs)
  return {
    begin: () => {
      if (!begun) started = now()
      begun = true
    },
    addBytes: (n) => {
      sentBytes += n
    },
    fileDone: () => {
      filesDone++
    },
    stop: () => {
      clearInterval(handle)
      // Nothing was to be sent (every file skipped or copied): no bar to show or take down.
      if (!view || totalFiles === 0) return
      view.update(snapshot())
      view.end()
    }
  }
}
