/** The AWS account setup runs in: its id goes into the ARNs of the deploy policy. */
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts'
import { DeployError } from '../common/errors.js'
import { awsCall } from './aws-call.js'
import type { SetupContext } from './types.js'

/** The id of the account the credentials belong to (STS GetCallerIdentity needs no permission). */
export async function accountIdOf(ctx: Pick<SetupContext, 'clients' | 'signal'>): Promise<string> {
  const identity = await awsCall(
    ctx,
    { doing: 'reading the account id', permission: 'sts:GetCallerIdentity' },
    (sendOptions) => ctx.clients.sts.send(new GetCallerIdentityCommand({}), sendOptions)
  )
  if (!identity.Account) {
    throw new DeployError('STS GetCallerIdentity returned no account id.')
  }
  return identity.Account
}
