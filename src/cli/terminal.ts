import cliProgress from 'cli-progress'
import { formatBytes, type ProgressSnapshot, type ProgressView } from '../common/progress.js'
import type { Logger } from '../common/types.js'

/** How often the bar is redrawn: often enough to look alive, rarely enough to cost nothing. */
const BAR_INTERVAL_MS = 250

/**
 * The command line's log on stderr: plain lines, and on a terminal a progress bar for the
 * transfers (cli-progress), with the log lines printed above it while it runs.
 */
export function terminalLogger(stderr: NodeJS.WritableStream & { isTTY?: boolean }): Logger {
  let bars: cliProgress.MultiBar | undefined
  let bar: cliProgress.SingleBar | undefined
  const line = (text: string): void => {
    if (bars) bars.log(`${text}\n`)
    else stderr.write(`${text}\n`)
  }
  const progress: ProgressView = {
    intervalMs: BAR_INTERVAL_MS,
    update: (s) => {
      if (!bars) {
        bars = new cliProgress.MultiBar(
          {
            stream: stderr,
            format:
              '{bar} {percentage}% | {sent} of {size} | {files} | {rate} | ETA {eta_formatted}',
            hideCursor: true,
            clearOnComplete: true,
            etaBuffer: 50
          },
          cliProgress.Presets.shades_classic
        )
        bar = bars.create(s.totalBytes, 0, payload(s))
      }
      bar?.update(s.sentBytes, payload(s))
    },
    end: () => {
      // A last redraw: the final numbers, and the log lines buffered since the one before.
      bars?.update()
      bars?.stop()
      bars = undefined
      bar = undefined
    }
  }
  return {
    info: line,
    warning: (message) => line(`warning: ${message}`),
    debug: () => undefined,
    ...(stderr.isTTY ? { progress } : {})
  }
}

function payload(s: ProgressSnapshot): Record<string, string> {
  const rate = s.elapsedMs > 0 ? (s.sentBytes * 1000) / s.elapsedMs : 0
  return {
    sent: `${(s.verb ?? 'Uploaded').toLowerCase()} ${formatBytes(s.sentBytes)}`,
    size: formatBytes(s.totalBytes),
    files: `${s.filesDone} of ${s.totalFiles} files`,
    rate: `${(rate / 1e6).toFixed(1)} MB/s`
  }
}
