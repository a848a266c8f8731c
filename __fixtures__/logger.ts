import type { Logger } from '../src/common/types.js'

/** A Logger that records what it was told, for assertions, and prints nothing. */
export function silentLogger(): Logger & { lines: string[]; warnings: string[] } {
  const lines: string[] = []
  const warnings: string[] = []
  return {
    lines,
    warnings,
    info: (m) => void lines.push(m),
    warning: (m) => void warnings.push(m),
    debug: () => undefined
  }
}
