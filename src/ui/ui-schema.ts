import { z } from 'zod';

/** `ui`: the live page (see the README's Live page section). port null = off, 0 = any free port. */
export const UiSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).nullable().default(null),
  /** 127.0.0.1 keeps it on this machine; any other address requires a token. */
  host: z.string().min(1).default('127.0.0.1'),
  /** Required on every request when set (and always when host is not loopback); also VISIONPIPE_UI_TOKEN. */
  token: z.string().min(16, 'at least 16 characters (e.g. `openssl rand -hex 16`)').optional(),
  /** Each source's video is JPEG-encoded at most this often, and only while someone watches. */
  maxFps: z.number().min(0.5).max(30).default(5),
  /** JPEG quality of the live video, 1–100. */
  quality: z.number().int().min(1).max(100).default(70),
  /** Recent events the page and GET /api/events can show. */
  maxEvents: z.number().int().min(10).max(100_000).default(500),
});

export type UiConfig = z.output<typeof UiSchema>;

/** Loopback addresses: the ones a token is not required on. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}
