import {
  buildSummary,
  filesSection,
  headingSection,
  invalidationSection,
  manifestSection,
  SUMMARY_BUDGET_BYTES,
  totalsSection,
  warningsSection,
  type SummaryReport
} from './summary.js'
import { escapeMarkdown } from './markdown.js'
import type { InvalidationOutcome } from '../common/types.js'
import {
  noInvalidation as noInvalidationOf,
  publishedFile,
  URL_BASE
} from '../../__fixtures__/published.js'

const BASE = URL_BASE
const published = publishedFile
const noInvalidation = noInvalidationOf(
  'every uploaded key is new, so no edge can hold a stale copy'
)

function report(overrides: Partial<SummaryReport> = {}): SummaryReport {
  return {
    versionPrefix: 'resnet50/v3',
    bucket: 'acme-models',
    dryRun: false,
    files: [
      published('weights/model.onnx', { size: 1.5 * 1024 ** 3 }),
      published('config.json', { size: 512, action: 'skip' })
    ],
    bytesUploaded: 1.5 * 1024 ** 3,
    bytesCopied: 0,
    durationMs: 80_000,
    invalidation: noInvalidation,
    distribution: { id: 'E1A2B3C4D5E6F7', domain: 'd111.cloudfront.net' },
    manifestUrl: `${BASE}/resnet50/v3/manifest.json`,
    warnings: [],
    ...overrides
  }
}

const bytes = (text: string): number => Buffer.byteLength(text, 'utf8')
const tableRows = (text: string): string[] =>
  text.split('\n').filter((line) => line.startsWith('| ['))

describe('escapeMarkdown', () => {
  it('neutralises table pipes, backticks, HTML and line breaks', () => {
    expect(escapeMarkdown('a|b`c<d>e&f\ng\r\nh')).toBe('a\\|b\\`c&lt;d&gt;e&amp;f<br>g<br>h')
  })

  it('escapes backslashes so that a trailing one cannot un-escape a pipe', () => {
    expect(escapeMarkdown('dir\\|x')).toBe('dir\\\\\\|x')
  })

  it('escapes emphasis, link, strikethrough and math punctuation', () => {
    expect(escapeMarkdown('*_[x]~$')).toBe('\\*\\_\\[x\\]\\~\\$')
  })

  it('leaves ordinary names alone', () => {
    expect(escapeMarkdown('models/resnet-50.v3.onnx')).toBe('models/resnet-50.v3.onnx')
  })
})

describe('headingSection', () => {
  it('names the version prefix, bucket and distribution', () => {
    expect(headingSection(report())).toBe(
      [
        '## Model CDN deploy: resnet50/v3',
        '',
        '**Bucket:** acme-models · **Distribution:** E1A2B3C4D5E6F7 (d111.cloudfront.net)'
      ].join('\n')
    )
  })

  it('says when there is no distribution and shows the dry-run banner', () => {
    const heading = headingSection(report({ distribution: null, dryRun: true }))
    expect(heading).toContain('**Distribution:** none')
    expect(heading).toContain('> **Dry run — nothing was changed.**')
  })

  it('has no banner on a real run and escapes the prefix', () => {
    const heading = headingSection(report({ versionPrefix: 'team_a/<v3>' }))
    expect(heading).not.toContain('Dry run')
    expect(heading.split('\n')[0]).toBe('## Model CDN deploy: team\\_a/&lt;v3&gt;')
  })
})

describe('filesSection', () => {
  it('lists the files sorted by path with size, short sha256, status and link', () => {
    expect(filesSection(report())).toBe(
      [
        '### Files',
        '',
        '| File | Size | SHA-256 | Status |',
        '| --- | ---: | --- | --- |',
        `| [config.json](${BASE}/v3/config.json) | 512 B | \`0123456789ab\` | skipped |`,
        `| [weights/model.onnx](${BASE}/v3/weights/model.onnx) | 1.5 GiB | \`0123456789ab\` | uploaded |`
      ].join('\n')
    )
  })

  it('says what would happen in a dry run', () => {
    const rows = tableRows(filesSection(report({ dryRun: true })))
    expect(rows[0]).toMatch(/ \| would skip \|$/)
    expect(rows[1]).toMatch(/ \| would upload \|$/)
  })

  it('escapes names and keeps odd characters out of the link target', () => {
    const file = published('a|b (final)`.bin', { url: `${BASE}/v3/a|b (final)\`.bin` })
    const rows = tableRows(filesSection(report({ files: [file] })))
    expect(rows).toEqual([
      `| [a\\|b (final)\\\`.bin](${BASE}/v3/a%7Cb%20%28final%29%60.bin) | 1.5 KiB | \`0123456789ab\` | uploaded |`
    ])
  })

  it('shows at most `limit` rows and says where the full list is', () => {
    const files = ['c', 'a', 'd', 'b'].map((name) => published(`${name}.bin`))
    const section = filesSection(report({ files }), 2)
    expect(tableRows(section).map((row) => row.slice(0, 9))).toEqual(['| [a.bin]', '| [b.bin]'])
    expect(section.endsWith('\n\nShowing 2 of 4 files; the full list is in manifest.json.')).toBe(
      true
    )
    expect(filesSection(report({ files, manifestUrl: '' }), 1)).toContain(
      'Showing 1 of 4 files; the full list is in the `urls` output.'
    )
  })

  it('says so when there are no files', () => {
    expect(filesSection(report({ files: [] }))).toBe('### Files\n\nNo files.')
  })
})

describe('totalsSection', () => {
  it('counts files and reports bytes, duration and throughput', () => {
    expect(totalsSection(report())).toBe(
      [
        '### Totals',
        '',
        '- **Files:** 1 uploaded, 1 skipped (2 in all)',
        '- **Bytes uploaded:** 1.5 GiB (1,610,612,736 bytes)',
        '- **Duration:** 1 min 20 s',
        '- **Average throughput:** 20.1 MB/s'
      ].join('\n')
    )
  })

  it('guards against a zero duration and a run that uploaded nothing', () => {
    expect(totalsSection(report({ durationMs: 0 }))).toContain(
      '- **Average throughput:** — (too fast to measure)'
    )
    const allSkipped = totalsSection(
      report({
        files: [published('a.bin', { action: 'skip' })],
        bytesUploaded: 0,
        durationMs: 2500
      })
    )
    expect(allSkipped).toContain('- **Files:** 0 uploaded, 1 skipped (1 in all)')
    expect(allSkipped).toContain('- **Bytes uploaded:** 0 B')
    expect(allSkipped).toContain('- **Duration:** 2.5 s')
    expect(allSkipped).toContain('- **Average throughput:** — (nothing uploaded)')
  })

  it('reports the planned bytes in a dry run', () => {
    expect(totalsSection(report({ dryRun: true, bytesUploaded: 0, durationMs: 450 }))).toBe(
      [
        '### Totals',
        '',
        '- **Files:** 1 would upload, 1 would skip (2 in all)',
        '- **Bytes to upload:** 1.5 GiB (1,610,612,736 bytes)',
        '- **Duration:** 450 ms'
      ].join('\n')
    )
  })
})

describe('invalidationSection', () => {
  const completed: InvalidationOutcome = {
    reason: '2 keys held other bytes before this run',
    paths: ['/latest/model.onnx', '/latest/*'],
    ids: ['I2J0I21PCUYOIK', 'I3XYZ'],
    status: 'Completed',
    waitedMs: 312_000
  }

  it('gives reason, ids, status, time waited and the paths in a details list', () => {
    expect(invalidationSection(report({ invalidation: completed }))).toBe(
      [
        '### CloudFront invalidation',
        '',
        '- **Reason:** 2 keys held other bytes before this run',
        '- **Invalidation ids:** I2J0I21PCUYOIK, I3XYZ',
        '- **Status:** Completed',
        '- **Waited:** 5 min 12 s',
        '',
        '<details><summary>2 paths</summary>',
        '',
        '- /latest/model.onnx',
        '- /latest/\\*',
        '',
        '</details>'
      ].join('\n')
    )
  })

  it('has a clear line when nothing was invalidated', () => {
    expect(invalidationSection(report())).toBe(
      '### CloudFront invalidation\n\nNo invalidation: every uploaded key is new, so no edge can hold a stale copy'
    )
  })

  it('tells a timed-out wait from one not attempted', () => {
    const timedOut = invalidationSection(
      report({ invalidation: { ...completed, status: 'InProgress', waitedMs: 900_000 } })
    )
    expect(timedOut).toContain(
      '- **Status:** InProgress (the wait timed out; CloudFront carries on)'
    )
    expect(timedOut).toContain('- **Waited:** 15 min 0 s')
    const notWaited = invalidationSection(
      report({ invalidation: { ...completed, status: 'InProgress', waitedMs: 0 } })
    )
    expect(notWaited).toContain('- **Status:** InProgress (not waited for)')
    expect(notWaited).not.toContain('Waited')
  })

  it('shows the planned paths in a dry run without ids', () => {
    const section = invalidationSection(
      report({
        dryRun: true,
        invalidation: { ...completed, ids: [], status: 'none', waitedMs: 0, paths: ['/v3/a.bin'] }
      })
    )
    expect(section).toContain('- **Status:** not created (dry run)')
    expect(section).not.toContain('Invalidation ids')
    expect(section).toContain('<details><summary>1 path</summary>\n\n- /v3/a.bin\n\n</details>')
  })

  it('cuts the path list at `pathLimit`', () => {
    const paths = Array.from({ length: 5 }, (_, i) => `/v3/${i}.bin`)
    const section = invalidationSection(report({ invalidation: { ...completed, paths } }), 3)
    expect(section).toContain('<details><summary>5 paths</summary>')
    expect(section).toContain('- /v3/2.bin\n\nShowing 3 of 5 paths.\n\n</details>')
    expect(section).not.toContain('/v3/3.bin')
  })
})

describe('manifestSection', () => {
  it('links the manifest, names it in a dry run, and says when there is none', () => {
    expect(manifestSection(report())).toBe(
      `**Manifest:** [${BASE}/resnet50/v3/manifest.json](${BASE}/resnet50/v3/manifest.json)`
    )
    expect(manifestSection(report({ dryRun: true }))).toBe(
      `**Manifest:** would be uploaded to ${BASE}/resnet50/v3/manifest.json`
    )
    expect(manifestSection(report({ manifestUrl: '' }))).toBe('**Manifest:** not uploaded.')
  })
})

describe('warningsSection', () => {
  it('is empty without warnings', () => {
    expect(warningsSection([])).toBe('')
  })

  it('lists the warnings, escaped', () => {
    expect(warningsSection(['Invalidation wait timed out', 'key <a|b>\nretry'])).toBe(
      [
        '### Warnings',
        '',
        '- ⚠️ Invalidation wait timed out',
        '- ⚠️ key &lt;a\\|b&gt;<br>retry'
      ].join('\n')
    )
  })

  it('caps the number and length of warnings shown', () => {
    const section = warningsSection([
      '🧠'.repeat(1500),
      ...Array.from({ length: 60 }, (_, i) => `w${i}`)
    ])
    const lines = section.split('\n')
    expect(lines).toHaveLength(2 + 50 + 1)
    expect(lines[2]).toBe(`- ⚠️ ${'🧠'.repeat(1000)}…`)
    expect(lines[51]).toBe('- ⚠️ w48')
    expect(lines[52]).toBe('- … and 11 more in the step log')
  })
})

describe('buildSummary', () => {
  it('joins the sections in order, ending with a newline', () => {
    const r = report({ warnings: ['check the region'] })
    expect(buildSummary(r)).toBe(
      [
        headingSection(r),
        totalsSection(r),
        filesSection(r),
        invalidationSection(r),
        manifestSection(r),
        warningsSection(r.warnings)
      ].join('\n\n') + '\n'
    )
  })

  it('leaves out the warnings section when there are none', () => {
    const summary = buildSummary(report())
    expect(summary).not.toContain('### Warnings')
    expect(summary.endsWith(`(${BASE}/resnet50/v3/manifest.json)\n`)).toBe(true)
  })

  it('truncates 20,000 long-named files and their paths to stay under the budget', () => {
    const files = Array.from({ length: 20_000 }, (_, i) =>
      published(`shards/${'layer-'.repeat(30)}${String(i).padStart(5, '0')}-模型权重.safetensors`)
    )
    const paths = files.map((f) => `/${f.key}`)
    const r = report({
      files,
      bytesUploaded: 20_000 * 1536,
      invalidation: { ...noInvalidation, reason: 'invalidate: all', paths, ids: ['I1'] },
      warnings: ['a warning']
    })

    const started = Date.now()
    const summary = buildSummary(r)
    expect(Date.now() - started).toBeLessThan(10_000)

    const size = bytes(summary)
    expect(size).toBeLessThanOrEqual(SUMMARY_BUDGET_BYTES)
    expect(summary.length).toBeLessThan(size) // the CJK names really are multi-byte

    const rows = tableRows(summary)
    const shownPaths = summary.split('\n').filter((line) => line.startsWith('- /v3/'))
    expect(rows.length).toBeGreaterThan(1000)
    expect(rows.length).toBeLessThan(20_000)
    expect(summary).toContain(
      `\n\nShowing ${rows.length} of 20000 files; the full list is in manifest.json.\n`
    )
    expect(summary).toContain(`\n\nShowing ${shownPaths.length} of 20000 paths.\n`)
    expect(rows[0]).toContain('00000-')
    // The budget is used, not wasted: one more row would not have fitted.
    expect(SUMMARY_BUDGET_BYTES - size).toBeLessThan(bytes(rows[0]) + 1)
    // Every other section survives the cut.
    expect(summary).toContain('### Totals')
    expect(summary).toContain('- **Files:** 20000 uploaded, 0 skipped (20000 in all)')
    expect(summary).toContain('<details><summary>20000 paths</summary>')
    expect(summary).toContain('</details>')
    expect(summary).toContain('**Manifest:**')
    expect(summary).toContain('- ⚠️ a warning')
  })

  it('gives the path list the room the file table does not need', () => {
    const paths = Array.from({ length: 20_000 }, (_, i) => `/v3/${'p'.repeat(80)}/${i}.bin`)
    const r = report({ invalidation: { ...noInvalidation, paths, ids: ['I1'] } })
    const summary = buildSummary(r)
    const shownPaths = summary.split('\n').filter((line) => line.startsWith('- /v3/'))

    expect(bytes(summary)).toBeLessThanOrEqual(SUMMARY_BUDGET_BYTES)
    expect(tableRows(summary)).toHaveLength(2)
    expect(summary).not.toContain('files; the full list')
    // Far more than the 64 KiB share the list gets when the table needs the room.
    expect(shownPaths.length * 90).toBeGreaterThan(800 * 1024)
    expect(summary).toContain(`Showing ${shownPaths.length} of 20000 paths.`)
  })
})
