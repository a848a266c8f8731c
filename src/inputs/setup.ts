/**
 * The `setup` command's flags, defined once (name, kind, default, help) and parsed here: all
 * problems reported at once, before any AWS call.
 */
import { readFileSync } from 'node:fs'
import { InputError } from '../common/errors.js'
import {
  DEFAULT_NONCURRENT_VERSION_DAYS,
  DEFAULT_PREVIEW_DAYS,
  DEFAULT_PRICE_CLASS,
  PRICE_CLASSES,
  type PriceClass
} from '../setup/defaults.js'
import { defaultRoleName } from '../setup/github-role.js'
import { parseGitHubRepo } from '../setup/github-subjects.js'
import { checkPublicKeyPem } from '../setup/signing-keys.js'
import type { InputSpec } from './schema.js'

export const SETUP_SPECS: readonly InputSpec[] = [
  {
    name: 'bucket',
    kind: 'text',
    required: true,
    description: 'Name of the S3 bucket to create or complete.'
  },
  {
    name: 'aws-region',
    kind: 'text',
    default: '',
    description: 'Region of the bucket. Empty: AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1.'
  },
  {
    name: 'public-key',
    kind: 'text',
    default: '',
    description:
      'A PEM file holding an RSA 2048 public key: becomes a CloudFront public key in a key group the distribution trusts, so versions can be served through signed URLs. The private key stays with you.'
  },
  {
    name: 'signed-path-pattern',
    kind: 'text',
    default: '',
    description:
      'With `public-key`: trust the key group only for this path pattern (e.g. `private/*`), leaving the rest unsigned. Empty: the default behaviour, so every URL must be signed.'
  },
  {
    name: 'github-repo',
    kind: 'text',
    default: '',
    description:
      'OWNER/NAME: creates the GitHub OIDC provider (if absent) and a role that workflows of this repository can assume, with the least-privilege deploy policy.'
  },
  {
    name: 'github-branch',
    kind: 'text',
    default: '',
    description: 'With `github-repo`: only workflows running on this branch may assume the role.'
  },
  {
    name: 'github-environment',
    kind: 'text',
    default: '',
    description: 'With `github-repo`: only jobs in this GitHub environment may assume the role.'
  },
  {
    name: 'role-name',
    kind: 'text',
    default: '',
    description: 'Name of the role. Empty: `model-cdn-deploy-<bucket>`.'
  },
  {
    name: 'distribution-id',
    kind: 'text',
    default: '',
    description:
      'Complete this existing distribution instead of finding or creating the one setup manages.'
  },
  {
    name: 'domain',
    kind: 'text',
    default: '',
    description:
      'A custom domain for the distribution (e.g. `models.example.com`); needs `certificate-arn`.'
  },
  {
    name: 'certificate-arn',
    kind: 'text',
    default: '',
    description:
      'ACM certificate for `domain`, in us-east-1 (CloudFront reads certificates only there).'
  },
  {
    name: 'price-class',
    kind: 'choice',
    choices: PRICE_CLASSES,
    default: DEFAULT_PRICE_CLASS,
    description:
      'CloudFront edge locations: all (fastest everywhere), or the cheaper subsets `PriceClass_200` and `PriceClass_100`.'
  },
  {
    name: 'noncurrent-version-days',
    kind: 'number',
    default: String(DEFAULT_NONCURRENT_VERSION_DAYS),
    range: { min: 1, max: 3650, unit: 'days', integer: true },
    description: `Days a replaced or deleted object's old version is kept for rollback before it expires (1 to 3650).`
  },
  {
    name: 'preview-days',
    kind: 'number',
    default: String(DEFAULT_PREVIEW_DAYS),
    range: { min: 1, max: 3650, unit: 'days', integer: true },
    description:
      'Days after which pull request preview objects (tagged by the deploy) expire, if no clean-up removed them (1 to 3650).'
  },
  {
    name: 'dry-run',
    kind: 'boolean',
    default: 'false',
    description: 'Print what would be created or changed, and change nothing.'
  }
]

export interface SetupOptions {
  bucket: string
  region: string
  /** Canonical PEM; checked to be RSA 2048 when read. */
  publicKeyPem?: string
  signedPathPattern?: string
  github?: { repo: string; branch?: string; environment?: string }
  roleName: string
  distributionId?: string
  domain?: string
  certificateArn?: string
  priceClass: PriceClass
  noncurrentVersionDays: number
  previewDays: number
  dryRun: boolean
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/
const CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[\w-]+$/
const PATH_PATTERN = /^[A-Za-z0-9_\-.*$/~"'@:+&]{1,255}$/
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/

/** Reads and checks every flag; what AWS accepts (key, repository) is checked by its step. */
export function parseSetupOptions(
  read: (name: string) => string,
  env: NodeJS.ProcessEnv
): SetupOptions {
  const problems: string[] = []
  const text = (name: string) => read(name).trim()
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn()
    } catch (err) {
      if (!(err instanceof InputError)) throw err
      problems.push(`${err.message}${err.hint ? ` ${err.hint}` : ''}`)
      return undefined
    }
  }
  const bucket = text('bucket')
  if (!bucket) problems.push('`bucket` is required.')
  const region = text('aws-region') || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1'
  if (!REGION.test(region))
    problems.push(`\`aws-region\` "${region}" is not an AWS region (e.g. us-east-1).`)
  const options: SetupOptions = {
    bucket,
    region,
    publicKeyPem: attempt(() => readPublicKey(text('public-key'))),
    signedPathPattern: pathPattern(text('signed-path-pattern'), text('public-key'), problems),
    github: github(text, problems, attempt),
    roleName: text('role-name') || defaultRoleName(bucket),
    distributionId: optional(text('distribution-id')),
    ...customDomain(text('domain'), text('certificate-arn'), problems),
    priceClass: priceClass(text('price-class'), problems),
    noncurrentVersionDays: days(text, 'noncurrent-version-days', problems),
    previewDays: days(text, 'preview-days', problems),
    dryRun: /^(true|yes|on|1)$/i.test(text('dry-run'))
  }
  if (!/^[\w+=,.@-]{1,64}$/.test(options.roleName)) {
    problems.push(
      `\`role-name\` "${options.roleName}" is not a valid IAM role name (1 to 64 of letters, digits and +=,.@_-).`
    )
  }
  if (problems.length) {
    throw new InputError(
      `Invalid setup flags:\n- ${problems.join('\n- ')}`,
      'Run `model-cdn-deploy setup --help` for each flag.'
    )
  }
  return options
}

const optional = (value: string) => value || undefined

function readPublicKey(file: string): string | undefined {
  if (!file) return undefined
  let pem: string
  try {
    pem = readFileSync(file, 'utf8')
  } catch (err) {
    throw new InputError(
      `Cannot read the public key file ${file}: ${(err as Error).message}.`,
      'Pass the path of a PEM file, e.g. `--public-key public_key.pem`.'
    )
  }
  return checkPublicKeyPem(pem)
}

function pathPattern(pattern: string, publicKey: string, problems: string[]): string | undefined {
  if (!pattern) return undefined
  if (!publicKey)
    problems.push(
      '`signed-path-pattern` needs `public-key`: it says where signed URLs are required.'
    )
  if (!PATH_PATTERN.test(pattern) || pattern === '*') {
    problems.push(
      `\`signed-path-pattern\` "${pattern}" is not a CloudFront path pattern other than the default (e.g. \`private/*\`).`
    )
  }
  return pattern.replace(/^\/+/, '')
}

function github(
  text: (name: string) => string,
  problems: string[],
  attempt: <T>(fn: () => T) => T | undefined
): SetupOptions['github'] {
  const repo = text('github-repo')
  const branch = optional(text('github-branch'))
  const environment = optional(text('github-environment'))
  if (!repo) {
    if (branch || environment)
      problems.push(
        '`github-branch` and `github-environment` narrow `github-repo`, which is not given.'
      )
    return undefined
  }
  const parsed = attempt(() => parseGitHubRepo(repo))
  return parsed ? { repo: `${parsed.owner}/${parsed.name}`, branch, environment } : undefined
}

function customDomain(domain: string, certificateArn: string, problems: string[]) {
  if (!domain && !certificateArn) return {}
  if (!domain || !certificateArn)
    problems.push(
      '`domain` and `certificate-arn` go together: CloudFront serves a custom domain only with its certificate.'
    )
  if (domain && !DOMAIN.test(domain.toLowerCase()))
    problems.push(`\`domain\` "${domain}" is not a domain name.`)
  const region = CERTIFICATE_ARN.exec(certificateArn)?.[1]
  if (certificateArn && !region)
    problems.push(`\`certificate-arn\` "${certificateArn}" is not an ACM certificate ARN.`)
  else if (region && region !== 'us-east-1')
    problems.push(
      `\`certificate-arn\` is in ${region}; CloudFront uses certificates in us-east-1 only: request or import it there.`
    )
  return { domain: optional(domain.toLowerCase()), certificateArn: optional(certificateArn) }
}

function priceClass(value: string, problems: string[]): PriceClass {
  const given = value || DEFAULT_PRICE_CLASS
  const found = PRICE_CLASSES.find((c) => c.toLowerCase() === given.toLowerCase())
  if (!found)
    problems.push(`\`price-class\` must be one of ${PRICE_CLASSES.join(', ')}, got "${value}".`)
  return found ?? DEFAULT_PRICE_CLASS
}

function days(text: (name: string) => string, name: string, problems: string[]): number {
  const spec = SETUP_SPECS.find((s) => s.name === name) as InputSpec
  const given = text(name) || (spec.default as string)
  const n = Number(given)
  const { min, max } = spec.range as { min: number; max: number }
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(
      `\`${name}\` must be a whole number of days between ${min} and ${max}, got ${given}.`
    )
    return Number(spec.default)
  }
  return n
}
