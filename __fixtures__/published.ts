import type { InvalidationOutcome, PublishedFile } from '../src/common/types.js'

export const URL_BASE = 'https://models.example.com'

/** A file as deploy() reports it: uploaded under `v3/`, with a URL under URL_BASE. */
export function publishedFile(
  relativePath: string,
  overrides: Partial<PublishedFile> = {}
): PublishedFile {
  return {
    absolutePath: `/work/out/${relativePath}`,
    relativePath,
    size: 1536,
    key: `v3/${relativePath}`,
    sha256: '0123456789abcdef'.repeat(4),
    contentType: 'application/octet-stream',
    action: 'upload',
    existed: false,
    url: `${URL_BASE}/v3/${relativePath}`,
    ...overrides
  }
}

/** The outcome of a run that invalidated nothing. */
export function noInvalidation(reason = 'every key is new'): InvalidationOutcome {
  return { reason, paths: [], ids: [], status: 'none', waitedMs: 0 }
}
