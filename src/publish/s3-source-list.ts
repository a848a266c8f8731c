import {
  HeadObjectCommand,
  paginateListObjectsV2,
  type _Object,
  type HeadObjectCommandOutput,
  type S3Client
} from '@aws-sdk/client-s3'
import { mapLimit } from '../common/concurrency.js'
import {
  awsErrorCode,
  bulletList,
  DeployError,
  explainAwsError,
  httpStatusOf,
  InputError
} from '../common/errors.js'
import type { S3Pattern, S3Selection, SourceObject } from '../common/types.js'
import { compareCodeUnits } from './manifest.js'
import { matchesSelection } from './s3-source.js'
import {
  archivedError,
  listDenied,
  restoreState,
  s3Url,
  sourceReadError
} from './s3-source-errors.js'
import { sourceRegion } from './s3-source-region.js'

export interface S3Discovery {
  /**
   * `s3://bucket/prefix/` the relative paths are relative to: `root`, else the common folder of
   * the include patterns' prefixes (as for local files). With several buckets, each bucket's,
   * joined with ", " (for showing only).
   */
  root: string
  /** Sorted by relativePath (code-unit order). */
  objects: SourceObject[]
}

export interface S3DiscoveryDeps {
  s3In: (region: string) => S3Client
  /** The deploy's region: where each source bucket's region is asked. */
  defaultRegion: string
  signal?: AbortSignal
}

/** An object matched by the patterns, with what the listing said of its storage. */
interface Listed {
  object: SourceObject
  storageClass?: string
}

/** Storage classes whose objects must be restored before they can be read or copied. */
const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE'])
const HEAD_CONCURRENCY = 16

/**
 * The objects the selection matches: each bucket's region found once, each include's prefix
 * listed (one request per 1,000 keys), keys matched in one pass. Refuses, before anything is
 * written, a selection matching nothing, two objects with one relative path, and archived
 * objects not restored (one HEAD each, to tell a restored copy).
 */
export async function discoverS3Sources(
  selection: S3Selection,
  deps: S3DiscoveryDeps
): Promise<S3Discovery> {
  const roots = keyRoots(selection)
  let found: Listed[] = []
  const seen = new Map<S3Pattern, number>()
  for (const [bucket, root] of roots) {
    const listing = await listBucket(selection, bucket, root, deps)
    // Not push(...): a listing of a million objects would overflow the call stack.
    found = found.concat(listing.found)
    for (const [pattern, count] of listing.seen) seen.set(pattern, count)
  }
  if (found.length === 0) throw nothingMatched(selection, seen)
  found.sort((a, b) => compareCodeUnits(a.object.relativePath, b.object.relativePath))
  checkRelativePaths(found.map((l) => l.object))
  await refuseArchived(found, deps)
  return {
    root: [...roots].map(([bucket, prefix]) => s3Url(bucket, prefix)).join(', '),
    objects: found.map((l) => l.object)
  }
}

/** The prefix keys are relative to, per bucket: `root`, else the includes' common folder. */
function keyRoots(selection: S3Selection): Map<string, string> {
  if (selection.root) return new Map([[selection.root.bucket, selection.root.prefix]])
  const prefixes = new Map<string, string[]>()
  for (const { bucket, prefix } of selection.includes) {
    prefixes.set(bucket, [...(prefixes.get(bucket) ?? []), prefix])
  }
  return new Map([...prefixes].map(([bucket, list]) => [bucket, commonFolder(list)]))
}

/** The longest run of whole leading segments the prefixes (each '' or ending in `/`) share. */
export function commonFolder(prefixes: string[]): string {
  const split = prefixes.map((p) => p.split('/').slice(0, -1))
  const common: string[] = []
  for (let i = 0; split.every((s) => i < s.length && s[i] === split[0][i]); i++) {
    common.push(split[0][i])
  }
  return common.map((s) => `${s}/`).join('')
}

/**
 * The bucket's objects the selection matches, listing each include's prefix (those inside
 * another listed one are not listed again, so no key is seen twice), and how many keys each
 * include's prefix holds. Folder markers (keys ending in `/`) are no files.
 */
async function listBucket(
  selection: S3Selection,
  bucket: string,
  root: string,
  deps: S3DiscoveryDeps
): Promise<{ found: Listed[]; seen: Map<S3Pattern, number> }> {
  const region = await sourceRegion(deps.s3In(deps.defaultRegion), bucket, deps.signal)
  const s3 = deps.s3In(region)
  const includes = selection.includes.filter((p) => p.bucket === bucket)
  const seen = new Map(includes.map((p) => [p, 0]))
  const found: Listed[] = []
  for (const prefix of outermost(includes.map((p) => p.prefix))) {
    for await (const item of listPrefix(s3, bucket, prefix, deps.signal)) {
      const key = item.Key
      if (key === undefined || key.endsWith('/')) continue
      for (const p of includes) if (key.startsWith(p.prefix)) seen.set(p, (seen.get(p) ?? 0) + 1)
      if (!matchesSelection(selection, bucket, key)) continue
      found.push({
        object: sourceObject(item, bucket, key, root, region),
        storageClass: item.StorageClass
      })
    }
  }
  return { found, seen }
}

/** The prefixes without those inside another one (a prefix is '' or ends in `/`). */
function outermost(prefixes: string[]): string[] {
  const unique = [...new Set(prefixes)]
  return unique.filter((p) => !unique.some((q) => q !== p && p.startsWith(q)))
}

/** Every object under the prefix, page by page, with listing failures explained. */
async function* listPrefix(
  s3: S3Client,
  bucket: string,
  prefix: string,
  signal?: AbortSignal
): AsyncGenerator<_Object> {
  try {
    const pages = paginateListObjectsV2(
      { client: s3 },
      { Bucket: bucket, Prefix: prefix },
      {
        abortSignal: signal
      }
    )
    for await (const page of pages) yield* page.Contents ?? []
  } catch (err) {
    // A cancelled listing reports the cancellation, not an AWS failure.
    signal?.throwIfAborted()
    if (httpStatusOf(err) === 403 || awsErrorCode(err) === 'AccessDenied') {
      throw listDenied(bucket, prefix)
    }
    throw explainAwsError(err, { action: `listing ${s3Url(bucket, prefix)}`, bucket })
  }
}

function sourceObject(
  item: _Object,
  bucket: string,
  key: string,
  root: string,
  region: string
): SourceObject {
  if (!item.ETag) {
    // Every copy is conditional on it; S3 always lists one.
    throw new DeployError(`The listing of s3://${bucket} gave no ETag for ${key}.`)
  }
  return {
    absolutePath: s3Url(bucket, key),
    relativePath: key.slice(root.length),
    size: item.Size ?? 0,
    bucket,
    key,
    eTag: item.ETag,
    region
  }
}

function nothingMatched(selection: S3Selection, seen: Map<S3Pattern, number>): InputError {
  const lines = [
    ...selection.includes.map(
      (p) => `${p.text} (${seen.get(p) ?? 0} key(s) under ${s3Url(p.bucket, p.prefix)})`
    ),
    ...selection.excludes.map((p) => `${p.text} (exclusion)`)
  ]
  return new InputError(
    `No objects matched the s3:// patterns:${bulletList(lines)}`,
    'Keys are matched whole and case-sensitively: `*` stays within one /-separated part, `**` spans parts, ' +
      'and a pattern without wildcards names one object (end it with `/**` for everything under a folder).'
  )
}

/**
 * Relative paths become keys under the version prefix: none may hold an empty, `.` or `..`
 * segment (URLs would not reach them), and no two may be equal. `objects` is sorted.
 */
function checkRelativePaths(objects: SourceObject[]): void {
  const unusable = objects
    .filter((o) => o.relativePath.split('/').some((s) => s === '' || s === '.' || s === '..'))
    .map((o) => o.absolutePath)
  if (unusable.length > 0) {
    throw new InputError(
      `These source keys have an empty, "." or ".." part, which a URL cannot name:${bulletList(unusable)}`,
      'Copy them to plain keys first, or leave them out with a `!s3://…` line.'
    )
  }
  // Only objects of different buckets can clash: in one, every key is relative to one prefix.
  const clashes: string[] = []
  for (let i = 1; i < objects.length; i++) {
    const [a, b] = [objects[i - 1], objects[i]]
    if (a.relativePath === b.relativePath) {
      clashes.push(`${b.relativePath}: ${a.absolutePath} and ${b.absolutePath}`)
    }
  }
  if (clashes.length > 0) {
    throw new InputError(
      `Objects of different buckets would be published under the same path:${bulletList(clashes)}`,
      "Each bucket's keys are relative to the common folder of its patterns; leave one of each pair out with a `!s3://…` line, or publish the buckets in separate steps."
    )
  }
}

/**
 * Objects in Glacier Flexible Retrieval or Deep Archive cannot be copied unless a restored copy
 * is there, which only HEAD tells (`x-amz-restore`); Glacier Instant Retrieval can.
 */
async function refuseArchived(found: Listed[], deps: S3DiscoveryDeps): Promise<void> {
  const archived = found.filter((l) => l.storageClass && ARCHIVE_CLASSES.has(l.storageClass))
  const states = await mapLimit(archived, HEAD_CONCURRENCY, async ({ object }) => {
    const head = await headSource(deps.s3In(object.region), object, deps.signal)
    return restoreState(head.Restore)
  })
  const refused = archived
    .map((l, i) => ({ url: l.object.absolutePath, state: states[i], storageClass: l.storageClass }))
    .filter((a) => a.state !== 'restored')
  if (refused.length > 0) {
    throw archivedError(
      refused.map((a) => ({
        url: a.url,
        why: `${a.storageClass}, ${a.state === 'restoring' ? 'restore in progress' : 'not restored'}`
      }))
    )
  }
}

/**
 * HEAD of a source object as listed (`If-Match` its ETag), with S3's checksums: failures
 * explained (sourceReadError), a cancellation reported as itself.
 */
export async function headSource(
  s3: S3Client,
  object: SourceObject,
  signal?: AbortSignal
): Promise<HeadObjectCommandOutput> {
  signal?.throwIfAborted()
  const input = { Bucket: object.bucket, Key: object.key, IfMatch: object.eTag }
  return s3
    .send(new HeadObjectCommand({ ...input, ChecksumMode: 'ENABLED' }), { abortSignal: signal })
    .catch((err: unknown) => {
      signal?.throwIfAborted()
      throw sourceReadError(err, object, 'reading')
    })
}
