import { bulletList } from './errors.js'

describe('bulletList', () => {
  it('puts each item on a line of its own', () => {
    expect(bulletList(['a', 'b'])).toBe('\n- a\n- b')
    expect(bulletList([])).toBe('')
  })

  it('names at most `max` and counts the rest', () => {
    expect(bulletList(['a', 'b', 'c', 'd'], 2)).toBe('\n- a\n- b\n- … and 2 more')
    expect(bulletList(['a', 'b'], 2)).toBe('\n- a\n- b')
    const many = Array.from({ length: 21 }, (_, i) => `k${i}`)
    expect(bulletList(many)).toMatch(/- k19\n- … and 1 more$/)
  })
})
