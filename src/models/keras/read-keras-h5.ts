import { existsSync } from 'node:fs';
import { VisionpipeError, messageOf } from '../../errors.js';

/** One Keras layer as the importer needs it: class, config, where its inputs come from, and its weights. */
export interface KerasLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** Names of the layers whose outputs feed this one, in order. */
  inbound: string[];
  /** Weights by short name (`kernel`, `bias`, `gamma`, `beta`, `moving_mean`, `moving_variance`, …). */
  weights: Map<string, { shape: number[]; data: Float32Array }>;
}

export interface KerasModel {
  kerasVersion: string;
  layers: KerasLayer[];
  inputs: string[];
  outputs: string[];
}

type H5 = typeof import('h5wasm/node').default;
type H5File = InstanceType<H5['File']>;
type H5Group = InstanceType<H5['Group']>;
type H5Dataset = InstanceType<H5['Dataset']>;

/** Reads a Keras HDF5 model (Keras 2.x or Keras 3 `.h5`): the model_config JSON and every layer's weights. */
export async function readKerasH5(path: string): Promise<KerasModel> {
  if (!existsSync(path)) throw new VisionpipeError('VP_MODEL_NOT_FOUND', 'The Keras model file does not exist', { value: path });
  const h5 = (await import('h5wasm/node')).default;
  await h5.ready;
  let file: H5File;
  try {
    file = new h5.File(path, 'r');
  } catch (cause) {
    throw invalid(path, `not an HDF5 file (${messageOf(cause)})`, cause);
  }
  try {
    const configAttr = file.attrs['model_config']?.value;
    if (typeof configAttr !== 'string') throw invalid(path, 'no model_config attribute: a weights-only file, or not saved by Keras');
    const config = JSON.parse(configAttr) as { class_name: string; config: RawModelConfig };
    const version = String(file.attrs['keras_version']?.value ?? '?');
    const root = file.get('model_weights');
    const weightsRoot = (root instanceof h5.Group ? root : file) as H5Group;
    return parseModel(config, version, (layer) => readLayerWeights(h5, weightsRoot, layer), path);
  } catch (err) {
    if (err instanceof VisionpipeError) throw err;
    throw invalid(path, messageOf(err), err);
  } finally {
    file.close();
  }
}

interface RawLayer {
  class_name: string;
  name?: string;
  config: Record<string, unknown> & { name?: string; layers?: RawLayer[] };
  inbound_nodes?: unknown[];
}

interface RawModelConfig {
  name?: string;
  layers: RawLayer[];
  input_layers?: unknown;
  output_layers?: unknown;
}

function parseModel(
  model: { class_name: string; config: RawModelConfig },
  kerasVersion: string,
  weightsOf: (layer: string) => KerasLayer['weights'],
  path: string,
): KerasModel {
  const raw = model.config.layers;
  if (!Array.isArray(raw)) throw invalid(path, `model_config of class ${model.class_name} has no layer list`);
  const sequential = model.class_name === 'Sequential';
  const layers: KerasLayer[] = [];
  for (const [i, l] of raw.entries()) {
    const name = l.config.name ?? l.name ?? `layer_${i}`;
    const inbound = sequential ? (i === 0 ? [] : [layers[i - 1]?.name ?? '']) : parseInbound(l.inbound_nodes);
    layers.push({ name, className: l.class_name, config: l.config, inbound, weights: weightsOf(name) });
  }
  if (sequential && layers[0]?.className !== 'InputLayer') {
    // Keras 2 Sequential models keep the input shape on the first layer.
    const first = layers[0];
    const shape = (first?.config['batch_input_shape'] ?? first?.config['batch_shape']) as unknown;
    if (first === undefined || shape === undefined) throw invalid(path, 'a Sequential model without an input shape');
    layers.unshift({ name: 'input', className: 'InputLayer', config: { batch_input_shape: shape }, inbound: [], weights: new Map() });
    first.inbound = ['input'];
  }
  const endpoints = (v: unknown) => (Array.isArray(v) ? v : []).map((e) => (Array.isArray(e) ? String(e[0]) : String(v)));
  const inputs = sequential ? [layers[0]?.name ?? 'input'] : endpoints(model.config.input_layers);
  const outputs = sequential ? [layers.at(-1)?.name ?? ''] : endpoints(model.config.output_layers);
  return { kerasVersion, layers, inputs, outputs };
}

/** Keras 2: [[["name", 0, 0, {}], …]]; Keras 3: [{ args: [{ config: { keras_history: ["name", 0, 0] } }, …] }]. */
function parseInbound(nodes: unknown[] | undefined): string[] {
  if (!Array.isArray(nodes) || nodes.length === 0) return [];
  const first = nodes[0];
  if (Array.isArray(first)) return first.map((e) => String((e as unknown[])[0]));
  const names: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') {
      const history = (v as { config?: { keras_history?: unknown[] } }).config?.keras_history;
      if (Array.isArray(history)) names.push(String(history[0]));
      else Object.values(v).forEach(visit);
    }
  };
  visit((first as { args?: unknown }).args);
  return names;
}

function readLayerWeights(h5: H5, root: H5Group, layer: string): KerasLayer['weights'] {
  const weights: KerasLayer['weights'] = new Map();
  const group = root.get(layer);
  if (!(group instanceof h5.Group)) return weights;
  const names = group.attrs['weight_names']?.value;
  const list = Array.isArray(names) ? names.map(String) : typeof names === 'string' ? [names] : [];
  for (const wname of list) {
    const ds = group.get(wname) as H5Dataset | null;
    if (ds === null || !(ds instanceof h5.Dataset)) continue;
    const short = wname.split('/').at(-1)?.replace(/:\d+$/, '') ?? wname;
    weights.set(short, { shape: [...(ds.shape ?? [])], data: Float32Array.from(ds.value as ArrayLike<number>) });
  }
  return weights;
}

function invalid(path: string, why: string, cause?: unknown): VisionpipeError {
  return new VisionpipeError('VP_MODEL_INVALID', `Cannot read the Keras model (${why})`, { value: path, cause });
}
