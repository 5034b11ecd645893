import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { cv } from '../../../src/cv.js';
import { silentLogger } from '../../../src/log.js';
import type { AnnotatedFrame } from '../../../src/pipeline/frame.js';
import { noDrops, type FrameSource } from '../../../src/sources/frame-source.js';
import { LiveView, MJPEG_BOUNDARY } from '../../../src/ui/live-view.js';
import { UiServer } from '../../../src/ui/ui-server.js';

// A real fastify server on 127.0.0.1 and a free port, fed by the real LiveView with frames made here.
const dir = mkdtempSync(join(tmpdir(), 'visionpipe-ui-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOKEN = 'a-token-of-32-characters-0123456';
const source = (id: string, kind: 'file' | 'live' = 'live'): FrameSource =>
  ({ info: { kind, id, sizeWh: [320, 240], fps: 25, frameCount: null }, drops: noDrops(), read: async () => null, close: async () => undefined }) as FrameSource;

async function serve(options: { token?: string | null; sources?: FrameSource[]; nowMs?: () => number } = {}) {
  const sources = options.sources ?? [source('rtsp://u:***@cam/1')];
  const view = new LiveView(sources, { maxFps: 1000, quality: 80, maxEvents: 100, ...(options.nowMs ? { nowMs: options.nowMs } : {}) });
  const server = await UiServer.start(view, { host: '127.0.0.1', port: 0, token: options.token ?? null, fileRoots: [join(dir, 'snaps')], log: silentLogger });
  return { view, server, base: server.url.replace(/\/$/, '') };
}

/** A 320×240 frame of noise (JPEGs of realistic size), its index drawn in. */
function frame(sourceId: string, index: number): AnnotatedFrame {
  const mat = new cv.Mat(randomBytes(240 * 320 * 3), 240, 320, cv.CV_8UC3);
  const prediction = { sourceId, frameIndex: index, timestampMs: index * 40, sizeWh: [320, 240], result: { task: 'detection', detections: [] }, latencyMs: 12, timingsMs: {} };
  return { frame: { sourceId, index, timestampMs: index * 40, sizeWh: [320, 240], mat, readAtMs: 0, readMs: 0 }, prediction } as unknown as AnnotatedFrame;
}

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await fetch(url, { headers });
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()), headers: r.headers };
}

describe('the live page server (real fastify on 127.0.0.1)', () => {
  it('with a token, every endpoint and stream refuses a request without it; bearer, ?token= and its cookie pass', async () => {
    const { server, base } = await serve({ token: TOKEN });
    try {
      for (const path of ['/', '/api/sources', '/api/events', '/api/events/stream', '/api/sources/rtsp_u_cam_1/stream.mjpg', '/api/sources/rtsp_u_cam_1/latest.jpg', '/healthz', '/readyz', '/api/events/x/clip.mp4']) {
        expect((await get(base + path)).status, path).toBe(401);
        expect((await get(`${base}${path}${path.includes('?') ? '&' : '?'}token=wrong-token-of-32-characters-01`)).status, path).toBe(401);
      }
      expect((await get(`${base}/api/sources`, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
      const viaQuery = await get(`${base}/?token=${TOKEN}`);
      expect(viaQuery.status).toBe(200);
      const cookie = viaQuery.headers.get('set-cookie') ?? '';
      expect(cookie).toMatch(/^vp_token=.+; HttpOnly; SameSite=Strict/);
      expect((await get(`${base}/api/sources`, { cookie: cookie.split(';')[0] ?? '' })).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('without a token it answers only to loopback Host names (no DNS rebinding), and a token hidden in junk is refused cleanly', async () => {
    const { server, base } = await serve();
    try {
      const port = new URL(base).port;
      const ask = (host: string) =>
        new Promise<string>((resolve) => {
          const socket = connect(Number(port), '127.0.0.1', () => socket.write(`GET /api/sources HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
          let text = '';
          socket.on('data', (d) => (text += d.toString()));
          socket.on('close', () => resolve(text.split('\r\n')[0] ?? ''));
        });
      expect(await ask(`127.0.0.1:${port}`)).toMatch(/ 200 /);
      expect(await ask(`localhost:${port}`)).toMatch(/ 200 /);
      expect(await ask(`rebind.attacker.example:${port}`)).toMatch(/ 421 /);
      expect(await ask('192.168.1.5')).toMatch(/ 421 /);
      expect((await get(`${base}/api/events?since=1e309`)).status).toBe(400);
      expect((await get(`${base}/api/events?since=abc`)).status).toBe(400);
    } finally {
      await server.close();
    }
    const withToken = await serve({ token: TOKEN });
    try {
      expect((await get(`${withToken.base}/api/sources`, { cookie: 'vp_token=%E0%A4%A' })).status).toBe(401);
    } finally {
      await withToken.server.close();
    }
  });

  it('refuses to bind beyond loopback without a token', async () => {
    const view = new LiveView([source('cam')], { maxFps: 5, quality: 70, maxEvents: 10 });
    await expect(UiServer.start(view, { host: '0.0.0.0', port: 0, token: null, fileRoots: [], log: silentLogger })).rejects.toThrow(/VP_CONFIG_INVALID|no token is set/);
  });

  it('serves only files that events name and that lie inside the snapshot / clip folders: no path traversal', async () => {
    const { view, server, base } = await serve();
    try {
      const inside = join(dir, 'snaps', 'cam', 'ok.jpg');
      rmSync(join(dir, 'snaps'), { recursive: true, force: true });
      mkdirSync(join(dir, 'snaps', 'cam'), { recursive: true });
      writeFileSync(inside, 'jpeg bytes');
      writeFileSync(join(dir, 'secret.txt'), 'TOP-SECRET-CONTENT');
      view.writeEvent({ id: 'good', type: 'object.start', snapshot: inside });
      view.writeEvent({ id: 'outside', type: 'object.start', snapshot: join(dir, 'secret.txt') });
      view.writeEvent({ id: 'dotdot', type: 'object.start', snapshot: join(dir, 'snaps', '..', 'secret.txt') });
      expect((await get(`${base}/api/events/good/snapshot.jpg`)).body.toString()).toBe('jpeg bytes');
      for (const path of [
        '/api/events/outside/snapshot.jpg',
        '/api/events/dotdot/snapshot.jpg',
        '/api/events/good/..%2F..%2Fsecret.txt',
        '/api/events/..%2F..%2Fsecret.txt/snapshot.jpg',
        '/api/events/%2e%2e/snapshot.jpg',
        '/api/events/good/clip.mp4', // the event names no clip
      ]) {
        const r = await get(base + path);
        expect(r.status, path).toBe(404);
        expect(r.body.toString()).not.toContain('TOP-SECRET');
      }
      // A symbolic link inside the folder that points outside it is outside.
      symlinkSync(join(dir, 'secret.txt'), join(dir, 'snaps', 'cam', 'link.jpg'));
      view.writeEvent({ id: 'link', type: 'object.start', snapshot: join(dir, 'snaps', 'cam', 'link.jpg') });
      expect((await get(`${base}/api/events/link/snapshot.jpg`)).status).toBe(404);
      // Clips can be sought in: byte ranges.
      const clip = join(dir, 'snaps', 'cam', 'c.mp4');
      writeFileSync(clip, Buffer.from('0123456789'));
      view.writeEvent({ id: 'clip', type: 'clip.ready', clip });
      const part = await get(`${base}/api/events/clip/clip.mp4`, { range: 'bytes=2-5' });
      expect([part.status, part.body.toString(), part.headers.get('content-range')]).toEqual([206, '2345', 'bytes 2-5/10']);
      expect((await get(`${base}/api/events/clip/clip.mp4`, { range: 'bytes=-3' })).body.toString()).toBe('789');
      expect((await get(`${base}/api/events/clip/clip.mp4`, { range: 'bytes=20-' })).status).toBe(416);
      // Raw, unnormalised paths too (fetch would normalise ../).
      const raw = await new Promise<string>((resolve) => {
        const socket = connect(Number(new URL(base).port), '127.0.0.1', () => socket.write('GET /api/events/../../secret.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
        let text = '';
        socket.on('data', (d) => (text += d.toString()));
        socket.on('close', () => resolve(text));
      });
      expect(raw).toMatch(/^HTTP\/1\.1 404/);
      expect(raw).not.toContain('TOP-SECRET');
    } finally {
      await server.close();
    }
  });

  it('a viewer that never reads gets fewer frames and costs at most one waiting JPEG; a reading viewer gets them all', async () => {
    let now = 0;
    const { view, server, base } = await serve({ nowMs: () => now });
    const id = 'rtsp://u:***@cam/1';
    try {
      // The stalled viewer: a raw socket that sends the request and never reads a byte.
      const stalled = connect(Number(new URL(base).port), '127.0.0.1', () => stalled.write('GET /api/sources/rtsp_u_cam_1/stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
      stalled.pause();
      await vi.waitFor(() => expect(view.sources()[0]?.viewers).toBe(1), { timeout: 10_000, interval: 20 });
      // The reading viewer (second in viewerStats()): counts JPEG parts.
      let parts = 0;
      const reading = request(`${base}/api/sources/rtsp_u_cam_1/stream.mjpg`, (res) => res.on('data', (chunk: Buffer) => (parts += chunk.toString('latin1').split(`--${MJPEG_BOUNDARY}`).length - 1)));
      reading.on('error', () => undefined); // destroyed at the end
      reading.end();
      await vi.waitFor(() => expect(view.sources()[0]?.viewers).toBe(2), { timeout: 10_000, interval: 20 });
      const frames = 400;
      let biggest = 0;
      for (let i = 0; i < frames; i++) {
        now += 100;
        const f = frame(id, i);
        await view.write(f); // resolves at once: the pipeline never waits for a viewer
        f.frame.mat.release();
        // One encode at a time; and the reading viewer reads each frame before the next comes (a browser that keeps up).
        await vi.waitFor(
          () => {
            const [, readingStats] = view.viewerStats();
            expect(readingStats?.sent).toBe(i + 1);
            expect(readingStats?.bufferedBytes).toBe(0);
          },
          { timeout: 10_000, interval: 2 },
        );
        for (const v of view.viewerStats()) biggest = Math.max(biggest, v.bufferedBytes);
      }
      const [stalledStats, readingStats] = view.viewerStats();
      // The stalled socket took what the kernel buffers hold, then nothing: the rest were skipped, not queued.
      expect(stalledStats?.sent).toBeLessThan(frames);
      expect((stalledStats?.sent ?? 0) + (stalledStats?.skipped ?? 0)).toBeGreaterThanOrEqual(frames - 1);
      expect(readingStats).toMatchObject({ sent: frames, skipped: 0 });
      const jpegBytes = (await view.latestJpeg('rtsp_u_cam_1', 0))?.jpeg.length ?? 0;
      expect(jpegBytes).toBeGreaterThan(50_000);
      expect(biggest).toBeLessThanOrEqual(3 * jpegBytes);
      await vi.waitFor(() => expect(parts).toBe(frames), { timeout: 10_000, interval: 20 });
      stalled.destroy();
      reading.destroy();
    } finally {
      await server.close();
    }
  });

  it('the JSON API: sources with state and numbers (no credentials), events since a sequence number, health and readiness', async () => {
    const id = 'rtsp://u:***@cam/1';
    const { view, server, base } = await serve();
    try {
      view.writeEvent({ type: 'source-state', source: id, state: 'live', attempt: 0, atMs: 1 });
      const f = frame(id, 7);
      await view.write(f);
      f.frame.mat.release();
      const sources = JSON.parse((await get(`${base}/api/sources`)).body.toString()) as { sources: Record<string, unknown>[] };
      expect(sources.sources).toEqual([expect.objectContaining({ id, name: 'rtsp_u_cam_1', kind: 'live', state: 'live', frames: 1, lastFrameIndex: 7, latencyMs: 12 })]);
      // latest.jpg: the next frame encoded (a request keeps encoding on for the page's next one); ?after=N answers at
      // once with a newer frame when there is one, and says which it is.
      const next = get(`${base}/api/sources/rtsp_u_cam_1/latest.jpg`);
      await vi.waitFor(async () => {
        const f2 = frame(id, 8);
        await view.write(f2);
        f2.frame.mat.release();
        expect(view.sources()[0]?.page.jpegs).toBeGreaterThan(0);
      }, { timeout: 10_000, interval: 50 });
      const first = await next;
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toBe('image/jpeg');
      const shown = Number(first.headers.get('x-frame-index'));
      expect(shown).toBe(8);
      const again = await get(`${base}/api/sources/rtsp_u_cam_1/latest.jpg?after=${shown - 1}`);
      expect(again.headers.get('x-frame-index')).toBe(String(shown));
      view.writeEvent({ id: 'e2', type: 'zone.enter', source: id });
      const since1 = JSON.parse((await get(`${base}/api/events?since=1`)).body.toString()) as { events: { seq: number }[] };
      expect(since1.events.map((e) => e.seq)).toEqual([2]);
      expect((await get(`${base}/healthz`)).status).toBe(200);
      expect((await get(`${base}/readyz`)).status).toBe(200);
      view.writeEvent({ type: 'source-state', source: id, state: 'failed', attempt: 5, reason: 'connection refused', atMs: 2 });
      const ready = await get(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body.toString())).toEqual({ ready: false, failed: ['rtsp_u_cam_1'] });
      const page = (await get(`${base}/`)).body.toString();
      expect(page).toContain('<title>visionpipe</title>');
    } finally {
      await server.close();
    }
  });
});
