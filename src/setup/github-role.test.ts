import {
  CreateRoleCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  PutRolePolicyCommand,
  TagRoleCommand,
  UpdateAssumeRolePolicyCommand,
  type Role
} from '@aws-sdk/client-iam'
import { awsError } from '../../__fixtures__/preflight-world.js'
import { ACCOUNT, iamEncoded, mockIamClients, noSuchEntity } from '../../__fixtures__/setup-iam.js'
import { setupContext } from '../../__fixtures__/setup-context.js'
import { AwsError, DeployError } from '../common/errors.js'
import { deployPolicy } from './deploy-policy.js'
import { defaultRoleName, ensureGitHubRole, type GitHubRoleOptions } from './github-role.js'

const { iamMock } = mockIamClients()

const ROLE = 'model-cdn-deploy-models'
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/${ROLE}`
const PROVIDER = `arn:aws:iam::${ACCOUNT}:oidc-provider/token.actions.githubusercontent.com`
const OPTIONS: GitHubRoleOptions = {
  roleName: ROLE,
  providerArn: PROVIDER,
  subjects: ['repo:o/r:ref:refs/heads/main'],
  bucket: 'models',
  accountId: ACCOUNT,
  distributionId: 'E2ABC'
}
const POLICY = deployPolicy({ bucket: 'models', accountId: ACCOUNT, distributionId: 'E2ABC' })

const OUR_TRUST = {
  Sid: 'ModelCdnDeployGitHubOidc',
  Effect: 'Allow',
  Principal: { Federated: PROVIDER },
  Action: 'sts:AssumeRoleWithWebIdentity',
  Condition: {
    StringEquals: { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com' },
    StringLike: { 'token.actions.githubusercontent.com:sub': ['repo:o/r:ref:refs/heads/main'] }
  }
}
const UNRELATED = {
  Sid: 'LetTheOpsAccountIn',
  Effect: 'Allow',
  Principal: { AWS: 'arn:aws:iam::999999999999:root' },
  Action: 'sts:AssumeRole'
}
const SETUP_TAGS = [{ Key: 'model-cdn-deploy', Value: 'setup' }]

const writes = () => [
  ...iamMock.commandCalls(CreateRoleCommand),
  ...iamMock.commandCalls(UpdateAssumeRolePolicyCommand),
  ...iamMock.commandCalls(TagRoleCommand),
  ...iamMock.commandCalls(PutRolePolicyCommand)
]
const inputsOf = <T>(calls: { args: [{ input: T }] }[]): T[] => calls.map((c) => c.args[0].input)
const parsed = (text: string | undefined) => JSON.parse(text ?? '')

/**
 * A role as GetRole returns it (its trust policy URL-encoded), with its inline policy (null:
 * none).
 */
function existingRole(
  trust: object[],
  { tags = SETUP_TAGS, policy = POLICY as object | null } = {}
) {
  const role: Role = {
    Path: '/',
    RoleName: ROLE,
    RoleId: 'AROAEXAMPLE',
    Arn: ROLE_ARN,
    CreateDate: new Date(0),
    AssumeRolePolicyDocument: iamEncoded({ Version: '2012-10-17', Statement: trust }),
    Tags: tags
  }
  iamMock.on(GetRoleCommand, { RoleName: ROLE }).resolves({ Role: role })
  if (policy) {
    iamMock.on(GetRolePolicyCommand).resolves({
      RoleName: ROLE,
      PolicyName: 'model-cdn-deploy',
      PolicyDocument: iamEncoded(policy)
    })
  } else {
    iamMock.on(GetRolePolicyCommand).rejects(noSuchEntity())
  }
}

describe('ensureGitHubRole', () => {
  describe('without the role', () => {
    beforeEach(() => {
      iamMock.on(GetRoleCommand).rejects(noSuchEntity())
      iamMock.on(CreateRoleCommand).resolves({ Role: { Arn: ROLE_ARN } as Role })
    })

    it('creates it, trusting GitHub for the subjects, tagged, with the deploy policy inline', async () => {
      const { ctx, changes } = setupContext()
      expect(await ensureGitHubRole(ctx, OPTIONS)).toBe(ROLE_ARN)
      const [create] = inputsOf(iamMock.commandCalls(CreateRoleCommand))
      expect({
        ...create,
        AssumeRolePolicyDocument: parsed(create.AssumeRolePolicyDocument)
      }).toEqual({
        RoleName: ROLE,
        AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [OUR_TRUST] },
        Description: 'model-cdn-deploy: deploys to s3://models from GitHub Actions',
        Tags: SETUP_TAGS
      })
      const puts = inputsOf(iamMock.commandCalls(PutRolePolicyCommand))
      expect(puts.map((p) => [p.RoleName, p.PolicyName, parsed(p.PolicyDocument)])).toEqual([
        [ROLE, 'model-cdn-deploy', POLICY]
      ])
      // A new role has no inline policy to read, nor a tag to add.
      expect(iamMock.commandCalls(GetRolePolicyCommand)).toEqual([])
      expect(iamMock.commandCalls(TagRoleCommand)).toEqual([])
      expect(changes).toEqual([
        {
          resource: 'role',
          action: 'create',
          detail: `${ROLE}, trusting GitHub Actions of repo:o/r:ref:refs/heads/main`
        },
        {
          resource: 'role-policy',
          action: 'create',
          detail: `model-cdn-deploy on role ${ROLE}: deploy to s3://models, invalidate distribution E2ABC`
        }
      ])
    })

    it('in a dry run, records both without writing, even before the provider and distribution exist', async () => {
      const { ctx, changes } = setupContext(true)
      const options = { ...OPTIONS, providerArn: undefined, distributionId: undefined }
      expect(await ensureGitHubRole(ctx, options)).toBeUndefined()
      expect(writes()).toEqual([])
      expect(changes.map((c) => [c.resource, c.action])).toEqual([
        ['role', 'create'],
        ['role-policy', 'create']
      ])
      expect(changes[1].detail).toContain('invalidate distribution (to be created)')
    })
  })

  it('changes nothing on a second run (other trust statements, key order and encoding aside)', async () => {
    const reordered = Object.fromEntries(Object.entries(OUR_TRUST).reverse())
    existingRole([UNRELATED, reordered], { tags: [{ Key: 'team', Value: 'ml' }, ...SETUP_TAGS] })
    const { ctx, changes } = setupContext()
    expect(await ensureGitHubRole(ctx, OPTIONS)).toBe(ROLE_ARN)
    expect(writes()).toEqual([])
    expect(changes).toEqual([])
  })

  it('finds the provider ARN from the account when none is given (a dry run before the provider)', async () => {
    existingRole([OUR_TRUST])
    const { ctx, changes } = setupContext(true)
    await ensureGitHubRole(ctx, { ...OPTIONS, providerArn: undefined })
    expect(changes).toEqual([])
  })

  it('adds its trust statement to a role without it, keeping the others', async () => {
    existingRole([UNRELATED])
    const { ctx, changes } = setupContext()
    await ensureGitHubRole(ctx, OPTIONS)
    const updates = inputsOf(iamMock.commandCalls(UpdateAssumeRolePolicyCommand))
    expect(updates.map((u) => [u.RoleName, parsed(u.PolicyDocument)])).toEqual([
      [ROLE, { Version: '2012-10-17', Statement: [UNRELATED, OUR_TRUST] }]
    ])
    expect(changes).toEqual([
      {
        resource: 'role',
        action: 'update',
        detail: 'trust statement ModelCdnDeployGitHubOidc added (repo:o/r:ref:refs/heads/main)'
      }
    ])
    expect(iamMock.commandCalls(CreateRoleCommand)).toEqual([])
  })

  it('corrects its own statement in place when it differs', async () => {
    const stale = {
      ...OUR_TRUST,
      Condition: { StringLike: { 'token.actions.githubusercontent.com:sub': 'repo:o/r:*' } }
    }
    existingRole([stale, UNRELATED])
    const { ctx, changes } = setupContext()
    await ensureGitHubRole(ctx, OPTIONS)
    const [update] = inputsOf(iamMock.commandCalls(UpdateAssumeRolePolicyCommand))
    expect(parsed(update.PolicyDocument).Statement).toEqual([OUR_TRUST, UNRELATED])
    expect(changes.map((c) => c.detail)).toEqual([
      'trust statement ModelCdnDeployGitHubOidc corrected (repo:o/r:ref:refs/heads/main)'
    ])
  })

  it('tags a role without the setup tag', async () => {
    existingRole([OUR_TRUST], { tags: [] })
    const { ctx, changes } = setupContext()
    await ensureGitHubRole(ctx, OPTIONS)
    expect(inputsOf(iamMock.commandCalls(TagRoleCommand))).toEqual([
      { RoleName: ROLE, Tags: SETUP_TAGS }
    ])
    expect(changes).toEqual([
      { resource: 'role', action: 'update', detail: 'tag model-cdn-deploy=setup added' }
    ])
  })

  it.each([
    ['absent', null, 'create'],
    ['different', { ...POLICY, Statement: POLICY.Statement.slice(1) }, 'update']
  ])('puts the inline policy when %s', async (_, policy, action) => {
    existingRole([OUR_TRUST], { policy })
    const { ctx, changes } = setupContext()
    await ensureGitHubRole(ctx, OPTIONS)
    const puts = inputsOf(iamMock.commandCalls(PutRolePolicyCommand))
    expect(puts.map((p) => parsed(p.PolicyDocument))).toEqual([POLICY])
    expect(changes.map((c) => [c.resource, c.action])).toEqual([['role-policy', action]])
  })

  it('in a dry run, reads the role and records every correction without writing', async () => {
    existingRole([UNRELATED], { tags: [], policy: null })
    const { ctx, changes } = setupContext(true)
    expect(await ensureGitHubRole(ctx, { ...OPTIONS, distributionId: undefined })).toBe(ROLE_ARN)
    expect(writes()).toEqual([])
    expect(changes.map((c) => [c.resource, c.action])).toEqual([
      ['role', 'update'],
      ['role', 'update'],
      ['role-policy', 'create']
    ])
  })

  it('refuses to write a policy without a distribution outside a dry run', async () => {
    existingRole([OUR_TRUST])
    await expect(
      ensureGitHubRole(setupContext().ctx, { ...OPTIONS, distributionId: undefined })
    ).rejects.toThrow(DeployError)
    expect(writes()).toEqual([])
  })

  it('names the permission IAM refused', async () => {
    existingRole([OUR_TRUST], { policy: null })
    iamMock.on(PutRolePolicyCommand).rejects(awsError('AccessDenied', 403, 'not authorized'))
    const err = (await ensureGitHubRole(setupContext().ctx, OPTIONS).catch(
      (e: unknown) => e
    )) as AwsError
    expect(err).toBeInstanceOf(AwsError)
    expect(err.message).toContain(
      `Failed writing the inline policy model-cdn-deploy of IAM role "${ROLE}" (iam:PutRolePolicy): AWS said AccessDenied`
    )
    expect(err.hint).toContain('may not call iam:PutRolePolicy')
  })

  it('says which trust policy it could not read', async () => {
    iamMock.on(GetRoleCommand).resolves({
      Role: { RoleName: ROLE, Arn: ROLE_ARN, AssumeRolePolicyDocument: '%7Bnot%20json' } as Role
    })
    await expect(ensureGitHubRole(setupContext().ctx, OPTIONS)).rejects.toThrow(
      `Could not read the trust policy of IAM role "${ROLE}"`
    )
  })
})

describe('defaultRoleName', () => {
  it('is model-cdn-deploy-<bucket> when it fits', () => {
    expect(defaultRoleName('models')).toBe('model-cdn-deploy-models')
    expect(defaultRoleName('b'.repeat(47))).toBe(`model-cdn-deploy-${'b'.repeat(47)}`)
  })

  it('cuts a long one to IAM’s 64 characters, keeping two alike names apart', () => {
    const a = defaultRoleName(`${'b'.repeat(50)}-eu`)
    const b = defaultRoleName(`${'b'.repeat(50)}-us`)
    expect([a.length, b.length]).toEqual([64, 64])
    expect(a).not.toBe(b)
    expect(a).toMatch(/^model-cdn-deploy-b+-[0-9a-f]{8}$/)
    expect(defaultRoleName(`${'b'.repeat(50)}-eu`)).toBe(a)
  })
})
