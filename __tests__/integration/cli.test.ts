/**
 * The command line, as a shell runs it: `node dist/cli.js <command> [flags]` against its own
 * moto_server, with the AWS SDK's standard endpoint variables and credentials in the
 * environment. Checks exit codes, that `--json` prints exactly the action's outputs for the same
 * deploy, the summary file, and what is stored.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { S3Client } from '@aws-sdk/client-s3'
import type { World } from '../../scripts/lib/emulator.mjs'
import { setTimeout as sleep } from 'node:timers/promises'
import { getStored, listKeys, openUploads, sha256 } from '../helpers/emulator-state.js'
import { runCli, type CliResult, type CliRun } from '../helpers/cli.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { startTestWorld, writeFiles, type TestWorld } from '../helpers/emulator-world.js'
import { REPO_ROOT, expectSuccess, runAction } from '../helpers/run-action.js'

const BUCKET = 'model-cdn-cli'
const FILES = {
  'model.onnx': randomBytes(64 * 1024),
  'tokenizer.json': Buffer.from('{"vocab":{}}')
}

let moto: TestWorld | undefined
let s3: S3Client
let world: World
let workspace: string

beforeAll(async () => {
  moto = await startTestWorld({ bucket: BUCKET, requireDist: true, workspacePrefix: 'mcd-cli-' })
  ;({ s3, world, workspace } = moto)
  await writeFiles(join(workspace, 'models'), FILES)
}, 60_000)

afterAll(async () => {
  await moto?.stop()
})

/** `node dist/cli.js …` in the workspace, with test credentials and the emulator's endpoints. */
function cli(
  args: string[],
  opts: { endpoint?: string; env?: Record<string, string>; onSpawn?: CliRun['onSpawn'] } = {}
): Promise<CliResult> {
  return runCli(args, {
    ...opts,
    cwd: workspace,
    endpoint: opts.endpoint ?? moto!.emulator.endpoint
  })
}

const deployFlags = (prefix: string) => [
  'deploy',
  '--artifacts',
  'models/**',
  '--bucket',
  BUCKET,
  '--version-prefix',
  prefix,
  '--distribution-id',
  world.distributionId,
  // The emulator's CloudFront domain does not resolve (also `--verify false`, as the action).
  '--no-verify'
]

describe('model-cdn-deploy (dist/cli.js)', () => {
  it('deploys, printing exactly one JSON object with every output, and writes the summary file', async () => {
    const summary = join(workspace, 'summary.md')
    const r = await cli([...deployFlags('v1'), '--json', '--summary-file', summary])
    expect([r.code, r.stderr.includes('error:')]).toEqual([0, false])

    const outputs = JSON.parse(r.stdout) as Record<string, unknown>
    expect(r.stdout.trim().split('\n')).toHaveLength(1)
    expect(outputs['uploaded']).toBe('2')
    expect(Object.keys(outputs['urls'] as object).sort()).toEqual(['model.onnx', 'tokenizer.json'])
    for (const [path, bytes] of Object.entries(FILES)) {
      expect((await getStored(s3, BUCKET, `v1/${path}`)).sha256).toBe(sha256(bytes))
    }
    // The log went to stderr.
    expect(r.stderr).toContain('Uploaded model.onnx')
    expect(await readFile(summary, 'utf8')).toContain('v1')
  })

  it('prints the outputs the action sets for the same deploy, with JSON ones as values', async () => {
    const viaCli = await cli([...deployFlags('v1'), '--json'])
    expect(viaCli.code).toBe(0)
    const viaAction = await runAction({
      cwd: workspace,
      endpoint: moto!.emulator.endpoint,
      inputs: {
        artifacts: 'models/**',
        bucket: BUCKET,
        'version-prefix': 'v1',
        'distribution-id': world.distributionId,
        verify: false
      }
    })
    expectSuccess(viaAction)

    const cliOutputs = JSON.parse(viaCli.stdout) as Record<string, unknown>
    const actionOutputs = viaAction.outputs
    const asJson = [
      'urls',
      'manifest',
      'invalidation-ids',
      'signed-urls',
      'signed-cookies',
      'alias-urls'
    ]
    expect(cliOutputs).toEqual(
      Object.fromEntries(
        Object.entries(actionOutputs).map(([name, value]) => [
          name,
          asJson.includes(name) ? (value ? JSON.parse(value) : null) : value
        ])
      )
    )
    // Both were re-runs: everything skipped, nothing sent.
    expect(cliOutputs['skipped']).toBe('2')
    expect(cliOutputs['bytes-uploaded']).toBe('0')
  })

  it('exits 2 on an invalid flag value, writing nothing', async () => {
    const r = await cli([...deployFlags('v-bad'), '--concurrency', 'many', '--overwrite', 'false'])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(
      /^error: Invalid input; nothing was uploaded:\n- `concurrency` must be a number, got "many"/m
    )
    expect(await listKeys(s3, BUCKET, 'v-bad/')).toEqual([])
  })

  it('reads the signing key from MODEL_CDN_DEPLOY_SIGNING_PRIVATE_KEY, keeping it off the command line', async () => {
    const withId = [...deployFlags('v-sign'), '--signing-key-pair-id', 'K2JCJMDEHXQW5F']
    const without = await cli(withId)
    expect(without.code).toBe(2)
    expect(without.stderr).toContain(
      '`signing-key-pair-id` is set but `signing-private-key` is empty'
    )

    const fromEnv = await cli(withId, {
      env: { MODEL_CDN_DEPLOY_SIGNING_PRIVATE_KEY: 'not-a-pem-key' }
    })
    expect(fromEnv.code).toBe(2)
    expect(fromEnv.stderr).not.toContain('is empty')
    expect(fromEnv.stderr).toMatch(/`signing-private-key` /)
    expect(fromEnv.stderr).not.toContain('not-a-pem-key')
  })

  it('exits 2 on a missing required flag, and 1 when the run fails', async () => {
    const missing = await cli(['deploy', '--artifacts', 'models/**', '--bucket', BUCKET])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/--version-prefix/)

    const failed = await cli([...deployFlags('v-absent'), '--bucket', 'no-such-bucket-here'])
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(
      /^error: Pre-flight found .*\n1\. bucket: .*"no-such-bucket-here": AWS said NoSuchBucket/m
    )
  })

  it('stops on SIGINT as a cancelled workflow does: exits 1, aborts its multipart uploads, leaves nothing', async () => {
    await writeFiles(join(workspace, 'big'), { 'weights.bin': randomBytes(24 * 1024 * 1024) })
    const proxy = await startFaultProxy(moto!.emulator.endpoint)
    // Parts answered after a second, so the run is mid-upload when it is interrupted.
    proxy.setRules([
      {
        operations: ['UploadPart'],
        every: 1,
        fault: { kind: 'stall', ms: 1000, phase: 'response' }
      }
    ])
    try {
      const r = await cli(
        ['deploy', '--artifacts', 'big/**', '--bucket', BUCKET, '--version-prefix', 'v-int'],
        {
          endpoint: proxy.endpoint,
          onSpawn: (child) =>
            void (async () => {
              while (!proxy.requests.some((q) => q.operation === 'UploadPart')) await sleep(20)
              child.kill('SIGINT')
            })()
        }
      )
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('Received SIGINT')
      expect(r.stderr).toMatch(
        /^error: Upload to s3:\/\/model-cdn-cli cancelled: 0 of 1 file\(s\) were uploaded\./m
      )
      expect(proxy.requests.some((q) => q.operation === 'AbortMultipartUpload')).toBe(true)
    } finally {
      await proxy.stop()
    }
    expect(await openUploads(s3, BUCKET, 'v-int/')).toEqual([])
    expect(await listKeys(s3, BUCKET, 'v-int/')).toEqual([])
  }, 60_000)

  it('checks the set-up without writing anything: each finding, then the verdict', async () => {
    const r = await cli([
      'check',
      '--bucket',
      BUCKET,
      '--version-prefix',
      'v-check',
      '--distribution-id',
      world.distributionId
    ])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^ok +origin-access-control +/m)
    expect(r.stdout).toMatch(/^ok +bucket-policy +/m)
    expect(r.stdout).toMatch(
      new RegExp(
        `\\n${BUCKET} behind ${world.distributionId}: no problem found.*; a deploy would pass its pre-flight\\.\\n$`
      )
    )
    expect(await listKeys(s3, BUCKET, 'v-check/')).toEqual([])
  })

  it('fails a check that finds a problem (exit 1), with each fix; --json says so too', async () => {
    const flags = ['--bucket', 'no-such-bucket-here', '--version-prefix', 'v-check']
    const r = await cli(['check', ...flags, '--summary-file', join(workspace, 'check.md')])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^ERROR +bucket +.*no-such-bucket-here/m)
    expect(r.stdout).toMatch(/^ +Fix: /m)
    expect(r.stdout).toMatch(/problem\(s\) to fix before a deploy can pass its pre-flight\.\n$/)
    expect(r.stderr).toMatch(
      /^error: the set-up has 1 problem\(s\); each is listed with its fix\.$/m
    )
    expect(r.stderr).not.toMatch(/NodeVersionSupportWarning/)
    expect(await readFile(join(workspace, 'check.md'), 'utf8')).toMatch(
      /^## Model CDN check: no-such-bucket-here\n[\s\S]*\| bucket \| ❌ error \|/
    )
    const json = await cli(['check', ...flags, '--json'])
    expect(json.code).toBe(1)
    const parsed = JSON.parse(json.stdout) as { passed: boolean; findings: { check: string }[] }
    expect(parsed.passed).toBe(false)
    expect(parsed.findings.map((f) => f.check)).toContain('bucket')
  })

  it("prints its version, the package's", async () => {
    const r = await cli(['--version'])
    const { version } = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string
    }
    expect([r.code, r.stdout]).toEqual([0, `${version}\n`])
  })

  it('prints help for each command, generated from the input schema', async () => {
    const r = await cli(['deploy', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/--version-prefix <value>/)
    expect(r.stdout).toMatch(/--lock-timeout-minutes <value>/)
    expect(r.stdout).not.toMatch(/--github-token/)
    // Written for a terminal, not a workflow: commands, the current directory, docs/ pages.
    expect(r.stdout).not.toMatch(/\$\{\{|workspace|mode: |newline-separated|the (action|step)\b/i)
    expect(r.stdout).toMatch(/relative to the current directory/)
    expect(r.stdout).toMatch(/The cleanup command refuses/)
    expect(r.stdout).toMatch(/\(docs\/reliability\.md#concurrent-runs\)/)
  })
})
