import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Test and benchmark tooling (not part of the library API): a `visionpipe worker` CLI process in a process group
 * of its own, its stdout and stderr in a log file, signalled the way a supervisor does (to the whole group).
 */
export class WorkerProcess {
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly id: string,
    readonly logFile: string,
    private readonly child: ChildProcess,
  ) {
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Starts `visionpipe worker --queue <queueUrl> --id <id> …args` from this checkout (sources via tsx, or dist/). */
  static start(options: { id: string; queueUrl: string; logFile: string; stateDir: string; args?: readonly string[] }): WorkerProcess {
    const fromSources = import.meta.url.endsWith('.ts');
    const main = fileURLToPath(new URL(fromSources ? '../cli/main.ts' : '../cli/main.js', import.meta.url));
    const log = openSync(options.logFile, 'a');
    try {
      const child = spawn(
        process.execPath,
        [...(fromSources ? ['--import', 'tsx'] : []), main, 'worker', '--queue', options.queueUrl, '--id', options.id, '--state-dir', options.stateDir, '--json-logs', ...(options.args ?? [])],
        { detached: true, stdio: ['ignore', log, log], env: { ...process.env, FORCE_COLOR: '0' } },
      );
      return new WorkerProcess(options.id, options.logFile, child);
    } finally {
      closeSync(log);
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** To the whole process group, as a supervisor (or `kill -- -pid`) does. */
  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM (a drain), then SIGKILL if it has not exited after `graceMs`. Resolves once it exited. */
  async stop(graceMs = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.running) return this.exit;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }
}
