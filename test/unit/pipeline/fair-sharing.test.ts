import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { cv } from '../../../src/cv.js';
import type { InferenceHost } from '../../../src/inference/inference-host.js';
import { createPipeline } from '../../../src/index.js';
import type { Frame } from '../../../src/pipeline/frame.js';
import { noDrops, type FrameSource, type SourceInfo } from '../../../src/sources/frame-source.js';
import type { SourceStateEvent } from '../../../src/sources/source-state.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-fair-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'tiny.onnx'), 'not read: the inference host is injected');
writeFileSync(
  join(dir, 'tiny.yaml'),
  'name: tiny\nformat: onnx\npath: tiny.onnx\nengine: onnx\ntask: classification\ninput: { name: input, sizeWh: [4, 4], layout: nhwc, dtype: float32 }\n' +
    'preprocess: { resize: stretch, pixelFormat: rgb, scale: 1 }\noutput: { name: output, decoder: probabilities }\nlabels: [a, b]\n',
);

/** A camera stand-in: `up` ones always have a fresh frame; a down one never has (it waits until closed). */
class FakeCamera implements FrameSource {
  readonly info: SourceInfo;
  readonly drops = noDrops();
  readonly states$ = new Subject<SourceStateEvent>();
  private index = 0;
  private closed = false;
  private readonly waiting: Array<(ready: boolean) => void> = [];

  constructor(
    id: string,
    private readonly up: boolean,
  ) {
    this.info = { kind: 'live', id, sizeWh: [8, 8], fps: 10, frameCount: null };
  }

  frameReady(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.up) return Promise.resolve(true);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async read(): Promise<Frame | null> {
    if (this.closed || !this.up) return null;
    const now = performance.now();
    return { sourceId: this.info.id, index: this.index++, timestampMs: Date.now(), sizeWh: [8, 8], mat: new cv.Mat(8, 8, cv.CV_8UC3, [1, 2, 3]), readAtMs: now, readMs: 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(false);
    this.states$.complete();
  }
}

/** An inference host that answers every run on the next turn of the event loop with two class scores. */
const instantHost: InferenceHost = {
  info: { backend: 'fake', inputName: 'input', outputName: 'output', inputShape: [1, 4, 4, 3] },
  close: async () => undefined,
  run: (slotId, buffer, _dims, _dtype, giveBack) =>
    new Promise((resolve) =>
      setImmediate(() => {
        giveBack(slotId, buffer);
        resolve({ slotId, buffer, output: Float32Array.of(0.25, 0.75), outputDims: [1, 2], inferMs: 0 });
      }),
    ),
};

describe('fair sharing between live sources (createPipeline with injected cameras and host)', () => {
  it('cameras that are down hold no capacity; cameras with a frame ready take turns', async () => {
    const cameras = [new FakeCamera('down-1', false), new FakeCamera('up-a', true), new FakeCamera('down-2', false), new FakeCamera('up-b', true)];
    const pipeline = await createPipeline(
      { source: cameras.map((c) => ({ uri: `rtsp://127.0.0.1/${c.info.id}` })), model: join(dir, 'tiny.yaml'), pipeline: { ringSize: 2 } },
      { inject: { sources: cameras, host: instantHost } },
    );
    const order: string[] = [];
    pipeline.predictions$.subscribe((p) => {
      order.push(p.sourceId);
      if (order.length === 40) pipeline.stop();
    });
    const summary = await pipeline.run();
    // With two permits, the two down cameras used to hold both while waiting for a frame: nothing ran at all.
    const count = (id: string) => order.filter((s) => s === id).length;
    expect(count('down-1') + count('down-2')).toBe(0);
    expect(Math.abs(count('up-a') - count('up-b'))).toBeLessThanOrEqual(2);
    expect(count('up-a') + count('up-b')).toBe(summary.frames);
    // Strict alternation once both are queued for permits: first come, first served.
    const tail = order.slice(4, 36);
    expect(tail.every((s, i) => i === 0 || s !== tail[i - 1])).toBe(true);
  });
});
