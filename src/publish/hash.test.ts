import { createHash, randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { hashFile } from './hash.js'

const MiB = 1024 * 1024
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hash-'))
})
afterAll(() => rm(dir, { recursive: true, force: true }))

async function fileOf(name: string, bytes: Buffer): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, bytes)
  return path
}
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe('hashFile', () => {
  it.each([0, 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 5])('hashes %i bytes', async (size) => {
    const bytes = randomBytes(size)
    expect((await hashFile(await fileOf(`f${size}`, bytes))).sha256).toBe(sha(bytes))
  })

  it('keeps files hashed at once apart though read buffers are reused', async () => {
    const contents = Array.from({ length: 12 }, (_, i) => randomBytes(2 * MiB + i * 4099))
    const paths = await Promise.all(contents.map((c, i) => fileOf(`c${i}`, c)))
    for (let round = 0; round < 2; round++) {
      expect(await Promise.all(paths.map(async (p) => (await hashFile(p)).sha256))).toEqual(
        contents.map(sha)
      )
    }
  })

  it('stops when the signal aborts, and reports a missing file', async () => {
    const path = await fileOf('big', randomBytes(8 * MiB))
    const controller = new AbortController()
    const hashing = hashFile(path, { signal: controller.signal })
    controller.abort(new Error('cancelled'))
    await expect(hashing).rejects.toThrow('cancelled')
    await expect(hashFile(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' })
    // The buffers went back to the pool intact: the next hash is still right.
    const bytes = randomBytes(MiB + 3)
    expect((await hashFile(await fileOf('after', bytes))).sha256).toBe(sha(bytes))
  })

  it.each([
    [0, MiB, []],
    [5 * MiB, 5 * MiB, [5 * MiB]],
    [12 * MiB + 7, 5 * MiB, [5 * MiB, 5 * MiB, 2 * MiB + 7]],
    // Part boundaries inside a read: a part size that is no multiple of the 1 MiB reads.
    [3 * MiB, 1.5 * MiB, [1.5 * MiB, 1.5 * MiB]]
  ])(
    'reads %i bytes once for the SHA-256 and the CRC32 of each %i-byte part',
    async (size, partSize, lengths) => {
      const bytes = randomBytes(size)
      const { sha256, partCrc32 } = await hashFile(await fileOf(`p${size}-${partSize}`, bytes), {
        partSize
      })
      expect(sha256).toBe(sha(bytes))
      let start = 0
      const expected = lengths.map((length) => {
        const out = Buffer.alloc(4)
        out.writeUInt32BE(crc32(bytes.subarray(start, (start += length))))
        return out.toString('base64')
      })
      expect(partCrc32).toEqual(expected)
    }
  )

  it('terminates a worker cancelled mid-file and hashes on with a fresh one', async () => {
    const path = await fileOf('cancelled-mid-file', randomBytes(96 * MiB))
    const controller = new AbortController()
    const hashing = hashFile(path, { signal: controller.signal })
    setTimeout(() => controller.abort(new Error('cancelled mid-file')), 5)
    await expect(hashing).rejects.toThrow('cancelled mid-file')
    const contents = Array.from({ length: 6 }, (_, i) => randomBytes(MiB + i))
    const paths = await Promise.all(contents.map((c, i) => fileOf(`after-cancel-${i}`, c)))
    expect(await Promise.all(paths.map(async (p) => (await hashFile(p)).sha256))).toEqual(
      contents.map(sha)
    )
  })

  it('computes no CRC32 without a part size', async () => {
    expect((await hashFile(await fileOf('no-parts', randomBytes(MiB)))).partCrc32).toEqual([])
  })

  it('lets idle workers exit (their memory is not held through the uploads) and starts anew', async () => {
    const threads = () => readdirSync('/proc/self/task').length
    const bytes = randomBytes(MiB)
    const path = await fileOf('idle', bytes)
    await hashFile(path)
    const withWorker = threads()
    // Waits for the exit, however slow the machine: without it the test fails here.
    for (let waited = 0; threads() >= withWorker && waited < 10_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(threads()).toBeLessThan(withWorker)
    expect((await hashFile(path)).sha256).toBe(sha(bytes))
  }, 15_000)
})
