import { GetDistributionCommand } from '@aws-sdk/client-cloudfront'
import { preflightFailure, runPreflight } from './index.js'
import { allOk, BUCKET_CHECKS, statusesOf } from '../../../__fixtures__/preflight.js'
import {
  awsError,
  DIST,
  goodConfig,
  mockPreflightWorld,
  target
} from '../../../__fixtures__/preflight-world.js'

const { cfMock, clients, mockDistribution } = mockPreflightWorld()

describe('runPreflight', () => {
  describe('distribution', () => {
    it('fails when it does not exist, and skips what depends on it', async () => {
      cfMock.on(GetDistributionCommand).rejects(awsError('NoSuchDistribution', 404))
      const findings = await runPreflight(clients, target)
      expect(statusesOf(findings)).toEqual([['distribution', 'error'], ...allOk(BUCKET_CHECKS)])
      expect(findings[0].fix).toContain('aws cloudfront list-distributions')
    })

    it('warns when it is disabled or still deploying', async () => {
      mockDistribution({ ...goodConfig(), Enabled: false }, 'InProgress')
      const findings = await runPreflight(clients, target)
      const state = findings.filter((f) => f.check === 'distribution')
      expect(state.map((f) => f.status)).toEqual(['warning', 'warning'])
      expect(state[0].message).toContain('is disabled')
      expect(state[1].message).toContain('is InProgress')
      expect(state[1].fix).toContain(`aws cloudfront wait distribution-deployed --id ${DIST}`)
      expect(preflightFailure(findings)).toBeUndefined()
    })
  })
})
