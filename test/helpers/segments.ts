import { readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

/**
 * The finished segments of a segmented output (`out/cam.mp4` → out/cam.20261127T073500Z.mp4, …), oldest first.
 * Written independently of src/sinks/segment-name.ts on purpose: the tests check the documented names.
 */
export function segmentsOf(path: string): string[] {
  const ext = extname(path);
  const stem = basename(path, ext);
  const pattern = new RegExp(`^${escape(stem)}\\.\\d{8}T\\d{6}Z${escape(ext)}$`);
  return readdirSync(dirname(path))
    .filter((name) => pattern.test(name))
    .sort()
    .map((name) => join(dirname(path), name));
}

/** Every line of a segmented JSON-lines output, in order, parsed. */
export function readSegmentedJsonl<T = Record<string, unknown>>(path: string): T[] {
  return segmentsOf(path).flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as T),
  );
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
