import { setFlagsFromString } from 'node:v8'
import { withFields } from './objects.js'

describe('withFields', () => {
  it('copies the object with the fields set, leaving it unchanged', () => {
    const file = { key: 'v1/a.json', size: 3, action: 'upload' }
    const copy = withFields(file, { action: 'skip', url: 'https://cdn/v1/a.json' })
    expect(copy).toEqual({
      key: 'v1/a.json',
      size: 3,
      action: 'skip',
      url: 'https://cdn/v1/a.json'
    })
    expect(file).toEqual({ key: 'v1/a.json', size: 3, action: 'upload' })
  })

  it('gives copies of one shape one hidden class (a spread of them, on Node 20, does not)', () => {
    setFlagsFromString('--allow-natives-syntax')
    const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (
      a: object,
      b: object
    ) => boolean
    const files = Array.from({ length: 50 }, (_, i) => ({ key: `v1/${i}.json`, size: i }))
    const copies = files.map((f) => withFields(f, { url: `https://cdn/${f.key}` }))
    expect(copies.every((c) => sameMap(c, copies[0]))).toBe(true)
  })
})
