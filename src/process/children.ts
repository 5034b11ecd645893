import { fork, spawn, type ChildProcess, type ForkOptions, type SpawnOptions } from 'node:child_process';

/**
 * Every child process visionpipe starts (ffmpeg encoders and decoders, camera capture processes) goes through
 * here. Each runs in its own process group (`detached`), so the SIGINT a terminal sends to its foreground group
 * on Ctrl-C reaches visionpipe alone, which then shuts its children down in order. Children are tracked until
 * they exit, so a hard exit (second Ctrl-C, or any process exit) can kill the ones still running: no orphans.
 */
const running = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('exit', () => running.delete(child));
  // A child that failed to start emits 'error' and never 'exit'.
  child.once('error', () => {
    if (child.pid === undefined) running.delete(child);
  });
  return child;
}

/** child_process.spawn in a process group of its own, tracked until it exits. */
export function spawnChild(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return track(spawn(command, args, { ...options, detached: true }));
}

/** child_process.fork (a Node.js child with an IPC channel) in a process group of its own, tracked until it exits. */
export function forkChild(modulePath: string | URL, args: readonly string[], options: ForkOptions = {}): ChildProcess {
  return track(fork(modulePath, args, { ...options, detached: true }));
}

/** Sends `signal` to the whole process group of a tracked child (it and anything it started). */
export function signalChild(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** Kills every child still running (SIGKILL to each process group). Synchronous: safe in an 'exit' handler. */
export function killAllChildren(): void {
  for (const child of running) signalChild(child, 'SIGKILL');
}

/** Children started and not yet exited (tests check that none is left). */
export function runningChildren(): readonly ChildProcess[] {
  return [...running];
}

// Whatever ends the process (a second Ctrl-C, process.exit, an uncaught error), no child outlives it.
process.once('exit', killAllChildren);

/** How a child ended, in words for error messages: `exit code 1` or `signal SIGKILL`. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal !== null) return `signal ${signal}`;
  return code === null ? 'an unknown reason' : `exit code ${code}`;
}

/** A command line as a user could paste it into a shell (for error messages). */
export function formatCommand(command: string, args: readonly string[]): string {
  return [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/**
 * Keeps the last `maxBytes` of a stream (a child's stderr): enough for the error message when the child fails,
 * bounded however long and chatty the child is.
 */
export class OutputTail {
  private tail = Buffer.alloc(0);

  constructor(
    stream: NodeJS.ReadableStream | null,
    private readonly maxBytes = 4096,
  ) {
    // stderr is low-volume: one small copy per chunk is cheaper to reason about than a ring of chunks.
    stream?.on('data', (chunk: Buffer | string) => {
      this.tail = Buffer.concat([this.tail, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)]).subarray(-this.maxBytes);
    });
  }

  /** The last `maxLines` non-blank lines kept (the first may be cut). */
  lines(maxLines = 12): string[] {
    return this.tail
      .toString('utf8')
      .split(/\r?\n|\r/)
      .filter((l) => l.trim() !== '')
      .slice(-maxLines);
  }
}

/**
 * Runs a short-lived child to its end (tracked, in its own process group): resolves when it exits 0, rejects with
 * its exit status and last stderr lines otherwise. One that runs longer than `timeoutMs` is killed.
 */
export async function runChild(command: string, args: readonly string[], timeoutMs: number): Promise<void> {
  const child = spawnChild(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr = new OutputTail(child.stderr);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    signalChild(child, 'SIGKILL');
  }, timeoutMs);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', (err) => {
        if (child.pid === undefined) reject(new Error(`${command} could not be started (${err.message})`));
      });
      child.once('close', (c: number | null, s: NodeJS.Signals | null) => resolve([c, s]));
    });
    if (code === 0) return;
    const why = timedOut ? `took longer than ${timeoutMs / 1000} s and was killed` : `ended with ${describeExit(code, signal)}`;
    throw new Error(`${formatCommand(command, args)} ${why}: ${stderr.lines(4).join(' | ') || '(no output)'}`);
  } finally {
    clearTimeout(timer);
  }
}
