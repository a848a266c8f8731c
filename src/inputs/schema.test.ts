/**
 * action.yml's `inputs:` and `outputs:`, and the README's inputs and outputs tables, are generated
 * from src/inputs/schema.ts and src/common/outputs-schema.ts, and checked here so that they cannot
 * drift from them. `UPDATE_DOCS=1 npm test -- inputs/schema` rewrites all four from the schemas.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as prettier from 'prettier'
import { Inputs, Outputs } from '../common/constants.js'
import { OUTPUT_SPECS, type OutputSpec } from '../common/outputs-schema.js'
import { INPUT_SPECS, type InputSpec } from './schema.js'
import { REPO_ROOT, parseActionInputs } from '../../__tests__/helpers/run-action.js'

const UPDATE = process.env.UPDATE_DOCS === '1'
const ACTION_YML = join(REPO_ROOT, 'action.yml')
const README = join(REPO_ROOT, 'README.md')
const INPUTS_TABLE = {
  start:
    '<!-- inputs: generated from src/inputs/schema.ts (UPDATE_DOCS=1 npm test -- inputs/schema) -->',
  end: '<!-- /inputs -->'
}
const OUTPUTS_TABLE = {
  start:
    '<!-- outputs: generated from src/common/outputs-schema.ts (UPDATE_DOCS=1 npm test -- inputs/schema) -->',
  end: '<!-- /outputs -->'
}

/** Markdown as action.yml shows it, plain text: links become their text and the page. */
const plainDescription = (markdown: string) =>
  markdown.replace(/\[([^\]]+)\]\(([^)#]+)(#[^)]*)?\)/g, '$1 ($2)')

/**
 * An input's description as action.yml gives it (`See Pre-flight (docs/private-models.md).`),
 * with the modes it is required in.
 */
const actionDescription = (spec: InputSpec) =>
  plainDescription(spec.description) + (spec.requiredIn ? ` Required in ${spec.requiredIn}.` : '')

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

/** action.yml's `outputs:` block for the schema. */
function actionOutputsBlock(specs: readonly OutputSpec[]): string {
  const lines = ['outputs:']
  for (const spec of specs) {
    lines.push(
      `  ${spec.name}:`,
      '    description: >-',
      ...wrap(plainDescription(spec.description), 6)
    )
  }
  return `${lines.join('\n')}\n`
}

/**
 * Compares action.yml's block from `\n<key>:\n` up to `end` with `expected`, or with UPDATE_DOCS=1
 * writes it; returns the file's text.
 */
function checkActionBlock(key: string, end: string, expected: string): string {
  const text = readFileSync(ACTION_YML, 'utf8')
  const { at, to } = between(text, `\n${key}:\n`, end)
  const start = at - `${key}:\n`.length
  if (UPDATE) writeFileSync(ACTION_YML, text.slice(0, start) + expected + text.slice(to + 1))
  else expect(text.slice(start, to + 1)).toBe(expected)
  return text
}

const code = (value: string) => `\`${value}\``

/** The README inputs table's rows for the schema, as cells. */
function inputRows(specs: readonly InputSpec[]): string[][] {
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

/** Compares the README's table between the markers with `rows`, or with UPDATE_DOCS=1 writes it. */
async function checkReadmeTable(
  markers: { start: string; end: string },
  header: string[],
  rows: string[][]
): Promise<void> {
  const text = readFileSync(README, 'utf8')
  const { at, to } = between(text, markers.start, markers.end)
  if (!UPDATE) {
    expect(parseTable(text.slice(at, to))).toEqual(rows)
    return
  }
  const table = [header, header.map(() => '---'), ...rows]
    .map((cells) => `| ${cells.join(' | ')} |`)
    .join('\n')
  const updated = `${text.slice(0, at)}\n\n${table}\n\n${text.slice(to)}`
  const options = await prettier.resolveConfig(README)
  writeFileSync(README, await prettier.format(updated, { ...options, filepath: README }))
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

  it('gives a number its range, and states it in its description', () => {
    for (const spec of INPUT_SPECS) {
      expect([spec.name, spec.kind === 'number']).toEqual([spec.name, spec.range !== undefined])
      if (!spec.range) continue
      const { min, max } = spec.range
      expect([spec.name, spec.description]).toEqual([
        spec.name,
        expect.stringContaining(`(${min} to ${max})`)
      ])
      if (spec.default) {
        const value = Number(spec.default)
        expect([spec.name, value >= min && value <= max]).toEqual([spec.name, true])
      }
    }
  })

  it('is what action.yml declares: names in order, required, defaults and descriptions', () => {
    const text = checkActionBlock('inputs', '\noutputs:', actionInputsBlock(INPUT_SPECS))
    if (UPDATE) return
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
    await checkReadmeTable(
      INPUTS_TABLE,
      ['Input', 'Required', 'Default', 'Description'],
      inputRows(INPUT_SPECS)
    )
  })
})

describe('the output schema', () => {
  it('names every output the action sets, once', () => {
    const names = OUTPUT_SPECS.map((s) => s.name)
    expect(new Set(names).size).toBe(names.length)
    expect([...names].sort()).toEqual(Object.values(Outputs).sort())
  })

  it('is what action.yml declares: names in order and descriptions', () => {
    checkActionBlock('outputs', '\n\nruns:', actionOutputsBlock(OUTPUT_SPECS))
  })

  it('is the README outputs table', async () => {
    await checkReadmeTable(
      OUTPUTS_TABLE,
      ['Output', 'Description'],
      OUTPUT_SPECS.map((spec) => [code(spec.name), spec.description])
    )
  })
})
