/**
 * docs/setup.md lists the IAM actions setup needs: every action a step names when AWS refuses it
 * must be there, so the documented policy is enough to run setup.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from '../../__tests__/helpers/run-action.js'

const SETUP = join(REPO_ROOT, 'src', 'setup')

function namedPermissions(): string[] {
  const steps = readdirSync(SETUP).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  const named = steps.flatMap((f) =>
    [...readFileSync(join(SETUP, f), 'utf8').matchAll(/permission: *'([^']+)'/g)].flatMap((m) =>
      m[1].split(' and ')
    )
  )
  return [...new Set(named)].sort()
}

describe('docs/setup.md', () => {
  const policy = readFileSync(join(REPO_ROOT, 'docs', 'setup.md'), 'utf8')

  it('lists every IAM action a setup step calls', () => {
    const permissions = namedPermissions()
    expect(permissions.length).toBeGreaterThan(30)
    const documented = (action: string) =>
      policy.includes(`"${action}"`) ||
      (action === 'sts:GetCallerIdentity' && policy.includes(action))
    expect(permissions.filter((action) => !documented(action))).toEqual([])
  })
})
