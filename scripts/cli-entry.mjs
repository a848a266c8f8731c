/**
 * Writes dist/cli.js, the command line's entry point (`bin` in package.json), after the build:
 * ncc bundles src/cli/ into dist/cli/index.js, beside the action's own dist/index.js.
 */
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { REPO_ROOT } from './lib/run-action.mjs'

const entry = join(REPO_ROOT, 'dist', 'cli.js')
await writeFile(entry, "#!/usr/bin/env node\nimport './cli/index.js'\n")
await chmod(entry, 0o755)
