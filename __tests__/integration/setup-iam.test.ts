/**
 * Setup's IAM steps and its CloudFormation template against moto_server.
 *
 * moto 5.2 differs from AWS here in ways the unit tests cover instead: it does not implement
 * AddClientIDToOpenIDConnectProvider (a 500), accepts role names over 64 characters and trust
 * policies that are not JSON, and enforces no IAM permission. Its CloudFormation creates only
 * two of the template's resource types, AWS::S3::Bucket and AWS::IAM::Role (the others are
 * skipped, and an output naming one of them fails the whole stack with a 500), and of a bucket's
 * properties it applies only BucketName, BucketEncryption and Tags: versioning, the public
 * access block, ownership controls and lifecycle rules are dropped. So the stack here is the
 * template with those two types, the rest replaced by parameters of the same name, and the
 * bucket's settings are checked by the structural tests (src/setup/template.test.ts).
 */
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStacksCommand,
  ListStackResourcesCommand,
  type Parameter
} from '@aws-sdk/client-cloudformation'
import {
  GetOpenIDConnectProviderCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  UpdateAssumeRolePolicyCommand
} from '@aws-sdk/client-iam'
import { GetBucketTaggingCommand, HeadBucketCommand } from '@aws-sdk/client-s3'
import { STSClient } from '@aws-sdk/client-sts'
import { silentLogger } from '../../__fixtures__/logger.js'
import { TEST_REGION } from '../../scripts/lib/emulator.mjs'
import { startTestEmulator, type TestEmulator } from '../helpers/emulator-world.js'
import { accountIdOf } from '../../src/setup/account.js'
import { deployPolicy } from '../../src/setup/deploy-policy.js'
import {
  ensureGitHubOidcProvider,
  githubOidcProviderArn
} from '../../src/setup/github-oidc-provider.js'
import {
  defaultRoleName,
  ensureGitHubRole,
  githubTrustStatement
} from '../../src/setup/github-role.js'
import { githubSubjects } from '../../src/setup/github-subjects.js'
import { parsePolicyDocument } from '../../src/setup/policy-document.js'
import { cloudFormationTemplate, type CloudFormationTemplate } from '../../src/setup/template.js'
import type { SetupChange, SetupContext } from '../../src/setup/types.js'

let moto: TestEmulator | undefined
let iam: IAMClient
let sts: STSClient
let cloudformation: CloudFormationClient

beforeAll(async () => {
  moto = await startTestEmulator()
  const config = {
    endpoint: moto.emulator.endpoint,
    region: TEST_REGION,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' }
  }
  iam = new IAMClient(config)
  sts = new STSClient(config)
  cloudformation = new CloudFormationClient(config)
})

afterAll(async () => {
  for (const client of [iam, sts, cloudformation]) client?.destroy()
  await moto?.stop()
})

function context(dryRun = false): SetupContext & { changes: SetupChange[] } {
  const changes: SetupChange[] = []
  return {
    clients: { s3: moto!.s3, cloudfront: moto!.cloudfront, iam, sts },
    dryRun,
    logger: silentLogger(),
    change: (change) => void changes.push(change),
    changes
  }
}

const trustOf = async (roleName: string) => {
  const { Role } = await iam.send(new GetRoleCommand({ RoleName: roleName }))
  return parsePolicyDocument(Role!.AssumeRolePolicyDocument!, 'trust')
}
/** The role's inline policy `model-cdn-deploy` as IAM returns it, decoded. */
const inlinePolicyOf = async (roleName: string) => {
  const { PolicyDocument } = await iam.send(
    new GetRolePolicyCommand({ RoleName: roleName, PolicyName: 'model-cdn-deploy' })
  )
  return decodeURIComponent(PolicyDocument!)
}

describe('setup’s IAM steps against moto_server', () => {
  const bucket = 'setup-iam-models'
  const subjects = githubSubjects({ repo: 'octo-org/models', branch: 'main' })

  it('in a dry run, on an empty account, writes nothing and says what it would create', async () => {
    const ctx = context(true)
    expect(await ensureGitHubOidcProvider(ctx)).toBeUndefined()
    const accountId = await accountIdOf(ctx)
    const roleName = defaultRoleName(bucket)
    expect(await ensureGitHubRole(ctx, { roleName, subjects, bucket, accountId })).toBeUndefined()
    expect(ctx.changes.map((c) => [c.resource, c.action])).toEqual([
      ['github-oidc-provider', 'create'],
      ['role', 'create'],
      ['role-policy', 'create']
    ])
    await expect(iam.send(new GetRoleCommand({ RoleName: roleName }))).rejects.toThrow('not found')
  })

  it('creates the provider and the role, then a second run changes nothing', async () => {
    const ctx = context()
    const accountId = await accountIdOf(ctx)
    const providerArn = await ensureGitHubOidcProvider(ctx)
    expect(providerArn).toBe(githubOidcProviderArn(accountId))
    const options = {
      roleName: defaultRoleName(bucket),
      providerArn,
      subjects,
      bucket,
      accountId,
      distributionId: 'E2EXAMPLE'
    }
    const roleArn = await ensureGitHubRole(ctx, options)
    expect(roleArn).toBe(`arn:aws:iam::${accountId}:role/${options.roleName}`)
    expect(ctx.changes.map((c) => c.resource)).toEqual([
      'github-oidc-provider',
      'role',
      'role-policy'
    ])

    const provider = await iam.send(
      new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: providerArn })
    )
    expect(provider.ClientIDList).toEqual(['sts.amazonaws.com'])
    expect(provider.Tags).toEqual([{ Key: 'model-cdn-deploy', Value: 'setup' }])
    expect(await trustOf(options.roleName)).toEqual({
      Version: '2012-10-17',
      Statement: [githubTrustStatement(providerArn, subjects)]
    })
    expect(JSON.parse(await inlinePolicyOf(options.roleName))).toEqual(
      deployPolicy({ bucket, accountId, distributionId: 'E2EXAMPLE' })
    )

    const again = context()
    expect(await ensureGitHubOidcProvider(again)).toBe(providerArn)
    expect(await ensureGitHubRole(again, options)).toBe(roleArn)
    expect(again.changes).toEqual([])
  })

  it('corrects its trust statement and keeps the role’s others', async () => {
    const accountId = await accountIdOf(context())
    const providerArn = githubOidcProviderArn(accountId)
    const roleName = defaultRoleName('setup-iam-trust')
    const options = {
      roleName,
      subjects,
      bucket: 'setup-iam-trust',
      accountId,
      distributionId: 'E2EXAMPLE'
    }
    await ensureGitHubRole(context(), options)
    const other = {
      Sid: 'Ops',
      Effect: 'Allow' as const,
      Principal: { AWS: `arn:aws:iam::${accountId}:root` },
      Action: 'sts:AssumeRole'
    }
    const loose = githubTrustStatement(providerArn, ['repo:octo-org/models:*'])
    await iam.send(
      new UpdateAssumeRolePolicyCommand({
        RoleName: roleName,
        PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [other, loose] })
      })
    )
    const ctx = context()
    await ensureGitHubRole(ctx, options)
    expect(ctx.changes.map((c) => c.detail)).toEqual([
      'trust statement ModelCdnDeployGitHubOidc corrected (repo:octo-org/models:ref:refs/heads/main)'
    ])
    expect((await trustOf(roleName)).Statement).toEqual([
      other,
      githubTrustStatement(providerArn, subjects)
    ])
  })
})

/** The types moto 5.2's CloudFormation creates, of those the template holds. */
const MOTO_CREATES = ['AWS::S3::Bucket', 'AWS::IAM::Role']
const STAND_IN = 'E2STANDIN'

/**
 * The template with only what moto creates: every other resource becomes a parameter of its
 * name (so `Ref` and `${...}` still resolve, to STAND_IN), and outputs naming one go.
 */
function motoTemplate(template: CloudFormationTemplate): CloudFormationTemplate {
  const dropped = Object.keys(template.Resources).filter(
    (id) => !MOTO_CREATES.includes(template.Resources[id].Type as string)
  )
  const standIns = dropped.map((id) => [id, { Type: 'String', Default: STAND_IN }])
  const namesDropped = (value: unknown) => dropped.some((id) => JSON.stringify(value).includes(id))
  return {
    ...template,
    Parameters: { ...template.Parameters, ...Object.fromEntries(standIns) },
    Resources: Object.fromEntries(
      Object.entries(template.Resources).filter(([id]) => !dropped.includes(id))
    ),
    Outputs: Object.fromEntries(
      Object.entries(template.Outputs).filter(([, output]) => !namesDropped(output.Value))
    )
  }
}

async function createStack(name: string, parameters: Record<string, string>) {
  await cloudformation.send(
    new CreateStackCommand({
      StackName: name,
      TemplateBody: JSON.stringify(motoTemplate(cloudFormationTemplate())),
      Parameters: Object.entries(parameters).map(([ParameterKey, ParameterValue]): Parameter => ({
        ParameterKey,
        ParameterValue
      })),
      Capabilities: ['CAPABILITY_IAM']
    })
  )
  const { Stacks } = await cloudformation.send(new DescribeStacksCommand({ StackName: name }))
  const { StackResourceSummaries: summaries = [] } = await cloudformation.send(
    new ListStackResourcesCommand({ StackName: name })
  )
  // moto lists a resource it skipped (a false condition) as a summary with no id.
  const resources = summaries.filter((r) => r.LogicalResourceId)
  const outputs = Object.fromEntries(
    (Stacks?.[0].Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue])
  )
  return { status: Stacks?.[0].StackStatus, resources, outputs }
}

describe('the CloudFormation template on moto_server', () => {
  it('creates the bucket and the deploy role its parameters describe', async () => {
    const accountId = await accountIdOf(context())
    const providerArn = githubOidcProviderArn(accountId)
    const stack = await createStack('model-cdn-with-role', {
      BucketName: 'cfn-models',
      GitHubRepo: 'octo-org/models',
      GitHubBranch: 'main',
      GitHubEnvironment: 'prod',
      GitHubOidcProviderArn: providerArn
    })
    expect(stack.status).toBe('CREATE_COMPLETE')
    expect(stack.resources.map((r) => [r.LogicalResourceId, r.ResourceType])).toEqual([
      ['Bucket', 'AWS::S3::Bucket'],
      ['GitHubDeployRole', 'AWS::IAM::Role']
    ])
    expect(stack.outputs.BucketName).toBe('cfn-models')
    await moto!.s3.send(new HeadBucketCommand({ Bucket: 'cfn-models' }))
    const { TagSet } = await moto!.s3.send(new GetBucketTaggingCommand({ Bucket: 'cfn-models' }))
    expect(TagSet).toEqual([{ Key: 'model-cdn-deploy', Value: 'setup' }])

    const roleName = stack.outputs.RoleArn!.split('/').pop()!
    const subjects = githubSubjects({
      repo: 'octo-org/models',
      branch: 'main',
      environment: 'prod'
    })
    expect(await trustOf(roleName)).toEqual({
      Version: '2012-10-17',
      Statement: [githubTrustStatement(providerArn, subjects)]
    })
    // moto serves the inline policy of a role its CloudFormation created as a Python dict's
    // repr ({'Version': ...}), not JSON; this policy holds no quote of its own.
    const policy = (await inlinePolicyOf(roleName)).replace(/'/g, '"')
    expect(JSON.parse(policy)).toEqual(
      deployPolicy({ bucket: 'cfn-models', accountId, distributionId: STAND_IN })
    )
  })

  it('trusts every workflow of the repository without a branch or environment', async () => {
    const accountId = await accountIdOf(context())
    const stack = await createStack('model-cdn-any-workflow', {
      BucketName: 'cfn-models-any',
      GitHubRepo: 'octo-org/models',
      GitHubOidcProviderArn: githubOidcProviderArn(accountId)
    })
    const roleName = stack.outputs.RoleArn!.split('/').pop()!
    const [statement] = (await trustOf(roleName)).Statement
    expect(statement.Condition?.StringLike).toEqual({
      'token.actions.githubusercontent.com:sub': ['repo:octo-org/models:*']
    })
  })

  it('creates no role without a repository', async () => {
    const stack = await createStack('model-cdn-no-role', { BucketName: 'cfn-models-plain' })
    expect(stack.status).toBe('CREATE_COMPLETE')
    expect(stack.resources.map((r) => r.LogicalResourceId)).toEqual(['Bucket'])
    expect(stack.outputs).toEqual({ BucketName: 'cfn-models-plain' })
  })
})
