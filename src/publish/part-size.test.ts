import { GiB, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, MiB } from '../common/constants.js'
import { InputError } from '../common/errors.js'
import {
  DEFAULT_COPY_PART_SIZE,
  DEFAULT_PART_SIZE,
  MAX_OBJECT_SIZE,
  choosePartSize,
  copyPartSize,
  partCount
} from './part-size.js'

const TiB = 1024 * GiB

/** The InputError `fn` throws (fails the test when it throws nothing or something else). */
function inputErrorOf(fn: () => unknown): InputError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(InputError)
    return err as InputError
  }
  throw new Error('expected an InputError')
}

describe('partCount', () => {
  it('counts whole and partial parts, and one request for an empty file', () => {
    expect(partCount(0, 5 * MiB)).toBe(1)
    expect(partCount(1, 5 * MiB)).toBe(1)
    expect(partCount(5 * MiB, 5 * MiB)).toBe(1)
    expect(partCount(5 * MiB + 1, 5 * MiB)).toBe(2)
    expect(partCount(12 * MiB, 5 * MiB)).toBe(3)
  })
})

describe('choosePartSize, automatic', () => {
  it('uses 16 MiB for anything up to 10,000 parts of 16 MiB', () => {
    expect(DEFAULT_PART_SIZE).toBe(16 * MiB)
    expect(choosePartSize(0)).toBe(16 * MiB)
    expect(choosePartSize(1)).toBe(16 * MiB)
    expect(choosePartSize(5 * MiB)).toBe(16 * MiB)
    expect(choosePartSize(50 * GiB)).toBe(16 * MiB)
    expect(choosePartSize(16 * MiB * MAX_PARTS)).toBe(16 * MiB)
    expect(partCount(16 * MiB * MAX_PARTS, 16 * MiB)).toBe(MAX_PARTS)
  })

  it('raises the part size to the next whole MiB one byte past the boundary', () => {
    const size = 16 * MiB * MAX_PARTS + 1
    expect(choosePartSize(size)).toBe(17 * MiB)
    expect(partCount(size, 17 * MiB)).toBeLessThanOrEqual(MAX_PARTS)
  })

  it('fits 5 TiB, the largest S3 object, in 10,000 parts of 525 MiB', () => {
    const size = choosePartSize(MAX_OBJECT_SIZE)
    expect(MAX_OBJECT_SIZE).toBe(5 * TiB)
    expect(size).toBe(525 * MiB)
    expect(partCount(MAX_OBJECT_SIZE, size)).toBe(9987)
    expect(size).toBeLessThanOrEqual(MAX_PART_SIZE)
  })

  it('always returns a whole MiB within the limits that needs at most 10,000 parts', () => {
    for (let size = 100 * GiB; size <= MAX_OBJECT_SIZE; size += 37 * GiB + 12_345) {
      const part = choosePartSize(size)
      expect(part % MiB).toBe(0)
      expect(part).toBeGreaterThanOrEqual(DEFAULT_PART_SIZE)
      expect(part).toBeLessThanOrEqual(MAX_PART_SIZE)
      expect(partCount(size, part)).toBeLessThanOrEqual(MAX_PARTS)
      // The smallest that works: one MiB less would need too many parts.
      if (part > DEFAULT_PART_SIZE) expect(partCount(size, part - MiB)).toBeGreaterThan(MAX_PARTS)
    }
  })

  it('rejects files larger than 5 TiB, naming the file', () => {
    const err = inputErrorOf(() =>
      choosePartSize(MAX_OBJECT_SIZE + 1, undefined, 'models/huge.bin')
    )
    expect(err.message).toBe(
      'models/huge.bin of 5.0 TiB (5,497,558,138,881 bytes) is larger than 5 TiB, the largest object S3 can store.'
    )
    expect(err.hint).toMatch(/shards/)
  })
})

describe('choosePartSize, requested', () => {
  it('uses the requested size when the file fits', () => {
    expect(choosePartSize(0, MIN_PART_SIZE)).toBe(MIN_PART_SIZE)
    expect(choosePartSize(12 * MiB, 5 * MiB)).toBe(5 * MiB)
    expect(choosePartSize(16 * MiB * MAX_PARTS, 16 * MiB)).toBe(16 * MiB)
    expect(choosePartSize(MAX_OBJECT_SIZE, MAX_PART_SIZE)).toBe(MAX_PART_SIZE)
  })

  it('rejects a part size too small for the file, with the count and the smallest that works', () => {
    const err = inputErrorOf(() => choosePartSize(50 * GiB, 5 * MiB, 'models/llama.gguf'))
    expect(err.message).toBe(
      'models/llama.gguf of 50.0 GiB (53,687,091,200 bytes) would need 10,240 parts of 5 MiB, ' +
        'but S3 allows at most 10,000.'
    )
    expect(err.hint).toBe(
      'Set `part-size-mb` to at least 6, or leave it empty to size parts automatically.'
    )
    // The advice holds: 6 MiB works.
    expect(choosePartSize(50 * GiB, 6 * MiB)).toBe(6 * MiB)
  })

  it('rejects one byte past 10,000 parts', () => {
    const err = inputErrorOf(() => choosePartSize(16 * MiB * MAX_PARTS + 1, 16 * MiB))
    expect(err.message).toMatch(
      /^A file of 156\.3 GiB \(167,772,160,001 bytes\) would need 10,001 parts of 16 MiB/
    )
    expect(err.hint).toMatch(/at least 17,/)
  })

  it.each([
    [MIN_PART_SIZE - 1, '5,242,879 bytes'],
    [4 * MiB, '4 MiB'],
    [MAX_PART_SIZE + MiB, '5121 MiB'],
    [5.5 * MiB + 0.5, '5,767,168.5 bytes']
  ])('rejects %d bytes, outside 5 MiB to 5 GiB or not whole', (requested, shown) => {
    const err = inputErrorOf(() => choosePartSize(GiB, requested))
    expect(err.message).toBe(
      `\`part-size-mb\` must be 5 to 5120 MiB (S3's part size limits); got ${shown}.`
    )
  })

  it('accepts a part size that is not a whole MiB, and names it in bytes when too small', () => {
    expect(choosePartSize(GiB, 5.5 * MiB)).toBe(5.5 * MiB)
    const err = inputErrorOf(() => choosePartSize(60 * GiB, 5.5 * MiB))
    expect(err.message).toMatch(/would need 11,171 parts of 5,767,168 bytes,/)
    expect(err.hint).toMatch(/at least 7,/)
  })
})

describe('copyPartSize', () => {
  it('copies up to 5,000 GiB in parts of 512 MiB', () => {
    for (const size of [0, 1, 5 * GiB + 1, 100 * GiB, 5000 * GiB]) {
      expect(copyPartSize(size)).toBe(DEFAULT_COPY_PART_SIZE)
    }
  })

  it('raises parts to a whole MiB beyond, fitting 5 TiB in 10,000 parts of 525 MiB', () => {
    expect(copyPartSize(MAX_OBJECT_SIZE)).toBe(525 * MiB)
    expect(partCount(MAX_OBJECT_SIZE, 525 * MiB)).toBe(9987)
  })

  it('plans every size from 0 B to 5 TiB within S3 limits, without allocating bytes', () => {
    // Sizes spread across the whole range (sizes are numbers: nothing is read or allocated).
    for (let size = 0; size <= MAX_OBJECT_SIZE; size += 7 * GiB + 12_345) {
      const part = copyPartSize(size)
      expect(part % MiB).toBe(0)
      expect(part).toBeLessThanOrEqual(MAX_PART_SIZE)
      expect(partCount(size, part)).toBeLessThanOrEqual(MAX_PARTS)
    }
  })

  it('refuses an object larger than S3 stores', () => {
    expect(() => copyPartSize(MAX_OBJECT_SIZE + 1, 'huge.bin')).toThrow(
      /huge\.bin .*larger than 5 TiB/
    )
  })
})
