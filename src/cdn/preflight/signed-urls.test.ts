import {
  GetKeyGroupCommand,
  GetPublicKeyCommand,
  ListKeyGroupsCommand
} from '@aws-sdk/client-cloudfront'
import { runPreflight } from './index.js'
import { expectOkExcept, only } from '../../../__fixtures__/preflight.js'
import {
  awsError,
  goodConfig,
  KEY,
  KEY_GROUP,
  keyGroup,
  mockPreflightWorld,
  ORIGIN,
  target
} from '../../../__fixtures__/preflight-world.js'

const { cfMock, clients, mockDistribution } = mockPreflightWorld()

describe('runPreflight', () => {
  describe('signed URLs', () => {
    it('fails when the serving behavior does not require signatures', async () => {
      const config = goodConfig()
      config.DefaultCacheBehavior!.TrustedKeyGroups = { Enabled: false, Quantity: 0 }
      mockDistribution(config)
      const findings = await runPreflight(clients, target)
      expectOkExcept(findings, 'signed-urls')
      const signing = only(findings, 'signed-urls')
      expect(signing.status).toBe('error')
      expect(signing.message).toContain('does not restrict viewer access')
      expect(signing.fix).toContain('"Enabled":true')
      expect(cfMock.commandCalls(GetKeyGroupCommand)).toHaveLength(0)
    })

    it('is not checked without a signing key', async () => {
      const config = goodConfig()
      config.DefaultCacheBehavior!.TrustedKeyGroups = { Enabled: false, Quantity: 0 }
      mockDistribution(config)
      const findings = await runPreflight(clients, { ...target, signingKeyPairId: undefined })
      expect(findings.map((f) => f.check)).not.toContain('signed-urls')
      expectOkExcept(findings)
    })

    it('checks each behavior that may serve the prefix', async () => {
      const config = goodConfig()
      config.CacheBehaviors = {
        Quantity: 1,
        Items: [
          { PathPattern: '*.onnx', TargetOriginId: ORIGIN, ViewerProtocolPolicy: 'allow-all' }
        ]
      }
      mockDistribution(config)
      const signing = (await runPreflight(clients, target)).filter((f) => f.check === 'signed-urls')
      expect(signing.map((f) => [f.status, f.message.slice(0, 40)])).toEqual([
        ['error', 'Cache behavior "*.onnx" of distribution '],
        ['ok', 'The default cache behavior of distributi']
      ])
    })

    it('warns on legacy trusted signers, which it cannot check', async () => {
      const config = goodConfig()
      config.DefaultCacheBehavior!.TrustedKeyGroups = { Enabled: false, Quantity: 0 }
      config.DefaultCacheBehavior!.TrustedSigners = { Enabled: true, Quantity: 1, Items: ['self'] }
      mockDistribution(config)
      const signing = only(await runPreflight(clients, target), 'signed-urls')
      expect(signing.status).toBe('warning')
      expect(signing.message).toContain('legacy CloudFront key pairs of account(s) self')
    })

    it('fails when the key is in a group the behavior does not trust, naming it (all pages)', async () => {
      cfMock.on(GetKeyGroupCommand).resolves({ KeyGroup: keyGroup(KEY_GROUP, ['K9OTHER']) })
      cfMock.on(GetPublicKeyCommand).resolves({ PublicKey: undefined })
      cfMock
        .on(ListKeyGroupsCommand)
        .resolvesOnce({
          KeyGroupList: {
            MaxItems: 1,
            Quantity: 1,
            NextMarker: 'page2',
            Items: [{ KeyGroup: keyGroup(KEY_GROUP, ['K9OTHER']) }]
          }
        })
        .resolvesOnce({
          KeyGroupList: {
            MaxItems: 1,
            Quantity: 1,
            Items: [{ KeyGroup: keyGroup('kg-other', [KEY]) }]
          }
        })
      const findings = await runPreflight(clients, target)
      expectOkExcept(findings, 'signed-urls')
      const signing = only(findings, 'signed-urls')
      expect(signing.status).toBe('error')
      expect(signing.message).toContain(
        `Public key ${KEY} is in key group kg-other (kg-other-name), which the default cache behavior does not trust.`
      )
      expect(signing.message).toContain(`it trusts key group(s) ${KEY_GROUP} (${KEY_GROUP}-name)`)
      expect(signing.message).toContain('CloudFront answers 403')
      expect(signing.fix).toContain(
        'Add key group kg-other to the trusted key groups of the default cache behavior'
      )
      expect(cfMock.commandCalls(ListKeyGroupsCommand).map((c) => c.args[0].input.Marker)).toEqual([
        undefined,
        'page2'
      ])
    })

    it('fails when the key does not exist', async () => {
      cfMock.on(GetKeyGroupCommand).resolves({ KeyGroup: keyGroup(KEY_GROUP, ['K9OTHER']) })
      cfMock.on(GetPublicKeyCommand).rejects(awsError('NoSuchPublicKey', 404))
      cfMock.on(ListKeyGroupsCommand).resolves({ KeyGroupList: { MaxItems: 100, Quantity: 0 } })
      const signing = only(await runPreflight(clients, target), 'signed-urls')
      expect(signing.status).toBe('error')
      expect(signing.message).toMatch(new RegExp(`^No public key with ID ${KEY} exists`))
      expect(signing.fix).toContain('aws cloudfront list-public-keys')
    })

    it('fails when a trusted key group does not exist', async () => {
      cfMock.on(GetKeyGroupCommand).rejects(awsError('NoSuchResource', 404))
      cfMock.on(GetPublicKeyCommand).resolves({ PublicKey: undefined })
      cfMock.on(ListKeyGroupsCommand).resolves({ KeyGroupList: { MaxItems: 100, Quantity: 0 } })
      const signing = only(await runPreflight(clients, target), 'signed-urls')
      expect(signing.status).toBe('error')
      expect(signing.message).toContain(
        `it trusts no existing key group (key group(s) ${KEY_GROUP} it names do not exist)`
      )
      expect(signing.fix).toContain(`Create a key group holding public key ${KEY}`)
    })
  })
})
