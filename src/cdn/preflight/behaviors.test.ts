import { type DistributionConfig } from '@aws-sdk/client-cloudfront'
import { servingBehaviors } from './behaviors.js'
import { goodConfig, ORIGIN, PREFIX } from '../../../__fixtures__/preflight-world.js'

describe('servingBehaviors', () => {
  const behavior = (pattern: string, origin = ORIGIN) => ({
    PathPattern: pattern,
    TargetOriginId: origin,
    ViewerProtocolPolicy: 'allow-all' as const
  })
  const config = (...patterns: string[]): DistributionConfig => ({
    ...goodConfig(),
    CacheBehaviors: { Quantity: patterns.length, Items: patterns.map((p) => behavior(p)) }
  })
  const labels = (c: DistributionConfig, prefix = PREFIX) =>
    servingBehaviors(c, prefix).map((s) => s.label)

  it('uses the default behavior when no path pattern matches', () => {
    expect(labels(config('/api/*', '/static/*.html'))).toEqual(['the default cache behavior'])
  })

  it('stops at the first pattern matching every key, in order, with an optional leading /', () => {
    expect(labels(config('/api/*', 'models/*', '/models/v1/*'))).toEqual([
      'cache behavior "models/*"'
    ])
  })

  it('keeps patterns matching some keys, then the one matching all or the default', () => {
    expect(labels(config('*.onnx', '/models/*'))).toEqual([
      'cache behavior "*.onnx"',
      'cache behavior "/models/*"'
    ])
    expect(labels(config('*.onnx'))).toEqual([
      'cache behavior "*.onnx"',
      'the default cache behavior'
    ])
  })

  it('matches the percent-encoded path of the prefix, case-sensitively', () => {
    expect(labels(config('/my%20models/*'), 'my models/v1')).toEqual([
      'cache behavior "/my%20models/*"'
    ])
    expect(labels(config('/MODELS/*'))).toEqual(['the default cache behavior'])
  })
})
