import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { VisionpipeError, messageOf } from '../errors.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import { pickTensorName } from './pick-tensor-name.js';
import type { EngineInfo, InferenceEngine, TensorData } from './engine.js';

const require = createRequire(import.meta.url);

/** TF.js backends in order of preference: native libtensorflow (optional install), then WebAssembly, then pure JS. */
export type TfjsBackendName = 'tensorflow' | 'wasm' | 'cpu';
const PREFERENCE: readonly TfjsBackendName[] = ['tensorflow', 'wasm', 'cpu'];

/**
 * Runs TF.js graph models (tensorflowjs_converter output) and layers models read from disk.
 * `@tensorflow/tfjs-node` is an optional dependency whose install downloads libtensorflow; where that failed,
 * the WebAssembly backend is used instead, and the backend chosen is reported in EngineInfo.backend.
 */
export class TfjsEngine implements InferenceEngine {
  private tf: typeof TF | undefined;
  private graph: TF.GraphModel | undefined;
  private layers: TF.LayersModel | undefined;
  private outputName = '';
  private inputName = '';
  private needsAsync = false;

  constructor(private readonly options: { backends?: readonly TfjsBackendName[] } = {}) {}

  async load(descriptor: ModelDescriptor): Promise<EngineInfo> {
    const { tf, backend, tried } = await selectBackend(this.options.backends ?? PREFERENCE);
    this.tf = tf;
    const handler = fileHandler(descriptor.modelPath);
    try {
      if (descriptor.format === 'tfjs-layers') this.layers = await tf.loadLayersModel(handler);
      else this.graph = await tf.loadGraphModel(handler);
    } catch (cause) {
      throw new VisionpipeError('VP_MODEL_INVALID', `TF.js could not load the model "${descriptor.name}"`, {
        value: descriptor.modelPath,
        expected: `a TF.js ${descriptor.format === 'tfjs-layers' ? 'layers' : 'graph'} model.json with its weight files`,
        hint: `TF.js said: ${messageOf(cause)}`,
        cause,
      });
    }
    const inputs = this.graph?.inputs ?? this.layers?.inputs ?? [];
    const outputs = this.graph?.outputs ?? this.layers?.outputs ?? [];
    const inputNames = inputs.map((i) => i.name);
    const outputNames = outputs.map((o) => o.name.replace(/:0$/, ''));
    this.inputName = pickTensorName(descriptor.input.name, inputNames, 'input', descriptor);
    this.outputName = pickTensorName(descriptor.output.name, outputNames, 'output', descriptor);
    const inputShape = inputs[inputNames.indexOf(this.inputName)]?.shape ?? [];
    const triedNote = tried.length > 0 ? `; unavailable: ${tried.join('; ')}` : '';
    return {
      backend: `tfjs ${tf.version.tfjs} (${backend}${triedNote})`,
      inputName: this.inputName,
      outputName: this.outputName,
      inputShape: inputShape.map((d) => (d === null || d < 0 ? null : d)),
    };
  }

  async run(input: TensorData): Promise<TensorData> {
    const tf = this.tf;
    if (tf === undefined) throw new Error('TfjsEngine.run before load');
    const x = tf.tensor(input.data, [...input.dims], input.data instanceof Float32Array ? 'float32' : 'int32');
    try {
      let y: TF.Tensor;
      if (this.graph !== undefined) {
        const feed = { [this.inputName]: x };
        // execute() is synchronous and fastest; models with control flow or dynamic shapes need executeAsync().
        let out: TF.Tensor | TF.Tensor[];
        if (this.needsAsync) out = await this.graph.executeAsync(feed, this.outputName);
        else {
          try {
            out = this.graph.execute(feed, this.outputName);
          } catch (err) {
            if (!/executeAsync/.test(messageOf(err))) throw err;
            this.needsAsync = true;
            out = await this.graph.executeAsync(feed, this.outputName);
          }
        }
        y = Array.isArray(out) ? (out[0] as TF.Tensor) : out;
      } else if (this.layers !== undefined) {
        const out = this.layers.predict(x);
        y = Array.isArray(out) ? (out[0] as TF.Tensor) : out;
      } else throw new Error('no model loaded');
      const data = (await y.data()) as Float32Array;
      const dims = [...y.shape];
      y.dispose();
      return { data: data instanceof Float32Array ? data : Float32Array.from(data), dims };
    } finally {
      x.dispose();
    }
  }

  async dispose(): Promise<void> {
    this.graph?.dispose();
    this.layers?.dispose();
    this.graph = undefined;
    this.layers = undefined;
  }
}

async function selectBackend(order: readonly TfjsBackendName[]) {
  const tried: string[] = [];
  for (const name of order) {
    try {
      if (name === 'tensorflow') {
        // Registers the native backend on the shared @tensorflow/tfjs core when its binary was installed.
        await import('@tensorflow/tfjs-node' as string);
      }
      const tf = await import('@tensorflow/tfjs');
      if (name === 'wasm') {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        const wasmDir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/');
        wasm.setWasmPaths(wasmDir.endsWith('/') ? wasmDir : `${wasmDir}/`);
      }
      if (!(await tf.setBackend(name))) throw new Error(`setBackend('${name}') returned false`);
      await tf.ready();
      return { tf, backend: name, tried };
    } catch (err) {
      tried.push(`${name}: ${firstLine(messageOf(err))}`);
    }
  }
  throw new VisionpipeError('VP_ENGINE_UNAVAILABLE', 'No TF.js backend could be started', {
    value: tried,
    hint: 'Reinstall with `npm ci`; @tensorflow/tfjs-backend-wasm should always work.',
  });
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

interface ModelJson {
  modelTopology?: unknown;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  signature?: unknown;
  userDefinedMetadata?: Record<string, object>;
  modelInitializer?: unknown;
  weightsManifest?: Array<{ paths: string[]; weights: TF.io.WeightsManifestEntry[] }>;
}

/** Reads model.json and its weight shards straight from disk (TF.js without tfjs-node has no file:// loader). */
function fileHandler(modelJsonPath: string): TF.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(readFileSync(modelJsonPath, 'utf8')) as ModelJson;
      if (json.modelTopology === undefined || json.weightsManifest === undefined) {
        throw new Error('model.json lacks modelTopology or weightsManifest');
      }
      const weightSpecs: TF.io.WeightsManifestEntry[] = [];
      const shards: Buffer[] = [];
      for (const group of json.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) shards.push(readFileSync(join(dirname(modelJsonPath), p)));
      }
      const all = Buffer.concat(shards);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
      return {
        modelTopology: json.modelTopology as object,
        weightSpecs,
        weightData,
        ...(json.format === undefined ? {} : { format: json.format }),
        ...(json.generatedBy === undefined ? {} : { generatedBy: json.generatedBy }),
        ...(json.convertedBy == null ? {} : { convertedBy: json.convertedBy }),
        ...(json.signature === undefined ? {} : { signature: json.signature as object }),
        ...(json.userDefinedMetadata === undefined ? {} : { userDefinedMetadata: json.userDefinedMetadata }),
        ...(json.modelInitializer === undefined ? {} : { modelInitializer: json.modelInitializer as object }),
      };
    },
  };
}
