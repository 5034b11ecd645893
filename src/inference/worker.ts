import { parentPort, workerData } from 'node:worker_threads';
import { messageOf } from '../errors.js';
import type { InferenceEngine } from './engine.js';
import type { FromWorker, SerializedError, ToWorker, WorkerInit } from './worker-protocol.js';

/**
 * The inference worker thread. It owns the engine; it never loads OpenCV (the addon supports one thread per
 * process and the main thread has it). Runs are executed one at a time in arrival order, and each input buffer
 * is transferred back to the main thread as soon as its run is done.
 */
const port = parentPort;
if (port === null) throw new Error('worker.ts must run as a worker thread');
const init = workerData as WorkerInit;

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

function serialize(err: unknown): SerializedError {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? { code, message: messageOf(err) } : { message: messageOf(err) };
}

async function createEngine(): Promise<InferenceEngine> {
  if (init.engine === 'onnx') return new (await import('./onnx-engine.js')).OnnxEngine();
  return new (await import('./tfjs-engine.js')).TfjsEngine();
}

let engine: InferenceEngine | undefined;
let queue: Promise<void> = Promise.resolve();

async function handle(msg: ToWorker): Promise<void> {
  if (msg.type === 'dispose') {
    await engine?.dispose();
    post({ type: 'disposed' });
    return;
  }
  const length = msg.dims.reduce((a, b) => a * b, 1);
  const data = msg.dtype === 'uint8' ? new Uint8Array(msg.buffer, 0, length) : new Float32Array(msg.buffer, 0, length);
  const startMs = performance.now();
  try {
    if (engine === undefined) throw new Error('engine not loaded');
    const out = await engine.run({ data, dims: msg.dims });
    // Transfer only a buffer the output owns whole; anything else is copied first.
    const whole = out.data instanceof Float32Array && out.data.byteOffset === 0 && out.data.byteLength === out.data.buffer.byteLength;
    const output = whole ? (out.data as Float32Array) : Float32Array.from(out.data);
    const inferMs = performance.now() - startMs;
    post(
      { type: 'result', seq: msg.seq, slotId: msg.slotId, buffer: msg.buffer, output, outputDims: [...out.dims], inferMs },
      [msg.buffer, output.buffer as ArrayBuffer],
    );
  } catch (err) {
    post({ type: 'run-error', seq: msg.seq, slotId: msg.slotId, buffer: msg.buffer, error: serialize(err) }, [msg.buffer]);
  }
}

port.on('message', (msg: ToWorker) => {
  queue = queue.then(() => handle(msg));
});

try {
  engine = await createEngine();
  const info = await engine.load(init.descriptor);
  post({ type: 'ready', info });
} catch (err) {
  post({ type: 'fatal', error: serialize(err) });
}
