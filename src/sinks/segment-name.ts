import { basename, dirname, extname, join } from 'node:path';

/**
 * The un-segmented output path split into what every segment name shares: `out/cam.mp4` → dir `out`, stem `cam`,
 * ext `mp4` (empty when the path has none). Segments are `<dir>/<stem>.<UTC start as YYYYMMDDTHHMMSSZ>.<ext>`.
 */
export interface SegmentBase {
  dir: string;
  stem: string;
  ext: string;
}

const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** Splits an output path into the parts shared by its segment names. */
export function segmentBaseOf(path: string): SegmentBase {
  const ext = extname(path);
  return { dir: dirname(path), stem: basename(path, ext), ext: ext.slice(1) };
}

/** `20261127T073500Z` for 2026-11-27 07:35:00.xxx UTC (milliseconds dropped). */
export function utcStamp(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** The path of the segment starting at `startMs` (epoch ms): `out/cam.20261127T073500Z.mp4`. */
export function segmentPathOf(base: SegmentBase, startMs: number): string {
  return join(base.dir, segmentFileName(base, utcStamp(startMs)));
}

/** `out/cam.*.mp4`: names all the segments of one output, for messages. */
export function segmentPatternOf(base: SegmentBase): string {
  return join(base.dir, segmentFileName(base, '*'));
}

/**
 * The start (epoch ms) of the segment named `fileName` (a bare name, no directory), or null when the name is not
 * exactly one of this output's segments: another stem or extension, a `.partial`, a stamp that is not a real
 * UTC time. Retention deletes only what this accepts.
 */
export function parseSegmentFileName(base: SegmentBase, fileName: string): number | null {
  const head = `${base.stem}.`;
  const tail = base.ext === '' ? '' : `.${base.ext}`;
  if (!fileName.startsWith(head) || !fileName.endsWith(tail)) return null;
  const stamp = fileName.slice(head.length, fileName.length - tail.length);
  const m = STAMP.exec(stamp);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  // Date.UTC rolls 20261399T… over into a later date; only a stamp that reads back the same is ours.
  return utcStamp(ms) === stamp ? ms : null;
}

/** Start of the aligned window holding `timeMs`: a multiple of segmentSeconds since the epoch (UTC). */
export function windowStartMs(timeMs: number, segmentSeconds: number): number {
  const spanMs = segmentSeconds * 1000;
  return Math.floor(timeMs / spanMs) * spanMs;
}

/** End of the aligned window holding `timeMs` (exclusive). */
export function windowEndMs(timeMs: number, segmentSeconds: number): number {
  return windowStartMs(timeMs, segmentSeconds) + segmentSeconds * 1000;
}

function segmentFileName(base: SegmentBase, stamp: string): string {
  return base.ext === '' ? `${base.stem}.${stamp}` : `${base.stem}.${stamp}.${base.ext}`;
}
