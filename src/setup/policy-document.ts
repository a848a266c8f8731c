/**
 * IAM policy documents as setup writes them and as IAM returns them. IAM answers GetRole and
 * GetRolePolicy with the document URL-encoded, and may keep the whitespace and key order it was
 * sent with, so documents are compared parsed, never as text.
 */
import { DeployError } from '../common/errors.js'

export interface PolicyStatement {
  Sid?: string
  Effect: 'Allow' | 'Deny'
  Principal?: Record<string, string | string[]>
  Action: string | string[]
  Resource?: string | string[]
  Condition?: Record<string, Record<string, string | string[]>>
}

export interface PolicyDocument {
  Version: '2012-10-17'
  Statement: PolicyStatement[]
}

/** A policy document as IAM returns it (URL-encoded JSON) or as it was written (plain JSON). */
export function parsePolicyDocument(text: string, what: string): PolicyDocument {
  try {
    const json = text.trimStart().startsWith('{') ? text : decodeURIComponent(text)
    const doc = JSON.parse(json) as Partial<PolicyDocument>
    // A single statement may be written as an object rather than a list of one.
    return { ...doc, Statement: [doc.Statement ?? []].flat() } as PolicyDocument
  } catch (err) {
    throw new DeployError(
      `Could not read ${what}: IAM returned a policy document that is not JSON.`,
      'Check it in the IAM console (Roles → the role), fix or remove it, and run setup again.',
      { cause: err }
    )
  }
}

/** Whether two policy documents or statements say the same, whatever their key order. */
export function samePolicy(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b))
}

/** The value with every object's keys sorted; list order is kept (it is the author's). */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value !== 'object' || value === null) return value
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, canonical((value as Record<string, unknown>)[key])])
  )
}
