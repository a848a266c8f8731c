/**
 * Loaded into the action's process by `npm run bench` (NODE_OPTIONS=--import …): when the
 * process exits, writes its own CPU time and peak RSS (process.resourceUsage(), i.e. getrusage)
 * to $BENCH_RUSAGE_FILE. The action runs in one process, so this is the whole cost of a run,
 * start-up included. It does nothing else and nothing at all without the variable.
 */
import { writeFileSync } from 'node:fs'

const file = process.env.BENCH_RUSAGE_FILE
if (file) {
  process.on('exit', () => {
    const r = process.resourceUsage()
    writeFileSync(
      file,
      JSON.stringify({
        userS: r.userCPUTime / 1e6,
        sysS: r.systemCPUTime / 1e6,
        maxRssKiB: r.maxRSS
      })
    )
  })
}
