import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import { VisionpipeError, messageOf } from '../errors.js';
import type { OnnxOptions } from '../config/schema.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import { pickTensorName } from './pick-tensor-name.js';
import type { EngineInfo, InferenceEngine, TensorData } from './engine.js';

/** onnxruntime-node on the CPU execution provider, graph optimisations on. */
export class OnnxEngine implements InferenceEngine {
  private session: Ort.InferenceSession | undefined;
  private ort: typeof Ort | undefined;
  private inputName = '';
  private outputName = '';

  constructor(private readonly options: Partial<OnnxOptions> = {}) {}

  async load(descriptor: ModelDescriptor): Promise<EngineInfo> {
    let ort: typeof Ort;
    try {
      ort = await import('onnxruntime-node');
    } catch (cause) {
      throw new VisionpipeError('VP_ENGINE_UNAVAILABLE', 'The onnx engine (onnxruntime-node) could not be loaded', {
        value: messageOf(cause),
        cause,
      });
    }
    this.ort = ort;
    try {
      this.session = await ort.InferenceSession.create(descriptor.modelPath, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        ...sessionThreads(this.options),
      });
    } catch (cause) {
      throw new VisionpipeError('VP_MODEL_INVALID', `onnxruntime could not load the model "${descriptor.name}"`, {
        value: descriptor.modelPath,
        expected: 'a valid .onnx file',
        hint: `onnxruntime said: ${messageOf(cause)}`,
        cause,
      });
    }
    const session = this.session;
    this.inputName = pickTensorName(descriptor.input.name, session.inputNames, 'input', descriptor);
    this.outputName = pickTensorName(descriptor.output.name, session.outputNames, 'output', descriptor);
    const meta = session.inputMetadata.find((m) => m.name === this.inputName);
    const shape = meta !== undefined && meta.isTensor ? meta.shape.map((d) => (typeof d === 'number' ? d : null)) : [];
    return {
      backend: `onnxruntime-node ${readVersion()} (cpu)`,
      inputName: this.inputName,
      outputName: this.outputName,
      inputShape: shape,
    };
  }

  async run(input: TensorData): Promise<TensorData> {
    const { session, ort } = this;
    if (session === undefined || ort === undefined) throw new Error('OnnxEngine.run before load');
    const tensor =
      input.data instanceof Float32Array
        ? new ort.Tensor('float32', input.data, input.dims)
        : new ort.Tensor('uint8', input.data, input.dims);
    const results = await session.run({ [this.inputName]: tensor }, [this.outputName]);
    const out = results[this.outputName];
    if (out === undefined) throw new Error(`onnxruntime returned no output "${this.outputName}"`);
    const data = out.data;
    if (!(data instanceof Float32Array)) throw new Error(`output "${this.outputName}" is ${out.type}, expected float32`);
    // Copy out: the result memory belongs to onnxruntime and is about to be transferred across threads.
    const copy = new Float32Array(data);
    tensor.dispose();
    out.dispose();
    return { data: copy, dims: [...out.dims] };
  }

  async dispose(): Promise<void> {
    await this.session?.release();
    this.session = undefined;
  }
}

function readVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    return (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return '?';
  }
}

/** onnxruntime session options for the thread settings; unset ones keep onnxruntime's defaults. */
export function sessionThreads(o: Partial<OnnxOptions>): Ort.InferenceSession.SessionOptions {
  return {
    ...(o.intraOpThreads == null ? {} : { intraOpNumThreads: o.intraOpThreads }),
    ...(o.interOpThreads == null ? {} : { interOpNumThreads: o.interOpThreads, executionMode: 'parallel' as const }),
    // A session config entry ("session.intra_op.allow_spinning"); onnxruntime spins by default.
    ...(o.spinWait === false ? { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } } : {}),
  };
}
