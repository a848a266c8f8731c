/**
 * Issue 5 end to end: private models deployed by the committed dist/index.js, run as a GitHub
 * runner runs it, against moto_server. Pre-flight checks the CloudFront/S3 set-up, the files
 * are signed (URLs and cookies) and every published URL is verified through `url-base`.
 *
 * The emulator's CloudFront domain does not resolve, so `url-base` is moto's path-style bucket
 * URL (`<endpoint>/<bucket>`): the bucket is private, so moto answers an anonymous request 403 as
 * a distribution with restricted viewer access does, and serves a request carrying `Signature=`
 * as presigned (it does not check CloudFront signatures). Signatures are therefore checked here
 * against AWS's reference signer (botocore) and with the public key, as CloudFront checks them.
 *
 * The scenarios build on each other, in order: signed deploy (pre-flight, signing, masking) →
 * tampered copy behind `url-base` → pre-flight misconfigurations → pre-flight and verify off.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { CreatePublicKeyCommand, type CloudFrontClient } from '@aws-sdk/client-cloudfront'
import { PutBucketPolicyCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { setupWorld, type World } from '../../scripts/lib/emulator.mjs'
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
import {
  emulatorState as stateOf,
  getStored,
  sha256,
  versionSnapshot
} from '../helpers/emulator-state.js'
import { startTestWorld, writeFiles, type TestWorld } from '../helpers/emulator-world.js'
import { ALL_CHECKS, oacBucketPolicy } from '../../__fixtures__/preflight.js'
import { referenceSign } from '../helpers/reference-signer.js'
import { expectExit, runAction, type RunActionResult } from '../helpers/run-action.js'

const BUCKET = 'private-models'
/** Serves a tampered copy of a version behind `url-base`: the deploy itself goes to BUCKET. */
const TAMPERED_BUCKET = 'private-models-tampered'
/** Its bucket policy lets another distribution read. */
const MISSCOPED_BUCKET = 'private-models-misscoped'
const PREFIX = 'v1'
const SPACED = 'weights/my model – é.safetensors'
const JAPANESE = 'tokenizer/日本語 vocab.json'
const MASK = '::add-mask::'

interface LocalFile {
  rel: string
  bytes: Buffer
}

/** Small files; two keys with spaces and non-ASCII characters. */
const FILES: LocalFile[] = [
  { rel: 'model.onnx', bytes: randomBytes(64 * 1024) },
  { rel: SPACED, bytes: randomBytes(32 * 1024) },
  { rel: JAPANESE, bytes: Buffer.from(JSON.stringify({ vocab: ['a', 'ü', '語'] })) },
  { rel: 'config.json', bytes: Buffer.from('{"layers":2}') }
]

let moto: TestWorld | undefined
let world: World
let s3: S3Client
let cloudfront: CloudFrontClient
let workspace: string
let keys: TestKeyPair
/** The public key the deploys sign for, and the key group holding it that the distribution trusts. */
let signingKeyId: string
let signingGroupId: string
/** `url-base` for the bucket the action deploys to. */
let urlBase: string
let signedRun: RunActionResult | undefined
/** Epoch seconds when the signed run started: its signatures expire an hour after. */
let signedRunStartedAt: number
/** A world whose bucket policy lets another distribution (the main world's) read. */
let misscoped: World

type Inputs = Record<string, string | number | boolean | undefined>

const keyOf = (rel: string, prefix = PREFIX) => `${prefix}/${rel}`
/** The URL a client sends: each key segment percent-encoded, written here independently of src/. */
const urlOf = (base: string, key: string) =>
  `${base}/${key.split('/').map(encodeURIComponent).join('/')}`

/** The deploy of a private model: signed, verified through `url-base`, pre-flight on. */
function deploy(inputs: Inputs = {}) {
  return runAction({
    cwd: workspace,
    endpoint: moto!.emulator.endpoint,
    inputs: {
      artifacts: 'models/**',
      bucket: BUCKET,
      'version-prefix': PREFIX,
      'distribution-id': world.distributionId,
      'url-base': urlBase,
      'signing-key-pair-id': signingKeyId,
      // As a secret pasted on one line: each newline written as the two characters `\n`.
      'signing-private-key': escapeNewlines(keys.pkcs1),
      ...inputs
    }
  })
}

/** The body of a `### <heading>` section of the job summary, or undefined when absent. */
function summarySection(summary: string, heading: string): string | undefined {
  const lines = summary.split('\n')
  const start = lines.indexOf(`### ${heading}`)
  if (start < 0) return undefined
  const end = lines.findIndex((line, i) => i > start && /^#{1,3} /.test(line))
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n')
}

/** The cells of a Markdown table's body rows (header and separator left out). */
function tableRows(section: string): string[][] {
  return section
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .slice(2)
    .map((line) =>
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim())
    )
}

/** Query parameter of a signed URL, as written (no decoding: CloudFront's base64 has no `%`). */
function queryParam(url: string, name: string): string | undefined {
  const query = url.slice(url.indexOf('?') + 1)
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=')
    if (pair.slice(0, eq) === name) return pair.slice(eq + 1)
  }
  return undefined
}

/**
 * The key is masked (every line of it and the one-line form given) before the action prints
 * anything else, and neither it nor any signature, policy or cookie value is ever shown.
 */
function expectKeyMaskedFirstAndSecretsNeverShown(
  r: RunActionResult,
  givenKey: string,
  pem: string,
  signed: string[]
) {
  const lines = r.stdout.split('\n')
  const firstOther = lines.findIndex((line) => line !== '' && !line.startsWith(MASK))
  const lastMask = lines.reduce((last, line, i) => (line.startsWith(MASK) ? i : last), -1)
  expect(firstOther).toBeGreaterThan(0)
  expect(lastMask).toBeLessThan(firstOther)
  const masked = new Set(lines.filter((l) => l.startsWith(MASK)).map((l) => l.slice(MASK.length)))
  expect(masked.has(givenKey)).toBe(true)
  for (const line of pemBodyLines(pem)) expect(masked.has(line)).toBe(true)

  const shown = [
    lines.filter((l) => !l.startsWith(MASK)).join('\n'),
    r.stderr,
    r.summary,
    JSON.stringify(r.state)
  ].join('\n')
  expect(shown).not.toContain(givenKey)
  for (const line of pemBodyLines(pem)) expect(shown).not.toContain(line)
  expect(shown).not.toMatch(/PRIVATE KEY-----[^\n]/)
  // A `Signature=` may only appear redacted.
  expect(shown).not.toMatch(/Signature=(?!\[REDACTED\])/i)
  expect(signed.length).toBeGreaterThan(0)
  for (const value of signed) expect(shown).not.toContain(value)
}

/** The signature, policy and cookie values a run produced (what must never be shown). */
function signedValues(r: RunActionResult): string[] {
  const urls = Object.values(JSON.parse(r.outputs['signed-urls']) as Record<string, string>)
  const cookies = JSON.parse(r.outputs['signed-cookies']) as Record<string, string>
  return [
    ...urls.map((url) => queryParam(url, 'Signature')!),
    cookies['CloudFront-Signature'],
    cookies['CloudFront-Policy']
  ]
}

async function put(bucket: string, key: string, body: Buffer, sha?: string) {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: body,
      ...(sha ? { Metadata: { sha256: sha } } : {})
    })
  )
}

/** An unsigned deploy to the misscoped world, unverified: its CloudFront domain does not resolve. */
const deployToMisscoped = (inputs: Inputs = {}) =>
  deploy({
    bucket: MISSCOPED_BUCKET,
    'distribution-id': misscoped.distributionId,
    'url-base': undefined,
    'signing-key-pair-id': undefined,
    'signing-private-key': undefined,
    verify: false,
    ...inputs
  })

const emulatorState = (bucket: string, distributionId: string) =>
  stateOf(s3, cloudfront, bucket, distributionId)

/** Uploads a public key and returns its id (K…, as AWS's: the emulator is patched for it). */
async function createPublicKey(name: string, pem: string): Promise<string> {
  const { PublicKey } = await cloudfront.send(
    new CreatePublicKeyCommand({
      PublicKeyConfig: { CallerReference: name, Name: name, EncodedKey: pem }
    })
  )
  return PublicKey!.Id!
}

beforeAll(async () => {
  keys = generateSigningKeys()
  moto = await startTestWorld({
    bucket: BUCKET,
    signing: { publicKeyPem: publicKeyPem(keys) },
    requireDist: true,
    workspacePrefix: 'private-models-'
  })
  ;({ world, s3, cloudfront, workspace } = moto)
  signingKeyId = world.publicKeyId!
  signingGroupId = world.keyGroupId!
  urlBase = `${moto.emulator.endpoint}/${BUCKET}`
  await writeFiles(
    join(workspace, 'models'),
    Object.fromEntries(FILES.map((f) => [f.rel, f.bytes]))
  )
}, 60_000)

afterAll(() => moto?.stop())

describe('private models through dist/index.js against moto_server', () => {
  it('1. a correctly configured private world passes pre-flight: every check ok, no warning', async () => {
    signedRunStartedAt = Math.floor(Date.now() / 1000)
    signedRun = await deploy()
    const r = signedRun
    expectExit(r, 0)

    const section = summarySection(r.summary, 'Pre-flight')
    expect(section).toBeDefined()
    const rows = tableRows(section!)
    expect(rows.map(([check, result]) => [check, result])).toEqual(
      ALL_CHECKS.map((check) => [check, '✅ ok'])
    )
    // The checks looked at this world: its OAC, its distribution's ARN, its key group.
    expect(section).toContain(world.oacId)
    expect(section).toContain(world.distributionArn)
    expect(section).toContain(signingGroupId)
    expect(section).not.toContain('Fix:')
    expect(r.warnings).toEqual([])
    expect(summarySection(r.summary, 'Warnings')).toBeUndefined()
    expect(r.errors).toEqual([])
  })

  it('2. signs every URL as botocore does, issues cookies for the version, verifies, and never shows a secret', async () => {
    expect(signedRun).toBeDefined()
    const r = signedRun!
    const { outputs } = r

    // Uploaded byte for byte, with the SHA-256 verification compares against.
    expect(outputs['uploaded']).toBe(String(FILES.length))
    for (const f of FILES) {
      const stored = await getStored(s3, BUCKET, keyOf(f.rel))
      expect(stored.bytes.equals(f.bytes)).toBe(true)
      expect(stored.metadata['sha256']).toBe(sha256(f.bytes))
    }
    const manifestBody = (await getStored(s3, BUCKET, `${PREFIX}/manifest.json`)).bytes

    // Unsigned URLs under url-base, as `urls` and `manifest-url` give them.
    const unsigned: Record<string, string> = Object.fromEntries([
      ...FILES.map((f) => [f.rel, urlOf(urlBase, keyOf(f.rel))]),
      ['manifest.json', urlOf(urlBase, `${PREFIX}/manifest.json`)]
    ])
    expect(JSON.parse(outputs['urls'])).toEqual(
      Object.fromEntries(FILES.map((f) => [f.rel, unsigned[f.rel]]))
    )
    expect(outputs['manifest-url']).toBe(unsigned['manifest.json'])
    expect(unsigned[SPACED]).toBe(
      `${urlBase}/${PREFIX}/weights/my%20model%20%E2%80%93%20%C3%A9.safetensors`
    )

    // One expiry for everything: the default hour from the run.
    const expiresAt = new Date(outputs['signed-urls-expire-at'])
    expect(expiresAt.toISOString()).toBe(outputs['signed-urls-expire-at'])
    const expires = expiresAt.getTime() / 1000
    expect(Number.isInteger(expires)).toBe(true)
    expect(expires).toBeGreaterThanOrEqual(signedRunStartedAt + 3600)
    expect(expires).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 3600)

    // signed-urls: every file and the manifest, each exactly botocore's URL for it.
    const signedUrls = JSON.parse(outputs['signed-urls']) as Record<string, string>
    expect(Object.keys(signedUrls).sort()).toEqual(Object.keys(unsigned).sort())
    const rels = Object.keys(unsigned)
    const reference = referenceSign(
      rels.map((rel) => ({
        privateKey: keys.pkcs1,
        keyPairId: signingKeyId,
        url: unsigned[rel],
        expires
      }))
    )
    // The same URL, parameters and values (the SDK orders the parameters unlike botocore).
    rels.forEach((rel, i) =>
      expect(canonical(signedUrls[rel])).toEqual(canonical(reference[i].signedUrl))
    )

    const now = Math.floor(Date.now() / 1000)
    for (const rel of rels) {
      const url = signedUrls[rel]
      expect(url.startsWith(`${unsigned[rel]}?`)).toBe(true)
      expect(queryParam(url, 'Expires')).toBe(String(expires))
      expect(queryParam(url, 'Key-Pair-Id')).toBe(signingKeyId)
      // CloudFront's decision: the signature verifies with the public key over this very URL …
      expect(cloudFrontRefusal(url, keys.publicKey, now)).toBeUndefined()
      // … and not for another file, nor after expiry, nor without it.
      const other = rel === 'config.json' ? 'model.onnx' : 'config.json'
      expect(
        cloudFrontRefusal(url.replace(unsigned[rel], unsigned[other]), keys.publicKey, now)
      ).toMatch(/AccessDenied/)
      expect(cloudFrontRefusal(url, keys.publicKey, expires)).toMatch(/expired/)
      expect(cloudFrontRefusal(unsigned[rel], keys.publicKey, now)).toMatch(/MissingKey/)
    }
    // The signed URLs fetch the stored bytes; the unsigned ones are refused.
    for (const f of [...FILES, { rel: 'manifest.json', bytes: manifestBody }]) {
      const response = await fetch(signedUrls[f.rel])
      expect(response.status).toBe(200)
      expect(Buffer.from(await response.arrayBuffer()).equals(f.bytes)).toBe(true)
      expect((await fetch(unsigned[f.rel], { method: 'HEAD' })).status).toBe(403)
    }

    // signed-cookies: the three cookies, a custom policy on <url-base>/<prefix>/*, as botocore signs it.
    const cookies = JSON.parse(outputs['signed-cookies']) as Record<string, string>
    expect(Object.keys(cookies).sort()).toEqual(
      ['CloudFront-Key-Pair-Id', 'CloudFront-Policy', 'CloudFront-Signature'].sort()
    )
    expect(cookies['CloudFront-Key-Pair-Id']).toBe(signingKeyId)
    const resource = `${urlBase}/${PREFIX}/*`
    const policy = decodeCloudFrontBase64(cookies['CloudFront-Policy']).toString('utf8')
    expect(JSON.parse(policy)).toEqual({
      Statement: [{ Resource: resource, Condition: { DateLessThan: { 'AWS:EpochTime': expires } } }]
    })
    const [cookieReference] = referenceSign([
      {
        privateKey: keys.pkcs1,
        keyPairId: signingKeyId,
        url: unsigned['model.onnx'],
        expires,
        policyResource: resource
      }
    ])
    expect(policy).toBe(cookieReference.policy)
    expect(cookies['CloudFront-Policy']).toBe(queryParam(cookieReference.signedUrl, 'Policy'))
    expect(cookies['CloudFront-Signature']).toBe(queryParam(cookieReference.signedUrl, 'Signature'))
    for (const rel of rels) {
      expect(cloudFrontRefusal(unsigned[rel], keys.publicKey, now, cookies)).toBeUndefined()
    }
    expect(
      cloudFrontRefusal(urlOf(urlBase, 'v2/model.onnx'), keys.publicKey, now, cookies)
    ).toMatch(/does not cover/)

    // Verified through url-base: the signed URLs served size and SHA-256, unsigned ones 403.
    expect(outputs['verified']).toBe('true')
    const verification = summarySection(r.summary, 'Verification')
    expect(verification).toContain(`All ${rels.length} URL(s)`)
    expect(tableRows(verification!)).toHaveLength(rels.length)
    for (const row of tableRows(verification!)) expect(row.slice(1)).toEqual(['200', '✅'])

    // The summary shows when the signatures expire, never a signature, key or cookie value.
    const signing = summarySection(r.summary, 'Signed URLs')
    expect(signing).toContain(outputs['signed-urls-expire-at'])
    expect(signing).toContain(`${urlBase}/${PREFIX}/`)
    expect(r.summary).not.toContain('Signature')
    expect(r.summary).not.toContain('CloudFront-Policy')

    expectKeyMaskedFirstAndSecretsNeverShown(
      r,
      escapeNewlines(keys.pkcs1),
      keys.pkcs1,
      signedValues(r)
    )
  })

  it('3. a tampered copy behind url-base fails verification, naming each URL and what differed', async () => {
    // Another private bucket serves version v2 with the same keys: one file with other bytes (and
    // their own SHA-256), one without x-amz-meta-sha256, a manifest that is not this run's; the
    // rest are faithful copies.
    await setupWorld(moto!.emulator.endpoint, { bucket: TAMPERED_BUCKET })
    const tamperedBase = `${moto!.emulator.endpoint}/${TAMPERED_BUCKET}`
    const prefix = 'v2'
    const forged = randomBytes(FILES[0].bytes.length)
    await put(TAMPERED_BUCKET, keyOf('model.onnx', prefix), forged, sha256(forged))
    await put(TAMPERED_BUCKET, keyOf(SPACED, prefix), FILES[1].bytes)
    for (const f of FILES.slice(2)) {
      await put(TAMPERED_BUCKET, keyOf(f.rel, prefix), f.bytes, sha256(f.bytes))
    }
    const oldManifest = Buffer.from('{"files":[]}')
    await put(TAMPERED_BUCKET, `${prefix}/manifest.json`, oldManifest, sha256(oldManifest))
    const tamperedBefore = await versionSnapshot(s3, TAMPERED_BUCKET)

    const r = await deploy({
      'version-prefix': prefix,
      'url-base': tamperedBase,
      // PKCS#8 this time, escaped the same way.
      'signing-private-key': escapeNewlines(keys.pkcs8)
    })
    expectExit(r, 1)

    // The upload itself succeeded: the deploy bucket holds v2 and its manifest.
    for (const f of FILES) {
      const stored = await getStored(s3, BUCKET, keyOf(f.rel, prefix))
      expect(stored.bytes.equals(f.bytes)).toBe(true)
      expect(stored.metadata['sha256']).toBe(sha256(f.bytes))
    }
    const manifest = await getStored(s3, BUCKET, `${prefix}/manifest.json`)
    expect(manifest.metadata['sha256']).toBe(manifest.sha256)
    // The action only read the tampered bucket.
    expect(await versionSnapshot(s3, TAMPERED_BUCKET)).toEqual(tamperedBefore)

    expect(r.outputs['verified']).toBe('false')
    expect(r.errors).toHaveLength(1)
    const [error] = r.errors
    expect(error).toContain('Verification failed for 3 of 5')
    const failing = {
      'model.onnx': `${urlOf(tamperedBase, keyOf('model.onnx', prefix))}: x-amz-meta-sha256 ${sha256(forged)}, expected ${sha256(FILES[0].bytes)}`,
      [SPACED]: `${urlOf(tamperedBase, keyOf(SPACED, prefix))}: no x-amz-meta-sha256 header, expected ${sha256(FILES[1].bytes)}`,
      'manifest.json': `${urlOf(tamperedBase, `${prefix}/manifest.json`)}: Content-Length ${oldManifest.length}, expected ${manifest.bytes.length}; x-amz-meta-sha256 ${sha256(oldManifest)}, expected ${manifest.sha256}`
    }
    for (const line of Object.values(failing)) expect(error).toContain(line)
    // The faithful copies are not named; no signature is.
    for (const f of FILES.slice(2)) {
      expect(error).not.toContain(urlOf(tamperedBase, keyOf(f.rel, prefix)))
    }
    expect(error).not.toMatch(/Signature=|Expires=|Key-Pair-Id=/)
    expect(error).toMatch(/not uploaded by this action/) // the hint for the missing checksum

    // The summary's Verification section lists the failures first, with what differed.
    const verification = summarySection(r.summary, 'Verification')
    expect(verification).toContain('❌ 3 of 5 URL(s)')
    const rows = tableRows(verification!)
    expect(
      rows
        .slice(0, 3)
        .map(([file]) => file.replace(/\\/g, ''))
        .sort()
    ).toEqual(Object.keys(failing).sort())
    expect(rows.slice(3).map(([, status, result]) => [status, result])).toEqual([
      ['200', '✅'],
      ['200', '✅']
    ])
    const byFile = new Map(rows.map((row) => [row[0].replace(/\\/g, ''), row]))
    expect(byFile.get('model.onnx')![2]).toContain(`x-amz-meta-sha256 ${sha256(forged)}`)
    expect(byFile.get(SPACED)![2]).toContain('no x-amz-meta-sha256 header')

    // The failing run still handed over its signed URLs, and kept them secret.
    expect(Object.keys(JSON.parse(r.outputs['signed-urls'])).sort()).toEqual(
      [...FILES.map((f) => f.rel), 'manifest.json'].sort()
    )
    expectKeyMaskedFirstAndSecretsNeverShown(
      r,
      escapeNewlines(keys.pkcs8),
      keys.pkcs8,
      signedValues(r)
    )
  })

  it('4a. pre-flight: a key pair id in no trusted key group fails before any upload, with the fix', async () => {
    const keyId = await createPublicKey('untrusted-key', publicKeyPem(generateSigningKeys()))
    const before = await emulatorState(BUCKET, world.distributionId)

    const r = await deploy({ 'version-prefix': 'v3', 'signing-key-pair-id': keyId })
    expectExit(r, 1)
    expect(await emulatorState(BUCKET, world.distributionId)).toEqual(before)
    expect(r.errors).toHaveLength(1)
    const [error] = r.errors
    expect(error).toContain('nothing was uploaded')
    expect(error).toContain(`Public key ${keyId} is not in any key group`)
    expect(error).toContain('403')
    expect(error).toContain(`Add public key ${keyId} to key group ${signingGroupId}`)
    // Only the signing check failed.
    expect(error).toContain('1 problem(s)')
    // The job summary shows every check, the failed one with its fix.
    expect(r.summary).toContain('## Model CDN deploy: stopped by pre-flight')
    expect(r.summary).toMatch(/\| signed-urls \| ❌ error \| .*\*\*Fix:\*\*/)
    expect(r.summary).toMatch(/\| bucket-policy \| ✅ ok \|/)
  })

  it('4b. pre-flight: a bucket policy scoped to another distribution fails before any upload, with the policy to set', async () => {
    misscoped = await setupWorld(moto!.emulator.endpoint, { bucket: MISSCOPED_BUCKET })
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: MISSCOPED_BUCKET,
        Policy: oacBucketPolicy(MISSCOPED_BUCKET, world.distributionArn)
      })
    )
    // Something already published, so "unchanged" is checked against real objects.
    await put(MISSCOPED_BUCKET, 'v0/model.onnx', FILES[0].bytes, sha256(FILES[0].bytes))
    const before = await emulatorState(MISSCOPED_BUCKET, misscoped.distributionId)

    const r = await deployToMisscoped()
    expectExit(r, 1)
    expect(await emulatorState(MISSCOPED_BUCKET, misscoped.distributionId)).toEqual(before)
    expect(r.errors).toHaveLength(1)
    const [error] = r.errors
    expect(error).toContain('nothing was uploaded')
    expect(error).toContain('bucket-policy')
    expect(error).toContain(`only for ${world.distributionArn}`)
    expect(error).toContain('AccessDenied')
    // The fix: the statement with this distribution's ARN.
    expect(error).toContain(
      JSON.stringify({ StringEquals: { 'AWS:SourceArn': misscoped.distributionArn } })
    )
  })

  it('5a. preflight: false skips the checks: the misconfigured world deploys', async () => {
    expect(misscoped).toBeDefined()
    const r = await deployToMisscoped({ preflight: false })
    expectExit(r, 0)
    expect(r.outputs['uploaded']).toBe(String(FILES.length))
    for (const f of FILES) {
      const stored = await getStored(s3, MISSCOPED_BUCKET, keyOf(f.rel))
      expect(stored.bytes.equals(f.bytes)).toBe(true)
    }
    expect(summarySection(r.summary, 'Pre-flight')).toBeUndefined()
    expect(r.stdout).not.toMatch(/pre-flight/i)
    expect(r.outputs['verified']).toBe('')
    expect(summarySection(r.summary, 'Verification')).toBeUndefined()
  })

  it('5b. preflight: false with signing still signs and verifies', async () => {
    const r = await deploy({ 'version-prefix': 'v5', preflight: false })
    expectExit(r, 0)
    expect(summarySection(r.summary, 'Pre-flight')).toBeUndefined()
    expect(r.stdout).not.toMatch(/pre-flight/i)
    expect(r.outputs['verified']).toBe('true')
    expect(Object.keys(JSON.parse(r.outputs['signed-urls']))).toHaveLength(FILES.length + 1)
    expect(summarySection(r.summary, 'Verification')).toContain(`All ${FILES.length + 1} URL(s)`)
  })

  it('5c. verify: false signs but verifies nothing: verified is empty', async () => {
    const r = await deploy({ 'version-prefix': 'v6', verify: false })
    expectExit(r, 0)
    expect(tableRows(summarySection(r.summary, 'Pre-flight')!).length).toBe(8)
    expect(r.outputs['verified']).toBe('')
    expect(summarySection(r.summary, 'Verification')).toBeUndefined()
    expect(r.stdout).not.toMatch(/Verified \d+ URL/)
    const signed = JSON.parse(r.outputs['signed-urls']) as Record<string, string>
    expect(Object.keys(signed)).toHaveLength(FILES.length + 1)
    expect(r.outputs['signed-urls-expire-at']).not.toBe('')
    for (const f of FILES) {
      expect((await getStored(s3, BUCKET, keyOf(f.rel, 'v6'))).sha256).toBe(sha256(f.bytes))
    }
  })
})
