/** What setup and its CloudFormation template choose when no flag or parameter says otherwise. */

export const PRICE_CLASSES = ['PriceClass_All', 'PriceClass_200', 'PriceClass_100'] as const
export type PriceClass = (typeof PRICE_CLASSES)[number]
/** Inference servers anywhere: every edge location. */
export const DEFAULT_PRICE_CLASS: PriceClass = 'PriceClass_All'

/** Noncurrent versions (what a re-publish or clean-up left) are kept this long for rollback. */
export const DEFAULT_NONCURRENT_VERSION_DAYS = 30
/** Pull request previews nobody cleaned up expire after this long. */
export const DEFAULT_PREVIEW_DAYS = 14
