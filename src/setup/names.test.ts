import { setupName } from './names.js'

const NAME = 'model-cdn-deploy-model-bucket'

describe('setupName', () => {
  it('is the prefix and the bucket when that fits', () => {
    expect(setupName('model-bucket', 64)).toBe(NAME)
  })

  it('shortens a long bucket name to the limit, keeping two buckets apart by a hash', () => {
    const a = setupName(`${'a'.repeat(60)}-one`, 64)
    const b = setupName(`${'a'.repeat(60)}-two`, 64)
    expect(a).toHaveLength(64)
    expect(a).toMatch(/^model-cdn-deploy-a+-[0-9a-f]{8}$/)
    expect(a).not.toBe(b)
  })

  it('replaces dots, which CloudFront names do not take, and adds the hash so a.b and a-b differ', () => {
    expect(setupName('models.example.com', 64)).toMatch(
      /^model-cdn-deploy-models-example-com-[0-9a-f]{8}$/
    )
    expect(setupName('a.b', 64)).not.toBe(setupName('a-b', 64))
  })

  it('keeps dots where the API takes them (IAM role names)', () => {
    expect(setupName('models.example.com', 64, { dotsAllowed: true })).toBe(
      'model-cdn-deploy-models.example.com'
    )
    expect(setupName(`${'a'.repeat(50)}.eu`, 64, { dotsAllowed: true })).toMatch(
      /^model-cdn-deploy-a+-[0-9a-f]{8}$/
    )
  })
})
