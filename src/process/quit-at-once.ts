import { constants } from 'node:os';
import { killAllChildren } from './children.js';

/** 128 + the signal's number, as shells report a process a signal ended: SIGINT 130, SIGTERM 143, SIGHUP 129. */
export function exitCodeOf(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal as keyof typeof constants.signals];
}

/**
 * Ends visionpipe at once because of `signal` (a second Ctrl-C, or a signal that came before there was anything
 * to finish): every child is killed, then the process ends by that signal itself, as if it had no handler.
 *
 * Not `process.exit(128 + n)`: that tears down the worker threads first, and an inference worker caught inside
 * onnxruntime's native `run` aborts the whole process when its call returns into a stopped environment
 * (`terminate called after throwing an instance of 'Napi::Error'`, exit 134 — every time with a 60 ms model).
 * Dying by the signal skips that teardown, and is what a shell expects of a program stopped by Ctrl-C: it reports
 * 128 + n (130 for SIGINT) and a calling script stops too.
 */
export function quitAtOnce(signal: NodeJS.Signals): never {
  killAllChildren();
  // With no listener left, libuv restores the default action (terminate) before removeAllListeners returns.
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  // Reached only as PID 1 of a PID namespace (a container started without --init): the kernel does not deliver a
  // default-action signal that init sends itself. exit() then is the old path, with its risk of an abort; the README
  // says to run containers with --init (tini), as Node.js itself advises.
  return process.exit(exitCodeOf(signal));
}
