/**
 * An in-memory S3 bucket behind aws-sdk-client-mock, for unit tests of modules that read what
 * they wrote (deploy, alias moves, clean-up): ListObjectsV2 (prefix, delimiter, pages of
 * MaxKeys or 1,000), HeadObject, GetObject (with Range), PutObject (string, bytes or the
 * FileBody upload.ts sends), CopyObject (CopySourceIfMatch checked), DeleteObject, DeleteObjects
 * and an empty ListMultipartUploads. Writes honour If-None-Match / If-Match as S3 does (412, or
 * 404 for If-Match on a missing key). Anything else answers undefined, as the mock does by
 * default.
 * startBucketServer serves those objects over HTTP, as a distribution in front of the bucket
 * would, for verification.
 */
import { createHash, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type CopyObjectCommandInput,
  type DeleteObjectCommandInput,
  type DeleteObjectsCommandInput,
  type GetObjectCommandInput,
  type GetObjectCommandOutput,
  type ListObjectsV2CommandInput,
  type PutObjectCommandInput,
  type S3Client
} from '@aws-sdk/client-s3'
import type { AwsClientStub } from 'aws-sdk-client-mock'
import { SHA256_METADATA_KEY } from '../../src/common/constants.js'
import { buildManifest, serializeManifest } from '../../src/publish/manifest.js'
import { MANIFEST_CACHE_CONTROL } from '../../src/publish/manifest-store.js'
import type { Manifest, PublishedFile } from '../../src/common/types.js'
import { cloudFrontRefusal } from '../../__fixtures__/signing.js'

export interface MockObject {
  body: Buffer
  contentType?: string
  cacheControl?: string
  metadata: Record<string, string>
  /** As sent in PutObject's `Tagging` (URL-encoded). */
  tagging?: string
}

export const VERSION_CACHE_CONTROL = 'public, max-age=31536000, immutable'

export const sha256Hex = (data: string | Buffer): string =>
  createHash('sha256').update(data).digest('hex')
export const eTagOf = (body: Buffer): string => `"${createHash('md5').update(body).digest('hex')}"`

function awsError(name: string, status: number): Error {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } })
}

/** The bytes of a PutObject body: a string, bytes, or upload.ts's FileBody (a file range). */
function bodyBytes(body: unknown): Buffer {
  if (typeof body === 'string') return Buffer.from(body)
  if (body instanceof Uint8Array) return Buffer.from(body)
  const range = body as { path?: unknown; start?: unknown; end?: unknown } | undefined
  if (typeof range?.path === 'string') {
    const start = range.start as number
    return readFileSync(range.path).subarray(start, (range.end as number) + 1)
  }
  if (body === undefined) return Buffer.alloc(0)
  throw new Error(`mock-bucket: unsupported PutObject body ${String(body)}`)
}

/** S3's answer to a conditional write of `key`, thrown when the condition fails. */
function checkCondition(
  objects: Map<string, MockObject>,
  key: string,
  condition: { IfNoneMatch?: string; IfMatch?: string }
): void {
  const stored = objects.get(key)
  if (condition.IfNoneMatch === '*' && stored) throw awsError('PreconditionFailed', 412)
  if (condition.IfMatch !== undefined) {
    if (!stored) throw awsError('NoSuchKey', 404)
    if (condition.IfMatch !== '*' && condition.IfMatch !== eTagOf(stored.body)) {
      throw awsError('PreconditionFailed', 412)
    }
  }
}

function decodeCopySource(bucket: string, copySource: string): string {
  const [name, ...segments] = copySource.split('/')
  if (name !== bucket) throw awsError('NoSuchBucket', 404)
  return segments.map(decodeURIComponent).join('/')
}

/** Installs the fake on `s3Mock`; returns the objects by key, to seed and inspect. */
export function installMockBucket(
  s3Mock: AwsClientStub<S3Client>,
  bucket: string
): Map<string, MockObject> {
  const objects = new Map<string, MockObject>()
  const get = (name: string | undefined, key: string | undefined): MockObject => {
    if (name !== bucket) throw awsError('NoSuchBucket', 404)
    const found = objects.get(key ?? '')
    if (!found) throw awsError('NoSuchKey', 404)
    return found
  }

  s3Mock.on(ListObjectsV2Command).callsFake(async (input: ListObjectsV2CommandInput) => {
    if (input.Bucket !== bucket) throw awsError('NoSuchBucket', 404)
    const prefix = input.Prefix ?? ''
    const entries: { key?: string; commonPrefix?: string }[] = []
    const seenPrefixes = new Set<string>()
    for (const key of [...objects.keys()].filter((k) => k.startsWith(prefix)).sort()) {
      const cut = input.Delimiter ? key.indexOf(input.Delimiter, prefix.length) : -1
      if (cut === -1) {
        entries.push({ key })
      } else {
        const common = key.slice(0, cut + (input.Delimiter as string).length)
        if (!seenPrefixes.has(common)) entries.push({ commonPrefix: common })
        seenPrefixes.add(common)
      }
    }
    const start = Number(input.ContinuationToken ?? 0)
    const size = Math.min(1000, input.MaxKeys ?? 1000)
    const page = entries.slice(start, start + size)
    const more = start + size < entries.length
    return {
      Contents: page
        .filter((e) => e.key !== undefined)
        .map((e) => {
          const o = objects.get(e.key as string) as MockObject
          return { Key: e.key, Size: o.body.length, ETag: eTagOf(o.body) }
        }),
      CommonPrefixes: page
        .filter((e) => e.commonPrefix !== undefined)
        .map((e) => ({ Prefix: e.commonPrefix })),
      IsTruncated: more,
      NextContinuationToken: more ? String(start + size) : undefined
    }
  })
  s3Mock.on(HeadObjectCommand).callsFake(async (input: { Bucket?: string; Key?: string }) => {
    let o: MockObject
    try {
      o = get(input.Bucket, input.Key)
    } catch {
      throw awsError('NotFound', 404)
    }
    return {
      ContentLength: o.body.length,
      ETag: eTagOf(o.body),
      ContentType: o.contentType,
      CacheControl: o.cacheControl,
      Metadata: { ...o.metadata }
    }
  })
  s3Mock.on(GetObjectCommand).callsFake(async (input: GetObjectCommandInput) => {
    const o = get(input.Bucket, input.Key)
    let body = o.body
    let contentRange: string | undefined
    const range = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? '')
    if (range) {
      if (o.body.length === 0) throw awsError('InvalidRange', 416)
      const end = Math.min(Number(range[2]), o.body.length - 1)
      body = o.body.subarray(Number(range[1]), end + 1)
      contentRange = `bytes ${range[1]}-${end}/${o.body.length}`
    }
    return {
      ContentLength: body.length,
      ContentRange: contentRange,
      ETag: eTagOf(o.body),
      ContentType: o.contentType,
      Metadata: { ...o.metadata },
      Body: {
        transformToString: async () => body.toString('utf8')
      } as unknown as GetObjectCommandOutput['Body']
    }
  })
  s3Mock.on(PutObjectCommand).callsFake(async (input: PutObjectCommandInput) => {
    if (input.Bucket !== bucket) throw awsError('NoSuchBucket', 404)
    checkCondition(objects, input.Key as string, input)
    const body = bodyBytes(input.Body)
    objects.set(input.Key as string, {
      body,
      contentType: input.ContentType,
      cacheControl: input.CacheControl,
      metadata: { ...input.Metadata },
      tagging: input.Tagging
    })
    return { ETag: eTagOf(body) }
  })
  s3Mock.on(CopyObjectCommand).callsFake(async (input: CopyObjectCommandInput) => {
    const source = get(bucket, decodeCopySource(bucket, input.CopySource as string))
    if (input.CopySourceIfMatch && input.CopySourceIfMatch !== eTagOf(source.body)) {
      throw awsError('PreconditionFailed', 412)
    }
    checkCondition(objects, input.Key as string, input)
    objects.set(input.Key as string, {
      body: source.body,
      contentType: input.ContentType,
      cacheControl: input.CacheControl,
      metadata: { ...input.Metadata },
      tagging: input.Tagging
    })
    return { CopyObjectResult: { ETag: eTagOf(source.body) } }
  })
  s3Mock.on(DeleteObjectCommand).callsFake(async (input: DeleteObjectCommandInput) => {
    if (input.IfMatch !== undefined) checkCondition(objects, input.Key as string, input)
    objects.delete(input.Key as string)
    return {}
  })
  s3Mock.on(DeleteObjectsCommand).callsFake(async (input: DeleteObjectsCommandInput) => {
    for (const { Key } of input.Delete?.Objects ?? []) objects.delete(Key as string)
    return {}
  })
  s3Mock.on(ListMultipartUploadsCommand).resolves({ Uploads: [] })
  return objects
}

/**
 * Stores a version as a deploy leaves it: each file with its SHA-256 in the metadata, then its
 * manifest. Returns the manifest.
 */
export function publishVersion(
  objects: Map<string, MockObject>,
  bucket: string,
  versionPrefix: string,
  files: Record<string, string>,
  urlBase = 'https://d111.cloudfront.net'
): Manifest {
  const published: PublishedFile[] = Object.entries(files).map(([path, body]) => ({
    absolutePath: `/w/${path}`,
    relativePath: path,
    size: Buffer.byteLength(body),
    key: `${versionPrefix}/${path}`,
    sha256: sha256Hex(body),
    contentType: 'application/octet-stream',
    action: 'upload',
    existed: false,
    url: `${urlBase}/${versionPrefix}/${path.split('/').map(encodeURIComponent).join('/')}`
  }))
  for (const f of published) {
    objects.set(f.key, {
      body: Buffer.from(files[f.relativePath]),
      contentType: f.contentType,
      cacheControl: VERSION_CACHE_CONTROL,
      metadata: { [SHA256_METADATA_KEY]: f.sha256! }
    })
  }
  const manifest = buildManifest({
    versionPrefix,
    bucket,
    files: published,
    metadata: {},
    distribution: null,
    git: { sha: 'abc' },
    createdAt: new Date('2025-01-01T00:00:00Z')
  })
  const body = serializeManifest(manifest)
  objects.set(`${versionPrefix}/manifest.json`, {
    body: Buffer.from(body),
    contentType: 'application/json',
    cacheControl: MANIFEST_CACHE_CONTROL,
    metadata: { [SHA256_METADATA_KEY]: sha256Hex(body) }
  })
  return manifest
}

export interface BucketServerOptions {
  /** Signed requests only, checked as CloudFront does (cloudFrontRefusal); unsigned ones get 403. */
  publicKey?: KeyObject
  /** The clock signatures are checked against, in ms. */
  now?: () => number
  /** Key → the x-amz-meta-sha256 to answer instead of the stored one (a stale edge copy). */
  staleSha256?: Record<string, string>
}

export interface BucketServer {
  /** `http://127.0.0.1:<port>`: keys are appended to it, as to `url-base`. */
  urlBase: string
  /** Every request: method, the path and query as received, and the status answered. */
  readonly requests: { method: string; url: string; status: number }[]
  stop(): Promise<void>
}

/**
 * Serves the objects on a free loopback port, for HEAD requests (verification's): 200 with
 * Content-Length and the stored SHA-256, or 404.
 */
export async function startBucketServer(
  objects: Map<string, MockObject>,
  opts: BucketServerOptions = {}
): Promise<BucketServer> {
  const requests: BucketServer['requests'] = []
  let urlBase = ''
  const server = createServer((req, res) => {
    const url = req.url ?? '/'
    const answer = (status: number, headers: Record<string, string | number> = {}): void => {
      requests.push({ method: req.method ?? 'GET', url, status })
      res.writeHead(status, headers)
      res.end()
    }
    if (opts.publicKey) {
      const nowSeconds = Math.floor((opts.now ?? Date.now)() / 1000)
      if (cloudFrontRefusal(`${urlBase}${url}`, opts.publicKey, nowSeconds)) return answer(403)
    }
    const path = url.split('?')[0].slice(1)
    const key = path.split('/').map(decodeURIComponent).join('/')
    const o = objects.get(key)
    if (!o) return answer(404)
    const sha256 = opts.staleSha256?.[key] ?? o.metadata[SHA256_METADATA_KEY]
    answer(200, {
      'content-length': o.body.length,
      ...(sha256 ? { [`x-amz-meta-${SHA256_METADATA_KEY}`]: sha256 } : {})
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  urlBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    urlBase,
    requests,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      })
  }
}
