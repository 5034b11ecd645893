import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { VisionpipeError } from '../errors.js';

/**
 * Checks, before anything runs, that an output file can be written: creates its folder if missing, and refuses
 * a folder path or a folder we cannot write to. Returns the absolute path.
 */
export function prepareOutputPath(path: string, what: string): string {
  const abs = resolve(path);
  const dir = dirname(abs);
  try {
    if (statSync(abs, { throwIfNoEntry: false })?.isDirectory() === true) {
      throw new VisionpipeError('VP_OUTPUT_UNWRITABLE', `The ${what} path is a directory`, {
        value: path,
        expected: 'a file path such as out/result.mp4',
      });
    }
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (cause) {
    if (cause instanceof VisionpipeError) throw cause;
    throw new VisionpipeError('VP_OUTPUT_UNWRITABLE', `Cannot write the ${what} file`, {
      value: path,
      expected: `a path in a writable directory (${(cause as Error).message})`,
      cause,
    });
  }
  return abs;
}

/** Outputs are written under this name and renamed to the final name only when complete. */
export function partialPathOf(path: string): string {
  return `${path}.partial`;
}
