import { acceptsConnections } from '../process/loopback-port.js';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../bench/rtsp-server.js';
import { spawnChild } from '../process/children.js';

/** Test and benchmark tooling (not part of the library API). */
export const HAS_REDIS = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).error === undefined;
export const SKIP_REDIS_REASON = 'redis-server is not installed (bash scripts/setup.sh installs it): the cluster tests are skipped';

/**
 * Debian's redis-server on 127.0.0.1 and a free port, started by the caller and stopped by it (the system service
 * is never used). Persistence is off unless asked for: then an append-only file fsynced on every write in `dir`,
 * so that a stop() / resume() loses nothing, like a clean restart of a production Redis.
 */
export class RedisServer {
  #child: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    private readonly args: string[],
  ) {}

  static async start(options: { dir: string; persistent?: boolean }): Promise<RedisServer> {
    mkdirSync(options.dir, { recursive: true });
    const port = await freePort();
    const persistence = options.persistent === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', options.dir, '--daemonize', 'no', '--logfile', ''];
    const server = new RedisServer(port, args);
    await server.resume();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts it on the same port; resolves once it accepts connections. */
  async resume(): Promise<void> {
    // Tracked: killed with the test run even when it dies of an uncaught error.
    this.#child = spawnChild('redis-server', this.args, { stdio: 'ignore' });
    for (let i = 0; i < 200; i++) {
      if (await acceptsConnections(this.port)) return;
      await sleep(50);
    }
    throw new Error(`redis-server did not listen on ${this.port}`);
  }

  /** Stops it (SIGTERM: with persistence, what was written is on disk). Resolves once it exited. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}
