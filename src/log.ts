import { pino, destination, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/**
 * Logs go to stderr so stdout stays free for data. Human-readable on a terminal or when asked; JSON lines
 * otherwise (for log collectors). pino-pretty runs in-process (sync), so no log line is lost at exit.
 */
export function createLogger(level: string, options: { json?: boolean } = {}): Logger {
  const json = options.json ?? !process.stderr.isTTY;
  if (json) return pino({ level, base: null }, destination({ fd: 2, sync: true }));
  return pino({ level, base: null }, pretty({ destination: 2, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' }));
}

/** A logger that drops everything: the library default. */
export const silentLogger: Logger = pino({ level: 'silent' });
