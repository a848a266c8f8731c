/**
 * Keeping secrets out of the log, the summary and the outputs: credentials are masked before
 * anything can print them, and text that came from the SDK (error messages, URLs) is redacted
 * before it is shown.
 */

/** Registers a value with the runner's log masker (core.setSecret). */
export type SetSecret = (secret: string) => void

/** What aws-actions/configure-aws-credentials masks: the key id too, as it does. */
export const CREDENTIAL_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN'
] as const

export const REDACTED = '[REDACTED]'

/**
 * Masks a value and every line of it. The runner matches masks against one log line at a time,
 * so a multi-line value (a PEM key) registered whole would never match anything.
 */
export function maskSecret(value: string | undefined, setSecret: SetSecret): void {
  if (!value) return
  const parts = new Set([value.trim(), ...value.split(/\r?\n|\r/).map((line) => line.trim())])
  for (const part of parts) if (part) setSecret(part)
}

/** Masks the AWS credentials in the environment; call it before anything is printed. */
export function maskCredentials(env: NodeJS.ProcessEnv, setSecret: SetSecret): void {
  for (const name of CREDENTIAL_VARIABLES) maskSecret(env[name], setSecret)
}

/** Query parameters of presigned S3 URLs and signed CloudFront URLs that grant access. */
const SECRET_QUERY =
  /([?&;\s"'(,]|^)(x-amz-signature|x-amz-credential|x-amz-security-token|signature|key-pair-id|policy)=[^&\s"'<>#)]*/gi
/** Header values (`Authorization: AWS4-HMAC-SHA256 …`), to the end of the line or string. */
const SECRET_HEADER = /\b(authorization|x-amz-security-token)("?\s*:\s*"?)(?:\\"|[^"\r\n])*/gi
/** The parts of a SignatureDoesNotMatch body that carry signing material, as XML elements … */
const SIGNING_ELEMENTS =
  /<(StringToSign|StringToSignBytes|CanonicalRequest|CanonicalRequestBytes|SignatureProvided|AWSAccessKeyId)>[\s\S]*?<\/\1>/g
/** … and as fields of a serialised error (`"StringToSign":"…"`, `CanonicalRequest: …`). */
const SIGNING_FIELDS =
  /\b(StringToSign|StringToSignBytes|CanonicalRequest|CanonicalRequestBytes|SignatureProvided)("?\s*[:=]\s*)(?:"(?:\\.|[^"\\])*"|[^\r\n,}]*)/g
/** A private key; an unterminated one (a truncated message) is cut to the end of the text. */
const PRIVATE_KEY =
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g

/**
 * Removes the secrets an SDK error message or a URL can carry: signatures, credentials and
 * tokens in query strings and headers, signing material of SignatureDoesNotMatch errors, and
 * private keys. Everything else, which says what went wrong, is kept.
 */
export function redact(text: string): string {
  return text
    .replace(PRIVATE_KEY, '[REDACTED PRIVATE KEY]')
    .replace(SIGNING_ELEMENTS, (_, name: string) => `<${name}>${REDACTED}</${name}>`)
    .replace(SIGNING_FIELDS, (_, name: string, sep: string) => `${name}${sep}${REDACTED}`)
    .replace(SECRET_HEADER, (_, name: string, sep: string) => `${name}${sep}${REDACTED}`)
    .replace(SECRET_QUERY, (_, before: string, name: string) => `${before}${name}=${REDACTED}`)
}
