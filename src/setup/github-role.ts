/**
 * The role GitHub Actions workflows deploy with: it trusts GitHub's OIDC tokens for the chosen
 * repository (branch, environment) and holds the deploy's permissions as an inline policy. Setup
 * finds it by name; on a role that exists it corrects only its own trust statement (found by its
 * Sid, the others kept), its tag and its inline policy.
 */
import {
  CreateRoleCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  PutRolePolicyCommand,
  TagRoleCommand,
  UpdateAssumeRolePolicyCommand,
  type Role
} from '@aws-sdk/client-iam'
import { DeployError } from '../common/errors.js'
import { applyChanges, awsCall, NO_SUCH_ENTITY } from './aws-call.js'
import { deployPolicy } from './deploy-policy.js'
import {
  GITHUB_OIDC_AUDIENCE,
  GITHUB_OIDC_HOST,
  githubOidcProviderArn
} from './github-oidc-provider.js'
import { setupName } from './names.js'
import {
  parsePolicyDocument,
  samePolicy,
  type PolicyDocument,
  type PolicyStatement
} from './policy-document.js'
import { SETUP_TAG, type SetupChange, type SetupContext } from './types.js'

/** The Sid of setup's statement in the role's trust policy: how a second run finds it. */
export const GITHUB_TRUST_SID = 'ModelCdnDeployGitHubOidc'
/** The name of the role's inline policy holding the deploy's permissions. */
export const DEPLOY_POLICY_NAME = 'model-cdn-deploy'
const ROLE_NAME_LIMIT = 64

/** `model-cdn-deploy-<bucket>`, cut to IAM's 64 characters (names.ts says how). */
export function defaultRoleName(bucket: string): string {
  return setupName(bucket, ROLE_NAME_LIMIT, { dotsAllowed: true })
}

/**
 * The trust statement: GitHub's tokens for the audience STS expects, whose `sub` matches one of
 * the subjects. Generic so that the CloudFormation template builds the same statement from its
 * parameters.
 */
export function githubTrustStatement<Value>(providerArn: Value, subjects: Value | Value[]) {
  return {
    Sid: GITHUB_TRUST_SID,
    Effect: 'Allow' as const,
    Principal: { Federated: providerArn },
    Action: 'sts:AssumeRoleWithWebIdentity',
    Condition: {
      StringEquals: { [`${GITHUB_OIDC_HOST}:aud`]: GITHUB_OIDC_AUDIENCE },
      StringLike: { [`${GITHUB_OIDC_HOST}:sub`]: subjects }
    }
  }
}

export interface GitHubRoleOptions {
  roleName: string
  /** The OIDC provider; undefined in a dry run that would create it (its ARN is known anyway). */
  providerArn?: string
  /** From githubSubjects. */
  subjects: string[]
  bucket: string
  accountId: string
  /** undefined in a dry run that would create the distribution. */
  distributionId?: string
  /** Default `aws`. */
  partition?: string
}

/** The role's ARN, after creating or correcting it; undefined in a dry run that would create it. */
export async function ensureGitHubRole(
  ctx: SetupContext,
  options: GitHubRoleOptions
): Promise<string | undefined> {
  const { roleName, accountId, partition, distributionId } = options
  const providerArn = options.providerArn ?? githubOidcProviderArn(accountId, partition)
  const trust = githubTrustStatement(providerArn, options.subjects)
  const policy =
    distributionId === undefined ? undefined : deployPolicy({ ...options, distributionId })
  const role = await awsCall(
    ctx,
    { doing: `reading IAM role "${roleName}"`, permission: 'iam:GetRole' },
    (sendOptions) => ctx.clients.iam.send(new GetRoleCommand({ RoleName: roleName }), sendOptions),
    NO_SUCH_ENTITY
  )
  if (role?.Role === undefined) return createRole(ctx, options, trust, policy)
  await ensureTrust(ctx, role.Role, trust, options.subjects)
  await ensureTag(ctx, role.Role)
  await ensureInlinePolicy(ctx, options, policy)
  return role.Role.Arn
}

async function createRole(
  ctx: SetupContext,
  options: GitHubRoleOptions,
  trust: PolicyStatement,
  policy: PolicyDocument | undefined
): Promise<string | undefined> {
  const { roleName, bucket } = options
  const change: SetupChange = {
    resource: 'role',
    action: 'create',
    detail: `${roleName}, trusting GitHub Actions of ${options.subjects.join(', ')}`
  }
  const created = await applyChanges(ctx, [change], () =>
    awsCall(
      ctx,
      { doing: `creating IAM role "${roleName}"`, permission: 'iam:CreateRole and iam:TagRole' },
      (sendOptions) =>
        ctx.clients.iam.send(
          new CreateRoleCommand({
            RoleName: roleName,
            AssumeRolePolicyDocument: JSON.stringify(trustPolicy([trust])),
            Description: `model-cdn-deploy: deploys to s3://${bucket} from GitHub Actions`,
            Tags: [{ Key: SETUP_TAG.key, Value: SETUP_TAG.value }]
          }),
          sendOptions
        )
    )
  )
  await putInlinePolicy(ctx, options, policy, 'create')
  return created?.Role?.Arn
}

const trustPolicy = (Statement: PolicyStatement[]): PolicyDocument => ({
  Version: '2012-10-17',
  Statement
})

/** Adds setup's trust statement, or corrects it; the role's other statements stay as they are. */
async function ensureTrust(
  ctx: SetupContext,
  role: Role,
  trust: PolicyStatement,
  subjects: string[]
): Promise<void> {
  const roleName = role.RoleName ?? ''
  const current = parsePolicyDocument(
    role.AssumeRolePolicyDocument ?? '',
    `the trust policy of IAM role "${roleName}"`
  )
  const ours = current.Statement.find((statement) => statement.Sid === GITHUB_TRUST_SID)
  if (ours && samePolicy(ours, trust)) return
  const statements = ours
    ? current.Statement.map((statement) => (statement === ours ? trust : statement))
    : [...current.Statement, trust]
  const change: SetupChange = {
    resource: 'role',
    action: 'update',
    detail: `trust statement ${GITHUB_TRUST_SID} ${ours ? 'corrected' : 'added'} (${subjects.join(', ')})`
  }
  await applyChanges(ctx, [change], () =>
    awsCall(
      ctx,
      {
        doing: `updating the trust policy of IAM role "${roleName}"`,
        permission: 'iam:UpdateAssumeRolePolicy'
      },
      (sendOptions) =>
        ctx.clients.iam.send(
          new UpdateAssumeRolePolicyCommand({
            RoleName: roleName,
            PolicyDocument: JSON.stringify({ ...current, Statement: statements })
          }),
          sendOptions
        )
    )
  )
}

async function ensureTag(ctx: SetupContext, role: Role): Promise<void> {
  const tagged = role.Tags?.some((t) => t.Key === SETUP_TAG.key && t.Value === SETUP_TAG.value)
  if (tagged) return
  const roleName = role.RoleName ?? ''
  const change: SetupChange = {
    resource: 'role',
    action: 'update',
    detail: `tag ${SETUP_TAG.key}=${SETUP_TAG.value} added`
  }
  await applyChanges(ctx, [change], () =>
    awsCall(
      ctx,
      { doing: `tagging IAM role "${roleName}"`, permission: 'iam:TagRole' },
      (sendOptions) =>
        ctx.clients.iam.send(
          new TagRoleCommand({
            RoleName: roleName,
            Tags: [{ Key: SETUP_TAG.key, Value: SETUP_TAG.value }]
          }),
          sendOptions
        )
    )
  )
}

async function ensureInlinePolicy(
  ctx: SetupContext,
  options: GitHubRoleOptions,
  policy: PolicyDocument | undefined
): Promise<void> {
  const { roleName } = options
  const current = await awsCall(
    ctx,
    {
      doing: `reading the inline policy ${DEPLOY_POLICY_NAME} of IAM role "${roleName}"`,
      permission: 'iam:GetRolePolicy'
    },
    (sendOptions) =>
      ctx.clients.iam.send(
        new GetRolePolicyCommand({ RoleName: roleName, PolicyName: DEPLOY_POLICY_NAME }),
        sendOptions
      ),
    NO_SUCH_ENTITY
  )
  const what = `the inline policy ${DEPLOY_POLICY_NAME} of IAM role "${roleName}"`
  const same =
    current?.PolicyDocument !== undefined &&
    policy !== undefined &&
    samePolicy(parsePolicyDocument(current.PolicyDocument, what), policy)
  if (!same) await putInlinePolicy(ctx, options, policy, current ? 'update' : 'create')
}

async function putInlinePolicy(
  ctx: SetupContext,
  options: GitHubRoleOptions,
  policy: PolicyDocument | undefined,
  action: 'create' | 'update'
): Promise<void> {
  const { roleName, bucket, distributionId = '(to be created)' } = options
  const change: SetupChange = {
    resource: 'role-policy',
    action,
    detail: `${DEPLOY_POLICY_NAME} on role ${roleName}: deploy to s3://${bucket}, invalidate distribution ${distributionId}`
  }
  await applyChanges(ctx, [change], () => {
    if (policy === undefined) {
      // Only a dry run may not know the distribution yet: a real run has created it before.
      throw new DeployError(`No distribution id for the deploy policy of IAM role "${roleName}".`)
    }
    return awsCall(
      ctx,
      {
        doing: `writing the inline policy ${DEPLOY_POLICY_NAME} of IAM role "${roleName}"`,
        permission: 'iam:PutRolePolicy'
      },
      (sendOptions) =>
        ctx.clients.iam.send(
          new PutRolePolicyCommand({
            RoleName: roleName,
            PolicyName: DEPLOY_POLICY_NAME,
            PolicyDocument: JSON.stringify(policy)
          }),
          sendOptions
        )
    )
  })
}
