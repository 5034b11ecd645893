import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { ROOT } from './shared.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI from the TypeScript sources, as a child process. */
export function runCli(args: string[], options: { cwd?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', resolve(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: options.cwd ?? ROOT,
    encoding: 'utf8',
    env: { ...process.env, FORCE_COLOR: '0' },
    timeout: 600_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Frames ffprobe counts by decoding the whole stream. */
export function ffprobeFrameCount(path: string): number {
  const r = spawnSync(
    'ffprobe',
    ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames,codec_name', '-of', 'json', path],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`ffprobe failed on ${path}: ${r.stderr}`);
  const stream = (JSON.parse(r.stdout) as { streams: Array<{ nb_read_frames: string; codec_name: string }> }).streams[0];
  if (stream?.codec_name !== 'h264') throw new Error(`${path} is not H.264: ${r.stdout}`);
  return Number(stream.nb_read_frames);
}

/** The CLI started asynchronously (the test's event loop keeps running): for tests that talk to it while it runs. */
export function spawnCli(args: string[], options: { cwd?: string } = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<CliResult & { signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal, stdout, stderr })),
  );
  return { child, exit, stderr: () => stderr };
}
