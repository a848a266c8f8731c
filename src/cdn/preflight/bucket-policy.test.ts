import { GetBucketPolicyCommand } from '@aws-sdk/client-s3'
import { runPreflight } from './index.js'
import { expectOkExcept, only } from '../../../__fixtures__/preflight.js'
import {
  ARN,
  awsError,
  BUCKET,
  mockPreflightWorld,
  statement,
  target
} from '../../../__fixtures__/preflight-world.js'

const { s3Mock, clients, mockPolicy } = mockPreflightWorld()

describe('runPreflight', () => {
  describe('bucket policy', () => {
    it('fails when the policy names another distribution, giving the statement to add', async () => {
      const other = 'arn:aws:cloudfront::123456789012:distribution/EOTHER'
      mockPolicy(statement({ Condition: { StringEquals: { 'AWS:SourceArn': other } } }))
      const findings = await runPreflight(clients, target)
      expectOkExcept(findings, 'bucket-policy')
      const policy = only(findings, 'bucket-policy')
      expect(policy.status).toBe('error')
      expect(policy.message).toContain(`only for ${other}, not for this distribution (${ARN})`)
      expect(policy.fix).toContain(
        JSON.stringify({
          Sid: 'AllowCloudFrontServicePrincipalReadOnly',
          Effect: 'Allow',
          Principal: { Service: 'cloudfront.amazonaws.com' },
          Action: 's3:GetObject',
          Resource: `arn:aws:s3:::${BUCKET}/*`,
          Condition: { StringEquals: { 'AWS:SourceArn': ARN } }
        })
      )
    })

    it('fails without a policy, giving the command that sets one', async () => {
      s3Mock.on(GetBucketPolicyCommand).rejects(awsError('NoSuchBucketPolicy', 404))
      const policy = only(await runPreflight(clients, target), 'bucket-policy')
      expect(policy.status).toBe('error')
      expect(policy.message).toContain('has no bucket policy')
      expect(policy.fix).toContain(
        `aws s3api put-bucket-policy --bucket ${BUCKET} --policy '{"Version":"2012-10-17","Statement":[{`
      )
    })

    it('fails when the grant does not cover the version prefix', async () => {
      mockPolicy(statement({ Resource: `arn:aws:s3:::${BUCKET}/public/*` }))
      const policy = only(await runPreflight(clients, target), 'bucket-policy')
      expect(policy.status).toBe('error')
      expect(policy.message).toContain(
        `read only arn:aws:s3:::${BUCKET}/public/*, not ${BUCKET}/models/v1/*`
      )
    })

    it('fails when no statement grants CloudFront s3:GetObject', async () => {
      mockPolicy(
        statement({ Action: 's3:PutObject' }),
        statement({ Effect: 'Deny' }),
        statement({ Principal: { AWS: 'arn:aws:iam::123456789012:root' } })
      )
      const policy = only(await runPreflight(clients, target), 'bucket-policy')
      expect(policy.status).toBe('error')
      expect(policy.message).toContain('has no statement that lets cloudfront.amazonaws.com read')
    })

    it('warns when the grant is not limited to this distribution', async () => {
      mockPolicy(statement({ Condition: undefined }))
      const policy = only(await runPreflight(clients, target), 'bucket-policy')
      expect(policy.status).toBe('warning')
      expect(policy.message).toContain('any CloudFront distribution, in any AWS account')
      expect(policy.fix).toContain(`{"StringEquals":{"AWS:SourceArn":"${ARN}"}}`)
    })

    it('warns when the policy makes the bucket public, and fails when signing', async () => {
      mockPolicy(statement(), statement({ Principal: '*', Condition: undefined }))
      const unsigned = await runPreflight(clients, { ...target, signingKeyPairId: undefined })
      const policy = only(unsigned, 'bucket-policy')
      expect(policy.status).toBe('warning')
      expect(policy.message).toContain('lets anyone (Principal "*") read')
      expect(policy.fix).toContain(`"AWS:SourceArn":"${ARN}"`)
      const signed = only(await runPreflight(clients, target), 'bucket-policy')
      expect(signed.status).toBe('error')
      expect(signed.message).toContain('bypassing CloudFront and the signed URLs')
    })

    it.each([
      [
        'ArnLike with a wildcard',
        {
          Condition: {
            ArnLike: { 'aws:sourcearn': 'arn:aws:cloudfront::123456789012:distribution/*' }
          }
        }
      ],
      [
        'a list of ARNs',
        {
          Condition: {
            StringEquals: { 'AWS:SourceArn': ['arn:aws:cloudfront::1:distribution/EX', ARN] }
          }
        }
      ],
      [
        's3:Get* on the whole partition',
        { Action: ['s3:ListBucket', 's3:Get*'], Resource: 'arn:aws:s3:::*' }
      ],
      ['Principal "*"', { Principal: '*' }],
      [
        'a list of services',
        { Principal: { Service: ['lambda.amazonaws.com', 'cloudfront.amazonaws.com'] } }
      ]
    ])('accepts %s', async (_, overrides) => {
      mockPolicy(statement(overrides))
      expect(only(await runPreflight(clients, target), 'bucket-policy').status).toBe('ok')
    })

    it('accepts a single statement object', async () => {
      s3Mock
        .on(GetBucketPolicyCommand)
        .resolves({ Policy: JSON.stringify({ Version: '2012-10-17', Statement: statement() }) })
      expect(only(await runPreflight(clients, target), 'bucket-policy').status).toBe('ok')
    })
  })
})
