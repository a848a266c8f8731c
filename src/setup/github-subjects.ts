/**
 * Which GitHub workflows may take the deploy role: the `sub` claims of GitHub's OIDC tokens the
 * role's trust policy accepts (IAM matches them with StringLike, so `*` is a wildcard). GitHub
 * writes `repo:OWNER/NAME:ref:refs/heads/BRANCH` for a job on a branch, and
 * `repo:OWNER/NAME:environment:ENV` instead for a job that names an environment.
 */
import { InputError } from '../common/errors.js'

export interface GitHubRepo {
  owner: string
  name: string
}

// GitHub's rules: an owner (user or organisation) is 1 to 39 letters, digits or hyphens, not
// starting with a hyphen; a repository name is 1 to 100 of letters, digits, `.`, `_` and `-`,
// but not `.` or `..`.
const OWNER = '[A-Za-z0-9][A-Za-z0-9-]{0,38}'
const NAME = '[A-Za-z0-9._-]{1,100}'
/** `OWNER/NAME` as a regular expression's source (the CloudFormation template checks it too). */
export const GITHUB_REPO_PATTERN = `${OWNER}/${NAME}`
const REPO = new RegExp(`^${GITHUB_REPO_PATTERN}$`)

/** `OWNER/NAME` as GitHub allows it; an InputError otherwise. */
export function parseGitHubRepo(text: string): GitHubRepo {
  const [owner, name] = text.trim().split('/')
  const valid = REPO.test(text.trim()) && name !== '.' && name !== '..'
  if (!valid) {
    throw new InputError(
      `Invalid GitHub repository "${text}".`,
      'Give it as OWNER/NAME, e.g. `--github-repo my-org/my-models`: the owner is 1 to 39 letters, ' +
        'digits or hyphens (not starting with one), the name 1 to 100 letters, digits, `.`, `_` or `-`.'
    )
  }
  return { owner, name }
}

export interface GitHubSubjectOptions {
  /** `OWNER/NAME`. */
  repo: string
  /** Only jobs on this branch (`release/*` is a pattern). */
  branch?: string
  /** Only jobs that run in this GitHub environment. */
  environment?: string
}

/**
 * The `sub` patterns of the trust policy: any workflow of the repository by default; with a
 * branch and/or an environment, only jobs on that branch or in that environment (either, when
 * both are given: a job in an environment carries the environment in its claim, not the branch).
 */
export function githubSubjects(options: GitHubSubjectOptions): string[] {
  const { owner, name } = parseGitHubRepo(options.repo)
  return subjectPatterns(`${owner}/${name}`, {
    branch: nonEmpty(options.branch, 'branch'),
    environment: nonEmpty(options.environment, 'environment')
  })
}

/**
 * The patterns for a repository already checked (or a CloudFormation `${GitHubRepo}`, which
 * is why this takes the text as it is).
 */
export function subjectPatterns(
  repo: string,
  narrowing: { branch?: string; environment?: string }
): string[] {
  const { branch, environment } = narrowing
  const subjects = [
    ...(branch !== undefined ? [`repo:${repo}:ref:refs/heads/${branch}`] : []),
    ...(environment !== undefined ? [`repo:${repo}:environment:${environment}`] : [])
  ]
  return subjects.length > 0 ? subjects : [`repo:${repo}:*`]
}

/** undefined when not given; an InputError when given empty or with spaces around it. */
function nonEmpty(value: string | undefined, what: string): string | undefined {
  if (value === undefined) return undefined
  if (value === '' || value.trim() !== value) {
    throw new InputError(
      `Invalid GitHub ${what} "${value}".`,
      `Give the ${what} name exactly as GitHub shows it, or leave it out.`
    )
  }
  return value
}
