import { z } from 'zod';

/**
 * What travels through Redis. Every job is parsed with these schemas when a worker takes it, so a job written by
 * another (older, newer, broken) client fails with a clear message instead of half-running.
 */

/** One recorded file to run (`visionpipe submit`). Paths are absolute and on storage every worker shares. */
export const FileJobSchema = z.strictObject({
  clip: z.string().min(1),
  model: z.string().min(1),
  engine: z.enum(['auto', 'onnx', 'tfjs', 'opencv']).default('auto'),
  /** Only the first n frames; null = the whole file. */
  maxFrames: z.number().int().positive().nullable().default(null),
  /** Final path of the annotated MP4; null = none. */
  video: z.string().min(1).nullable(),
  /** Final path of the events JSON lines; null = none. */
  events: z.string().min(1).nullable(),
  submittedAtMs: z.number().nonnegative(),
});
export type FileJob = z.output<typeof FileJobSchema>;

/** What a worker returns for a finished file job (kept in Redis for `cluster status` and the tests). */
export interface FileJobResult {
  worker: string;
  frames: number;
  /** createPipeline: open the clip, load the model. */
  setupMs: number;
  /** pipeline.run(): the frames, and finalising the outputs. */
  runMs: number;
  outputs: string[];
}

/** A camera's job: which camera, and which version of its desired spec (a changed spec is a new job). */
export const CameraJobSchema = z.strictObject({
  cameraId: z.string().min(1),
  hash: z.string().min(1),
  /** The last worker that started it: a start on another worker is a hand-over (after a death or a drain). */
  runningOn: z.string().optional(),
});
export type CameraJob = z.output<typeof CameraJobSchema>;

/** One desired camera, as `cluster apply` stores it in the desired-state hash. */
export const DesiredCameraSchema = z.strictObject({
  id: z.string().min(1),
  /** Of uri, fps and config: a change gives a new hash, so a new job, and the old one stops. */
  hash: z.string().min(1),
  /** The capacity it takes on a worker run with --capacity-fps; also its source.maxFps. */
  fps: z.number().positive(),
  /** A complete run configuration (one live source), already validated by `cluster apply`. */
  config: z.record(z.string(), z.unknown()),
});
export type DesiredCamera = z.output<typeof DesiredCameraSchema>;

/** What a worker writes about itself every heartbeat (`cluster status` reads it). */
export interface WorkerHeartbeat {
  id: string;
  pid: number;
  host: string;
  startedAtMs: number;
  seenAtMs: number;
  /** running | draining | redis-lost */
  mode: string;
  capacity: { unit: 'cameras' | 'fps'; total: number; used: number };
  cameras: Array<{ id: string; hash: string; state: string; predictions: number }>;
  files: Array<{ jobId: string; clip: string }>;
  filesDone: number;
}
