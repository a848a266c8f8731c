/**
 * Setup's Origin Access Control: what CloudFront signs its requests to the private bucket with.
 * Found again by its name; created for S3, signing every request with SigV4; one of ours that
 * signs less than always is tightened to always.
 *
 * Also what the CloudFront steps share: their names, their requests and their lists.
 */
import { createHash } from 'node:crypto'
import {
  CreateOriginAccessControlCommand,
  GetOriginAccessControlCommand,
  ListOriginAccessControlsCommand,
  UpdateOriginAccessControlCommand,
  type OriginAccessControlSummary
} from '@aws-sdk/client-cloudfront'
import { awsErrorCode, DeployError, explainAwsError, httpStatusOf } from '../common/errors.js'
import type { SetupChange, SetupContext } from './types.js'

const NAME_PREFIX = 'model-cdn-deploy-'
/** CloudFront's limit on an Origin Access Control's name. */
const OAC_NAME_LIMIT = 64
const RESOURCE = 'origin-access-control'

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/**
 * `model-cdn-deploy-<bucket>`, within an API's `limit` and in the characters CloudFront takes in
 * names (letters, digits, `-`, `_`). A bucket name that had to be shortened, or whose dots became
 * `-`, gets 8 hex digits of its SHA-256 appended, so that two buckets never share a name.
 */
export function setupName(bucket: string, limit: number): string {
  const name = `${NAME_PREFIX}${bucket}`
  if (name.length <= limit && !bucket.includes('.')) return name
  const hash = sha256Hex(bucket).slice(0, 8)
  return `${name.replace(/\./g, '-').slice(0, limit - hash.length - 1)}-${hash}`
}

const REFUSED = new Set(['AccessDenied', 'AccessDeniedException', 'Forbidden'])

/**
 * One AWS request of a setup step. A failure says what setup was doing; a refusal names the IAM
 * action that was refused, so the person can allow exactly that.
 */
export async function request<T>(
  permission: string,
  doing: string,
  send: () => Promise<T>
): Promise<T> {
  try {
    return await send()
  } catch (err) {
    if (REFUSED.has(awsErrorCode(err) ?? '') || httpStatusOf(err) === 403) {
      throw new DeployError(
        `Setup was refused ${permission} while ${doing}.`,
        `Allow ${permission} to the identity setup runs as, then run setup again: what it already set up is found again and kept.`,
        { cause: err }
      )
    }
    throw explainAwsError(err, { action: doing })
  }
}

/**
 * Makes a change and records it; in a dry run only records it (as what would be done) and
 * resolves undefined.
 */
export async function applyChange<T>(
  ctx: Pick<SetupContext, 'dryRun' | 'change'>,
  change: SetupChange,
  write: () => Promise<T>
): Promise<T | undefined> {
  if (ctx.dryRun) {
    ctx.change(change)
    return undefined
  }
  const result = await write()
  ctx.change(change)
  return result
}

/** The id of what a real run created: an answer without one is a failure, not a dry run. */
export function createdId(
  ctx: Pick<SetupContext, 'dryRun'>,
  id: string | undefined,
  request: string
): string | undefined {
  if (!ctx.dryRun && !id) throw new DeployError(`${request} returned no id.`)
  return id
}

/** A page of a CloudFront list: CloudFront pages with Marker and NextMarker. */
interface ListPage<T> {
  Items?: T[]
  NextMarker?: string
}

/** Every item of a CloudFront list, page after page. */
export async function listAll<T>(
  page: (marker: string | undefined) => Promise<ListPage<T> | undefined>
): Promise<T[]> {
  const all: T[] = []
  let marker: string | undefined
  do {
    const list = await page(marker)
    all.push(...(list?.Items ?? []))
    marker = list?.NextMarker || undefined
  } while (marker)
  return all
}

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
    const { OriginAccessControlList: list } = await request(
      'cloudfront:ListOriginAccessControls',
      'listing the Origin Access Controls',
      () =>
        ctx.clients.cloudfront.send(new ListOriginAccessControlsCommand({ Marker: marker }), {
          abortSignal: ctx.signal
        })
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
  const created = await applyChange(ctx, change, () =>
    request('cloudfront:CreateOriginAccessControl', `creating Origin Access Control ${name}`, () =>
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
        { abortSignal: ctx.signal }
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
  await applyChange(ctx, change, async () => {
    const cloudfront = ctx.clients.cloudfront
    const got = await request('cloudfront:GetOriginAccessControl', `reading ${name}`, () =>
      cloudfront.send(new GetOriginAccessControlCommand({ Id: id }), { abortSignal: ctx.signal })
    )
    const config = got.OriginAccessControl?.OriginAccessControlConfig
    if (!config) throw new DeployError(`GetOriginAccessControl ${id} returned no configuration.`)
    await request('cloudfront:UpdateOriginAccessControl', `updating ${name}`, () =>
      cloudfront.send(
        new UpdateOriginAccessControlCommand({
          Id: id,
          IfMatch: got.ETag,
          OriginAccessControlConfig: { ...config, SigningBehavior: 'always' }
        }),
        { abortSignal: ctx.signal }
      )
    )
  })
}
