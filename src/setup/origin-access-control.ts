/**
 * Setup's Origin Access Control: what CloudFront signs its requests to the private bucket with.
 * Found again by its name; created for S3, signing every request with SigV4; one of ours that
 * signs less than always is tightened to always.
 */
import {
  CreateOriginAccessControlCommand,
  GetOriginAccessControlCommand,
  ListOriginAccessControlsCommand,
  UpdateOriginAccessControlCommand,
  type OriginAccessControlSummary
} from '@aws-sdk/client-cloudfront'
import { DeployError } from '../common/errors.js'
import { applyChanges, awsCall, createdId, listAll } from './aws-call.js'
import { setupName } from './names.js'
import type { SetupChange, SetupContext } from './types.js'

/** CloudFront's limit on an Origin Access Control's name. */
const OAC_NAME_LIMIT = 64
const RESOURCE = 'origin-access-control'

export function originAccessControlName(bucket: string): string {
  return setupName(bucket, OAC_NAME_LIMIT)
}

/**
 * Setup's Origin Access Control for the bucket, created or tightened as needed; its id, or
 * undefined in a dry run that would create it.
 */
export async function ensureOriginAccessControl(
  ctx: SetupContext,
  { bucket }: { bucket: string }
): Promise<string | undefined> {
  const name = originAccessControlName(bucket)
  const ours = (await listOriginAccessControls(ctx)).find((oac) => oac.Name === name)
  if (!ours?.Id) return createOriginAccessControl(ctx, bucket, name)
  if (ours.OriginAccessControlOriginType !== 's3') {
    throw new DeployError(
      `Origin Access Control ${ours.Id} (${name}) is for origin type "${ours.OriginAccessControlOriginType}", not S3: CloudFront cannot sign requests to the bucket with it.`,
      'Setup never deletes anything: delete or rename it (CloudFront console → Security → Origin access), then run setup again.'
    )
  }
  if (ours.SigningBehavior !== 'always') await signAlways(ctx, ours.Id, name, ours.SigningBehavior)
  return ours.Id
}

function listOriginAccessControls(ctx: SetupContext): Promise<OriginAccessControlSummary[]> {
  return listAll(async (marker) => {
    const { OriginAccessControlList: list } = await awsCall(
      ctx,
      {
        doing: 'listing the Origin Access Controls',
        permission: 'cloudfront:ListOriginAccessControls'
      },
      (sendOptions) =>
        ctx.clients.cloudfront.send(
          new ListOriginAccessControlsCommand({ Marker: marker }),
          sendOptions
        )
    )
    return list
  })
}

async function createOriginAccessControl(
  ctx: SetupContext,
  bucket: string,
  name: string
): Promise<string | undefined> {
  const change: SetupChange = {
    resource: RESOURCE,
    action: 'create',
    detail: `${name}: for S3, signs every request (SigV4, always)`
  }
  const created = await applyChanges(ctx, [change], () =>
    awsCall(
      ctx,
      {
        doing: `creating Origin Access Control ${name}`,
        permission: 'cloudfront:CreateOriginAccessControl'
      },
      (sendOptions) =>
        ctx.clients.cloudfront.send(
          new CreateOriginAccessControlCommand({
            OriginAccessControlConfig: {
              Name: name,
              Description: `model-cdn-deploy setup: CloudFront reads bucket ${bucket} with signed requests`,
              OriginAccessControlOriginType: 's3',
              SigningProtocol: 'sigv4',
              // `no-override` would pass a viewer's own Authorization header on to S3 instead.
              SigningBehavior: 'always'
            }
          }),
          sendOptions
        )
    )
  )
  return createdId(ctx, created?.OriginAccessControl?.Id, `CreateOriginAccessControl ${name}`)
}

/** Tightens one of ours that signs never, or only requests without their own Authorization. */
async function signAlways(
  ctx: SetupContext,
  id: string,
  name: string,
  was: string | undefined
): Promise<void> {
  const change: SetupChange = {
    resource: RESOURCE,
    action: 'update',
    detail: `${name}: signing behavior ${was} → always`
  }
  await applyChanges(ctx, [change], async () => {
    const cloudfront = ctx.clients.cloudfront
    const got = await awsCall(
      ctx,
      { doing: `reading ${name}`, permission: 'cloudfront:GetOriginAccessControl' },
      (sendOptions) => cloudfront.send(new GetOriginAccessControlCommand({ Id: id }), sendOptions)
    )
    const config = got.OriginAccessControl?.OriginAccessControlConfig
    if (!config) throw new DeployError(`GetOriginAccessControl ${id} returned no configuration.`)
    await awsCall(
      ctx,
      { doing: `updating ${name}`, permission: 'cloudfront:UpdateOriginAccessControl' },
      (sendOptions) =>
        cloudfront.send(
          new UpdateOriginAccessControlCommand({
            Id: id,
            IfMatch: got.ETag,
            OriginAccessControlConfig: { ...config, SigningBehavior: 'always' }
          }),
          sendOptions
        )
    )
  })
}
