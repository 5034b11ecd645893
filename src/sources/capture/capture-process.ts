import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { forkChild, signalChild } from '../../process/children.js';
import { CaptureLoop } from './capture-loop.js';
import type { FromCapture, ToCapture } from './capture-protocol.js';
import type { OpenCapture } from './open-video-capture.js';

/** A running capture (a child process, or a loop in this process for tests), seen from the live source. */
export interface CaptureProcess {
  send(msg: ToCapture): void;
  onMessage(listener: (msg: FromCapture) => void): void;
  /** Called once when it is gone: exit code, or the signal that ended it, and the tail of what it printed. */
  onExit(listener: (exit: CaptureExit) => void): void;
  /** Ends it at once (SIGKILL to its process group). */
  kill(): void;
  /** The OS process id, when it is a process. */
  readonly pid: number | undefined;
}

export interface CaptureExit {
  code: number | null;
  signal: string | null;
  /** Last lines of its stderr (OpenCV / FFmpeg messages), for the reason of a crash. */
  stderrTail: string;
}

export type SpawnCapture = () => CaptureProcess;

const STDERR_TAIL_LINES = 5;

/**
 * Forks capture-child in a process group of its own (terminal signals reach visionpipe only). Frames come over
 * the IPC channel with the `advanced` serialization, which carries a frame's bytes as one typed array.
 */
export function forkCaptureProcess(): CaptureProcess {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(new URL(fromSources ? './capture-child.ts' : './capture-child.js', import.meta.url));
  const child = forkChild(entry, [], {
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // Not the parent's flags (a debugger port, vitest's loaders): only what running from sources needs.
    execArgv: fromSources ? ['--import', 'tsx'] : [],
  });
  return new ForkedCapture(child);
}

class ForkedCapture implements CaptureProcess {
  private readonly tail: string[] = [];

  constructor(private readonly child: ChildProcess) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) {
        if (line.trim() === '') continue;
        this.tail.push(line.trim().slice(0, 300));
        if (this.tail.length > STDERR_TAIL_LINES) this.tail.shift();
      }
    });
    // A send to a process that just died fails asynchronously; its exit is reported by onExit.
    child.on('error', () => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(msg: ToCapture): void {
    if (!this.child.connected) return;
    try {
      this.child.send(msg);
    } catch {
      // The channel closed between the check and the send: the exit follows.
    }
  }

  onMessage(listener: (msg: FromCapture) => void): void {
    this.child.on('message', (msg) => listener(msg as FromCapture));
  }

  onExit(listener: (exit: CaptureExit) => void): void {
    // 'close' (not 'exit'): stdio and the IPC channel are drained, so every message sent came before it.
    this.child.once('close', (code, signal) => listener({ code, signal, stderrTail: this.tail.join(' | ') }));
  }

  kill(): void {
    signalChild(this.child, 'SIGKILL');
  }
}

/**
 * The same capture loop run inside this process, with the same messages (for tests of the live source's logic
 * with scripted cameras, and where process isolation is not wanted). kill() drops everything it would still say.
 */
export function inProcessCapture(openCapture: OpenCapture): SpawnCapture {
  return () => {
    const messageListeners: Array<(msg: FromCapture) => void> = [];
    const exitListeners: Array<(exit: CaptureExit) => void> = [];
    let gone = false;
    const exit = (e: CaptureExit) => {
      if (gone) return;
      gone = true;
      setImmediate(() => exitListeners.forEach((l) => l(e)));
    };
    const loop = new CaptureLoop(
      openCapture,
      // Asynchronous like IPC, so the live source never re-enters itself.
      (msg) => setImmediate(() => !gone && messageListeners.forEach((l) => l(msg))),
      () => setImmediate(() => exit({ code: 0, signal: null, stderrTail: '' })),
    );
    return {
      pid: undefined,
      send: (msg) => setImmediate(() => !gone && loop.handle(msg)),
      onMessage: (l) => messageListeners.push(l),
      onExit: (l) => exitListeners.push(l),
      kill: () => {
        loop.handle({ type: 'close' });
        exit({ code: null, signal: 'SIGKILL', stderrTail: '' });
      },
    };
  };
}
