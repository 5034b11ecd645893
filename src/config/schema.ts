import { z } from 'zod';
import { DeliverySchema } from '../delivery/delivery-schema.js';
import { UiSchema } from '../ui/ui-schema.js';
import { LinesSchema, ZonesSchema } from '../tracking/geometry-schema.js';
import { SourceTrackSchema } from '../tracking/track-schema.js';
import { CLIP_TRIGGER_TYPES } from '../tracking/object-events.js';

/**
 * The one schema for a run's configuration. YAML files, CLI flags and library callers all go through it
 * (see load-config.ts); the TypeScript types below are derived from it, never written by hand.
 */

const nonNegativeInt = z.number().int().nonnegative();
const positiveInt = z.number().int().positive();

export const ReconnectSchema = z.strictObject({
  /** First wait after a lost or failed connection. */
  initialDelayMs: positiveInt.default(500),
  /** The wait doubles per failed attempt up to this. */
  maxDelayMs: positiveInt.default(10_000),
  /** Give up after this many failed attempts in a row; null = retry forever. */
  maxAttempts: positiveInt.nullable().default(null),
  /** ± fraction of random spread on each wait, so many cameras do not reconnect in lockstep. */
  jitter: z.number().min(0).max(1).default(0.2),
});

export const CaptureSchema = z.strictObject({
  /** RTSP transport: tcp survives packet loss; udp has less delay on a clean network. */
  transport: z.enum(['tcp', 'udp']).default('tcp'),
  /** Give up a connection attempt after this (then back off and retry). */
  openTimeoutMs: positiveInt.default(5000),
  /** A read that waits longer than this ends the connection (then reconnect). */
  readTimeoutMs: positiveInt.default(5000),
  /** Ask FFmpeg not to buffer input (fflags nobuffer, flags low_delay). */
  lowDelay: z.boolean().default(true),
});

export const SourceSchema = z
  .strictObject({
    /** A video file path, rtsp:// rtsps:// http(s):// URL, /dev/videoN, or a camera index ("0"). */
    uri: z.string().min(1),
    /** auto: URLs and cameras are live, paths are files. */
    kind: z.enum(['auto', 'file', 'live']).default('auto'),
    /** Stop after this many frames; omit or null for the whole file / forever. */
    maxFrames: positiveInt.nullable().default(null),
    /**
     * What happens when the pipeline is busy. all: wait (files never drop). latest: keep only the newest waiting
     * frame and count the dropped ones (live). auto: all for files, latest for live sources.
     */
    backpressure: z.enum(['auto', 'all', 'latest']).default('auto'),
    /** Live: a frame older than this when inference could start is dropped, not run. */
    maxStalenessMs: positiveInt.default(1000),
    /** Live: connected but no frame for this long = stalled. */
    stallTimeoutMs: positiveInt.default(5000),
    /**
     * Live: feed at most this many frames per second into the pipeline (the capture process skips the rest and
     * counts them as `fps-cap`); null = as many as inference takes. Saves CPU on cameras faster than you need.
     */
    maxFps: z.number().positive().max(1000).nullable().default(null),
    /** Live with backpressure `all`: at most this many frames wait; older ones are dropped as `queue-full`. */
    maxQueuedFrames: positiveInt.max(10_000).default(64),
    /**
     * Files: which decoder reads them. opencv: OpenCV's VideoCapture (FFmpeg backend); ffmpeg: the ffmpeg binary,
     * as raw frames over a pipe (for files OpenCV mis-reads).
     */
    decoder: z.enum(['opencv', 'ffmpeg']).default('opencv'),
    /**
     * Files: a file that ends before the frame count its container declares is an error (VP_SOURCE_TRUNCATED) unless
     * this is true; outputs are finalised either way.
     */
    allowTruncated: z.boolean().default(false),
    reconnect: ReconnectSchema.prefault({}),
    capture: CaptureSchema.prefault({}),
    /**
     * Detection models: follow objects from frame to frame (stable ids, object events). true or {} = on with the
     * defaults, or tracker options; not given = on exactly when the source has zones or lines.
     */
    track: SourceTrackSchema,
    /** Polygons whose enter / exit / dwell become events (tracked sources). */
    zones: ZonesSchema,
    /** Directed lines whose crossings are counted, per class and direction (tracked sources). */
    lines: LinesSchema,
  })
  .superRefine((source, ctx) => {
    if (source.track === false && (source.zones.length > 0 || source.lines.length > 0)) {
      const message = 'zones and lines need tracking: remove `track: false` (or the zones and lines)';
      ctx.addIssue({ code: 'custom', path: ['track'], message });
    }
  })
  .describe('where frames come from');

export const OnnxSchema = z.strictObject({
  /** Threads one inference call uses; null = onnxruntime's default (one per core). */
  intraOpThreads: positiveInt.max(256).nullable().default(null),
  /** Threads running independent branches of the graph in parallel; null = onnxruntime's default (sequential). */
  interOpThreads: positiveInt.max(256).nullable().default(null),
  /**
   * Whether idle inference threads spin waiting for work (onnxruntime's default) or sleep, leaving the core to
   * decoding, preprocessing and encoding. Off by default: measured on the default model with the whole pipeline on
   * 2 cores, the same fps (1.02x) for 12 % less CPU (README, "onnxruntime's threads").
   */
  spinWait: z.boolean().default(false),
  /**
   * Inference workers (threads, each with its own onnxruntime session), runs spread over them and answered in order.
   * With more than one, intraOpThreads defaults to 1 per worker. Files gain throughput; a live frame's inference takes
   * longer on one thread, so live sources keep one worker unless set.
   */
  workers: positiveInt.max(16).default(1),
});

export type OnnxOptions = z.output<typeof OnnxSchema>;

export const PipelineSchema = z.strictObject({
  /** Preallocated model-input buffers shared with the inference worker; 2 = double buffering, 1 = no overlap. */
  ringSize: z.number().int().min(1).max(16).default(2),
  /** Frames read but not yet written by every sink; bounds memory whatever the slowest stage is. */
  maxInFlight: z.number().int().min(1).max(64).default(4),
  /**
   * onnx engine: hand the model the resized frame's uint8 bytes (in the model's channel order) and do scale,
   * mean / std and layout inside it (a prologue added to the ONNX graph once, cached): a quarter of the bytes per
   * frame and no per-pixel float work on the main thread. false: OpenCV makes the float input, as for the other
   * engines.
   */
  pixelsInModel: z.boolean().default(true),
  /**
   * Live sources: read and preprocess the newest frame when the worker is about to be free (predicted from the
   * measured inference and preprocessing times), not right after the previous frame was sent, where it would wait a
   * whole inference and arrive stale. Files always use double buffering.
   */
  justInTime: z.boolean().default(true),
  /**
   * onnx engine, several sources: frames of different sources waiting for the worker run in one inference call, up to
   * this many (the model is rewritten once to take a batch, cached, and checked against batch 1). 1 = never batch.
   */
  maxBatch: z.number().int().min(1).max(16).default(4),
  /**
   * measured: batch only up to the largest size that made each image ≥ 10 % cheaper on this machine (timed once when
   * the batched model is made, cached per CPU model; large images often gain nothing). always: up to maxBatch.
   */
  batchChoice: z.enum(['measured', 'always']).default('measured'),
  /**
   * When the run fails because of its sources. all-sources-failed: a live source that gives up stops alone
   * (state `failed`) and the run goes on while any source runs; any-source-failed: the first one ends the run.
   */
  failWhen: z.enum(['all-sources-failed', 'any-source-failed']).default('all-sources-failed'),
  /**
   * A frame whose inference fails is skipped, counted (`inference-error`) and reported as a `frame-error` event;
   * this many failures in a row fail the run with that error (0 = the first failure does).
   */
  maxFailedFramesInARow: nonNegativeInt.max(1000).default(10),
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
  /** Tracked sources: the trail drawn behind each object, as its last this many positions (0 = none). */
  trailPoints: nonNegativeInt.max(1000).default(20),
});

export const OutputSchema = z.strictObject({
  /** Annotated H.264 MP4 path; null = no video. */
  video: z.string().min(1).nullable().default(null),
  /** JSON-lines events path (predictions, object events, state changes); null = none. */
  events: z.string().min(1).nullable().default(null),
  /** Write one `prediction` line per frame to the events file; false = object and state events only. */
  frameEvents: z.boolean().default(true),
  /**
   * A directory for JPEG snapshots of tracked objects (the best frame of the track so far) at object.start,
   * object.end, zone.enter and line.cross; events carry the path. null = none.
   */
  snapshots: z.string().min(1).nullable().default(null),
  snapshot: z
    .strictObject({
      /** crop: the object's box with a margin; full: the whole frame with the box drawn. */
      mode: z.enum(['crop', 'full']).default('crop'),
      /** JPEG quality 1–100. */
      quality: z.number().int().min(1).max(100).default(85),
      /** crop: margin around the box, as a fraction of its width / height on each side. */
      marginFraction: z.number().min(0).max(2).default(0.15),
    })
    .prefault({}),
  /**
   * A directory for MP4 clips of tracked objects' events: from `clip.preSeconds` before the event to
   * `clip.postSeconds` after it, cut from a rolling buffer of encoded video; events carry the path, and a
   * `clip.ready` event follows when the file is written. null = none.
   */
  clips: z.string().min(1).nullable().default(null),
  clip: z
    .strictObject({
      /** Seconds before the moment of the event (for zone and line events: when the object entered or crossed). */
      preSeconds: z.number().min(0).max(60).default(5),
      /** Seconds after the frame that decided the event. */
      postSeconds: z.number().min(0).max(60).default(5),
      /** Events whose clips would overlap share one clip, up to this many seconds long. */
      maxSeconds: positiveInt.max(600).default(30),
      /**
       * The event types that get a clip; null (the default): zone.enter and line.cross on sources with zones or
       * lines, object.start on the others.
       */
      events: z.array(z.enum(CLIP_TRIGGER_TYPES)).min(1).nullable().default(null),
      /** Live sources are recorded at their frame rate up to this (frames are repeated to keep real time). */
      maxFps: z.number().min(1).max(60).default(10),
      /** x264 quality and speed of the rolling recording (it encodes every frame once more). */
      crf: nonNegativeInt.max(51).default(26),
      preset: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium']).default('ultrafast'),
      /** Clip files one run keeps at most; its oldest are deleted beyond it. */
      maxFiles: positiveInt.max(1_000_000).default(1000),
    })
    .prefault({})
    .refine((c) => c.maxSeconds >= c.preSeconds + c.postSeconds, {
      message: 'maxSeconds must be at least preSeconds + postSeconds (one event\'s clip must fit)',
      path: ['maxSeconds'],
      // Also when another key of the clip section is wrong: every problem is reported at once.
      when: ({ value }) => {
        const c = value as { preSeconds?: unknown; postSeconds?: unknown; maxSeconds?: unknown } | null;
        return typeof c === 'object' && c !== null && [c.preSeconds ?? 5, c.postSeconds ?? 5, c.maxSeconds ?? 30].every((v) => typeof v === 'number');
      },
    }),
  /** x264 constant rate factor (lower = better quality, bigger file). */
  crf: nonNegativeInt.max(51).default(23),
  /** x264 preset. */
  preset: z
    .enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'])
    .default('veryfast'),
  /** x264 threads of the MP4 encoder (one ffmpeg per video output); null = x264's own choice (1.5 per core). */
  encoderThreads: positiveInt.max(64).nullable().default(null),
  /**
   * Live sources: the video and events are written in segments of this many seconds (each finalised and playable
   * when it closes, named `<name>.<UTC start>.<ext>`); null = one file for the whole run. Files are never segmented.
   */
  segmentSeconds: positiveInt.max(86_400).nullable().default(300),
  /** Deletes the oldest closed segments (of this run's outputs) beyond these bounds; null = keep. */
  retention: z
    .strictObject({
      /** Segments that closed longer ago than this are deleted. */
      maxAgeSeconds: positiveInt.nullable().default(null),
      /** Oldest segments are deleted while the segments of one output take more than this. */
      maxTotalBytes: positiveInt.nullable().default(null),
    })
    .prefault({}),
});

export const ConfigSchema = z.strictObject({
  /** One source, or several sharing one inference worker. */
  source: z.preprocess((v) => (Array.isArray(v) ? v : [v]), z.array(SourceSchema).min(1)),
  /** A descriptor name from models/ (e.g. `centernet`) or a path to a descriptor YAML. */
  model: z.string().min(1).default('centernet'),
  /**
   * Overrides the descriptor's engine. `auto` keeps the descriptor's choice; `opencv` runs ONNX models (and TF.js
   * graphs, converted first) on OpenCV DNN, for comparison with onnxruntime.
   */
  engine: z.enum(['auto', 'onnx', 'tfjs', 'opencv']).default('auto'),
  /** onnxruntime's threads (the onnx engine); see the README's "onnxruntime's threads" for how the defaults were chosen. */
  onnx: OnnxSchema.prefault({}),
  pipeline: PipelineSchema.prefault({}),
  postprocess: PostprocessSchema.prefault({}),
  annotate: AnnotateSchema.prefault({}),
  /** With several sources, `output.video` must contain `{source}` (one MP4 per source); events share one file. */
  output: OutputSchema.prefault({}),
  /** Events to an MQTT broker through a durable outbox (see the README's Delivery section). */
  delivery: DeliverySchema.prefault({}),
  /** A Prometheus scrape endpoint (GET /metrics) while the pipeline runs; port null = off, 0 = any free port. */
  metrics: z
    .strictObject({
      port: z.number().int().min(0).max(65535).nullable().default(null),
      /** 127.0.0.1 keeps it local; 0.0.0.0 exposes it to the network. */
      host: z.string().min(1).default('127.0.0.1'),
    })
    .prefault({}),
  /** The live page: every source annotated in the browser, with its state, numbers and events. */
  ui: UiSchema.prefault({}),
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
export type SourceConfig = z.output<typeof SourceSchema>;
export type EngineName = Exclude<Config['engine'], 'auto'>;
