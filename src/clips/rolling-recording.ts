import { createInterface } from 'node:readline';
import { basename, join } from 'node:path';
import { EVEN_SIZE, RawVideoEncoder } from '../process/raw-video-encoder.js';

/** One finished piece of a rolling recording: an MPEG-TS file that starts on a keyframe. */
export interface RecordedSegment {
  path: string;
  /** Times (the source's clock, ms) of its first and last frame. */
  firstMs: number;
  lastMs: number;
}

export interface RollingRecordingOptions {
  ffmpegPath: string;
  /** Where its segments go (created by the caller). */
  dir: string;
  /** Prefix of its segment files: a restarted recording in the same folder never reuses a name. */
  name: string;
  sizeWh: readonly [number, number];
  /** The constant frame rate it records at. */
  fps: number;
  /** Segment length: a clip's ends are rounded out to segment boundaries. */
  segmentSeconds: number;
  crf: number;
  preset: string;
  /** Called for each segment once ffmpeg has closed it, in order. */
  onSegment(segment: RecordedSegment): void;
  /** An ffmpeg that takes no frame, or does not finish, for this long is killed. Default 10 s. */
  stuckMs?: number;
}

const STUCK_MS = 10_000;

/** ffmpeg's arguments for a rolling recording: raw BGR on stdin, segments into `dir`, their list on stdout. */
export function rollingRecordingArgs(options: Omit<RollingRecordingOptions, 'ffmpegPath' | 'onSegment' | 'stuckMs'>): string[] {
  const [w, h] = options.sizeWh;
  const s = options.segmentSeconds;
  return [
    ...['-hide_banner', '-nostats', '-loglevel', 'warning'],
    ...['-f', 'rawvideo', '-pix_fmt', 'bgr24', '-video_size', `${w}x${h}`, '-framerate', String(options.fps), '-i', 'pipe:0'],
    // x264's 4:2:0 needs even sizes: an odd width or height gets one black column or row.
    ...['-vf', EVEN_SIZE, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', options.preset, '-crf', String(options.crf)],
    // A keyframe at every segment boundary: a clip is a run of whole segments, copied.
    ...['-force_key_frames', `expr:gte(t,n_forced*${s})`],
    ...['-f', 'segment', '-segment_time', String(s), '-segment_format', 'mpegts', '-reset_timestamps', '1'],
    // The segment muxer's file name is a printf template: a % in the folder's name is escaped.
    ...['-segment_list', 'pipe:1', '-segment_list_type', 'csv', '-y', join(options.dir.replaceAll('%', '%%'), `${options.name}-%06d.ts`)],
  ];
}

/** A gap in the frames longer than this many seconds is not filled with repeats: the recording jumps it. */
const MAX_FILL_SECONDS = 2;

/**
 * A source's annotated frames encoded once, continuously, into short keyframe-aligned segments on disk (ffmpeg's
 * segment muxer), from which clips are later cut by copying, never re-encoding. It records at a constant frame rate:
 * a frame is repeated until the next one's time (a live source that infers 6 frames a second still gives a clip
 * that plays at the right speed) and frames faster than the rate are skipped; a gap longer than 2 s is jumped, not
 * filled. Each recorded frame's time is kept until its segment closes, so a segment knows the times it covers.
 *
 * ffmpeg lists each segment it closes on its stdout (`-segment_list pipe:1`, CSV `file,start,end`), and only then
 * is the segment handed on: a file is never read while ffmpeg is still writing it.
 */
export class RollingRecording {
  readonly #options: RollingRecordingOptions;
  readonly #encoder: RawVideoEncoder;
  readonly #slotMs: number;
  /** The time of each recorded frame still in an open segment; index 0 is frame number #firstOrdinal. */
  #times: number[] = [];
  #firstOrdinal = 0;
  #ordinals = 0;
  /** Slot 0's time: frame n is the slot at #originMs + n × slotMs (moved when a gap is jumped). */
  #originMs: number | null = null;
  #previous: Buffer | null = null;
  readonly #listed: Promise<void>;

  constructor(options: RollingRecordingOptions) {
    this.#options = options;
    this.#slotMs = 1000 / options.fps;
    const [w, h] = options.sizeWh;
    const args = rollingRecordingArgs(options);
    this.#encoder = new RawVideoEncoder({
      ffmpegPath: options.ffmpegPath,
      args,
      frameBytes: w * h * 3,
      doing: `recording clip segments in ${options.dir}`,
      readStdout: true,
      // A clip recorder is auxiliary: a hung one is given up sooner than an output's encoder.
      stuckWriteMs: options.stuckMs ?? STUCK_MS,
      stuckFinishMs: options.stuckMs ?? STUCK_MS,
    });
    const lines = createInterface({ input: this.#encoder.stdout ?? process.stdin, crlfDelay: Infinity });
    lines.on('line', (line) => this.#segmentListed(line));
    this.#listed = new Promise((resolve) => lines.once('close', resolve));
  }

  /** Why its ffmpeg failed, once it has. */
  get failure(): Error | undefined {
    return this.#encoder.failure;
  }

  /** Its ffmpeg is behind (a write now would wait for it). */
  get backlogged(): boolean {
    return this.#encoder.backlogged;
  }

  /** A frame at `timeMs` comes after a gap longer than repeats fill (2 s): write() would jump it, not fill it. */
  spansGap(timeMs: number): boolean {
    return this.#originMs !== null && this.#slotOf(timeMs) - this.#ordinals > MAX_FILL_SECONDS * this.#options.fps;
  }

  /**
   * Records `data` (BGR, the recording's size) as the frame at `timeMs`: the previous frame fills the slots up to
   * it. Waits while ffmpeg is behind; throws when ffmpeg failed.
   */
  async write(data: Buffer, timeMs: number): Promise<void> {
    if (this.spansGap(timeMs)) {
      // A gap (a reconnect, a stall): jump it; this frame takes the next slot and the clock moves with it.
      this.#originMs = timeMs - this.#ordinals * this.#slotMs;
    } else {
      this.#originMs ??= timeMs;
      const slot = this.#slotOf(timeMs);
      if (slot < this.#ordinals && this.#ordinals > 0) return; // faster than the recording's rate (or out of order): skipped
      while (this.#previous !== null && this.#ordinals < slot) await this.#record(this.#previous);
    }
    await this.#record(data);
    this.#previous = data;
  }

  /** Ends the input: ffmpeg closes the last segment (listed like the others) and exits. Throws its failure. */
  async finish(): Promise<void> {
    try {
      await this.#encoder.finish();
    } finally {
      await this.#listed;
      this.#previous = null;
    }
  }

  /** Stops without throwing: segments already listed stay usable; the one being written is not listed. */
  async abort(): Promise<void> {
    await this.#encoder.abort();
    await this.#listed;
    this.#previous = null;
  }

  async #record(data: Buffer): Promise<void> {
    this.#times.push(this.#timeOf(this.#ordinals));
    this.#ordinals++;
    await this.#encoder.write(data);
  }

  #slotOf(timeMs: number): number {
    return Math.round((timeMs - (this.#originMs ?? timeMs)) / this.#slotMs);
  }

  #timeOf(ordinal: number): number {
    return (this.#originMs ?? 0) + ordinal * this.#slotMs;
  }

  /** `name-000003.ts,3.000000,4.000000`: frames [start × fps, end × fps) of the recording. */
  #segmentListed(line: string): void {
    const [file, start, end] = line.split(',');
    const startS = Number(start);
    const endS = Number(end);
    if (file === undefined || !Number.isFinite(startS) || !Number.isFinite(endS)) return;
    const first = Math.max(Math.round(startS * this.#options.fps), this.#firstOrdinal);
    const last = Math.min(Math.round(endS * this.#options.fps), this.#ordinals) - 1;
    const firstMs = this.#times[first - this.#firstOrdinal];
    const lastMs = this.#times[last - this.#firstOrdinal];
    // Frames of closed segments are never asked about again.
    const drop = Math.max(0, last + 1 - this.#firstOrdinal);
    this.#times = this.#times.slice(drop);
    this.#firstOrdinal += drop;
    if (firstMs === undefined || lastMs === undefined || last < first) return;
    this.#options.onSegment({ path: join(this.#options.dir, basename(file)), firstMs, lastMs });
  }
}
