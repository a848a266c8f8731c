import type { CleanupResult } from '../release/cleanup.js'
import { Outputs } from '../common/constants.js'
import { buildOutputs, OUTPUTS_BUDGET_BYTES, type OutputsReport } from './outputs.js'
import type { PreflightFinding } from '../cdn/preflight/index.js'
import type { AliasMove } from '../release/promote.js'
import { signPublished, type SigningReport } from '../cdn/signing.js'
import {
  aliasSection,
  buildSummary,
  cleanupSummary,
  commentSection,
  preflightSection,
  promoteSummary,
  signingSection,
  verificationSection,
  type SummaryReport
} from './summary.js'
import type { InvalidationOutcome } from '../common/types.js'
import type { FileVerification, VerifyResult } from '../cdn/verify.js'
import { noInvalidation, publishedFile, URL_BASE } from '../../__fixtures__/published.js'
import { generateSigningKeys } from '../../__fixtures__/signing.js'

const KEY_PAIR_ID = 'K2JCJMDEHXQW5F'
const keys = generateSigningKeys()
const NOW = Date.UTC(2025, 2, 4, 5, 6, 7, 890)

function signing(): SigningReport {
  return signPublished(
    [
      { relativePath: 'model.onnx', url: `${URL_BASE}/v3/model.onnx` },
      { relativePath: 'config.json', url: `${URL_BASE}/v3/config.json` },
      { relativePath: 'manifest.json', url: `${URL_BASE}/v3/manifest.json` }
    ],
    URL_BASE,
    'v3',
    { keyPairId: KEY_PAIR_ID, privateKey: keys.pkcs8, expiresInSeconds: 3600 },
    NOW
  )
}

function move(overrides: Partial<AliasMove['result']> = {}, inv?: InvalidationOutcome): AliasMove {
  return {
    result: {
      alias: 'latest',
      versionPrefix: 'v3',
      previousVersion: 'v2',
      dryRun: false,
      files: [
        { path: 'model.onnx', key: 'latest/model.onnx' },
        { path: 'config.json', key: 'latest/config.json' }
      ],
      copied: ['latest/model.onnx'],
      unchanged: ['latest/config.json'],
      removed: ['latest/old.bin', 'latest/older.bin'],
      manifestKey: 'latest/manifest.json',
      manifestAction: 'copied',
      invalidationPaths: ['/latest/*'],
      ...overrides
    },
    urls: {
      'model.onnx': `${URL_BASE}/latest/model.onnx`,
      'config.json': `${URL_BASE}/latest/config.json`,
      'manifest.json': `${URL_BASE}/latest/manifest.json`
    },
    invalidation: inv ?? {
      reason: 'alias latest now serves v3',
      paths: ['/latest/*'],
      ids: ['I9'],
      status: 'Completed',
      waitedMs: 30_000
    }
  }
}

const verification = (
  relativePath: string,
  ok: boolean,
  extra: Partial<FileVerification> = {}
): FileVerification => ({
  relativePath,
  url: `${URL_BASE}/v3/${relativePath}`,
  ok,
  status: 200,
  problems: ok ? [] : ['Content-Length 1, expected 2'],
  kinds: ok ? [] : ['content'],
  ...extra
})
const verifyResult = (results: FileVerification[]): VerifyResult => ({
  verified: results.every((r) => r.ok),
  results
})

function summaryReport(overrides: Partial<SummaryReport> = {}): SummaryReport {
  return {
    versionPrefix: 'v3',
    bucket: 'acme-models',
    dryRun: false,
    files: [publishedFile('model.onnx'), publishedFile('config.json')],
    bytesUploaded: 3072,
    bytesCopied: 0,
    durationMs: 2000,
    invalidation: noInvalidation(),
    distribution: { id: 'E1A2B3C4D5E6F7', domain: 'd111.cloudfront.net' },
    manifestUrl: `${URL_BASE}/v3/manifest.json`,
    warnings: [],
    ...overrides
  }
}

describe('preflightSection', () => {
  it('is empty when pre-flight did not run', () => {
    expect(preflightSection(undefined)).toBe('')
  })

  it('has one row per check with its result, and the fix of checks that are not ok', () => {
    const findings: PreflightFinding[] = [
      { check: 'distribution', status: 'ok', message: 'Deployed.', fix: 'never shown' },
      {
        check: 'versioning',
        status: 'warning',
        message: 'Versioning is off | suspended',
        fix: 'aws s3api put-bucket-versioning'
      },
      { check: 'bucket-policy', status: 'error', message: 'No policy.', fix: 'Set one.' },
      { check: 'lifecycle', status: 'unchecked', message: 'Could not check.' }
    ]
    expect(preflightSection(findings)).toBe(
      [
        '### Pre-flight',
        '',
        '| Check | Result | Details |',
        '| --- | --- | --- |',
        '| distribution | ✅ ok | Deployed. |',
        '| versioning | ⚠️ warning | Versioning is off \\| suspended<br>**Fix:** aws s3api put-bucket-versioning |',
        '| bucket-policy | ❌ error | No policy.<br>**Fix:** Set one. |',
        '| lifecycle | ❔ not checked | Could not check. |'
      ].join('\n')
    )
  })
})

describe('aliasSection', () => {
  it('is empty without an alias', () => {
    expect(aliasSection(undefined, false)).toBe('')
  })

  it('says what the alias served before and now, what moved, the invalidation and the manifest', () => {
    const exact: InvalidationOutcome = {
      reason: 'alias latest now serves v3',
      paths: ['/latest/manifest.json'],
      ids: ['I9'],
      status: 'Completed',
      waitedMs: 30_000
    }
    expect(aliasSection(move({}, exact), false)).toBe(
      [
        '### Alias',
        '',
        '- `latest` pointed to `v2`; it now points to `v3`.',
        '- Files copied server-side: 1; unchanged: 1; removed: 2; manifest copied.',
        '- Invalidation: `/latest/manifest.json` → Completed',
        `- Manifest: [${URL_BASE}/latest/manifest.json](${URL_BASE}/latest/manifest.json)`
      ].join('\n')
    )
  })

  // Markdown processes no backslash escape inside a code span: `/latest/\*` would show the `\`.
  it('shows prefixes and wildcard paths inside code spans as they are', () => {
    const section = aliasSection(move({ versionPrefix: 'v1_2', previousVersion: 'v1_1' }), false)
    expect(section).toContain('- `latest` pointed to `v1_1`; it now points to `v1_2`.')
    expect(section).toContain('- Invalidation: `/latest/*` → Completed')
  })

  it('speaks of what would happen in a dry run, with no manifest link', () => {
    const section = aliasSection(
      move({ dryRun: true, previousVersion: undefined, manifestAction: 'unchanged' }),
      true
    )
    expect(section).toContain('- `latest` pointed to nothing; it now would point to `v3`.')
    expect(section).toContain(
      '- Files to copy server-side: 1; unchanged: 1; to remove: 2; manifest unchanged.'
    )
    expect(section).not.toContain('Manifest:')
  })

  it('gives the reason when nothing is invalidated, and an InProgress status as not waited for', () => {
    const none = aliasSection(
      move({}, noInvalidation('No distribution-id given, so there is nothing to invalidate.')),
      false
    )
    expect(none).toContain(
      '- Invalidation: No distribution-id given, so there is nothing to invalidate.'
    )
    const running = aliasSection(
      move(
        {},
        {
          reason: 'r',
          paths: ['/latest/model.onnx'],
          ids: ['I1'],
          status: 'InProgress',
          waitedMs: 0
        }
      ),
      false
    )
    expect(running).toContain('- Invalidation: `/latest/model.onnx` → InProgress (not waited for)')
  })
})

describe('signingSection', () => {
  it('is empty without signing', () => {
    expect(signingSection(undefined)).toBe('')
  })

  it('gives the count, key id, expiry, cookie resource and where the values are', () => {
    expect(signingSection(signing())).toBe(
      [
        '### Signed URLs',
        '',
        `- 3 signed URLs and signed cookies (key \`${KEY_PAIR_ID}\`) expire at **2025-03-04T06:06:07.000Z**.`,
        // As it is in a code span: no backslash before the `*`.
        `- The cookies open \`${URL_BASE}/v3/*\`.`,
        '- They are in the `signed-urls` and `signed-cookies` outputs (never in this summary or the log).'
      ].join('\n')
    )
  })

  it('never puts a signed URL, a signature or a cookie value in the summary', () => {
    const report = signing()
    const summary = buildSummary(summaryReport({ signing: report }))
    expect(summary).toContain('### Signed URLs')
    for (const value of [...Object.values(report.urls), ...Object.values(report.cookies)]) {
      if (value === KEY_PAIR_ID) continue
      expect(summary).not.toContain(value)
    }
    for (const url of Object.values(report.urls)) {
      const signature = new URL(url).searchParams.get('Signature') as string
      expect(signature.length).toBeGreaterThan(100)
      expect(summary).not.toContain(signature.slice(0, 40))
    }
    expect(summary).not.toMatch(/Signature=|Expires=|CloudFront-Policy/)
  })
})

describe('verificationSection', () => {
  it('is empty when nothing was verified', () => {
    expect(verificationSection(undefined)).toBe('')
  })

  it('reports success with one row per URL', () => {
    const section = verificationSection(
      verifyResult([verification('a.bin', true), verification('b.bin', true)])
    )
    expect(section).toBe(
      [
        '### Verification',
        '',
        '✅ All 2 URL(s) serve their size and SHA-256.',
        '',
        '| File | Status | Result |',
        '| --- | ---: | --- |',
        '| a.bin | 200 | ✅ |',
        '| b.bin | 200 | ✅ |'
      ].join('\n')
    )
  })

  it('lists failures first, with their problems escaped and a dash for no answer', () => {
    const section = verificationSection(
      verifyResult([
        verification('a.bin', true),
        verification('b.bin', false, { status: 403, problems: ['refused | 403', 'x_y'] }),
        verification('c.bin', true),
        verification('d.bin', false, { status: undefined, problems: ['no answer'] })
      ])
    )
    const rows = section.split('\n').filter((l) => /^\| [a-d]\.bin/.test(l))
    expect(rows).toEqual([
      '| b.bin | 403 | ❌ refused \\| 403; x\\_y |',
      '| d.bin | — | ❌ no answer |',
      '| a.bin | 200 | ✅ |',
      '| c.bin | 200 | ✅ |'
    ])
    expect(section).toContain('❌ 2 of 4 URL(s) did not serve what was uploaded.')
  })

  it('shows at most 50 rows, never cutting a failure, and says how many more', () => {
    const results = [
      ...Array.from({ length: 55 }, (_, i) => verification(`ok-${i}.bin`, true)),
      ...Array.from({ length: 5 }, (_, i) => verification(`bad-${i}.bin`, false))
    ]
    const section = verificationSection(verifyResult(results))
    const rows = section.split('\n').filter((l) => /^\| (ok|bad)-/.test(l))
    expect(rows).toHaveLength(50)
    expect(rows.slice(0, 5).every((r) => r.startsWith('| bad-'))).toBe(true)
    // Every failure is among the rows shown: the rest passed.
    expect(section.endsWith('\n\n… and 10 more (all verified).')).toBe(true)

    const manyBad = verificationSection(
      verifyResult(Array.from({ length: 52 }, (_, i) => verification(`bad-${i}.bin`, false)))
    )
    expect(manyBad.endsWith('\n\n… and 2 more (every failure is listed in the step log).')).toBe(
      true
    )

    const allGood = verificationSection(
      verifyResult(Array.from({ length: 51 }, (_, i) => verification(`ok-${i}.bin`, true)))
    )
    expect(allGood.endsWith('\n\n… and 1 more (all verified).')).toBe(true)
  })
})

describe('commentSection', () => {
  it('is empty without a comment, and escapes the outcome', () => {
    expect(commentSection(undefined)).toBe('')
    expect(commentSection('')).toBe('')
    expect(commentSection('Updated the preview comment https://x/1 | <b>')).toBe(
      '**Pull request comment:** Updated the preview comment https://x/1 \\| &lt;b&gt;'
    )
  })
})

describe('buildSummary with the release sections', () => {
  it('puts pre-flight, alias, signing, verification, comment and warnings after the manifest, in order', () => {
    const summary = buildSummary(
      summaryReport({
        preflight: [{ check: 'versioning', status: 'ok', message: 'On.' }],
        alias: move(),
        signing: signing(),
        verification: verifyResult([verification('model.onnx', true)]),
        comment: 'Commented https://github.com/acme/models/pull/7#issuecomment-1.',
        warnings: ['careful']
      })
    )
    const order = [
      '**Manifest:**',
      '### Pre-flight',
      '### Alias',
      '### Signed URLs',
      '### Verification',
      '**Pull request comment:**',
      '### Warnings'
    ].map((heading) => summary.indexOf(heading))
    expect(order.every((at) => at > 0)).toBe(true)
    expect([...order].sort((a, b) => a - b)).toEqual(order)
  })

  it('leaves the release sections out when they did not happen', () => {
    const summary = buildSummary(summaryReport())
    expect(summary).not.toMatch(/### Pre-flight|### Alias|### Signed URLs|### Verification/)
    expect(summary).not.toContain('Pull request comment')
  })
})

describe('promoteSummary', () => {
  it('names the alias move, the bucket, the alias section and the warnings', () => {
    const summary = promoteSummary(move(), 'acme-models', ['Invalidation slow'])
    expect(summary).toBe(
      [
        '## Model CDN promote: latest → v3',
        '',
        '**Bucket:** acme-models',
        '',
        aliasSection(move(), false),
        '',
        '### Warnings',
        '',
        '- ⚠️ Invalidation slow',
        ''
      ].join('\n')
    )
  })

  it('shows the dry-run banner and the dry-run wording, and no empty warnings section', () => {
    const summary = promoteSummary(move({ dryRun: true }), 'acme-models', [])
    expect(summary).toContain(
      '**Bucket:** acme-models\n\n> **Dry run — nothing was changed.** This is what a real run would do.'
    )
    expect(summary).toContain('it now would point to `v3`')
    expect(summary).not.toContain('### Warnings')
  })
})

describe('cleanupSummary', () => {
  const result = (dryRun: boolean): CleanupResult => ({
    dryRun,
    deleted: 3,
    bytes: 2048,
    abortedUploads: 1,
    invalidationPath: '/previews/pr-7/*'
  })
  const target = { bucket: 'acme-models', versionPrefix: 'previews/pr-7' }
  const invalidated: InvalidationOutcome = {
    reason: 'the objects under previews/pr-7/ were deleted; edges may still cache them.',
    paths: ['/previews/pr-7/*'],
    ids: ['I5'],
    status: 'Completed',
    waitedMs: 0
  }

  it('says what was removed, the invalidation, the comment and the warnings', () => {
    const summary = cleanupSummary(
      result(false),
      target,
      invalidated,
      ['slow'],
      'Updated the preview comment https://github.com/acme/models/pull/7#issuecomment-9.'
    )
    expect(summary.startsWith('## Model CDN clean-up: previews/pr-7\n\nRemoved 3 object(s)')).toBe(
      true
    )
    expect(summary).toContain(
      'Removed 3 object(s), 2.0 KiB (2,048 bytes), from s3://acme-models/previews/pr-7/; aborted 1 multipart upload(s).'
    )
    expect(summary).toContain('- **Invalidation ids:** I5')
    expect(summary).toContain('- /previews/pr-7/\\*')
    expect(summary).toContain('**Pull request comment:** Updated the preview comment')
    expect(summary).toContain('### Warnings\n\n- ⚠️ slow')
    expect(summary).not.toContain('Dry run')
    expect(summary.endsWith('\n')).toBe(true)
  })

  it('in a dry run shows the banner, what would be removed, and no invalidation id', () => {
    const summary = cleanupSummary(
      result(true),
      target,
      { ...invalidated, ids: [], status: 'none' },
      []
    )
    expect(summary).toContain('> **Dry run — nothing was changed.**')
    expect(summary).toContain(
      'Would remove 3 object(s), 2.0 KiB (2,048 bytes), from s3://acme-models/previews/pr-7/, and abort 1 multipart upload(s).'
    )
    expect(summary).toContain('- **Status:** not created (dry run)')
    expect(summary).not.toContain('Pull request comment')
    expect(summary).not.toContain('### Warnings')
  })
})

describe('buildOutputs: release outputs', () => {
  function outputsReport(overrides: Partial<OutputsReport> = {}): OutputsReport {
    return {
      versionPrefix: 'v3',
      files: [publishedFile('model.onnx')],
      manifest: null,
      manifestUrl: '',
      invalidation: noInvalidation(),
      bytesUploaded: 1536,
      ...overrides
    }
  }

  it('writes signed-urls as JSON sorted by path, with the cookies and the expiry', () => {
    const report = signing()
    // Integer-like names, which JSON.stringify would put first in insertion order.
    report.urls = {
      'b.bin': 'u-b',
      '10': 'u-10',
      'a.bin': 'u-a',
      '9': 'u-9',
      'manifest.json': 'u-m'
    }
    const { outputs, warnings } = buildOutputs(outputsReport({ signing: report }))
    expect(outputs[Outputs.SignedUrls]).toBe(
      '{"10":"u-10","9":"u-9","a.bin":"u-a","b.bin":"u-b","manifest.json":"u-m"}'
    )
    expect(JSON.parse(outputs[Outputs.SignedCookies])).toEqual(report.cookies)
    expect(Object.keys(JSON.parse(outputs[Outputs.SignedCookies]))).toEqual([
      'CloudFront-Policy',
      'CloudFront-Signature',
      'CloudFront-Key-Pair-Id'
    ])
    expect(outputs[Outputs.SignedUrlsExpireAt]).toBe('2025-03-04T06:06:07.000Z')
    expect(warnings).toEqual([])
  })

  it('leaves the signing outputs empty without signing', () => {
    const { outputs } = buildOutputs(outputsReport())
    expect(outputs[Outputs.SignedUrls]).toBe('')
    expect(outputs[Outputs.SignedCookies]).toBe('')
    expect(outputs[Outputs.SignedUrlsExpireAt]).toBe('')
    expect(outputs[Outputs.AliasUrls]).toBe('')
  })

  it('warns, pointing to the cookies, when the signed URLs exceed the budget', () => {
    const report = signing()
    const long = `${URL_BASE}/v3/x?Expires=1&Signature=${'s'.repeat(400)}&Key-Pair-Id=${KEY_PAIR_ID}`
    report.urls = Object.fromEntries(
      Array.from({ length: Math.ceil(OUTPUTS_BUDGET_BYTES / 400) }, (_, i) => [`shard-${i}`, long])
    )
    const { outputs, warnings } = buildOutputs(outputsReport({ signing: report }))
    expect(Buffer.byteLength(outputs[Outputs.SignedUrls])).toBeGreaterThan(OUTPUTS_BUDGET_BYTES)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(
      /^The signed-urls output takes \d+ KB \(GitHub allows 1 MB of outputs per job\), so it may not reach other jobs; use the signed-cookies output/
    )
    // The warning goes to the log and the summary: it must not carry a signature.
    expect(warnings[0]).not.toContain('Signature')
  })

  it('sets verified to true, false, or empty when nothing was verified', () => {
    const verified = (v?: VerifyResult) =>
      buildOutputs(outputsReport({ verification: v })).outputs[Outputs.Verified]
    expect(verified(verifyResult([verification('a', true)]))).toBe('true')
    expect(verified(verifyResult([verification('a', true), verification('b', false)]))).toBe(
      'false'
    )
    expect(verified(undefined)).toBe('')
  })

  it('writes alias-urls sorted by path', () => {
    const { outputs } = buildOutputs(outputsReport({ aliasUrls: move().urls }))
    expect(outputs[Outputs.AliasUrls]).toBe(
      JSON.stringify({
        'config.json': `${URL_BASE}/latest/config.json`,
        'manifest.json': `${URL_BASE}/latest/manifest.json`,
        'model.onnx': `${URL_BASE}/latest/model.onnx`
      })
    )
  })
})
