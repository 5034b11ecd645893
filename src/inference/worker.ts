import { parentPort, workerData } from 'node:worker_threads';
import { ERROR_CODES, VisionpipeError, messageOf } from '../errors.js';
import type { InferenceEngine } from './engine.js';
import type { FromWorker, RunRequest, SerializedError, ToWorker, WorkerInit } from './worker-protocol.js';

/**
 * The inference worker thread. It owns the engine; it never loads OpenCV (the addon supports one thread per
 * process and the main thread has it). Runs are executed one at a time in arrival order, and each input buffer
 * is transferred back to the main thread as soon as its run is done.
 *
 * A run that fails (a malformed request, or the engine throwing) fails alone: it is answered with `run-error`
 * (VP_INFERENCE_FAILED, the engine's message and the input's dims) and its buffer, and the next run proceeds as
 * if nothing happened. Nothing in the message path can reject the run queue.
 */
const port = parentPort;
if (port === null) throw new Error('worker.ts must run as a worker thread');
const init = workerData as WorkerInit;

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

function serialize(err: unknown): SerializedError {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? { code, message: messageOf(err) } : { message: messageOf(err) };
}

async function createEngine(): Promise<InferenceEngine> {
  if (init.engine === 'onnx') return new (await import('./onnx-engine.js')).OnnxEngine(init.onnx);
  return new (await import('./tfjs-engine.js')).TfjsEngine();
}

let engine: InferenceEngine | undefined;
/** The batched model's engine (init.batch), when it loaded. */
let batchEngine: InferenceEngine | undefined;

/** The input as a typed array over the transferred buffer, after checking the request can describe one. */
function inputOf(msg: RunRequest): Float32Array | Uint8Array {
  const bytesPerElement = msg.dtype === 'uint8' ? 1 : msg.dtype === 'float32' ? 4 : 0;
  const dimsValid = Array.isArray(msg.dims) && msg.dims.length > 0 && msg.dims.every((d) => Number.isSafeInteger(d) && d > 0);
  const elements = dimsValid ? msg.dims.reduce((a, b) => a * b, 1) : NaN;
  const byteLength = msg.buffer instanceof ArrayBuffer ? msg.buffer.byteLength : NaN;
  if (bytesPerElement === 0 || !dimsValid || !(elements * bytesPerElement <= byteLength)) {
    throw new VisionpipeError('VP_INFERENCE_FAILED', `Input ${msg.seq} cannot be a model input`, {
      value: describeInput(msg),
      expected: 'positive integer dims, dtype float32 or uint8, and a buffer holding dims × element size bytes',
      hint: 'This is a bug in visionpipe (preprocessing and the ring disagree on the input size): please report it.',
    });
  }
  return msg.dtype === 'uint8' ? new Uint8Array(msg.buffer, 0, elements) : new Float32Array(msg.buffer, 0, elements);
}

function describeInput(msg: RunRequest): string {
  const bytes = msg.buffer instanceof ArrayBuffer ? `${msg.buffer.byteLength}-byte buffer` : 'no buffer';
  return `dims ${JSON.stringify(msg.dims)} ${String(msg.dtype)} in a ${bytes}`;
}

/** The engine's error as a VP error naming the input, unless it already carries a VP code of its own. */
function runFailure(msg: RunRequest, err: unknown): SerializedError {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in ERROR_CODES) return serialize(err);
  return serialize(
    new VisionpipeError('VP_INFERENCE_FAILED', `The engine failed on input ${msg.seq} (${describeInput(msg)}): ${messageOf(err)}`),
  );
}

async function run(msg: RunRequest): Promise<void> {
  try {
    const data = inputOf(msg);
    if (engine === undefined) throw new Error('the engine is not loaded');
    const startMs = performance.now();
    const out = await engine.run({ data, dims: msg.dims });
    // Transfer only a buffer the output owns whole; anything else is copied first.
    const whole = out.data instanceof Float32Array && out.data.byteOffset === 0 && out.data.byteLength === out.data.buffer.byteLength;
    const output = whole ? (out.data as Float32Array) : Float32Array.from(out.data);
    const inferMs = performance.now() - startMs;
    post(
      { type: 'result', seq: msg.seq, slotId: msg.slotId, buffer: msg.buffer, output, outputDims: [...out.dims], inferMs, batchSize: 1 },
      [msg.buffer, output.buffer as ArrayBuffer],
    );
  } catch (err) {
    answerFailure(msg, runFailure(msg, err));
  }
}

/**
 * Several waiting inputs in one call of the batched model: their bytes are copied side by side (the only copy
 * batching adds), the output is split back per input, and each input is answered on its own, in order. If the
 * batched call fails, each input is run alone, so one bad input fails only itself.
 */
async function runBatch(msgs: RunRequest[]): Promise<void> {
  let outputs: Float32Array[];
  let outputDims: number[];
  let inferMs: number;
  let inputs: Array<Float32Array | Uint8Array>;
  try {
    inputs = msgs.map(inputOf);
  } catch {
    // A malformed input: each runs alone, so only that one fails.
    for (const msg of msgs) await run(msg);
    return;
  }
  try {
    if (batchEngine === undefined) throw new Error('no batched model');
    const per = inputs[0]!.length;
    const joined = inputs[0] instanceof Uint8Array ? new Uint8Array(per * msgs.length) : new Float32Array(per * msgs.length);
    inputs.forEach((data, i) => joined.set(data, i * per));
    const startMs = performance.now();
    const out = await batchEngine.run({ data: joined, dims: [msgs.length, ...msgs[0]!.dims.slice(1)] });
    inferMs = performance.now() - startMs;
    const each = out.data.length / msgs.length;
    if (out.dims[0] !== msgs.length || !Number.isInteger(each)) throw new Error(`the batched model answered dims ${JSON.stringify(out.dims)} for ${msgs.length} inputs`);
    outputs = msgs.map((_, i) => Float32Array.from(out.data.subarray(i * each, (i + 1) * each)));
    outputDims = [1, ...out.dims.slice(1)];
  } catch (err) {
    // Well-formed inputs the batched model failed on (e.g. a per-image output whose size depends on the picture):
    // batching ends for this worker, said once, and these inputs run alone.
    if (batchEngine !== undefined) {
      console.error(`visionpipe inference worker: batching turned off, the batched model failed on ${msgs.length} inputs: ${messageOf(err)}`);
      const failed = batchEngine;
      batchEngine = undefined;
      await failed.dispose().catch(() => undefined);
    }
    for (const msg of msgs) await run(msg);
    return;
  }
  msgs.forEach((msg, i) => {
    const output = outputs[i]!;
    post(
      { type: 'result', seq: msg.seq, slotId: msg.slotId, buffer: msg.buffer, output, outputDims, inferMs, batchSize: msgs.length },
      [msg.buffer, output.buffer as ArrayBuffer],
    );
  });
}

/** Sends run-error with the buffer back; if it cannot be transferred, without it (the host then replaces the slot). */
function answerFailure(msg: RunRequest, error: SerializedError): void {
  try {
    post({ type: 'run-error', seq: msg.seq, slotId: msg.slotId, buffer: msg.buffer, error }, [msg.buffer]);
    return;
  } catch {
    // Not a transferable ArrayBuffer (detached, or not one at all): answer without it.
  }
  try {
    post({ type: 'run-error', seq: msg.seq, slotId: msg.slotId, error });
  } catch (err) {
    console.error(`visionpipe inference worker: cannot answer run ${msg.seq}: ${messageOf(err)}`);
  }
}

async function dispose(): Promise<void> {
  try {
    await engine?.dispose();
  } catch (err) {
    // The host is shutting the thread down either way; say why the engine did not release cleanly.
    console.error(`visionpipe inference worker: engine dispose failed: ${messageOf(err)}`);
  }
  try {
    await batchEngine?.dispose();
  } catch (err) {
    console.error(`visionpipe inference worker: batched engine dispose failed: ${messageOf(err)}`);
  }
  engine = undefined;
  batchEngine = undefined;
  post({ type: 'disposed' });
}

async function load(): Promise<void> {
  try {
    engine = await createEngine();
    const info = await engine.load(init.descriptor);
    let batchRefused: string | undefined;
    if (init.batch !== undefined && init.batch.maxBatch > 1) {
      try {
        const batched = await createEngine();
        await batched.load({ ...init.descriptor, modelPath: init.batch.modelPath });
        batchEngine = batched;
      } catch (err) {
        batchRefused = `the batched model did not load: ${messageOf(err)}`;
      }
    }
    const maxBatch = batchEngine === undefined ? 1 : (init.batch?.maxBatch ?? 1);
    post({ type: 'ready', info, maxBatch, ...(batchRefused === undefined ? {} : { batchRefused }) });
  } catch (err) {
    post({ type: 'fatal', error: serialize(err) });
  }
}

/**
 * The queue: runs wait here while the engine is busy; when it frees, every run waiting (up to maxBatch, same dims and
 * dtype, none after a dispose) goes in one call. Loading is the first thing done, so an early request waits for the
 * engine. Between calls the loop yields once, so runs posted during a call have arrived before the next batch forms.
 */
const waiting: ToWorker[] = [];
let draining: Promise<void> = load();
let drainScheduled = false;

function takeNext(): ToWorker[] {
  const first = waiting.shift();
  if (first === undefined || first.type !== 'run' || batchEngine === undefined) return first === undefined ? [] : [first];
  const batch: RunRequest[] = [first];
  const limit = init.batch?.maxBatch ?? 1;
  const key = `${first.dtype}|${JSON.stringify(first.dims)}`;
  while (batch.length < limit) {
    const next = waiting[0];
    if (next === undefined || next.type !== 'run' || `${next.dtype}|${JSON.stringify(next.dims)}` !== key) break;
    batch.push(next);
    waiting.shift();
  }
  return batch;
}

async function drain(): Promise<void> {
  for (;;) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const next = takeNext();
    if (next.length === 0) return;
    const [head] = next;
    if (head?.type === 'dispose') await dispose();
    else if (next.length === 1) await run(head as RunRequest);
    else await runBatch(next as RunRequest[]);
  }
}

port.on('message', (msg: ToWorker) => {
  waiting.push(msg);
  if (drainScheduled) return;
  drainScheduled = true;
  draining = draining
    .then(() => {
      drainScheduled = false;
      return drain();
    })
    // run() and dispose() answer their own failures; this only keeps a bug from breaking every later run.
    .catch((err: unknown) => console.error(`visionpipe inference worker: ${messageOf(err)}`));
});
