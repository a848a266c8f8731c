/**
 * The signing keys of setup: the public key CloudFront checks signed URLs with, and the key group
 * the distribution trusts. A public key is found again by its key (whatever its name), a key
 * group by its name. A new key is added to the group next to the old ones, never instead of them:
 * rotating keys keeps the URLs signed with the old one working until the person removes it.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import {
  CreateKeyGroupCommand,
  CreatePublicKeyCommand,
  GetKeyGroupCommand,
  GetPublicKeyCommand,
  ListKeyGroupsCommand,
  ListPublicKeysCommand,
  UpdateKeyGroupCommand,
  type KeyGroup,
  type PublicKeySummary
} from '@aws-sdk/client-cloudfront'
import { awsErrorCode, DeployError, InputError } from '../common/errors.js'
import { unescapeKeyText } from '../cdn/signing.js'
import { applyChanges, awsCall, createdId, listAll } from './aws-call.js'
import { setupName, sha256Hex } from './names.js'
import type { SetupChange, SetupContext } from './types.js'

/** CloudFront's limit on public key and key group names. */
const NAME_LIMIT = 128
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g
const PUBLIC_KEY_HINT =
  'Give the public half of the signing key pair, as `openssl rsa -pubout -in private_key.pem -out public_key.pem` writes it ' +
  '(-----BEGIN PUBLIC KEY-----): CloudFront takes RSA 2048 public keys.'

function keyProblem(what: string, hint = PUBLIC_KEY_HINT): InputError {
  return new InputError(`The public key ${what}.`, hint)
}

/**
 * Checks the public key to upload: one RSA 2048 public key in PEM, SubjectPublicKeyInfo
 * (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`). Returns it as canonical
 * SubjectPublicKeyInfo PEM, the form CloudFront takes. A private key is refused without being
 * read: setup never uploads one, and never quotes key text.
 */
export function checkPublicKeyPem(pem: string): string {
  const text = unescapeKeyText(pem)
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) {
    throw keyProblem(
      'file holds a PRIVATE key: setup uploads only the public key to CloudFront, never a private key',
      'Extract the public key with `openssl rsa -pubout -in private_key.pem -out public_key.pem` and give public_key.pem; ' +
        'keep private_key.pem secret (the deploy signs with it, from the `signing-private-key` secret).'
    )
  }
  const blocks = [...text.matchAll(PEM_BLOCK)]
  const keys = blocks.filter(([, label]) => label === 'PUBLIC KEY' || label === 'RSA PUBLIC KEY')
  if (keys.length !== 1) throw notOnePublicKey(text, keys.length, blocks[0]?.[1])
  const key = readPublicKey(keys[0][0])
  if (key.asymmetricKeyType !== 'rsa') {
    throw keyProblem(`is a ${key.asymmetricKeyType} key: CloudFront signed URLs need RSA 2048`)
  }
  const bits = key.asymmetricKeyDetails?.modulusLength
  if (bits !== 2048) {
    throw keyProblem(`is an RSA ${bits}-bit key: CloudFront key groups take RSA 2048 keys only`)
  }
  return key.export({ type: 'spki', format: 'pem' }).toString()
}

function notOnePublicKey(text: string, keys: number, firstLabel: string | undefined): InputError {
  if (keys > 1) return keyProblem(`file holds ${keys} public keys; give exactly one`)
  if (/^ssh-rsa /.test(text)) {
    return keyProblem(
      'is in OpenSSH format',
      'Convert it to PEM with `ssh-keygen -e -m PKCS8 -f key.pub > public_key.pem`. ' +
        PUBLIC_KEY_HINT
    )
  }
  if (firstLabel) return keyProblem(`file holds a PEM "${firstLabel}" block, not a public key`)
  return keyProblem('is not PEM (no "-----BEGIN PUBLIC KEY-----" line)')
}

function readPublicKey(block: string): KeyObject {
  try {
    return createPublicKey({ key: block, format: 'pem' })
  } catch (err) {
    throw keyProblem(
      `could not be read (${err instanceof Error ? err.message : String(err)})`,
      'The PEM text is damaged or incomplete: give the public key file again, unchanged.'
    )
  }
}

/** The key's SubjectPublicKeyInfo bytes: one key, whatever the PEM's line breaks or format. */
function spkiDer(pem: string): Buffer {
  return createPublicKey({ key: pem, format: 'pem' }).export({ type: 'spki', format: 'der' })
}

/**
 * The id of the CloudFront public key holding this key: one already uploaded (under any name),
 * else a new one; undefined in a dry run that would upload it.
 */
export async function ensurePublicKey(
  ctx: SetupContext,
  { bucket, publicKeyPem }: { bucket: string; publicKeyPem: string }
): Promise<string | undefined> {
  const pem = checkPublicKeyPem(publicKeyPem)
  const der = spkiDer(pem)
  return (await findPublicKey(ctx, der)) ?? uploadPublicKey(ctx, bucket, pem, der)
}

async function findPublicKey(ctx: SetupContext, der: Buffer): Promise<string | undefined> {
  const summaries = await listAll<PublicKeySummary>(async (marker) => {
    const { PublicKeyList: list } = await awsCall(
      ctx,
      { doing: 'listing the CloudFront public keys', permission: 'cloudfront:ListPublicKeys' },
      (sendOptions) =>
        ctx.clients.cloudfront.send(new ListPublicKeysCommand({ Marker: marker }), sendOptions)
    )
    return list
  })
  for (const { Id: id, EncodedKey: listed } of summaries) {
    if (!id) continue
    const encoded = listed || (await readEncodedKey(ctx, id))
    if (encoded && sameKey(encoded, der)) return id
  }
  return undefined
}

async function readEncodedKey(ctx: SetupContext, id: string): Promise<string | undefined> {
  const got = await awsCall(
    ctx,
    { doing: `reading public key ${id}`, permission: 'cloudfront:GetPublicKey' },
    (sendOptions) => ctx.clients.cloudfront.send(new GetPublicKeyCommand({ Id: id }), sendOptions)
  )
  return got.PublicKey?.PublicKeyConfig?.EncodedKey
}

function sameKey(encoded: string, der: Buffer): boolean {
  try {
    return spkiDer(encoded).equals(der)
  } catch {
    return false // not a key this process can read: not ours to match
  }
}

async function uploadPublicKey(
  ctx: SetupContext,
  bucket: string,
  pem: string,
  der: Buffer
): Promise<string | undefined> {
  const fingerprint = sha256Hex(der)
  const name = `${setupName(bucket, NAME_LIMIT - 9)}-${fingerprint.slice(0, 8)}`
  const change: SetupChange = {
    resource: 'public-key',
    action: 'create',
    detail: `${name}: RSA 2048, SHA-256 ${fingerprint.slice(0, 16)}…`
  }
  const id = await applyChanges(ctx, [change], () =>
    awsCall(
      ctx,
      { doing: `uploading public key ${name}`, permission: 'cloudfront:CreatePublicKey' },
      (sendOptions) =>
        ctx.clients.cloudfront
          .send(
            new CreatePublicKeyCommand({
              PublicKeyConfig: {
                // One per key: a create whose answer was lost cannot upload the key twice.
                CallerReference: `model-cdn-deploy-${fingerprint}`,
                Name: name,
                EncodedKey: pem,
                Comment: `model-cdn-deploy setup, bucket ${bucket}`
              }
            }),
            sendOptions
          )
          .then(
            (created) => created.PublicKey?.Id,
            async (err: unknown) => {
              // Uploaded by another setup run (same CallerReference) since it was looked for.
              const uploaded =
                awsErrorCode(err) === 'PublicKeyAlreadyExists' && (await findPublicKey(ctx, der))
              if (uploaded) return uploaded
              throw err
            }
          )
    )
  )
  return createdId(ctx, id, `CreatePublicKey ${name}`)
}

export function keyGroupName(bucket: string): string {
  return setupName(bucket, NAME_LIMIT)
}

/**
 * Setup's key group, holding the public key: created with it, or the key added to it. Its id, or
 * undefined in a dry run that would create it. `publicKeyId` is undefined only in a dry run that
 * would upload the key.
 */
export async function ensureKeyGroup(
  ctx: SetupContext,
  { bucket, publicKeyId }: { bucket: string; publicKeyId?: string }
): Promise<string | undefined> {
  const name = keyGroupName(bucket)
  const ours = (await listKeyGroups(ctx)).find((group) => group.KeyGroupConfig?.Name === name)
  if (!ours?.Id) return createKeyGroup(ctx, name, publicKeyId)
  if (publicKeyId === undefined || !ours.KeyGroupConfig?.Items?.includes(publicKeyId)) {
    await addPublicKey(ctx, ours.Id, name, publicKeyId)
  }
  return ours.Id
}

function listKeyGroups(ctx: SetupContext): Promise<KeyGroup[]> {
  return listAll<KeyGroup>(async (marker) => {
    const { KeyGroupList: list } = await awsCall(
      ctx,
      { doing: 'listing the CloudFront key groups', permission: 'cloudfront:ListKeyGroups' },
      (sendOptions) =>
        ctx.clients.cloudfront.send(new ListKeyGroupsCommand({ Marker: marker }), sendOptions)
    )
    return (
      list && {
        NextMarker: list.NextMarker,
        Items: list.Items?.flatMap((item) => (item.KeyGroup ? [item.KeyGroup] : []))
      }
    )
  })
}

function keyText(publicKeyId: string | undefined): string {
  return publicKeyId ? `public key ${publicKeyId}` : 'the new public key'
}

async function createKeyGroup(
  ctx: SetupContext,
  name: string,
  publicKeyId: string | undefined
): Promise<string | undefined> {
  const change: SetupChange = {
    resource: 'key-group',
    action: 'create',
    detail: `${name}, holding ${keyText(publicKeyId)}`
  }
  const created = await applyChanges(ctx, [change], () => {
    if (!publicKeyId) throw new Error(`Key group ${name} needs the public key's id to be created.`)
    return awsCall(
      ctx,
      { doing: `creating key group ${name}`, permission: 'cloudfront:CreateKeyGroup' },
      (sendOptions) =>
        ctx.clients.cloudfront.send(
          new CreateKeyGroupCommand({
            KeyGroupConfig: {
              Name: name,
              Items: [publicKeyId],
              Comment: 'model-cdn-deploy setup: the keys signed URLs are checked with'
            }
          }),
          sendOptions
        )
    )
  })
  return createdId(ctx, created?.KeyGroup?.Id, `CreateKeyGroup ${name}`)
}

/** Adds the key next to the group's other keys: none is ever removed. */
async function addPublicKey(
  ctx: SetupContext,
  id: string,
  name: string,
  publicKeyId: string | undefined
): Promise<void> {
  const change: SetupChange = {
    resource: 'key-group',
    action: 'update',
    detail: `${name}: ${keyText(publicKeyId)} added (its other keys kept)`
  }
  await applyChanges(ctx, [change], async () => {
    if (!publicKeyId) throw new Error(`Adding a key to key group ${name} needs its id.`)
    const cloudfront = ctx.clients.cloudfront
    const got = await awsCall(
      ctx,
      { doing: `reading key group ${name}`, permission: 'cloudfront:GetKeyGroup' },
      (sendOptions) => cloudfront.send(new GetKeyGroupCommand({ Id: id }), sendOptions)
    )
    const config = got.KeyGroup?.KeyGroupConfig
    if (!config) throw new DeployError(`GetKeyGroup ${id} returned no configuration.`)
    await awsCall(
      ctx,
      {
        doing: `adding ${publicKeyId} to key group ${name}`,
        permission: 'cloudfront:UpdateKeyGroup'
      },
      (sendOptions) =>
        cloudfront
          .send(
            new UpdateKeyGroupCommand({
              Id: id,
              IfMatch: got.ETag,
              KeyGroupConfig: { ...config, Items: [...(config.Items ?? []), publicKeyId] }
            }),
            sendOptions
          )
          .catch((err: unknown) => {
            throw awsErrorCode(err) === 'TooManyPublicKeysInKeyGroup'
              ? fullKeyGroup(name, err)
              : err
          })
    )
  })
}

function fullKeyGroup(name: string, cause: unknown): DeployError {
  return new DeployError(
    `Key group ${name} already holds as many public keys as CloudFront allows (5 unless raised), so the new key cannot be added.`,
    'Remove a key no URL is signed with any more (CloudFront console → Key management → Key groups → Edit), or request a higher quota, then run setup again. Setup never removes keys itself: that would break the URLs signed with them.',
    { cause }
  )
}
