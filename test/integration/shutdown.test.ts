import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { InferenceHost } from '../../src/inference/inference-host.js';
import { InferenceWorkerHost } from '../../src/inference/worker-host.js';
import { createPipeline, type Prediction } from '../../src/index.js';
import { asOnnxDescriptor } from '../../src/models/convert-model.js';
import { loadModelDescriptor } from '../../src/models/load-descriptor.js';
import type { Sink } from '../../src/sinks/sink.js';
import { ffprobeFrameCount } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const clip = join(dir, 'clip.mp4');
spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-frames:v', '7', '-pix_fmt', 'yuv420p', clip]);

/** A sink that takes every frame and then fails to close, the way a full disk or a vanished folder does. */
class FailsOnClose implements Sink {
  readonly name = 'flaky';
  frames = 0;
  async write(): Promise<void> {
    this.frames++;
  }
  async close(): Promise<string> {
    throw Object.assign(new Error("ENOENT: no such file or directory, rename '/gone/x.partial'"), { code: 'ENOENT' });
  }
  async abort(): Promise<string | null> {
    return null;
  }
}

/** The real worker, with chosen calls sent with wrong dimensions: the engine itself rejects those frames. */
async function workerFailingCalls(failing: ReadonlySet<number>): Promise<InferenceHost> {
  const real = await InferenceWorkerHost.start(await asOnnxDescriptor(loadModelDescriptor('centernet')), 'onnx');
  let call = 0;
  return {
    info: real.info,
    close: () => real.close(),
    run: (slotId, buffer, dims, dtype, giveBack) => real.run(slotId, buffer, failing.has(call++) ? [1, 7, 7, 3] : dims, dtype, giveBack),
  };
}

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; code?: string; frameIndex?: number });

describe('shutdown always completes', () => {
  it('a sink that fails on close: the other outputs are finalised, run() rejects with VP_SINK_FAILED, a for-await over predictions() ends', async () => {
    const video = join(dir, 'sink-fail.mp4');
    const events = join(dir, 'sink-fail.jsonl');
    const flaky = new FailsOnClose();
    const pipeline = await createPipeline({ source: { uri: clip }, model: 'centernet', output: { video, events } }, { inject: { sinks: [flaky] } });
    const iterated: Prediction[] = [];
    const iteration = (async () => {
      for await (const p of pipeline.predictions()) iterated.push(p);
    })();
    const run = pipeline.run();
    await expect(run).rejects.toMatchObject({ code: 'VP_SINK_FAILED', message: expect.stringContaining('flaky: ENOENT') });
    const err = (await run.catch((e: unknown) => e)) as Error & { summary?: { frames: number } };
    expect(err.message).toContain(`Outputs finalised: `);
    expect(err.message).toContain(video);
    expect(err.summary?.frames).toBe(7);
    // The iteration ends (with the run's error) instead of waiting forever.
    await expect(iteration).rejects.toMatchObject({ code: 'VP_SINK_FAILED' });
    expect(iterated).toHaveLength(7);
    expect(flaky.frames).toBe(7);
    expect(ffprobeFrameCount(video)).toBe(7);
    expect(lines(events).filter((l) => l.type === 'prediction')).toHaveLength(7);
    expect(existsSync(`${video}.partial`) || existsSync(`${events}.partial`)).toBe(false);
  });

  it('a frame the model fails on is skipped and reported; later frames run normally', async () => {
    const events = join(dir, 'bad-frames.jsonl');
    const host = await workerFailingCalls(new Set([2, 3]));
    const pipeline = await createPipeline({ source: { uri: clip }, model: 'centernet', output: { events } }, { inject: { host } });
    const summary = await pipeline.run();
    expect(summary.frames).toBe(5);
    expect(summary.drops['clip.mp4']?.['inference-error']).toBe(2);
    const written = lines(events);
    expect(written.filter((l) => l.type === 'frame-error').map((l) => [l.frameIndex, l.code])).toEqual([
      [2, 'VP_INFERENCE_FAILED'],
      [3, 'VP_INFERENCE_FAILED'],
    ]);
    expect(written.filter((l) => l.type === 'prediction').map((l) => l.frameIndex)).toEqual([0, 1, 4, 5, 6]);
    // The drops reach the events file too, as the summary has them.
    expect(written.at(-1)).toMatchObject({ type: 'drops', source: 'clip.mp4', drops: { 'inference-error': 2 } });
  });

  it('close() without run(): the streams end at once, and run() afterwards is refused', async () => {
    const pipeline = await createPipeline({ source: { uri: clip }, model: 'centernet' });
    const iterated: Prediction[] = [];
    const iteration = (async () => {
      for await (const p of pipeline.predictions()) iterated.push(p);
    })();
    await pipeline.close();
    await iteration;
    expect(iterated).toEqual([]);
    await expect(pipeline.run()).rejects.toThrow('after close()');
  });

  it('more failed frames in a row than pipeline.maxFailedFramesInARow fail the run, keeping what was written', async () => {
    const events = join(dir, 'too-many.jsonl');
    const host = await workerFailingCalls(new Set([2, 3, 4]));
    const pipeline = await createPipeline(
      { source: { uri: clip }, model: 'centernet', output: { events }, pipeline: { maxFailedFramesInARow: 2 } },
      { inject: { host } },
    );
    const err = (await pipeline.run().catch((e: unknown) => e)) as Error & { code?: string };
    expect(err.code).toBe('VP_INFERENCE_FAILED');
    expect(err.message).toMatch(/^3 frames in a row failed inference/);
    expect(err.message).toContain(`${events}.partial`);
    expect(lines(`${events}.partial`).filter((l) => l.type === 'prediction').map((l) => l.frameIndex)).toEqual([0, 1]);
  });
});
