import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'

/** SHA-256 (hex) of a file, streamed so memory stays flat for multi-GB weights. */
export async function sha256File(filePath: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256')
  // 1 MiB reads: fewer syscalls and callbacks than the 64 KiB default. The signal stops a
  // multi-GB hash at once when the run is cancelled.
  await pipeline(createReadStream(filePath, { highWaterMark: 1024 * 1024 }), hash, { signal })
  return hash.digest('hex')
}
