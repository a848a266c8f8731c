import * as core from '@actions/core'
import { createClients } from './clients.js'
import { deploy } from './deploy.js'
import { failureMessage } from './errors.js'
import { parseInputs } from './inputs.js'
import { buildOutputs } from './outputs.js'
import { sleep } from './retry.js'
import { buildSummary } from './summary.js'

/** The action's entry point: the only place that talks to the runner and calls setFailed. */
export async function run(): Promise<void> {
  try {
    const inputs = parseInputs((name) => core.getInput(name))
    const logger = { info: core.info, warning: core.warning, debug: core.debug }
    const report = await deploy(inputs, createClients(inputs), { logger, sleep, env: process.env })

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
  } catch (err) {
    core.setFailed(failureMessage(err))
  }
}
