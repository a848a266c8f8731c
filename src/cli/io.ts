/** Exit codes: success, a run that failed, and flags or inputs refused before anything ran. */
export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2

/** Where the command line writes: outputs on stdout, the log (and progress) on stderr. */
export interface CliIo {
  env: NodeJS.ProcessEnv
  stdout: Pick<NodeJS.WriteStream, 'write'>
  /** The log, and on a terminal (isTTY) the progress bar. */
  stderr: NodeJS.WritableStream & { isTTY?: boolean }
}
