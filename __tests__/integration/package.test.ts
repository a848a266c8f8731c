/**
 * The package as a user installs it: `npm pack`, installed into an empty folder (offline: the
 * bundles in dist/ need no dependency), then its `model-cdn-deploy` binary run for help and for a
 * deploy against moto_server.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { S3Client } from '@aws-sdk/client-s3'
import { getStored, sha256 } from '../helpers/emulator-state.js'
import { shellEnv, startTestWorld, writeFiles, type TestWorld } from '../helpers/emulator-world.js'
import { REPO_ROOT } from '../helpers/run-action.js'

const run = promisify(execFile)
const BUCKET = 'model-cdn-package'
const MODEL = Buffer.from('weights of a very small model')

let moto: TestWorld | undefined
let s3: S3Client
let folder: string

beforeAll(async () => {
  moto = await startTestWorld({ bucket: BUCKET, requireDist: true, workspacePrefix: 'mcd-pkg-' })
  s3 = moto.s3
  folder = await mkdtemp(join(tmpdir(), 'mcd-installed-'))
}, 60_000)

afterAll(async () => {
  await moto?.stop()
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe('the npm package', () => {
  it('installs into an empty folder and its binary deploys', async () => {
    const { stdout: packed } = await run('npm', ['pack', '--pack-destination', folder], {
      cwd: REPO_ROOT
    })
    const tarball = join(folder, packed.trim().split('\n').at(-1)!)
    const app = join(folder, 'app')
    await mkdir(app)
    await run('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund'], { cwd: app })
    const bin = join(app, 'node_modules', '.bin', 'model-cdn-deploy')

    const help = await run(bin, ['--help'], { cwd: app })
    expect(help.stdout).toMatch(/^Usage: model-cdn-deploy /)
    for (const command of ['deploy', 'promote', 'cleanup', 'check']) {
      expect(help.stdout).toContain(`  ${command} [options]`)
    }

    await writeFiles(join(app, 'models'), { 'model.bin': MODEL })
    const deployed = await run(
      bin,
      [
        'deploy',
        '--artifacts',
        'models/**',
        '--bucket',
        BUCKET,
        '--version-prefix',
        'v1',
        '--json'
      ],
      {
        cwd: app,
        env: shellEnv(moto!.emulator.endpoint)
      }
    )
    expect(JSON.parse(deployed.stdout)).toMatchObject({ 'version-prefix': 'v1', uploaded: '1' })
    expect((await getStored(s3, BUCKET, 'v1/model.bin')).sha256).toBe(sha256(MODEL))
  }, 120_000)
})
