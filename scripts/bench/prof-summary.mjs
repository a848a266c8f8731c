#!/usr/bin/env node
/**
 * Summarises a V8 .cpuprofile: where the samples went, by function (self time) and by call
 * path (inclusive time), e.g. to see how much of a deploy is SHA-256, TLS, file reads or GC.
 *
 *   node scripts/bench/prof-summary.mjs FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs'

const [file, topArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node scripts/bench/prof-summary.mjs FILE.cpuprofile [TOP]')
  process.exit(2)
}
const top = Number(topArg ?? 30)
const profile = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const label = (n) => {
  const f = n.callFrame
  const where = f.url ? ` ${f.url.split('/').slice(-1)[0]}:${f.lineNumber + 1}` : ''
  return `${f.functionName || '(anonymous)'}${where}`
}

const self = new Map()
const inclusive = new Map()
let total = 0
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0
  total += dt
  const leaf = byId.get(id)
  self.set(label(leaf), (self.get(label(leaf)) ?? 0) + dt)
  const seen = new Set()
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const key = label(byId.get(cur))
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + dt)
  }
})

const ms = (us) => (us / 1000).toFixed(0).padStart(7)
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`)
console.log('\nself time (ms)')
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${ms(v)} ${pct(v)}  ${k}`)
}
console.log('\ninclusive time (ms)')
for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${ms(v)} ${pct(v)}  ${k}`)
}
