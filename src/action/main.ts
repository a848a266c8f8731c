import * as core from '@actions/core'
import { cancelOnSignals, type Cancellation } from '../commands/cancellation.js'
import { createClients, type Clients } from '../aws/clients.js'
import { Inputs, State } from '../common/constants.js'
import { failureMessage } from '../common/errors.js'
import { parseInputs } from '../inputs/parse.js'
import { runActionMode } from './mode.js'
import { prepareCleanup } from './post.js'
import { PreflightError } from '../cdn/preflight/index.js'
import { maskCredentials, maskSecret } from '../common/secrets.js'
import { maskSigningKey } from '../cdn/signing.js'
import { preflightFailureSummary } from '../report/summary.js'

/** The action's entry point: the only place that talks to the runner and calls setFailed. */
export async function run(): Promise<void> {
  // Before anything can print them: AWS credentials, the signing key, a token given as input.
  maskCredentials(process.env, core.setSecret)
  maskSigningKey(core.getInput(Inputs.SigningPrivateKey), core.setSecret)
  maskSecret(core.getInput(Inputs.GithubToken), core.setSecret)
  // The post step runs this same bundle; this tells it apart (index.ts).
  core.saveState(State.IsPost, 'true')
  const startedAt = new Date()
  let cancellation: Cancellation | undefined
  let clients: Clients | undefined
  try {
    const inputs = parseInputs((name) => core.getInput(name))
    const logger = { info: core.info, warning: core.warning, debug: core.debug }
    clients = createClients(inputs, process.env, { logger })
    const uploads = prepareCleanup(inputs, clients.s3, startedAt)
    cancellation = cancelOnSignals({ logger, s3: clients.s3, uploads, exit: failNow })
    const { signal, sleep } = cancellation
    // A cancelled run's uploads are aborted by the post step too; a failed run's are resumed.
    signal.addEventListener('abort', () => core.saveState(State.Cancelled, 'true'), { once: true })
    const outcome = await runActionMode(inputs, clients, {
      logger,
      sleep,
      env: process.env,
      signal,
      now: Date.now
    })

    for (const [name, value] of Object.entries(outcome.outputs)) core.setOutput(name, value)
    await core.summary.addRaw(outcome.summary).write()
    // Written and uploaded, so nothing is left for the post step to abort.
    core.saveState(State.Succeeded, 'true')
    if (outcome.failure) throw outcome.failure
  } catch (err) {
    // The table with every check and fix says more than the error's list of the failed ones.
    if (err instanceof PreflightError) {
      // Best effort: the failure below carries the same problems if the summary cannot be written.
      await core.summary
        .addRaw(preflightFailureSummary(err.findings))
        .write()
        .catch(() => undefined)
    }
    core.setFailed(failureMessage(err))
  } finally {
    cancellation?.dispose()
    // Keep-alive sockets would otherwise hold the process open after the work is done.
    clients?.s3.destroy()
    clients?.cloudfront.destroy()
  }
}

/** Fails the step and exits at once, after the log has been flushed (stdout may be async). */
function failNow(message: string): void {
  core.setFailed(message)
  process.stdout.write('', () => process.exit(1))
}
