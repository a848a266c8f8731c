/**
 * The emulator launcher the integration tests and the demo rely on: it fails loudly without
 * moto_server, and never leaves a server behind, even when the process that started it is killed.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { startEmulator } from '../../scripts/lib/emulator.mjs'
import { REPO_ROOT } from '../helpers/run-action.js'

/** True when something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Gone, or a zombie waiting for an init that does not reap (as in some containers). */
function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return true
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z'
  } catch {
    return false
  }
}

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) return false
    await sleep(100)
  }
  return true
}

describe('startEmulator', () => {
  it('fails with install instructions when moto_server is missing (never skips)', async () => {
    await expect(startEmulator({ command: 'moto_server_that_does_not_exist' })).rejects.toThrow(
      /not found on PATH.*python3 -m pip install 'moto\[server\]'/s
    )
  })

  it('starts on a free loopback port and stop() kills it', async () => {
    const emulator = await startEmulator()
    expect(emulator.endpoint).toBe(`http://127.0.0.1:${emulator.port}`)
    expect((await fetch(`${emulator.endpoint}/`)).status).toBeLessThan(500)
    await emulator.stop()
    await emulator.stop() // idempotent
    expect(await listening(emulator.port)).toBe(false)
    expect(await eventually(() => processGone(emulator.pid))).toBe(true)
  })

  it('does not outlive a process that is killed without calling stop()', async () => {
    const module = pathToFileURL(join(REPO_ROOT, 'scripts/lib/emulator.mjs')).href
    const child = spawn(
      process.execPath,
      [
        '--no-warnings',
        '--input-type=module',
        '-e',
        `import { startEmulator } from '${module}'
         const e = await startEmulator()
         console.log(JSON.stringify({ pid: e.pid, port: e.port }))
         setInterval(() => {}, 1000)`
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] }
    )
    const line = await new Promise<string>((resolve, reject) => {
      let text = ''
      child.stdout.on('data', (b: Buffer) => {
        text += b.toString()
        if (text.includes('\n')) resolve(text.split('\n')[0])
      })
      child.once('exit', (code) => reject(new Error(`child exited early (${code})`)))
    })
    const { pid, port } = JSON.parse(line) as { pid: number; port: number }
    expect(await listening(port)).toBe(true)
    child.kill('SIGKILL')
    expect(await eventually(async () => !(await listening(port)))).toBe(true)
    expect(await eventually(() => processGone(pid))).toBe(true)
  })
})
