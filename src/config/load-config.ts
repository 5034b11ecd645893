import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { VisionpipeError } from '../errors.js';
import { redactUri } from '../sources/redact-uri.js';
import { ConfigSchema, type Config, type ConfigInput } from './schema.js';

/** A partial configuration, as CLI flags or a library caller give it; merged over the file. */
export type ConfigOverrides = DeepPartial<ConfigInput>;
type DeepPartial<T> = T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/**
 * Reads a YAML config file (optional), merges overrides over it, validates the result against the one schema,
 * reports every problem at once with its key path, and returns a deeply frozen Config.
 */
export function loadConfig(
  options: {
    file?: string | undefined;
    overrides?: ConfigOverrides;
    /** Source URIs from the command line: they replace the file's; each keeps the file's per-source settings. */
    sourceUris?: readonly string[];
    /** Applies to every source. */
    maxFrames?: number | undefined;
  } = {},
): Config {
  const fromFile = options.file === undefined ? {} : readYamlFile(options.file);
  const merged = deepMerge(fromFile, options.overrides ?? {}) as Record<string, unknown>;
  if (options.sourceUris !== undefined || options.maxFrames !== undefined) {
    const fileSources = ([] as unknown[]).concat(merged['source'] ?? []);
    const uris = options.sourceUris ?? fileSources.map((s) => (s as { uri?: string }).uri);
    const sources = uris.map((uri, i) => ({
      ...(isPlainObject(fileSources[i]) ? fileSources[i] : isPlainObject(fileSources[0]) ? fileSources[0] : {}),
      uri,
      ...(options.maxFrames === undefined ? {} : { maxFrames: options.maxFrames }),
    }));
    // One source stays one object, so that errors name its keys source.x (as written), not source.0.x.
    merged['source'] = sources.length === 1 && !Array.isArray(merged['source']) ? sources[0] : sources;
  }
  return parseConfig(merged, options.file);
}

/** Validates an already-parsed object (from YAML, JSON or code). */
export function parseConfig(raw: unknown, origin = 'config'): Config {
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => describeIssue(issue, raw));
    throw new VisionpipeError('VP_CONFIG_INVALID', `Invalid configuration in ${origin}:\n  - ${lines.join('\n  - ')}`);
  }
  return deepFreeze(result.data);
}

function readYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new VisionpipeError('VP_CONFIG_NOT_FOUND', 'Cannot read the config file', { value: file, cause });
  }
  const doc = parseDocument(text, { prettyErrors: true });
  const first = doc.errors[0];
  if (first !== undefined) {
    throw new VisionpipeError('VP_CONFIG_PARSE', `The config file ${file} is not valid YAML: ${first.message}`);
  }
  const value: unknown = doc.toJS();
  return value ?? {};
}

function describeIssue(original: z.core.$ZodIssue, raw: unknown): string {
  const issue = singleSourcePath(original, raw);
  const path = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length === 0 ? 'at the top level' : `in ${path}`;
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} ${where} (allowed keys are listed in config/default.yaml)`;
  }
  const received = valueAt(raw, issue.path);
  // Never echo a secret: passwords and signing keys are hidden, URLs lose their user:password@.
  const secret = issue.path.some((k) => /password|secret|token/i.test(String(k)));
  const got = received === undefined ? 'nothing' : secret ? '(hidden)' : redactUri(JSON.stringify(received)).replace(/"(password|secret|token)":"[^"]*"/gi, '"$1":"***"');
  return `${path}: ${issue.message} (got ${got})`;
}

/** A single `source:` object is validated as a list of one: report its keys as source.x, not source.0.x. */
function singleSourcePath(issue: z.core.$ZodIssue, raw: unknown): z.core.$ZodIssue {
  const source = (raw as { source?: unknown } | null)?.source;
  if (issue.path[0] === 'source' && issue.path[1] === 0 && !Array.isArray(source)) {
    return { ...issue, path: ['source', ...issue.path.slice(2)] };
  }
  return issue;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let node: unknown = raw;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Overrides win; `undefined` in overrides means "not given" and keeps the base. */
export function deepMerge(base: unknown, overrides: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(overrides)) return overrides === undefined ? base : overrides;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    out[key] = deepMerge(base[key], value);
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
