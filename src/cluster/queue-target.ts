import type { RedisOptions } from 'ioredis';
import { VisionpipeError } from '../errors.js';
import { redactUri } from '../sources/redact-uri.js';

/** Where the cluster lives: one Redis (a database of it), and the key prefix every queue and key shares. */
export interface QueueTarget {
  /** The URL as given, with any password hidden (for logs and errors). */
  readonly display: string;
  readonly connection: RedisOptions;
  /** BullMQ's key prefix; several clusters can share one Redis with different prefixes (`?prefix=` in the URL). */
  readonly prefix: string;
}

/** File jobs (`visionpipe submit`): ordinary BullMQ jobs. */
export const FILES_QUEUE = 'files';
/** Camera jobs: one long-running job per desired camera (`visionpipe cluster apply`). */
export const CAMERAS_QUEUE = 'cameras';

/** visionpipe's own keys beside BullMQ's, all under the same prefix. */
export function clusterKeys(prefix: string) {
  return {
    /** Hash: camera id → DesiredCamera JSON (what `cluster apply` wrote). */
    desired: `${prefix}:vp:desired`,
    /** Hash: worker id → WorkerHeartbeat JSON, rewritten every heartbeat. */
    workers: `${prefix}:vp:workers`,
    /** Counter: camera jobs started on a worker after they ran on another (death or drain). */
    handovers: `${prefix}:vp:handovers`,
    /** Short lock so that one worker at a time repairs the camera jobs (SET NX PX). */
    reconcileLock: `${prefix}:vp:reconcile-lock`,
  } as const;
}

/**
 * Parses `--queue redis://[user:password@]host[:port][/db][?prefix=name]` (or `rediss://` for TLS). One clear
 * VP_CONFIG_INVALID for anything else.
 */
export function parseQueueUrl(url: string): QueueTarget {
  const bad = (why: string) =>
    new VisionpipeError('VP_CONFIG_INVALID', `Invalid --queue URL (${why})`, {
      value: redactUri(url),
      expected: 'redis://host:6379, redis://:password@host:6379/0 or rediss://… (TLS); optionally ?prefix=name',
    });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('not a URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw bad(`scheme ${parsed.protocol} is not redis: or rediss:`);
  if (parsed.hostname === '') throw bad('no host');
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  const dbText = parsed.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || db > 15) throw bad(`database "${dbText}" is not 0..15`);
  const prefix = parsed.searchParams.get('prefix') ?? 'visionpipe';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) throw bad(`prefix "${prefix}" must be 1-64 letters, digits, _ . -`);
  const connection: RedisOptions = {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port,
    db,
    ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  return { display: redactUri(url), connection, prefix };
}
