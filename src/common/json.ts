/** Reading untyped JSON (policies, AWS documents): a value as the shape a reader expects, or none. */

/** A string, or the strings of a list (IAM accepts either); [] otherwise. */
export function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}

/** An object (not a list), or undefined. */
export function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined
}
