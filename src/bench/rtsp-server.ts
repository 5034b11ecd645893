import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Test and benchmark tooling (not part of the library API): a real RTSP camera stand-in on 127.0.0.1.
 * Debian's python3 has the GStreamer bindings (python3-gi); a pyenv python on PATH would not.
 */
const PYTHON = '/usr/bin/python3';
const SCRIPT = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'scripts', 'rtsp_server.py');

/** Whether GStreamer's RTSP server can run here (scripts/setup.sh installs it). */
export const HAS_RTSP_SERVER =
  spawnSync(PYTHON, ['-c', "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"]).status === 0;
export const SKIP_RTSP_REASON = 'GStreamer RTSP server not installed (run bash scripts/setup.sh): RTSP tests skipped';

/** Writes `count` JPEG frames for the server: from `clip` when given, else ffmpeg's test pattern. */
export function makeFrames(dir: string, count: number, clip?: string): string {
  mkdirSync(dir, { recursive: true });
  const input = clip === undefined ? ['-f', 'lavfi', '-i', 'testsrc=size=384x288:rate=25'] : ['-i', clip];
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...input, '-frames:v', String(count), '-vf', 'scale=384:288', '-q:v', '4', '-start_number', '0', join(dir, 'frame-%05d.jpg')]);
  if (r.status !== 0) throw new Error(`ffmpeg could not make frames: ${r.stderr.toString()}`);
  return dir;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A real RTSP server (gst-rtsp-server) on 127.0.0.1 serving the frames as a looped live H.264 stream. */
export class RtspServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    /** The port it listens on, on 127.0.0.1 (a restarted camera starts again on the same one). */
    readonly port: number,
  ) {}

  static async start(options: { port: number; framesDir: string; fps?: number; user?: string; password?: string }): Promise<RtspServer> {
    const args = [SCRIPT, '--port', String(options.port), '--frames', options.framesDir, '--fps', String(options.fps ?? 25)];
    if (options.user !== undefined) args.push('--user', options.user, '--password', options.password ?? '');
    const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // stderr must be drained: GStreamer warns there on every client that vanishes, and over a long run an unread
    // pipe fills up and blocks the server, which would then look like a frozen camera. Only the tail is kept.
    let errTail = '';
    child.stderr?.on('data', (d: Buffer) => (errTail = (errTail + d.toString()).slice(-2000)));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /READY (\S+)/.exec(out);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`RTSP server exited (${code}): ${out}${errTail}`)));
    });
    return new RtspServer(child, url, options.port);
  }

  /** Freezes the server: connections stay open, no frames flow (a stalled camera). */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  /** Unfreezes a paused server: the camera comes back on the connections it had (or on new ones). */
  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** Kills the server outright (a camera that vanished). */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }
}
