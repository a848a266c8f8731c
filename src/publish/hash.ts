import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'

export interface FileHashes {
  /** Hex. */
  sha256: string
  /** Base64 big-endian CRC32 of each part (as S3 wants them), when a part size was given. */
  partCrc32: string[]
}

interface HashRequest {
  path: string
  partSize?: number
}

type HashReply =
  | { ok: FileHashes }
  | { error: { message: string; code?: string; errno?: number; syscall?: string; path?: string } }

/**
 * Hashing runs in worker threads: SHA-256 costs ~0.7 CPU-s per GiB here, and on the main thread
 * files were hashed one at a time on one core (and would hold up any TLS writes meanwhile). With
 * a worker per core, files are hashed in parallel; each worker costs ~13 MB.
 */
const MAX_WORKERS = 4
/**
 * A worker idle this long exits: hashing comes in one burst (the plan), and a worker kept through
 * a long upload would hold its ~13 MB for nothing.
 */
const IDLE_EXIT_MS = 250

/**
 * SHA-256 of a file and, with `partSize`, the CRC32 of each of its parts, in one read: the
 * upload sends each part with its CRC32 and would otherwise read the file a second time. Memory
 * stays flat for multi-GB weights (one reused 1 MiB buffer per worker). The signal stops a
 * multi-GB hash at once (the worker is terminated) when the run is cancelled.
 */
export async function hashFile(
  filePath: string,
  opts: { signal?: AbortSignal; partSize?: number } = {}
): Promise<FileHashes> {
  return pool.run({ path: filePath, partSize: opts.partSize }, opts.signal)
}

/** Lazily started workers, at most one per core (and MAX_WORKERS); requests beyond wait. */
class HashPool {
  private readonly idle: Worker[] = []
  private readonly idleTimers = new Map<Worker, NodeJS.Timeout>()
  private readonly waiting: (() => void)[] = []
  private started = 0

  constructor(private readonly size: number) {}

  async run(request: HashRequest, signal?: AbortSignal): Promise<FileHashes> {
    signal?.throwIfAborted()
    const worker = await this.acquire(signal)
    let healthy = false
    let reply: HashReply
    try {
      reply = await ask(worker, request, signal)
      healthy = true
    } finally {
      this.release(worker, healthy)
    }
    // A file that cannot be read is the caller's error; the worker that said so is fine.
    if ('error' in reply) throw Object.assign(new Error(reply.error.message), reply.error)
    return reply.ok
  }

  private async acquire(signal?: AbortSignal): Promise<Worker> {
    while (this.idle.length === 0 && this.started >= this.size) {
      await new Promise<void>((resolve) => this.waiting.push(resolve))
      if (signal?.aborted) {
        // Pass the wake-up on: a worker may be free for another waiter.
        this.waiting.shift()?.()
        signal.throwIfAborted()
      }
    }
    const worker = this.idle.pop() ?? this.start()
    clearTimeout(this.idleTimers.get(worker))
    this.idleTimers.delete(worker)
    // Referenced only while busy: an idle worker must not keep the process alive.
    worker.ref()
    return worker
  }

  private start(): Worker {
    this.started++
    const worker = new Worker(`(${hashWorker.toString()})()`, { eval: true })
    // One that dies while idle must not be handed out again.
    worker.once('exit', () => this.dropIdle(worker))
    return worker
  }

  /** Takes an idle worker out of the pool; false when it is not idle (busy, or gone already). */
  private dropIdle(worker: Worker): boolean {
    clearTimeout(this.idleTimers.get(worker))
    this.idleTimers.delete(worker)
    const index = this.idle.indexOf(worker)
    if (index < 0) return false
    this.idle.splice(index, 1)
    this.started--
    return true
  }

  /** A worker that was terminated, crashed or left mid-file is dropped, not reused. */
  private release(worker: Worker, healthy: boolean): void {
    if (healthy) {
      worker.unref()
      this.idle.push(worker)
      const timer = setTimeout(() => {
        if (this.dropIdle(worker)) void worker.terminate()
      }, IDLE_EXIT_MS)
      timer.unref()
      this.idleTimers.set(worker, timer)
    } else {
      this.started--
      void worker.terminate()
    }
    this.waiting.shift()?.()
  }
}

/** Files hashed at once: one per worker, so a caller queueing its own files can still reorder them. */
export const HASH_WORKERS = Math.max(1, Math.min(availableParallelism(), MAX_WORKERS))

const pool = new HashPool(HASH_WORKERS)

function ask(worker: Worker, request: HashRequest, signal?: AbortSignal): Promise<HashReply> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const settle = (): void => {
      worker.off('message', onMessage)
      worker.off('error', onError)
      worker.off('exit', onExit)
      signal?.removeEventListener('abort', onAbort)
    }
    const onMessage = (reply: HashReply): void => {
      settle()
      resolve(reply)
    }
    const onError = (err: Error): void => {
      settle()
      reject(err)
    }
    const onExit = (code: number): void => {
      settle()
      reject(new Error(`The hashing worker exited (code ${code}) while hashing ${request.path}.`))
    }
    const onAbort = (): void => {
      settle()
      reject(signal?.reason)
    }
    worker.on('message', onMessage)
    worker.on('error', onError)
    worker.on('exit', onExit)
    signal?.addEventListener('abort', onAbort, { once: true })
    worker.postMessage(request)
  })
}

/**
 * The worker's whole program, sent as source: it must not refer to anything outside itself
 * (the bundler renames imports), so modules come from process.getBuiltinModule. Reads are
 * synchronous: the worker has nothing else to do meanwhile, and reads handed to libuv's thread
 * pool (the process's one, which also serves the uploads' reads) made 200 × 5 MiB take 1.08× as
 * long (npm run bench, same run); hashing alone, two files at once took 1.17× (365 against 310
 * ms for 642 MiB), one file the same either way.
 */
function hashWorker(): void {
  const { parentPort } = process.getBuiltinModule('node:worker_threads')
  const { createHash } = process.getBuiltinModule('node:crypto')
  const { openSync, readSync, closeSync } = process.getBuiltinModule('node:fs')
  const { crc32 } = process.getBuiltinModule('node:zlib')
  const buffer = Buffer.allocUnsafeSlow(1024 * 1024)

  const crcBase64 = (crc: number): string => {
    const out = Buffer.alloc(4)
    out.writeUInt32BE(crc >>> 0)
    return out.toString('base64')
  }

  function hash({ path, partSize }: HashRequest): FileHashes {
    const sha256 = createHash('sha256')
    const partCrc32: string[] = []
    let crc = 0
    let filled = 0
    const fd = openSync(path, 'r')
    try {
      for (let position = 0; ;) {
        const bytesRead = readSync(fd, buffer, 0, buffer.length, position)
        if (bytesRead === 0) break
        position += bytesRead
        const chunk = buffer.subarray(0, bytesRead)
        sha256.update(chunk)
        // Part boundaries need not fall on read boundaries.
        for (let offset = 0; partSize && offset < chunk.length;) {
          const take = Math.min(chunk.length - offset, partSize - filled)
          crc = crc32(chunk.subarray(offset, offset + take), crc)
          filled += take
          offset += take
          if (filled === partSize) {
            partCrc32.push(crcBase64(crc))
            crc = 0
            filled = 0
          }
        }
      }
    } finally {
      closeSync(fd)
    }
    if (filled > 0) partCrc32.push(crcBase64(crc))
    return { sha256: sha256.digest('hex'), partCrc32 }
  }

  parentPort!.on('message', (request: HashRequest) => {
    let reply: HashReply
    try {
      reply = { ok: hash(request) }
    } catch (err) {
      const { message, code, errno, syscall, path } = err as NodeJS.ErrnoException
      reply = { error: { message, code, errno, syscall, path } }
    }
    parentPort!.postMessage(reply)
  })
}
