import os from 'node:os'
import { InputError } from '../common/errors.js'
import { parseInputs } from './parse.js'

const workspace = os.tmpdir()
const env = { GITHUB_WORKSPACE: workspace }

function reader(values: Record<string, string>) {
  const all: Record<string, string> = {
    artifacts: 'models/**',
    bucket: 'my-models',
    'version-prefix': 'v3',
    ...values
  }
  return (name: string) => all[name] ?? ''
}

function problemsOf(values: Record<string, string>, extraEnv: NodeJS.ProcessEnv = {}): string {
  try {
    parseInputs(reader(values), { ...env, ...extraEnv })
  } catch (err) {
    expect(err).toBeInstanceOf(InputError)
    return (err as Error).message
  }
  throw new Error('expected an InputError')
}

describe('parseInputs', () => {
  it('applies the documented defaults', () => {
    const inputs = parseInputs(reader({}), env)
    expect(inputs).toEqual({
      artifacts: ['models/**'],
      root: undefined,
      sourceHash: 'known',
      bucket: 'my-models',
      versionPrefix: 'v3',
      distributionId: undefined,
      urlBase: undefined,
      invalidate: 'auto',
      invalidationPaths: [],
      lockTimeoutMinutes: 60,
      waitForInvalidation: true,
      waitTimeoutMinutes: 15,
      multipartThresholdBytes: 16 * 1024 * 1024,
      partSizeBytes: undefined,
      concurrency: 8,
      contentType: undefined,
      cacheControl: 'public, max-age=31536000, immutable',
      metadata: {},
      overwrite: false,
      manifest: true,
      reuseFrom: 'auto',
      dryRun: false,
      region: 'us-east-1',
      endpointUrl: undefined,
      workspace,
      mode: 'deploy',
      alias: undefined,
      aliasCacheControl: 'public, max-age=60',
      aliases: [],
      preflight: true,
      verify: true,
      signing: undefined,
      prComment: true,
      prCommentId: undefined,
      githubToken: ''
    })
  })

  it('reads s3:// artifacts as a selection of objects, with root as an S3 prefix', () => {
    const inputs = parseInputs(
      reader({
        artifacts: 's3://training/runs/42/**\n!s3://training/runs/42/**/*.pt',
        root: 's3://training/runs/',
        'source-hash': 'read'
      }),
      env
    )
    expect(inputs.root).toBeUndefined()
    expect(inputs).toMatchObject({
      sourceHash: 'read',
      s3Sources: {
        includes: [{ bucket: 'training', prefix: 'runs/42/', glob: 'runs/42/**' }],
        excludes: [{ bucket: 'training', glob: 'runs/42/**/*.pt' }],
        root: { bucket: 'training', prefix: 'runs/' }
      }
    })
  })

  it('refuses s3:// artifacts mixed with local ones, an S3 root for local files, and a bad source-hash', () => {
    expect(problemsOf({ artifacts: 's3://training/runs/42/**\nmodels/**' })).toContain(
      '`artifacts` mixes `s3://` patterns with local ones (models/**)'
    )
    expect(problemsOf({ root: 's3://training/runs/' })).toContain(
      '`root` "s3://training/runs/" is an S3 prefix, but `artifacts` are local files'
    )
    expect(problemsOf({ 'source-hash': 'sometimes' })).toContain(
      '`source-hash` must be one of known, read; got "sometimes"'
    )
    expect(problemsOf({ artifacts: 's3://Bad_Bucket/x/**' })).toMatch(/Bad_Bucket/)
  })

  it('reads reuse-from as auto, none, or prefixes checked like version-prefix', () => {
    expect(parseInputs(reader({ 'reuse-from': 'AUTO' }), env).reuseFrom).toBe('auto')
    expect(parseInputs(reader({ 'reuse-from': 'none' }), env).reuseFrom).toEqual([])
    expect(
      parseInputs(reader({ 'reuse-from': 'resnet50/v2/\nresnet50/v1' }), env).reuseFrom
    ).toEqual(['resnet50/v2', 'resnet50/v1'])
    expect(() => parseInputs(reader({ 'reuse-from': 'v1\n../v0' }), env)).toThrow(
      '`reuse-from` "../v0" must not contain "." or ".." segments.'
    )
  })

  it('parses every input', () => {
    const inputs = parseInputs(
      reader({
        artifacts: 'models/*.onnx\n\n!models/tmp-*\n# a comment',
        root: 'models',
        'version-prefix': 'resnet50/v3/',
        'distribution-id': 'E1A2B3C4D5E6F7',
        'url-base': 'https://models.example.com/',
        invalidate: 'ALL',
        'invalidation-paths': '/latest/*\n/index.json',
        'wait-for-invalidation': 'false',
        'wait-timeout-minutes': '30',
        'multipart-threshold-mb': '64',
        'part-size-mb': '32',
        concurrency: '4',
        'content-type': 'application/x-onnx',
        metadata: 'Model-Version=2.0.1\nframework = onnx\ntask=text=classification',
        overwrite: 'true',
        manifest: 'False',
        'dry-run': 'TRUE',
        'aws-region': 'eu-west-1',
        'endpoint-url': 'http://127.0.0.1:9000'
      }),
      env
    )
    expect(inputs).toMatchObject({
      artifacts: ['models/*.onnx', '!models/tmp-*'],
      root: `${workspace}/models`,
      versionPrefix: 'resnet50/v3',
      distributionId: 'E1A2B3C4D5E6F7',
      urlBase: 'https://models.example.com',
      invalidate: 'all',
      invalidationPaths: ['/latest/*', '/index.json'],
      waitForInvalidation: false,
      waitTimeoutMinutes: 30,
      multipartThresholdBytes: 64 * 1024 * 1024,
      partSizeBytes: 32 * 1024 * 1024,
      concurrency: 4,
      contentType: 'application/x-onnx',
      metadata: { 'model-version': '2.0.1', framework: 'onnx', task: 'text=classification' },
      overwrite: true,
      manifest: false,
      dryRun: true,
      region: 'eu-west-1',
      endpointUrl: 'http://127.0.0.1:9000'
    })
  })

  it('takes the region from AWS_REGION, then AWS_DEFAULT_REGION', () => {
    expect(parseInputs(reader({}), { ...env, AWS_DEFAULT_REGION: 'eu-central-1' }).region).toBe(
      'eu-central-1'
    )
    expect(
      parseInputs(reader({}), {
        ...env,
        AWS_REGION: 'ap-south-1',
        AWS_DEFAULT_REGION: 'eu-central-1'
      }).region
    ).toBe('ap-south-1')
  })

  it.each([
    [{ artifacts: '' }, '`artifacts` is required'],
    [{ bucket: '' }, '`bucket` is required'],
    [{ 'version-prefix': '' }, '`version-prefix` is required'],
    [{ artifacts: '../secrets/*' }, 'points outside the workspace'],
    [{ artifacts: '/etc/passwd' }, 'points outside the workspace'],
    [{ root: '../..' }, '`root` "../.." is outside the workspace'],
    [{ bucket: 's3://my-models' }, 'not a valid S3 bucket name'],
    [{ 'version-prefix': '/v3' }, 'must not start with "/"'],
    [{ 'version-prefix': 'v3/../v2' }, 'must not contain "." or ".."'],
    [{ 'version-prefix': 'v3//x' }, 'empty segment'],
    [{ 'version-prefix': 'v3 beta' }, 'may only use letters, digits'],
    [{ 'version-prefix': 'v3?x' }, 'may only use letters, digits'],
    [{ 'distribution-id': 'd111111abcdef8.cloudfront.net' }, 'not a CloudFront distribution id'],
    [
      { 'url-base': 'models.example.com' },
      '`url-base` "models.example.com" must be an http(s) URL'
    ],
    [{ invalidate: 'sometimes' }, '`invalidate` must be one of auto, all, none'],
    [{ 'invalidation-paths': '/x' }, '`invalidation-paths` needs `distribution-id`'],
    [{ 'wait-for-invalidation': 'maybe' }, '`wait-for-invalidation` must be true or false'],
    [{ 'wait-timeout-minutes': 'ten' }, '`wait-timeout-minutes` must be a number'],
    [{ 'part-size-mb': '4' }, '`part-size-mb` must be between 5 and 5120 MiB'],
    [{ 'part-size-mb': '6000' }, '`part-size-mb` must be between 5 and 5120 MiB'],
    [{ 'part-size-mb': '16MB' }, '`part-size-mb` must be a number'],
    [{ concurrency: '0' }, '`concurrency` must be between 1 and 64'],
    [{ concurrency: '2.5' }, '`concurrency` must be a whole number'],
    [{ 'content-type': 'onnx' }, 'is not a MIME type'],
    [{ metadata: 'framework' }, '`metadata` line "framework" must be key=value'],
    [{ metadata: 'bad key=x' }, '`metadata` key "bad key" may only use'],
    [{ metadata: 'sha256=abc' }, 'is reserved'],
    [{ metadata: 'a=1\nA=2' }, 'is given twice'],
    [{ metadata: 'author=Zoë' }, 'must be printable ASCII'],
    [{ metadata: `notes=${'x'.repeat(2000)}` }, 'S3 allows 2048 bytes of user metadata'],
    [{ 'aws-region': 'Frankfurt' }, 'is not a region name'],
    [{ 'endpoint-url': 'localhost:9000' }, '`endpoint-url` "localhost:9000" must be an http(s) URL']
  ])('rejects %j', (values, expected) => {
    expect(problemsOf(values)).toContain(expected)
  })

  it('reports every problem at once and says nothing was uploaded', () => {
    const message = problemsOf({
      bucket: 'Bad_Bucket',
      'version-prefix': '../v1',
      concurrency: 'x'
    })
    expect(message).toMatch(/^Invalid inputs; nothing was uploaded:/)
    expect(message).toContain('not a valid S3 bucket name')
    expect(message).toContain('must not contain "." or ".."')
    expect(message).toContain('`concurrency` must be a number')
  })
})
