/**
 * Every output, defined once: its name (one of `Outputs`), whether its value is JSON text, and its
 * help text. action.yml's `outputs:` and the README's outputs table are generated from it and
 * checked against it (`src/inputs/schema.test.ts`; `UPDATE_DOCS=1` rewrites them).
 */

export interface OutputSpec {
  /** One of the `Outputs` names (schema.test.ts checks that each has one spec). */
  name: string
  /** The value is JSON text (or empty): the CLI's `--json` embeds it as a JSON value. */
  json?: boolean
  /** Markdown, one paragraph: the README's table, and action.yml (links as their text). */
  description: string
}

export const OUTPUT_SPECS: readonly OutputSpec[] = [
  {
    name: 'version-prefix',
    description: 'The version prefix the files were published under.'
  },
  {
    name: 'urls',
    json: true,
    description: "JSON object mapping each file's path relative to root to its URL."
  },
  {
    name: 'manifest',
    json: true,
    description: 'The manifest (JSON).'
  },
  {
    name: 'manifest-url',
    description: 'URL of `<version-prefix>/manifest.json` (empty when `manifest` is false).'
  },
  {
    name: 'uploaded',
    description: 'Number of files uploaded (in a dry run, that would be uploaded).'
  },
  {
    name: 'copied',
    description:
      'Number of files copied server-side from an object that already held their bytes (in a dry run, that would be copied).'
  },
  {
    name: 'skipped',
    description:
      'Number of files skipped because the key already held the same bytes and headers (in a dry run, that would be skipped).'
  },
  {
    name: 'bytes-uploaded',
    description: 'Bytes sent to S3.'
  },
  {
    name: 'invalidation-ids',
    json: true,
    description: 'JSON array of the CloudFront invalidation ids created.'
  },
  {
    name: 'invalidation-status',
    description: '`Completed`, `InProgress` (not waited for, or the wait timed out) or `none`.'
  },
  {
    name: 'signed-urls',
    json: true,
    description:
      "JSON object mapping each file's path (and `manifest.json`) to its signed URL (when signing is configured). Treat as a credential."
  },
  {
    name: 'signed-cookies',
    json: true,
    description:
      'JSON object of the three CloudFront cookies opening every URL of the version (custom policy on `<url-base>/<version-prefix>/*`). Treat as a credential.'
  },
  {
    name: 'signed-urls-expire-at',
    description: 'When the signed URLs and cookies expire (ISO 8601).'
  },
  {
    name: 'verified',
    description:
      '`true` when every URL served what was uploaded, `false` when not (the step then fails), empty when not verified.'
  },
  {
    name: 'alias-urls',
    json: true,
    description:
      "JSON object mapping each file's path (and `manifest.json`) to its URL under `alias`."
  },
  {
    name: 'comment-url',
    description: 'URL of the pull request comment, when one was created or updated.'
  },
  {
    name: 'deleted',
    description: '`mode: cleanup`: number of objects deleted (in a dry run, that would be deleted).'
  }
]
