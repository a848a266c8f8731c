/** Percent-encodes each key segment as a client sends it (RFC 3986), keeping the `/`s. */
export function encodeKeyForUrl(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/')
}

export function objectUrl(base: string, key: string): string {
  const encoded = encodeKeyForUrl(key)
  // The key itself when nothing needed encoding: one string per file is kept, not two.
  return `${base}/${encoded === key ? key : encoded}`
}

/** Where objects are readable without a distribution: the store's own URL for the bucket. */
export function s3UrlBase(bucket: string, region: string, customEndpoint?: string): string {
  if (customEndpoint) return `${customEndpoint.replace(/\/+$/, '')}/${bucket}`
  // Dotted bucket names break virtual-hosted TLS certificates; use the path style for them.
  return bucket.includes('.')
    ? `https://s3.${region}.amazonaws.com/${bucket}`
    : `https://${bucket}.s3.${region}.amazonaws.com`
}
