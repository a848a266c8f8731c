import { InputError } from '../common/errors.js'
import type { S3Selection } from '../common/types.js'
import { isS3Pattern, matchesSelection, parseS3Patterns } from './s3-source.js'

/** The InputError `fn` throws, for assertions on its message and hint. */
function inputError(fn: () => unknown): InputError {
  try {
    fn()
  } catch (err) {
    if (err instanceof InputError) return err
    throw err
  }
  throw new Error('no InputError was thrown')
}

describe('isS3Pattern', () => {
  it('tells s3:// lines and their exclusions from local paths', () => {
    expect(isS3Pattern('s3://models/ckpt/**')).toBe(true)
    expect(isS3Pattern('!s3://models/ckpt/tmp/**')).toBe(true)
    expect(isS3Pattern('models/**')).toBe(false)
    expect(isS3Pattern('!models/tmp')).toBe(false)
    expect(isS3Pattern('./s3://x')).toBe(false)
  })
})

describe('parseS3Patterns', () => {
  it('splits bucket, literal prefix and key pattern', () => {
    const selection = parseS3Patterns([
      's3://train-out/run-7/ckpt/**',
      's3://train-out/run-7/*/config.json',
      '!s3://train-out/run-7/ckpt/optimizer'
    ])
    expect(selection).toEqual({
      includes: [
        {
          bucket: 'train-out',
          prefix: 'run-7/ckpt/',
          glob: 'run-7/ckpt/**',
          text: 's3://train-out/run-7/ckpt/**'
        },
        {
          bucket: 'train-out',
          prefix: 'run-7/',
          glob: 'run-7/*/config.json',
          text: 's3://train-out/run-7/*/config.json'
        }
      ],
      excludes: [
        {
          bucket: 'train-out',
          prefix: 'run-7/ckpt/',
          glob: 'run-7/ckpt/optimizer',
          text: '!s3://train-out/run-7/ckpt/optimizer'
        }
      ],
      root: undefined
    })
  })

  it('gives a pattern naming one object its folder as prefix, or none at the top of the bucket', () => {
    const { includes } = parseS3Patterns([
      's3://b01/ckpt/model.safetensors',
      's3://b01/README.md',
      's3://b01/ckpt/shard-?.bin',
      's3://b01/a/[bc]/x'
    ])
    expect(includes.map((p) => p.prefix)).toEqual(['ckpt/', '', 'ckpt/', 'a/'])
  })

  it('takes braces and parentheses literally and unescapes escaped glob characters in the prefix', () => {
    const { includes } = parseS3Patterns(['s3://b01/{a,b}/@(x)/**', 's3://b01/odd\\*name/**'])
    expect(includes.map((p) => p.prefix)).toEqual(['{a,b}/@(x)/', 'odd*name/'])
  })

  it('reads root as an s3:// prefix the keys are relative to', () => {
    expect(parseS3Patterns(['s3://b01/run/ckpt/**'], 's3://b01/run').root).toEqual({
      bucket: 'b01',
      prefix: 'run/'
    })
    expect(parseS3Patterns(['s3://b01/run/ckpt/**'], 's3://b01/run/').root?.prefix).toBe('run/')
    expect(parseS3Patterns(['s3://b01/run/ckpt/**'], 's3://b01').root?.prefix).toBe('')
    expect(parseS3Patterns(['s3://b01/run/ckpt/**'], 's3://b01/').root?.prefix).toBe('')
  })

  it('refuses a bucket without a key part, suggesting /**', () => {
    for (const line of ['s3://models', 's3://models/']) {
      const err = inputError(() => parseS3Patterns([line]))
      expect(err.message).toContain(line)
      expect(err.hint).toContain('s3://models/**')
    }
  })

  it('refuses glob characters and invalid names in the bucket', () => {
    expect(inputError(() => parseS3Patterns(['s3://models-*/x/**'])).message).toMatch(
      /"models-\*" has a glob character/
    )
    for (const bucket of [
      'ab',
      'a'.repeat(64),
      'Models',
      'my_bucket',
      '-ab',
      'ab-',
      'a..b',
      '10.0.0.1',
      ''
    ]) {
      const err = inputError(() => parseS3Patterns([`s3://${bucket}/x/**`]))
      expect(err.message).toContain(`"${bucket}" is not a valid S3 bucket name`)
      expect(err.hint).toMatch(/3 to 63 characters/)
    }
    expect(() => parseS3Patterns([`s3://${'a'.repeat(63)}/x`, 's3://a.b-c.1/x'])).not.toThrow()
  })

  it('refuses empty, "." and ".." segments, and a trailing slash with the /** form to use', () => {
    for (const line of ['s3://b01/a//b', 's3://b01//a', 's3://b01/a/../b', 's3://b01/./a']) {
      expect(inputError(() => parseS3Patterns([line])).message).toMatch(/empty, "\." or "\.\."/)
    }
    const err = inputError(() => parseS3Patterns(['s3://b01/ckpt/']))
    expect(err.hint).toContain('s3://b01/ckpt/**')
    expect(inputError(() => parseS3Patterns(['!s3://b01/a/../b', 's3://b01/**'])).message).toMatch(
      /empty/
    )
  })

  it('refuses local paths among s3:// lines, and only exclusions', () => {
    expect(inputError(() => parseS3Patterns(['s3://b01/**', 'models/**'])).message).toMatch(
      /mixes s3:\/\/ sources with local paths \(models\/\*\*\)/
    )
    expect(inputError(() => parseS3Patterns(['!s3://b01/tmp/**'])).message).toMatch(
      /only exclusions/
    )
  })

  it('refuses an exclusion naming a bucket no include uses', () => {
    const err = inputError(() => parseS3Patterns(['s3://models/**', '!s3://moldes/tmp/**']))
    expect(err.message).toContain('!s3://moldes/tmp/**')
    expect(err.hint).toContain('s3://models')
  })

  it('refuses a local root, a root with glob characters, and includes outside the root', () => {
    expect(inputError(() => parseS3Patterns(['s3://b01/ckpt/**'], 'out')).message).toMatch(
      /local directory/
    )
    expect(
      inputError(() => parseS3Patterns(['s3://b01/ckpt/**'], 's3://b01/ck*/')).message
    ).toMatch(/glob characters/)
    expect(
      inputError(() => parseS3Patterns(['s3://b01/ckpt/**'], 's3://b01/a/../')).message
    ).toMatch(/empty, "\." or "\.\."/)
    const outside = inputError(() =>
      parseS3Patterns(['s3://b01/run/ckpt/**', 's3://b01/ru*/x', 's3://b02/run/y'], 's3://b01/run/')
    )
    expect(outside.message).toContain('s3://b01/ru*/x, s3://b02/run/y')
    expect(outside.message).not.toContain('ckpt')
    // A string prefix is not a folder: run-2/ is not under run/.
    expect(() => parseS3Patterns(['s3://b01/run-2/**'], 's3://b01/run')).toThrow(InputError)
  })
})

describe('matchesSelection', () => {
  const selection: S3Selection = parseS3Patterns([
    's3://b01/ckpt/**',
    's3://b01/configs/*.json',
    's3://b02/tokenizer.json',
    '!s3://b01/ckpt/**/*.tmp',
    '!s3://b01/ckpt/optimizer'
  ])
  const cases: [string, string, boolean][] = [
    ['b01', 'ckpt/model.safetensors', true],
    ['b01', 'ckpt/.hidden/x', true],
    ['b01', 'ckpt/sub/deep/x.bin', true],
    ['b01', 'ckpt/sub/x.tmp', false],
    ['b01', 'ckpt/optimizer', false],
    ['b01', 'ckpt/optimizer/state.pt', false],
    ['b01', 'ckpt/optimizer-notes.md', true],
    ['b01', 'configs/a.json', true],
    ['b01', 'configs/nested/a.json', false],
    ['b01', 'Ckpt/model.safetensors', false],
    ['b02', 'tokenizer.json', true],
    ['b02', 'ckpt/model.safetensors', false],
    ['b01', 'tokenizer.json', false]
  ]
  it.each(cases)('%s %s → %s', (bucket, key, expected) => {
    expect(matchesSelection(selection, bucket, key)).toBe(expected)
  })

  it('treats `#`, `\\` and `//` in keys as plain characters', () => {
    const odd = parseS3Patterns(['s3://b01/#notes/*', 's3://b01/win\\\\dir/*'])
    expect(matchesSelection(odd, 'b01', '#notes/a')).toBe(true)
    expect(matchesSelection(odd, 'b01', 'win\\dir/a')).toBe(true)
    expect(matchesSelection(odd, 'b01', 'win/dir/a')).toBe(false)
    const star = parseS3Patterns(['s3://b01/a/*'])
    expect(matchesSelection(star, 'b01', 'a//b')).toBe(false)
  })
})
