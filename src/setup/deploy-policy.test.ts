/**
 * docs/iam-policy.json, and the copy of it docs/iam.md shows, are generated from deployPolicy and
 * checked here so that they cannot drift from it. `UPDATE_DOCS=1 npm test -- setup/deploy-policy`
 * rewrites both.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as prettier from 'prettier'
import { REPO_ROOT } from '../../__tests__/helpers/run-action.js'
import { deployPolicy } from './deploy-policy.js'

const UPDATE = process.env.UPDATE_DOCS === '1'
const POLICY_JSON = join(REPO_ROOT, 'docs/iam-policy.json')
const IAM_MD = join(REPO_ROOT, 'docs/iam.md')
const PLACEHOLDERS = {
  bucket: 'MODEL_BUCKET',
  accountId: 'ACCOUNT_ID',
  distributionId: 'DISTRIBUTION_ID'
}

/** docs/iam-policy.json as it should read: the policy with its placeholders, as prettier writes it. */
async function generatedPolicyJson(): Promise<string> {
  const options = await prettier.resolveConfig(POLICY_JSON)
  const json = JSON.stringify(deployPolicy(PLACEHOLDERS), null, 2)
  return prettier.format(json, { ...options, filepath: POLICY_JSON })
}

/** Where docs/iam.md shows the policy: its first JSON block. */
function policyBlockOf(markdown: string): { at: number; to: number } {
  const at = markdown.indexOf('```json\n') + '```json\n'.length
  const to = markdown.indexOf('```', at)
  if (at < '```json\n'.length || to < 0) throw new Error('docs/iam.md shows no JSON block')
  return { at, to }
}

const actionsOf = (doc: ReturnType<typeof deployPolicy>): string[] =>
  doc.Statement.flatMap((s) => [s.Action].flat())

describe('deployPolicy', () => {
  it('is what docs/iam-policy.json says, with its placeholders', async () => {
    const generated = await generatedPolicyJson()
    if (UPDATE) writeFileSync(POLICY_JSON, generated)
    expect(readFileSync(POLICY_JSON, 'utf8')).toBe(generated)
  })

  it('is what docs/iam.md shows', async () => {
    const generated = await generatedPolicyJson()
    const markdown = readFileSync(IAM_MD, 'utf8')
    const { at, to } = policyBlockOf(markdown)
    if (UPDATE) writeFileSync(IAM_MD, markdown.slice(0, at) + generated + markdown.slice(to))
    expect(readFileSync(IAM_MD, 'utf8').slice(at, at + generated.length)).toBe(generated)
  })

  it('fills in the bucket, the account, the distribution and the partition', () => {
    const policy = deployPolicy({
      bucket: 'models',
      accountId: '123456789012',
      distributionId: 'E2ABC',
      partition: 'aws-cn'
    })
    expect(new Set(policy.Statement.flatMap((s) => [s.Resource].flat()))).toEqual(
      new Set([
        'arn:aws-cn:s3:::models',
        'arn:aws-cn:s3:::models/*',
        'arn:aws-cn:cloudfront::123456789012:distribution/E2ABC',
        '*'
      ])
    )
    expect(deployPolicy({ ...PLACEHOLDERS, bucket: 'models' }).Statement[0].Resource).toBe(
      'arn:aws:s3:::models'
    )
  })

  it('allows only named actions: no `*`, no `service:*`, no wildcard at all', () => {
    const actions = actionsOf(deployPolicy(PLACEHOLDERS))
    expect(actions).not.toContain('*')
    expect(actions).not.toContain('s3:*')
    expect(actions.filter((a) => a.includes('*') || a.includes('?'))).toEqual([])
    expect(actions.every((a) => /^(s3|cloudfront):[A-Za-z]+$/.test(a))).toBe(true)
    expect(new Set(actions).size).toBe(actions.length)
  })

  it('only allows, and grants on `*` only the CloudFront reads that take no narrower resource', () => {
    const policy = deployPolicy(PLACEHOLDERS)
    expect(policy.Statement.every((s) => s.Effect === 'Allow')).toBe(true)
    expect(policy.Statement.filter((s) => s.Resource === '*').flatMap((s) => s.Action)).toEqual([
      'cloudfront:GetOriginAccessControl',
      'cloudfront:GetKeyGroup',
      'cloudfront:ListKeyGroups',
      'cloudfront:GetPublicKey'
    ])
  })

  it('gives every statement a unique Sid', () => {
    const sids = deployPolicy(PLACEHOLDERS).Statement.map((s) => s.Sid)
    expect(sids.every((sid) => sid && /^[A-Za-z0-9]+$/.test(sid))).toBe(true)
    expect(new Set(sids).size).toBe(sids.length)
  })
})
