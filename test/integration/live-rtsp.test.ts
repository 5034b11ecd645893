import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPipeline, type ObjectEvent, type Prediction } from '../../src/index.js';
import type { SourceStateEvent } from '../../src/sources/source-state.js';
import { ffprobeFrameCount, runCli } from '../helpers/cli.js';
import { HAS_RTSP_SERVER, RtspServer, freePort, makeFrames } from '../../src/bench/rtsp-server.js';
import { HAS_SHARED, VTEST } from '../helpers/shared.js';
import { readSegmentedJsonl, segmentsOf } from '../helpers/segments.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-live-'));
const servers: RtspServer[] = [];
let frames = '';

beforeAll(() => {
  frames = makeFrames(join(dir, 'frames'), 50, HAS_SHARED ? VTEST : undefined);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.kill()));
  rmSync(dir, { recursive: true, force: true });
});

async function serve(port: number, extra: { user?: string; password?: string } = {}): Promise<RtspServer> {
  const server = await RtspServer.start({ port, framesDir: frames, fps: 25, ...extra });
  servers.push(server);
  return server;
}

describe.skipIf(!HAS_RTSP_SERVER && process.env['CI'] !== 'true')('live RTSP source against a real RTSP server on 127.0.0.1', () => {
  it('visionpipe run rtsp://… writes predictions, state events and playable MP4 segments', async () => {
    const server = await serve(await freePort());
    const video = join(dir, 'live.mp4');
    const events = join(dir, 'live.jsonl');
    const r = runCli(['run', server.url, '--max-frames', '12', '--output', video, '--events', events, '--quiet']);
    expect(r.stderr).not.toMatch(/visionpipe: error/);
    expect(r.code).toBe(0);
    // Live outputs are segmented by default (output.segmentSeconds): out/live.<UTC start>.jsonl / .mp4.
    const lines = readSegmentedJsonl<{ type: string; state?: string; frameIndex?: number }>(events);
    const predictions = lines.filter((l) => l.type === 'prediction');
    const states = lines.filter((l) => l.type === 'source-state').map((l) => l.state);
    expect(states.slice(0, 2)).toEqual(['connecting', 'live']);
    expect(states.at(-1)).toBe('stopped');
    expect(predictions.length).toBeGreaterThan(0);
    expect(predictions.length).toBeLessThanOrEqual(12);
    // Frame indexes only grow (gaps are frames dropped for freshness).
    const idx = predictions.map((p) => p.frameIndex ?? -1);
    expect(idx).toEqual([...idx].sort((a, b) => a - b));
    const videos = segmentsOf(video);
    expect(videos.length).toBeGreaterThan(0);
    expect(videos.reduce((n, v) => n + ffprobeFrameCount(v), 0)).toBe(predictions.length);
    expect(r.stdout).toMatch(/dropped\s+rtsp:\/\/127\.0\.0\.1/);
  });

  it('survives a stalled and then killed server: stalled → backoff → live, predictions resume in the same process, the MP4 stays playable', async () => {
    const port = await freePort();
    let server = await serve(port);
    const pipeline = await createPipeline({
      source: {
        uri: server.url,
        stallTimeoutMs: 1000,
        reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
        capture: { readTimeoutMs: 2500, openTimeoutMs: 2500 },
      },
      model: 'centernet',
      output: { video: join(dir, 'reconnect.mp4'), segmentSeconds: null },
    });
    const states: SourceStateEvent[] = [];
    pipeline.states$.subscribe((s) => states.push(s));
    const predictions: Prediction[] = [];
    pipeline.predictions$.subscribe((p) => predictions.push(p));
    const waitState = (state: string, after = 0) =>
      firstValueFrom(pipeline.states$.pipe(filter((s) => s.state === state && states.indexOf(s) >= after)));
    const waitPredictions = (n: number) => firstValueFrom(pipeline.predictions$.pipe(take(n), toArray()));
    const done = pipeline.run();

    await waitPredictions(3);
    server.pause();
    await waitState('stalled');
    const stalledAt = states.length - 1;
    await server.kill();
    await waitState('backoff', stalledAt);
    const before = predictions.length;
    server = await serve(port);
    await waitState('live', stalledAt);
    await waitPredictions(3);
    pipeline.stop();
    const summary = await done;

    const sequence = states.map((s) => s.state);
    const firstLive = sequence.indexOf('live');
    const stalled = sequence.indexOf('stalled');
    const backoff = sequence.indexOf('backoff', stalled);
    const liveAgain = sequence.indexOf('live', backoff);
    expect(sequence[0]).toBe('connecting');
    expect(firstLive).toBeGreaterThan(0);
    expect(stalled).toBeGreaterThan(firstLive);
    expect(backoff).toBeGreaterThan(stalled);
    expect(liveAgain).toBeGreaterThan(backoff);
    expect(sequence.at(-1)).toBe('stopped');
    const backoffEvent = states[backoff];
    expect(backoffEvent?.attempt).toBeGreaterThanOrEqual(1);
    expect(backoffEvent?.retryInMs).toBeGreaterThan(0);
    expect(states.every((s, i) => i === 0 || s.atMs >= (states[i - 1]?.atMs ?? 0))).toBe(true);
    expect(predictions.length).toBeGreaterThan(before);
    expect(summary.frames).toBe(predictions.length);
    // One playable MP4 across the reconnect, with every frame that was run.
    expect(ffprobeFrameCount(join(dir, 'reconnect.mp4'))).toBe(predictions.length);
  });

  it('keeps up with a source faster than the model by dropping the oldest frames, counted by reason', async () => {
    const server = await serve(await freePort());
    // TF.js on WebAssembly (~5 fps here) is far slower than the 25 fps stream.
    const pipeline = await createPipeline({ source: { uri: server.url, maxFrames: 15 }, model: 'centernet', engine: 'tfjs' });
    const summary = await pipeline.run();
    const drops = summary.drops[server.url];
    // 25 fps in, a model that takes ~200 ms a frame: most frames are superseded while waiting.
    expect(drops?.['ring-full']).toBeGreaterThan(0);
    expect(summary.frames + (drops?.stale ?? 0)).toBe(15);
  });

  it('event clips of a live camera: clip.ready for each, an MP4 that plays in real time although the model keeps up with only some frames', async () => {
    const server = await serve(await freePort());
    const clipsDir = join(dir, 'live-clips');
    const pipeline = await createPipeline({
      source: { uri: server.url, maxFrames: 40, track: true },
      model: 'centernet',
      output: { clips: clipsDir, clip: { preSeconds: 1, postSeconds: 1, events: ['object.start'] } },
    });
    const events: ObjectEvent[] = [];
    pipeline.objectEvents$.subscribe((e) => events.push(e));
    await pipeline.run();
    const starts = events.filter((e) => e.type === 'object.start');
    const ready = events.filter((e): e is Extract<ObjectEvent, { type: 'clip.ready' }> => e.type === 'clip.ready');
    expect(starts.length).toBeGreaterThan(0);
    // Every object.start has its clip, announced once (several may share a file).
    expect(ready.map((r) => r.forEventId).sort()).toEqual(starts.map((s) => s.id).sort());
    expect(events.filter((e) => e.type === 'clip.failed')).toEqual([]);
    for (const clip of new Set(ready.map((r) => r.clip))) {
      const r = ready.find((e) => e.clip === clip);
      if (r === undefined) continue;
      // Recorded at 10 fps (the camera's 25 capped by clip.maxFps), whatever rate the model ran at: the clip's
      // length in frames matches the span of capture time it covers (repeats fill the frames the model skipped).
      const spanS = (r.toMs - r.fromMs) / 1000;
      expect(spanS).toBeGreaterThan(0);
      expect(Math.abs(ffprobeFrameCount(clip) / 10 - (spanS + 0.1))).toBeLessThanOrEqual(0.15);
    }
    // Each clip covers the capture time of the frame its event was decided on.
    for (const r of ready) {
      const start = starts.find((s) => s.id === r.forEventId);
      expect(start?.timestampMs).toBeGreaterThanOrEqual(r.fromMs);
      expect(start?.timestampMs).toBeLessThanOrEqual(r.toMs + 100);
    }
  });

  it('never shows credentials from the URL in events, logs, errors or the summary', async () => {
    const port = await freePort();
    await serve(port, { user: 'admin', password: 's3cret-pw' });
    const events = join(dir, 'auth.jsonl');
    const ok = runCli(['run', `rtsp://admin:s3cret-pw@127.0.0.1:${port}/cam`, '--max-frames', '3', '--events', events, '--quiet', '--log-level', 'debug']);
    expect(ok.code).toBe(0);
    const wrong = runCli([
      'run', `rtsp://admin:wrong-pw@127.0.0.1:${port}/cam`, '--max-frames', '3', '--events', join(dir, 'auth2.jsonl'), '--quiet', '--config', writeGiveUpConfig(),
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('VP_SOURCE_LOST');
    for (const text of [ok.stdout, ok.stderr, JSON.stringify(readSegmentedJsonl(events)), wrong.stdout, wrong.stderr]) {
      expect(text).not.toContain('s3cret-pw');
      expect(text).not.toContain('wrong-pw');
    }
    expect(ok.stdout).toContain('rtsp://admin:***@127.0.0.1');
  });
});

function writeGiveUpConfig(): string {
  const file = join(dir, 'give-up.yaml');
  writeFileSync(file, 'source:\n  uri: placeholder\n  reconnect:\n    initialDelayMs: 100\n    maxAttempts: 2\n');
  return file;
}
