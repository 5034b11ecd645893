import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A durable outbox: every event is appended to an on-disk log before any delivery is tried, and each delivery
 * target (an MQTT broker, a webhook) reads it from its own acknowledged position. A segmented append-only log of
 * JSON lines rather than SQLite: appends are sequential writes with one optional fsync, recovery after a crash is
 * "cut the torn last line", retention deletes whole files, and there is no native module to build on a machine
 * without internet.
 *
 * Files in `dir`: `<first seq, 16 digits>.jsonl` segments, one record per line (`{"seq":…,"atMs":…,"event":…}`),
 * and `<target>.cursor` holding the last sequence number that target acknowledged (written to a temporary file
 * and renamed, so it is the old or the new value, never half of one).
 */

/** When appended records reach the disk. */
export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface OutboxOptions {
  dir: string;
  /**
   * always: fsync after each append (nothing acknowledged by append() is lost to a power cut); interval: at most
   * every `fsyncIntervalMs` (a power cut loses at most that much; a process crash loses nothing); never: the OS
   * decides (a process crash still loses nothing, the data is in the page cache).
   */
  fsync: FsyncPolicy;
  /** For fsync `interval`. Default 1000. */
  fsyncIntervalMs?: number;
  /** A segment is closed and a new one started beyond this size. Default 8 MiB. */
  segmentBytes?: number;
  /** Oldest segments are deleted while the log is larger than this (the newest segment is always kept); null = no bound. */
  maxBytes: number | null;
  /** Segments whose newest record is older than this are deleted; null = no bound. */
  maxAgeMs: number | null;
  /** Epoch ms. Default Date.now. */
  nowMs?: () => number;
}

export interface OutboxRecord<E = unknown> {
  seq: number;
  /** When it was appended (epoch ms). */
  atMs: number;
  event: E;
}

/** What retention deleted: records, and how many of them some target had not acknowledged yet. */
export interface OutboxDrop {
  records: number;
  unacknowledged: number;
  /** Per target, the records it lost. */
  byTarget: Record<string, number>;
}

interface Segment {
  firstSeq: number;
  path: string;
  bytes: number;
  lastSeq: number;
  lastAtMs: number;
}

const SEGMENT_NAME = /^(\d{16})\.jsonl$/;
const TARGET_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The process that holds the outbox in `dir` (its `lock` file names it), or null when none does: no lock file, or
 * one left by a process that is gone (visionpipe killed with kill -9).
 */
export function outboxHolder(dir: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dir, LOCK_FILE), 'utf8'));
  } catch {
    return null;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}

const LOCK_FILE = 'lock';

/**
 * The outbox of one run directory. Single writer: a `lock` file holds the owner's pid while it is open, and a
 * second process is refused (a lock left by a killed process is taken over).
 */
export class Outbox<E = unknown> {
  readonly #options: Required<Omit<OutboxOptions, 'maxBytes' | 'maxAgeMs'>> & Pick<OutboxOptions, 'maxBytes' | 'maxAgeMs'>;
  readonly #segments: Segment[] = [];
  readonly #cursors = new Map<string, number>();
  /** Where a target's next read starts: the byte right after record `seq` in the segment starting at `firstSeq`. */
  readonly #readFrom = new Map<string, { seq: number; firstSeq: number; offset: number }>();
  /** The end offsets of the records a target's last read returned, so that ack() can move its read position. */
  readonly #lastRead = new Map<string, Map<number, { firstSeq: number; offset: number }>>();
  #fd: number | null = null;
  #nextSeq = 1;
  #lastFsyncMs = 0;
  #dirty = false;
  /** Bytes cut from a torn last line when the outbox was opened (a crash in the middle of an append). */
  readonly recoveredTornBytes: number;

  constructor(options: OutboxOptions) {
    this.#options = { fsyncIntervalMs: 1000, segmentBytes: 8 * 1024 * 1024, nowMs: Date.now, ...options };
    mkdirSync(options.dir, { recursive: true });
    const holder = outboxHolder(options.dir);
    if (holder !== null) throw new Error(`The outbox ${options.dir} is in use by process ${holder}`);
    writeFileSync(join(options.dir, LOCK_FILE), String(process.pid));
    for (const name of readdirSync(options.dir).sort()) {
      const m = SEGMENT_NAME.exec(name);
      if (m?.[1] !== undefined) this.#segments.push(this.#scan(Number(m[1]), join(options.dir, name)));
      if (name.endsWith('.cursor')) this.#cursors.set(name.slice(0, -'.cursor'.length), Number(readFileSync(join(options.dir, name), 'utf8')) || 0);
    }
    this.recoveredTornBytes = this.#repairTail();
    const last = this.#segments.at(-1);
    // A power cut can lose the last records (fsync interval / never) but keep a cursor that acknowledged them:
    // numbering goes on above every cursor, so no new record hides behind a position already passed.
    const highestCursor = Math.max(0, ...this.#cursors.values());
    this.#nextSeq = Math.max(last === undefined ? 1 : last.lastSeq + 1, highestCursor + 1);
  }

  /**
   * Registers a delivery target. A target the outbox has never seen starts with the events appended from now on,
   * not with the retained history (a webhook added to a running system must not get last week's events).
   */
  addTarget(target: string): void {
    checkTarget(target);
    if (!this.#cursors.has(target)) this.ack(target, this.#nextSeq - 1);
  }

  /** The outbox folder. */
  get dir(): string {
    return this.#options.dir;
  }

  /** The sequence number the next append gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** Total bytes of the log on disk. */
  get bytes(): number {
    return this.#segments.reduce((a, s) => a + s.bytes, 0);
  }

  /** Appends one event; returns its sequence number. Durable per the fsync policy when this returns. */
  append(event: E): number {
    const seq = this.#nextSeq;
    const atMs = this.#options.nowMs();
    const line = Buffer.from(`${JSON.stringify({ seq, atMs, event })}\n`);
    let tail = this.#segments.at(-1);
    if (tail === undefined || (tail.bytes > 0 && tail.bytes + line.length > this.#options.segmentBytes)) tail = this.#startSegment(seq);
    const fd = this.#tailFd(tail);
    writeSync(fd, line);
    Object.assign(tail, { bytes: tail.bytes + line.length, lastSeq: seq, lastAtMs: atMs });
    this.#nextSeq = seq + 1;
    this.#dirty = true;
    if (this.#options.fsync === 'always' || (this.#options.fsync === 'interval' && atMs - this.#lastFsyncMs >= this.#options.fsyncIntervalMs)) this.flush();
    return seq;
  }

  /** fsyncs what was appended (a no-op when nothing was). */
  flush(): void {
    if (this.#fd !== null && this.#dirty) fsyncSync(this.#fd);
    this.#dirty = false;
    this.#lastFsyncMs = this.#options.nowMs();
  }

  /** The last sequence number `target` acknowledged (0 for a new target). */
  position(target: string): number {
    checkTarget(target);
    return this.#cursors.get(target) ?? 0;
  }

  /**
   * Records `target` has not acknowledged, oldest first, at most `max`. Reads on from where the target's last
   * acknowledged record ends (not from the start of its segment), in 64 KiB chunks: the cost is the records read.
   */
  read(target: string, max: number): OutboxRecord<E>[] {
    const { records, ends } = this.#read(target, max);
    this.#lastRead.set(target, ends);
    return records;
  }

  /** `target` has everything up to `seq`: its next read starts after it. Persisted at once (atomically). */
  ack(target: string, seq: number): void {
    checkTarget(target);
    if (seq <= this.position(target) && this.#cursors.has(target)) return;
    const path = join(this.#options.dir, `${target}.cursor`);
    writeFileSync(`${path}.tmp`, String(seq));
    renameSync(`${path}.tmp`, path);
    this.#cursors.set(target, seq);
    const tail = this.#segments.at(-1);
    // Up to date (acknowledging the newest record): the next read starts at the end of the log.
    const end = tail !== undefined && seq === tail.lastSeq ? { firstSeq: tail.firstSeq, offset: tail.bytes } : this.#lastRead.get(target)?.get(seq);
    if (end === undefined) this.#readFrom.delete(target);
    else this.#readFrom.set(target, { seq, ...end });
  }

  /** Records `target` has not acknowledged. */
  depth(target: string): number {
    return Math.max(0, this.#nextSeq - 1 - Math.max(this.position(target), this.#firstSeq() - 1));
  }

  /** Age of the oldest record `target` has not acknowledged (ms), or 0 when it is up to date. */
  oldestUnacknowledgedAgeMs(target: string): number {
    const [oldest] = this.#read(target, 1).records;
    return oldest === undefined ? 0 : Math.max(0, this.#options.nowMs() - oldest.atMs);
  }

  /**
   * Deletes the oldest segments beyond maxAgeMs / maxBytes (never the one being written). Returns what went,
   * including how many records targets (those in `targets`, plus any with a cursor) had not acknowledged yet.
   */
  enforceRetention(targets: readonly string[] = []): OutboxDrop {
    const drop: OutboxDrop = { records: 0, unacknowledged: 0, byTarget: {} };
    const { maxBytes, maxAgeMs } = this.#options;
    // The targets delivering now; a cursor left by a target no longer configured does not raise false alarms.
    const known = new Set(targets.length > 0 ? targets : this.#cursors.keys());
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0];
      if (oldest === undefined) break;
      const tooOld = maxAgeMs !== null && this.#options.nowMs() - oldest.lastAtMs > maxAgeMs;
      const tooBig = maxBytes !== null && this.bytes > maxBytes;
      if (!tooOld && !tooBig) break;
      const records = oldest.lastSeq - oldest.firstSeq + 1;
      drop.records += records;
      let worst = 0;
      for (const target of known) {
        const lost = Math.max(0, oldest.lastSeq - Math.max(this.#cursors.get(target) ?? 0, oldest.firstSeq - 1));
        if (lost > 0) drop.byTarget[target] = (drop.byTarget[target] ?? 0) + lost;
        worst = Math.max(worst, lost);
      }
      drop.unacknowledged += worst;
      unlinkSync(oldest.path);
      this.#segments.shift();
    }
    return drop;
  }

  /** Flushes and closes the file being written. */
  close(): void {
    if (this.#fd !== null) {
      if (this.#options.fsync !== 'never') this.flush();
      closeSync(this.#fd);
      this.#fd = null;
    }
    const lock = join(this.#options.dir, LOCK_FILE);
    try {
      if (readFileSync(lock, 'utf8') === String(process.pid)) unlinkSync(lock);
    } catch {
      // already gone
    }
  }

  #read(target: string, max: number): { records: OutboxRecord<E>[]; ends: Map<number, { firstSeq: number; offset: number }> } {
    const after = this.position(target);
    const from = this.#readFrom.get(target);
    const start = from?.seq === after ? from : undefined;
    const records: OutboxRecord<E>[] = [];
    const ends = new Map<number, { firstSeq: number; offset: number }>();
    for (const segment of this.#segments) {
      if (segment.lastSeq <= after || records.length >= max) continue;
      const offset = start?.firstSeq === segment.firstSeq ? start.offset : 0;
      for (const { record, end } of this.#recordsFrom(segment, offset)) {
        if (record.seq <= after) continue;
        records.push(record);
        ends.set(record.seq, { firstSeq: segment.firstSeq, offset: end });
        if (records.length >= max) break;
      }
    }
    return { records, ends };
  }

  /** Whole records of a segment from byte `offset` on, each with the offset just past it. */
  *#recordsFrom(segment: Segment, offset: number): Generator<{ record: OutboxRecord<E>; end: number }> {
    if (!existsSync(segment.path) || offset >= segment.bytes) return;
    const fd = openSync(segment.path, 'r');
    try {
      const chunk = Buffer.alloc(64 * 1024);
      let carry = Buffer.alloc(0);
      let pos = offset;
      while (pos < segment.bytes) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, segment.bytes - pos), pos);
        if (n <= 0) return;
        pos += n;
        const buf = carry.length === 0 ? chunk.subarray(0, n) : Buffer.concat([carry, chunk.subarray(0, n)]);
        const base = pos - buf.length;
        let lineStart = 0;
        for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a, lineStart)) {
          let record: OutboxRecord<E>;
          try {
            record = JSON.parse(buf.subarray(lineStart, nl).toString('utf8')) as OutboxRecord<E>;
          } catch {
            return; // a torn line can only be the last: #repairTail cuts it
          }
          lineStart = nl + 1;
          yield { record, end: base + lineStart };
        }
        carry = Buffer.from(buf.subarray(lineStart));
      }
    } finally {
      closeSync(fd);
    }
  }

  #firstSeq(): number {
    return this.#segments[0]?.firstSeq ?? this.#nextSeq;
  }

  #startSegment(firstSeq: number): Segment {
    if (this.#fd !== null) {
      if (this.#options.fsync !== 'never') this.flush();
      closeSync(this.#fd);
      this.#fd = null;
    }
    const segment = { firstSeq, path: join(this.#options.dir, `${String(firstSeq).padStart(16, '0')}.jsonl`), bytes: 0, lastSeq: firstSeq - 1, lastAtMs: 0 };
    this.#segments.push(segment);
    return segment;
  }

  #tailFd(tail: Segment): number {
    this.#fd ??= openSync(tail.path, 'a');
    return this.#fd;
  }

  #scan(firstSeq: number, path: string): Segment {
    const segment: Segment = { firstSeq, path, bytes: statSync(path).size, lastSeq: firstSeq - 1, lastAtMs: 0 };
    for (const { record } of this.#recordsFrom(segment, 0)) Object.assign(segment, { lastSeq: record.seq, lastAtMs: record.atMs });
    return segment;
  }

  /** Cuts a torn last record (visionpipe killed mid-append) so that appends continue on a clean line. */
  #repairTail(): number {
    const tail = this.#segments.at(-1);
    if (tail === undefined) return 0;
    let goodBytes = 0;
    for (const { end } of this.#recordsFrom(tail, 0)) goodBytes = end;
    const torn = tail.bytes - goodBytes;
    if (torn > 0) {
      const fd = openSync(tail.path, 'r+');
      try {
        ftruncateSync(fd, goodBytes);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      tail.bytes = goodBytes;
    }
    return torn;
  }

}

function checkTarget(target: string): void {
  if (!TARGET_NAME.test(target)) throw new RangeError(`Outbox target name ${JSON.stringify(target)}: expected 1-64 letters, digits, _ or -`);
}

