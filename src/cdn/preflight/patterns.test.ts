import { patternCoverage } from './patterns.js'
import { BUCKET } from '../../../__fixtures__/preflight-world.js'

describe('patternCoverage (CloudFront path patterns and IAM resources)', () => {
  it.each([
    ['*', 'all'],
    ['/*', 'all'],
    ['/models/*', 'all'],
    ['/models/v?/*', 'all'],
    ['/m*1/*', 'all'],
    ['/models/v1/*', 'all'],
    ['/models/v1/*.onnx', 'some'],
    ['/*.gguf', 'some'],
    ['/models/v1/?', 'some'],
    ['/models/v1/a*', 'some'],
    ['/models/v1', 'none'],
    ['/models/v1/', 'none'],
    ['/Models/*', 'none'],
    ['/other/*', 'none'],
    ['/models/v2/*', 'none']
  ])('%s against /models/v1/… is %s', (pattern, coverage) => {
    expect(patternCoverage(pattern, '/models/v1/')).toBe(coverage)
  })

  it('matches ARN patterns the same way', () => {
    const base = `arn:aws:s3:::${BUCKET}/v1/`
    expect(patternCoverage(`arn:aws:s3:::${BUCKET}/*`, base)).toBe('all')
    expect(patternCoverage('arn:aws:s3:::*', base)).toBe('all')
    expect(patternCoverage(`arn:aws:s3:::${BUCKET}`, base)).toBe('none')
    expect(patternCoverage(`arn:aws:s3:::${BUCKET}/v1/public/*`, base)).toBe('some')
  })
})
