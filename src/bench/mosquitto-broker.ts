import { acceptsConnections } from '../process/loopback-port.js';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnChild } from '../process/children.js';
import { freePort } from './rtsp-server.js';

export const HAS_MOSQUITTO = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' }).error === undefined;
export const SKIP_MOSQUITTO_REASON = 'mosquitto is not installed (bash scripts/setup.sh installs it): the MQTT tests are skipped';

/**
 * Debian's mosquitto on 127.0.0.1 and a free port, with persistence in `dir` (so sessions and queued QoS 1 messages
 * survive a stop() / start() the way they survive a broker restart in production). The test stops it.
 */
export class Mosquitto {
  #child: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    private readonly config: string,
  ) {}

  static async start(dir: string): Promise<Mosquitto> {
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const config = join(dir, 'mosquitto.conf');
    writeFileSync(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence true', `persistence_location ${dir}/`, 'log_dest none', ''].join('\n'));
    const broker = new Mosquitto(port, config);
    await broker.resume();
    return broker;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the broker on the same port; resolves once it accepts connections. */
  async resume(): Promise<void> {
    // Tracked: killed with visionpipe (or the test run) even when it dies of an uncaught error.
    this.#child = spawnChild('mosquitto', ['-c', this.config], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      if (await acceptsConnections(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`mosquitto did not listen on ${this.port}`);
  }

  /** Freezes it (SIGSTOP): connections stay open, nothing is answered — a hung broker or a dead network path. */
  freeze(): void {
    this.#child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.#child?.kill('SIGCONT');
  }

  /** Stops it (SIGTERM: it saves its sessions and queued messages, as on a clean restart). */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (child === null || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}
