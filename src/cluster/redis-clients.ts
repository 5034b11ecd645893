import { Redis, type RedisOptions } from 'ioredis';
import { VisionpipeError, messageOf } from '../errors.js';
import type { QueueTarget } from './queue-target.js';

/** How long a command (`submit`, `cluster …`) or a starting worker waits for Redis before giving up. */
export const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The connection options BullMQ's workers get: commands wait through a Redis outage (ioredis reconnects with
 * backoff, capped at 2 s) instead of failing, which is what BullMQ requires of a worker connection.
 */
export function workerConnection(target: QueueTarget): RedisOptions {
  return { ...target.connection, maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(100 * n, 2000) };
}

/**
 * A client for visionpipe's own keys whose commands fail at once while Redis is unreachable (no offline queue): the
 * worker's heartbeat uses its failures to notice an outage. Resolves once connected; VP_QUEUE_UNREACHABLE when
 * Redis does not answer within CONNECT_TIMEOUT_MS.
 */
export async function connectFailFast(target: QueueTarget, options: { reconnect: boolean }): Promise<Redis> {
  const redis = new Redis({
    ...target.connection,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: options.reconnect ? (n) => Math.min(100 * n, 2000) : () => null,
  });
  // Errors are reported by the commands that fail (an unhandled 'error' event would crash the process); the last
  // one says why a connection failed (ECONNREFUSED, NOAUTH …), which the rejection itself does not.
  let lastError: string | null = null;
  redis.on('error', (err: Error) => (lastError = err.message));
  try {
    await withTimeout(redis.connect().then(() => redis.ping()), CONNECT_TIMEOUT_MS);
  } catch (cause) {
    redis.disconnect();
    throw new VisionpipeError('VP_QUEUE_UNREACHABLE', `Cannot reach Redis at ${target.display} (${lastError ?? messageOf(cause)})`, {
      value: target.display,
      expected: 'a running Redis 6.2+ reachable from here',
      cause,
    });
  }
  return redis;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
