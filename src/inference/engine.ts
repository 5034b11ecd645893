import type { ModelDescriptor } from '../models/descriptor-schema.js';

/** A model input or output tensor: data plus dimensions, row-major. */
export interface TensorData {
  data: Float32Array | Uint8Array;
  dims: readonly number[];
}

/** What an engine reports once loaded, for logs and validation. */
export interface EngineInfo {
  /** e.g. `onnxruntime-node 1.30.0 (cpu)` or `tfjs 4.22.0 (wasm)`. */
  backend: string;
  inputName: string;
  outputName: string;
  /** The model's own declared input shape; -1 / null for dynamic dimensions. */
  inputShape: ReadonlyArray<number | null>;
}

/**
 * Runs one model. Lives inside the inference worker thread: `run` may block its thread (onnxruntime-node's
 * session.run does), which is why it never runs on the main thread.
 */
export interface InferenceEngine {
  load(descriptor: ModelDescriptor): Promise<EngineInfo>;
  /** Runs one input (batch included in dims); the input memory is not retained after the promise settles. */
  run(input: TensorData): Promise<TensorData>;
  dispose(): Promise<void>;
}
