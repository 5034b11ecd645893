import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
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
    makeDirs(dir);
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

/**
 * Checks that an output folder can be written to: creates it (and its parents) if missing, and refuses a file or
 * a folder we cannot write to. Returns the absolute path.
 */
export function prepareOutputDir(path: string, what: string): string {
  const abs = resolve(path);
  try {
    if (statSync(abs, { throwIfNoEntry: false })?.isFile() === true) {
      throw new VisionpipeError('VP_OUTPUT_UNWRITABLE', `The ${what} path is a file`, { value: path, expected: 'a folder path such as out/snapshots' });
    }
    makeDirs(abs);
    accessSync(abs, constants.W_OK);
  } catch (cause) {
    if (cause instanceof VisionpipeError) throw cause;
    throw new VisionpipeError('VP_OUTPUT_UNWRITABLE', `Cannot write to the ${what} folder`, {
      value: path,
      expected: `a writable folder (${(cause as Error).message})`,
      cause,
    });
  }
  return abs;
}

/**
 * mkdir -p, one level at a time. (Node's `mkdirSync(…, { recursive: true })` never returns for a path under
 * /proc, where mkdir keeps answering ENOENT: seen here.)
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  let cursor = dir;
  while (!existsSync(cursor)) {
    missing.unshift(cursor);
    const parent = dirname(cursor);
    if (parent === cursor) break;
    cursor = parent;
  }
  for (const d of missing) mkdirSync(d);
}

/** Outputs are written under this name and renamed to the final name only when complete. */
export function partialPathOf(path: string): string {
  return `${path}.partial`;
}
