import { isVisionpipeError } from '../errors.js';

/** Prints one clear message (and the stack only when verbose); returns the exit code. */
export function reportError(err: unknown, verbose: boolean): number {
  if (isVisionpipeError(err)) {
    process.stderr.write(`visionpipe: error ${err.code}: ${err.message}\n`);
    if (verbose && err.stack !== undefined) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`visionpipe: unexpected error: ${message}\n`);
  if (verbose && err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`);
  else process.stderr.write('  (run again with --verbose for the stack trace, and please report it)\n');
  return 70;
}
