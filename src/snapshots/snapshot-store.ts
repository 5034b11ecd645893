import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { classColor } from '../annotate/result-annotator.js';
import { drawTag } from '../annotate/track-drawing.js';
import { cv, type Mat } from '../cv.js';
import { sourceFileName } from '../sources/source-file-name.js';
import type { Xyxy } from '../tracking/types.js';

/** How snapshots look (config `output.snapshot`). */
export interface SnapshotStyle {
  /** crop: the box with a margin; full: the whole frame with the box drawn. */
  mode: 'crop' | 'full';
  /** JPEG quality 1–100. */
  quality: number;
  /** crop: margin on each side as a fraction of the box's width / height. */
  marginFraction: number;
}

export interface SnapshotStoreOptions extends SnapshotStyle {
  /** Created by the caller; each source gets a subfolder. */
  dir: string;
  /** Prefix of this run's file names, so that a second run into the same folder never overwrites the first's. */
  runId: string;
  /** Files this run keeps at most; the oldest are deleted beyond it (events that named them keep the path). */
  maxFiles: number;
  /** Objects whose best frame is kept at most (the longest-kept is dropped beyond it). Default 1000. */
  maxKept?: number;
}

/** The object a snapshot shows. */
export interface SnapshotSubject {
  trackId: number;
  classId: number;
  label?: string;
  xyxy: Xyxy;
  score: number;
}

interface Captured {
  frameIndex: number;
  score: number;
  jpeg: Promise<Buffer>;
  /** Set once written: the same best frame is written once however many events name it. */
  path: string | null;
}

/** A new best replaces the kept one only when its score is this much higher: bounds encodes per object. */
const MIN_SCORE_GAIN = 0.02;

/**
 * The best frame of each followed object, kept as a JPEG and written when an event asks for it. capture() copies
 * the pixels at once (the frame is released after the sinks) and encodes with OpenCV's async imencode (libuv's
 * pool, off the event loop); save() writes the file (`.partial`, then renamed) and returns its path. Memory: one
 * JPEG per followed object, released by forget(); disk: at most `maxFiles` files of this run.
 */
export class SnapshotStore {
  readonly #options: SnapshotStoreOptions;
  readonly #kept = new Map<string, Captured>();
  /** This run's files, oldest first, with the capture each holds (so a deleted file is written again if asked). */
  readonly #written: { path: string; kept: Captured }[] = [];
  readonly #dirsMade = new Set<string>();
  #failures = 0;
  #writtenTotal = 0;

  constructor(options: SnapshotStoreOptions) {
    this.#options = options;
  }

  /** Files that could not be encoded or written (each logged once by the caller through save()'s rejection). */
  get failures(): number {
    return this.#failures;
  }

  /** Keeps `frame` as `subject`'s best unless the kept one scores about as well. */
  capture(sourceId: string, subject: SnapshotSubject, frame: { mat: Mat; index: number }): void {
    const key = keyOf(sourceId, subject.trackId);
    const kept = this.#kept.get(key);
    if (kept !== undefined && subject.score < kept.score + MIN_SCORE_GAIN) return;
    const image = this.#image(subject, frame.mat);
    const jpeg = cv.imencodeAsync('.jpg', image, [cv.IMWRITE_JPEG_QUALITY, this.#options.quality]).finally(() => image.release());
    // A failed encode surfaces in save(); until then it must not be an unhandled rejection.
    jpeg.catch(() => undefined);
    this.#kept.delete(key); // re-inserted last: the Map's order is then the order of last capture
    this.#kept.set(key, { frameIndex: frame.index, score: subject.score, jpeg, path: null });
    // Objects end with an object.end, which forgets them; this bound is for the ones that never do.
    const maxKept = this.#options.maxKept ?? 1000;
    for (const oldest of this.#kept.keys()) {
      if (this.#kept.size <= maxKept) break;
      this.#kept.delete(oldest);
    }
  }

  /** Writes the kept best frame of the object (once) and resolves with its path; null when none was captured. */
  async save(sourceId: string, trackId: number): Promise<string | null> {
    const kept = this.#kept.get(keyOf(sourceId, trackId));
    if (kept === undefined) return null;
    if (kept.path !== null) return kept.path;
    // The source's file-name form: no credentials, no path separators.
    const dir = join(this.#options.dir, sourceFileName(sourceId));
    const path = join(dir, `${this.#options.runId}-t${trackId}-f${kept.frameIndex}.jpg`);
    try {
      if (!this.#dirsMade.has(dir)) {
        await mkdir(dir, { recursive: true });
        this.#dirsMade.add(dir);
      }
      const partial = `${path}.partial`;
      await writeFile(partial, await kept.jpeg);
      await rename(partial, path);
    } catch (err) {
      this.#failures++;
      throw err;
    }
    kept.path = path;
    this.#writtenTotal += 1;
    this.#written.push({ path, kept });
    while (this.#written.length > this.#options.maxFiles) {
      const oldest = this.#written.shift();
      if (oldest === undefined) break;
      await unlink(oldest.path).catch(() => undefined);
      // An object still followed may be named again: its next event writes the file anew.
      if (oldest.kept.path === oldest.path) oldest.kept.path = null;
    }
    return path;
  }

  /** Drops what is kept for an object that ended. */
  forget(sourceId: string, trackId: number): void {
    this.#kept.delete(keyOf(sourceId, trackId));
  }

  /** The snapshot folder. */
  get dir(): string {
    return this.#options.dir;
  }

  /** Snapshot files this run has written (some may since have been deleted by the maxFiles bound). */
  get writtenCount(): number {
    return this.#writtenTotal;
  }

  /** Objects with a kept frame now (bounded by the followed objects). */
  get keptCount(): number {
    return this.#kept.size;
  }

  #image(subject: SnapshotSubject, mat: Mat): Mat {
    const [x1, y1, x2, y2] = subject.xyxy;
    if (this.#options.mode === 'crop') {
      const mx = (x2 - x1) * this.#options.marginFraction;
      const my = (y2 - y1) * this.#options.marginFraction;
      const left = clamp(Math.floor(x1 - mx), 0, mat.cols - 1);
      const top = clamp(Math.floor(y1 - my), 0, mat.rows - 1);
      const right = clamp(Math.ceil(x2 + mx), left + 1, mat.cols);
      const bottom = clamp(Math.ceil(y2 + my), top + 1, mat.rows);
      return mat.getRegion(new cv.Rect(left, top, right - left, bottom - top)).copy();
    }
    const full = mat.copy();
    const color = new cv.Vec3(...classColor(subject.classId));
    full.drawRectangle(new cv.Point2(Math.round(x1), Math.round(y1)), new cv.Point2(Math.round(x2), Math.round(y2)), color, 2, cv.LINE_8);
    drawTag(full, `#${subject.trackId} ${subject.label ?? subject.classId} ${subject.score.toFixed(2)}`, x1, y1, color);
    return full;
  }
}

function keyOf(sourceId: string, trackId: number): string {
  return `${sourceId}\u0000${trackId}`;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}
