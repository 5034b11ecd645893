import { z } from 'zod';

/**
 * The one schema for a run's configuration. YAML files, CLI flags and library callers all go through it
 * (see load-config.ts); the TypeScript types below are derived from it, never written by hand.
 */

const nonNegativeInt = z.number().int().nonnegative();
const positiveInt = z.number().int().positive();

export const SourceSchema = z
  .strictObject({
    /** A video file path (live sources come later: rtsp://, /dev/videoN). */
    uri: z.string().min(1),
    /** Stop after this many frames; omit or null for the whole file. */
    maxFrames: positiveInt.nullable().default(null),
  })
  .describe('where frames come from');

export const PipelineSchema = z.strictObject({
  /** Preallocated model-input buffers shared with the inference worker; 2 = double buffering, 1 = no overlap. */
  ringSize: z.number().int().min(1).max(16).default(2),
  /** Frames read but not yet written by every sink; bounds memory whatever the slowest stage is. */
  maxInFlight: z.number().int().min(1).max(64).default(4),
});

export const PostprocessSchema = z.strictObject({
  /** Classification: how many classes to report per frame. */
  topK: positiveInt.max(100).default(3),
  /** Detection: boxes below this score are discarded. */
  minScore: z.number().min(0).max(1).default(0.35),
  /** Detection: non-maximum suppression IoU threshold. */
  iouThreshold: z.number().min(0).max(1).default(0.5),
  /** Detection: at most this many boxes per frame after NMS. */
  maxDetections: positiveInt.max(1000).default(50),
});

export const AnnotateSchema = z.strictObject({
  /** Draw boxes / labels on frames (needed for a video output). */
  enabled: z.boolean().default(true),
  /** Draw the fps / latency overlay in the top-left corner. */
  overlay: z.boolean().default(true),
  /** Line thickness in pixels. */
  thicknessPx: positiveInt.max(20).default(2),
});

export const OutputSchema = z.strictObject({
  /** Annotated H.264 MP4 path; null = no video. */
  video: z.string().min(1).nullable().default(null),
  /** JSON-lines predictions path; null = none. */
  events: z.string().min(1).nullable().default(null),
  /** x264 constant rate factor (lower = better quality, bigger file). */
  crf: nonNegativeInt.max(51).default(23),
  /** x264 preset. */
  preset: z
    .enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'])
    .default('veryfast'),
});

export const ConfigSchema = z.strictObject({
  source: SourceSchema,
  /** A descriptor name from models/ (e.g. `centernet`) or a path to a descriptor YAML. */
  model: z.string().min(1).default('centernet'),
  /** Overrides the descriptor's engine. `auto` keeps the descriptor's choice. */
  engine: z.enum(['auto', 'onnx', 'tfjs']).default('auto'),
  pipeline: PipelineSchema.prefault({}),
  postprocess: PostprocessSchema.prefault({}),
  annotate: AnnotateSchema.prefault({}),
  output: OutputSchema.prefault({}),
  log: z
    .strictObject({
      level: z.enum(['silent', 'error', 'warn', 'info', 'debug']).default('info'),
    })
    .prefault({}),
});

/** A complete, validated and frozen run configuration. */
export type Config = Readonly<z.output<typeof ConfigSchema>>;
/** What a caller may pass: everything but `source.uri` has a default. */
export type ConfigInput = z.input<typeof ConfigSchema>;
export type EngineName = Exclude<Config['engine'], 'auto'>;
