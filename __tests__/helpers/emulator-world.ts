/**
 * The set-up every integration test shares: its own moto_server, S3 and CloudFront clients for
 * it, optionally one world (bucket, OAC, distribution) and a temporary workspace. `stop()`
 * releases all of it, so a test's afterAll is one line and a failed start leaks nothing.
 */
import { existsSync, realpathSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront'
import type { S3Client } from '@aws-sdk/client-s3'
import {
  makeClients,
  setupWorld,
  startEmulator,
  type Emulator,
  type World,
  type WorldOptions
} from '../../scripts/lib/emulator.mjs'
import { REPO_ROOT } from './run-action.js'

export interface TestEmulator {
  emulator: Emulator
  s3: S3Client
  cloudfront: CloudFrontClient
  /** An empty temporary directory (its real path), removed by stop(). */
  workspace: string
  /** Destroys the clients, stops moto_server and removes the workspace; idempotent. */
  stop(): Promise<void>
}

export interface TestWorld extends TestEmulator {
  world: World
}

export interface TestEmulatorOptions {
  /** Name prefix of the temporary workspace, so a leftover directory says which test made it. */
  workspacePrefix?: string
  /** The test runs the committed dist/index.js: fail before starting anything if it is missing. */
  requireDist?: boolean
}

/** Fails with the fix when the committed dist/index.js, which the runner-level tests run, is missing. */
export function requireDist(): void {
  if (!existsSync(join(REPO_ROOT, 'dist', 'index.js'))) {
    throw new Error(
      'dist/index.js is missing: run `npm run build` first (the tests run the committed dist).'
    )
  }
}

/** Starts moto_server on a free loopback port with clients and a workspace. */
export async function startTestEmulator(options: TestEmulatorOptions = {}): Promise<TestEmulator> {
  if (options.requireDist) requireDist()
  const emulator = await startEmulator()
  const { s3, cloudfront } = makeClients(emulator.endpoint)
  let workspace = ''
  const stop = async () => {
    s3.destroy()
    cloudfront.destroy()
    await emulator.stop()
    if (workspace) await rm(workspace, { recursive: true, force: true })
  }
  try {
    // The real path: the action resolves symlinks (macOS's /tmp is one) before comparing paths.
    workspace = realpathSync(
      await mkdtemp(join(tmpdir(), options.workspacePrefix ?? 'model-cdn-it-'))
    )
  } catch (err) {
    await stop()
    throw err
  }
  return { emulator, s3, cloudfront, workspace, stop }
}

/** startTestEmulator, then setupWorld: the tutorial's bucket and distribution. */
export async function startTestWorld(
  options: WorldOptions & TestEmulatorOptions
): Promise<TestWorld> {
  const started = await startTestEmulator(options)
  try {
    const world = await setupWorld(started.emulator.endpoint, {
      bucket: options.bucket,
      signing: options.signing
    })
    return { ...started, world }
  } catch (err) {
    await started.stop()
    throw err
  }
}

/**
 * The environment a shell gives the command line against the emulator: nothing of this
 * process's AWS_* or GITHUB_*, test credentials, and the SDK's standard endpoint variable.
 */
export function shellEnv(endpoint: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL: endpoint
  }
}

/** Writes each file (path relative to `root`, parent directories created) with its contents. */
export async function writeFiles(
  root: string,
  files: Record<string, Buffer | string>
): Promise<void> {
  for (const [rel, bytes] of Object.entries(files)) {
    const path = join(root, rel)
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, bytes)
  }
}
