import type { Command } from 'commander'
import { createSetupClients } from '../aws/clients.js'
import { setup } from '../commands/setup.js'
import { InputError, failureMessage } from '../common/errors.js'
import { SETUP_SPECS, parseSetupOptions } from '../inputs/setup.js'
import { setupOutputs, setupText } from '../report/setup.js'
import { cloudFormationTemplate } from '../setup/template.js'
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CliIo } from './io.js'
import { optionsFor, readFlag } from './flags.js'
import { terminalLogger } from './terminal.js'

/**
 * `setup`: creates the bucket, CloudFront with OAC, the bucket policy, signing keys and the
 * GitHub role, or completes them; or, with `--template cloudformation`, prints the same set-up as
 * a CloudFormation template and calls nothing.
 */
export function addSetupCommand(program: Command, io: CliIo, exit: (code: number) => void): void {
  const command = program
    .command('setup')
    .description(
      'Create (or complete) the private bucket, CloudFront with OAC, the bucket policy, signing keys and the GitHub OIDC role; safe to re-run.'
    )
    .exitOverride()
  // `bucket` is checked with the other flags (all problems at once), and --template needs none.
  for (const spec of SETUP_SPECS) {
    for (const option of optionsFor({ ...spec, required: false })) command.addOption(option)
  }
  command
    .option(
      '--json',
      'print one JSON object with the ids and the changes on stdout, and nothing else'
    )
    .option(
      '--template <format>',
      'print the set-up as a template instead (cloudformation) and change nothing'
    )
    .action(async (flags: Record<string, unknown>) => exit(await runSetup(flags, io)))
}

async function runSetup(flags: Record<string, unknown>, io: CliIo): Promise<number> {
  if (flags.template !== undefined) return printTemplate(String(flags.template), flags, io)
  const logger = terminalLogger(io.stderr)
  let clients
  try {
    const options = parseSetupOptions((name) => readFlag(flags, name, io.env), io.env)
    clients = createSetupClients(options.region, io.env)
    const report = await setup(options, clients, { logger })
    io.stdout.write(
      flags.json ? `${JSON.stringify(setupOutputs(report))}\n` : `${setupText(report)}\n`
    )
    const failed = report.preflight?.some((f) => f.status === 'error')
    if (failed) io.stderr.write('error: the set-up still fails pre-flight; see the findings.\n')
    return failed ? EXIT_FAILED : EXIT_OK
  } catch (err) {
    io.stderr.write(`error: ${failureMessage(err)}\n`)
    return err instanceof InputError ? EXIT_USAGE : EXIT_FAILED
  } finally {
    for (const client of Object.values(clients ?? {})) client.destroy()
  }
}

/** The template, its parameters' defaults taken from the flags given. */
function printTemplate(format: string, flags: Record<string, unknown>, io: CliIo): number {
  if (format !== 'cloudformation') {
    io.stderr.write(`error: --template takes cloudformation, got "${format}".\n`)
    return EXIT_USAGE
  }
  const flag = (name: string) => readFlag(flags, name, io.env) || undefined
  try {
    const template = cloudFormationTemplate({
      bucket: flag('bucket'),
      githubRepo: flag('github-repo'),
      githubBranch: flag('github-branch'),
      githubEnvironment: flag('github-environment')
    })
    io.stdout.write(`${JSON.stringify(template, null, 2)}\n`)
    return EXIT_OK
  } catch (err) {
    io.stderr.write(`error: ${failureMessage(err)}\n`)
    return err instanceof InputError ? EXIT_USAGE : EXIT_FAILED
  }
}
