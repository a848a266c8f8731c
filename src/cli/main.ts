import { writeFile } from 'node:fs/promises'
import { Command, CommanderError } from 'commander'
import packageJson from '../../package.json' with { type: 'json' }
import { cancelOnSignals } from '../commands/cancellation.js'
import { createClients } from '../aws/clients.js'
import { InputError, failureMessage } from '../common/errors.js'
import { OUTPUT_SPECS } from '../common/outputs-schema.js'
import { INPUT_SPECS } from '../inputs/schema.js'
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CliIo } from './io.js'
import { optionsFor, readFlag } from './flags.js'
import { addSetupCommand } from './setup.js'
import { parseInputs } from '../inputs/parse.js'
import { check } from '../commands/check.js'
import { runMode } from '../commands/run.js'
import { PreflightError } from '../cdn/preflight/index.js'
import { renderResult } from '../report/render.js'
import { preflightFailureSummary } from '../report/summary.js'
import { showCheck } from './check.js'
import { trackMultipartUploads } from '../aws/multipart-tracker.js'
import { terminalLogger } from './terminal.js'
import type { DeployInputs, Mode } from '../common/types.js'

const COMMANDS: Record<Mode | 'check', string> = {
  deploy: 'Publish files as a version: upload, copy known bytes, write the manifest, invalidate.',
  promote: 'Point an alias (e.g. latest) at a published version, without uploading (rollback too).',
  cleanup: 'Delete one version prefix (e.g. a preview), refusing one an alias points to.',
  check: 'Check the bucket and distribution set-up (pre-flight), read-only.'
}

/** Inputs only a GitHub workflow has a use for: the pull request comment, and the mode (a command). */
const ACTION_ONLY = new Set(['mode', 'pr-comment', 'pr-comment-id', 'github-token'])

/** The action's outputs that are JSON text, embedded as JSON values with `--json`. */
const JSON_OUTPUTS = new Set(OUTPUT_SPECS.filter((s) => s.json).map((s) => s.name))

/**
 * `model-cdn-deploy <command> [flags]`: the action's inputs as flags (`--version-prefix v3`,
 * booleans also `--verify` / `--no-verify`), the log on stderr, the outputs on stdout (one JSON
 * object with `--json`). Returns the exit code.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let exitCode = EXIT_OK
  const program = new Command('model-cdn-deploy')
    .description('Publish machine-learning model files to S3 behind CloudFront.')
    .version(packageJson.version)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s)
    })
  for (const [name, summary] of Object.entries(COMMANDS)) {
    const command = program.command(name).description(summary).exitOverride()
    for (const spec of INPUT_SPECS.filter((s) => !ACTION_ONLY.has(s.name))) {
      for (const option of optionsFor(spec)) command.addOption(option)
    }
    command
      .option('--json', 'print one JSON object with every output on stdout, and nothing else')
      .option('--summary-file <file>', 'write the Markdown summary of the run to this file')
      .action(async (flags: Record<string, unknown>) => {
        exitCode = await runCommand(name as Mode | 'check', flags, io)
      })
  }
  addSetupCommand(program, io, (code) => (exitCode = code))
  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, successfully.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE
    }
    throw err
  }
  return exitCode
}

async function runCommand(
  command: Mode | 'check',
  flags: Record<string, unknown>,
  io: CliIo
): Promise<number> {
  const logger = terminalLogger(io.stderr)
  let inputs: DeployInputs
  try {
    // `check` reads no files and moves no alias: parsed as a clean-up, which needs neither.
    const mode = command === 'check' ? 'cleanup' : command
    inputs = parseInputs((name) => (name === 'mode' ? mode : readFlag(flags, name, io.env)), io.env)
  } catch (err) {
    io.stderr.write(`error: ${failureMessage(err)}\n`)
    return err instanceof InputError ? EXIT_USAGE : EXIT_FAILED
  }
  const clients = createClients(inputs, io.env, { logger })
  const uploads = trackMultipartUploads(clients.s3)
  const cancellation = cancelOnSignals({
    logger,
    s3: clients.s3,
    uploads,
    exit: (message) => {
      io.stderr.write(`error: ${message}\n`)
      process.exit(EXIT_FAILED)
    }
  })
  const show = { json: flags.json === true, summaryFile: flags.summaryFile as string | undefined }
  try {
    const deps = { logger, env: io.env, sleep: cancellation.sleep, signal: cancellation.signal }
    if (command === 'check') {
      const passed = await showCheck(await check(inputs, clients, deps), show, io)
      return passed ? EXIT_OK : EXIT_FAILED
    }
    const result = await runMode(inputs, clients, { ...deps, now: Date.now })
    const rendered = renderResult(result)
    for (const warning of rendered.warnings) logger.warning(warning)
    if (show.summaryFile) await writeFile(show.summaryFile, rendered.summary)
    io.stdout.write(
      show.json ? `${JSON.stringify(jsonOutputs(rendered.outputs))}\n` : text(rendered.outputs)
    )
    if (result.failure) throw result.failure
    return EXIT_OK
  } catch (err) {
    // The summary's table of every check and fix, as the action writes it.
    if (err instanceof PreflightError && show.summaryFile) {
      await writeFile(show.summaryFile, preflightFailureSummary(err.findings))
    }
    io.stderr.write(`error: ${failureMessage(err)}\n`)
    return err instanceof InputError ? EXIT_USAGE : EXIT_FAILED
  } finally {
    cancellation.dispose()
    clients.s3.destroy()
    clients.cloudfront.destroy()
  }
}

function jsonOutputs(outputs: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(outputs).map(([name, value]) => [
      name,
      JSON_OUTPUTS.has(name) ? (value ? (JSON.parse(value) as unknown) : null) : value
    ])
  )
}

/** Without --json: the outputs a person reads, one a line (JSON ones left out). */
function text(outputs: Record<string, string>): string {
  return Object.entries(outputs)
    .filter(([name, value]) => value !== '' && !JSON_OUTPUTS.has(name))
    .map(([name, value]) => `${name}: ${value}\n`)
    .join('')
}
