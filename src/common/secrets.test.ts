import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { AwsError, explainAwsError, failureMessage, InputError } from './errors.js'
import { maskCredentials, maskSecret, redact } from './secrets.js'
import { REPO_ROOT } from '../../__tests__/helpers/run-action.js'

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
const TOKEN = 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexample+token='
const SIGNATURE = 'fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024'
const PEM = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEAuexampleexampleexampleexampleexampleexampleexampleAB',
  'c2VjcmV0LWtleS1saW5lLXR3by1leGFtcGxlLWV4YW1wbGUtZXhhbXBsZS1leGFtcA==',
  '-----END RSA PRIVATE KEY-----'
].join('\n')

function recorder(): { masked: string[]; setSecret: (s: string) => void } {
  const masked: string[] = []
  return { masked, setSecret: (s) => void masked.push(s) }
}

describe('maskCredentials', () => {
  it('masks the key id, the secret and the session token, and nothing else', () => {
    const { masked, setSecret } = recorder()
    maskCredentials(
      {
        AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE',
        AWS_SECRET_ACCESS_KEY: SECRET,
        AWS_SESSION_TOKEN: TOKEN,
        AWS_REGION: 'us-east-1',
        GITHUB_TOKEN: undefined
      },
      setSecret
    )
    expect(masked).toEqual(['ASIAEXAMPLE', SECRET, TOKEN])
  })

  it('skips variables that are unset or empty', () => {
    const { masked, setSecret } = recorder()
    maskCredentials({ AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '  ' }, setSecret)
    expect(masked).toEqual([])
  })
})

describe('maskSecret', () => {
  it('masks a multi-line value whole and line by line, CRLF included', () => {
    const { masked, setSecret } = recorder()
    maskSecret(`${PEM.replace(/\n/g, '\r\n')}\r\n`, setSecret)
    // The runner matches one log line at a time: every line must be registered on its own.
    for (const line of PEM.split('\n')) expect(masked).toContain(line)
    expect(masked).toContain(PEM.replace(/\n/g, '\r\n'))
    expect(masked.every((m) => m !== '' && m === m.trim())).toBe(true)
    expect(new Set(masked).size).toBe(masked.length)
  })

  it('masks a one-line value once, without surrounding whitespace', () => {
    const { masked, setSecret } = recorder()
    maskSecret(` ${SECRET}\n`, setSecret)
    expect(masked).toEqual([SECRET])
  })
})

describe('redact', () => {
  it('removes the signature, credential and token of a presigned S3 URL, keeping the rest', () => {
    const url =
      'https://models.s3.us-east-1.amazonaws.com/v1/model.onnx?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
      '&X-Amz-Credential=ASIAEXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request' +
      `&X-Amz-Date=20250101T000000Z&X-Amz-Expires=900&X-Amz-Security-Token=${encodeURIComponent(TOKEN)}` +
      `&X-Amz-Signature=${SIGNATURE}&X-Amz-SignedHeaders=host`
    const out = redact(`GET ${url} failed`)
    expect(out).not.toContain(SIGNATURE)
    expect(out).not.toContain('ASIAEXAMPLE')
    expect(out).not.toContain(encodeURIComponent(TOKEN))
    expect(out).toBe(
      'GET https://models.s3.us-east-1.amazonaws.com/v1/model.onnx?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
        '&X-Amz-Credential=[REDACTED]&X-Amz-Date=20250101T000000Z&X-Amz-Expires=900' +
        '&X-Amz-Security-Token=[REDACTED]&X-Amz-Signature=[REDACTED]&X-Amz-SignedHeaders=host failed'
    )
  })

  it('removes the signature, key pair id and policy of a signed CloudFront URL', () => {
    const url =
      'https://d111111abcdef8.cloudfront.net/v1/model.onnx?Expires=1767225600' +
      '&Policy=eyJTdGF0ZW1lbnQiOlt7IlJlc291cmNlIjoiKiJ9XX0_' +
      '&Signature=nitfHRCrtziwO2HwPfWw~yYDhUF5EwRunQA-j19DzZrvDh6hQ73lDx~-ar3UocvvRQVw6EkC~GdpGQyyOSKQim' +
      '&Key-Pair-Id=K2JCJMDEHXQW5F'
    expect(redact(url)).toBe(
      'https://d111111abcdef8.cloudfront.net/v1/model.onnx?Expires=1767225600' +
        '&Policy=[REDACTED]&Signature=[REDACTED]&Key-Pair-Id=[REDACTED]'
    )
  })

  it('removes Authorization and security-token header values, quoted or not', () => {
    const header = `AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=${SIGNATURE}`
    const plain = redact(`Authorization: ${header}\nx-amz-security-token: ${TOKEN}\nHost: s3`)
    expect(plain).toBe('Authorization: [REDACTED]\nx-amz-security-token: [REDACTED]\nHost: s3')
    const json = redact(
      JSON.stringify({ headers: { authorization: header, 'x-amz-security-token': TOKEN } })
    )
    expect(json).not.toContain(SIGNATURE)
    expect(json).not.toContain('ASIAEXAMPLE')
    expect(json).not.toContain(TOKEN)
    expect(json).toContain('"authorization":"[REDACTED]"')
  })

  it('removes the signing material of a SignatureDoesNotMatch error, as XML and as fields', () => {
    const canonical = `PUT\n/v1/model.onnx\n\nhost:s3.amazonaws.com\nx-amz-security-token:${TOKEN}\n\nhost;x-amz-security-token\nUNSIGNED-PAYLOAD`
    const xml =
      '<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message>' +
      '<AWSAccessKeyId>ASIAEXAMPLE</AWSAccessKeyId>' +
      `<StringToSign>AWS4-HMAC-SHA256\n20250101T000000Z\n20250101/us-east-1/s3/aws4_request\n${SIGNATURE.slice(0, 20)}</StringToSign>` +
      `<SignatureProvided>${SIGNATURE}</SignatureProvided>` +
      '<StringToSignBytes>41 57 53 34</StringToSignBytes>' +
      `<CanonicalRequest>${canonical}</CanonicalRequest>` +
      '<CanonicalRequestBytes>50 55 54</CanonicalRequestBytes></Error>'
    const out = redact(xml)
    for (const secret of [
      SIGNATURE,
      SIGNATURE.slice(0, 20),
      TOKEN,
      'ASIAEXAMPLE',
      '41 57',
      '50 55'
    ]) {
      expect(out).not.toContain(secret)
    }
    expect(out).toContain('<Code>SignatureDoesNotMatch</Code>')
    expect(out).toContain('Check your key and signing method.')
    expect(out).toContain('<SignatureProvided>[REDACTED]</SignatureProvided>')

    const fields = redact(
      JSON.stringify({ StringToSign: 'AWS4-HMAC-SHA256\n…', SignatureProvided: SIGNATURE }) +
        `\nCanonicalRequest: PUT /v1/model.onnx`
    )
    expect(fields).not.toContain(SIGNATURE)
    expect(fields).not.toContain('AWS4-HMAC-SHA256')
    expect(fields).not.toContain('PUT /v1')
  })

  it('removes a private key, and the rest of the text after an unterminated one', () => {
    expect(redact(`key:\n${PEM}\nend`)).toBe('key:\n[REDACTED PRIVATE KEY]\nend')
    expect(redact(`"${PEM.replace(/\n/g, '\\n')}"`)).toBe('"[REDACTED PRIVATE KEY]"')
    const pkcs8 = PEM.replace(/RSA PRIVATE/g, 'ENCRYPTED PRIVATE')
    expect(redact(pkcs8)).toBe('[REDACTED PRIVATE KEY]')
    expect(redact(`cut: ${PEM.slice(0, 80)}`)).toBe('cut: [REDACTED PRIVATE KEY]')
  })

  it('leaves ordinary messages alone', () => {
    const messages = [
      'The specified bucket does not exist',
      'AuthorizationHeaderMalformed: the region us-east-1 is wrong; expecting eu-west-1',
      'Failed uploading models/a b.onnx to s3://models/v1/a b.onnx: AWS said SlowDown (HTTP 503)',
      'Invalidation path "/v1/*" is fine; policy and signature are words here'
    ]
    for (const m of messages) expect(redact(m)).toBe(m)
  })
})

describe('errors apply redact', () => {
  it('explainAwsError keeps the code and hint but not the signing material', () => {
    const sdkError = Object.assign(
      new Error(
        `The request signature we calculated does not match. <SignatureProvided>${SIGNATURE}</SignatureProvided> https://b.s3.amazonaws.com/k?X-Amz-Security-Token=${TOKEN}`
      ),
      { name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } }
    )
    const err = explainAwsError(sdkError, { action: 'uploading a to s3://b/k', bucket: 'b' })
    expect(err).toBeInstanceOf(AwsError)
    const message = failureMessage(err)
    expect(message).not.toContain(SIGNATURE)
    expect(message).not.toContain(TOKEN)
    expect(message).toContain('SignatureDoesNotMatch (HTTP 403)')
    expect(message).toContain('configure-aws-credentials')
  })

  it('failureMessage redacts errors that were never wrapped', () => {
    expect(failureMessage(new Error(`boom\n${PEM}`))).toBe('boom\n[REDACTED PRIVATE KEY]')
    expect(failureMessage(`Authorization: Bearer ${TOKEN}`)).toBe('Authorization: [REDACTED]')
    expect(failureMessage(new InputError('bad', 'fix it'))).toBe('bad\nfix it')
  })
})

describe('no shell', () => {
  it('no source module can spawn a process, so no input text ever reaches a shell', () => {
    const src = join(REPO_ROOT, 'src')
    const offenders = readdirSync(src, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .filter((f) =>
        /['"](node:)?child_process['"]|\b(execa|shelljs|@actions\/exec)\b/.test(
          readFileSync(join(src, f), 'utf8')
        )
      )
    expect(offenders).toEqual([])
  })
})
