import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sha256File } from '../../src/hash.js'

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

describe('sha256File', () => {
  it.each([0, 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 5])('hashes %i bytes', async (size) => {
    const bytes = randomBytes(size)
    expect(await sha256File(await fileOf(`f${size}`, bytes))).toBe(sha(bytes))
  })

  it('keeps files hashed at once apart though read buffers are reused', async () => {
    const contents = Array.from({ length: 12 }, (_, i) => randomBytes(2 * MiB + i * 4099))
    const paths = await Promise.all(contents.map((c, i) => fileOf(`c${i}`, c)))
    for (let round = 0; round < 2; round++) {
      expect(await Promise.all(paths.map((p) => sha256File(p)))).toEqual(contents.map(sha))
    }
  })

  it('stops when the signal aborts, and reports a missing file', async () => {
    const path = await fileOf('big', randomBytes(8 * MiB))
    const controller = new AbortController()
    const hashing = sha256File(path, controller.signal)
    controller.abort(new Error('cancelled'))
    await expect(hashing).rejects.toThrow('cancelled')
    await expect(sha256File(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' })
    // The buffers went back to the pool intact: the next hash is still right.
    const bytes = randomBytes(MiB + 3)
    expect(await sha256File(await fileOf('after', bytes))).toBe(sha(bytes))
  })
})
