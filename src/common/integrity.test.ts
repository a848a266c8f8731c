import type { S3Checksum } from './types.js'
import {
  checksumText,
  integrityFromMetadata,
  integrityMetadata,
  parseChecksumText,
  sameBytes,
  shortIntegrity
} from './integrity.js'

const SHA = 'ab'.repeat(32)
const CRC: S3Checksum = { algorithm: 'CRC64NVME', type: 'FULL_OBJECT', value: 'nC7n2J+0ELs=' }
const COMPOSITE: S3Checksum = { algorithm: 'CRC32', type: 'COMPOSITE', value: 'AAAAAA==-3' }

describe('checksumText', () => {
  it('names the algorithm, and composite checksums as such', () => {
    expect(checksumText(CRC)).toBe('CRC64NVME:nC7n2J+0ELs=')
    expect(checksumText(COMPOSITE)).toBe('CRC32-COMPOSITE:AAAAAA==-3')
  })

  it('reads back what it wrote, and nothing else', () => {
    for (const c of [CRC, COMPOSITE]) expect(parseChecksumText(checksumText(c))).toEqual(c)
    for (const bad of [undefined, '', 'MD5:abc', 'CRC32', 'crc32:AAAA', 'CRC32: x']) {
      expect(parseChecksumText(bad)).toBeUndefined()
    }
  })
})

describe('integrityMetadata', () => {
  it('records the SHA-256 and S3 checksum a file has, and reads them back', () => {
    expect(integrityMetadata({ sha256: SHA })).toEqual({ sha256: SHA })
    expect(integrityMetadata({ checksum: CRC })).toEqual({ checksum: 'CRC64NVME:nC7n2J+0ELs=' })
    const both = integrityMetadata({ sha256: SHA, checksum: COMPOSITE })
    expect(both).toEqual({ sha256: SHA, checksum: 'CRC32-COMPOSITE:AAAAAA==-3' })
    expect(integrityFromMetadata({ ...both, framework: 'onnx' })).toEqual({
      sha256: SHA,
      checksum: COMPOSITE
    })
  })
})

describe('sameBytes', () => {
  it('agrees on an equal value, differs on a different one of the same kind', () => {
    expect(sameBytes({ sha256: SHA }, { sha256: SHA.toUpperCase() })).toBe(true)
    expect(sameBytes({ sha256: SHA }, { sha256: 'cd'.repeat(32) })).toBe(false)
    expect(sameBytes({ checksum: CRC }, { sha256: SHA, checksum: CRC })).toBe(true)
    expect(sameBytes({ checksum: CRC }, { checksum: { ...CRC, value: 'AAAAAAAAAAA=' } })).toBe(
      false
    )
  })

  it('a differing SHA-256 outweighs an equal checksum', () => {
    expect(
      sameBytes({ sha256: SHA, checksum: CRC }, { sha256: 'cd'.repeat(32), checksum: CRC })
    ).toBe(false)
  })

  it('cannot tell when nothing is comparable: other algorithms, or nothing recorded', () => {
    expect(sameBytes({ checksum: CRC }, { checksum: COMPOSITE })).toBeUndefined()
    expect(sameBytes({ sha256: SHA }, { checksum: CRC })).toBeUndefined()
    expect(sameBytes({}, { sha256: SHA })).toBeUndefined()
  })
})

describe('shortIntegrity', () => {
  it('shows 12 hex digits of a SHA-256, else the named checksum', () => {
    expect(shortIntegrity({ sha256: SHA, checksum: CRC })).toBe('abababababab')
    expect(shortIntegrity({ checksum: CRC })).toBe('CRC64NVME:nC7n2J+0ELs=')
  })
})
