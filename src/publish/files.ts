import fs from 'node:fs/promises'
import path from 'node:path'
import { glob, hasMagic, unescape } from 'glob'
import { MANIFEST_FILE_NAME, MAX_KEY_BYTES } from '../common/constants.js'
import { LOCK_FILE_NAME } from '../aws/publish-lock.js'
import { mapLimit } from '../common/concurrency.js'
import { InputError } from '../common/errors.js'
import { isInside, objectKey, toPosix } from '../common/paths.js'
import type { LocalFile } from '../common/types.js'

/** Matches resolved and stat'ed at once. */
const STAT_CONCURRENCY = 32

export interface DiscoverOptions {
  workspace: string
  /** Absolute; undefined = common ancestor of the patterns' search paths. */
  root?: string
}

export interface Discovery {
  root: string
  files: LocalFile[]
}

/**
 * Finds the regular files the patterns match. Directories are never returned; a match whose
 * real path (after symlinks) lies outside the workspace is an error, so a link cannot publish
 * e.g. ~/.aws/credentials.
 */
export async function discoverFiles(patterns: string[], opts: DiscoverOptions): Promise<Discovery> {
  const workspace = path.resolve(opts.workspace)
  const realWorkspace = await fs.realpath(workspace)
  const { matches, searchPaths } = await matchPatterns(patterns, workspace)

  // Several at once: one after the other, 32,000 files took ~2 s of round trips to libuv's pool.
  const checked = await mapLimit(matches, STAT_CONCURRENCY, async (match) => {
    const real = await fs.realpath(match).catch((err: NodeJS.ErrnoException) => {
      // A broken symbolic link matches nothing.
      if (err.code === 'ENOENT') return undefined
      throw err
    })
    if (real === undefined) return undefined
    if (!isInside(real, realWorkspace))
      return { outside: `${path.relative(workspace, match)} -> ${real}` }
    const stat = await fs.stat(real)
    return stat.isFile() ? { file: { absolutePath: match, size: stat.size } } : undefined
  })
  const outside = checked.flatMap((c) => (c?.outside !== undefined ? [c.outside] : []))
  const found = checked.flatMap((c) => (c?.file ? [c.file] : []))
  if (outside.length > 0) {
    throw new InputError(
      `These matches are symbolic links to files outside the workspace, which this action never publishes:\n- ${outside.join('\n- ')}`,
      'Copy the files into the workspace, or exclude the links with a "!pattern" line.'
    )
  }
  if (found.length === 0) {
    throw new InputError(
      `No files matched the artifact patterns:\n- ${patterns.join('\n- ')}\n(searched in ${workspace})`,
      'Patterns are relative to the workspace; check the paths the training step wrote, and that the step producing them ran in this job.'
    )
  }

  const root = opts.root ?? defaultRoot(searchPaths, found)
  const files = found.map(({ absolutePath, size }) => {
    if (!isInside(absolutePath, root)) {
      throw new InputError(
        `File ${path.relative(workspace, absolutePath)} is not inside \`root\` ${path.relative(workspace, root) || '.'}.`,
        'Set `root` to a directory that contains every matched file, or leave it empty.'
      )
    }
    return { absolutePath, size, relativePath: toPosix(path.relative(root, absolutePath)) }
  })
  return { root, files }
}

/**
 * The action's pattern syntax, as `@actions/glob` reads it, for local files and `s3://` keys
 * alike: `*` matches hidden files too; no brace or extglob expansion.
 */
export const PATTERN_SYNTAX = { dot: true, nobrace: true, noext: true } as const

/** What `glob` is told. */
const GLOB_OPTIONS = {
  ...PATTERN_SYNTAX,
  // Symbolic links are followed (and checked against the workspace afterwards).
  follow: true,
  nodir: true,
  absolute: true
} as const

/**
 * The files the patterns match, sorted, and the search path of each include pattern (its literal
 * leading directories), which the default root is computed from. Patterns are relative to the
 * workspace; a line starting with `!` excludes what it matches from every other line. A pattern
 * that names a directory matches everything under it (as `@actions/glob`'s implicit
 * descendants). Matching prints nothing: `@actions/glob` logs `::debug::` lines on stdout, which a
 * command line must keep for its own output.
 */
async function matchPatterns(
  patterns: string[],
  workspace: string
): Promise<{ matches: string[]; searchPaths: string[] }> {
  // Patterns are relative to the workspace, not to whatever the process cwd is.
  const anchor = (p: string) => toPosix(path.resolve(workspace, p))
  const withDescendants = (p: string) => [p, `${p.replace(/\/+$/, '')}/**`]
  const includes = patterns.filter((p) => !p.startsWith('!')).map(anchor)
  const excludes = patterns.filter((p) => p.startsWith('!')).map((p) => anchor(p.slice(1)))
  const found = await glob(includes.flatMap(withDescendants), {
    ...GLOB_OPTIONS,
    ignore: excludes.flatMap(withDescendants)
  })
  const matches = [...new Set(found.map((f) => path.resolve(f)))].sort()
  return { matches, searchPaths: searchPaths(includes) }
}

/** The literal leading directories of each pattern, without those inside another one. */
function searchPaths(patterns: string[]): string[] {
  const paths = patterns.map((p) => {
    const segments = p.split('/')
    const end = segments.findIndex((s) => hasMagic(s, GLOB_OPTIONS))
    const literal = (end < 0 ? segments : segments.slice(0, end)).map((s) => unescape(s))
    return path.resolve(literal.join('/') || '/')
  })
  const unique = [...new Set(paths)].sort()
  return unique.filter((p) => !unique.some((q) => q !== p && isInside(p, q)))
}

/**
 * The least common ancestor of the search paths, as actions/upload-artifact computes it; a
 * single literal file is keyed by its name alone.
 */
export function defaultRoot(searchPaths: string[], found: { absolutePath: string }[]): string {
  if (searchPaths.length === 1) {
    const only = searchPaths[0]
    return found.some((f) => f.absolutePath === only) ? path.dirname(only) : only
  }
  const split = searchPaths.map((p) => p.split(path.sep))
  const common: string[] = []
  for (let i = 0; i < split[0].length; i++) {
    const segment = split[0][i]
    if (split.every((s) => s[i] === segment)) common.push(segment)
    else break
  }
  const lca = common.join(path.sep) || path.sep
  // A search path that is itself a matched file cannot be the root: use its directory.
  return found.some((f) => f.absolutePath === lca) ? path.dirname(lca) : lca
}

/**
 * Checks the keys the files map to before anything is sent: S3's key length limit, characters
 * that break S3's XML API, case-insensitive collisions (which break on case-insensitive file
 * systems and in CloudFront paths people type), and the manifest's own key.
 */
export function checkKeys(
  files: { relativePath: string }[],
  versionPrefix: string,
  opts: { manifest: boolean }
): void {
  const problems: string[] = []
  const seen = new Map<string, string>()
  for (const { relativePath } of files) {
    const key = objectKey(versionPrefix, relativePath)
    const bytes = Buffer.byteLength(key)
    if (bytes > MAX_KEY_BYTES) {
      problems.push(`key for ${relativePath} is ${bytes} bytes; S3 allows ${MAX_KEY_BYTES}.`)
    }
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(relativePath)) {
      problems.push(
        `${JSON.stringify(relativePath)} contains control characters, which S3 keys cannot carry safely.`
      )
    }
    const folded = key.normalize('NFC').toLowerCase()
    const other = seen.get(folded)
    if (other !== undefined) {
      problems.push(
        `${other} and ${relativePath} map to keys that differ only in case or Unicode form.`
      )
    } else {
      seen.set(folded, relativePath)
    }
    if (relativePath === LOCK_FILE_NAME) {
      problems.push(
        `${relativePath} is the name of the lock this action keeps at ${versionPrefix}/${LOCK_FILE_NAME} while it publishes; rename it.`
      )
    }
    if (opts.manifest && relativePath === MANIFEST_FILE_NAME) {
      problems.push(
        `${relativePath} would overwrite the manifest this action writes at ${versionPrefix}/${MANIFEST_FILE_NAME}; rename it or set \`manifest: false\`.`
      )
    }
  }
  if (problems.length > 0) {
    throw new InputError(
      `These files cannot be published as they are:\n- ${problems.join('\n- ')}`,
      'Rename the files (shorter names, no control characters, names that differ by more than case), or leave them out with a "!pattern" line in `artifacts`.'
    )
  }
}
