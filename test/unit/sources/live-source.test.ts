import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load-config.js';
import { cv, type Mat } from '../../../src/cv.js';
import { backoffDelayMs } from '../../../src/sources/backoff.js';
import { inProcessCapture, type CaptureExit, type CaptureProcess } from '../../../src/sources/capture/capture-process.js';
import type { Capture } from '../../../src/sources/capture/open-video-capture.js';
import { LiveSource } from '../../../src/sources/live-source.js';
import { openSources } from '../../../src/sources/open-source.js';
import { sourceFileName } from '../../../src/sources/source-file-name.js';
import { isLiveUri, redactUri } from '../../../src/sources/redact-uri.js';
import type { SourceStateEvent } from '../../../src/sources/source-state.js';

/** A scripted camera: serves `frames` frames (waiting for `gate` before each when given), then ends the stream. */
class ScriptedCapture implements Capture {
  served = 0;
  constructor(
    private readonly frames: number,
    private readonly gate?: () => Promise<void>,
  ) {}
  async readAsync(): Promise<Mat> {
    await this.gate?.();
    if (this.served >= this.frames) return new cv.Mat();
    this.served++;
    return new cv.Mat(4, 4, cv.CV_8UC3, [this.served, 0, 0]);
  }
  get(): number {
    return 30;
  }
  release(): void {}
}

const sourceConfig = (over: Record<string, unknown> = {}) =>
  parseConfig({ source: { uri: 'rtsp://cam.local/stream', reconnect: { initialDelayMs: 1, maxDelayMs: 4 }, ...over } }).source[0]!;

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 1));
}

describe('LiveSource', () => {
  it('with backpressure latest keeps only the newest unread frame and counts the others as ring-full drops', async () => {
    const capture = new ScriptedCapture(10);
    const states: string[] = [];
    const source = new LiveSource({ ...sourceConfig(), backpressure: 'latest' }, inProcessCapture(() => capture));
    source.states$.subscribe((s) => states.push(s.state));
    source.start();
    // The stream ends after 10 frames; the capture loop reports its final drop count as it ends.
    await until(() => states.includes('backoff'));
    const frame = await source.read();
    expect(frame?.mat.atRaw(0, 0)).toEqual([10, 0, 0]);
    expect(source.drops['ring-full']).toBe(9);
    await source.close();
  });

  it('with backpressure all keeps every frame in order', async () => {
    const capture = new ScriptedCapture(5);
    const states: string[] = [];
    const source = new LiveSource({ ...sourceConfig(), backpressure: 'all' }, inProcessCapture(() => capture));
    source.states$.subscribe((s) => states.push(s.state));
    source.start();
    await until(() => states.includes('backoff'));
    const got: number[] = [];
    for (let i = 0; i < 5; i++) got.push(((await source.read())?.mat.atRaw(0, 0) as unknown as number[] | undefined)?.[0] ?? -1);
    expect(got).toEqual([1, 2, 3, 4, 5]);
    expect(source.drops['ring-full']).toBe(0);
    await source.close();
  });

  it('reconnects after the stream ends and after failed connections, publishing states in order', async () => {
    let opens = 0;
    const states: SourceStateEvent[] = [];
    const source = new LiveSource(
      sourceConfig(),
      inProcessCapture(() => {
        opens++;
        if (opens === 2 || opens === 3) throw new Error('Connection refused');
        return new ScriptedCapture(2);
      }),
      () => 0.5,
    );
    source.states$.subscribe((s) => states.push(s));
    source.start();
    await until(() => opens >= 4 && states.filter((s) => s.state === 'live').length >= 2);
    await source.close();
    expect(states.map((s) => `${s.state}:${s.attempt}`).slice(0, 9)).toEqual([
      'connecting:1',
      'live:0',
      'backoff:1',
      'connecting:2',
      'backoff:2',
      'connecting:3',
      'backoff:3',
      'connecting:4',
      'live:0',
    ]);
    expect(states[2]?.reason).toBe('stream ended');
    expect(states[4]?.reason).toContain('Connection refused');
    expect(states.at(-1)?.state).toBe('stopped');
  });

  it('gives up alone after maxAttempts: state failed, read() ends, failure is VP_SOURCE_LOST, no password leaked', async () => {
    const states: SourceStateEvent[] = [];
    const source = new LiveSource(
      sourceConfig({ uri: 'rtsp://u:hunter2@cam.local/s', reconnect: { initialDelayMs: 1, maxAttempts: 3 } }),
      inProcessCapture((uri) => {
        throw new Error(`cannot open ${uri}`);
      }),
    );
    source.states$.subscribe((s) => states.push(s));
    await expect(source.read()).resolves.toBeNull();
    expect(source.failure).toMatchObject({ code: 'VP_SOURCE_LOST' });
    // failed is final (no `stopped` after it), so Prometheus and the events file keep showing it.
    expect(states.map((s) => s.state).slice(-2)).toEqual(['connecting', 'failed']);
    expect(states.find((s) => s.state === 'failed')?.attempt).toBe(3);
    expect(JSON.stringify(states) + String(source.failure)).not.toContain('hunter2');
    expect(source.info.id).toBe('rtsp://u:***@cam.local/s');
    await source.close();
  });

  it('a capture process that crashes is reported with its signal and restarted with backoff', async () => {
    let spawned = 0;
    const states: SourceStateEvent[] = [];
    const crashing = (): CaptureProcess => {
      spawned++;
      const exits: Array<(e: CaptureExit) => void> = [];
      return {
        pid: undefined,
        send: (msg) => {
          if (msg.type === 'open') setImmediate(() => exits.forEach((l) => l({ code: null, signal: 'SIGSEGV', stderrTail: 'Segmentation fault' })));
        },
        onMessage: () => undefined,
        onExit: (l) => exits.push(l),
        kill: () => undefined,
      };
    };
    const source = new LiveSource(sourceConfig(), crashing, () => 0.5);
    source.states$.subscribe((s) => states.push(s));
    source.start();
    await until(() => spawned >= 3);
    await source.close();
    const backoff = states.find((s) => s.state === 'backoff');
    expect(backoff?.reason).toBe('capture process killed by SIGSEGV (Segmentation fault)');
    expect(states.filter((s) => s.state === 'backoff').map((s) => s.attempt).slice(0, 2)).toEqual([1, 2]);
  });

  it('close() ends a reader that waits for a frame that never comes', async () => {
    let release!: () => void;
    const never = new Promise<void>((r) => (release = r));
    const source = new LiveSource(sourceConfig(), inProcessCapture(() => new ScriptedCapture(1, () => never)));
    const pending = source.read();
    const closed = source.close();
    await expect(pending).resolves.toBeNull();
    release();
    await closed;
  });
});

describe('backoff and URIs', () => {
  it('gives sources whose ids share a file name distinct ones, so they never write the same outputs', async () => {
    const uris = ['rtsp://127.0.0.1:9/cam', 'rtsp://127.0.0.1:9/cam/', 'rtsp://127.0.0.1:9/cam', 'rtsp://127.0.0.1:9/cam#2'];
    const sources = await openSources(parseConfig({ source: uris.map((uri) => ({ uri })) }).source);
    const names = sources.map((s) => sourceFileName(s.info.id));
    expect(new Set(names).size).toBe(4);
    expect(sources.map((s) => s.info.id)).toEqual(['rtsp://127.0.0.1:9/cam', 'rtsp://127.0.0.1:9/cam/#2', 'rtsp://127.0.0.1:9/cam#3', 'rtsp://127.0.0.1:9/cam#2#2']);
    await Promise.all(sources.map((s) => s.close()));
  });

  it('doubles from the initial delay up to the cap, spread by jitter', () => {
    const p = { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.2 };
    expect([1, 2, 3, 4, 5, 9].map((a) => backoffDelayMs(a, p, () => 0.5))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelayMs(1, p, () => 0)).toBe(80);
    expect(backoffDelayMs(1, p, () => 1)).toBe(120);
  });

  it.each([
    ['rtsp://admin:pa55@10.0.0.1:554/h264', 'rtsp://admin:***@10.0.0.1:554/h264'],
    ['failed to open rtsps://u:p@cam/x and http://a:b@h/', 'failed to open rtsps://u:***@cam/x and http://a:***@h/'],
    ['rtsp://cam/no-credentials', 'rtsp://cam/no-credentials'],
  ])('redacts %s', (input, expected) => expect(redactUri(input)).toBe(expected));

  it.each([
    ['rtsp://h/x', true],
    ['https://h/x.m3u8', true],
    ['/dev/video0', true],
    ['0', true],
    ['clip.mp4', false],
    ['/data/rtsp.mp4', false],
  ])('isLiveUri(%s) = %s', (uri, live) => expect(isLiveUri(uri)).toBe(live));
});
