/**
 * Bad input through the committed dist/index.js against moto_server: every case must fail with
 * exit code 1 and one `::error::` that names the problem and the fix, and must change NOTHING —
 * no object or object version, no invalidation, no multipart upload, no bucket. Then secrets:
 * credentials are masked before the first line the action prints, and never appear in the log,
 * the outputs or the summary, whether the deploy succeeds or fails.
 */
import { realpathSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import type { S3Client } from '@aws-sdk/client-s3'
import type { World } from '../../scripts/lib/emulator.mjs'
import { emulatorState as stateOf } from '../helpers/emulator-state.js'
import { startTestWorld, type TestWorld } from '../helpers/emulator-world.js'
import {
  diagnostics,
  expectFailure,
  expectSuccess,
  runAction,
  type RunActionResult
} from '../helpers/run-action.js'

const GiB = 1024 ** 3
const BUCKET = 'model-cdn-bad-input'
/** A version published by beforeAll, so "unchanged" is checked against real objects. */
const RELEASED = 'released'
const RELEASED_FILE = 'model.onnx'

type Inputs = Record<string, string | number | boolean | undefined>
/** File contents, a symlink, or a sparse file of that many bytes (no data written to disk). */
type Entry = string | { symlinkTo: () => string } | { sparseBytes: number }

interface BadInput {
  name: string
  /** Files under the case's own directory. */
  files?: Record<string, Entry>
  /** Replaces the defaults: artifacts = `<dir>/**`, a fresh version prefix, invalidate: all. */
  inputs?: (dir: string) => Inputs
  /** What the `::error::` must say: the problem … */
  problem: RegExp
  /** … and what to do about it. */
  fix?: RegExp
}

let moto: TestWorld | undefined
let world: World
let s3: S3Client
let cloudfront: CloudFrontClient
let workspace: string
/** A directory next to the workspace holding a file nothing may publish. */
let outside: string
let caseCount = 0

/** Everything a deploy could have changed in the emulator. */
const emulatorState = () => stateOf(s3, cloudfront, BUCKET, world.distributionId)

async function writeEntry(path: string, entry: Entry) {
  await mkdir(dirname(path), { recursive: true })
  if (typeof entry === 'string') await writeFile(path, entry)
  else if ('symlinkTo' in entry) await symlink(entry.symlinkTo(), path)
  else {
    await writeFile(path, '')
    await truncate(path, entry.sparseBytes)
  }
}

function deploy(inputs: Inputs, env: Record<string, string | undefined> = {}) {
  return runAction({
    cwd: workspace,
    endpoint: moto!.emulator.endpoint,
    env,
    inputs: {
      bucket: BUCKET,
      'distribution-id': world.distributionId,
      // Anything that got through would be invalidated, so "no invalidation" proves something.
      invalidate: 'all',
      // The emulator's CloudFront domain does not resolve.
      verify: false,
      ...inputs
    }
  })
}

beforeAll(async () => {
  moto = await startTestWorld({
    bucket: BUCKET,
    requireDist: true,
    workspacePrefix: 'model-cdn-bad-input-'
  })
  ;({ world, s3, cloudfront, workspace } = moto)
  outside = realpathSync(await mkdtemp(join(tmpdir(), 'model-cdn-outside-')))
  await writeFile(join(outside, 'credentials.bin'), 'must never be published')

  await writeEntry(join(workspace, RELEASED, RELEASED_FILE), 'released bytes')
  const r = await deploy({ artifacts: `${RELEASED}/**`, 'version-prefix': RELEASED })
  if (r.exitCode !== 0)
    throw new Error(`Publishing the released version failed:\n${diagnostics(r)}`)
}, 60_000)

afterAll(async () => {
  await moto?.stop()
  if (outside) await rm(outside, { recursive: true, force: true })
})

const longDir = (c: string) => c.repeat(250)

const cases: BadInput[] = [
  {
    name: 'globs matching nothing',
    files: { 'notes.txt': 'not a model' },
    inputs: (dir) => ({ artifacts: `${dir}/**/*.onnx\n${dir}/*.gguf` }),
    problem: /No files matched the artifact patterns:\n- case-\d+\/\*\*\/\*\.onnx/,
    fix: /Patterns are relative to the workspace/
  },
  {
    name: 'a glob with .. escaping the workspace',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ artifacts: `../${basename(outside)}/**` }),
    problem: /artifact pattern "\.\.\/model-cdn-outside-\w+\/\*\*" points outside the workspace/,
    fix: /patterns are relative to the workspace/
  },
  {
    name: 'an absolute pattern elsewhere',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ artifacts: `${outside}/*.bin` }),
    problem: /artifact pattern "\/.+\/\*\.bin" points outside the workspace/,
    fix: /patterns are relative to the workspace/
  },
  {
    name: '`root` outside the workspace',
    files: { 'a.onnx': 'a' },
    inputs: (dir) => ({ artifacts: `${dir}/**`, root: '..' }),
    problem: /`root` "\.\." is outside the workspace/,
    fix: /give a directory inside it, relative to the workspace, or leave `root` empty/
  },
  {
    name: 'a symlink inside the workspace pointing outside (file and directory)',
    files: {
      'model.onnx': 'inside',
      'weights.onnx': { symlinkTo: () => join(outside, 'credentials.bin') },
      'linked-dir': { symlinkTo: () => outside }
    },
    problem:
      /symbolic links to files outside the workspace(?=[\s\S]*\n- case-\d+\/weights\.onnx -> \/)(?=[\s\S]*\n- case-\d+\/linked-dir\/credentials\.bin -> \/)/,
    fix: /Copy the files into the workspace, or exclude the links with a "!pattern" line/
  },
  {
    name: 'a malformed distribution id',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ 'distribution-id': 'd111111abcdef8.cloudfront.net' }),
    problem:
      /`distribution-id` "d111111abcdef8\.cloudfront\.net" is not a CloudFront distribution id/,
    fix: /Give the id, not the domain or ARN/
  },
  {
    name: 'a well-formed distribution id that does not exist (pre-flight)',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ 'distribution-id': 'E0NOSUCHDIST00' }),
    problem:
      /Pre-flight found 1 problem.*\n1\. distribution: Distribution E0NOSUCHDIST00 does not exist/,
    fix: /Fix: Set `distribution-id` to the ID/
  },
  {
    name: 'a well-formed distribution id that does not exist (no pre-flight)',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ 'distribution-id': 'E0NOSUCHDIST00', preflight: 'false' }),
    problem: /reading CloudFront distribution E0NOSUCHDIST00: AWS said NoSuchDistribution/,
    fix: /Distribution "E0NOSUCHDIST00" does not exist or is in another account\. Check `distribution-id`/
  },
  {
    name: 'a bucket that does not exist (pre-flight)',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ bucket: 'no-such-model-bucket' }),
    problem:
      /Pre-flight found .*\n1\. bucket: Failed reading bucket "no-such-model-bucket": AWS said NoSuchBucket/,
    fix: /Bucket "no-such-model-bucket" does not exist .*Check the `bucket` and `aws-region` inputs/
  },
  {
    name: 'a bucket that does not exist (no pre-flight)',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ bucket: 'no-such-model-bucket', preflight: 'false' }),
    problem: /s3:\/\/no-such-model-bucket\/.*NoSuchBucket/,
    fix: /Bucket "no-such-model-bucket" does not exist .*Check the `bucket` and `aws-region` inputs/
  },
  {
    name: '`version-prefix` with ..',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ 'version-prefix': 'v1/../v2' }),
    problem: /`version-prefix` "v1\/\.\.\/v2" must not contain "\." or "\.\." segments/,
    fix: /must not contain/
  },
  {
    name: '`version-prefix` with a leading /',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ 'version-prefix': '/v9' }),
    problem: /`version-prefix` "\/v9" must not start with "\/"/,
    fix: /write v3, not \/v3/
  },
  {
    name: '`version-prefix` with a space',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ 'version-prefix': 'v9 beta' }),
    problem: /`version-prefix` "v9 beta" may only use/,
    fix: /letters, digits and \. _ - \+ = @ ,/
  },
  {
    name: 'part size 4 MiB',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ 'part-size-mb': 4 }),
    problem: /`part-size-mb` must be between 5 and 5120 MiB, got 4/,
    fix: /between 5 and 5120/
  },
  {
    name: 'part size 6000 MiB',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ 'part-size-mb': 6000 }),
    problem: /`part-size-mb` must be between 5 and 5120 MiB, got 6000/,
    fix: /between 5 and 5120/
  },
  {
    name: 'a 60 GiB file (sparse) with 5 MiB parts: 12,288 parts',
    files: { 'small.onnx': 'small', 'huge.gguf': { sparseBytes: 60 * GiB } },
    inputs: () => ({ 'part-size-mb': 5 }),
    problem: /huge\.gguf of 60\.0 GiB[\s\S]*12,288 parts of 5 MiB, but S3 allows at most 10,000/,
    fix: /Set `part-size-mb` to at least 7, or leave it empty/
  },
  {
    name: 'non-numeric concurrency',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ concurrency: 'eight' }),
    problem: /`concurrency` must be a number, got "eight"/,
    fix: /must be a number/
  },
  {
    name: 'an unknown invalidate mode',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ invalidate: 'sometimes' }),
    problem: /`invalidate` must be one of auto, all, none; got "sometimes"/,
    fix: /one of auto, all, none/
  },
  {
    name: 'a malformed metadata line',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ metadata: 'model-version=2.0.1\nframework onnx' }),
    problem: /`metadata` line "framework onnx"/,
    fix: /must be key=value/
  },
  {
    name: 'metadata over 2 KB',
    files: { 'a.onnx': 'a' },
    inputs: () => ({ metadata: `notes=${'x'.repeat(2000)}` }),
    problem: /`metadata` is 2075 bytes with the sha256 entry/,
    fix: /S3 allows 2048 bytes of user metadata per object/
  },
  {
    name: 'a key over 1,024 bytes',
    files: {
      'short.onnx': 'fine',
      // 4 × 251 + 105 bytes: over the limit with any prefix (names stay under 255 bytes).
      [`${longDir('a')}/${longDir('b')}/${longDir('c')}/${longDir('d')}/${'m'.repeat(100)}.onnx`]:
        'too long'
    },
    problem: /key for a{250}\/.*\/m{100}\.onnx is 11\d\d bytes; S3 allows 1024/,
    fix: /S3 allows 1024/
  },
  {
    name: 'two files differing only in case',
    files: { 'Model.onnx': 'upper', 'model.onnx': 'lower' },
    problem: /Model\.onnx and model\.onnx map to keys that differ only in case/,
    fix: /Rename the files .* "!pattern" line/
  },
  {
    name: 'an existing key with different bytes and overwrite false',
    // Same size as the released file: only the SHA-256 can tell them apart.
    files: { [RELEASED_FILE]: 'RELEASED BYTES' },
    inputs: (dir) => ({ artifacts: `${dir}/**`, 'version-prefix': RELEASED, overwrite: false }),
    problem:
      /1 key\(s\) already hold[\s\S]*\n- model\.onnx → s3:\/\/model-cdn-bad-input\/released\/model\.onnx/,
    fix: /Publish under a new `version-prefix`, or set `overwrite: true`/
  }
]

describe('bad input fails with a clear error and changes nothing', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const dir = `case-${++caseCount}`
    for (const [rel, entry] of Object.entries(c.files ?? {})) {
      await writeEntry(join(workspace, dir, rel), entry)
    }
    const before = await emulatorState()

    const r = await deploy({
      artifacts: `${dir}/**`,
      'version-prefix': `bad-${caseCount}`,
      ...c.inputs?.(dir)
    })

    expectFailure(r)
    expect(r.errors).toHaveLength(1)
    const [message] = r.errors
    expect(message).toMatch(c.problem)
    if (c.fix) expect(message).toMatch(c.fix)
    // Our message, not a crash: no stack trace, no "Cannot read properties of undefined".
    expect(message).not.toMatch(/\n\s+at |of undefined|is not a function/)
    expect(r.outputs).toEqual({})
    expect(await emulatorState()).toEqual(before)
  })
})

describe('secrets never reach the log, the outputs or the summary', () => {
  // What aws-actions/configure-aws-credentials exports after an OIDC role assumption.
  const credentials = {
    AWS_ACCESS_KEY_ID: 'ASIAZFAKEKEYID7EXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'fAkE+sEcReT/kEy0123456789abcdefEXAMPLEkey',
    AWS_SESSION_TOKEN:
      'IQoJb3JpZ2luX2VjEFakeSessionToken//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+fake/token+EXAMPLE=='
  }
  const secrets = [credentials.AWS_SECRET_ACCESS_KEY, credentials.AWS_SESSION_TOKEN]

  function expectMaskedFirstAndNeverShown(r: RunActionResult) {
    const lines = r.stdout.split('\n')
    // Masked before anything else is printed, in the order configure-aws-credentials uses.
    expect(lines.slice(0, 3)).toEqual([
      `::add-mask::${credentials.AWS_ACCESS_KEY_ID}`,
      `::add-mask::${credentials.AWS_SECRET_ACCESS_KEY}`,
      `::add-mask::${credentials.AWS_SESSION_TOKEN}`
    ])
    const shown = [
      lines.filter((l) => !l.startsWith('::add-mask::')).join('\n'),
      r.stderr,
      JSON.stringify(r.outputs),
      JSON.stringify(r.state),
      r.summary
    ].join('\n')
    for (const secret of secrets) {
      expect(shown).not.toContain(secret)
      // Also not URL-encoded, as a presigned URL or a logged request would carry it.
      expect(shown).not.toContain(encodeURIComponent(secret))
    }
  }

  it('a successful deploy with temporary credentials', async () => {
    const dir = `case-${++caseCount}`
    await writeEntry(join(workspace, dir, 'model.onnx'), 'published with a session token')
    const r = await deploy(
      { artifacts: `${dir}/**`, 'version-prefix': `secrets-${caseCount}` },
      credentials
    )
    expectSuccess(r)
    expect(r.outputs['uploaded']).toBe('1')
    expectMaskedFirstAndNeverShown(r)
  })

  it('a failing deploy (a bucket that does not exist)', async () => {
    const dir = `case-${++caseCount}`
    await writeEntry(join(workspace, dir, 'model.onnx'), 'never published')
    const r = await deploy(
      {
        artifacts: `${dir}/**`,
        'version-prefix': `secrets-${caseCount}`,
        bucket: 'no-such-bucket'
      },
      credentials
    )
    expectFailure(r)
    expect(r.errors.join('\n')).toMatch(/NoSuchBucket/)
    expectMaskedFirstAndNeverShown(r)
  })
})
