/** CloudFront path patterns and IAM ARN/action patterns: `*` any run, `?` one char. */

/** Positions in the pattern reachable after matching all of `text`. */
function globPositions(pattern: string[], text: string): Set<number> {
  const close = (set: Set<number>): Set<number> => {
    // A Set iterates over what is added during iteration: this is the closure over `*`.
    for (const i of set) if (pattern[i] === '*') set.add(i + 1)
    return set
  }
  let states = close(new Set([0]))
  for (const char of text) {
    const next = new Set<number>()
    for (const i of states) {
      if (pattern[i] === '*') next.add(i)
      else if (pattern[i] === '?' || pattern[i] === char) next.add(i + 1)
    }
    states = close(next)
    if (states.size === 0) break
  }
  return states
}

export function globMatch(pattern: string, text: string): boolean {
  const chars = [...pattern]
  return globPositions(chars, text).has(chars.length)
}

/**
 * Which strings that start with `base` (and go on) a `*`/`?` pattern matches: `all` of them, only
 * `some`, or `none`. Case-sensitive, as CloudFront path patterns and IAM resources are.
 */
export function patternCoverage(pattern: string, base: string): 'all' | 'some' | 'none' {
  const chars = [...pattern]
  const states = [...globPositions(chars, base)].filter((i) => i < chars.length)
  if (states.some((i) => chars.slice(i).every((c) => c === '*'))) return 'all'
  return states.length > 0 ? 'some' : 'none'
}
