import {
  AddClientIDToOpenIDConnectProviderCommand,
  CreateOpenIDConnectProviderCommand,
  GetOpenIDConnectProviderCommand,
  ListOpenIDConnectProvidersCommand
} from '@aws-sdk/client-iam'
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts'
import { awsError } from '../../__fixtures__/preflight-world.js'
import { ACCOUNT, mockIamClients } from '../../__fixtures__/setup-iam.js'
import { setupContext } from '../../__fixtures__/setup-context.js'
import { AwsError } from '../common/errors.js'
import { accountIdOf } from './account.js'
import { ensureGitHubOidcProvider, githubOidcProviderArn } from './github-oidc-provider.js'

const { iamMock, stsMock } = mockIamClients()
const ARN = `arn:aws:iam::${ACCOUNT}:oidc-provider/token.actions.githubusercontent.com`
const OTHER = `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC`

const writes = () => [
  ...iamMock.commandCalls(CreateOpenIDConnectProviderCommand),
  ...iamMock.commandCalls(AddClientIDToOpenIDConnectProviderCommand)
]

function existingProvider(clientIds: string[]) {
  iamMock.on(ListOpenIDConnectProvidersCommand).resolves({
    OpenIDConnectProviderList: [{ Arn: OTHER }, { Arn: ARN }]
  })
  iamMock.on(GetOpenIDConnectProviderCommand, { OpenIDConnectProviderArn: ARN }).resolves({
    Url: 'token.actions.githubusercontent.com',
    ClientIDList: clientIds,
    ThumbprintList: ['6938fd4d98bab03faadb97b34396831e3780aea1']
  })
}

describe('ensureGitHubOidcProvider', () => {
  it('creates the provider when the account has none for GitHub', async () => {
    iamMock.on(ListOpenIDConnectProvidersCommand).resolves({
      OpenIDConnectProviderList: [{ Arn: OTHER }]
    })
    iamMock.on(CreateOpenIDConnectProviderCommand).resolves({ OpenIDConnectProviderArn: ARN })
    const { ctx, changes } = setupContext()
    expect(await ensureGitHubOidcProvider(ctx)).toBe(ARN)
    expect(
      iamMock.commandCalls(CreateOpenIDConnectProviderCommand).map((c) => c.args[0].input)
    ).toEqual([
      {
        Url: 'https://token.actions.githubusercontent.com',
        ClientIDList: ['sts.amazonaws.com'],
        ThumbprintList: [
          '6938fd4d98bab03faadb97b34396831e3780aea1',
          '1c58a3a8518e8759bf075b76b750d4f2df264fcd'
        ],
        Tags: [{ Key: 'model-cdn-deploy', Value: 'setup' }]
      }
    ])
    expect(changes).toEqual([
      {
        resource: 'github-oidc-provider',
        action: 'create',
        detail: 'https://token.actions.githubusercontent.com (client id sts.amazonaws.com)'
      }
    ])
  })

  it('in a dry run, records the creation, writes nothing and has no ARN yet', async () => {
    iamMock.on(ListOpenIDConnectProvidersCommand).resolves({ OpenIDConnectProviderList: [] })
    const { ctx, changes } = setupContext(true)
    expect(await ensureGitHubOidcProvider(ctx)).toBeUndefined()
    expect(writes()).toEqual([])
    expect(changes.map((c) => c.action)).toEqual(['create'])
  })

  it('finds the existing provider by its ARN and changes nothing when it has the audience', async () => {
    existingProvider(['sigstore', 'sts.amazonaws.com'])
    const { ctx, changes } = setupContext()
    expect(await ensureGitHubOidcProvider(ctx)).toBe(ARN)
    expect(writes()).toEqual([])
    expect(changes).toEqual([])
    expect(iamMock.commandCalls(GetOpenIDConnectProviderCommand)).toHaveLength(1)
  })

  it('adds the sts.amazonaws.com audience to a provider without it, keeping the others', async () => {
    existingProvider(['sigstore'])
    iamMock.on(AddClientIDToOpenIDConnectProviderCommand).resolves({})
    const { ctx, changes } = setupContext()
    expect(await ensureGitHubOidcProvider(ctx)).toBe(ARN)
    expect(
      iamMock.commandCalls(AddClientIDToOpenIDConnectProviderCommand).map((c) => c.args[0].input)
    ).toEqual([{ OpenIDConnectProviderArn: ARN, ClientID: 'sts.amazonaws.com' }])
    expect(iamMock.commandCalls(CreateOpenIDConnectProviderCommand)).toEqual([])
    expect(changes).toEqual([
      {
        resource: 'github-oidc-provider',
        action: 'update',
        detail: 'client id sts.amazonaws.com added'
      }
    ])
  })

  it('in a dry run, records the missing audience without adding it, and returns the ARN', async () => {
    existingProvider([])
    const { ctx, changes } = setupContext(true)
    expect(await ensureGitHubOidcProvider(ctx)).toBe(ARN)
    expect(writes()).toEqual([])
    expect(changes.map((c) => c.detail)).toEqual(['client id sts.amazonaws.com added'])
  })

  it('names the refused permission', async () => {
    iamMock.on(ListOpenIDConnectProvidersCommand).resolves({ OpenIDConnectProviderList: [] })
    iamMock
      .on(CreateOpenIDConnectProviderCommand)
      .rejects(
        awsError(
          'AccessDenied',
          403,
          'User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iam:CreateOpenIDConnectProvider'
        )
      )
    const err = await ensureGitHubOidcProvider(setupContext().ctx).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AwsError)
    expect((err as AwsError).message).toContain(
      'Failed creating the IAM OIDC provider https://token.actions.githubusercontent.com (iam:CreateOpenIDConnectProvider): AWS said AccessDenied (HTTP 403)'
    )
    expect((err as AwsError).hint).toBe(
      'The credentials running setup may not call iam:CreateOpenIDConnectProvider: allow it to them, or run setup as an administrator of the account. Then run setup again: what it already set up is found again and kept.'
    )
  })

  it('keeps AWS’s own hint for other failures', async () => {
    iamMock
      .on(ListOpenIDConnectProvidersCommand)
      .rejects(
        awsError('ExpiredToken', 400, 'The security token included in the request is expired')
      )
    const err = (await ensureGitHubOidcProvider(setupContext().ctx).catch(
      (e: unknown) => e
    )) as AwsError
    expect(err.message).toContain('listing the IAM OIDC providers (iam:ListOpenIDConnectProviders)')
    expect(err.hint).toContain('credentials are missing, wrong or expired')
  })
})

describe('githubOidcProviderArn', () => {
  it('is the ARN IAM gives the provider, in any partition', () => {
    expect(githubOidcProviderArn(ACCOUNT)).toBe(ARN)
    expect(githubOidcProviderArn(ACCOUNT, 'aws-cn')).toBe(ARN.replace('arn:aws:', 'arn:aws-cn:'))
  })
})

describe('accountIdOf', () => {
  it('asks STS whose credentials these are', async () => {
    stsMock.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: 'arn:aws:iam::x' })
    expect(await accountIdOf(setupContext().ctx)).toBe(ACCOUNT)
    expect(stsMock.commandCalls(GetCallerIdentityCommand)).toHaveLength(1)
  })

  it('fails clearly without an account or credentials', async () => {
    stsMock.on(GetCallerIdentityCommand).resolves({})
    await expect(accountIdOf(setupContext().ctx)).rejects.toThrow('returned no account id')
    stsMock.on(GetCallerIdentityCommand).rejects(awsError('InvalidClientTokenId', 403, 'bad'))
    const err = (await accountIdOf(setupContext().ctx).catch((e: unknown) => e)) as AwsError
    expect(err.message).toContain(
      'Failed reading the account id (sts:GetCallerIdentity): AWS said InvalidClientTokenId'
    )
    expect(err.hint).toContain('credentials are missing, wrong or expired')
  })
})
