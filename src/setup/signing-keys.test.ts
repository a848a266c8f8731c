import { createHash, generateKeyPairSync } from 'node:crypto'
import {
  CloudFrontClient,
  CreateKeyGroupCommand,
  CreatePublicKeyCommand,
  GetKeyGroupCommand,
  GetPublicKeyCommand,
  ListKeyGroupsCommand,
  ListPublicKeysCommand,
  UpdateKeyGroupCommand,
  type PublicKeySummary
} from '@aws-sdk/client-cloudfront'
import { mockClient } from 'aws-sdk-client-mock'
import { DeployError, InputError } from '../common/errors.js'
import { awsError } from '../../__fixtures__/preflight-world.js'
import { setupContext } from '../../__fixtures__/setup-context.js'
import { escapeNewlines, generateSigningKeys, publicKeyPem } from '../../__fixtures__/signing.js'
import { checkPublicKeyPem, ensureKeyGroup, ensurePublicKey, keyGroupName } from './signing-keys.js'

const cfMock = mockClient(CloudFrontClient)
beforeEach(() => cfMock.reset())

const BUCKET = 'model-bucket'
const keys = generateSigningKeys()
const PEM = publicKeyPem(keys)
const DER = keys.publicKey.export({ type: 'spki', format: 'der' })
const SHA = createHash('sha256').update(DER).digest('hex')
const OTHER_PEM = publicKeyPem(generateSigningKeys())

/** Where a message or hint could show key text: neither may. */
function expectNoKeyText(err: unknown, pem: string): void {
  const { message, hint } = err as InputError
  const body = pem.split('\n')[1]
  expect(`${message} ${hint}`).not.toContain(body)
}

function refusal(text: string): InputError {
  try {
    checkPublicKeyPem(text)
  } catch (err) {
    expect(err).toBeInstanceOf(InputError)
    return err as InputError
  }
  throw new Error('accepted')
}

describe('checkPublicKeyPem', () => {
  it('returns an RSA 2048 public key as canonical SubjectPublicKeyInfo PEM', () => {
    expect(checkPublicKeyPem(PEM)).toBe(PEM)
    expect(checkPublicKeyPem(`  "${escapeNewlines(PEM)}"  `)).toBe(PEM)
  })

  it('takes a PKCS#1 RSA public key and returns it as SubjectPublicKeyInfo', () => {
    const pkcs1 = keys.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString()
    expect(pkcs1).toContain('BEGIN RSA PUBLIC KEY')
    expect(checkPublicKeyPem(pkcs1)).toBe(PEM)
  })

  it.each([
    ['PKCS#8', keys.pkcs8],
    ['PKCS#1', keys.pkcs1],
    ['a pair file', `${keys.pkcs1}\n${PEM}`]
  ])('refuses a private key (%s): it must be the public key, never uploaded', (_, text) => {
    const err = refusal(text)
    expect(err.message).toBe(
      'The public key file holds a PRIVATE key: setup uploads only the public key to CloudFront, never a private key.'
    )
    expect(err.hint).toContain('openssl rsa -pubout')
    expectNoKeyText(err, keys.pkcs8)
    expectNoKeyText(err, keys.pkcs1)
  })

  it('refuses an RSA key of another size, and a key that is not RSA', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey
    expect(refusal(small.export({ type: 'spki', format: 'pem' }).toString()).message).toContain(
      'is an RSA 1024-bit key'
    )
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey
    expect(refusal(ec.export({ type: 'spki', format: 'pem' }).toString()).message).toContain(
      'is a ec key'
    )
  })

  it.each([
    ['', 'is not PEM'],
    ['ssh-rsa AAAAB3NzaC1yc2E user@host', 'is in OpenSSH format'],
    ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', '"CERTIFICATE" block'],
    [`${PEM}${OTHER_PEM}`, 'holds 2 public keys'],
    [PEM.replace(/\n[A-Za-z0-9+/]{64}\n/, '\n!!!\n'), 'could not be read']
  ])('refuses %j', (text, what) => {
    expect(refusal(text).message).toContain(what)
  })
})

const publicKeys = (items: PublicKeySummary[], NextMarker?: string) => ({
  PublicKeyList: { MaxItems: 100, Quantity: items.length, Items: items, NextMarker }
})
const keySummary = (Id: string, EncodedKey?: string): PublicKeySummary => ({
  Id,
  Name: `name-${Id}`,
  CreatedTime: new Date(),
  EncodedKey: EncodedKey as string
})

describe('ensurePublicKey', () => {
  const NAME = `model-cdn-deploy-${BUCKET}-${SHA.slice(0, 8)}`

  it('uploads the key when no public key holds it', async () => {
    cfMock.on(ListPublicKeysCommand).resolves(publicKeys([keySummary('K1OTHER', OTHER_PEM)]))
    cfMock.on(CreatePublicKeyCommand).resolves({ PublicKey: { Id: 'K2NEW' } as never })
    const { ctx, changes } = setupContext()

    await expect(ensurePublicKey(ctx, { bucket: BUCKET, publicKeyPem: PEM })).resolves.toBe('K2NEW')
    expect(cfMock.commandCalls(CreatePublicKeyCommand)[0].args[0].input).toEqual({
      PublicKeyConfig: {
        CallerReference: `model-cdn-deploy-${SHA}`,
        Name: NAME,
        EncodedKey: PEM,
        Comment: `model-cdn-deploy setup, bucket ${BUCKET}`
      }
    })
    expect(changes).toEqual([
      {
        resource: 'public-key',
        action: 'create',
        detail: `${NAME}: RSA 2048, SHA-256 ${SHA.slice(0, 16)}…`
      }
    ])
  })

  it('finds the key under any name and line wrapping, on a later page, and uploads nothing', async () => {
    const body = PEM.split('\n').slice(1, -2).join('')
    const rewrapped = `-----BEGIN PUBLIC KEY-----\r\n${body.match(/.{1,76}/g)!.join('\r\n')}\r\n-----END PUBLIC KEY-----`
    cfMock
      .on(ListPublicKeysCommand, { Marker: undefined })
      .resolves(publicKeys([keySummary('K1OTHER', OTHER_PEM), keySummary('K1BAD', 'junk')], 'p2'))
    cfMock
      .on(ListPublicKeysCommand, { Marker: 'p2' })
      .resolves(publicKeys([keySummary('K2OURS', rewrapped)]))
    const { ctx, changes } = setupContext()

    await expect(
      ensurePublicKey(ctx, { bucket: 'another-bucket', publicKeyPem: PEM })
    ).resolves.toBe('K2OURS')
    expect(cfMock.commandCalls(CreatePublicKeyCommand)).toHaveLength(0)
    expect(changes).toEqual([])
  })

  it('reads a listed key whose summary has no EncodedKey', async () => {
    cfMock.on(ListPublicKeysCommand).resolves(publicKeys([keySummary('K2OURS')]))
    cfMock.on(GetPublicKeyCommand).resolves({
      PublicKey: {
        Id: 'K2OURS',
        CreatedTime: new Date(),
        PublicKeyConfig: { CallerReference: 'r', Name: 'n', EncodedKey: PEM }
      }
    })
    const { ctx } = setupContext()
    await expect(ensurePublicKey(ctx, { bucket: BUCKET, publicKeyPem: PEM })).resolves.toBe(
      'K2OURS'
    )
    expect(cfMock.commandCalls(GetPublicKeyCommand)[0].args[0].input).toEqual({ Id: 'K2OURS' })
  })

  it('in a dry run uploads nothing and has no id', async () => {
    cfMock.on(ListPublicKeysCommand).resolves(publicKeys([]))
    const { ctx, changes } = setupContext(true)
    await expect(
      ensurePublicKey(ctx, { bucket: BUCKET, publicKeyPem: PEM })
    ).resolves.toBeUndefined()
    expect(cfMock.commandCalls(CreatePublicKeyCommand)).toHaveLength(0)
    expect(changes.map((c) => c.action)).toEqual(['create'])
  })

  it('takes the key another run uploaded meanwhile (PublicKeyAlreadyExists)', async () => {
    cfMock
      .on(ListPublicKeysCommand)
      .resolvesOnce(publicKeys([]))
      .resolves(publicKeys([keySummary('K2RACE', PEM)]))
    cfMock.on(CreatePublicKeyCommand).rejects(awsError('PublicKeyAlreadyExists', 409))
    const { ctx } = setupContext()
    await expect(ensurePublicKey(ctx, { bucket: BUCKET, publicKeyPem: PEM })).resolves.toBe(
      'K2RACE'
    )
  })

  it('refuses a private key before any request', async () => {
    const { ctx } = setupContext()
    await expect(
      ensurePublicKey(ctx, { bucket: BUCKET, publicKeyPem: keys.pkcs8 })
    ).rejects.toBeInstanceOf(InputError)
    expect(cfMock.calls()).toHaveLength(0)
  })
})

const GROUP = keyGroupName(BUCKET)
const keyGroups = (
  items: { Id: string; Name: string; Items: string[] }[],
  NextMarker?: string
) => ({
  KeyGroupList: {
    MaxItems: 100,
    Quantity: items.length,
    NextMarker,
    Items: items.map(({ Id, Name, Items }) => ({
      KeyGroup: { Id, LastModifiedTime: new Date(), KeyGroupConfig: { Name, Items } }
    }))
  }
})

describe('ensureKeyGroup', () => {
  it('creates the group with the key when there is none', async () => {
    cfMock.on(ListKeyGroupsCommand).resolves(keyGroups([{ Id: 'kg-x', Name: 'other', Items: [] }]))
    cfMock.on(CreateKeyGroupCommand).resolves({ KeyGroup: { Id: 'kg-new' } as never })
    const { ctx, changes } = setupContext()

    await expect(ensureKeyGroup(ctx, { bucket: BUCKET, publicKeyId: 'K2KEY' })).resolves.toBe(
      'kg-new'
    )
    expect(cfMock.commandCalls(CreateKeyGroupCommand)[0].args[0].input).toEqual({
      KeyGroupConfig: {
        Name: GROUP,
        Items: ['K2KEY'],
        Comment: 'model-cdn-deploy setup: the keys signed URLs are checked with'
      }
    })
    expect(changes).toEqual([
      { resource: 'key-group', action: 'create', detail: `${GROUP}, holding public key K2KEY` }
    ])
  })

  it('finds its group holding the key on a later page, and changes nothing', async () => {
    cfMock
      .on(ListKeyGroupsCommand, { Marker: undefined })
      .resolves(keyGroups([{ Id: 'kg-x', Name: 'other', Items: [] }], 'p2'))
    cfMock
      .on(ListKeyGroupsCommand, { Marker: 'p2' })
      .resolves(keyGroups([{ Id: 'kg-ours', Name: GROUP, Items: ['K1OLD', 'K2KEY'] }]))
    const { ctx, changes } = setupContext()
    await expect(ensureKeyGroup(ctx, { bucket: BUCKET, publicKeyId: 'K2KEY' })).resolves.toBe(
      'kg-ours'
    )
    expect(cfMock.commandCalls(UpdateKeyGroupCommand)).toHaveLength(0)
    expect(changes).toEqual([])
  })

  it('adds a new key next to the old ones (rotation), with the ETag', async () => {
    cfMock
      .on(ListKeyGroupsCommand)
      .resolves(keyGroups([{ Id: 'kg-ours', Name: GROUP, Items: ['K1OLD'] }]))
    const config = { Name: GROUP, Items: ['K1OLD'], Comment: 'c' }
    cfMock.on(GetKeyGroupCommand).resolves({
      KeyGroup: { Id: 'kg-ours', LastModifiedTime: new Date(), KeyGroupConfig: config },
      ETag: 'etag-7'
    })
    cfMock.on(UpdateKeyGroupCommand).resolves({})
    const { ctx, changes } = setupContext()

    await expect(ensureKeyGroup(ctx, { bucket: BUCKET, publicKeyId: 'K2KEY' })).resolves.toBe(
      'kg-ours'
    )
    expect(cfMock.commandCalls(UpdateKeyGroupCommand)[0].args[0].input).toEqual({
      Id: 'kg-ours',
      IfMatch: 'etag-7',
      KeyGroupConfig: { ...config, Items: ['K1OLD', 'K2KEY'] }
    })
    expect(changes).toEqual([
      {
        resource: 'key-group',
        action: 'update',
        detail: `${GROUP}: public key K2KEY added (its other keys kept)`
      }
    ])
  })

  it('in a dry run, with a key still to upload, records what it would do', async () => {
    const { ctx, changes } = setupContext(true)
    cfMock.on(ListKeyGroupsCommand).resolves(keyGroups([]))
    await expect(ensureKeyGroup(ctx, { bucket: BUCKET })).resolves.toBeUndefined()
    cfMock
      .on(ListKeyGroupsCommand)
      .resolves(keyGroups([{ Id: 'kg-ours', Name: GROUP, Items: ['K1OLD'] }]))
    await expect(ensureKeyGroup(ctx, { bucket: BUCKET })).resolves.toBe('kg-ours')
    expect(changes.map((c) => c.detail)).toEqual([
      `${GROUP}, holding the new public key`,
      `${GROUP}: the new public key added (its other keys kept)`
    ])
    expect(cfMock.commandCalls(CreateKeyGroupCommand)).toHaveLength(0)
    expect(cfMock.commandCalls(UpdateKeyGroupCommand)).toHaveLength(0)
  })

  it('says what to do when the group is full, and removes nothing', async () => {
    cfMock
      .on(ListKeyGroupsCommand)
      .resolves(keyGroups([{ Id: 'kg-ours', Name: GROUP, Items: ['K1', 'K2', 'K3', 'K4', 'K5'] }]))
    cfMock.on(GetKeyGroupCommand).resolves({
      KeyGroup: {
        Id: 'kg-ours',
        LastModifiedTime: new Date(),
        KeyGroupConfig: { Name: GROUP, Items: ['K1', 'K2', 'K3', 'K4', 'K5'] }
      },
      ETag: 'e'
    })
    cfMock.on(UpdateKeyGroupCommand).rejects(awsError('TooManyPublicKeysInKeyGroup', 400))
    const { ctx, changes } = setupContext()
    const err = await ensureKeyGroup(ctx, { bucket: BUCKET, publicKeyId: 'K6' }).catch(
      (e: unknown) => e
    )
    expect(err).toBeInstanceOf(DeployError)
    expect((err as DeployError).message).toContain('already holds as many public keys')
    expect((err as DeployError).hint).toContain('Setup never removes keys')
    expect(changes).toEqual([])
  })
})
