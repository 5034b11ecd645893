import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cv } from '../../../src/cv.js';
import type { InferenceHost } from '../../../src/inference/inference-host.js';
import { createPipeline, type ObjectEvent } from '../../../src/index.js';
import type { Frame } from '../../../src/pipeline/frame.js';
import { noDrops, type FrameSource, type SourceInfo } from '../../../src/sources/frame-source.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-objects-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const W = 64;
const H = 48;
const FRAMES = 40;
// A detection model whose input is the frame's own size (stretch = identity), so the scripted boxes are frame pixels.
writeFileSync(join(dir, 'tiny.onnx'), 'not read: the inference host is injected');
writeFileSync(
  join(dir, 'tiny-detector.yaml'),
  `name: tiny-detector\nformat: onnx\npath: tiny.onnx\nengine: onnx\ntask: detection\ninput: { name: input, sizeWh: [${W}, ${H}], layout: nhwc, dtype: float32 }\n` +
    'preprocess: { resize: stretch, pixelFormat: rgb, scale: 1 }\noutput: { name: output, decoder: boxes-xyxy-score-class }\nlabels: [person, car]\n',
);

/** A file-like source whose frame i is filled with the value i, so the fake model knows which frame it sees. */
class NumberedFrames implements FrameSource {
  readonly info: SourceInfo;
  readonly drops = noDrops();
  private index = 0;

  constructor(
    private readonly id = 'walk',
    private readonly count = FRAMES,
    private readonly timeMsOf = (index: number) => index * 100,
  ) {
    this.info = { kind: 'file', id, sizeWh: [W, H], fps: 10, frameCount: count };
  }

  async read(): Promise<Frame | null> {
    if (this.index >= this.count) return null;
    const index = this.index++;
    const mat = new cv.Mat(H, W, cv.CV_8UC3, [index, index, index]);
    return { sourceId: this.id, index, timestampMs: this.timeMsOf(index), sizeWh: [W, H], mat, readAtMs: performance.now(), readMs: 0 };
  }

  async close(): Promise<void> {}
}

/**
 * The model stand-in: one person (6×12 px) walking down 1 px per frame from feet at y=10, and a parked car the
 * config does not track. Rows are x1, y1, x2, y2, score, class.
 */
const scriptedDetector: InferenceHost = {
  info: { backend: 'scripted', inputName: 'input', outputName: 'output', inputShape: [1, H, W, 3] },
  close: async () => undefined,
  run: (slotId, buffer, _dims, _dtype, giveBack) =>
    new Promise((resolve) =>
      setImmediate(() => {
        const frame = new Float32Array(buffer)[0] ?? 0;
        const foot = 10 + frame;
        const output = Float32Array.of(29, foot - 12, 35, foot, 0.9, 0, 50, 30, 62, 40, 0.8, 1);
        giveBack(slotId, buffer);
        resolve({ slotId, buffer, output, outputDims: [1, 2, 6], inferMs: 0 });
      }),
    ),
};

const geometry = {
  track: { classes: ['person'] },
  zones: [{ name: 'middle', polygon: [[0, 20], [64, 20], [64, 30], [0, 30]] as [number, number][] }],
  lines: [{ name: 'gate', from: [0, 35] as [number, number], to: [64, 35] as [number, number] }],
};

async function runWalk(name: string, extra: { snapshots?: string; frameEvents?: boolean } = {}) {
  const events = join(dir, `${name}.jsonl`);
  const pipeline = await createPipeline(
    {
      source: { uri: 'walk.mp4', ...geometry },
      model: join(dir, 'tiny-detector.yaml'),
      output: { events, snapshots: extra.snapshots ?? null, frameEvents: extra.frameEvents ?? true },
    },
    { inject: { sources: [new NumberedFrames()], host: scriptedDetector } },
  );
  const seen: ObjectEvent[] = [];
  const snapshotsOnDisk: boolean[] = [];
  pipeline.objectEvents$.subscribe((e) => {
    seen.push(e);
    if (e.snapshot !== undefined) snapshotsOnDisk.push(existsSync(e.snapshot));
  });
  const iterated: ObjectEvent[] = [];
  const iterating = (async () => {
    for await (const e of pipeline.objectEvents()) iterated.push(e);
  })();
  const summary = await pipeline.run();
  await iterating;
  const lines = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { pipeline, summary, seen, iterated, lines, snapshotsOnDisk };
}

describe('object events through createPipeline (injected source and scripted detector)', () => {
  it('one walker: start, zone enter / exit, line crossing, end; on objectEvents$, the iterator, and the events file', async () => {
    const { pipeline, summary, seen, iterated, lines } = await runWalk('walk');
    expect(seen.filter((e) => e.type !== 'object.update').map((e) => e.type)).toEqual([
      'object.start',
      'zone.enter',
      'zone.exit',
      'line.cross',
      'object.end',
    ]);
    // The car is not tracked (track.classes): every event is the walker's.
    expect(new Set(seen.map((e) => e.trackId)).size).toBe(1);
    expect(seen.every((e) => e.schemaVersion === 1 && e.source === 'walk' && e.label === 'person')).toBe(true);
    // Ids: unique, prefixed with the run id, in emission order.
    expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
    expect(seen.every((e) => e.id.startsWith(`${pipeline.runId}-`))).toBe(true);
    const cross = seen.find((e) => e.type === 'line.cross');
    expect(cross).toMatchObject({ line: 'gate', direction: 'in', counts: { in: 1, out: 0 } });
    // Still in view when the file ends: the end says so.
    expect(seen.at(-1)).toMatchObject({ type: 'object.end', reason: 'end-of-input' });
    expect(iterated).toEqual(seen);
    // The file has the same events, in order, between the per-frame prediction lines (which carry the tracks).
    const objectLines = lines.filter((l) => l['schemaVersion'] === 1);
    expect(objectLines).toEqual(JSON.parse(JSON.stringify(seen)));
    const predictions = lines.filter((l) => l['type'] === 'prediction');
    expect(predictions).toHaveLength(FRAMES);
    expect(predictions.at(-1)?.['tracks']).toEqual([expect.objectContaining({ trackId: seen[0]?.trackId, label: 'person', state: 'confirmed' })]);
    // The untracked car still shows in the detections (tracking changes what is followed, not what is detected).
    expect((predictions.at(-1)?.['detections'] as unknown[]).length).toBe(2);
    expect(summary.objectEvents).toMatchObject({ 'object.start': 1, 'line.cross': 1, 'object.end': 1 });
    expect(summary.lineCounts).toEqual([{ source: 'walk', line: 'gate', in: 1, out: 0, byClass: { person: { in: 1, out: 0 } } }]);
  });

  it('output.frameEvents false: object events only, no prediction lines', async () => {
    const { seen, lines } = await runWalk('objects-only', { frameEvents: false });
    expect(lines.some((l) => l['type'] === 'prediction')).toBe(false);
    expect(lines).toHaveLength(seen.length);
  });

  it('snapshots: a JPEG per object, on disk before the event that names it goes out', async () => {
    const snapshots = join(dir, 'snaps');
    const { seen, snapshotsOnDisk } = await runWalk('snaps', { snapshots });
    const named = seen.filter((e) => e.snapshot !== undefined);
    expect(named.map((e) => e.type)).toEqual(['object.start', 'zone.enter', 'line.cross', 'object.end']);
    expect(snapshotsOnDisk.every(Boolean)).toBe(true);
    for (const e of named) {
      const jpeg = readFileSync(e.snapshot ?? '');
      expect([jpeg[0], jpeg[1]]).toEqual([0xff, 0xd8]);
      expect(e.snapshot).toContain(join(snapshots, 'walk'));
    }
    expect(seen.filter((e) => e.type === 'object.update').every((e) => e.snapshot === undefined)).toBe(true);
  });

  it("a source that ends first has its objects ended at once, not when the run ends", async () => {
    const short = new NumberedFrames('short', 20);
    const long = new NumberedFrames('long', FRAMES);
    const pipeline = await createPipeline(
      { source: [{ uri: 'short.mp4', ...geometry }, { uri: 'long.mp4', ...geometry }], model: join(dir, 'tiny-detector.yaml') },
      { inject: { sources: [short, long], host: scriptedDetector } },
    );
    const log: string[] = [];
    pipeline.objectEvents$.subscribe((e) => log.push(`${e.source} ${e.type}`));
    pipeline.predictions$.subscribe((p) => log.push(`${p.sourceId} frame ${p.frameIndex}`));
    await pipeline.run();
    expect(log.filter((l) => l === 'short object.end')).toHaveLength(1);
    expect(log.indexOf('short object.end')).toBeLessThan(log.indexOf(`long frame ${FRAMES - 1}`));
    expect(log.indexOf('short object.end')).toBeGreaterThan(log.indexOf('short frame 19'));
  });

  it('frame times that step back (a camera clock corrected by NTP) do not stop the run', async () => {
    const stepped = new NumberedFrames('walk', FRAMES, (i) => 1_800_000_000_000 + i * 100 - (i >= 15 ? 60_000 : 0));
    const pipeline = await createPipeline(
      { source: { uri: 'walk.mp4', ...geometry }, model: join(dir, 'tiny-detector.yaml') },
      { inject: { sources: [stepped], host: scriptedDetector } },
    );
    const types: string[] = [];
    pipeline.objectEvents$.subscribe((e) => types.push(e.type));
    const summary = await pipeline.run();
    expect(summary.frames).toBe(FRAMES);
    expect(types.filter((t) => t !== 'object.update')).toEqual(['object.start', 'zone.enter', 'zone.exit', 'line.cross', 'object.end']);
  });

  it('delivery.webhooks: every object event is posted, in order, before run() resolves', async () => {
    const posted: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        posted.push((JSON.parse(body) as { id: string }).id);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const pipeline = await createPipeline(
        {
          source: { uri: 'walk.mp4', ...geometry },
          model: join(dir, 'tiny-detector.yaml'),
          delivery: { webhooks: [{ url, types: ['object.start', 'line.cross', 'object.end'] }], outbox: { dir: join(dir, 'outbox-hooks') } },
        },
        { inject: { sources: [new NumberedFrames()], host: scriptedDetector } },
      );
      const wanted: string[] = [];
      pipeline.objectEvents$.subscribe((e) => {
        if (['object.start', 'line.cross', 'object.end'].includes(e.type)) wanted.push(e.id);
      });
      const summary = await pipeline.run();
      expect(wanted).toHaveLength(3);
      expect(posted).toEqual(wanted);
      expect(summary.outputs['delivery']).toContain('all delivered');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a snapshot that cannot be written costs the snapshot, never the event or the run', async () => {
    const snapshots = join(dir, 'blocked');
    mkdirSync(snapshots);
    // A file where the source's snapshot folder would go: every write fails.
    writeFileSync(join(snapshots, 'walk'), 'in the way');
    const { seen, summary } = await runWalk('blocked', { snapshots });
    expect(seen.map((e) => e.type)).toContain('object.end');
    expect(seen.every((e) => e.snapshot === undefined)).toBe(true);
    expect(summary.frames).toBe(FRAMES);
  });
});
