import type { ChildProcess } from 'node:child_process'

export declare const REPO_ROOT: string

export interface ActionInput {
  required: boolean
  /** undefined: action.yml gives no default (the runner then passes ''). */
  default?: string
  description?: string
}

/** Reads the `inputs:` block of an action.yml text (a strict subset of YAML). */
export declare function parseActionInputs(text: string, source?: string): Map<string, ActionInput>
/** The inputs declared by `<actionPath>/action.yml` (default: this repository). */
export declare function readActionInputs(actionPath?: string): Map<string, ActionInput>
/** `distribution-id` → `INPUT_DISTRIBUTION-ID`, as the runner names it. */
export declare function inputEnvName(name: string): string
/** Parses a GITHUB_OUTPUT-style file (`name=value` and `name<<DELIMITER` blocks). */
export declare function parseCommandFile(text: string): Record<string, string>

export interface Annotation {
  level: 'error' | 'warning' | 'notice'
  message: string
}
/** `::error::…` / `::warning::…` workflow commands printed on stdout, decoded. */
export declare function parseAnnotations(stdout: string): Annotation[]

export interface RunActionOptions {
  /** What an input defaulting to `${{ github.token }}` gets, as the runner gives the job's token. */
  githubToken?: string
  /** Input values by their action.yml names; unknown names throw. Unset inputs get defaults. */
  inputs?: Record<string, string | number | boolean | undefined>
  /** Extra environment for the action (undefined deletes a variable the harness would set). */
  env?: Record<string, string | undefined>
  /** The workspace: working directory and GITHUB_WORKSPACE. */
  cwd: string
  /**
   * Emulator endpoint: sets AWS_ENDPOINT_URL_CLOUDFRONT and, unless given, the `endpoint-url`
   * input (S3).
   */
  endpoint?: string
  /** Directory holding action.yml and dist/index.js; default: this repository. */
  actionPath?: string
  /** Killed (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number
  /** Keep the runner's temp files (returned as tempDir). */
  keepTemp?: boolean
  /** Called with the action's process right after it is spawned (e.g. to watch its resources). */
  onSpawn?: (child: ChildProcess) => void
  /** Which of action.yml's `runs` scripts to run; default `main`. */
  phase?: 'main' | 'post'
  /** State saved by the main step (its result's `state`), passed as `STATE_<name>`. */
  state?: Record<string, string>
}

export interface RunActionResult {
  exitCode: number | null
  signal: NodeJS.Signals | null
  timedOut: boolean
  durationMs: number
  stdout: string
  stderr: string
  /** Parsed GITHUB_OUTPUT. */
  outputs: Record<string, string>
  /** GITHUB_STEP_SUMMARY as written. */
  summary: string
  /** Parsed GITHUB_STATE. */
  state: Record<string, string>
  annotations: Annotation[]
  /** Messages of `::error::` commands (core.setFailed / core.error). */
  errors: string[]
  warnings: string[]
  /** The environment the action ran with. */
  env: Record<string, string>
  tempDir?: string
}

/** Runs `<actionPath>/dist/index.js` as a GitHub runner runs a node action. */
export declare function runAction(options: RunActionOptions): Promise<RunActionResult>
