import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { deepMerge, parseConfig } from '../config/load-config.js';
import { VisionpipeError, messageOf } from '../errors.js';
import type { DesiredCamera } from './job-schemas.js';

/** A camera's fps when cameras.yaml gives none: its cost under --capacity-fps, and its source.maxFps. */
export const DEFAULT_CAMERA_FPS = 5;

const CameraEntrySchema = z.strictObject({
  /** Stable name: job ids, output names ({camera}), status and metrics use it. */
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . -'),
  uri: z.string().min(1),
  /** Frames per second taken from this camera (source.maxFps) and its cost under --capacity-fps. */
  fps: z.number().positive().max(1000).optional(),
  /** Run-configuration keys for this camera only (as in a `run` config file), merged over `defaults`. */
  config: z.record(z.string(), z.unknown()).default({}),
});

/**
 * cameras.yaml: `defaults` (any run-config keys: model, output, delivery …, with `{camera}` in output paths
 * replaced by each camera's id) and the list of `cameras`.
 */
export const CamerasFileSchema = z.strictObject({
  defaults: z.record(z.string(), z.unknown()).default({}),
  cameras: z.array(CameraEntrySchema),
});

/** Reads and validates cameras.yaml: every problem at once, each with its key path or camera id. */
export function loadCamerasFile(file: string): DesiredCamera[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new VisionpipeError('VP_CONFIG_NOT_FOUND', 'Cannot read the cameras file', { value: file, cause });
  }
  const doc = parseDocument(text, { prettyErrors: true });
  const first = doc.errors[0];
  if (first !== undefined) throw new VisionpipeError('VP_CONFIG_PARSE', `The cameras file ${file} is not valid YAML: ${first.message}`);
  return desiredCameras(doc.toJS() ?? {}, file);
}

/** The desired cameras of a parsed cameras file, each with its full run config validated and its hash. */
export function desiredCameras(raw: unknown, origin = 'cameras file'): DesiredCamera[] {
  const parsed = CamerasFileSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.length === 0 ? '(top level)' : i.path.map(String).join('.')}: ${i.message}`);
    throw new VisionpipeError('VP_CONFIG_INVALID', `Invalid cameras file ${origin}:\n  - ${lines.join('\n  - ')}`, {
      expected: 'defaults: {run config keys}, cameras: [{ id, uri, fps?, config? }]',
    });
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  const out: DesiredCamera[] = [];
  for (const cam of parsed.data.cameras) {
    if (seen.has(cam.id)) problems.push(`camera "${cam.id}": the id is used twice`);
    seen.add(cam.id);
    const fps = cam.fps ?? DEFAULT_CAMERA_FPS;
    const merged = deepMerge(parsed.data.defaults, cam.config) as Record<string, unknown>;
    const baseSource = merged['source'];
    if (Array.isArray(baseSource)) {
      problems.push(`camera "${cam.id}": source must be one object of source settings (the uri comes from the camera entry)`);
      continue;
    }
    const config = withCameraId(
      { ...merged, source: { ...(isObject(baseSource) ? baseSource : {}), uri: cam.uri, kind: 'live', maxFps: fps } },
      cam.id,
    );
    try {
      parseConfig(config, `camera "${cam.id}"`);
    } catch (err) {
      problems.push(messageOf(err).split('\n  →')[0] ?? messageOf(err));
      continue;
    }
    out.push({ id: cam.id, hash: cameraHash(cam.uri, fps, config), fps, config });
  }
  if (problems.length > 0) {
    throw new VisionpipeError('VP_CONFIG_INVALID', `Invalid cameras file ${origin}:\n  - ${problems.join('\n  - ')}`);
  }
  return out;
}

/** Same spec → same hash; any change (uri, fps, any config key) → another. Key order does not matter. */
export function cameraHash(uri: string, fps: number, config: unknown): string {
  return createHash('sha256').update(canonicalJson({ uri, fps, config })).digest('hex').slice(0, 12);
}

/** The BullMQ job id of one version of a camera (BullMQ refuses ':' in custom ids). */
export function cameraJobId(cameraId: string, hash: string): string {
  return `camera-${cameraId}-${hash}`;
}

function withCameraId(config: Record<string, unknown>, id: string): Record<string, unknown> {
  return JSON.parse(JSON.stringify(config, (_k, v: unknown) => (typeof v === 'string' ? v.replaceAll('{camera}', id) : v))) as Record<string, unknown>;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
