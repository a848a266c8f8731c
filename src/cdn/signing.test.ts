import { createPrivateKey, createVerify, generateKeyPairSync } from 'node:crypto'
import { InputError } from '../common/errors.js'
import {
  DEFAULT_EXPIRES_IN_SECONDS,
  MAX_EXPIRES_IN_SECONDS,
  MIN_EXPIRES_IN_SECONDS,
  maskSigningKey,
  parseExpiresIn,
  parsePrivateKey,
  parseSigningInputs,
  signatureExpiry,
  signedCookies,
  signUrls,
  unescapeKeyText,
  validateKeyPairId
} from './signing.js'
import { objectUrl } from './urls.js'
import {
  canonicalUrl as canonical,
  cloudFrontRefusal,
  decodeCloudFrontBase64,
  escapeNewlines,
  generateSigningKeys,
  pemBodyLines,
  publicKeyPem,
  type TestKeyPair
} from '../../__fixtures__/signing.js'
import { referenceSign } from '../../__tests__/helpers/reference-signer.js'

const KEY_PAIR_ID = 'K2JCJMDEHXQW5F'
const URL_BASE = 'https://d111111abcdef8.cloudfront.net'
/** 2026-12-01T00:00:00Z: a fixed expiry, so the signatures are comparable. */
const EXPIRES = 1796083200
const expiresAt = new Date(EXPIRES * 1000)
/** Keys as S3 holds them: with spaces, non-ASCII (NFC and NFD), reserved and unreserved marks. */
const KEYS = [
  'v3/model.onnx',
  'v3/my model (final).safetensors',
  'v3/modèle/日本語 トークナイザー.json',
  "v3/cafe\u0301/shard+1=2,@a!~*'.bin",
  'v3/100%/a#b?c.gguf'
]

let keys: TestKeyPair
beforeAll(() => {
  keys = generateSigningKeys()
})

/** The PEM with its whole body on one line, as some tools write it. */
function withBodyOnOneLine(pem: string): string {
  const lines = pem.trim().split('\n')
  return [lines[0], lines.slice(1, -1).join(''), lines[lines.length - 1]].join('\n')
}

/** Asserts that the error names the problem and carries no part of the key. */
function expectKeyError(raw: string, message: RegExp, pem: string = raw): void {
  let error: unknown
  try {
    parsePrivateKey(raw)
  } catch (err) {
    error = err
  }
  expect(error).toBeInstanceOf(InputError)
  const err = error as InputError
  expect(err.message).toMatch(message)
  const text = `${err.message}\n${err.hint ?? ''}`
  for (const line of pemBodyLines(unescapeKeyText(pem))) {
    for (let i = 0; i + 16 <= line.length; i += 8) expect(text).not.toContain(line.slice(i, i + 16))
  }
}

describe('parsePrivateKey', () => {
  it('accepts PKCS#1 and PKCS#8 PEM and returns a canonical PEM of the same key', () => {
    for (const pem of [keys.pkcs1, keys.pkcs8]) {
      const parsed = parsePrivateKey(pem)
      expect(parsed).toBe(pem)
      expect(createPrivateKey(parsed).export({ type: 'pkcs1', format: 'pem' })).toBe(keys.pkcs1)
    }
  })

  it.each([
    ['`\\n`-escaped on one line', (pem: string) => escapeNewlines(pem)],
    ['`\\r\\n`-escaped on one line', (pem: string) => escapeNewlines(pem, '\\r\\n')],
    ['with CRLF line ends', (pem: string) => pem.replace(/\n/g, '\r\n')],
    ['in double quotes, escaped', (pem: string) => `"${escapeNewlines(pem)}"`],
    ['in single quotes, with surrounding blank lines', (pem: string) => `\n  '${pem}'  \n\n`],
    ['with spaces for newlines', (pem: string) => pem.trim().replace(/\n/g, ' ')],
    ['with the body on one line', withBodyOnOneLine]
  ])('accepts a key %s', (_, transform) => {
    for (const pem of [keys.pkcs1, keys.pkcs8]) expect(parsePrivateKey(transform(pem))).toBe(pem)
  })

  it('rejects what is not a PEM private key, saying what it is and quoting none of it', () => {
    expectKeyError('', /is empty/)
    expectKeyError('not a key at all', /not a PEM private key/)
    const publicPem = publicKeyPem(keys)
    expectKeyError(publicPem, /holds a public key, not the private key/)
    expectKeyError(Buffer.from(keys.pkcs8).toString('base64'), /is base64-encoded PEM/, keys.pkcs8)
    const truncated = keys.pkcs1.slice(0, 900)
    expectKeyError(truncated, /has a BEGIN line but no matching END line/)
    expectKeyError(`${keys.pkcs1}${keys.pkcs8}`, /holds 2 private keys/)
    const notBase64 = keys.pkcs1.replace(/\n(.)(.)/, '\n$1!')
    expectKeyError(notBase64, /is damaged: .* not base64/)
    // Valid base64, but not the DER of a key: OpenSSL's message is kept, the key is not.
    const [first] = pemBodyLines(keys.pkcs1)
    const damaged = keys.pkcs1.replace(first, first.replace(/^.{8}/, 'AAAAAAAA'))
    expectKeyError(damaged, /could not be read as a private key/, keys.pkcs1)
  })

  it('rejects encrypted keys', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const pkcs8 = privateKey.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'secret'
    }) as string
    const pkcs1 = privateKey.export({
      type: 'pkcs1',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'secret'
    }) as string
    expect(pkcs8).toContain('BEGIN ENCRYPTED PRIVATE KEY')
    expect(pkcs1).toContain('Proc-Type: 4,ENCRYPTED')
    expectKeyError(pkcs8, /is an encrypted \(passphrase-protected\) key/)
    expectKeyError(pkcs1, /is an encrypted \(passphrase-protected\) key/)
  })

  it('rejects EC, Ed25519 and OpenSSH keys: CloudFront signing here is RSA', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
    expectKeyError(ec.export({ type: 'sec1', format: 'pem' }) as string, /is an EC key/)
    expectKeyError(ec.export({ type: 'pkcs8', format: 'pem' }) as string, /is an EC key/)
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' })
    expectKeyError(ed as string, /has key type ed25519: CloudFront signed URLs need an RSA key/)
    const openssh = [
      '-----BEGIN OPENSSH PRIVATE KEY-----',
      'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAABlwAAAAdzc2gtcn',
      '-----END OPENSSH PRIVATE KEY-----'
    ].join('\n')
    expectKeyError(openssh, /is in OpenSSH format/)
  })

  it('rejects RSA keys that are not 2048 bits', () => {
    expectKeyError(generateSigningKeys(1024).pkcs8, /is an RSA 1024-bit key: .* 2048 bits only/)
    expectKeyError(generateSigningKeys(3072).pkcs1, /is an RSA 3072-bit key/)
  })
})

describe('maskSigningKey', () => {
  /** The runner's masker: every registered value, wherever it occurs in a line of the log. */
  function runnerMask(registered: string[], log: string): string {
    const byLength = [...registered].sort((a, b) => b.length - a.length)
    return log
      .split('\n')
      .map((line) => byLength.reduce((text, secret) => text.split(secret).join('***'), line))
      .join('\n')
  }

  it.each([
    ['as PEM lines', (pem: string) => pem],
    ['escaped on one line', (pem: string) => escapeNewlines(pem)],
    ['quoted, with CRLF', (pem: string) => `"${pem.replace(/\n/g, '\r\n')}"`]
  ])('registers the key given %s in every form a log can show it', (_, transform) => {
    for (const pem of [keys.pkcs1, keys.pkcs8]) {
      const raw = transform(pem)
      const registered: string[] = []
      maskSigningKey(raw, (s) => void registered.push(s))
      // As given (the whole one-line form too) and each real line of the body.
      expect(registered).toContain(raw.trim())
      for (const line of pemBodyLines(pem)) expect(registered).toContain(line)
      expect(registered.some((s) => /^-----(BEGIN|END) [A-Z ]+-----$/.test(s))).toBe(false)
      expect(registered.every((s) => s !== '' && s === s.trim())).toBe(true)

      const log = [
        `raw: ${raw}`,
        `multi-line:\n${pem}`,
        `json: ${JSON.stringify({ key: pem })}`,
        `escaped: ${escapeNewlines(pem)}`
      ].join('\n')
      const masked = runnerMask(registered, log)
      for (const line of pemBodyLines(pem)) {
        for (let i = 0; i + 8 <= line.length; i += 4) {
          expect(masked).not.toContain(line.slice(i, i + 8))
        }
      }
    }
  })

  it('also registers the re-wrapped lines of a key given with other line breaks', () => {
    const registered: string[] = []
    maskSigningKey(withBodyOnOneLine(keys.pkcs1), (s) => void registered.push(s))
    for (const line of pemBodyLines(keys.pkcs1)) expect(registered).toContain(line)
  })

  it('does nothing for an empty input', () => {
    const registered: string[] = []
    maskSigningKey('', (s) => void registered.push(s))
    maskSigningKey(undefined, (s) => void registered.push(s))
    expect(registered).toEqual([])
  })
})

describe('validateKeyPairId', () => {
  it('accepts CloudFront public key ids and legacy key pair ids', () => {
    expect(validateKeyPairId(' K2JCJMDEHXQW5F ')).toBe('K2JCJMDEHXQW5F')
    expect(validateKeyPairId('K36X4X2EO997HM')).toBe('K36X4X2EO997HM')
    expect(validateKeyPairId('APKAEIBAERJR2EXAMPLE')).toBe('APKAEIBAERJR2EXAMPLE')
  })

  it.each([
    ['', /is empty/],
    ['k2jcjmdehxqw5f', /must be in upper case/],
    ['E2ABCDEFGHIJKL', /looks like a distribution ID/],
    ['1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d', /is a key group ID/],
    ['AKIAIOSFODNN7EXAMPLE', /is an IAM access key ID/],
    ['my-key', /is not a CloudFront public key ID/]
  ])('rejects %j', (id, message) => {
    expect(() => validateKeyPairId(id)).toThrow(InputError)
    expect(() => validateKeyPairId(id)).toThrow(message)
  })

  it('never echoes a private key pasted into the id input', () => {
    let error: InputError | undefined
    try {
      validateKeyPairId(escapeNewlines(keys.pkcs1))
    } catch (err) {
      error = err as InputError
    }
    expect(error?.message).toMatch(/is not a key pair ID .* holds a private key/)
    expect(error?.hint).toMatch(/belongs in `signing-private-key`/)
    for (const line of pemBodyLines(keys.pkcs1)) expect(error?.message).not.toContain(line)
  })
})

describe('parseExpiresIn', () => {
  it('takes whole seconds within 5 minutes and 365 days; empty is an hour', () => {
    expect(parseExpiresIn('')).toBe(DEFAULT_EXPIRES_IN_SECONDS)
    expect(DEFAULT_EXPIRES_IN_SECONDS).toBe(3600)
    expect(parseExpiresIn(' 7200 ')).toBe(7200)
    expect(parseExpiresIn(String(MIN_EXPIRES_IN_SECONDS))).toBe(300)
    expect(parseExpiresIn(String(MAX_EXPIRES_IN_SECONDS))).toBe(31_536_000)
  })

  it.each([
    ['1.5', /whole number of seconds/],
    ['-60', /whole number of seconds/],
    ['1h', /whole number of seconds/],
    ['299', /between 300 \(5 minutes\) and 31536000 \(365 days\) seconds, got 299/],
    ['31536001', /between .* got 31536001/]
  ])('rejects %j', (raw, message) => {
    expect(() => parseExpiresIn(raw)).toThrow(InputError)
    expect(() => parseExpiresIn(raw)).toThrow(message)
  })
})

describe('parseSigningInputs', () => {
  it('returns undefined and no problem when signing is not configured', () => {
    const problems: string[] = []
    expect(parseSigningInputs({ keyPairId: '', privateKey: '', expiresIn: '3600' }, problems)).toBe(
      undefined
    )
    expect(problems).toEqual([])
  })

  it('returns the validated configuration', () => {
    const problems: string[] = []
    const config = parseSigningInputs(
      { keyPairId: KEY_PAIR_ID, privateKey: escapeNewlines(keys.pkcs8), expiresIn: '600' },
      problems
    )
    expect(problems).toEqual([])
    expect(config).toEqual({
      keyPairId: KEY_PAIR_ID,
      privateKey: keys.pkcs8,
      expiresInSeconds: 600
    })
  })

  it('reports a half-configured pair, e.g. a secret that is not available', () => {
    const problems: string[] = []
    parseSigningInputs({ keyPairId: KEY_PAIR_ID, privateKey: ' ', expiresIn: '' }, problems)
    parseSigningInputs({ keyPairId: '', privateKey: keys.pkcs1, expiresIn: '' }, problems)
    expect(problems).toEqual([
      expect.stringMatching(
        /`signing-key-pair-id` is set but `signing-private-key` is empty.*forks get no secrets/
      ),
      expect.stringMatching(/`signing-private-key` is set but `signing-key-pair-id` is empty/)
    ])
  })

  it('reports every problem at once, with its hint', () => {
    const problems: string[] = []
    const config = parseSigningInputs(
      { keyPairId: 'E2ABCDEFGHIJKL', privateKey: 'garbage', expiresIn: '10' },
      problems
    )
    expect(config).toBeUndefined()
    expect(problems).toEqual([
      expect.stringMatching(/`signed-url-expires-in` must be between/),
      expect.stringMatching(/distribution ID.*Give the ID of the public key/),
      expect.stringMatching(/not a PEM private key.*openssl genrsa/)
    ])
  })
})

describe('signatureExpiry', () => {
  it('counts whole seconds from now', () => {
    expect(signatureExpiry(3600, 1_700_000_000_999).getTime()).toBe(1_700_003_600_000)
  })
})

describe('signUrls', () => {
  const files = KEYS.map((key) => ({
    relativePath: key.slice(3),
    url: objectUrl(URL_BASE, key)
  }))

  it("equals AWS's reference signer (botocore) over the URL a client sends, for PKCS#1 and PKCS#8", () => {
    const fromPkcs1 = signUrls(files, { keyPairId: KEY_PAIR_ID, privateKey: keys.pkcs1 }, expiresAt)
    const fromPkcs8 = signUrls(files, { keyPairId: KEY_PAIR_ID, privateKey: keys.pkcs8 }, expiresAt)
    expect(fromPkcs8).toEqual(fromPkcs1)
    expect(Object.keys(fromPkcs1)).toEqual(files.map((f) => f.relativePath))

    const reference = referenceSign(
      files.map((f) => ({
        privateKey: keys.pkcs1,
        keyPairId: KEY_PAIR_ID,
        url: f.url,
        expires: EXPIRES
      }))
    )
    files.forEach((file, i) => {
      const signed = fromPkcs1[file.relativePath]
      // Same URL, same parameters and values; the SDK orders them differently from botocore.
      expect(canonical(signed)).toEqual(canonical(reference[i].signedUrl))
      expect(canonical(signed)[0]).toBe(file.url)
      // What a client sends: the WHATWG parser (fetch, browsers) keeps the URL as it is.
      expect(new URL(signed).href).toBe(signed)
      expect(signed).toMatch(/^[\x21-\x7e]+$/)
      expect(cloudFrontRefusal(signed, keys.publicKey, EXPIRES - 1)).toBeUndefined()
      expect(cloudFrontRefusal(signed, keys.publicKey, EXPIRES)).toMatch(/expired/)
    })
  })

  it('signs the canned policy of the encoded URL, verifiable with the public key', () => {
    const file = files[2]
    const signed = signUrls([file], { keyPairId: KEY_PAIR_ID, privateKey: keys.pkcs8 }, expiresAt)[
      file.relativePath
    ]
    expect(file.url).toBe(
      `${URL_BASE}/v3/mod%C3%A8le/%E6%97%A5%E6%9C%AC%E8%AA%9E%20%E3%83%88%E3%83%BC%E3%82%AF%E3%83%8A%E3%82%A4%E3%82%B6%E3%83%BC.json`
    )
    const params = new URLSearchParams(signed.slice(signed.indexOf('?') + 1))
    expect(params.get('Expires')).toBe(String(EXPIRES))
    expect(params.get('Key-Pair-Id')).toBe(KEY_PAIR_ID)
    const policy = `{"Statement":[{"Resource":"${file.url}","Condition":{"DateLessThan":{"AWS:EpochTime":${EXPIRES}}}}]}`
    const verifier = createVerify('RSA-SHA1')
    verifier.update(policy)
    expect(
      verifier.verify(keys.publicKey, decodeCloudFrontBase64(params.get('Signature') as string))
    ).toBe(true)
  })

  it('gives the same URL for a raw URL: cloudfront-signer 3.1166 encodes each segment before signing', () => {
    const raw = `${URL_BASE}/${KEYS[2]}`
    const key = { keyPairId: KEY_PAIR_ID, privateKey: keys.pkcs1 }
    const fromRaw = signUrls([{ relativePath: 'x', url: raw }], key, expiresAt).x
    const fromEncoded = signUrls(
      [{ relativePath: 'x', url: objectUrl(URL_BASE, KEYS[2]) }],
      key,
      expiresAt
    ).x
    expect(fromRaw).toBe(fromEncoded)
  })

  it('would be refused had the raw key been signed: the resource must be the encoded URL', () => {
    // botocore signs what it is given; a client then sends the encoded form of that URL.
    const [rawSigned] = referenceSign([
      {
        privateKey: keys.pkcs1,
        keyPairId: KEY_PAIR_ID,
        url: `${URL_BASE}/${KEYS[1]}`,
        expires: EXPIRES
      }
    ])
    const sent = new URL(rawSigned.signedUrl).href
    expect(sent).not.toBe(rawSigned.signedUrl)
    expect(cloudFrontRefusal(sent, keys.publicKey, EXPIRES - 1)).toMatch(/does not match/)
  })
})

describe('signedCookies', () => {
  const key = () => ({ keyPairId: KEY_PAIR_ID, privateKey: keys.pkcs8 })

  it('signs a custom policy for every URL of the version, as botocore does', () => {
    const signed = signedCookies(URL_BASE, 'models/v3', key(), expiresAt)
    expect(signed.resource).toBe(`${URL_BASE}/models/v3/*`)
    expect(signed.expiresAt).toBe(expiresAt)
    expect(Object.keys(signed.cookies)).toEqual([
      'CloudFront-Policy',
      'CloudFront-Signature',
      'CloudFront-Key-Pair-Id'
    ])
    expect(signed.cookies['CloudFront-Key-Pair-Id']).toBe(KEY_PAIR_ID)

    const policy = decodeCloudFrontBase64(signed.cookies['CloudFront-Policy']).toString('utf8')
    expect(JSON.parse(policy)).toEqual({
      Statement: [
        {
          Resource: `${URL_BASE}/models/v3/*`,
          Condition: { DateLessThan: { 'AWS:EpochTime': EXPIRES } }
        }
      ]
    })
    const verifier = createVerify('RSA-SHA1')
    verifier.update(policy)
    expect(
      verifier.verify(
        keys.publicKey,
        decodeCloudFrontBase64(signed.cookies['CloudFront-Signature'])
      )
    ).toBe(true)

    const [reference] = referenceSign([
      {
        privateKey: keys.pkcs1,
        keyPairId: KEY_PAIR_ID,
        url: signed.resource,
        expires: EXPIRES,
        policyResource: signed.resource
      }
    ])
    expect(policy).toBe(reference.policy)
    const params = new URLSearchParams(reference.signedUrl.split('?')[1])
    expect(signed.cookies['CloudFront-Policy']).toBe(params.get('Policy'))
    expect(signed.cookies['CloudFront-Signature']).toBe(params.get('Signature'))
  })

  it('gives a Cookie header that opens every shard of the version and nothing else', () => {
    const signed = signedCookies(URL_BASE, 'v3', key(), expiresAt)
    expect(signed.header).toBe(
      `CloudFront-Policy=${signed.cookies['CloudFront-Policy']}; ` +
        `CloudFront-Signature=${signed.cookies['CloudFront-Signature']}; ` +
        `CloudFront-Key-Pair-Id=${KEY_PAIR_ID}`
    )
    const cookies = { ...signed.cookies } as Record<string, string>
    const now = EXPIRES - 60
    for (const k of KEYS) {
      expect(
        cloudFrontRefusal(objectUrl(URL_BASE, k), keys.publicKey, now, cookies)
      ).toBeUndefined()
    }
    expect(cloudFrontRefusal(`${URL_BASE}/v4/model.onnx`, keys.publicKey, now, cookies)).toMatch(
      /does not cover/
    )
    expect(
      cloudFrontRefusal(`${URL_BASE}/v3/model.onnx`, keys.publicKey, EXPIRES, cookies)
    ).toMatch(/expired/)
  })

  it('encodes the prefix as the URLs do', () => {
    expect(signedCookies(URL_BASE, 'v3+cuda=12,a@b', key(), expiresAt).resource).toBe(
      `${URL_BASE}/${objectUrl('', 'v3+cuda=12,a@b').slice(1)}/*`
    )
    expect(signedCookies(URL_BASE, 'v3+cuda=12,a@b', key(), expiresAt).resource).toBe(
      `${URL_BASE}/v3%2Bcuda%3D12%2Ca%40b/*`
    )
  })
})
