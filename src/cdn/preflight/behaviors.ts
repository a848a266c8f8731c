/** Which cache behaviours of the distribution serve the version prefix. */
import type { CacheBehavior, DistributionConfig } from '@aws-sdk/client-cloudfront'
import { toInvalidationPath } from '../invalidation.js'
import { patternCoverage } from './patterns.js'

export type Behavior = Pick<CacheBehavior, 'TargetOriginId' | 'TrustedKeyGroups' | 'TrustedSigners'>

export interface ServingBehavior {
  /** `the default cache behavior` or `cache behavior "<path pattern>"`. */
  label: string
  behavior: Behavior
}

/**
 * The cache behaviours that serve keys under the version prefix, in CloudFront's order: every
 * behaviour whose path pattern matches some of them, up to the first that matches all, else
 * the default behaviour too.
 */
export function servingBehaviors(
  config: DistributionConfig,
  versionPrefix: string
): ServingBehavior[] {
  const base = `${toInvalidationPath(versionPrefix)}/`
  const serving: ServingBehavior[] = []
  for (const behavior of config.CacheBehaviors?.Items ?? []) {
    const pattern = behavior.PathPattern ?? ''
    // The leading `/` of a path pattern is optional.
    const coverage = patternCoverage(pattern.startsWith('/') ? pattern : `/${pattern}`, base)
    if (coverage === 'none') continue
    serving.push({ label: `cache behavior "${pattern}"`, behavior })
    if (coverage === 'all') return serving
  }
  if (config.DefaultCacheBehavior) {
    serving.push({ label: 'the default cache behavior', behavior: config.DefaultCacheBehavior })
  }
  return serving
}

/** A behaviour's label at the start of a sentence. */
export function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}
