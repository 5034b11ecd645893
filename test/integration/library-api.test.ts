import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPipeline, type Prediction } from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-api-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const clip = join(dir, 'clip.mp4');
spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-frames:v', '7', '-pix_fmt', 'yuv420p', clip]);

describe('library API', () => {
  it('emits predictions and annotated frames on RxJS streams and through async iteration, in frame order', async () => {
    const pipeline = await createPipeline({ source: { uri: clip }, model: 'centernet', engine: 'tfjs' });
    const fromRx: number[] = [];
    const frameSizes: string[] = [];
    pipeline.predictions$.subscribe((p) => fromRx.push(p.frameIndex));
    pipeline.frames$.subscribe(({ frame }) => frameSizes.push(`${frame.mat.cols}x${frame.mat.rows}`));
    const done = pipeline.run();
    const iterated: Prediction[] = [];
    for await (const p of pipeline.predictions()) iterated.push(p);
    const summary = await done;
    expect(fromRx).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(iterated.map((p) => p.frameIndex)).toEqual(fromRx);
    expect(frameSizes).toEqual(Array(7).fill('160x120'));
    expect(iterated[0]?.result.task).toBe('detection');
    expect(summary.frames).toBe(7);
    expect(summary.stoppedEarly).toBe(false);
    expect(summary.engine).toMatch(/^tfjs/);
  });

  it('stop() ends the run early with outputs closed normally', async () => {
    const pipeline = await createPipeline({ source: { uri: clip }, model: 'centernet', output: { events: join(dir, 'stopped.jsonl') } });
    pipeline.predictions$.subscribe((p) => {
      if (p.frameIndex === 1) pipeline.stop();
    });
    const summary = await pipeline.run();
    expect(summary.stoppedEarly).toBe(true);
    expect(summary.frames).toBeLessThan(7);
    expect(summary.outputs['events']).toBe(join(dir, 'stopped.jsonl'));
  });

  it('serves Prometheus metrics from createPipeline until the run ends', async () => {
    const pipeline = await createPipeline({ source: { uri: clip }, model: 'centernet', metrics: { port: 0 } });
    expect(pipeline.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const url = pipeline.metricsUrl!;
    // Scraped before the run (deterministic: nothing runs yet); the counting is unit-tested with fakes.
    const before = await (await fetch(url)).text();
    expect(before).toMatch(/^visionpipe_source_state\{source="clip\.mp4",state="live"\} 1$/m);
    expect(before).toMatch(/^visionpipe_frames_dropped_total\{source="clip\.mp4",reason="ring-full"\} 0$/m);
    expect(before).toMatch(/^visionpipe_process_nodejs_eventloop_lag_seconds /m);
    const summary = await pipeline.run();
    expect(summary.frames).toBe(7);
    await expect(fetch(url)).rejects.toThrow();
  });

  it('a metrics port already in use is one clear error, and nothing stays open', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(createPipeline({ source: { uri: clip }, model: 'centernet', metrics: { port } })).rejects.toMatchObject({ code: 'VP_CONFIG_INVALID', message: expect.stringContaining('EADDRINUSE') });
    } finally {
      blocker.close();
    }
  });

  it('rejects a bad config before opening anything', async () => {
    await expect(createPipeline({ source: { uri: clip }, pipeline: { ringSize: 0 } })).rejects.toMatchObject({ code: 'VP_CONFIG_INVALID' });
  });
});
