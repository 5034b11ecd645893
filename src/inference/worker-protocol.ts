import type { OnnxOptions } from '../config/schema.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import type { EngineInfo } from './engine.js';

/** Messages between the main thread (worker-host.ts) and the inference worker (worker.ts). */

export interface WorkerInit {
  descriptor: ModelDescriptor;
  engine: 'onnx' | 'tfjs';
  /** onnxruntime's thread settings (config `onnx`); absent = its defaults. */
  onnx?: OnnxOptions;
  /**
   * Batching (onnx engine): the same model rewritten to take a batch (see withDynamicBatch). Runs waiting in the
   * worker's queue when it becomes free go through it together, up to `maxBatch`; a lone run keeps the original.
   */
  batch?: { modelPath: string; maxBatch: number };
}

export interface SerializedError {
  code?: string;
  message: string;
}

/** One inference request. */
export interface RunRequest {
  type: 'run';
  seq: number;
  slotId: number;
  /** The ring slot's buffer, transferred (detached on the main thread until it comes back). */
  buffer: ArrayBuffer;
  dims: number[];
  dtype: 'float32' | 'uint8';
}

export type ToWorker = RunRequest | { type: 'dispose' };

export type FromWorker =
  | {
      type: 'ready';
      info: EngineInfo;
      /** Inputs one engine call takes at most (1 = no batching); with the reason when batching was asked for but is off. */
      maxBatch: number;
      batchRefused?: string;
    }
  | { type: 'fatal'; error: SerializedError }
  | {
      type: 'result';
      seq: number;
      slotId: number;
      /** The input buffer, transferred back so its slot can be reused. */
      buffer: ArrayBuffer;
      output: Float32Array;
      outputDims: number[];
      /** Time inside the engine call, measured in the worker (the whole batch's when batched). */
      inferMs: number;
      /** Inputs in the engine call this one was part of (1 = alone). */
      batchSize: number;
    }
  | {
      type: 'run-error';
      seq: number;
      slotId: number;
      /** The input buffer, transferred back; absent only when it could not be (the host then replaces it). */
      buffer?: ArrayBuffer;
      error: SerializedError;
    }
  | { type: 'disposed' };
