import { runCli } from './main.js'

// The SDK warns on Node < 22 that its releases after early January 2027 will need Node 22. The
// bundle pins its SDK version, so the warning is for whoever updates it (package.json engines),
// not for the person running the command, whose stderr it would fill on every run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

// The command line's entry point (dist/cli.js): the exit code says how the run ended.
process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr
})
