import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Ort from 'onnxruntime-node';
import { InferenceWorkerHost, type WorkerRunResult } from '../../src/inference/worker-host.js';
import { asOnnxDescriptor } from '../../src/models/convert-model.js';
import type { ModelDescriptor } from '../../src/models/descriptor-schema.js';
import { loadModelDescriptor } from '../../src/models/load-descriptor.js';
import { inputDims, preprocessSpecOf } from '../../src/preprocess/preprocess-frame.js';
import { HAS_SHARED } from '../helpers/shared.js';

/**
 * The real inference worker (onnxruntime in a worker thread) fed malformed inputs: each fails alone with
 * VP_INFERENCE_FAILED and its buffer handed back, and the next good input gives the right answer.
 */

// The tiny classifier keeps this light; the default detector (converted on first use) in a fresh clone without ../shared.
const MODEL = HAS_SHARED ? 'mlperf-tiny-resnet' : 'centernet';

let descriptor: ModelDescriptor;
let host: InferenceWorkerHost;
let dims: number[];
let good: Float32Array;
/** What onnxruntime, run directly on this thread, says for `good`: the worker must say the same. */
let expected: Float32Array;

beforeAll(async () => {
  descriptor = await asOnnxDescriptor(loadModelDescriptor(MODEL));
  dims = inputDims(preprocessSpecOf(descriptor));
  const elements = dims.reduce((a, b) => a * b, 1);
  // A fixed pseudo-random image (0..255, as the descriptors' raw-pixel inputs expect).
  good = Float32Array.from({ length: elements }, (_, i) => (i * 7919) % 256);
  const ort: typeof Ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(descriptor.modelPath);
  const outName = session.outputNames.find((n) => n === descriptor.output.name) ?? session.outputNames[0]!;
  const inName = session.inputNames.find((n) => n === descriptor.input.name) ?? session.inputNames[0]!;
  const out = await session.run({ [inName]: new ort.Tensor('float32', good.slice(), dims) }, [outName]);
  expected = new Float32Array(out[outName]!.data as Float32Array);
  await session.release();
  host = await InferenceWorkerHost.start(descriptor, 'onnx');
});

afterAll(async () => {
  await host?.close();
});

/** Runs one input in the worker; resolves with the outcome and the buffer that came back through giveBack. */
async function runOnce(buffer: ArrayBuffer, runDims: number[]): Promise<{ result?: WorkerRunResult; error?: Error; returned: ArrayBuffer | undefined }> {
  let returned: ArrayBuffer | undefined;
  try {
    const result = await host.run(3, buffer, runDims, 'float32', (slotId, b) => {
      expect(slotId).toBe(3);
      returned = b;
    });
    return { result, returned };
  } catch (error) {
    return { error: error as Error, returned };
  }
}

function closeTo(actual: Float32Array, wanted: Float32Array): void {
  expect(actual.length).toBe(wanted.length);
  let worst = 0;
  for (let i = 0; i < wanted.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - wanted[i]!));
  expect(worst).toBeLessThan(1e-4);
}

describe(`the inference worker survives bad inputs (${MODEL})`, () => {
  it('fails each malformed input alone with VP_INFERENCE_FAILED, hands its buffer back, and keeps answering correctly', async () => {
    const bytes = good.byteLength;
    const ok = await runOnce(good.slice().buffer, dims);
    expect(ok.error).toBeUndefined();
    closeTo(ok.result!.output, expected);

    const [n, h, w, c] = dims as [number, number, number, number];
    const cases: Array<{ why: string; buffer: ArrayBuffer; dims: number[]; message: RegExp }> = [
      // More elements than the buffer holds: the typed-array construction that used to throw outside the try.
      { why: 'dims larger than the buffer', buffer: new ArrayBuffer(bytes), dims: [n, h * 2, w, c], message: /cannot be a model input/ },
      { why: 'a buffer too short for the dims', buffer: new ArrayBuffer(bytes - 4), dims, message: /cannot be a model input/ },
      { why: 'non-integer and negative dims', buffer: new ArrayBuffer(bytes), dims: [n, -h, w / 3, c], message: /cannot be a model input/ },
      // Right byte count, wrong shape for the model: onnxruntime itself refuses it.
      { why: 'a shape the model refuses', buffer: new ArrayBuffer(bytes), dims: [n, c, h, w], message: /The engine failed on input/ },
    ];
    for (const bad of cases) {
      const sentBytes = bad.buffer.byteLength;
      const outcome = await runOnce(bad.buffer, bad.dims);
      expect(outcome.result, bad.why).toBeUndefined();
      expect((outcome.error as { code?: string }).code, bad.why).toBe('VP_INFERENCE_FAILED');
      expect(outcome.error!.message, bad.why).toMatch(bad.message);
      // The error names the input it failed on, so a log line can be traced to its frame.
      expect(outcome.error!.message, bad.why).toContain(`dims ${JSON.stringify(bad.dims)} float32`);
      // The ring slot comes back, whole (the buffer sent was transferred, so it is detached here).
      expect(bad.buffer.byteLength, bad.why).toBe(0);
      expect(outcome.returned?.byteLength, bad.why).toBe(sentBytes);
    }
    expect(host.inFlight).toBe(0);

    // Two good runs after the failures (one queued behind the other): both right, buffers back.
    const [a, b] = await Promise.all([runOnce(good.slice().buffer, dims), runOnce(good.slice().buffer, dims)]);
    for (const after of [a, b]) {
      expect(after.error).toBeUndefined();
      closeTo(after.result!.output, expected);
      expect(after.returned?.byteLength).toBe(bytes);
    }
  });
});
