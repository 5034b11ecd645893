import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPipeline } from '../../src/index.js';
import { HAS_RTSP_SERVER, RtspServer, SKIP_RTSP_REASON, freePort, makeFrames } from '../../src/bench/rtsp-server.js';
import { HAS_SHARED, ROOT, VTEST } from '../helpers/shared.js';

/** Debian's chromium (scripts/setup.sh installs it); playwright-core never downloads a browser. */
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
/** Screenshots of the page as the test saw it, kept for a person to look at (gitignored). */
const SHOTS = resolve(ROOT, 'out', 'test-screenshots');

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-live-page-'));
let browser: Browser | undefined;
const servers: RtspServer[] = [];
let frames = '';

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  frames = makeFrames(join(dir, 'frames'), 50, HAS_SHARED ? VTEST : undefined);
  if (HAS_CHROMIUM) browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => s.kill()));
  rmSync(dir, { recursive: true, force: true });
});

const skipReason = !HAS_CHROMIUM ? `no chromium at ${CHROMIUM} (run bash scripts/setup.sh)` : !HAS_RTSP_SERVER ? SKIP_RTSP_REASON : '';
const inCi = process.env['CI'] === 'true';

describe.skipIf(skipReason !== '' && !inCi)(`the live page in a real browser (chromium via playwright-core) on a real RTSP camera${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('shows the camera live with a moving picture, lists its events, and follows it through an outage: backoff, then live again', async () => {
    const port = await freePort();
    const serve = async () => {
      const server = await RtspServer.start({ port, framesDir: frames, fps: 25 });
      servers.push(server);
      return server;
    };
    let camera = await serve();
    const pipeline = await createPipeline({
      source: {
        uri: camera.url,
        stallTimeoutMs: 1000,
        reconnect: { initialDelayMs: 300, maxDelayMs: 1000 },
        capture: { readTimeoutMs: 2500, openTimeoutMs: 2500 },
        track: true,
      },
      model: 'centernet',
      output: { snapshots: join(dir, 'snaps') },
      ui: { port: 0, maxFps: 5 },
    });
    expect(pipeline.uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const done = pipeline.run();
    const page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 800 } });
    try {
      await page.goto(pipeline.uiUrl ?? '');
      const tile = page.locator('.tile').first();
      await expect.poll(() => tile.getAttribute('data-state'), { timeout: 60_000, interval: 200 }).toBe('live');

      // The picture moves: two screenshots of the tile's video differ (the clip's people walk).
      const video = tile.locator('.video img');
      await expect.poll(() => video.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth), { timeout: 30_000, interval: 200 }).toBeGreaterThan(0);
      const first = await video.screenshot({ path: join(SHOTS, 'live-1.png') });
      await expect.poll(async () => (await video.screenshot()).equals(first), { timeout: 30_000, interval: 300 }).toBe(false);
      // And so does the frame counter the tile shows.
      const frameShown = async () => Number(await tile.locator('.stats').getAttribute('data-frame'));
      const frameBefore = await frameShown();
      await expect.poll(frameShown, { timeout: 30_000, interval: 200 }).toBeGreaterThan(frameBefore);

      // An object event appears in the list, with its snapshot.
      const started = page.locator('#events li[data-type="object.start"]').first();
      await expect.poll(() => started.count(), { timeout: 60_000, interval: 200 }).toBeGreaterThan(0);
      await expect.poll(() => started.locator('img').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth), { timeout: 30_000, interval: 200 }).toBeGreaterThan(0);
      await page.screenshot({ path: join(SHOTS, 'page-live.png') });

      // The camera dies: the tile goes to backoff (with its reason and attempt) within its budget…
      await camera.kill();
      await expect.poll(() => tile.getAttribute('data-state'), { timeout: 30_000, interval: 200 }).toBe('backoff');
      await expect.poll(() => tile.locator('.badge').textContent(), { timeout: 5_000, interval: 200 }).toMatch(/^backoff #\d+/);
      await page.screenshot({ path: join(SHOTS, 'page-backoff.png') });
      // …and comes back live when the camera does.
      camera = await serve();
      await expect.poll(() => tile.getAttribute('data-state'), { timeout: 60_000, interval: 200 }).toBe('live');
      const frameAfter = await frameShown();
      await expect.poll(frameShown, { timeout: 30_000, interval: 200 }).toBeGreaterThan(frameAfter);
      await page.screenshot({ path: join(SHOTS, 'page-live-again.png') });
    } finally {
      await page.close();
      pipeline.stop();
      await done;
    }
  }, 300_000);
});
