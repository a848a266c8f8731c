/**
 * CloudFront signed URLs and signed cookies for a published version: the signing inputs parsed
 * and checked before anything is sent, the private key masked in every form it can take, and
 * the signing itself, over exactly the URLs a client sends.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto'
import { getSignedCookies, getSignedUrl } from '@aws-sdk/cloudfront-signer'
import { collectInputError, InputError } from '../common/errors.js'
import { maskSecret, redact, type SetSecret } from '../common/secrets.js'
import type { SigningConfig } from '../common/types.js'
import { encodeKeyForUrl } from './urls.js'

export const DEFAULT_EXPIRES_IN_SECONDS = 3600
/**
 * Shorter lifetimes would expire while a large deploy is still being verified or before the
 * next job of the workflow uses the URLs, and leave no room for a runner clock that is off.
 */
export const MIN_EXPIRES_IN_SECONDS = 300
/**
 * A signed URL cannot be revoked except by removing its public key from the key group (which
 * revokes every URL signed with it): a longer lifetime makes it a permanent public link.
 */
export const MAX_EXPIRES_IN_SECONDS = 365 * 24 * 3600

const KEY_INPUT = '`signing-private-key`'
const ID_INPUT = '`signing-key-pair-id`'
const EXPIRES_INPUT = '`signed-url-expires-in`'

/** What signing needs, validated. */
/** The raw input values (as core.getInput returns them). */
export interface SigningInputValues {
  keyPairId: string
  privateKey: string
  expiresIn: string
}

const CREATE_KEY_HINT =
  'CloudFront key groups take RSA 2048 public keys: create the pair with ' +
  '`openssl genrsa -out private_key.pem 2048` and `openssl rsa -pubout -in private_key.pem ' +
  '-out public_key.pem`, upload the public key to a key group trusted by the distribution, and ' +
  'store the whole private_key.pem (BEGIN and END lines included) as a secret.'

/**
 * The key text as the user meant it: trimmed, without surrounding quotes, with `\n` and `\r\n`
 * escapes (one-line secrets, .env and JSON values) and CRLF turned into newlines.
 */
export function unescapeKeyText(raw: string): string {
  let text = raw.trim()
  const quote = text[0]
  if (text.length >= 2 && (quote === '"' || quote === "'") && text.endsWith(quote)) {
    text = text.slice(1, -1).trim()
  }
  // Base64 has no backslash, so an escape can only be a newline the secret store flattened.
  return text.replace(/\\r\\n|\\n|\\r/g, '\n').replace(/\r\n?/g, '\n')
}

interface PemBlock {
  label: string
  /** The text between the BEGIN and END lines, as given. */
  body: string
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g
const ARMOR_LINE = /^-----(BEGIN|END) [A-Z0-9 ]+-----$/

function pemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1], body: m[2] }))
}

/** The block with its body re-wrapped at 64 columns: tolerates any line breaks or none. */
function canonicalPem(block: PemBlock): string {
  const base64 = block.body.replace(/\s+/g, '')
  const lines = base64.match(/.{1,64}/g) ?? []
  return `-----BEGIN ${block.label}-----\n${lines.join('\n')}\n-----END ${block.label}-----\n`
}

/**
 * Registers the private key with the log masker in every form it can be printed in: as given
 * (the escaped one-line form too), and each real line of it, before and after re-wrapping.
 * The runner masks per log line, so lines are what matches. Main calls this first thing.
 */
export function maskSigningKey(raw: string | undefined, setSecret: SetSecret): void {
  if (!raw?.trim()) return
  // The armor lines are public constants; masking them would only garble messages about keys.
  const mask: SetSecret = (value) => {
    if (!ARMOR_LINE.test(value)) setSecret(value)
  }
  maskSecret(raw, mask)
  const text = unescapeKeyText(raw)
  maskSecret(text, mask)
  for (const block of pemBlocks(text)) maskSecret(canonicalPem(block), mask)
}

function keyProblem(what: string, hint: string = CREATE_KEY_HINT): InputError {
  return new InputError(`${KEY_INPUT} ${what}.`, hint)
}

/** Names what a non-private-key PEM block holds, for the error. */
function describeOtherBlocks(blocks: PemBlock[]): string | undefined {
  const labels = blocks.map((b) => b.label)
  if (labels.some((l) => l.includes('PUBLIC KEY'))) {
    return 'holds a public key, not the private key: CloudFront keeps the public key; the action signs with the private key that matches it'
  }
  if (labels.includes('CERTIFICATE')) return 'holds a certificate, not a private key'
  return labels.length ? `holds a PEM "${labels[0]}" block, not a private key` : undefined
}

/**
 * Parses the `signing-private-key` input: an unencrypted RSA 2048 private key, PKCS#1
 * (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`) PEM. Returns the canonical PEM;
 * throws an InputError that says what is wrong without quoting any of the key.
 */
export function parsePrivateKey(raw: string): string {
  const text = unescapeKeyText(raw)
  if (!text) throw keyProblem('is empty')
  const block = privateKeyBlock(text)
  checkKeyBlock(block)
  const pem = canonicalPem(block)
  checkRsa2048(pem)
  return pem
}

/** The one private key block of the text; else an error naming what the text holds instead. */
function privateKeyBlock(text: string): PemBlock {
  const blocks = pemBlocks(text)
  const keys = blocks.filter((b) => b.label.endsWith('PRIVATE KEY'))
  if (keys.length === 0) {
    if (/^LS0tLS1CRUdJT/.test(text)) {
      throw keyProblem(
        'is base64-encoded PEM',
        'Store the PEM text itself (-----BEGIN … PRIVATE KEY----- … -----END … PRIVATE KEY-----) as the secret, not its base64 encoding.'
      )
    }
    const other = describeOtherBlocks(blocks)
    if (other) throw keyProblem(other)
    if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) {
      throw keyProblem(
        'has a BEGIN line but no matching END line',
        'The secret looks truncated: store the whole PEM file, END line included.'
      )
    }
    throw keyProblem('is not a PEM private key (no "-----BEGIN … PRIVATE KEY-----" line)')
  }
  if (keys.length > 1) throw keyProblem(`holds ${keys.length} private keys; give exactly one`)
  return keys[0]
}

/** What the block's label and text show: a plain RSA key (PKCS#1 or PKCS#8) in base64. */
function checkKeyBlock(block: PemBlock): void {
  if (block.label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,\s*ENCRYPTED/i.test(block.body)) {
    throw keyProblem(
      'is an encrypted (passphrase-protected) key',
      'Decrypt it once (`openssl pkey -in key.pem -out plain.pem`) and store the plain key as the secret: the secret store protects it.'
    )
  }
  if (block.label === 'OPENSSH PRIVATE KEY') {
    throw keyProblem(
      'is in OpenSSH format',
      'Convert an RSA key to PEM with `ssh-keygen -p -m PEM -f <file>`, or create one with openssl. ' +
        CREATE_KEY_HINT
    )
  }
  if (block.label === 'EC PRIVATE KEY') throw ecKeyProblem()
  if (block.label !== 'RSA PRIVATE KEY' && block.label !== 'PRIVATE KEY') {
    throw keyProblem(`is a "${block.label}", not an RSA private key`)
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(block.body.replace(/\s+/g, ''))) {
    throw keyProblem(
      'is damaged: the text between its BEGIN and END lines is not base64',
      'Paste the PEM file again, unchanged, as the secret.'
    )
  }
}

/** What the key itself is, once read: RSA of 2048 bits, the only keys CloudFront takes. */
function checkRsa2048(pem: string): void {
  let key: KeyObject
  try {
    key = createPrivateKey({ key: pem, format: 'pem' })
  } catch (err) {
    // OpenSSL's message names the decoder that failed, never the key's bytes.
    const detail = redact(err instanceof Error ? err.message : String(err))
    throw keyProblem(
      `could not be read as a private key (${detail})`,
      'The PEM text is damaged or incomplete: paste the PEM file again, unchanged, as the secret.'
    )
  }
  if (key.asymmetricKeyType === 'ec') throw ecKeyProblem()
  if (key.asymmetricKeyType !== 'rsa') {
    throw keyProblem(
      `has key type ${key.asymmetricKeyType ?? 'unknown'}: CloudFront signed URLs need an RSA key`
    )
  }
  const bits = key.asymmetricKeyDetails?.modulusLength
  if (bits !== 2048) {
    throw keyProblem(
      `is an RSA ${bits}-bit key: CloudFront key groups accept RSA keys of 2048 bits only, so no public key there can match it`
    )
  }
}

function ecKeyProblem(): InputError {
  return keyProblem(
    'is an EC key: CloudFront signed URLs need RSA here (@aws-sdk/cloudfront-signer signs with RSA only)'
  )
}

/** CloudFront public key ids, e.g. K2JCJMDEHXQW5F. */
const PUBLIC_KEY_ID = /^K[A-Z0-9]{9,31}$/
/** Key pairs of the account root user (legacy trusted signers), e.g. APKAEIBAERJR2EXAMPLE. */
const LEGACY_KEY_PAIR_ID = /^APKA[A-Z0-9]{12,28}$/
const KEY_GROUP_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Checks the `signing-key-pair-id` input; returns it trimmed. */
export function validateKeyPairId(raw: string): string {
  const id = raw.trim()
  if (PUBLIC_KEY_ID.test(id) || LEGACY_KEY_PAIR_ID.test(id)) return id
  const hint =
    'Give the ID of the public key (CloudFront console > Key management > Public keys, e.g. K2JCJMDEHXQW5F) whose key group the distribution trusts, or a legacy key pair ID (APKA…).'
  if (!id) throw new InputError(`${ID_INPUT} is empty.`, hint)
  // Never echo what may be key material pasted into the wrong input.
  if (/PRIVATE KEY|\s/.test(id) || id.length > 64) {
    throw new InputError(
      `${ID_INPUT} is not a key pair ID (it is ${id.length} characters long${/PRIVATE KEY/.test(id) ? ' and holds a private key' : ''}).`,
      `The private key belongs in ${KEY_INPUT}. ${hint}`
    )
  }
  const what = KEY_GROUP_ID.test(id)
    ? 'is a key group ID, not a public key ID'
    : /^(AKIA|ASIA)/.test(id)
      ? 'is an IAM access key ID, not a CloudFront key'
      : /^E[A-Z0-9]{7,}$/.test(id)
        ? 'looks like a distribution ID, not a public key ID'
        : PUBLIC_KEY_ID.test(id.toUpperCase()) || LEGACY_KEY_PAIR_ID.test(id.toUpperCase())
          ? 'must be in upper case, as CloudFront shows it'
          : 'is not a CloudFront public key ID (K…) or key pair ID (APKA…)'
  throw new InputError(`${ID_INPUT} "${id}" ${what}.`, hint)
}

/** Parses `signed-url-expires-in`: whole seconds within the bounds; '' is the default. */
export function parseExpiresIn(raw: string): number {
  const text = raw.trim()
  if (!text) return DEFAULT_EXPIRES_IN_SECONDS
  const seconds = Number(text)
  const range = `${MIN_EXPIRES_IN_SECONDS} (5 minutes) and ${MAX_EXPIRES_IN_SECONDS} (365 days)`
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(seconds)) {
    throw new InputError(
      `${EXPIRES_INPUT} must be a whole number of seconds, got "${text}".`,
      `Give seconds between ${range}, e.g. 3600 for an hour.`
    )
  }
  if (seconds < MIN_EXPIRES_IN_SECONDS || seconds > MAX_EXPIRES_IN_SECONDS) {
    throw new InputError(
      `${EXPIRES_INPUT} must be between ${range} seconds, got ${seconds}.`,
      seconds < MIN_EXPIRES_IN_SECONDS
        ? 'Shorter URLs would expire before the deploy is verified and the next job can use them.'
        : 'A signed URL cannot be revoked except by removing its key from the key group: sign again when needed instead.'
    )
  }
  return seconds
}

/**
 * The signing inputs, checked together in the style of parseInputs: each mistake is added to
 * `problems`. Returns undefined when signing is not configured (no key and no key pair id).
 */
export function parseSigningInputs(
  values: SigningInputValues,
  problems: string[]
): SigningConfig | undefined {
  const attempt = <T>(parse: () => T) => collectInputError(problems, parse)

  const expiresInSeconds = attempt(() => parseExpiresIn(values.expiresIn))
  const hasKey = values.privateKey.trim() !== ''
  const hasId = values.keyPairId.trim() !== ''
  if (!hasKey && !hasId) return undefined
  if (!hasKey || !hasId) {
    problems.push(
      hasKey
        ? `${KEY_INPUT} is set but ${ID_INPUT} is empty: signing needs both (the ID of the public key matching the private key).`
        : `${ID_INPUT} is set but ${KEY_INPUT} is empty: signing needs both. If it reads a secret, the secret may be unset or not available to this workflow (runs triggered from forks get no secrets).`
    )
    return undefined
  }
  const keyPairId = attempt(() => validateKeyPairId(values.keyPairId))
  const privateKey = attempt(() => parsePrivateKey(values.privateKey))
  if (keyPairId === undefined || privateKey === undefined || expiresInSeconds === undefined) {
    return undefined
  }
  return { keyPairId, privateKey, expiresInSeconds }
}

/** When signatures made now stop working: whole seconds, as CloudFront's policies count them. */
export function signatureExpiry(expiresInSeconds: number, now: number = Date.now()): Date {
  return new Date((Math.floor(now / 1000) + expiresInSeconds) * 1000)
}

/** A published file: where it is (objectUrl) and how the outputs name it. */
export interface UrlToSign {
  relativePath: string
  url: string
}

type SigningKey = Pick<SigningConfig, 'keyPairId' | 'privateKey'>

/**
 * Signs each URL with a canned policy (valid until `expiresAt`); returns relative path -> signed
 * URL. The URLs must come from objectUrl(), with each key segment percent-encoded: the signer
 * (3.1166) decodes and re-encodes every path segment with encodeURIComponent *before* it builds
 * and signs the policy, which leaves such URLs unchanged, so the signed resource, the returned
 * URL and the request line a client sends for it are the same string (see aws-sdk-js-v3 #8033
 * for the version that encoded after signing and got 403s).
 */
export function signUrls(
  files: readonly UrlToSign[],
  key: SigningKey,
  expiresAt: Date
): Record<string, string> {
  return Object.fromEntries(
    files.map((file) => [
      file.relativePath,
      getSignedUrl({
        url: file.url,
        keyPairId: key.keyPairId,
        privateKey: key.privateKey,
        dateLessThan: expiresAt
      })
    ])
  )
}

/** The three cookies CloudFront reads for a custom policy. */
export interface CloudFrontCookies {
  'CloudFront-Policy': string
  'CloudFront-Signature': string
  'CloudFront-Key-Pair-Id': string
}

export interface SignedCookies {
  /** Cookie name -> value, for requests to the distribution's domain. */
  cookies: CloudFrontCookies
  /** What they open: every URL matching this (`<url-base>/<version-prefix>/*`). */
  resource: string
  expiresAt: Date
  /**
   * The `Cookie` header carrying all three, e.g. `curl -b "$HEADER" <url>` or
   * `requests.get(url, headers={'Cookie': header})`; browsers need them set on the domain.
   */
  header: string
}

/**
 * Signed cookies for a whole version (custom policy on `<url-base>/<version-prefix>/*`, valid
 * until `expiresAt`): one credential for clients that fetch many shards.
 */
export function signedCookies(
  urlBase: string,
  versionPrefix: string,
  key: SigningKey,
  expiresAt: Date
): SignedCookies {
  const prefix = versionPrefix ? `${encodeKeyForUrl(versionPrefix)}/` : ''
  const resource = `${urlBase}/${prefix}*`
  // The statement's member order is the one AWS documents (and botocore writes).
  const policy = JSON.stringify({
    Statement: [
      {
        Resource: resource,
        Condition: { DateLessThan: { 'AWS:EpochTime': Math.floor(expiresAt.getTime() / 1000) } }
      }
    ]
  })
  const signed = getSignedCookies({
    policy,
    keyPairId: key.keyPairId,
    privateKey: key.privateKey
  })
  const cookies: CloudFrontCookies = {
    'CloudFront-Policy': signed['CloudFront-Policy'] as string,
    'CloudFront-Signature': signed['CloudFront-Signature'],
    'CloudFront-Key-Pair-Id': signed['CloudFront-Key-Pair-Id']
  }
  const header = Object.entries(cookies)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ')
  return { cookies, resource, expiresAt, header }
}

/** What signing produced for a deploy; the summary shows the expiry and resource, never values. */
export interface SigningReport {
  keyPairId: string
  expiresAt: Date
  /** Relative path → signed URL (the manifest as `manifest.json`). */
  urls: Record<string, string>
  /** Cookie name → value, for every URL under `resource`. */
  cookies: Record<string, string>
  /** `<url-base>/<version-prefix>/*`: what the cookies open. */
  cookieResource: string
}

/** Signs every published URL and issues cookies for the whole version, all with one expiry. */
export function signPublished(
  published: { relativePath: string; url: string }[],
  urlBase: string,
  versionPrefix: string,
  config: SigningConfig,
  now: number
): SigningReport {
  const expiresAt = signatureExpiry(config.expiresInSeconds, now)
  const cookies = signedCookies(urlBase, versionPrefix, config, expiresAt)
  return {
    keyPairId: config.keyPairId,
    expiresAt,
    urls: signUrls(published, config, expiresAt),
    cookies: { ...cookies.cookies },
    cookieResource: cookies.resource
  }
}
