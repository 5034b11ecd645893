import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_RTSP_SERVER, RtspServer, SKIP_RTSP_REASON, freePort, makeFrames } from '../../src/bench/rtsp-server.js';
import { SilentTcpServer } from '../../src/bench/silent-tcp-server.js';
import { ffprobeFrameCount } from '../helpers/cli.js';
import { HAS_SCRIPT, SKIP_SCRIPT_REASON, processesMatching, runCliInGroup, runCliInPty, waitUntil } from '../helpers/pty.js';

/**
 * Ctrl-C in a real terminal on a live run with a healthy camera and one that never answers: the capture processes
 * live in their own process groups, so the terminal's SIGINT reaches visionpipe only, which stops them in order.
 */
const dir = mkdtempSync(join(tmpdir(), 'visionpipe-signals-live-'));
let camera: RtspServer | undefined;
let silent: SilentTcpServer | undefined;

beforeAll(async () => {
  if (!HAS_RTSP_SERVER || !HAS_SCRIPT) return;
  camera = await RtspServer.start({ port: await freePort(), framesDir: makeFrames(join(dir, 'frames'), 30), fps: 10 });
  silent = await SilentTcpServer.start();
});
afterAll(async () => {
  await camera?.kill();
  await silent?.close();
  rmSync(dir, { recursive: true, force: true });
});

if (!HAS_RTSP_SERVER) console.warn(`[signals-live] ${SKIP_RTSP_REASON}`);
if (!HAS_SCRIPT) console.warn(`[signals-live] ${SKIP_SCRIPT_REASON}`);

/** Pids of `parent`'s children whose command line contains `needle`. */
function childrenOf(parent: number, needle: string): number[] {
  const r = spawnSync('pgrep', ['-P', String(parent), '-f', '--', needle], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
}

const predictionsIn = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"type":"prediction"')).length;

describe.skipIf(!HAS_RTSP_SERVER || !HAS_SCRIPT)('signals on a live run (real RTSP camera, a camera that never answers)', () => {
  it('Ctrl-C: exit 130, summary, every segment finalised and playable, no capture process or ffmpeg left', { timeout: 300_000 }, async () => {
    const out = join(dir, 'out');
    const cli = runCliInPty(['run', camera!.url, silent!.url, '-o', join(out, '{source}.mp4'), '-e', join(out, 'all.jsonl'), '-m', 'centernet', '--quiet']);
    const partialEvents = () => (existsSync(out) ? readdirSync(out).filter((f) => /^all\.\d{8}T\d{6}Z\.jsonl\.partial$/.test(f)) : []);
    await waitUntil(() => partialEvents().some((f) => predictionsIn(join(out, f)) >= 5), cli, '5 predictions in the events segment');
    const cliPid = childrenOf(cli.child.pid ?? 0, 'main.ts')[0] ?? 0;
    const captures = childrenOf(cliPid, 'capture-child');
    // One per camera: the healthy one streaming, the silent one connecting.
    expect(captures).toHaveLength(2);
    (cli as { ctrlC(): void }).ctrlC();
    const exit = await cli.exited;
    expect(exit.code, cli.output()).toBe(130);
    expect(cli.output()).toMatch(/visionpipe: \d+ frames in .* \(stopped early\)/);
    const files = readdirSync(out);
    expect(files.filter((f) => f.endsWith('.partial'))).toEqual([]);
    const videos = files.filter((f) => f.endsWith('.mp4'));
    const events = files.filter((f) => f.endsWith('.jsonl'));
    expect(videos.length).toBeGreaterThan(0);
    const frames = videos.reduce((n, v) => n + ffprobeFrameCount(join(out, v)), 0);
    expect(frames).toBe(events.reduce((n, e) => n + predictionsIn(join(out, e)), 0));
    // Nothing outlived the run: not the capture processes, not ffmpeg (its command line names the output folder).
    const alive = spawnSync('pgrep', ['-f', 'capture-child'], { encoding: 'utf8' }).stdout.split('\n').map(Number);
    expect(captures.filter((pid) => alive.includes(pid))).toEqual([]);
    expect(processesMatching(out)).toEqual([]);
  });
});

describe.skipIf(!HAS_RTSP_SERVER)('a capture process never outlives visionpipe', () => {
  it('visionpipe killed with -9 while a camera is still connecting: its capture process ends within seconds, not after the open timeout', { timeout: 120_000 }, async () => {
    const silentCam = await SilentTcpServer.start();
    const config = join(dir, 'slow-open.yaml');
    // A 60 s open: the capture process's main thread is blocked in VideoCapture's constructor all along.
    writeFileSync(config, 'source:\n  uri: placeholder\n  capture:\n    openTimeoutMs: 60000\n    readTimeoutMs: 60000\n');
    const cli = runCliInGroup(['run', silentCam.url, '-c', config, '-m', 'centernet', '--quiet']);
    try {
      await waitUntil(() => silentCam.connections > 0, cli, 'the capture process connecting');
      const cliPid = cli.child.pid ?? 0;
      const [capture] = childrenOf(cliPid, 'capture-child');
      expect(capture).toBeGreaterThan(0);
      process.kill(cliPid, 'SIGKILL');
      await cli.exited;
      const gone = async () => {
        for (let i = 0; i < 100; i++) {
          if (!spawnSync('pgrep', ['-f', 'capture-child'], { encoding: 'utf8' }).stdout.split('\n').map(Number).includes(capture!)) return true;
          await new Promise((r) => setTimeout(r, 100));
        }
        return false;
      };
      expect(await gone()).toBe(true);
    } finally {
      await silentCam.close();
    }
  });
});
