import { z } from 'zod';

/**
 * `delivery`: where events go beyond the events file — an MQTT broker — through a durable outbox on disk that
 * loses nothing when a target is away or visionpipe is killed.
 */
export const OutboxSchema = z.strictObject({
  /** The outbox folder. It outlives runs: the next start delivers what a killed run left undelivered. */
  dir: z.string().min(1).default('.visionpipe/outbox'),
  /** always: fsync every event; interval: at most every fsyncIntervalMs; never: leave it to the OS. */
  fsync: z.enum(['always', 'interval', 'never']).default('interval'),
  fsyncIntervalMs: z.number().int().min(1).max(60_000).default(1000),
  /** The oldest events beyond this many bytes are dropped (counted and logged). */
  maxBytes: z.number().int().min(1024).nullable().default(1024 ** 3),
  /** Events older than this are dropped (counted and logged); null = keep. */
  maxAgeSeconds: z.number().int().positive().nullable().default(7 * 24 * 3600),
});

export const MqttSchema = z.strictObject({
  /** mqtt://host:1883, mqtts://host:8883 (TLS), ws(s)://…; user:password@ in it is accepted and never logged. */
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\/.+/i, 'expected an mqtt://, mqtts://, ws:// or wss:// URL'),
  /** Topic prefix: events go to <prefix>/<source>/<event type>. */
  prefix: z
    .string()
    .min(1)
    .regex(/^[^#+]+$/, 'no MQTT wildcards (# +) in the prefix')
    .regex(/^[^/].*[^/]$|^[^/]$/, 'no / at the start or the end of the prefix')
    .default('visionpipe'),
  username: z.string().min(1).optional(),
  password: z.string().min(1).optional(),
  /** Also publish each event's snapshot JPEG (output.snapshots) to <prefix>/<source>/snapshot, retained. */
  snapshots: z.boolean().default(false),
  /** Also publish each clip's MP4 (output.clips) to <prefix>/<source>/clip when its clip.ready goes out (not retained). */
  clips: z.boolean().default(false),
});

export const WebhookSchema = z.strictObject({
  /** Its name in logs and metrics, and its position file in the outbox; default webhook-<index>. */
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only (up to 64)').optional(),
  url: z
    .string()
    .regex(/^https?:\/\/.+/i, 'expected an http:// or https:// URL')
    .refine((url) => !/^https?:\/\/[^/]*@/i.test(url), 'no user:password@ in a webhook URL (fetch refuses it): sign with `secret` instead'),
  /** HMAC-SHA256 key for the x-visionpipe-signature header; omit for unsigned posts. */
  secret: z.string().min(1).optional(),
  /** Only these event types (e.g. [line.cross, zone.enter]); omit for all. */
  types: z.array(z.string().min(1)).min(1).optional(),
  /** Only objects of these classes; events without a class (state changes) pass. */
  classes: z.array(z.string().min(1)).min(1).optional(),
  /** Only these zones and lines (for zone and line events); other events pass. */
  zones: z.array(z.string().min(1)).min(1).optional(),
  /** Only these source ids. */
  sources: z.array(z.string().min(1)).min(1).optional(),
  /** One POST may take this long before it is retried. */
  timeoutMs: z.number().int().min(100).max(120_000).default(5000),
});

export const DeliverySchema = z.strictObject({
  /** Also deliver one `prediction` event per frame (10–30 a second per camera); default: only what happens. */
  frameEvents: z.boolean().default(false),
  outbox: OutboxSchema.prefault({}),
  /** An MQTT broker; null = none. */
  mqtt: MqttSchema.nullable().default(null),
  /** HTTP endpoints that get each event as a POST (signed, retried, in order). */
  webhooks: z
    .array(WebhookSchema)
    .max(20)
    .default([])
    .superRefine((hooks, ctx) => {
      // Each target has its own position in the outbox, kept under its name: two targets sharing one would each
      // take the other's events as delivered.
      const seen = new Set<string>(['mqtt']);
      hooks.forEach((hook, i) => {
        const name = webhookTargetName(typeof hook === 'object' && hook !== null ? hook : {}, i);
        if (seen.has(name)) {
          const message = name === 'mqtt' ? 'the name mqtt is the MQTT target\'s' : `two webhooks are named ${name} (default names are webhook-<index>)`;
          ctx.addIssue({ code: 'custom', path: [i, 'name'], message });
        }
        seen.add(name);
      });
      // Also when some webhook has other problems: every problem is reported at once.
    }, { when: (payload) => Array.isArray(payload.value) }),
});

/** A webhook's outbox target name: its `name`, or webhook-<index>. */
export function webhookTargetName(hook: { name?: string | undefined }, index: number): string {
  return hook.name ?? `webhook-${index}`;
}

export type DeliveryConfig = z.output<typeof DeliverySchema>;
