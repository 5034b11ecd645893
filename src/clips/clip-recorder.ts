import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Mat } from '../cv.js';
import type { Logger } from '../log.js';
import { runChild } from '../process/children.js';
import { sourceFileName } from '../sources/source-file-name.js';
import type { ClipEventDraft, ClipTriggerType, ObjectEvent } from '../tracking/object-events.js';
import { RollingRecording, type RecordedSegment } from './rolling-recording.js';

/** How clips are made (config `output.clip`). */
export interface ClipSettings {
  /** Seconds of video before the moment of the event. */
  preSeconds: number;
  /** Seconds of video after the frame that decided the event. */
  postSeconds: number;
  /** Events close in time share a clip, up to this long. */
  maxSeconds: number;
  /** Live sources are recorded at their frame rate up to this (files at theirs). */
  maxFps: number;
  crf: number;
  preset: string;
  /** Clip files this run keeps at most (its oldest deleted beyond it). */
  maxFiles: number;
}

export interface ClipSource {
  id: string;
  kind: 'file' | 'live';
  /** The source's frame rate (0 or NaN when unknown). */
  fps: number;
  /** The event types that get a clip on this source. */
  triggers: ReadonlySet<ClipTriggerType>;
}

export interface ClipRecorderOptions {
  /** The clips folder (created by the caller): clips go to `<dir>/<source>/`, the rolling buffer to `<dir>/.buffer/`. */
  dir: string;
  ffmpegPath: string;
  /** Prefix of this run's clip names. */
  runId: string;
  settings: ClipSettings;
  sources: readonly ClipSource[];
  /** One call per event with a clip, in the order clips finish: clip.ready or clip.failed, to be stamped and sent. */
  onClip(draft: ClipEventDraft): void;
  log: Logger;
  /** Segment length in seconds (a clip's ends are rounded out to these). Default 1. */
  segmentSeconds?: number;
  /** Wall clock (epoch ms), for live clips' deadlines. Default Date.now. */
  nowMs?: () => number;
  /** A recording's ffmpeg that takes no frame or does not finish for this long is killed. Default 10 s. */
  stuckMs?: number;
}

interface PendingClip {
  sourceId: string;
  path: string;
  fromMs: number;
  toMs: number;
  events: ObjectEvent[];
  /** Live sources: cut with what was recorded by then even if the post-roll never came (a stalled camera). */
  deadlineAtMs: number | null;
}

interface SourceClips {
  source: ClipSource;
  fps: number;
  recording: RollingRecording | null;
  recordings: number;
  failuresInARow: number;
  /** Set after too many encoder failures in a row: the source records no more clips. */
  disabled: boolean;
  ended: boolean;
  sizeWh: readonly [number, number] | null;
  segments: RecordedSegment[];
  /** Waiting for their post-roll, oldest first. */
  pending: PendingClip[];
  bufferDir: string;
  /** The chain of writes to the encoder (never rejects), and how many are on it. */
  writing: Promise<void>;
  queued: number;
  /** Recordings finishing in the background (rotated on a gap or a deadline). */
  finishing: Set<Promise<void>>;
  segmentsOfRecording: number;
}

/** Live frames waiting for the encoder at most; beyond, a frame is left out of the recording. */
const MAX_QUEUED_LIVE_WRITES = 2;
/** A recording that has listed this many segments works: its source's failure count starts again. */
const SEGMENTS_THAT_PROVE_AN_ENCODER = 3;
/** An encoder that fails this many times in a row (no ffmpeg, no disk) stops the source's clips. */
const MAX_FAILURES_IN_A_ROW = 3;
/** Clips waiting for their post-roll, per source, at most; an event beyond it gets no clip (logged). */
const MAX_PENDING = 32;
/** A live clip whose post-roll has not been recorded this long after it was due is cut with what there is. */
const LIVE_GRACE_MS = 10_000;
/** Seconds of segments kept behind the newest frame besides the pre-roll (hysteresis puts moments in the past). */
const EXTRA_KEEP_SECONDS = 5;
/** A rolling buffer left by a killed run is removed once it has not been written for this long. */
const STALE_BUFFER_MS = 10 * 60_000;
const CUT_TIMEOUT_MS = 60_000;

/**
 * Event clips: each tracked source's annotated frames are encoded once into a rolling buffer of 1-second segments
 * (RollingRecording); an event that asks for a clip gets its path at once, and when the post-roll has been
 * recorded the segments covering [moment − pre, decided + post] are joined into an MP4 by copying (ffmpeg's concat
 * demuxer, `-c copy`: no re-encoding per event), written under `.partial` and renamed, then announced with
 * clip.ready. Events whose windows overlap share one clip (up to maxSeconds).
 *
 * Bounds: the buffer keeps pre-roll + a few seconds per source plus what waiting clips need; at most 32 waiting
 * clips per source; `maxFiles` clip files per run; cuts run one at a time. A source's encoder that fails is
 * restarted on its next frame (a camera's recorder is a unit of failure); three failures in a row stop its clips.
 */
export class ClipRecorder {
  readonly #options: ClipRecorderOptions;
  readonly #segmentSeconds: number;
  readonly #nowMs: () => number;
  readonly #sources = new Map<string, SourceClips>();
  readonly #bufferRoot: string;
  /** Cuts run one after another on this chain. */
  #cuts: Promise<void> = Promise.resolve();
  #cutsQueued = 0;
  #sequence = 0;
  readonly #written: string[] = [];
  #refusedLogged = false;
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** Clips cut, failed, and events that got none (too many waiting). */
  readonly counts = { written: 0, failed: 0, refused: 0 };

  constructor(options: ClipRecorderOptions) {
    this.#options = options;
    this.#segmentSeconds = options.segmentSeconds ?? 1;
    this.#nowMs = options.nowMs ?? Date.now;
    this.#bufferRoot = join(options.dir, '.buffer');
    removeStaleBuffers(this.#bufferRoot, this.#nowMs());
    for (const source of options.sources) {
      const fps = source.kind === 'file' && source.fps > 0 ? source.fps : Math.min(source.fps > 0 ? source.fps : options.settings.maxFps, options.settings.maxFps);
      this.#sources.set(source.id, {
        source,
        fps,
        recording: null,
        recordings: 0,
        failuresInARow: 0,
        disabled: false,
        ended: false,
        sizeWh: null,
        segments: [],
        pending: [],
        writing: Promise.resolve(),
        queued: 0,
        finishing: new Set(),
        segmentsOfRecording: 0,
        bufferDir: join(this.#bufferRoot, options.runId, sourceFileName(source.id)),
      });
    }
  }

  /** The clips folder. */
  get dir(): string {
    return this.#options.dir;
  }

  /** Whether `event` gets a clip (its source records clips and its type is one of the source's triggers). */
  wants(event: ObjectEvent): boolean {
    const clips = this.#sources.get(event.source);
    return clips !== undefined && !clips.disabled && !clips.ended && (clips.source.triggers as ReadonlySet<string>).has(event.type);
  }

  /**
   * Takes an event that gets a clip (its id set); returns the path the clip will have, or null when it gets none.
   * Call before the frame that decided the event is recorded.
   */
  request(event: ObjectEvent): string | null {
    const clips = this.#sources.get(event.source);
    if (clips === undefined || !this.wants(event)) return null;
    const { preSeconds, postSeconds, maxSeconds } = this.#options.settings;
    // Zone entries and exits and line crossings happened at sinceMs (the hysteresis confirmed them later); a dwell's
    // sinceMs is the start of the stay, which can be minutes back: its moment is the frame that decided it.
    const momentMs = 'sinceMs' in event && event.type !== 'zone.dwell' ? Math.min(event.sinceMs, event.timestampMs) : event.timestampMs;
    const fromMs = momentMs - preSeconds * 1000;
    const toMs = event.timestampMs + postSeconds * 1000;
    const last = clips.pending.at(-1);
    // Windows that overlap (or are within a segment of each other: the cut rounds them together anyway) share a clip.
    if (last !== undefined && fromMs <= last.toMs + this.#segmentSeconds * 1000 && Math.max(last.toMs, toMs) - Math.min(last.fromMs, fromMs) <= maxSeconds * 1000) {
      last.fromMs = Math.min(last.fromMs, fromMs);
      last.toMs = Math.max(last.toMs, toMs);
      last.deadlineAtMs = this.#deadline(clips);
      last.events.push(event);
      return last.path;
    }
    if (clips.pending.length >= MAX_PENDING) {
      this.counts.refused++;
      if (!this.#refusedLogged) {
        this.#refusedLogged = true;
        this.#options.log.warn({ source: event.source, waiting: MAX_PENDING }, 'too many clips waiting for their post-roll: events go on without clips until some are cut');
      }
      return null;
    }
    this.#sequence += 1;
    const path = join(this.#options.dir, sourceFileName(event.source), `${this.#options.runId}-c${this.#sequence}-t${event.trackId}.mp4`);
    clips.pending.push({ sourceId: event.source, path, fromMs, toMs, events: [event], deadlineAtMs: this.#deadline(clips) });
    this.#armDeadlines();
    return path;
  }

  /**
   * Records a frame of a source (annotated; the clip's size is that of its first frame). Never throws. A file's
   * frames are all recorded (the pipeline waits for the encoder, as for the MP4). A live source's pipeline never
   * waits: while its encoder is still taking the previous frame the new one is left out of the recording (the
   * previous frame fills its time), so a slow or hung encoder costs that camera's clips, not its inference.
   */
  async write(sourceId: string, mat: Mat, timeMs: number): Promise<void> {
    const clips = this.#sources.get(sourceId);
    if (clips === undefined || clips.disabled || clips.ended) return;
    if (clips.source.kind === 'live' && (clips.queued >= MAX_QUEUED_LIVE_WRITES || clips.recording?.backlogged === true)) return;
    let data: Buffer;
    try {
      clips.sizeWh ??= [mat.cols, mat.rows];
      const [w, h] = clips.sizeWh;
      data = mat.cols === w && mat.rows === h ? mat.getData() : await resizedData(mat, w, h);
    } catch (err) {
      this.#options.log.warn({ source: sourceId, err: firstLine(err) }, 'a frame could not be copied for the clip recording');
      return;
    }
    // Writes run one after another (a frame's repeats must not interleave with the next frame's).
    clips.queued += 1;
    const writing = clips.writing.then(async () => {
      try {
        // A gap the recording would jump (a reconnect, a stall) ends it instead: a segment never spans one.
        if (clips.recording?.spansGap(timeMs) === true) void this.#rotate(clips);
        if (clips.disabled || (clips.ended && clips.recording === null)) return;
        const recording = (clips.recording ??= this.#startRecording(clips));
        await recording.write(data, timeMs).catch((err: unknown) => (clips.recording === recording ? this.#recordingFailed(clips, err) : undefined));
      } finally {
        clips.queued -= 1;
      }
    });
    clips.writing = writing;
    if (clips.source.kind === 'file') await writing;
  }

  /** Resolves once the frames given to write() so far have gone to the encoder (tests; a live write() does not wait). */
  async settled(sourceId: string): Promise<void> {
    await this.#sources.get(sourceId)?.writing;
  }

  /** Finishes the source's recording in the background (its last segment is listed) so that the next frame starts a new one. */
  #rotate(clips: SourceClips): Promise<void> {
    const recording = clips.recording;
    clips.recording = null;
    if (recording === null) return Promise.resolve();
    const finished = recording.finish().catch((err: unknown) => {
      this.#options.log.warn({ source: clips.source.id, err: firstLine(err) }, 'clip recording did not finish cleanly; clips use what it wrote');
    });
    clips.finishing.add(finished);
    return finished.finally(() => clips.finishing.delete(finished));
  }

  /** The source will send no more frames: its recording is finished and its waiting clips are cut. */
  async endSource(sourceId: string): Promise<void> {
    const clips = this.#sources.get(sourceId);
    if (clips === undefined || clips.ended) return;
    clips.ended = true;
    // Ending the input first: a frame stuck in a hung encoder's pipe ends with it (killed after its bound).
    await this.#rotate(clips);
    await clips.writing;
    await Promise.all(clips.finishing);
    for (const clip of clips.pending.splice(0)) this.#cut(clips, clip);
    await this.#cuts;
  }

  /** Ends every source's recording, cuts every waiting clip, and removes this run's rolling buffer. */
  async finish(): Promise<void> {
    clearInterval(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    await Promise.all([...this.#sources.keys()].map((id) => this.endSource(id)));
    await this.#cuts;
    rmSync(join(this.#bufferRoot, this.#options.runId), { recursive: true, force: true });
  }

  #startRecording(clips: SourceClips): RollingRecording {
    mkdirSync(clips.bufferDir, { recursive: true });
    clips.segmentsOfRecording = 0;
    const [w, h] = clips.sizeWh ?? [0, 0];
    const { crf, preset } = this.#options.settings;
    clips.recordings += 1;
    return new RollingRecording({
      ffmpegPath: this.#options.ffmpegPath,
      dir: clips.bufferDir,
      name: `r${clips.recordings}`,
      sizeWh: [w, h],
      fps: clips.fps,
      segmentSeconds: this.#segmentSeconds,
      crf,
      preset,
      onSegment: (segment) => this.#segmentDone(clips, segment),
      ...(this.#options.stuckMs === undefined ? {} : { stuckMs: this.#options.stuckMs }),
    });
  }

  async #recordingFailed(clips: SourceClips, err: unknown): Promise<void> {
    const recording = clips.recording;
    clips.recording = null;
    await recording?.abort();
    clips.failuresInARow += 1;
    clips.segmentsOfRecording = 0;
    const id = clips.source.id;
    if (clips.failuresInARow >= MAX_FAILURES_IN_A_ROW) {
      clips.disabled = true;
      this.#options.log.error({ source: id, err: firstLine(err), detail: detailOf(err) }, `clip recording failed ${MAX_FAILURES_IN_A_ROW} times in a row: no more clips for this source in this run`);
      for (const clip of clips.pending.splice(0)) this.#cut(clips, clip);
    } else {
      this.#options.log.warn({ source: id, err: firstLine(err), detail: detailOf(err) }, 'clip recording failed; it restarts with the next frame');
    }
  }

  #segmentDone(clips: SourceClips, segment: RecordedSegment): void {
    // Segments written are what prove an encoder works (a write only proves the pipe took the bytes; a filling
    // disk still takes a segment or two).
    clips.segmentsOfRecording += 1;
    if (clips.segmentsOfRecording >= SEGMENTS_THAT_PROVE_AN_ENCODER) clips.failuresInARow = 0;
    // Kept in time order (a rotated recording may list its last segment after its successor's first).
    const at = clips.segments.findIndex((s) => s.firstMs > segment.firstMs);
    clips.segments.splice(at === -1 ? clips.segments.length : at, 0, segment);
    // A clip is due once the recording has passed its end.
    while (clips.pending[0] !== undefined && clips.pending[0].toMs <= segment.lastMs) {
      const clip = clips.pending.shift();
      if (clip !== undefined) this.#cut(clips, clip);
    }
    this.#prune(clips);
  }

  /** Deletes segments no clip can need any more: older than the pre-roll (and slack) and than every waiting or queued clip. */
  #prune(clips: SourceClips): void {
    const newest = clips.segments.at(-1)?.lastMs;
    if (newest === undefined) return;
    let keepFromMs = newest - (this.#options.settings.preSeconds + this.#segmentSeconds + EXTRA_KEEP_SECONDS) * 1000;
    for (const clip of clips.pending) keepFromMs = Math.min(keepFromMs, clip.fromMs);
    if (this.#cutsQueued > 0) return; // a queued cut may still need them: the next segment prunes
    while (clips.segments[0] !== undefined && clips.segments[0].lastMs < keepFromMs) {
      const old = clips.segments.shift();
      if (old !== undefined) void unlink(old.path).catch(() => undefined);
    }
  }

  /** Queues the cut of `clip` from the segments recorded so far; its result goes to onClip. */
  #cut(clips: SourceClips, clip: PendingClip): void {
    this.#cutsQueued += 1;
    const segments = clips.segments.filter((s) => s.lastMs >= clip.fromMs && s.firstMs <= clip.toMs);
    this.#cuts = this.#cuts
      .then(() => this.#join(clip, segments))
      .then(
        (done) => this.#announce(clip, done),
        (err: unknown) => this.#announce(clip, { failed: firstLine(err) }),
      )
      .finally(() => {
        this.#cutsQueued -= 1;
        this.#prune(clips);
      });
  }

  async #join(clip: PendingClip, segments: RecordedSegment[]): Promise<{ fromMs: number; toMs: number; sizeBytes: number } | { failed: string }> {
    // A segment deleted meanwhile (a cleaner, a removed folder) is left out rather than failing the clip.
    const present = segments.filter((s) => existsSync(s.path));
    const first = present[0];
    const last = present.at(-1);
    if (first === undefined || last === undefined) return { failed: 'no video was recorded for the clip\'s time' };
    segments = present;
    mkdirSync(dirname(clip.path), { recursive: true });
    // Cuts run one at a time: one list file serves them all.
    const list = join(this.#bufferRoot, this.#options.runId, 'concat.txt');
    await writeFile(list, segments.map((s) => `file '${s.path.replaceAll("'", `'\\''`)}'\n`).join(''));
    const partial = `${clip.path}.partial`;
    try {
      await runChild(this.#options.ffmpegPath, clipJoinArgs(list, partial), CUT_TIMEOUT_MS);
      await rename(partial, clip.path);
    } finally {
      await unlink(list).catch(() => undefined);
      await unlink(partial).catch(() => undefined);
    }
    const { size } = await stat(clip.path);
    await this.#keepWithinBound(clip.path);
    return { fromMs: first.firstMs, toMs: last.lastMs, sizeBytes: size };
  }

  async #keepWithinBound(path: string): Promise<void> {
    this.#written.push(path);
    while (this.#written.length > this.#options.settings.maxFiles) {
      const oldest = this.#written.shift();
      if (oldest !== undefined) await unlink(oldest).catch(() => undefined);
    }
  }

  #announce(clip: PendingClip, done: { fromMs: number; toMs: number; sizeBytes: number } | { failed: string }): void {
    if ('failed' in done) {
      this.counts.failed += 1;
      this.#options.log.warn({ source: clip.sourceId, clip: clip.path, reason: done.failed }, 'clip not written');
    } else {
      this.counts.written += 1;
    }
    for (const event of clip.events) {
      // A clip that does not show the frame its event was decided on (the recording broke off before it) is no clip of it.
      const shows = 'failed' in done || (done.fromMs <= event.timestampMs + this.#slack(clip) && done.toMs >= event.timestampMs - this.#slack(clip));
      const result = shows ? done : { failed: `the recording broke off: the clip (${done.fromMs}–${done.toMs} ms) does not show the event's frame (${event.timestampMs} ms)` };
      const base = {
        schemaVersion: event.schemaVersion,
        source: event.source,
        trackId: event.trackId,
        classId: event.classId,
        ...(event.label === undefined ? {} : { label: event.label }),
        frameIndex: event.frameIndex,
        timestampMs: event.timestampMs,
        forEventId: event.id,
        forEventType: event.type as ClipTriggerType,
        clip: clip.path,
      };
      this.#options.onClip('failed' in result ? { ...base, type: 'clip.failed', reason: result.failed } : { ...base, type: 'clip.ready', ...result });
    }
  }

  /** One recorded frame's time at the source's recording rate: the precision of a clip's bounds. */
  #slack(clip: PendingClip): number {
    const fps = this.#sources.get(clip.sourceId)?.fps ?? 10;
    return 1000 / fps;
  }

  #deadline(clips: SourceClips): number | null {
    if (clips.source.kind !== 'live') return null;
    return this.#nowMs() + (this.#options.settings.postSeconds + this.#segmentSeconds) * 1000 + LIVE_GRACE_MS;
  }

  /** Live clips whose post-roll never came (a stalled camera) are cut on time with what was recorded. */
  #armDeadlines(): void {
    if (this.#deadlineTimer !== undefined || ![...this.#sources.values()].some((c) => c.source.kind === 'live')) return;
    this.#deadlineTimer = setInterval(() => {
      const now = this.#nowMs();
      for (const clips of this.#sources.values()) {
        const due: PendingClip[] = [];
        while (clips.pending[0]?.deadlineAtMs != null && clips.pending[0].deadlineAtMs <= now) due.push(clips.pending.shift() as PendingClip);
        if (due.length === 0) continue;
        // The open segment holds the last second before the stall: the recording is finished so that it is listed.
        void this.#rotate(clips).then(() => {
          for (const clip of due) this.#cut(clips, clip);
        });
      }
    }, 1000).unref();
  }
}

/** ffmpeg's arguments to join the segments a concat list names into one MP4, by copying (no re-encoding). */
export function clipJoinArgs(listPath: string, outPath: string): string[] {
  return ['-hide_banner', '-nostats', '-loglevel', 'error', '-f', 'concat', '-safe', '0', '-i', listPath, '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4', '-y', outPath];
}

async function resizedData(mat: Mat, w: number, h: number): Promise<Buffer> {
  const resized = await mat.resizeAsync(h, w);
  try {
    return resized.getData();
  } finally {
    resized.release();
  }
}

/** ffmpeg's last words, from a VisionpipeError's hint (the first line of its message says only how it ended). */
function detailOf(err: unknown): string | undefined {
  const hint = (err as { hint?: unknown }).hint;
  return typeof hint === 'string' ? hint.split('\n').slice(-2).join(' ').trim() : undefined;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

/** Removes rolling buffers of other runs that nothing has written for a while (a killed run's). */
function removeStaleBuffers(root: string, nowMs: number): void {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return;
  }
  for (const name of entries) {
    const path = join(root, name);
    try {
      if (nowMs - newestMtimeMs(path) > STALE_BUFFER_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // Gone meanwhile, or not ours to remove.
    }
  }
}

function newestMtimeMs(path: string): number {
  const info = statSync(path);
  if (!info.isDirectory()) return info.mtimeMs;
  return Math.max(info.mtimeMs, ...readdirSync(path).map((name) => newestMtimeMs(join(path, name))));
}
