/**
 * The error catalogue: every error visionpipe raises on purpose has a stable code listed here, with what it means
 * and how to fix it. README.md's "Errors" table is checked against this list by a test.
 */

export const ERROR_CODES = {
  VP_CONFIG_NOT_FOUND: 'Check the path given to --config; it must be a readable YAML file.',
  VP_CONFIG_PARSE: 'Fix the YAML syntax at the line shown.',
  VP_CONFIG_INVALID: 'Fix each key listed; `visionpipe validate <file>` checks a config without running it.',
  VP_SOURCE_NOT_FOUND: 'Check the path of the video file; it must exist and be readable.',
  VP_SOURCE_UNREADABLE: 'Give a video OpenCV can decode (.mp4, .avi, .mkv …); check the file is not truncated.',
  VP_SOURCE_LOST: 'Check the camera and the URL; raise source.reconnect.maxAttempts, or set it to null to retry forever.',
  VP_SOURCE_TRUNCATED: 'The file ended before its declared frame count: check it is complete, try source.decoder: ffmpeg, or set source.allowTruncated: true.',
  VP_MODEL_NOT_FOUND: 'Give a descriptor name from models/ (see `visionpipe models`) or a path to a descriptor .yaml.',
  VP_MODEL_INVALID: 'Re-export or re-download the model; check format and engine in its descriptor.',
  VP_MODEL_SHAPE_MISMATCH: "Make the descriptor's input sizeWh / layout match the model's input.",
  VP_MODEL_UNSUPPORTED: 'The importer does not handle this layer or op yet; the message names it and the node using it.',
  VP_ENGINE_UNAVAILABLE: 'Install the engine package or choose another engine with --engine.',
  VP_INFERENCE_FAILED: 'Run with --verbose for the engine message; check the descriptor matches the model.',
  VP_OUTPUT_UNWRITABLE: 'Choose an output path in a directory that exists and that you can write to.',
  VP_FFMPEG_NOT_FOUND: 'Install ffmpeg (apt-get install ffmpeg) or set FFMPEG_PATH to an ffmpeg binary.',
  VP_FFMPEG_FAILED: 'See the ffmpeg message; check the output path and codec settings.',
  VP_SINK_FAILED: 'An output failed to finalise; the message names it and what was kept. Check disk space and permissions.',
  VP_PIPELINE_ABORTED: 'The run was stopped before the end; outputs written so far were closed and kept.',
  VP_QUEUE_UNREACHABLE: 'Check the --queue URL, that Redis runs there and accepts this client (password, TLS, firewall).',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface VisionpipeErrorDetails {
  /** The value that was received (a path, a key's value, a shape …). */
  value?: unknown;
  /** What was expected instead. */
  expected?: string;
  /** Overrides the catalogue's default hint with a more specific one. */
  hint?: string;
  cause?: unknown;
}

/** A typed error with a stable code, the offending value, what was expected, and what to do about it. */
export class VisionpipeError extends Error {
  readonly code: ErrorCode;
  readonly value: unknown;
  readonly expected: string | undefined;
  readonly hint: string;

  constructor(code: ErrorCode, what: string, details: VisionpipeErrorDetails = {}) {
    const hint = details.hint ?? ERROR_CODES[code];
    const parts = [what];
    if (details.value !== undefined) parts.push(`got ${formatValue(details.value)}`);
    if (details.expected !== undefined) parts.push(`expected ${details.expected}`);
    const head = parts.join('; ').trimEnd();
    const message = `${head}${/[.:]$/.test(head) ? '' : '.'}\n  → ${hint}`;
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'VisionpipeError';
    this.code = code;
    this.value = details.value;
    this.expected = details.expected;
    this.hint = hint;
  }
}

export function isVisionpipeError(err: unknown): err is VisionpipeError {
  return err instanceof VisionpipeError;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    const json = JSON.stringify(value);
    return json === undefined ? String(value) : json;
  } catch {
    return String(value);
  }
}

/** The message of any thrown value, for logs. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
