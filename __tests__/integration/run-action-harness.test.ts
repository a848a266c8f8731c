/**
 * The runner simulation itself: action.yml reading, the env a runner gives a node action, and
 * reading back what @actions/core writes. Uses a stand-in action (no emulator needed), so a
 * failure here is the harness's, not the action's.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Inputs } from '../../src/common/constants.js'
import {
  REPO_ROOT,
  inputEnvName,
  parseActionInputs,
  parseAnnotations,
  parseCommandFile,
  readActionInputs,
  runAction
} from '../helpers/run-action.js'

describe('action.yml reader', () => {
  it('reads every input of action.yml, matching the names in src/constants.ts', () => {
    const inputs = readActionInputs()
    expect([...inputs.keys()].sort()).toEqual(Object.values(Inputs).sort())
    const required = [...inputs].filter(([, d]) => d.required).map(([n]) => n)
    // artifacts is required in mode: deploy only, which inputs.ts checks.
    expect(required.sort()).toEqual(['bucket', 'version-prefix'])
    expect(inputs.get('invalidate')?.default).toBe('auto')
    expect(inputs.get('wait-for-invalidation')?.default).toBe('true')
    expect(inputs.get('cache-control')?.default).toBe('public, max-age=31536000, immutable')
    expect(inputs.get('distribution-id')?.default).toBe('')
    expect(inputs.get('artifacts')?.default).toBe('')
    expect(inputs.get('bucket')?.default).toBeUndefined()
  })

  it('handles quoting, block scalars and comments, and refuses what it does not understand', () => {
    const inputs = parseActionInputs(
      [
        'name: x',
        'inputs:',
        '  # a comment',
        '  a:',
        '    description: |',
        '      one',
        '        two',
        '    default: "tab\\t \\"q\\""',
        '  b:',
        '    description: >-',
        '      folded',
        '      line',
        '',
        '      para',
        "    default: 'it''s # kept'  # dropped",
        '    required: true',
        '  c:',
        '    default: plain # dropped',
        'outputs:',
        '  o:',
        '    description: not an input'
      ].join('\n')
    )
    expect([...inputs.keys()]).toEqual(['a', 'b', 'c'])
    expect(inputs.get('a')).toEqual({
      required: false,
      default: 'tab\t "q"',
      description: 'one\n  two\n'
    })
    expect(inputs.get('b')).toEqual({
      required: true,
      default: "it's # kept",
      description: 'folded line\npara'
    })
    expect(inputs.get('c')?.default).toBe('plain')
    expect(() => parseActionInputs('inputs:\n  a:\n    default: [1]\n')).toThrow(/not supported/)
    expect(() =>
      parseActionInputs('inputs:\n  a:\n    default: 1\n  a:\n    default: 2\n')
    ).toThrow(/declared twice/)
  })

  it('names input variables as the runner does (hyphens kept)', () => {
    expect(inputEnvName('distribution-id')).toBe('INPUT_DISTRIBUTION-ID')
    expect(inputEnvName('some input')).toBe('INPUT_SOME_INPUT')
  })
})

describe('command files and annotations', () => {
  it('parses name=value lines and heredoc blocks', () => {
    const text =
      'a=1\nb<<ghadelimiter_x\nline 1\n\nc=not a key\nghadelimiter_x\nempty<<EOF\n\nEOF\n'
    expect(parseCommandFile(text)).toEqual({ a: '1', b: 'line 1\n\nc=not a key', empty: '' })
    expect(() => parseCommandFile('x<<EOF\nno end\n')).toThrow(/Unterminated/)
  })

  it('decodes ::error:: and ::warning:: commands', () => {
    expect(parseAnnotations('log\n::error::a%0Ab 100%25\n::warning file=x,line=1::w\n')).toEqual([
      { level: 'error', message: 'a\nb 100%' },
      { level: 'warning', message: 'w' }
    ])
  })
})

describe('runAction', () => {
  let actionDir: string
  let workspace: string
  const saved: Record<string, string | undefined> = {}
  const leaks = {
    INPUT_BUCKET: 'leaked-bucket',
    INPUT_LEAKED: 'x',
    GITHUB_TOKEN: 'leaked-token',
    AWS_PROFILE: 'leaked-profile',
    AWS_ENDPOINT_URL_S3: 'http://leaked.invalid'
  }

  beforeAll(async () => {
    actionDir = await mkdtemp(join(tmpdir(), 'fake-action-'))
    workspace = await mkdtemp(join(tmpdir(), 'fake-workspace-'))
    await copyFile(join(REPO_ROOT, 'action.yml'), join(actionDir, 'action.yml'))
    await mkdir(join(actionDir, 'dist'))
    const core = pathToFileURL(join(REPO_ROOT, 'node_modules/@actions/core/lib/core.js')).href
    await writeFile(
      join(actionDir, 'dist', 'index.js'),
      [
        `import * as core from '${core}'`,
        `const env = Object.fromEntries(Object.entries(process.env).filter(([k]) =>`,
        `  /^(INPUT_|GITHUB_|RUNNER_|AWS_|CI$|NODE_OPTIONS$)/.test(k)))`,
        `core.setOutput('env', JSON.stringify(env))`,
        `core.setOutput('cwd', process.cwd())`,
        `core.setOutput('multi', 'line 1\\nname=value\\n\\nEOF')`,
        `core.setOutput('bucket', core.getInput('bucket'))`,
        `await core.summary.addHeading('Deployed').addRaw('täble').write()`,
        `core.warning('careful\\nnow')`,
        `if (core.getBooleanInput('dry-run')) core.setFailed('boom: 100%\\nsecond line')`
      ].join('\n')
    )
    await writeFile(join(actionDir, 'package.json'), '{"type":"module"}')
    for (const [k, v] of Object.entries(leaks)) {
      saved[k] = process.env[k]
      process.env[k] = v
    }
  })

  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
    await rm(actionDir, { recursive: true, force: true })
    await rm(workspace, { recursive: true, force: true })
  })

  it('gives the action the environment a runner gives, and reads back outputs and summary', async () => {
    const result = await runAction({
      actionPath: actionDir,
      cwd: workspace,
      endpoint: 'http://127.0.0.1:1',
      inputs: { artifacts: 'models/**', bucket: 'b', 'version-prefix': 'v1', concurrency: 3 }
    })
    expect(result.stderr).toBe('')
    expect(result.exitCode).toBe(0)
    const env = JSON.parse(result.outputs.env) as Record<string, string>
    // Given inputs, defaults from action.yml, '' for inputs without one; hyphens kept.
    expect(env['INPUT_BUCKET']).toBe('b')
    expect(env['INPUT_CONCURRENCY']).toBe('3')
    expect(env['INPUT_INVALIDATE']).toBe('auto')
    expect(env['INPUT_DISTRIBUTION-ID']).toBe('')
    expect(env['INPUT_WAIT-TIMEOUT-MINUTES']).toBe('15')
    expect(env['INPUT_ENDPOINT-URL']).toBe('http://127.0.0.1:1')
    expect(env['AWS_ENDPOINT_URL_CLOUDFRONT']).toBe('http://127.0.0.1:1')
    const inputVars = Object.keys(env).filter((k) => k.startsWith('INPUT_'))
    expect(inputVars.sort()).toEqual(Object.values(Inputs).map(inputEnvName).sort())
    // Nothing of the parent leaks in.
    expect(env['GITHUB_TOKEN']).toBeUndefined()
    expect(env['AWS_PROFILE']).toBeUndefined()
    expect(env['AWS_ENDPOINT_URL_S3']).toBeUndefined()
    expect(env['NODE_OPTIONS']).toBeUndefined()
    expect(env['GITHUB_WORKSPACE']).toBe(workspace)
    expect(env['GITHUB_SHA']).toMatch(/^[0-9a-f]{40}$/)
    for (const k of ['GITHUB_REF', 'GITHUB_REPOSITORY', 'GITHUB_RUN_ID', 'GITHUB_RUN_ATTEMPT']) {
      expect(env[k]).toBeTruthy()
    }
    expect(env['AWS_ACCESS_KEY_ID']).toBe('test')
    expect(result.outputs.cwd).toBe(workspace)
    expect(result.outputs.bucket).toBe('b')
    expect(result.outputs.multi).toBe('line 1\nname=value\n\nEOF')
    expect(result.summary).toContain('<h1>Deployed</h1>')
    expect(result.summary).toContain('täble')
    expect(result.warnings).toEqual(['careful\nnow'])
    expect(result.errors).toEqual([])
  })

  it('reports a failing action: exit code 1 and the setFailed message', async () => {
    const result = await runAction({
      actionPath: actionDir,
      cwd: workspace,
      inputs: { artifacts: 'x', bucket: 'b', 'version-prefix': 'v1', 'dry-run': true }
    })
    expect(result.exitCode).toBe(1)
    expect(result.errors).toEqual(['boom: 100%\nsecond line'])
  })

  it('refuses an input action.yml does not declare', async () => {
    await expect(
      runAction({ actionPath: actionDir, cwd: workspace, inputs: { 'distribution-idd': 'x' } })
    ).rejects.toThrow(/declares no input "distribution-idd"/)
  })
})
