import { Minimatch, unescape } from 'minimatch'
import { InputError } from '../common/errors.js'
import { PATTERN_SYNTAX } from './files.js'

import type { S3Pattern, S3Selection } from '../common/types.js'

const SCHEME = 's3://'

/**
 * Keys are matched with the syntax of local patterns (files.ts), as plain strings: `\` is an
 * escape on every platform, `//` is not collapsed, and a leading `#` or `!` is no comment or
 * negation (the `!` of an exclusion is taken off before).
 */
const KEY_SYNTAX = {
  ...PATTERN_SYNTAX,
  platform: 'linux',
  preserveMultipleSlashes: true,
  nocomment: true,
  nonegate: true
} as const

/** Whether an `artifacts` line names S3 objects (`s3://…` or `!s3://…`) rather than local files. */
export function isS3Pattern(line: string): boolean {
  return line.startsWith(SCHEME) || line.startsWith(`!${SCHEME}`)
}

/**
 * Parses the `artifacts` lines of an S3 source, and `root` when given (it must then be an
 * `s3://bucket/prefix/` every include lies under). Throws an InputError for anything that
 * cannot name S3 objects, before any request is sent.
 */
export function parseS3Patterns(lines: string[], root?: string): S3Selection {
  const local = lines.filter((line) => !isS3Pattern(line))
  if (local.length > 0) {
    throw new InputError(
      `\`artifacts\` mixes s3:// sources with local paths (${local.join(', ')}).`,
      'Publish local files and S3 objects in two steps (two version prefixes), or upload the local files next to the S3 objects first.'
    )
  }
  const parsed = lines.map((line) => ({ exclude: line.startsWith('!'), pattern: parseLine(line) }))
  const includes = parsed.filter((p) => !p.exclude).map((p) => p.pattern)
  const excludes = parsed.filter((p) => p.exclude).map((p) => p.pattern)
  if (includes.length === 0) {
    throw new InputError(
      '`artifacts` has only exclusions (`!s3://…` lines): nothing is selected.',
      'Add a line naming the objects to publish, e.g. `s3://my-bucket/checkpoints/**`.'
    )
  }
  checkExcludedBuckets(includes, excludes)
  const s3Root = root ? parseRoot(root) : undefined
  if (s3Root) checkUnderRoot(includes, s3Root)
  return { includes, excludes, root: s3Root }
}

/** Whether a listed key of `bucket` is selected: matched by an include and by no exclusion. */
export function matchesSelection(selection: S3Selection, bucket: string, key: string): boolean {
  const matches = (p: S3Pattern) => p.bucket === bucket && matcherOf(p).match(key)
  const excluded = (p: S3Pattern) =>
    p.bucket === bucket && (matcherOf(p).match(key) || folderMatcherOf(p).match(key))
  return selection.includes.some(matches) && !selection.excludes.some(excluded)
}

const matchers = new WeakMap<S3Pattern, Minimatch>()
const folderMatchers = new WeakMap<S3Pattern, Minimatch>()

/** Compiled once per pattern: listings are matched key by key. */
function matcherOf(pattern: S3Pattern): Minimatch {
  let matcher = matchers.get(pattern)
  if (!matcher) matchers.set(pattern, (matcher = new Minimatch(pattern.glob, KEY_SYNTAX)))
  return matcher
}

/** Everything under what the pattern names, as an excluded local directory drops its files. */
function folderMatcherOf(pattern: S3Pattern): Minimatch {
  let matcher = folderMatchers.get(pattern)
  if (!matcher) {
    matcher = new Minimatch(`${pattern.glob}/**`, KEY_SYNTAX)
    folderMatchers.set(pattern, matcher)
  }
  return matcher
}

/** `s3://bucket/key-pattern`, with or without a leading `!`. */
function parseLine(line: string): S3Pattern {
  const text = line.startsWith('!') ? line.slice(1) : line
  const { bucket, key } = splitUrl(text)
  checkKeyPattern(text, bucket, key)
  const segments = key.split('/')
  const firstGlob = segments.findIndex((s) => new Minimatch(s, KEY_SYNTAX).hasMagic())
  // A pattern without glob characters names one object: keys are relative to its folder.
  const literal = firstGlob < 0 ? segments.slice(0, -1) : segments.slice(0, firstGlob)
  const prefix = literal.map((s) => `${unescape(s)}/`).join('')
  return { bucket, prefix, glob: key, text: line }
}

/** Bucket and key part of an `s3://` URL, the bucket name checked. */
function splitUrl(text: string): { bucket: string; key: string } {
  const rest = text.slice(SCHEME.length)
  const slash = rest.indexOf('/')
  const bucket = slash < 0 ? rest : rest.slice(0, slash)
  checkBucketName(text, bucket)
  return { bucket, key: slash < 0 ? '' : rest.slice(slash + 1) }
}

/**
 * S3's naming rules for general purpose buckets (directory buckets and access point aliases
 * follow them too): 3–63 lower-case letters, digits, dots and hyphens, a letter or digit at
 * each end, no two dots together, not an IP address.
 */
function checkBucketName(text: string, bucket: string): void {
  if (/[*?[\]]/.test(bucket)) {
    throw new InputError(
      `"${text}": the bucket name "${bucket}" has a glob character; wildcards apply to keys only.`,
      'Name one bucket per line, e.g. `s3://my-bucket/checkpoints/**`.'
    )
  }
  const valid =
    bucket.length >= 3 &&
    bucket.length <= 63 &&
    /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(bucket) &&
    !bucket.includes('..') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(bucket)
  if (!valid) {
    throw new InputError(
      `"${text}": "${bucket}" is not a valid S3 bucket name.`,
      'Bucket names have 3 to 63 characters: lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit.'
    )
  }
}

/** The key part names something: no empty, `.` or `..` segments. */
function checkKeyPattern(text: string, bucket: string, key: string): void {
  if (key === '') {
    throw new InputError(
      `"${text}" names a bucket but no objects.`,
      `Add a key pattern: \`s3://${bucket}/**\` for every object in the bucket, or e.g. \`s3://${bucket}/checkpoints/**\`.`
    )
  }
  if (key.endsWith('/')) {
    throw new InputError(
      `"${text}" ends with "/": a pattern names objects, and an S3 key ending with "/" is a folder marker.`,
      `For everything under that folder, write \`${text}**\`.`
    )
  }
  if (key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new InputError(
      `"${text}" has an empty, "." or ".." segment in its key pattern.`,
      'S3 keys are matched as written, without resolving "." or ".."; write the key path plainly, e.g. `s3://my-bucket/run-7/checkpoints/**`.'
    )
  }
}

/** An exclusion in a bucket no include names is a typo that would exclude nothing. */
function checkExcludedBuckets(includes: S3Pattern[], excludes: S3Pattern[]): void {
  const buckets = new Set(includes.map((p) => p.bucket))
  const stray = excludes.filter((p) => !buckets.has(p.bucket))
  if (stray.length > 0) {
    throw new InputError(
      `These exclusions name a bucket no other line publishes from, so they would exclude nothing: ${stray.map((p) => p.text).join(', ')}.`,
      `Check the bucket names; the objects come from ${[...buckets].map((b) => `s3://${b}`).join(', ')}.`
    )
  }
}

/** `root` as `s3://bucket/prefix/` (or `s3://bucket`), the prefix ending in `/` or ''. */
function parseRoot(root: string): { bucket: string; prefix: string } {
  if (!root.startsWith(SCHEME)) {
    throw new InputError(
      `\`root\` "${root}" is a local directory, but \`artifacts\` names s3:// sources.`,
      'Give `root` as an S3 prefix the keys are relative to, e.g. `s3://my-bucket/run-7/`, or leave it empty.'
    )
  }
  const { bucket, key } = splitUrl(root)
  if (new Minimatch(key, KEY_SYNTAX).hasMagic()) {
    throw new InputError(
      `\`root\` "${root}" has glob characters.`,
      'Give `root` as a plain S3 prefix, e.g. `s3://my-bucket/run-7/`.'
    )
  }
  const trimmed = key.replace(/\/+$/, '')
  if (trimmed.split('/').some((s) => s === '.' || s === '..' || (s === '' && trimmed !== ''))) {
    throw new InputError(
      `\`root\` "${root}" has an empty, "." or ".." segment.`,
      'Give `root` as a plain S3 prefix, e.g. `s3://my-bucket/run-7/`.'
    )
  }
  return { bucket, prefix: trimmed === '' ? '' : `${trimmed}/` }
}

/** Every include must select keys under `root` only, so every key has a path relative to it. */
function checkUnderRoot(includes: S3Pattern[], root: { bucket: string; prefix: string }): void {
  const outside = includes.filter(
    (p) => p.bucket !== root.bucket || !p.prefix.startsWith(root.prefix)
  )
  if (outside.length > 0) {
    throw new InputError(
      `These patterns select objects outside \`root\` s3://${root.bucket}/${root.prefix}: ${outside.map((p) => p.text).join(', ')}.`,
      "Set `root` to an S3 prefix that contains every pattern's fixed part (the key before its first wildcard), or leave it empty."
    )
  }
}
