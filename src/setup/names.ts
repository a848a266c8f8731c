/**
 * The names setup gives what it creates, `model-cdn-deploy-<bucket>` fitted to each API's rules,
 * so that a second run finds them again.
 */
import { createHash } from 'node:crypto'

const NAME_PREFIX = 'model-cdn-deploy-'

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/**
 * `model-cdn-deploy-<bucket>`, within an API's `limit`. A name that had to be cut ends with 8 hex
 * digits of the bucket name's SHA-256, so that two long bucket names that begin alike never share
 * one. CloudFront takes only letters, digits, `-` and `_` in names: there a bucket's dots become
 * `-`, and the name gets the hash too (`a.b` is not `a-b`). IAM takes dots in a role's name
 * (`dotsAllowed`), so a role's name keeps them.
 */
export function setupName(bucket: string, limit: number, { dotsAllowed = false } = {}): string {
  const name = `${NAME_PREFIX}${bucket}`
  const dotsReplaced = !dotsAllowed && bucket.includes('.')
  if (name.length <= limit && !dotsReplaced) return name
  const hash = sha256Hex(bucket).slice(0, 8)
  const allowed = dotsReplaced ? name.replace(/\./g, '-') : name
  return `${allowed.slice(0, limit - hash.length - 1)}-${hash}`
}
