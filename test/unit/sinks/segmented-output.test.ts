import { appendFileSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { VisionpipeError } from '../../../src/errors.js';
import { SegmentedOutput, type SegmentFile } from '../../../src/sinks/segmented-output.js';

const T0 = Date.UTC(2026, 10, 27, 7, 35, 0); // 07:35:00 UTC
const NO_LIMITS = { maxAgeSeconds: null, maxTotalBytes: null };

interface Item {
  atMs: number;
}

/** A segment file that writes 100 bytes per item; its close waits for `gate` and can be told to fail. */
class FakeFile implements SegmentFile<Item> {
  readonly items: number[] = [];
  closeCalls = 0;
  constructor(
    readonly path: string,
    private readonly gate: Promise<void>,
    private readonly failClose: boolean,
  ) {
    writeFileSync(`${path}.partial`, '');
  }
  async write(item: Item): Promise<void> {
    this.items.push(item.atMs - T0);
    appendFileSync(`${this.path}.partial`, Buffer.alloc(100));
  }
  async close(): Promise<string> {
    this.closeCalls++;
    await this.gate;
    if (this.failClose) throw new Error('disk full');
    renameSync(`${this.path}.partial`, this.path);
    return this.path;
  }
  async abort(): Promise<string | null> {
    return this.items.length > 0 ? `${this.path}.partial` : null;
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vp-segments-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function output(options: { segmentSeconds?: number; gates?: Promise<void>[]; failing?: number[]; nowMs?: () => number; maxPendingCloses?: number; retention?: typeof NO_LIMITS | { maxAgeSeconds: number | null; maxTotalBytes: number | null } } = {}) {
  const files: FakeFile[] = [];
  const out = new SegmentedOutput<Item, FakeFile>({
    path: join(dir, 'cam.mp4'),
    segmentSeconds: options.segmentSeconds ?? 10,
    retention: options.retention ?? NO_LIMITS,
    timeMsOf: (item) => item.atMs,
    openFile: (path) => {
      const i = files.length;
      const file = new FakeFile(path, options.gates?.[i] ?? Promise.resolve(), options.failing?.includes(i) === true);
      files.push(file);
      return file;
    },
    ...(options.nowMs !== undefined ? { nowMs: options.nowMs } : {}),
    ...(options.maxPendingCloses !== undefined ? { maxPendingCloses: options.maxPendingCloses } : {}),
  });
  return { out, files };
}

const at = (seconds: number): Item => ({ atMs: T0 + seconds * 1000 });
const namesOf = (files: FakeFile[]) => files.map((f) => f.path.slice(dir.length + 1));

describe('SegmentedOutput rollover', () => {
  it('cuts at aligned window ends; names the first segment and the one after a gap by their first item', async () => {
    const { out, files } = output({ segmentSeconds: 10 });
    for (const s of [3.4, 9.9, 10, 19.9, 20, 47.2, 50.1, 49]) await out.write(at(s));
    expect(await out.close()).toBe(`${join(dir, 'cam.*.mp4')} (5 segments)`);
    expect(namesOf(files)).toEqual([
      'cam.20261127T073503Z.mp4', // first item at 07:35:03.4
      'cam.20261127T073510Z.mp4', // continues: the window start
      'cam.20261127T073520Z.mp4',
      'cam.20261127T073547Z.mp4', // after a gap: its first item
      'cam.20261127T073550Z.mp4',
    ]);
    expect(files.map((f) => f.items.map((ms) => ms / 1000))).toEqual([[3.4, 9.9], [10, 19.9], [20], [47.2], [50.1, 49]]);
    expect(readdirSync(dir).sort()).toEqual(namesOf(files).sort());
  });

  it('never reuses the name of a segment an earlier run left, finished or crashed', async () => {
    writeFileSync(join(dir, 'cam.20261127T073503Z.mp4'), 'earlier run');
    writeFileSync(join(dir, 'cam.20261127T073504Z.mp4.partial'), 'crashed run');
    const { out, files } = output();
    await out.write(at(3.2));
    await out.close();
    expect(namesOf(files)).toEqual(['cam.20261127T073505Z.mp4']);
    expect(readdirSync(dir).sort()).toEqual(['cam.20261127T073503Z.mp4', 'cam.20261127T073504Z.mp4.partial', 'cam.20261127T073505Z.mp4']);
  });

  it('does not wait for the old segment to close; close() waits for it', async () => {
    const slow = gate();
    const { out, files } = output({ gates: [slow.promise] });
    await out.write(at(1));
    await out.write(at(11)); // rolls over while segment 0 cannot close yet
    await out.write(at(12));
    expect(files[0]?.closeCalls).toBe(1);
    expect(existsSync(`${files[0]?.path}.partial`)).toBe(true);
    let closed = false;
    const closing = out.close().then((d) => ((closed = true), d));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false);
    slow.open();
    expect(await closing).toMatch(/\(2 segments\)$/);
    expect(readdirSync(dir).sort()).toEqual(namesOf(files).sort());
  });

  it('bounds the closes in flight: write waits for the oldest beyond maxPendingCloses', async () => {
    const slow = gate();
    const { out } = output({ gates: [slow.promise, slow.promise], maxPendingCloses: 1 });
    await out.write(at(1));
    await out.write(at(11)); // one close in flight: allowed
    let written = false;
    const third = out.write(at(21)).then(() => (written = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(written).toBe(false);
    slow.open();
    await third;
    await out.close();
  });

  it('reports a failed background close at close(), after finalising the rest', async () => {
    const { out, files } = output({ failing: [0] });
    await out.write(at(1));
    await out.write(at(11)); // segment 0 fails to close, in the background
    await out.write(at(21));
    const err: unknown = await out.close().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VisionpipeError);
    expect((err as VisionpipeError).code).toBe('VP_SINK_FAILED');
    expect((err as Error).message).toContain(`Segment ${files[0]?.path} could not be finalised (1 failure(s) in all): disk full`);
    expect((err as VisionpipeError).hint).toContain('(2 segments)');
    expect(readdirSync(dir).sort()).toEqual(['cam.20261127T073501Z.mp4.partial', 'cam.20261127T073510Z.mp4', 'cam.20261127T073520Z.mp4']);
  });

  it('abort keeps closed segments finalised and the open one as .partial, and says so', async () => {
    const { out } = output();
    await out.write(at(1));
    await out.write(at(11));
    await out.write(at(21));
    expect(await out.abort()).toBe(`${join(dir, 'cam.*.mp4')} (2 segments), ${join(dir, 'cam.20261127T073520Z.mp4.partial')}`);
    expect(readdirSync(dir).sort()).toEqual(['cam.20261127T073501Z.mp4', 'cam.20261127T073510Z.mp4', 'cam.20261127T073520Z.mp4.partial']);
    expect(() => out.fileFor(at(30))).toThrow(/closed/);
  });

  it('abort with nothing written keeps nothing', async () => {
    expect(await output().out.abort()).toBeNull();
  });
});

describe('SegmentedOutput retention', () => {
  it("deletes by age on the injected clock, earlier runs' segments included, never the open one", async () => {
    writeFileSync(join(dir, 'cam.20261127T072000Z.mp4'), 'earlier run'); // ended 07:20:10
    writeFileSync(join(dir, 'cam.20261127T073000Z.mp4'), 'earlier run'); // ended 07:30:10
    writeFileSync(join(dir, 'cam.20261127T072000Z.jsonl'), 'another output');
    let nowMs = T0 + 15_000;
    const { out } = output({ retention: { maxAgeSeconds: 600, maxTotalBytes: null }, nowMs: () => nowMs });
    const listing = () => readdirSync(dir).sort();
    await out.write(at(1));
    await out.write(at(11)); // closes 07:35:01; its retention pass runs at 07:35:15: cut-off 07:25:15
    await vi.waitFor(() => expect(listing()).toEqual(['cam.20261127T072000Z.jsonl', 'cam.20261127T073000Z.mp4', 'cam.20261127T073501Z.mp4', 'cam.20261127T073510Z.mp4.partial']));
    nowMs = T0 + 11 * 60_000; // cut-off 07:36:00: everything closed is too old now
    await out.write(at(21));
    await vi.waitFor(() => expect(listing()).toEqual(['cam.20261127T072000Z.jsonl', 'cam.20261127T073520Z.mp4.partial']));
    expect(await out.close()).toBe(`${join(dir, 'cam.*.mp4')} (3 segments; retention deleted 5)`);
    expect(listing()).toEqual(['cam.20261127T072000Z.jsonl']);
  });

  it('deletes the oldest while the bytes exceed the limit, keeping the newest', async () => {
    const { out } = output({ segmentSeconds: 1, retention: { maxAgeSeconds: null, maxTotalBytes: 450 } });
    // 2 items (200 bytes) per segment, 4 segments
    for (const s of [0.1, 0.6, 1.1, 1.6, 2.1, 2.6, 3.1, 3.6]) await out.write(at(s));
    expect(await out.close()).toMatch(/\(4 segments; retention deleted 2\)$/);
    expect(readdirSync(dir).sort()).toEqual(['cam.20261127T073502Z.mp4', 'cam.20261127T073503Z.mp4']);
  });
});

describe('SegmentedOutput when a segment writer dies', () => {
  /** A file whose writes fail while `broken` says so (an encoder that was killed). */
  class DyingFile implements SegmentFile<Item> {
    aborted = false;
    constructor(
      readonly path: string,
      private readonly broken: () => boolean,
    ) {
      writeFileSync(`${path}.partial`, '');
    }
    async write(): Promise<void> {
      if (this.broken()) throw new VisionpipeError('VP_FFMPEG_FAILED', 'ffmpeg ended with signal SIGKILL');
    }
    async close(): Promise<string> {
      renameSync(`${this.path}.partial`, this.path);
      return this.path;
    }
    async abort(): Promise<string | null> {
      this.aborted = true;
      return `${this.path}.partial`;
    }
  }

  it('keeps the broken segment as .partial and goes on in a new one; only failures in a row fail the output', async () => {
    const files: DyingFile[] = [];
    let failuresLeft = 0;
    const out = new SegmentedOutput<Item, DyingFile>({
      path: join(dir, 'cam.mp4'),
      segmentSeconds: 10,
      retention: NO_LIMITS,
      timeMsOf: (item) => item.atMs,
      openFile: (path) => {
        const file: DyingFile = new DyingFile(path, (): boolean => file === files[0] && failuresLeft-- > 0);
        files.push(file);
        return file;
      },
    });
    await out.write({ atMs: T0 });
    failuresLeft = 1; // the first segment's encoder dies
    await out.write({ atMs: T0 + 1000 });
    expect(files).toHaveLength(2);
    expect(files[0]?.aborted).toBe(true);
    await out.write({ atMs: T0 + 2000 });
    expect(await out.close()).toContain('(1 segment)');
    // The new segment was named one second on: it never overwrites the broken one's .partial.
    expect(readdirSync(dir).sort()).toEqual(['cam.20261127T073500Z.mp4.partial', 'cam.20261127T073501Z.mp4']);

    const hopeless = new SegmentedOutput<Item, DyingFile>({
      path: join(dir, 'no-disk.mp4'),
      segmentSeconds: 10,
      retention: NO_LIMITS,
      timeMsOf: (item) => item.atMs,
      openFile: (path) => new DyingFile(path, () => true),
    });
    await expect(hopeless.write({ atMs: T0 })).rejects.toMatchObject({ code: 'VP_FFMPEG_FAILED' });
    await hopeless.abort();
  });
});
