import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InputError } from '../common/errors.js'
import { generateSigningKeys, publicKeyPem } from '../../__fixtures__/signing.js'
import { parseSetupOptions } from './setup.js'

const parse = (flags: Record<string, string>, env: NodeJS.ProcessEnv = {}) =>
  parseSetupOptions((name) => flags[name] ?? '', env)

describe('parseSetupOptions', () => {
  it('takes the documented defaults', () => {
    expect(parse({ bucket: 'acme-models' }, { AWS_REGION: 'eu-west-1' })).toEqual({
      bucket: 'acme-models',
      region: 'eu-west-1',
      publicKeyPem: undefined,
      signedPathPattern: undefined,
      github: undefined,
      roleName: 'model-cdn-deploy-acme-models',
      distributionId: undefined,
      priceClass: 'PriceClass_All',
      noncurrentVersionDays: 30,
      previewDays: 14,
      dryRun: false
    })
  })

  it('reads the public key file and the repository, narrowed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcd-setup-flags-'))
    const file = join(dir, 'public_key.pem')
    writeFileSync(file, publicKeyPem(generateSigningKeys()))
    const options = parse({
      bucket: 'acme-models',
      'public-key': file,
      'signed-path-pattern': '/private/*',
      'github-repo': 'acme/resnet',
      'github-branch': 'main',
      'price-class': 'priceclass_100'
    })
    expect(options.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/)
    expect(options.signedPathPattern).toBe('private/*')
    expect(options.github).toEqual({ repo: 'acme/resnet', branch: 'main', environment: undefined })
    expect(options.priceClass).toBe('PriceClass_100')
  })

  it('reports every problem at once', () => {
    const run = () =>
      parse({
        'aws-region': 'mars',
        'github-branch': 'main',
        'signed-path-pattern': 'private/*',
        'role-name': 'no spaces allowed',
        domain: 'models.example.com',
        'preview-days': '0',
        'public-key': '/no/such/file.pem'
      })
    expect(run).toThrow(InputError)
    const message = (() => {
      try {
        run()
        return ''
      } catch (err) {
        return (err as Error).message
      }
    })()
    expect(message.split('\n- ').slice(1)).toEqual([
      '`bucket` is required.',
      '`aws-region` "mars" is not an AWS region (e.g. us-east-1).',
      expect.stringMatching(/^Cannot read the public key file \/no\/such\/file\.pem/),
      expect.stringMatching(/^`github-branch` and `github-environment` narrow `github-repo`/),
      expect.stringMatching(/^`domain` and `certificate-arn` go together/),
      '`preview-days` must be a whole number of days between 1 and 3650, got 0.',
      expect.stringMatching(/^`role-name` "no spaces allowed" is not a valid IAM role name/)
    ])
  })
})
