import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filter, firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_RTSP_SERVER, RtspServer, SKIP_RTSP_REASON, freePort, makeFrames } from '../../src/bench/rtsp-server.js';
import { SilentTcpServer } from '../../src/bench/silent-tcp-server.js';
import { createPipeline, type Prediction } from '../../src/index.js';
import { runningChildren } from '../../src/process/children.js';
import { LiveSource } from '../../src/sources/live-source.js';
import { sourceFileName } from '../../src/sources/source-file-name.js';
import type { SourceStateEvent } from '../../src/sources/source-state.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-faults-'));
const servers: RtspServer[] = [];
let silent: SilentTcpServer | undefined;
let frames = '';

beforeAll(() => {
  frames = makeFrames(join(dir, 'frames'), 30);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.kill()));
  await silent?.close();
  rmSync(dir, { recursive: true, force: true });
});

if (!HAS_RTSP_SERVER) console.warn(`[camera-faults] ${SKIP_RTSP_REASON}`);

/** Resolves once `predicate` holds, re-checked on every prediction. */
function until(pipeline: { predictions$: import('rxjs').Observable<Prediction> }, predicate: () => boolean): Promise<unknown> {
  if (predicate()) return Promise.resolve();
  return firstValueFrom(pipeline.predictions$.pipe(filter(() => predicate())));
}

describe.skipIf(!HAS_RTSP_SERVER && process.env['CI'] !== 'true')('camera faults stay with their camera (real RTSP servers on 127.0.0.1)', () => {
  it('healthy cameras keep producing beside a dead port, a camera that never answers, a capture process and an encoder killed with -9 and a camera that gives up; the event loop never stalls', async () => {
    const a = await RtspServer.start({ port: await freePort(), framesDir: frames, fps: 10 });
    const b = await RtspServer.start({ port: await freePort(), framesDir: frames, fps: 10 });
    servers.push(a, b);
    silent = await SilentTcpServer.start();
    const deadUrl = `rtsp://127.0.0.1:${await freePort()}/cam`;
    // Long enough that a synchronous connect on the main thread (the old design) would stall the loop for seconds.
    const capture = { openTimeoutMs: 3000, readTimeoutMs: 3000 };
    const reconnect = { initialDelayMs: 200, maxDelayMs: 1000 };
    const pipeline = await createPipeline({
      source: [
        { uri: a.url, capture, reconnect },
        { uri: b.url, capture, reconnect },
        { uri: deadUrl, capture, reconnect: { ...reconnect, maxAttempts: 3 } },
        { uri: silent.url, capture, reconnect },
      ],
      model: 'centernet',
      output: { video: join(dir, 'out', '{source}.mp4') },
    });
    const [camA, camB, dead, hung] = pipeline.sources;
    if (!(camB instanceof LiveSource) || camA === undefined || dead === undefined || hung === undefined) throw new Error('expected four live sources');
    const states: SourceStateEvent[] = [];
    pipeline.states$.subscribe((s) => states.push(s));
    const count = new Map<string, number>();
    pipeline.predictions$.subscribe((p) => count.set(p.sourceId, (count.get(p.sourceId) ?? 0) + 1));
    const n = (id: string) => count.get(id) ?? 0;
    /** The first state change (already seen, or still to come) that matches. */
    const stateWhere = (match: (s: SourceStateEvent, index: number) => boolean): Promise<SourceStateEvent> => {
      const seen = states.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return firstValueFrom(pipeline.states$.pipe(filter((s) => match(s, states.indexOf(s)))));
    };

    // A timer that should fire every 50 ms: the longest gap between two firings is how long the loop was blocked.
    let lastTickMs = performance.now();
    let maxGapMs = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - lastTickMs);
      lastTickMs = now;
    }, 50);

    const done = pipeline.run();
    try {
      await until(pipeline, () => n(camA.info.id) >= 10 && n(camB.info.id) >= 10);
      // The camera that gives up does so alone: the others go on.
      const failed = await stateWhere((s) => s.source === dead.info.id && s.state === 'failed');
      expect(failed.attempt).toBe(3);

      const pid = camB.capturePid;
      expect(pid).toBeGreaterThan(0);
      const statesBeforeKill = states.length;
      const aBefore = n(camA.info.id);
      process.kill(pid!, 'SIGKILL');
      await stateWhere((s, i) => i >= statesBeforeKill && s.source === camB.info.id && s.state === 'live');
      const bBack = n(camB.info.id);
      await until(pipeline, () => n(camB.info.id) >= bBack + 5 && n(camA.info.id) >= aBefore + 20);

      // Its encoder dies too: the recording goes on in a new segment, the run goes on.
      const encoderOf = (id: string) => runningChildren().find((c) => c.spawnargs.some((a) => a.includes(sourceFileName(id)) && a.endsWith('.partial')));
      const encoder = encoderOf(camB.info.id);
      expect(encoder?.pid).toBeGreaterThan(0);
      process.kill(encoder!.pid!, 'SIGKILL');
      const bAfterEncoder = n(camB.info.id);
      await until(pipeline, () => n(camB.info.id) >= bAfterEncoder + 5 && encoderOf(camB.info.id) !== undefined && encoderOf(camB.info.id) !== encoder);

      const afterKill = states.slice(statesBeforeKill);
      const backoffB = afterKill.find((s) => s.source === camB.info.id && s.state === 'backoff');
      expect(backoffB?.reason).toContain('SIGKILL');
      // Camera A never noticed anything: no state change of its own after it first went live.
      expect(states.filter((s) => s.source === camA.info.id).map((s) => s.state)).toEqual(['connecting', 'live']);
      expect(silent.connections).toBeGreaterThan(0);
      expect(n(hung.info.id)).toBe(0);
      await stateWhere((s) => s.source === hung.info.id && s.state === 'backoff');
    } finally {
      pipeline.stop();
      clearInterval(ticker);
    }
    const summary = await done;
    const videos = readdirSync(join(dir, 'out'));
    // Camera B's broken segment stays as .partial; everything else was finalised.
    expect(videos.filter((f) => f.endsWith('.partial'))).toHaveLength(1);
    expect(videos.filter((f) => f.startsWith(sourceFileName(camA.info.id)) && f.endsWith('.mp4')).length).toBeGreaterThan(0);
    // Nobody blocked the loop: not the connects to the silent camera (3 s each), not the kill, not the reconnects.
    expect(maxGapMs).toBeLessThan(1000);
    expect(Object.keys(summary.drops)).toEqual(pipeline.sources.map((s) => s.info.id));
    // Every source ends in a final state: the one that gave up stays `failed`, the others are `stopped`.
    expect(states.filter((s) => s.state === 'stopped').map((s) => s.source).sort()).toEqual([camA.info.id, camB.info.id, hung.info.id].sort());
    // Every capture process was reaped.
    expect(runningChildren().filter((c) => c.pid !== undefined && c.exitCode === null && c.signalCode === null)).toEqual([]);
  });
});
