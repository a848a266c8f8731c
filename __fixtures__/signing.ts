import { createVerify, generateKeyPairSync, type KeyObject } from 'node:crypto'

export interface TestKeyPair {
  /** `-----BEGIN RSA PRIVATE KEY-----` */
  pkcs1: string
  /** `-----BEGIN PRIVATE KEY-----` */
  pkcs8: string
  publicKey: KeyObject
}

/** A fresh RSA key pair (2048 bits, as CloudFront key groups take), as PKCS#1 and PKCS#8 PEM. */
export function generateSigningKeys(modulusLength = 2048): TestKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength })
  return {
    pkcs1: privateKey.export({ type: 'pkcs1', format: 'pem' }) as string,
    pkcs8: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKey
  }
}

/** The public key as SPKI PEM, as CloudFront's CreatePublicKey takes it. */
export function publicKeyPem(keys: Pick<TestKeyPair, 'publicKey'>): string {
  return keys.publicKey.export({ type: 'spki', format: 'pem' }).toString()
}

/** `base?a=1&b=2` -> [base, sorted parameters]: one URL whatever the order of its parameters. */
export function canonicalUrl(url: string): [string, string[]] {
  const at = url.indexOf('?')
  return [
    url.slice(0, at),
    url
      .slice(at + 1)
      .split('&')
      .sort()
  ]
}

/** The one-line form secrets often hold: each newline written as the two characters `\n`. */
export function escapeNewlines(pem: string, newline = '\\n'): string {
  return pem.trimEnd().replace(/\r?\n/g, newline)
}

/** The lines of a PEM between its BEGIN and END lines: the secret part. */
export function pemBodyLines(pem: string): string[] {
  return pem.split(/\r?\n/).filter((line) => line && !line.startsWith('-----'))
}

/** CloudFront's URL-safe base64 (`-_~` for `+=/`) back to bytes. */
export function decodeCloudFrontBase64(text: string): Buffer {
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/'), 'base64')
}

const SIGNING_PARAMS = new Set(['Expires', 'Policy', 'Signature', 'Key-Pair-Id', 'Hash-Algorithm'])

/** `*` matches any run of characters and `?` one character, as in CloudFront policy resources. */
function matchesResource(pattern: string, url: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${regex}$`, 's').test(url)
}

interface PolicyStatement {
  Resource: string
  Condition: { DateLessThan: { 'AWS:EpochTime': number } }
}

/**
 * What a CloudFront cache behaviour with trusted key groups decides for a request, as the
 * Developer Guide describes it: the URL the client sent, without CloudFront's own parameters, is
 * the resource; a canned policy is rebuilt from it and `Expires`, a custom one (`Policy`, from the
 * query or the cookies) must name it; the signature must verify with the public key.
 * Returns undefined when the request is allowed, else why it is refused (CloudFront says 403).
 */
export function cloudFrontRefusal(
  requestUrl: string,
  publicKey: KeyObject,
  nowSeconds: number,
  cookies: Record<string, string> = {}
): string | undefined {
  const queryAt = requestUrl.indexOf('?')
  const base = queryAt === -1 ? requestUrl : requestUrl.slice(0, queryAt)
  const pairs = queryAt === -1 ? [] : requestUrl.slice(queryAt + 1).split('&')
  const params = new Map<string, string>()
  const kept: string[] = []
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    if (SIGNING_PARAMS.has(name)) params.set(name, eq === -1 ? '' : pair.slice(eq + 1))
    else kept.push(pair)
  }
  const resource = kept.length ? `${base}?${kept.join('&')}` : base
  const fromCookies = !params.has('Signature')
  const get = (name: string): string | undefined =>
    fromCookies ? cookies[`CloudFront-${name}`] : params.get(name)

  const signature = get('Signature')
  if (!signature || !get('Key-Pair-Id')) return 'MissingKey: no signature'
  let policy: string
  const encodedPolicy = get('Policy')
  if (encodedPolicy) {
    policy = decodeCloudFrontBase64(encodedPolicy).toString('utf8')
  } else {
    const expires = Number(get('Expires'))
    if (!Number.isInteger(expires)) return 'MissingKey: no Expires and no Policy'
    policy = JSON.stringify({
      Statement: [{ Resource: resource, Condition: { DateLessThan: { 'AWS:EpochTime': expires } } }]
    })
  }
  const verifier = createVerify('RSA-SHA1')
  verifier.update(policy)
  if (!verifier.verify(publicKey, decodeCloudFrontBase64(signature))) {
    return 'AccessDenied: the signature does not match the policy for this URL'
  }
  const statement = (JSON.parse(policy) as { Statement: PolicyStatement[] }).Statement[0]
  if (!matchesResource(statement.Resource, resource)) {
    return `AccessDenied: the policy's resource ${statement.Resource} does not cover ${resource}`
  }
  if (nowSeconds >= statement.Condition.DateLessThan['AWS:EpochTime']) {
    return 'AccessDenied: the signature has expired'
  }
  return undefined
}

/** Cookies of a `Cookie` request header, name -> value. */
export function parseCookieHeader(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {}
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0) cookies[part.slice(0, eq).trim()] = part.slice(eq + 1).trim()
  }
  return cookies
}
