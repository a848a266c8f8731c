import { InputError } from '../common/errors.js'
import { githubSubjects, parseGitHubRepo } from './github-subjects.js'

describe('parseGitHubRepo', () => {
  it.each([
    ['octo-org/octo-repo', 'octo-org', 'octo-repo'],
    ['a/b', 'a', 'b'],
    [`${'a'.repeat(39)}/${'b'.repeat(100)}`, 'a'.repeat(39), 'b'.repeat(100)],
    ['Org9/my_models.v2-x', 'Org9', 'my_models.v2-x'],
    ['o/.github', 'o', '.github'],
    ['o/...', 'o', '...']
  ])('reads %s', (text, owner, name) => {
    expect(parseGitHubRepo(text)).toEqual({ owner, name })
  })

  it.each([
    ['', 'empty'],
    ['octo-org', 'no name'],
    ['octo-org/', 'an empty name'],
    ['/repo', 'an empty owner'],
    ['a/b/c', 'three parts'],
    ['-org/repo', 'an owner starting with a hyphen'],
    [`${'a'.repeat(40)}/repo`, 'an owner of 40 characters'],
    ['my_org/repo', 'an underscore in the owner'],
    ['my.org/repo', 'a dot in the owner'],
    [`org/${'b'.repeat(101)}`, 'a name of 101 characters'],
    ['org/.', 'the name `.`'],
    ['org/..', 'the name `..`'],
    ['org/my repo', 'a space in the name'],
    ['org/repo*', 'a wildcard in the name'],
    ['https://github.com/org/repo', 'a URL']
  ])('refuses %j (%s) with an InputError saying the form', (text) => {
    expect(() => parseGitHubRepo(text)).toThrow(InputError)
    expect(() => parseGitHubRepo(text)).toThrow(`Invalid GitHub repository "${text}".`)
    try {
      parseGitHubRepo(text)
    } catch (err) {
      expect((err as InputError).hint).toContain('OWNER/NAME')
    }
  })
})

describe('githubSubjects', () => {
  it('trusts every workflow of the repository by default', () => {
    expect(githubSubjects({ repo: 'octo-org/octo-repo' })).toEqual(['repo:octo-org/octo-repo:*'])
  })

  it('narrows to a branch', () => {
    expect(githubSubjects({ repo: 'o/r', branch: 'main' })).toEqual([
      'repo:o/r:ref:refs/heads/main'
    ])
    expect(githubSubjects({ repo: 'o/r', branch: 'release/*' })).toEqual([
      'repo:o/r:ref:refs/heads/release/*'
    ])
  })

  it('narrows to an environment', () => {
    expect(githubSubjects({ repo: 'o/r', environment: 'prod' })).toEqual([
      'repo:o/r:environment:prod'
    ])
  })

  it('allows either with both (a job in an environment carries no branch in its claim)', () => {
    expect(githubSubjects({ repo: 'o/r', branch: 'main', environment: 'prod' })).toEqual([
      'repo:o/r:ref:refs/heads/main',
      'repo:o/r:environment:prod'
    ])
  })

  it('refuses a malformed repository, and an empty or padded branch or environment', () => {
    expect(() => githubSubjects({ repo: 'o' })).toThrow(InputError)
    expect(() => githubSubjects({ repo: 'o/r', branch: '' })).toThrow('Invalid GitHub branch ""')
    expect(() => githubSubjects({ repo: 'o/r', environment: ' prod' })).toThrow(
      'Invalid GitHub environment " prod"'
    )
  })
})
