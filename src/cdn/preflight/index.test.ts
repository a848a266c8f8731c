import {
  GetDistributionCommand,
  GetKeyGroupCommand,
  GetOriginAccessControlCommand,
  GetPublicKeyCommand,
  ListKeyGroupsCommand
} from '@aws-sdk/client-cloudfront'
import {
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand
} from '@aws-sdk/client-s3'
import { DeployError } from '../../common/errors.js'
import {
  PREFLIGHT_PERMISSIONS,
  formatFinding,
  preflightFailure,
  runPreflight,
  type PreflightFinding
} from './index.js'
import {
  ALL_CHECKS,
  allOk,
  BUCKET_CHECKS,
  expectOkExcept,
  only,
  statusesOf
} from '../../../__fixtures__/preflight.js'
import {
  awsError,
  BUCKET,
  denied,
  DIST,
  KEY,
  KEY_GROUP,
  keyGroup,
  mockPreflightWorld,
  OAC,
  target
} from '../../../__fixtures__/preflight-world.js'

const { s3Mock, cfMock, clients } = mockPreflightWorld()

describe('runPreflight', () => {
  it('passes a correct setup, reading each setting once with read-only calls', async () => {
    const findings = await runPreflight(clients, target)
    expect(statusesOf(findings)).toEqual(allOk(ALL_CHECKS))
    expect(findings.every((f) => f.fix === undefined)).toBe(true)
    expect(cfMock.commandCalls(GetDistributionCommand).map((c) => c.args[0].input)).toEqual([
      { Id: DIST }
    ])
    expect(cfMock.commandCalls(GetOriginAccessControlCommand).map((c) => c.args[0].input)).toEqual([
      { Id: OAC }
    ])
    expect(cfMock.commandCalls(GetKeyGroupCommand).map((c) => c.args[0].input)).toEqual([
      { Id: KEY_GROUP }
    ])
    // The key was found in a trusted group: nothing more to look up.
    expect(cfMock.commandCalls(ListKeyGroupsCommand)).toHaveLength(0)
    expect(cfMock.commandCalls(GetPublicKeyCommand)).toHaveLength(0)
    for (const command of [
      GetBucketPolicyCommand,
      GetPublicAccessBlockCommand,
      GetBucketVersioningCommand,
      GetBucketLifecycleConfigurationCommand
    ]) {
      expect(s3Mock.commandCalls(command).map((c) => c.args[0].input)).toEqual([{ Bucket: BUCKET }])
    }
    expect(preflightFailure(findings)).toBeUndefined()
  })

  it('checks only the bucket without a distribution', async () => {
    const findings = await runPreflight(clients, { ...target, distributionId: undefined })
    expect(findings.map((f) => f.check)).toEqual(BUCKET_CHECKS)
    expect(cfMock.calls()).toHaveLength(0)
  })

  describe('reports a denied read as "could not check", never as a failure', () => {
    it.each([
      ['bucket-policy', GetBucketPolicyCommand, s3Mock, 's3:GetBucketPolicy'],
      ['public-access-block', GetPublicAccessBlockCommand, s3Mock, 's3:GetBucketPublicAccessBlock'],
      ['versioning', GetBucketVersioningCommand, s3Mock, 's3:GetBucketVersioning'],
      ['lifecycle', GetBucketLifecycleConfigurationCommand, s3Mock, 's3:GetLifecycleConfiguration'],
      [
        'origin-access-control',
        GetOriginAccessControlCommand,
        cfMock,
        'cloudfront:GetOriginAccessControl'
      ],
      ['signed-urls', GetKeyGroupCommand, cfMock, 'cloudfront:GetKeyGroup']
    ] as const)('%s', async (check, command, mock, permission) => {
      // Each pair is a (command, its client's mock); the union defeats the overloads.
      ;(mock as typeof s3Mock).on(command as typeof GetBucketPolicyCommand).rejects(denied())
      const findings = await runPreflight(clients, target)
      expectOkExcept(findings, check)
      const finding = only(findings, check)
      expect(finding.status).toBe('unchecked')
      expect(finding.message).toMatch(/^Could not check .*\(needs permission /)
      expect(finding.message).toContain(`(needs permission ${permission})`)
      expect(finding.fix).toContain(`Allow ${permission}`)
      expect(preflightFailure(findings)).toBeUndefined()
    })

    it('GetDistribution: one finding for everything that depends on the distribution', async () => {
      cfMock.on(GetDistributionCommand).rejects(denied())
      const findings = await runPreflight(clients, target)
      expect(statusesOf(findings)).toEqual([['distribution', 'unchecked'], ...allOk(BUCKET_CHECKS)])
      expect(findings[0].message).toContain('bucket policy')
      expect(findings[0].message).toContain('(needs permission cloudfront:GetDistribution)')
    })

    it('GetPublicKey and ListKeyGroups: the signing error stays, with the general fix', async () => {
      cfMock.on(GetKeyGroupCommand).resolves({ KeyGroup: keyGroup(KEY_GROUP, ['K9OTHER']) })
      cfMock.on(GetPublicKeyCommand).rejects(denied())
      cfMock.on(ListKeyGroupsCommand).rejects(denied())
      const signing = only(await runPreflight(clients, target), 'signed-urls')
      expect(signing.status).toBe('error')
      expect(signing.message).toContain(
        `Public key ${KEY} is not in any key group the default cache behavior trusts`
      )
      expect(signing.message).not.toContain('nor in any other key group')
      expect(signing.fix).toContain(`Add public key ${KEY} to key group ${KEY_GROUP}`)
      expect(signing.fix).toContain(`aws cloudfront update-key-group --id ${KEY_GROUP}`)
    })

    it('names every permission pre-flight reads with', () => {
      expect(Object.values(PREFLIGHT_PERMISSIONS).sort()).toEqual([
        'cloudfront:GetDistribution',
        'cloudfront:GetKeyGroup',
        'cloudfront:GetOriginAccessControl',
        'cloudfront:GetPublicKey',
        'cloudfront:ListKeyGroups',
        's3:GetBucketPolicy',
        's3:GetBucketPublicAccessBlock',
        's3:GetBucketVersioning',
        's3:GetLifecycleConfiguration'
      ])
    })
  })

  it('reports other read failures as unchecked, with what AWS said', async () => {
    s3Mock
      .on(GetBucketVersioningCommand)
      .rejects(awsError('InternalError', 500, 'We encountered an internal error'))
    const versioning = only(await runPreflight(clients, target), 'versioning')
    expect(versioning.status).toBe('unchecked')
    expect(versioning.message).toContain('Could not check the versioning of bucket "model-bucket"')
    expect(versioning.message).toContain(
      'InternalError (HTTP 500): We encountered an internal error'
    )
  })

  it('rethrows when cancelled', async () => {
    const controller = new AbortController()
    const reason = new DeployError('Cancelled by SIGTERM')
    cfMock.on(GetDistributionCommand).callsFake(() => {
      controller.abort(reason)
      throw awsError('AbortError', 0, 'Request aborted')
    })
    await expect(runPreflight(clients, target, { signal: controller.signal })).rejects.toBe(reason)
    // The SDK's options argument is not in the mock's call type.
    const options = (cfMock.commandCalls(GetDistributionCommand)[0].args as unknown[])[1]
    expect(options).toMatchObject({
      abortSignal: controller.signal
    })
  })
})

describe('preflightFailure and formatFinding', () => {
  const findings: PreflightFinding[] = [
    { check: 'distribution', status: 'ok', message: 'Fine.' },
    { check: 'versioning', status: 'warning', message: 'Versioning off.', fix: 'Turn it on.' },
    { check: 'bucket-policy', status: 'error', message: 'Policy wrong.', fix: 'Add statement.' },
    { check: 'origin', status: 'error', message: 'Origin wrong.' },
    { check: 'lifecycle', status: 'unchecked', message: 'Could not check.' }
  ]

  it('lists every error with its fix in one DeployError', () => {
    const err = preflightFailure(findings)
    expect(err).toBeInstanceOf(DeployError)
    expect(err?.message).toBe(
      'Pre-flight found 2 problem(s) that would leave the models unreachable or unprotected; nothing was uploaded.\n' +
        '1. bucket-policy: Policy wrong.\n   Fix: Add statement.\n' +
        '2. origin: Origin wrong.'
    )
    expect(err?.hint).toContain('`preflight: false`')
  })

  it('returns undefined without errors', () => {
    expect(preflightFailure(findings.filter((f) => f.status !== 'error'))).toBeUndefined()
  })

  it('formats a finding for the log', () => {
    expect(formatFinding(findings[1])).toBe(
      'Pre-flight versioning: Versioning off.\nFix: Turn it on.'
    )
    expect(formatFinding(findings[0])).toBe('Pre-flight distribution: Fine.')
  })
})
