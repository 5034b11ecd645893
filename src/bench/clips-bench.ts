import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clipJoinArgs } from '../clips/clip-recorder.js';
import { rollingRecordingArgs } from '../clips/rolling-recording.js';
import { locateFfmpeg, locateFfprobe } from '../process/ffmpeg-path.js';
import { probeVideo } from '../sources/probe-video.js';

export interface EncoderCost {
  what: string;
  /** CPU time (user + system) of the ffmpeg process per frame, ms. */
  cpuMsPerFrame: number;
  bytesPerSecond: number;
}

export interface ClipsBench {
  clip: string;
  frames: number;
  fps: number;
  sizeWh: [number, number];
  encoders: EncoderCost[];
  /** Joining 10 one-second segments into a 10 s MP4 (the per-event cost of a clip): wall and CPU ms, mean of 5. */
  join: { wallMs: number; cpuMs: number; segments: number };
}

/**
 * What event clips cost, measured on CPU time rather than fps (fps on this shared 2-core VM moves by ±30 % between
 * runs; CPU seconds of a process do not): the rolling recording's encoder (x264 ultrafast, keyframe every second,
 * 1 s segments) against the MP4 sink's (veryfast), side by side on the same raw frames, and the per-event join.
 * Each ffmpeg runs under `bash -c '…; times'`, whose second line is the CPU time of the shell's children.
 */
export async function benchClips(options: { clip: string; maxFrames: number }): Promise<ClipsBench> {
  const location = locateFfmpeg();
  const ffmpeg = location.path;
  const info = await probeVideo(options.clip, locateFfprobe(location));
  const [w, h] = info.sizeWh;
  const fps = info.fps !== null && info.fps > 0 ? info.fps : 10;
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-bench-clips-'));
  try {
    const raw = join(dir, 'frames.bgr');
    const decoded = spawnSync(ffmpeg, ['-v', 'error', '-i', options.clip, '-frames:v', String(options.maxFrames), '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-y', raw]);
    if (decoded.status !== 0) throw new Error(`could not decode ${options.clip}: ${decoded.stderr.toString()}`);
    const frames = Math.floor(statSync(raw).size / (w * h * 3));
    const seconds = frames / fps;
    const segDir = join(dir, 'segments');
    mkdirSync(segDir);
    const rolling = rollingRecordingArgs({ dir: segDir, name: 'r1', sizeWh: [w, h], fps, segmentSeconds: 1, crf: 26, preset: 'ultrafast' });
    const mp4 = join(dir, 'sink.mp4');
    const sinkArgs = [
      ...['-hide_banner', '-nostats', '-loglevel', 'warning', '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-video_size', `${w}x${h}`, '-framerate', String(fps), '-i', 'pipe:0'],
      ...['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'veryfast', '-crf', '23', '-movflags', '+faststart', '-f', 'mp4', '-y', mp4],
    ];
    const sink = cpuOf(ffmpeg, sinkArgs, raw);
    const recording = cpuOf(ffmpeg, rolling, raw);
    const segments = readdirSync(segDir).filter((f) => f.endsWith('.ts')).sort();
    const segmentBytes = segments.reduce((n, f) => n + statSync(join(segDir, f)).size, 0);
    const encoders: EncoderCost[] = [
      { what: 'MP4 sink (x264 veryfast, crf 23)', cpuMsPerFrame: sink.cpuMs / frames, bytesPerSecond: statSync(mp4).size / seconds },
      { what: 'clip recording (x264 ultrafast, crf 26, keyframe every 1 s, 1 s segments)', cpuMsPerFrame: recording.cpuMs / frames, bytesPerSecond: segmentBytes / seconds },
    ];
    const ten = segments.slice(0, 10);
    const list = join(dir, 'list.txt');
    writeFileSync(list, ten.map((f) => `file '${join(segDir, f)}'\n`).join(''));
    const joins = Array.from({ length: 5 }, (_, i) => cpuOf(ffmpeg, clipJoinArgs(list, join(dir, `clip-${i}.mp4`)), null));
    const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
    return {
      clip: options.clip,
      frames,
      fps,
      sizeWh: [w, h],
      encoders,
      join: { wallMs: mean(joins.map((j) => j.wallMs)), cpuMs: mean(joins.map((j) => j.cpuMs)), segments: ten.length },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs ffmpeg with `args` (stdin from `input`), returning its CPU time (user + sys, from bash's `times`) and wall time. */
function cpuOf(ffmpeg: string, args: string[], input: string | null): { cpuMs: number; wallMs: number } {
  const startMs = performance.now();
  const r = spawnSync('bash', ['-c', `"$0" "$@" ${input === null ? '' : '< "$VP_INPUT"'} > /dev/null || exit 1; times`, ffmpeg, ...args], {
    env: { ...process.env, VP_INPUT: input ?? '' },
    encoding: 'utf8',
  });
  const wallMs = performance.now() - startMs;
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
  // `times`: the shell's user / sys, then its children's: "0m1.234s 0m0.056s".
  const children = r.stdout.trim().split('\n').at(-1) ?? '';
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { cpuMs: seconds.reduce((a, s) => a + s, 0) * 1000, wallMs };
}

export function formatClipsBench(b: ClipsBench): string {
  const periodMs = 1000 / b.fps;
  const [sink, recording] = b.encoders;
  return [
    `### event clips: what the rolling recording and a clip cost (${b.clip}, ${b.frames} frames, ${b.sizeWh[0]}×${b.sizeWh[1]} at ${b.fps} fps)`,
    '',
    '| encoder (same raw frames) | CPU ms / frame | share of one core at the clip\'s fps | MB / minute |',
    '|---|---|---|---|',
    ...b.encoders.map((e) => `| ${e.what} | ${e.cpuMsPerFrame.toFixed(2)} | ${((100 * e.cpuMsPerFrame) / periodMs).toFixed(1)} % | ${((e.bytesPerSecond * 60) / 1e6).toFixed(1)} |`),
    '',
    sink !== undefined && recording !== undefined
      ? `the clip recording costs **${((100 * recording.cpuMsPerFrame) / sink.cpuMsPerFrame).toFixed(0)} %** of the MP4 sink's encoder per frame; ` +
        `one clip (${b.join.segments} one-second segments joined by copying, the per-event cost) takes ${b.join.wallMs.toFixed(0)} ms wall, ${b.join.cpuMs.toFixed(0)} ms CPU`
      : '',
    '',
  ].join('\n');
}
