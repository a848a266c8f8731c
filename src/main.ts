import * as core from '@actions/core'
import { cancelOnSignals, type Cancellation } from './cancellation.js'
import { createClients, type Clients } from './clients.js'
import { State } from './constants.js'
import { deploy } from './deploy.js'
import { failureMessage } from './errors.js'
import { parseInputs } from './inputs.js'
import { buildOutputs } from './outputs.js'
import { prepareCleanup } from './post.js'
import { maskCredentials } from './secrets.js'
import { buildSummary } from './summary.js'

/** The action's entry point: the only place that talks to the runner and calls setFailed. */
export async function run(): Promise<void> {
  maskCredentials(process.env, core.setSecret)
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
    const report = await deploy(inputs, clients, { logger, sleep, env: process.env, signal })

    const { outputs, warnings } = buildOutputs({
      versionPrefix: report.versionPrefix,
      files: report.files,
      manifest: report.manifest,
      manifestUrl: report.manifestUrl,
      invalidation: report.invalidation,
      bytesUploaded: report.bytesUploaded
    })
    for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value)
    for (const warning of warnings) core.warning(warning)

    await core.summary
      .addRaw(buildSummary({ ...report, warnings: [...report.warnings, ...warnings] }))
      .write()
    core.saveState(State.Succeeded, 'true')
  } catch (err) {
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
