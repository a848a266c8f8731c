import { Option } from 'commander'
import { INPUT_SPECS, type InputSpec } from '../inputs/schema.js'

/** The flag(s) of one input: `--name <value>`, a list, or `--name` / `--no-name`. */
export function optionsFor(spec: InputSpec): Option[] {
  const help = terminalHelp(spec.description)
  switch (spec.kind) {
    case 'boolean':
      // `--verify`, `--no-verify`, or a value as the action takes it (`--verify false`).
      return [
        new Option(`--${spec.name} [boolean]`, `${help} (default: ${spec.default})`),
        new Option(`--no-${spec.name}`).hideHelp()
      ]
    case 'lines':
      return [new Option(`--${spec.name} <value...>`, help)]
    case 'choice':
      return [new Option(`--${spec.name} <value>`, help).choices(spec.choices ?? [])]
    case 'secret':
      return [
        new Option(
          `--${spec.name} <value>`,
          `${help} Better given as the environment variable ${secretVariable(spec.name)}, which keeps it out of process lists and shell history.`
        )
      ]
    default: {
      const option = new Option(`--${spec.name} <value>`, help)
      return [spec.required ? option.makeOptionMandatory() : option]
    }
  }
}

/**
 * An input's help as a terminal shows it: the schema's Markdown is written for a workflow, so
 * modes become commands, the workspace the current directory, list inputs take several values,
 * workflow expressions go, and links show the page they point to (docs/ ships in the package).
 */
export function terminalHelp(markdown: string): string {
  return markdown
    .replace(/ [^.]*\$\{\{ secrets\.[^.]*\./g, '')
    .replace(/^`mode: (\w+)`/, 'The $1 command')
    .replace(/`mode: (\w+)`/g, 'the $1 command')
    .replace(/\bA line starting with\b/g, 'A pattern starting with')
    .replace(/\bthe (action|step)\b/g, 'the command')
    .replace(/\bworkspace\b/g, 'current directory')
    .replace(/\bNewline-separated\b/g, 'One or more')
    .replace(/\bnewline-separated\b/g, 'one or more')
    .replace(/\[([^\]]+)\]\(([^)]+)\)/g, '$1 ($2)')
    .replace(/`/g, '')
}

/** The environment variable a secret input is read from when its flag is not given. */
const secretVariable = (name: string) => `MODEL_CDN_DEPLOY_${name.toUpperCase().replace(/-/g, '_')}`
const SECRETS = new Set(INPUT_SPECS.filter((s) => s.kind === 'secret').map((s) => s.name))

/** What the action would read as the input: flags as text, lists one item a line. */
export function readFlag(
  flags: Record<string, unknown>,
  name: string,
  env: NodeJS.ProcessEnv
): string {
  const value = flags[name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())]
  if (value === undefined) return SECRETS.has(name) ? (env[secretVariable(name)] ?? '') : ''
  return Array.isArray(value) ? value.join('\n') : String(value)
}
