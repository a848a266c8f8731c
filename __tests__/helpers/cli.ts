/** Runs the committed command line, `node dist/cli.js …`, as a shell does. */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { shellEnv } from './emulator-world.js'
import { REPO_ROOT } from './run-action.js'

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface CliRun {
  cwd: string
  /** The emulator: the environment is a shell's with test credentials and this endpoint. */
  endpoint: string
  /** Added to (or overriding) that environment. */
  env?: Record<string, string>
  onSpawn?: (child: ChildProcess) => void
}

export function runCli(args: string[], run: CliRun): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'cli.js'), ...args], {
      cwd: run.cwd,
      env: { ...shellEnv(run.endpoint), ...run.env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    run.onSpawn?.(child)
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', reject)
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8')
      })
    )
  })
}
