import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import vm from 'node:vm';

/**
 * TensorFlow Lite's own interpreter (the WebAssembly build shipped in @tensorflow/tfjs-tflite, a dev dependency) as a
 * reference engine for the TFLite importer's tests. The package is written for browsers: its emscripten module is
 * loaded here directly, as a "worker" script with the wasm bytes handed over, so nothing is fetched. Single-threaded
 * SIMD build; TFLite applies its XNNPACK delegate to float models (int8 models run TFLite's integer kernels).
 */
export interface TfliteReference {
  /** Runs the model on one input (float values; quantized inputs are quantized with the model's own parameters). */
  run(input: Float32Array): { raw: Float32Array | Int8Array | Uint8Array | Int32Array; dataType: string; outputs: Array<Float32Array | Int8Array | Uint8Array | Int32Array> };
  close(): void;
}

interface EmTensor {
  dataType: string;
  data(): Float32Array | Int8Array | Uint8Array | Int32Array;
}
interface EmVector<T> {
  size(): number;
  get(i: number): T;
  delete(): void;
}
interface EmRunner {
  GetInputs(): EmVector<EmTensor>;
  GetOutputs(): EmVector<EmTensor>;
  Infer(): boolean;
  delete(): void;
}
interface EmModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  TFLiteWebModelRunner: {
    CreateFromBufferAndOptions(ptr: number, size: number, o: { numThreads: number; enableProfiling: boolean; maxProfilingBufferEntries: number }): { ok(): boolean; errorMessage(): string; value(): EmRunner };
  };
}

let modulePromise: Promise<EmModule> | null = null;

function loadModule(): Promise<EmModule> {
  if (modulePromise !== null) return modulePromise;
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('@tensorflow/tfjs-tflite/package.json')), 'wasm');
  const g = globalThis as Record<string, unknown>;
  // The emscripten glue picks its "worker" branch when importScripts exists and reads self.location.
  g['self'] ??= globalThis;
  g['location'] ??= { href: `file://${dir}/` };
  g['importScripts'] ??= () => {};
  vm.runInThisContext(readFileSync(join(dir, 'tflite_web_api_cc_simd.js'), 'utf8'), { filename: 'tflite_web_api_cc_simd.js' });
  const factory = g['tflite_web_api_ModuleFactory'] as (o: { wasmBinary: Uint8Array }) => Promise<EmModule>;
  modulePromise = factory({ wasmBinary: readFileSync(join(dir, 'tflite_web_api_cc_simd.wasm')) });
  return modulePromise;
}

/**
 * Opens a .tflite file in TFLite's interpreter. `inputQuant` quantizes float inputs for int8 / uint8 models
 * (q = round(x / scale) + zeroPoint, clamped, half away from zero as TFLite rounds).
 */
export async function openTfliteReference(file: string | Uint8Array, inputQuant?: { scale: number; zeroPoint: number }): Promise<TfliteReference> {
  const m = await loadModule();
  const bytes = typeof file === 'string' ? readFileSync(file) : file;
  const ptr = m._malloc(bytes.byteLength);
  m.HEAPU8.set(bytes, ptr);
  const created = m.TFLiteWebModelRunner.CreateFromBufferAndOptions(ptr, bytes.byteLength, { numThreads: 1, enableProfiling: false, maxProfilingBufferEntries: 1024 });
  if (!created.ok()) {
    m._free(ptr);
    throw new Error(`TFLite could not load ${typeof file === 'string' ? file : 'the model'}: ${created.errorMessage()}`);
  }
  const runner = created.value();
  const first = <T>(v: EmVector<T>): T => {
    const x = v.get(0);
    v.delete();
    return x;
  };
  return {
    run(input) {
      const inT = first(runner.GetInputs());
      const data = inT.data();
      if (inT.dataType === 'float32') data.set(input);
      else {
        const { scale, zeroPoint } = inputQuant ?? { scale: 1, zeroPoint: 0 };
        const [lo, hi] = inT.dataType === 'int8' ? [-128, 127] : [0, 255];
        for (let i = 0; i < input.length; i++) {
          const v = input[i]! / scale;
          data[i] = Math.min(hi, Math.max(lo, Math.sign(v) * Math.round(Math.abs(v)) + zeroPoint));
        }
      }
      if (!runner.Infer()) throw new Error('TFLite inference failed');
      const list = runner.GetOutputs();
      const outputs = Array.from({ length: list.size() }, (_, i) => list.get(i).data().slice());
      const dataType = list.get(0).dataType;
      list.delete();
      return { raw: outputs[0]!, dataType, outputs };
    },
    close() {
      runner.delete();
      m._free(ptr);
    },
  };
}
