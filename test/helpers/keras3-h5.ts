import type { KerasModel } from '../../src/models/keras/read-keras-h5.js';

/**
 * Writes `model` as a Keras 3 `.h5` (Keras 3's legacy HDF5 layout: `batch_shape`, inbound nodes as
 * `{ args: [KerasTensor …] }` with `keras_history`, weights named `<layer>/<weight>` without `:0`), so the
 * importer's Keras 3 path is tested on a real trained network without Python.
 */
export async function writeKeras3H5(model: KerasModel, path: string): Promise<void> {
  const h5 = (await import('h5wasm/node')).default;
  await h5.ready;
  const tensor = (name: string) => ({ class_name: '__keras_tensor__', config: { shape: null, dtype: 'float32', keras_history: [name, 0, 0] } });
  const layers = model.layers.map((l) => {
    const config: Record<string, unknown> = { ...l.config, name: l.name };
    if (l.className === 'InputLayer') {
      config['batch_shape'] = config['batch_input_shape'];
      delete config['batch_input_shape'];
    }
    const args = l.inbound.length > 1 ? [l.inbound.map(tensor)] : l.inbound.map(tensor);
    return {
      module: 'keras.layers',
      class_name: l.className,
      config,
      name: l.name,
      inbound_nodes: l.inbound.length === 0 ? [] : [{ args, kwargs: {} }],
    };
  });
  const config = {
    module: 'keras',
    class_name: 'Functional',
    config: {
      name: 'resnet_keras3',
      layers,
      input_layers: model.inputs.map((n) => [n, 0, 0]),
      output_layers: model.outputs.map((n) => [n, 0, 0]),
    },
  };
  const f = new h5.File(path, 'w');
  try {
    f.create_attribute('keras_version', '3.6.0');
    f.create_attribute('backend', 'tensorflow');
    f.create_attribute('model_config', JSON.stringify(config));
    const root = f.create_group('model_weights');
    root.create_attribute('layer_names', model.layers.map((l) => l.name));
    for (const l of model.layers) {
      const g = root.create_group(l.name);
      const names = [...l.weights.keys()].map((w) => `${l.name}/${w}`);
      g.create_attribute('weight_names', names.length > 0 ? names : ['']);
      const sub = l.weights.size > 0 ? g.create_group(l.name) : undefined;
      for (const [w, { shape, data }] of l.weights) sub?.create_dataset({ name: w, data, shape, dtype: '<f' });
    }
  } finally {
    f.close();
  }
}
