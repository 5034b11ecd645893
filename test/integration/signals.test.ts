import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ffprobeFrameCount } from '../helpers/cli.js';
import { HAS_SCRIPT, SKIP_SCRIPT_REASON, lineCount, processesMatching, runCliInGroup, runCliInPty, waitUntil, type Exit, type RunningCli } from '../helpers/pty.js';
import { HAS_SHARED } from '../helpers/shared.js';

/**
 * Signals as they really arrive: a terminal's Ctrl-C goes to the whole foreground process group (ffmpeg too,
 * unless it runs in a group of its own), and systemd / Docker / a shell's `kill -TERM -pgid` signal the group.
 * Each run is signalled once it has written 5 prediction lines, never after a fixed sleep.
 */

// The tiny classifier keeps the run light; the default detector is the fallback in a fresh clone without ../shared.
const MODEL = HAS_SHARED ? 'mlperf-tiny-resnet' : 'centernet';
// 60 s at 25 fps: far more than a run gets through before it is signalled, so the signal always lands mid-run.
const CLIP_FRAMES = 1500;
const SUMMARY = /visionpipe: (\d+) frames in .* \(stopped early\)/;
const RUN_TIMEOUT_MS = 300_000;

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-signals-'));
const clip = join(dir, 'testsrc.mp4');

beforeAll(() => {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc=size=320x240:rate=25:duration=${CLIP_FRAMES / 25}`, '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-y', clip], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`could not generate the test clip: ${r.stderr}`);
});

afterEach(() => {
  // A failed test must not leave its processes running for the next one (a SIGSTOPped ffmpeg included).
  for (const pid of processesMatching(dir)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function outputsOf(name: string, model = MODEL): { video: string; events: string; args: string[] } {
  const video = join(dir, `${name}.mp4`);
  const events = join(dir, `${name}.jsonl`);
  return { video, events, args: ['run', clip, '-o', video, '-e', events, '--quiet', '-m', model] };
}

function predictionLines(events: string): number {
  const lines = readFileSync(events, 'utf8').trimEnd().split('\n');
  return lines.filter((l) => (JSON.parse(l) as { type?: string }).type === 'prediction').length;
}

/** SIGKILL is delivered at once, but the kernel may take a moment to tear the process down. */
async function childrenLeft(): Promise<string[]> {
  for (let i = 0; i < 50 && processesMatching(dir).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  return processesMatching(dir);
}

async function expectGracefulStop(cli: RunningCli, exit: Exit, expectedCode: number, signal: string, video: string, events: string): Promise<void> {
  const output = cli.output();
  expect(exit, output).toEqual({ code: expectedCode, signal: null });
  expect(output).toMatch(new RegExp(`${signal}.*finishing frames in flight`));
  const frames = Number(SUMMARY.exec(output)?.[1]);
  expect(frames, `summary printed:\n${output}`).toBeGreaterThanOrEqual(5);
  expect(frames).toBeLessThan(CLIP_FRAMES);
  expect(existsSync(`${video}.partial`)).toBe(false);
  expect(existsSync(`${events}.partial`)).toBe(false);
  expect(predictionLines(events)).toBe(frames);
  // Playable to the end (ffprobe decodes every frame, which needs the index written at close).
  expect(ffprobeFrameCount(video)).toBe(frames);
  expect(await childrenLeft()).toEqual([]);
}

describe.skipIf(!HAS_SCRIPT)(`visionpipe run in a real terminal, Ctrl-C (${MODEL})${HAS_SCRIPT ? '' : `: skipped, ${SKIP_SCRIPT_REASON}`}`, () => {
  it('Ctrl-C in a real terminal: finishes the frames in flight, finalises MP4 and JSONL, prints the summary, exits 130', { timeout: RUN_TIMEOUT_MS }, async () => {
    const { video, events, args } = outputsOf('ctrl-c');
    const cli = runCliInPty(args);
    await waitUntil(() => lineCount(`${events}.partial`) >= 5, cli, 'the events file had 5 lines');
    cli.ctrlC();
    await expectGracefulStop(cli, await cli.exited, 130, 'SIGINT', video, events);
  });

  it('a second Ctrl-C quits at once, even while ffmpeg hangs and inference is running, and leaves no ffmpeg behind', { timeout: RUN_TIMEOUT_MS }, async () => {
    // The default detector (~60 ms a frame) keeps the inference worker inside onnxruntime's native run almost all
    // the time, so the second Ctrl-C lands there: ending the process by process.exit then aborted it (exit 134,
    // `terminate called after throwing an instance of 'Napi::Error'`) every time; with the tiny model only rarely.
    const { video, events, args } = outputsOf('ctrl-c-twice', 'centernet');
    const cli = runCliInPty(args);
    await waitUntil(() => lineCount(`${events}.partial`) >= 5, cli, 'the events file had 5 lines');
    // A frozen encoder: the graceful stop cannot finish, so only the second Ctrl-C can end the run.
    const encoders = processesMatching(`${video}.partial`);
    expect(encoders, cli.output()).toHaveLength(1);
    process.kill(Number(encoders[0]), 'SIGSTOP');
    cli.ctrlC();
    await waitUntil(() => /finishing frames in flight/.test(cli.output()), cli, 'the first Ctrl-C was acknowledged');
    const secondAtMs = performance.now();
    cli.ctrlC();
    const exit = await cli.exited;
    expect(performance.now() - secondAtMs).toBeLessThan(10_000);
    expect(exit, cli.output()).toEqual({ code: 130, signal: null });
    expect(cli.output()).not.toMatch(SUMMARY);
    expect(await childrenLeft()).toEqual([]);
  });
});

describe(`visionpipe run signalled as a service manager does (${MODEL})`, () => {
  it('SIGTERM to the process group (systemd, Docker): the same clean stop, exit 143', { timeout: RUN_TIMEOUT_MS }, async () => {
    const { video, events, args } = outputsOf('sigterm');
    const cli = runCliInGroup(args);
    await waitUntil(() => lineCount(`${events}.partial`) >= 5, cli, 'the events file had 5 lines');
    process.kill(-(cli.child.pid ?? 0), 'SIGTERM');
    await expectGracefulStop(cli, await cli.exited, 143, 'SIGTERM', video, events);
  });
});
