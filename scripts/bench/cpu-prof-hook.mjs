/**
 * `npm run bench -- --cpu-prof DIR`: a V8 CPU profile of the action's process, written when it
 * exits to $BENCH_CPU_PROF_FILE (open it in Chrome DevTools, or summarise it with
 * `node scripts/bench/prof-summary.mjs FILE`). `--cpu-prof` itself is not allowed in
 * NODE_OPTIONS, hence the inspector session.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'

const file = process.env.BENCH_CPU_PROF_FILE
if (file) {
  const session = new Session()
  session.connect()
  session.post('Profiler.enable')
  session.post('Profiler.setSamplingInterval', { interval: 500 })
  session.post('Profiler.start')
  process.on('exit', () => {
    // Same-thread sessions answer synchronously, so this runs before the process is gone.
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(file, JSON.stringify(result.profile))
    })
  })
}
