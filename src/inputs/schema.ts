/**
 * Every input, defined once: its name (the action's input, the command line's `--<name>`), kind,
 * default, choices or range, when it is required, and its help text. action.yml's `inputs:` and the
 * README's inputs table are generated from it and checked against it (`src/inputs/schema.test.ts`;
 * `UPDATE_DOCS=1` rewrites them); parse.ts reads the inputs by it (values.ts) and validates them.
 */
import { type Inputs, MAX_PART_SIZE, MiB, MIN_PART_SIZE } from '../common/constants.js'
import {
  DEFAULT_EXPIRES_IN_SECONDS,
  MAX_EXPIRES_IN_SECONDS,
  MIN_EXPIRES_IN_SECONDS
} from '../cdn/signing.js'

/** The name of an input, as `Inputs` spells it. */
export type InputName = (typeof Inputs)[keyof typeof Inputs]

/** How a value is written: one line, one item a line, a boolean, a number, one of `choices`. */
export type InputKind = 'text' | 'lines' | 'boolean' | 'number' | 'choice' | 'secret'

/** The values a `number` accepts, both ends included, and the unit its messages give them in. */
export interface InputRange {
  min: number
  max: number
  unit?: string
  /** Whole numbers only. */
  integer?: boolean
}

export interface InputSpec {
  /** One of the `Inputs` names (schema.test.ts checks that each has one spec). */
  name: string
  kind: InputKind
  choices?: readonly string[]
  /** A `number`'s range; its description states it as `(<min> to <max>)`. */
  range?: InputRange
  /** Required whatever the mode (action.yml `required: true`). */
  required?: boolean
  /** The modes in which it is required, when only some are, e.g. `` `mode: deploy` ``. */
  requiredIn?: string
  /** What the runner passes when it is not given (action.yml `default`); none when undefined. */
  default?: string
  /** Markdown, one paragraph: the README's table, action.yml (links as their text), `--help`. */
  description: string
}

export const INPUT_SPECS: readonly InputSpec[] = [
  {
    name: 'mode',
    kind: 'choice',
    choices: ['deploy', 'promote', 'cleanup'],
    default: 'deploy',
    description:
      "`deploy`: publish the files (and move `alias` to them). `promote`: point `alias` at the existing `version-prefix` without uploading (release, rollback). `cleanup`: delete everything under `version-prefix` (a closed PR's preview); refused when an alias points to it. See [Release channels and PR previews](docs/release-channels.md#release-channels-and-pr-previews)."
  },
  {
    name: 'artifacts',
    kind: 'lines',
    requiredIn: '`mode: deploy`',
    default: '',
    description:
      'Newline-separated glob patterns of the files to publish, relative to the workspace. A line starting with `!` excludes. Directories are never uploaded; symlinks are not followed out of the workspace. Or objects already in S3, e.g. `s3://training-bucket/run-42/**`: copied server-side, no model bytes through the runner (all lines then `s3://`; see [S3 sources](docs/s3-sources.md)). Not used by `promote` and `cleanup`.'
  },
  {
    name: 'root',
    kind: 'text',
    default: '',
    description:
      "Directory the object keys are relative to. Empty: the common ancestor of the patterns' search paths (as `actions/upload-artifact` does). For `s3://` artifacts, an `s3://bucket/prefix/` (empty: each pattern's prefix before its first glob)."
  },
  {
    name: 'source-hash',
    kind: 'choice',
    choices: ['known', 'read'],
    default: 'known',
    description:
      "For `s3://` artifacts. `known`: record the integrity S3 already has (`x-amz-meta-sha256`, a full-object SHA-256 checksum, or S3's CRC64NVME/CRC32/composite checksum, named as such); no bytes are read. `read`: also compute each object's SHA-256 by streaming it through the runner once (costs the download time and S3 GET transfer). See [S3 sources](docs/s3-sources.md#integrity)."
  },
  {
    name: 'bucket',
    kind: 'text',
    required: true,
    description: 'Name of the S3 bucket (private, behind CloudFront).'
  },
  {
    name: 'version-prefix',
    kind: 'text',
    required: true,
    description:
      'Key prefix for this version, e.g. `v3` or `resnet50/v3`. Key = `<version-prefix>/<path relative to root>`. No leading `/`, no `..`, no empty segments.'
  },
  {
    name: 'distribution-id',
    kind: 'text',
    default: '',
    description:
      'CloudFront distribution id (e.g. `E1A2B3C4D5E6F7`). Without it the action uploads, returns S3 URLs and skips invalidation.'
  },
  {
    name: 'url-base',
    kind: 'text',
    default: '',
    description:
      'Base of the returned URLs, e.g. `https://models.example.com`. Empty: `https://<distribution domain>` (read with GetDistribution), or the S3 URL of the bucket without a distribution.'
  },
  {
    name: 'invalidate',
    kind: 'choice',
    choices: ['auto', 'all', 'none'],
    default: 'auto',
    description:
      '`auto`: invalidate only keys that existed before this run and were overwritten (a new versioned key cannot be stale in any edge cache). `all`: every uploaded key. `none`: never.'
  },
  {
    name: 'invalidation-paths',
    kind: 'lines',
    default: '',
    description: 'Extra CloudFront paths to invalidate (newline-separated, e.g. `/latest/*`).'
  },
  {
    name: 'wait-for-invalidation',
    kind: 'boolean',
    default: 'true',
    description: 'Wait until the invalidations have completed.'
  },
  {
    name: 'wait-timeout-minutes',
    kind: 'number',
    range: { min: 0, max: 360, unit: 'minutes' },
    default: '15',
    description:
      'How long to wait for invalidations (0 to 360). On timeout the step warns (does not fail) and reports the status.'
  },
  {
    name: 'lock-timeout-minutes',
    kind: 'number',
    range: { min: 0, max: 360, unit: 'minutes' },
    default: '60',
    description:
      'How long to wait (0 to 360) for another run publishing the same `version-prefix`, or moving the same `alias`, before failing. See [Concurrent runs](docs/reliability.md#concurrent-runs).'
  },
  {
    name: 'multipart-threshold-mb',
    kind: 'number',
    // Above 1 GiB a single PutObject is a poor bet: a failure late in it resends every byte.
    range: { min: 5, max: 1024, unit: 'MiB' },
    default: '16',
    description:
      'Files at least this large (MiB) are uploaded with multipart transfers when they need more than one part (5 to 1024); smaller files are streamed in one PutObject.'
  },
  {
    name: 'part-size-mb',
    kind: 'number',
    range: { min: MIN_PART_SIZE / MiB, max: MAX_PART_SIZE / MiB, unit: 'MiB' },
    default: '',
    description:
      'Multipart part size in MiB (5 to 5120). Empty: automatic, 16 MiB or larger so that no file needs more than 10,000 parts.'
  },
  {
    name: 'concurrency',
    kind: 'number',
    range: { min: 1, max: 64, integer: true },
    default: '8',
    description:
      'Parts (or small files) in flight at once, across all files (1 to 64). Bodies are streamed, so memory does not grow with part or file size.'
  },
  {
    name: 'content-type',
    kind: 'text',
    default: '',
    description:
      'Content-Type for every file. Empty: detected from the extension; model formats unknown to MIME databases (`.onnx`, `.safetensors`, `.gguf`, `.pt`, `.bin`, `.ckpt`...) get `application/octet-stream`.'
  },
  {
    name: 'cache-control',
    kind: 'text',
    default: 'public, max-age=31536000, immutable',
    description: 'Cache-Control stored with every object.'
  },
  {
    name: 'metadata',
    kind: 'lines',
    default: '',
    description:
      'Newline-separated `key=value` pairs stored as `x-amz-meta-<key>` on every object (e.g. `model-version=2.0.1`).'
  },
  {
    name: 'overwrite',
    kind: 'boolean',
    default: 'false',
    description:
      'Allow replacing a key that already holds different bytes or headers (content-type, cache-control, metadata). Released versions are immutable: without this, such a key is an error. Keys holding the same bytes (same SHA-256) and headers are skipped.'
  },
  {
    name: 'manifest',
    kind: 'boolean',
    default: 'true',
    description:
      'Upload `<version-prefix>/manifest.json` listing every file with size, SHA-256 and URL.'
  },
  {
    name: 'reuse-from',
    kind: 'lines',
    default: 'auto',
    description:
      "Where to look for objects already holding a new file's exact bytes (same size and recorded SHA-256; files of 1 MiB or more), to copy them server-side instead of uploading: `auto` (the version prefix's parent, at most 20,000 keys), `none`, or newline-separated prefixes. See [Known content](docs/how-it-works.md#known-content-is-copied-not-uploaded)."
  },
  {
    name: 'dry-run',
    kind: 'boolean',
    default: 'false',
    description:
      'Print the plan (uploads, copies, skips, the alias move, deletions, invalidation paths) and change nothing, in every `mode`. See [Dry run](docs/how-it-works.md#dry-run).'
  },
  {
    name: 'aws-region',
    kind: 'text',
    default: '',
    description:
      'AWS region of the bucket. Empty: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `us-east-1`.'
  },
  {
    name: 'endpoint-url',
    kind: 'text',
    default: '',
    description:
      'Endpoint of an S3-compatible store (MinIO, R2, an emulator). Uses path-style addressing and only the checksums such stores accept. `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL_CLOUDFRONT` also work.'
  },
  {
    name: 'alias',
    kind: 'text',
    requiredIn: '`mode: promote`',
    default: '',
    description:
      "A prefix that serves a copy of the version, e.g. `latest` or `resnet50/stable`: after the deploy (or in `mode: promote`) every file is copied server-side to `<alias>/<path>`, files the alias held that the version lacks are removed, `<alias>/manifest.json` is the version's manifest, and exactly the changed alias paths are invalidated. Needs `manifest: true`. See [Aliases](docs/release-channels.md#aliases)."
  },
  {
    name: 'alias-cache-control',
    kind: 'text',
    default: 'public, max-age=60',
    description: 'Cache-Control of the objects under `alias` (short, since the alias moves).'
  },
  {
    name: 'aliases',
    kind: 'lines',
    default: '',
    description:
      '`mode: cleanup` refuses a prefix an alias points to; aliases next to the version prefix are found on their own, list others here (newline-separated).'
  },
  {
    name: 'preflight',
    kind: 'boolean',
    default: 'true',
    description:
      'Check the set-up before the first upload (read-only): distribution, origin and its Origin Access Control, the bucket policy scoped to the distribution, public access block, versioning, the lifecycle rule for incomplete uploads, and trusted key groups when signing. Errors stop the run; the rest are warnings. See [Pre-flight](docs/private-models.md#pre-flight).'
  },
  {
    name: 'verify',
    kind: 'boolean',
    default: 'true',
    description:
      'After the deploy, request every published URL (HEAD, signed when signing) through `url-base`: status 200, its size and `x-amz-meta-sha256` must match; signed files must refuse unsigned requests. A mismatch fails the step. See [Verification](docs/private-models.md#verification).'
  },
  {
    name: 'signing-key-pair-id',
    kind: 'text',
    default: '',
    description:
      'ID of the CloudFront public key (`K…`) whose private key is `signing-private-key`; it must be in a key group trusted by the cache behaviour serving the version.'
  },
  {
    name: 'signing-private-key',
    kind: 'secret',
    default: '',
    description:
      'RSA 2048 private key (PEM, PKCS#1 or PKCS#8; `\\n`-escaped is fine) to sign URLs and cookies. Pass a secret: `${{ secrets.CLOUDFRONT_PRIVATE_KEY }}`. It is masked before anything runs. See [Signed URLs and cookies](docs/private-models.md#signed-urls-and-cookies).'
  },
  {
    name: 'signed-url-expires-in',
    kind: 'number',
    // cdn/signing.ts checks it (parseExpiresIn), with its own messages; these are its limits.
    range: {
      min: MIN_EXPIRES_IN_SECONDS,
      max: MAX_EXPIRES_IN_SECONDS,
      unit: 'seconds',
      integer: true
    },
    default: String(DEFAULT_EXPIRES_IN_SECONDS),
    description: 'Lifetime of signed URLs and cookies, in seconds (300 to 31536000).'
  },
  {
    name: 'pr-comment',
    kind: 'boolean',
    default: 'true',
    description:
      "On `pull_request` events, create (then update) one comment on the PR with the preview's files and URLs; `mode: cleanup` updates it to say the preview was removed."
  },
  {
    name: 'pr-comment-id',
    kind: 'text',
    default: '',
    description:
      "Tells this step's PR comment from others' (e.g. `${{ matrix.model }}` in matrix jobs): 1 to 100 letters, digits and `. _ / @ + -` (no `--`)."
  },
  {
    name: 'github-token',
    kind: 'secret',
    default: '${{ github.token }}',
    description: 'Token to comment with (needs `pull-requests: write`).'
  }
]
