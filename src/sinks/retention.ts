import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSegmentFileName, windowEndMs, type SegmentBase } from './segment-name.js';

const PARTIAL = '.partial';

/** How much of one output's closed segments to keep (config `output.retention`); null = no bound of that kind. */
export interface RetentionLimits {
  /** Segments that ended longer ago than this are deleted. */
  maxAgeSeconds: number | null;
  /** Oldest segments are deleted while this output's closed segments take more than this. */
  maxTotalBytes: number | null;
}

/** A segment found on disk: finalised, or a `.partial` a crashed run left behind. */
export interface SegmentOnDisk {
  path: string;
  /** The name it was written under (`path` without `.partial`). */
  segmentPath: string;
  /** From its name (epoch ms, whole seconds). */
  startMs: number;
  sizeBytes: number;
}

/**
 * Which segments the limits delete, oldest first. Pure: the caller lists the segments and gives the clock.
 *
 * A segment's age counts from its end, taken from names alone so that segments of earlier runs are judged the same
 * way as this run's (file times change when files are copied): the end of its aligned window, or the next
 * segment's start when that is earlier (a run that stopped early). That end is never before the real close, so a
 * segment is never deleted sooner than maxAgeSeconds after it closed.
 *
 * The byte limit never deletes the newest segment: with a limit smaller than one segment it would otherwise delete
 * each recording as soon as it is finalised, leaving nothing to look at. Closed segments then take at most
 * max(maxTotalBytes, size of the newest one).
 */
export function segmentsToDelete(
  segments: readonly SegmentOnDisk[],
  limits: RetentionLimits,
  clock: { nowMs: number; segmentSeconds: number },
): SegmentOnDisk[] {
  const sorted = [...segments].sort((a, b) => a.startMs - b.startMs);
  const doomed = new Set<SegmentOnDisk>();
  if (limits.maxAgeSeconds !== null) {
    const oldestEndMs = clock.nowMs - limits.maxAgeSeconds * 1000;
    sorted.forEach((segment, i) => {
      const nextStartMs = sorted[i + 1]?.startMs ?? Infinity;
      const endMs = Math.min(windowEndMs(segment.startMs, clock.segmentSeconds), nextStartMs);
      if (endMs < oldestEndMs) doomed.add(segment);
    });
  }
  if (limits.maxTotalBytes !== null) {
    const kept = sorted.filter((s) => !doomed.has(s));
    let totalBytes = kept.reduce((sum, s) => sum + s.sizeBytes, 0);
    for (const segment of kept.slice(0, -1)) {
      if (totalBytes <= limits.maxTotalBytes) break;
      doomed.add(segment);
      totalBytes -= segment.sizeBytes;
    }
  }
  return sorted.filter((s) => doomed.has(s));
}

/**
 * This output's segments in its directory, including those left by earlier runs: finalised ones and the `.partial`
 * of a run that crashed (which would otherwise pile up outside every bound).
 */
export async function listSegments(base: SegmentBase): Promise<SegmentOnDisk[]> {
  const names = await readdir(base.dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const found: SegmentOnDisk[] = [];
  for (const name of names) {
    const segmentName = name.endsWith(PARTIAL) ? name.slice(0, -PARTIAL.length) : name;
    const startMs = parseSegmentFileName(base, segmentName);
    if (startMs === null) continue;
    const path = join(base.dir, name);
    const info = await stat(path).catch(() => null);
    // Only regular files: a directory that happens to match the pattern is not ours to delete.
    if (info?.isFile() === true) found.push({ path, segmentPath: join(base.dir, segmentName), startMs, sizeBytes: info.size });
  }
  return found;
}

/**
 * Deletes this output's segments beyond the limits (see segmentsToDelete) and resolves with the paths deleted.
 * `keep` names segments this run still writes (the open one, those still closing): never touched, finalised or not.
 */
export async function applyRetention(
  base: SegmentBase,
  limits: RetentionLimits,
  options: { nowMs: number; segmentSeconds: number; keep?: ReadonlySet<string> },
): Promise<string[]> {
  if (limits.maxAgeSeconds === null && limits.maxTotalBytes === null) return [];
  const segments = (await listSegments(base)).filter((s) => options.keep?.has(s.segmentPath) !== true);
  const deleted: string[] = [];
  for (const segment of segmentsToDelete(segments, limits, options)) {
    try {
      await unlink(segment.path);
      deleted.push(segment.path);
    } catch (err) {
      // Someone else (a user, another retention pass) removed it first: the goal is reached all the same.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return deleted;
}
