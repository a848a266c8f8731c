/**
 * Scenario 8 of `npm run bench`: the cost per file. Many small JSON files (a tokenizer's or a
 * sharded index's worth, each a few hundred bytes), ours vs `aws s3 cp --recursive`, at 2,000 and
 * 32,000 files (and 100,000 with --huge). What is measured is what a file costs besides its bytes:
 * peak RSS should stay flat in the number of files, and time grow no faster than it.
 *
 * The files are written once per data directory (under count/<n>/, 1,000 per folder) and kept
 * with --data-dir. bench.mjs passes its runners in; this module owns the data and the rows.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** File counts measured by default, and with --huge. */
export const FILE_COUNTS = [2_000, 32_000]
export const HUGE_FILE_COUNT = 100_000
const PER_FOLDER = 1_000

/** Targets (issue 25). */
const RSS_GROWTH_MB = 50
const HUGE_RSS_MB = 250
const WALL_RATIO = 0.35

/** The folder (relative to the data directory) that holds `count` files. */
export const fileCountDir = (count) => `count/${count}`

/** One small JSON file's text: different for every file, a few hundred bytes. */
function smallJson(i) {
  const tokens = Array.from({ length: 24 }, (_, t) => `tok_${(i * 31 + t * 7) % 100_003}`)
  return `${JSON.stringify({ id: i, name: `shard-${i}`, tokens, scale: (i % 997) / 997 }, null, 1)}\n`
}

/** Writes `count` small files under count/<count>/ unless they are there already. */
export function prepareFileCountData(dataDir, count) {
  const dir = join(dataDir, fileCountDir(count))
  const marker = join(dataDir, '.seeds', `count-${count}.done`)
  if (existsSync(marker) && existsSync(dir)) return false
  rmSync(dir, { recursive: true, force: true })
  for (let i = 0; i < count; i++) {
    const folder = join(dir, `part-${String(Math.floor(i / PER_FOLDER)).padStart(3, '0')}`)
    if (i % PER_FOLDER === 0) mkdirSync(folder, { recursive: true })
    writeFileSync(join(folder, `item-${String(i).padStart(6, '0')}.json`), smallJson(i))
  }
  mkdirSync(join(dataDir, '.seeds'), { recursive: true })
  writeFileSync(marker, String(count))
  return true
}

/** Total bytes of the files smallJson writes for `count` files. */
export function fileCountBytes(count) {
  let bytes = 0
  for (let i = 0; i < count; i++) bytes += Buffer.byteLength(smallJson(i))
  return bytes
}

/**
 * Runs scenario 8 for each count, as `8-<count>`. `bench` gives bench.mjs's pieces:
 * runScenario, peerContestants, ourContestants, runPeer, runOurs, endpoint, bucket, dataDir,
 * tag and ownPrefix.
 */
export async function runFileCountScenario(counts, bench) {
  const { dataDir, endpoint, bucket, tag, ownPrefix } = bench
  for (const count of counts) {
    const started = Date.now()
    if (prepareFileCountData(dataDir, count)) {
      console.log(`Wrote ${count} small files in ${((Date.now() - started) / 1000).toFixed(1)} s.`)
    }
    const dir = fileCountDir(count)
    const bytes = fileCountBytes(count)
    await bench.runScenario(`8-${count}`, `${count} small files (${(bytes / 1e6).toFixed(1)} MB)`, [
      ...bench.peerContestants({
        'aws-cli': async (pair) => ({
          cp: await bench.runPeer(endpoint, [
            's3',
            'cp',
            '--recursive',
            join(dataDir, dir),
            `s3://${bucket}/s8/peer-${count}-${tag(pair)}/`
          ])
        })
      }),
      ...bench.ourContestants(async (v, pair) => ({
        cp: await bench.runOurs(v, {
          endpoint,
          cwd: dataDir,
          artifacts: `${dir}/**`,
          prefix: ownPrefix(`s8-${count}`, v, pair),
          expect: { uploaded: count, 'bytes-uploaded': bytes }
        })
      }))
    ])
  }
}

/**
 * The table's rows for scenario 8: `summarize(id, step)` and `add(scenario, peer, s, target, met)`
 * are bench.mjs's. Memory is compared with the 2,000-file run of the same variant, time per file
 * with it too.
 */
export function fileCountRows(results, summarize, add) {
  const counts = Object.keys(results)
    .filter((id) => id.startsWith('8-'))
    .map((id) => Number(id.slice(2)))
    .sort((a, b) => a - b)
  const base = counts.includes(FILE_COUNTS[0]) ? summarize(`8-${FILE_COUNTS[0]}`, 'cp') : []
  const baseName = FILE_COUNTS[0].toLocaleString('en')
  for (const count of counts) {
    for (const s of summarize(`8-${count}`, 'cp')) {
      const b = base.find((x) => x.variant === s.variant)
      const label = `8. ${count.toLocaleString('en')} small files`
      if (count === FILE_COUNTS[0]) {
        add(label, 'aws s3 cp --recursive', s, 'baseline for RSS and time per file')
        continue
      }
      const targets = []
      const met = []
      if (b && Number.isFinite(b.ourRss)) {
        const growth = s.ourRss - b.ourRss
        const limit = count === HUGE_FILE_COUNT ? HUGE_RSS_MB : b.ourRss + RSS_GROWTH_MB
        targets.push(
          count === HUGE_FILE_COUNT
            ? `RSS ≤ ${HUGE_RSS_MB} MB`
            : `RSS ≤ ${baseName}'s + ${RSS_GROWTH_MB} MB (+${growth.toFixed(0)})`
        )
        met.push(s.ourRss <= limit)
        const perFile = s.ourWall / count / (b.ourWall / FILE_COUNTS[0])
        targets.push(`time/file ≤ ${baseName}'s (${perFile.toFixed(2)}×)`)
        met.push(perFile <= 1)
      } else if (count === HUGE_FILE_COUNT) {
        targets.push(`RSS ≤ ${HUGE_RSS_MB} MB`)
        met.push(s.ourRss <= HUGE_RSS_MB)
      }
      if (count === FILE_COUNTS[1]) {
        targets.push(`wall ≤ ${WALL_RATIO}×`)
        met.push(s.peer.length ? s.wallRatio <= WALL_RATIO : undefined)
      }
      const known = met.filter((m) => m !== undefined)
      add(
        label,
        'aws s3 cp --recursive',
        s,
        targets.join(', '),
        known.length ? known.every(Boolean) : undefined
      )
    }
  }
}
