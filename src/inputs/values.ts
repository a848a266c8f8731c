import { collectInputError } from '../common/errors.js'
import { INPUT_SPECS, type InputName, type InputRange, type InputSpec } from './schema.js'

/** Reads one raw input (core.getInput in the action; a map in tests). */
export type InputReader = (name: string) => string

const SPECS = new Map(INPUT_SPECS.map((spec) => [spec.name, spec]))

function specOf(name: InputName): InputSpec {
  const spec = SPECS.get(name)
  if (!spec) throw new Error(`No input named ${name} in the schema.`)
  return spec
}

/** `true`/`false`, also `yes`/`no`, `on`/`off`, `1`/`0`; undefined when it is none of them. */
function parseBoolean(value: string): boolean | undefined {
  if (/^(true|yes|on|1)$/i.test(value)) return true
  if (/^(false|no|off|0)$/i.test(value)) return false
  return undefined
}

function rangeProblem(name: InputName, range: InputRange, n: number, given: string) {
  const { min, max, unit, integer } = range
  if (n < min || n > max) {
    return `\`${name}\` must be between ${min} and ${max}${unit ? ` ${unit}` : ''}, got ${given}.`
  }
  if (integer && !Number.isInteger(n)) return `\`${name}\` must be a whole number, got ${n}.`
  return undefined
}

const splitLines = (value: string): string[] =>
  value
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))

/**
 * The inputs read as the schema describes them: an empty input is its default, a choice must be
 * one of its choices, a number must be in its range. A value refused adds a problem and reads as
 * the default, so that parsing goes on and every mistake of a run is reported at once.
 */
export class InputValues {
  readonly problems: string[] = []
  private readonly read: InputReader

  constructor(read: InputReader) {
    this.read = read
  }

  problem(message: string): void {
    this.problems.push(message)
  }

  /** Runs a check that throws InputError; its message becomes a problem. */
  attempt<T>(parse: () => T): T | undefined {
    return collectInputError(this.problems, parse)
  }

  /** The value as given, untrimmed. */
  raw(name: InputName): string {
    return this.read(name)
  }

  /** The value, trimmed; '' when not given (the default is not applied). */
  text(name: InputName): string {
    return this.read(name).trim()
  }

  /** The value, trimmed, or the default when not given. */
  textOrDefault(name: InputName): string {
    return this.text(name) || (specOf(name).default ?? '')
  }

  required(name: InputName): string {
    const value = this.text(name)
    if (!value) this.problem(`\`${name}\` is required.`)
    return value
  }

  /** One of the choices, lower-cased (what was given is returned even when it is not one). */
  choice<T extends string>(name: InputName): T {
    const { choices = [] } = specOf(name)
    const value = this.textOrDefault(name).toLowerCase()
    if (!choices.includes(value)) {
      this.problem(`\`${name}\` must be one of ${choices.join(', ')}; got "${this.text(name)}".`)
    }
    return value as T
  }

  bool(name: InputName): boolean {
    const fallback = parseBoolean(specOf(name).default ?? '') ?? false
    const value = this.text(name)
    if (!value) return fallback
    const parsed = parseBoolean(value)
    if (parsed === undefined) this.problem(`\`${name}\` must be true or false, got "${value}".`)
    return parsed ?? fallback
  }

  /** A number with a default: the value in range, or the default. */
  number(name: InputName): number {
    const value = this.optionalNumber(name)
    if (value === undefined) throw new Error(`The input ${name} has no default in the schema.`)
    return value
  }

  /** A number in range; the default (undefined when it has none) when not given or refused. */
  optionalNumber(name: InputName): number | undefined {
    const spec = specOf(name)
    const fallback = spec.default ? Number(spec.default) : undefined
    const value = this.text(name)
    if (!value) return fallback
    const n = Number(value)
    if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(n)) {
      this.problem(`\`${name}\` must be a number, got "${value}".`)
      return fallback
    }
    const problem = spec.range && rangeProblem(name, spec.range, n, value)
    if (problem) this.problem(problem)
    return problem ? fallback : n
  }

  /** One item a line, blank lines and `#` comments left out; the default's when there are none. */
  lines(name: InputName): string[] {
    const items = splitLines(this.read(name))
    return items.length > 0 ? items : splitLines(specOf(name).default ?? '')
  }
}
