/**
 * action.yml's `inputs:` and the README's inputs table are generated from src/inputs/schema.ts, and
 * checked here so that they cannot drift from it. `UPDATE_DOCS=1 npm test -- inputs/schema`
 * rewrites both from the schema.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as prettier from 'prettier'
import { Inputs } from '../common/constants.js'
import { INPUT_SPECS, type InputSpec } from './schema.js'
import { REPO_ROOT, parseActionInputs } from '../../__tests__/helpers/run-action.js'

const UPDATE = process.env.UPDATE_DOCS === '1'
const ACTION_YML = join(REPO_ROOT, 'action.yml')
const README = join(REPO_ROOT, 'README.md')
const TABLE_START =
  '<!-- inputs: generated from src/inputs/schema.ts (UPDATE_DOCS=1 npm test -- inputs/schema) -->'
const TABLE_END = '<!-- /inputs -->'

/**
 * A description as action.yml gives it: shown as plain text, so links become their text and the
 * page (`See Pre-flight (docs/private-models.md).`), and the modes it is required in are said.
 */
const actionDescription = (spec: InputSpec) =>
  spec.description.replace(/\[([^\]]+)\]\(([^)#]+)(#[^)]*)?\)/g, '$1 ($2)') +
  (spec.requiredIn ? ` Required in ${spec.requiredIn}.` : '')

/** Words wrapped at `width` columns, each line indented. */
function wrap(text: string, indent: number, width = 100): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/)) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line ? `${line} ${word}` : word
    }
  }
  if (line) lines.push(line)
  return lines.map((l) => ' '.repeat(indent) + l)
}

const yamlQuote = (value: string) => `'${value.replace(/'/g, "''")}'`

/** action.yml's `inputs:` block for the schema. */
function actionInputsBlock(specs: readonly InputSpec[]): string {
  const lines = ['inputs:']
  for (const spec of specs) {
    lines.push(`  ${spec.name}:`, '    description: >-', ...wrap(actionDescription(spec), 6))
    lines.push(`    required: ${spec.required === true}`)
    if (spec.default !== undefined) lines.push(`    default: ${yamlQuote(spec.default)}`)
  }
  return `${lines.join('\n')}\n`
}

const code = (value: string) => `\`${value}\``

/** The README table's rows for the schema, as cells. */
function tableRows(specs: readonly InputSpec[]): string[][] {
  return specs.map((spec) => [
    code(spec.name),
    spec.required ? 'yes' : spec.requiredIn ? `in ${spec.requiredIn}` : 'no',
    spec.default === undefined ? '' : code(spec.default === '' ? "''" : spec.default),
    spec.description
  ])
}

/** The cells of a Markdown table's body rows (header and rule left out). */
function parseTable(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .slice(2)
    .map((l) =>
      l
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim())
    )
}

function between(text: string, start: string, end: string): { at: number; to: number } {
  const at = text.indexOf(start)
  const to = text.indexOf(end, at)
  if (at < 0 || to < 0) throw new Error(`Markers not found: ${start} … ${end}`)
  return { at: at + start.length, to }
}

describe('the input schema', () => {
  it('names every input the action reads, once', () => {
    const names = INPUT_SPECS.map((s) => s.name)
    expect(new Set(names).size).toBe(names.length)
    expect([...names].sort()).toEqual(Object.values(Inputs).sort())
  })

  it('gives a choice its choices, and a required input no default', () => {
    for (const spec of INPUT_SPECS) {
      expect([spec.name, spec.kind === 'choice']).toEqual([spec.name, spec.choices !== undefined])
      if (spec.required) expect([spec.name, spec.default]).toEqual([spec.name, undefined])
      if (spec.kind === 'choice' && spec.default !== undefined) {
        expect(spec.choices).toContain(spec.default)
      }
    }
  })

  it('is what action.yml declares: names in order, required, defaults and descriptions', () => {
    const text = readFileSync(ACTION_YML, 'utf8')
    const { at, to } = between(text, '\ninputs:\n', '\noutputs:')
    const start = at - 'inputs:\n'.length
    const expected = actionInputsBlock(INPUT_SPECS)
    if (UPDATE) {
      writeFileSync(ACTION_YML, text.slice(0, start) + expected + text.slice(to + 1))
      return
    }
    expect(text.slice(start, to + 1)).toBe(expected)
    // And as the runner reads it.
    const declared = parseActionInputs(text)
    expect([...declared.keys()]).toEqual(INPUT_SPECS.map((s) => s.name))
    for (const spec of INPUT_SPECS) {
      expect(declared.get(spec.name)).toEqual({
        required: spec.required === true,
        default: spec.default,
        description: wrap(actionDescription(spec), 0).join(' ')
      })
    }
  })

  it('is the README inputs table', async () => {
    const text = readFileSync(README, 'utf8')
    const { at, to } = between(text, TABLE_START, TABLE_END)
    const rows = tableRows(INPUT_SPECS)
    if (UPDATE) {
      const table = [
        '| Input | Required | Default | Description |',
        '| --- | --- | --- | --- |',
        ...rows.map((cells) => `| ${cells.join(' | ')} |`)
      ].join('\n')
      const updated = `${text.slice(0, at)}\n\n${table}\n\n${text.slice(to)}`
      const options = await prettier.resolveConfig(README)
      writeFileSync(README, await prettier.format(updated, { ...options, filepath: README }))
      return
    }
    expect(parseTable(text.slice(at, to))).toEqual(rows)
  })
})
