import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from './shared.js';

/** util-linux `script` (Debian: bsdutils) runs a command in a real pseudo-terminal. */
export const HAS_SCRIPT = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
export const SKIP_SCRIPT_REASON = '`script` (util-linux; Debian package bsdutils) is not installed: the pseudo-terminal tests are skipped';
if (!HAS_SCRIPT) console.warn(`[visionpipe tests] ${SKIP_SCRIPT_REASON}`);

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child whose output (stdout and stderr together) is collected as it comes. */
export interface RunningCli {
  child: ChildProcess;
  output(): string;
  exited: Promise<Exit>;
}

/** The argv that starts the real CLI from the TypeScript sources (as test/helpers/cli.ts does). */
export function cliArgv(args: readonly string[]): string[] {
  return [process.execPath, '--import', 'tsx', resolve(ROOT, 'src/cli/main.ts'), ...args];
}

const CLI_ENV = { ...process.env, FORCE_COLOR: '0' };

function collect(child: ChildProcess): RunningCli {
  let text = '';
  const append = (chunk: Buffer) => (text += chunk.toString('utf8'));
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<Exit>((done) => child.once('close', (code: number | null, signal: NodeJS.Signals | null) => done({ code, signal })));
  return { child, output: () => text, exited };
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs the CLI inside a real pseudo-terminal: `script` owns the pty, the CLI is its foreground process group,
 * and `ctrlC()` types ^C, so the line discipline sends SIGINT to that whole group, exactly as a terminal does.
 * `script -e` exits with the CLI's exit code (128 + n when the CLI was killed by signal n).
 */
export function runCliInPty(args: readonly string[]): RunningCli & { ctrlC(): void } {
  // `exec` so the CLI is the pty's foreground process itself, not a shell waiting for it.
  const command = `exec ${cliArgv(args).map(shellQuote).join(' ')}`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: ROOT, env: CLI_ENV, stdio: ['pipe', 'pipe', 'pipe'] });
  return { ...collect(child), ctrlC: () => child.stdin?.write('\x03') };
}

/** Runs the CLI as the leader of a new process group (setsid), so a test can signal the group as systemd or a shell would. */
export function runCliInGroup(args: readonly string[]): RunningCli {
  return collect(spawn(process.execPath, cliArgv(args).slice(1), { cwd: ROOT, env: CLI_ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Lines of a file (0 while it does not exist yet). */
export function lineCount(path: string): number {
  if (!existsSync(path)) return 0;
  return readFileSync(path, 'utf8').split('\n').length - 1;
}

/**
 * Polls until `ready()` holds. Fails early (with the CLI's output) if the CLI exits first, and after `timeoutMs`,
 * so a broken run shows why instead of timing out silently.
 */
export async function waitUntil(ready: () => boolean, cli: RunningCli, what: string, timeoutMs = 120_000): Promise<void> {
  let exit: Exit | undefined;
  void cli.exited.then((e) => (exit = e));
  const deadline = performance.now() + timeoutMs;
  while (!ready()) {
    if (exit !== undefined) throw new Error(`the CLI exited (${JSON.stringify(exit)}) before ${what}. Output:\n${cli.output()}`);
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}. Output:\n${cli.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Pids of processes whose command line contains `needle` (pgrep -f; zombies have no command line, so never match). */
export function processesMatching(needle: string): string[] {
  const r = spawnSync('pgrep', ['-f', '--', needle], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}
