import { runCli } from './main.js'

// The command line's entry point (dist/cli.js): the exit code says how the run ended.
process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr
})
