/**
 * The folders of src/ are layers: a module imports from its own folder or from folders below it,
 * never above, so that opening any folder shows what it builds on. Only the Action's adapter
 * talks to GitHub (`@actions/*`).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { REPO_ROOT } from '../__tests__/helpers/run-action.js'

/** Top to bottom; folders on one line are side by side and must not import each other. */
const LAYERS = [
  ['action', 'cli'],
  ['report'],
  ['commands'],
  ['inputs'],
  ['release', 'setup'],
  ['publish', 'cdn'],
  ['aws'],
  ['common']
]

const SRC = join(REPO_ROOT, 'src')
const level = (folder: string) => LAYERS.findIndex((layer) => layer.includes(folder))
const folderOf = (file: string) => relative(SRC, file).split('/')[0]

const modules = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .map((f) => join(SRC, f))

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/^(?:import|export)\b[^;]*?from '([^']+)'/gms)].map((m) => m[1])
}

describe('src/ layout', () => {
  it('puts every module in a known layer', () => {
    expect(modules.map(folderOf).filter((folder) => level(folder) < 0)).toEqual([])
  })

  it('imports only from the same folder or folders below', () => {
    const upward = modules.flatMap((file) =>
      importsOf(file)
        .filter((spec) => spec.startsWith('.'))
        .map((spec) => normalize(join(dirname(file), spec)))
        // Outside src/: the package's own metadata (package.json, for --version).
        .filter((target) => !relative(SRC, target).startsWith('..'))
        .filter((target) => {
          const [from, to] = [folderOf(file), folderOf(target)]
          return from !== to && level(to) <= level(from)
        })
        .map((target) => `${relative(SRC, file)} -> ${relative(SRC, target)}`)
    )
    expect(upward).toEqual([])
  })

  it('keeps @actions/* in the Action adapter', () => {
    const offenders = modules.filter(
      (file) =>
        folderOf(file) !== 'action' && importsOf(file).some((spec) => spec.startsWith('@actions/'))
    )
    expect(offenders.map((file) => relative(SRC, file))).toEqual([])
  })
})
