import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { VisionpipeError, type ErrorCode, ERROR_CODES, messageOf } from '../errors.js';
import type { OnnxOptions } from '../config/schema.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import type { EngineInfo } from './engine.js';
import type { FromWorker, SerializedError, ToWorker, WorkerInit } from './worker-protocol.js';

/** One finished inference, with the input buffer handed back for reuse. */
export interface WorkerRunResult {
  slotId: number;
  buffer: ArrayBuffer;
  output: Float32Array;
  outputDims: number[];
  /** Time inside engine.run, measured in the worker (the whole batch's when batched). */
  inferMs: number;
  /** Inputs in the engine call this one was part of (1 = alone). */
  batchSize?: number;
}

/** Batching asked of the worker (see WorkerInit.batch). */
export interface BatchOptions {
  modelPath: string;
  maxBatch: number;
}

interface Pending {
  slotId: number;
  /** Of the buffer sent: a replacement of this size is given back when the worker cannot return the original. */
  byteLength: number;
  resolve: (r: WorkerRunResult) => void;
  reject: (e: Error) => void;
  giveBack: (slotId: number, buffer: ArrayBuffer) => void;
}

/**
 * The main thread's handle on the inference worker. `run` transfers an input buffer to the worker and resolves
 * with the output and the same buffer transferred back; runs complete in the order they were sent.
 */
export class InferenceWorkerHost {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private failure: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    /** What the engine reported once loaded. */
    readonly info: EngineInfo,
    /** Inputs one engine call takes at most: 1 unless a batched model was asked for and loaded. */
    readonly maxBatch = 1,
    /** Why batching is off although it was asked for (the batched model did not load); null otherwise. */
    readonly batchRefused: string | null = null,
  ) {
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    worker.on('error', (err) => this.failAll(inferenceError(`The inference worker crashed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (!this.closed) this.failAll(inferenceError(`The inference worker exited unexpectedly (code ${code})`));
    });
  }

  /** Starts a worker, loads the model in it, and resolves once it is ready (or rejects with the load error). */
  static async start(descriptor: ModelDescriptor, engine: 'onnx' | 'tfjs', onnx?: OnnxOptions, batch?: BatchOptions): Promise<InferenceWorkerHost> {
    const init: WorkerInit = { descriptor, engine, ...(onnx === undefined ? {} : { onnx }), ...(batch === undefined ? {} : { batch }) };
    const worker = spawnWorker(init);
    const ready = await new Promise<Extract<FromWorker, { type: 'ready' }>>((resolve, reject) => {
      const onMessage = (msg: FromWorker) => {
        if (msg.type === 'ready') resolve(msg);
        else if (msg.type === 'fatal') reject(deserialize(msg.error));
        else return;
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      const onError = (err: Error) => reject(inferenceError(`The inference worker failed to start: ${err.message}`));
      worker.on('message', onMessage);
      worker.once('error', onError);
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    return new InferenceWorkerHost(worker, ready.info, ready.maxBatch, ready.batchRefused ?? null);
  }

  /**
   * Sends one input. `buffer` is transferred: it is detached here until the result (or error) brings it back,
   * at which point `giveBack` is called with it — before the promise settles, on every path: a run the worker
   * could not return the buffer of (or that a worker crash lost) gives back a fresh zeroed buffer of the same size,
   * so the ring never loses a slot. A failed run rejects with its VP_ error (VP_INFERENCE_FAILED for the engine's
   * own failures) and does not affect later runs.
   */
  run(
    slotId: number,
    buffer: ArrayBuffer,
    dims: number[],
    dtype: 'float32' | 'uint8',
    giveBack: (slotId: number, buffer: ArrayBuffer) => void,
  ): Promise<WorkerRunResult> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(inferenceError('The inference worker is closed'));
    const seq = this.seq++;
    const msg: ToWorker = { type: 'run', seq, slotId, buffer, dims, dtype };
    const byteLength = buffer.byteLength;
    return new Promise<WorkerRunResult>((resolve, reject) => {
      this.pending.set(seq, { slotId, byteLength, resolve, reject, giveBack });
      try {
        this.worker.postMessage(msg, [buffer]);
      } catch (err) {
        // Not sent (e.g. the buffer was already detached): nothing will answer it, and the caller keeps the buffer.
        this.pending.delete(seq);
        reject(inferenceError(`Could not send input ${seq} to the inference worker: ${messageOf(err)}`));
      }
    });
  }

  /** True once the worker crashed or exited unexpectedly: every run fails from then on. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Runs sent but not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Disposes the engine and ends the thread. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.failure === undefined) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5000);
        this.worker.on('message', (msg: FromWorker) => {
          if (msg.type === 'disposed') {
            clearTimeout(timer);
            resolve();
          }
        });
        this.worker.postMessage({ type: 'dispose' } satisfies ToWorker);
      });
    }
    await this.worker.terminate();
  }

  private onMessage(msg: FromWorker): void {
    if (msg.type !== 'result' && msg.type !== 'run-error') return;
    const p = this.pending.get(msg.seq);
    if (p === undefined) return;
    this.pending.delete(msg.seq);
    if (!giveBackOrReject(p, msg.buffer ?? new ArrayBuffer(p.byteLength))) return;
    if (msg.type === 'result') {
      p.resolve({ slotId: msg.slotId, buffer: msg.buffer, output: msg.output, outputDims: msg.outputDims, inferMs: msg.inferMs, batchSize: msg.batchSize });
    } else p.reject(deserialize(msg.error));
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    const lost = [...this.pending.values()];
    this.pending.clear();
    // The buffers died with the thread: give back replacements so whoever waits for a free slot is not stranded.
    for (const p of lost) if (giveBackOrReject(p, new ArrayBuffer(p.byteLength))) p.reject(err);
  }
}

/**
 * From dist/ the worker is plain JS. From the TypeScript sources (tests, `tsx`), Node 20 does not apply
 * `--import tsx` to a worker's entry module, so a tiny bootstrap registers tsx's loader and then imports it.
 */
function spawnWorker(init: WorkerInit): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker.js', import.meta.url), { workerData: init });
  const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsxApi = pathToFileURL(join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href;
  const entry = new URL('./worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: init });
}

/** Hands the buffer back; if the owner refuses it (its own assertion failed), the run fails with that. */
function giveBackOrReject(p: Pending, buffer: ArrayBuffer): boolean {
  try {
    p.giveBack(p.slotId, buffer);
    return true;
  } catch (err) {
    p.reject(err instanceof Error ? err : new Error(String(err)));
    return false;
  }
}

function inferenceError(what: string): VisionpipeError {
  return new VisionpipeError('VP_INFERENCE_FAILED', what);
}

function deserialize(e: SerializedError): Error {
  if (e.code !== undefined && e.code in ERROR_CODES) {
    const err = new VisionpipeError(e.code as ErrorCode, '');
    // Keep the worker's full message (it already carries the hint).
    Object.defineProperty(err, 'message', { value: e.message });
    return err;
  }
  return inferenceError(`Inference failed: ${e.message}`);
}
