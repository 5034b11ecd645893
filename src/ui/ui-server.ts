import { timingSafeEqual } from 'node:crypto';
import { createReadStream, realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { VisionpipeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LiveView } from './live-view.js';
import { PAGE_HTML } from './page.js';
import { isLoopbackHost } from './ui-schema.js';

export interface UiServerOptions {
  host: string;
  port: number;
  /** Checked on every request when set; required when host is not loopback. */
  token: string | null;
  /** Folders whose files (snapshots, clips) events may name: nothing outside them is ever served. */
  fileRoots: readonly string[];
  log: Logger;
}

const TOKEN_COOKIE = 'vp_token';

/**
 * The live page's HTTP server (fastify): the page, its JSON API, MJPEG streams, an event stream (SSE), health and
 * readiness, and the snapshots and clips that events name. Files are looked up by event id among the events the
 * page keeps, and served only when they lie inside the configured snapshot or clip folders: no path from a request
 * ever reaches the file system. Whoever starts it closes it (the pipeline does, in close()).
 */
export class UiServer {
  readonly url: string;
  readonly #app: FastifyInstance;

  private constructor(app: FastifyInstance, url: string) {
    this.#app = app;
    this.url = url;
  }

  static async start(view: LiveView, options: UiServerOptions): Promise<UiServer> {
    checkUiExposure(options.host, options.token);
    const app = Fastify({ logger: false });
    const token = options.token === null ? null : Buffer.from(options.token);
    if (token !== null) app.addHook('onRequest', async (req, reply) => authorize(req, reply, token));
    // Without a token the page is for this machine only: a request whose Host names another (a web page using DNS
    // rebinding to reach 127.0.0.1) is refused.
    else app.addHook('onRequest', async (req, reply) => {
      if (!isLoopbackHost(hostnameOf(req.headers.host ?? ''))) await reply.code(421).type('text/plain').send('visionpipe: this page answers to 127.0.0.1 / localhost only\n');
    });
    routes(app, view, options);
    try {
      await app.listen({ host: options.host, port: options.port });
    } catch (err) {
      await app.close().catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new VisionpipeError('VP_CONFIG_INVALID', `Cannot serve the live page on ${options.host}:${options.port} (${code})`, {
        value: options.port,
        hint: 'Choose another ui.port (--ui <port>), or 0 for any free port.',
        cause: err,
      });
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : options.port;
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    return new UiServer(app, `http://${host}:${port}/`);
  }

  async close(): Promise<void> {
    // Streams (MJPEG, SSE) never end on their own: cut them, then close.
    this.#app.server.closeAllConnections();
    await this.#app.close();
  }
}

/** Bound beyond loopback without a token: refused (anyone who can reach the port would see every camera). */
export function checkUiExposure(host: string, token: string | null): void {
  if (isLoopbackHost(host) || token !== null) return;
  throw new VisionpipeError('VP_CONFIG_INVALID', `ui.host is ${host}, reachable from other machines, but no token is set`, {
    value: host,
    expected: 'ui.token (or the VISIONPIPE_UI_TOKEN variable), at least 16 characters, or ui.host 127.0.0.1',
    hint: 'Anyone who can reach the port would see every camera. Set a token (e.g. `openssl rand -hex 16`).',
  });
}

/** Every request must carry the token: `Authorization: Bearer`, `?token=` (which also sets a cookie), or the cookie. */
async function authorize(req: FastifyRequest, reply: FastifyReply, token: Buffer): Promise<void> {
  const query = (req.query ?? {}) as Record<string, unknown>;
  const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const cookie = /(?:^|;\s*)vp_token=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
  const fromQuery = typeof query['token'] === 'string' ? query['token'] : undefined;
  const given = bearer ?? fromQuery ?? (cookie === undefined ? undefined : safeDecode(cookie));
  if (given !== undefined && sameSecret(Buffer.from(given), token)) {
    // The page's images and event stream cannot send a header: a cookie carries the token for them.
    if (fromQuery !== undefined) void reply.header('set-cookie', `${TOKEN_COOKIE}=${encodeURIComponent(fromQuery)}; HttpOnly; SameSite=Strict; Path=/`);
    return;
  }
  await reply.code(401).header('www-authenticate', 'Bearer').type('text/plain').send('visionpipe: a token is required (?token=… or Authorization: Bearer …)\n');
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined; // a malformed cookie is no token
  }
}

/** `127.0.0.1:8080` → `127.0.0.1`, `[::1]:8080` → `::1`. */
function hostnameOf(host: string): string {
  const bracketed = /^\[([^\]]+)\]/.exec(host);
  return bracketed?.[1] ?? host.replace(/:\d+$/, '');
}

function sameSecret(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function routes(app: FastifyInstance, view: LiveView, options: UiServerOptions): void {
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(PAGE_HTML));
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    const { ready, failed } = view.ready();
    return reply.code(ready ? 200 : 503).send({ ready, failed });
  });
  app.get('/api/sources', async () => ({ sources: view.sources() }));
  app.get('/api/events', async (req, reply) => {
    const raw = (req.query as Record<string, unknown>)['since'] ?? '0';
    const since = typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : null;
    if (since === null) return reply.code(400).send({ error: 'since must be an event sequence number (0 or more)' });
    return { events: view.eventsSince(since) };
  });
  app.get('/api/events/stream', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // A reconnecting browser sends the last id it saw: it gets what it missed (of what is kept), then the rest.
    const lastId = Number(req.headers['last-event-id'] ?? (req.query as Record<string, unknown>)['since'] ?? 0);
    let dropped = 0;
    const send = (kept: { seq: number; event: Record<string, unknown> }) => {
      // A reader that does not keep up loses events here rather than the server growing: counted, then it reloads.
      if (res.writableLength > 1024 * 1024) {
        dropped += 1;
        return;
      }
      res.write(`id: ${kept.seq}\nevent: vp\ndata: ${JSON.stringify(kept.event)}\n\n`);
    };
    for (const kept of view.eventsSince(Number.isFinite(lastId) ? lastId : 0)) send(kept);
    const stop = view.onEvent(send);
    const keepAlive = setInterval(() => res.write(`: ${dropped} dropped\n\n`), 15_000).unref();
    res.once('close', () => {
      stop();
      clearInterval(keepAlive);
    });
  });
  app.get('/api/sources/:name/stream.mjpg', (req, reply) => {
    const { name } = req.params as { name: string };
    if (!view.hasSource(name)) return reply.code(404).send({ error: `no source ${name}` });
    reply.hijack();
    // The run is ending (its outputs are being finalised): no new stream.
    if (!view.addViewer(name, reply.raw)) reply.raw.writeHead(503, { 'content-type': 'text/plain' }).end('visionpipe: the run is ending\n');
    return reply;
  });
  app.get('/api/sources/:name/latest.jpg', async (req, reply) => {
    const { name } = req.params as { name: string };
    if (!view.hasSource(name)) return reply.code(404).send({ error: `no source ${name}` });
    const query = req.query as Record<string, unknown>;
    const after = Number(query['after']);
    // How long to wait for a newer frame: ?waitMs= (0–5000, default 2000); the page asks for 1 s, so nine tiles share
    // the browser's six connections without one holding a slot for long.
    const waitMs = Math.min(5000, Math.max(0, Number(query['waitMs'] ?? 2000) || 0));
    const latest = await view.latestJpeg(name, waitMs, Number.isInteger(after) ? after : undefined);
    if (latest === null) return reply.code(503).send({ error: `no frame of ${name} yet` });
    return reply.type('image/jpeg').header('cache-control', 'no-store').header('x-frame-index', latest.frameIndex).send(latest.jpeg);
  });
  app.get('/api/events/:id/:file', async (req, reply) => {
    const { id, file } = req.params as { id: string; file: string };
    const field = file === 'snapshot.jpg' ? 'snapshot' : file === 'clip.mp4' ? 'clip' : null;
    const path = field === null ? undefined : view.eventById(id)?.[field];
    if (typeof path !== 'string' || !insideOneOf(path, options.fileRoots)) return reply.code(404).send({ error: 'no such file' });
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return reply.code(404).send({ error: 'the file is gone (deleted by its bound, or not written yet)' });
    }
    void reply.type(field === 'snapshot' ? 'image/jpeg' : 'video/mp4').header('accept-ranges', 'bytes');
    // Byte ranges, so that a browser can seek in a clip (and Safari plays it at all).
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (range !== null && size > 0) {
      const start = range[1] === '' ? Math.max(0, size - Number(range[2])) : Number(range[1]);
      const end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
      if (!(start <= end && start < size)) return reply.code(416).header('content-range', `bytes */${size}`).send();
      return reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`).header('content-length', end - start + 1).send(createReadStream(path, { start, end }));
    }
    return reply.header('content-length', size).send(createReadStream(path));
  });
}

/** Whether `path` lies inside one of `roots`, after resolving `..` and symbolic links (a link out is outside). */
function insideOneOf(path: string, roots: readonly string[]): boolean {
  const full = realOrNull(path);
  if (full === null) return false;
  return roots.some((root) => {
    const realRoot = realOrNull(root);
    if (realRoot === null) return false;
    const rel = relative(realRoot, full);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  });
}

function realOrNull(path: string): string | null {
  try {
    return realpathSync(resolve(path));
  } catch {
    return null;
  }
}
