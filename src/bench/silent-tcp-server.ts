import { createServer, type Server, type Socket } from 'node:net';

/**
 * Test and benchmark tooling (not part of the library API): a "camera" on 127.0.0.1 that accepts TCP connections
 * and never answers. This is the worst case for a capture client: the connect succeeds at once, so only a read
 * timeout can notice that nothing will come (a powered but hung camera, or a firewall that half-opens).
 */
export class SilentTcpServer {
  private readonly sockets = new Set<Socket>();
  private accepted = 0;

  private constructor(
    private readonly server: Server,
    /** The port it listens on, on 127.0.0.1. */
    readonly port: number,
  ) {
    server.on('connection', (socket) => {
      this.accepted += 1;
      this.sockets.add(socket);
      // A client that gives up resets or closes; neither may crash the process that hosts us.
      socket.on('error', () => undefined);
      socket.once('close', () => this.sockets.delete(socket));
      // Read and discard what the client sends (the RTSP OPTIONS / DESCRIBE), so its writes never block on a full
      // receive window: the client must be stuck waiting for an answer, not for its own send.
      socket.resume();
    });
  }

  /** Listens on 127.0.0.1:`port` (default 0: any free port). */
  static async start(port = 0): Promise<SilentTcpServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('SilentTcpServer: no TCP address after listen');
    return new SilentTcpServer(server, address.port);
  }

  /** An RTSP URL pointing at this server: `rtsp://127.0.0.1:PORT/cam`. */
  get url(): string {
    return `rtsp://127.0.0.1:${this.port}/cam`;
  }

  /** How many connections it has accepted so far (open or closed). */
  get connections(): number {
    return this.accepted;
  }

  /** Stops listening and destroys every open connection (a client blocked on us then sees a reset). Idempotent. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
