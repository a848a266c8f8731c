/**
 * The account's IAM OIDC provider for GitHub Actions, which lets a workflow take a role with
 * GitHub's token instead of stored keys. IAM allows one provider per URL in an account, shared
 * by every role that trusts GitHub: setup finds it (creating it only when missing) and never
 * changes more of it than the audience the deploy needs.
 */
import {
  AddClientIDToOpenIDConnectProviderCommand,
  CreateOpenIDConnectProviderCommand,
  GetOpenIDConnectProviderCommand,
  ListOpenIDConnectProvidersCommand
} from '@aws-sdk/client-iam'
import { applyChanges, awsCall } from './aws-call.js'
import { SETUP_TAG, type SetupChange, type SetupContext } from './types.js'

export const GITHUB_OIDC_HOST = 'token.actions.githubusercontent.com'
export const GITHUB_OIDC_URL = `https://${GITHUB_OIDC_HOST}`
/** The audience aws-actions/configure-aws-credentials asks GitHub's tokens for. */
export const GITHUB_OIDC_AUDIENCE = 'sts.amazonaws.com'
/**
 * GitHub's published certificate thumbprints. IAM no longer checks them for GitHub (it trusts
 * the certificate authority GitHub's certificate chains to), and today's IAM API lets them out,
 * but CloudFormation's AWS::IAM::OIDCProvider and older API versions require a list: giving
 * GitHub's own keeps setup and the template alike.
 */
export const GITHUB_OIDC_THUMBPRINTS = [
  '6938fd4d98bab03faadb97b34396831e3780aea1',
  '1c58a3a8518e8759bf075b76b750d4f2df264fcd'
]

const RESOURCE = 'github-oidc-provider'

/** The provider's ARN in an account: IAM names it after its URL, so it is known in advance. */
export function githubOidcProviderArn(accountId: string, partition = 'aws'): string {
  return `arn:${partition}:iam::${accountId}:oidc-provider/${GITHUB_OIDC_HOST}`
}

/**
 * The provider's ARN, after creating the provider when missing or adding the `sts.amazonaws.com`
 * audience when it lacks it; undefined in a dry run that would create it.
 */
export async function ensureGitHubOidcProvider(ctx: SetupContext): Promise<string | undefined> {
  const arn = await findGitHubOidcProvider(ctx)
  if (arn === undefined) return createGitHubOidcProvider(ctx)
  await ensureAudience(ctx, arn)
  return arn
}

async function findGitHubOidcProvider(ctx: SetupContext): Promise<string | undefined> {
  const { OpenIDConnectProviderList: providers = [] } = await awsCall(
    ctx,
    { doing: 'listing the IAM OIDC providers', permission: 'iam:ListOpenIDConnectProviders' },
    (sendOptions) => ctx.clients.iam.send(new ListOpenIDConnectProvidersCommand({}), sendOptions)
  )
  return providers
    .map((provider) => provider.Arn)
    .find((arn) => arn?.endsWith(`:oidc-provider/${GITHUB_OIDC_HOST}`))
}

async function ensureAudience(ctx: SetupContext, arn: string): Promise<void> {
  const provider = await awsCall(
    ctx,
    { doing: `reading the IAM OIDC provider ${arn}`, permission: 'iam:GetOpenIDConnectProvider' },
    (sendOptions) =>
      ctx.clients.iam.send(
        new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }),
        sendOptions
      )
  )
  if (provider.ClientIDList?.includes(GITHUB_OIDC_AUDIENCE)) return
  const change: SetupChange = {
    resource: RESOURCE,
    action: 'update',
    detail: `client id ${GITHUB_OIDC_AUDIENCE} added`
  }
  await applyChanges(ctx, [change], () =>
    awsCall(
      ctx,
      {
        doing: `adding the client id ${GITHUB_OIDC_AUDIENCE} to the IAM OIDC provider ${arn}`,
        permission: 'iam:AddClientIDToOpenIDConnectProvider'
      },
      (sendOptions) =>
        ctx.clients.iam.send(
          new AddClientIDToOpenIDConnectProviderCommand({
            OpenIDConnectProviderArn: arn,
            ClientID: GITHUB_OIDC_AUDIENCE
          }),
          sendOptions
        )
    )
  )
}

async function createGitHubOidcProvider(ctx: SetupContext): Promise<string | undefined> {
  const change: SetupChange = {
    resource: RESOURCE,
    action: 'create',
    detail: `${GITHUB_OIDC_URL} (client id ${GITHUB_OIDC_AUDIENCE})`
  }
  const created = await applyChanges(ctx, [change], () =>
    awsCall(
      ctx,
      {
        doing: `creating the IAM OIDC provider ${GITHUB_OIDC_URL}`,
        permission: 'iam:CreateOpenIDConnectProvider'
      },
      (sendOptions) =>
        ctx.clients.iam.send(
          new CreateOpenIDConnectProviderCommand({
            Url: GITHUB_OIDC_URL,
            ClientIDList: [GITHUB_OIDC_AUDIENCE],
            ThumbprintList: GITHUB_OIDC_THUMBPRINTS,
            Tags: [{ Key: SETUP_TAG.key, Value: SETUP_TAG.value }]
          }),
          sendOptions
        )
    )
  )
  return created?.OpenIDConnectProviderArn
}
