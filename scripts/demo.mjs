#!/usr/bin/env node
/**
 * `npm run demo`: runs the committed dist/index.js, exactly as a GitHub runner runs it, against a
 * local emulator (moto_server: S3 + CloudFront) that this script starts and stops itself.
 *
 *   1. start the emulator, create a private versioned bucket behind a CloudFront distribution
 *   2. write sample model files into a temporary workspace (one large enough for multipart)
 *   3. deploy them → outputs and job summary
 *   4. deploy again → everything skipped
 *   5. change one file and deploy with overwrite: true → exactly that path invalidated
 *
 * Needs moto_server on PATH (python3 -m pip install 'moto[server]'). Set DEMO_KEEP=1 to keep the
 * workspace.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ListObjectVersionsCommand } from '@aws-sdk/client-s3'
import { makeClients, setupWorld, startEmulator } from './lib/emulator.mjs'
import { REPO_ROOT, runAction } from './lib/run-action.mjs'

const MiB = 1024 * 1024
const BUCKET = 'acme-model-artifacts'
const useColor = process.stdout.isTTY && !process.env.NO_COLOR
const bold = (s) => (useColor ? `\x1b[1m${s}\x1b[0m` : s)
const dim = (s) => (useColor ? `\x1b[2m${s}\x1b[0m` : s)

function section(title) {
  const line = '─'.repeat(Math.max(8, 96 - title.length))
  console.log(`\n${bold(`── ${title} `)}${line}`)
}

function indent(text, prefix = '  ') {
  return text
    .replace(/\s+$/, '')
    .split('\n')
    .map((l) => prefix + l)
    .join('\n')
}

function printOutputs(outputs) {
  for (const [name, value] of Object.entries(outputs)) {
    let shown = value
    if (/^[[{]/.test(value)) {
      try {
        shown = JSON.stringify(JSON.parse(value), null, 2)
      } catch {
        // not JSON: shown as is
      }
    }
    if (name === 'manifest' && shown.length > 1500) shown = `${shown.slice(0, 1500)}\n…`
    console.log(
      shown.includes('\n')
        ? `  ${bold(name)}:\n${indent(shown, '    ')}`
        : `  ${bold(name)}: ${shown}`
    )
  }
}

/** The job summary is Markdown/HTML for github.com; made readable in a terminal. */
function summaryAsText(html) {
  return html
    .replace(/<\/(tr|h\d|p|li|div|table|details|summary)>/gi, '\n')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/t[hd]>\s*<t[hd][^>]*>/gi, ' | ')
    .replace(/<h(\d)[^>]*>/gi, (_, n) => `${'#'.repeat(Number(n))} `)
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\n{3,}/g, '\n\n')
}

async function writeSample(workspace, rel, bytes) {
  const path = join(workspace, rel)
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, bytes)
  return bytes.length
}

function report(title, result) {
  section(`${title}: exit code ${result.exitCode} after ${(result.durationMs / 1000).toFixed(1)} s`)
  console.log(dim('  action log (last lines):'))
  const log = result.stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('::debug::'))
    .slice(-25)
    .join('\n')
  console.log(dim(indent(log, '  │ ')))
  // The AWS SDK's notice that it will soon need Node >= 22 (runners use node24): said once above.
  const stderr = result.stderr
    .replace(
      /\(node:\d+\) Warning: NodeVersionSupportWarning[\s\S]*?--trace-warnings[^\n]*\n?/g,
      ''
    )
    .trim()
  if (stderr) console.log(dim(indent(stderr, '  stderr │ ')))
  for (const e of result.errors) console.log(indent(e, '  ERROR: '))
  for (const w of result.warnings) console.log(indent(w, '  warning: '))
  console.log(`\n  ${bold('Outputs')}`)
  printOutputs(result.outputs)
  console.log(`\n  ${bold('Job summary')}`)
  console.log(indent(summaryAsText(result.summary) || '(empty)', '  ┃ '))
}

async function main() {
  if (!existsSync(join(REPO_ROOT, 'dist', 'index.js'))) {
    throw new Error('dist/index.js is missing: run `npm run build` first.')
  }

  section('1. Emulator (moto_server: S3 + CloudFront)')
  const emulator = await startEmulator()
  let workspace
  try {
    console.log(`  endpoint: ${emulator.endpoint} (pid ${emulator.pid})`)
    const world = await setupWorld(emulator.endpoint, { bucket: BUCKET })
    console.log(
      `  bucket: ${world.bucket} (versioned, public access blocked, readable by the distribution only)`
    )
    console.log(
      `  distribution: ${world.distributionId} → https://${world.domain} (origin access control ${world.oacId})`
    )

    section('2. Workspace with sample model files')
    workspace = await mkdtemp(join(tmpdir(), 'model-cdn-demo-'))
    const samples = {
      'models/resnet50.onnx': randomBytes(2 * MiB),
      'models/tokenizer.json': Buffer.from(
        JSON.stringify(
          { version: '1.0', model: { type: 'BPE', vocab: { hello: 0, world: 1 } } },
          null,
          2
        )
      ),
      'models/weights v2.safetensors': randomBytes(1 * MiB + 123),
      // Over the 8 MiB threshold below: three 5 MiB parts.
      'models/llama-tiny.Q4_K_M.gguf': randomBytes(12 * MiB + 4567)
    }
    for (const [rel, bytes] of Object.entries(samples)) {
      await writeSample(workspace, rel, bytes)
      console.log(`  ${rel.padEnd(36)} ${String(bytes.length).padStart(10)} bytes`)
    }
    console.log(`  (workspace: ${workspace})`)

    const inputs = {
      artifacts: 'models/**',
      bucket: world.bucket,
      'version-prefix': 'resnet50/v3',
      'distribution-id': world.distributionId,
      'multipart-threshold-mb': 8,
      'part-size-mb': 5,
      metadata: 'model-version=3.0.0\nframework=onnx\ntask=image-classification',
      // The emulator's CloudFront domain does not resolve, so its URLs cannot be requested.
      verify: false
    }
    section('The step, as a workflow would write it')
    console.log(
      indent(
        [
          '- uses: acme/model-cdn-deploy@v1',
          '  with:',
          ...Object.entries(inputs).map(([k, v]) =>
            String(v).includes('\n')
              ? `    ${k}: |\n${indent(String(v), '      ')}`
              : `    ${k}: ${v}`
          ),
          `    endpoint-url: ${emulator.endpoint}   # the emulator; CloudFront via AWS_ENDPOINT_URL_CLOUDFRONT`
        ].join('\n')
      )
    )

    const run = (extra = {}) =>
      runAction({ cwd: workspace, endpoint: emulator.endpoint, inputs: { ...inputs, ...extra } })

    const first = await run()
    report('3. First deploy', first)
    if (first.exitCode !== 0) throw new Error('the first deploy failed (see above)')

    const second = await run()
    report('4. Second deploy of the same files (everything skipped)', second)
    if (second.exitCode !== 0) throw new Error('the second deploy failed (see above)')

    await writeSample(workspace, 'models/tokenizer.json', Buffer.from('{"version":"1.0.1"}\n'))
    const third = await run({ overwrite: true })
    report('5. tokenizer.json changed, deployed with overwrite: true (exact invalidation)', third)
    if (third.exitCode !== 0) throw new Error('the overwrite deploy failed (see above)')

    section('What the bucket holds now (object versions)')
    const { s3 } = makeClients(emulator.endpoint)
    const listing = await s3.send(new ListObjectVersionsCommand({ Bucket: world.bucket }))
    s3.destroy()
    const versions = new Map()
    for (const v of listing.Versions ?? []) versions.set(v.Key, [...(versions.get(v.Key) ?? []), v])
    for (const [key, vs] of [...versions].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const latest = vs.find((v) => v.IsLatest) ?? vs[0]
      console.log(
        `  ${key.padEnd(44)} ${String(latest.Size).padStart(10)} bytes  ${vs.length} version(s)`
      )
    }
  } finally {
    section('Cleaning up')
    await emulator.stop()
    console.log('  emulator stopped')
    if (workspace && !process.env.DEMO_KEEP) await rm(workspace, { recursive: true, force: true })
    else if (workspace) console.log(`  workspace kept: ${workspace}`)
  }
}

main().catch((err) => {
  console.error(`\ndemo failed: ${err instanceof Error ? err.message : err}`)
  process.exitCode = 1
})
