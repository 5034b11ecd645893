import type { KerasLayer, KerasModel } from './read-keras-h5.js';

/** A small deterministic PRNG (mulberry32), so a seeded model is the same on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A ResNet-50-shaped Keras model (bottleneck blocks [3, 4, 6, 3], 224×224×3 input, 1000 classes) with seeded
 * He-initialised weights and realistic BatchNorm statistics. For speed measurements only: its predictions mean
 * nothing, but its shapes and operator mix are ResNet-50's.
 */
export function syntheticResnet50(seed = 50, classes = 1000, size = 224): KerasModel {
  const rand = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const layers: KerasLayer[] = [];
  let n = 0;
  const add = (className: string, config: Record<string, unknown>, inbound: string[], weights: Array<[string, number[], () => number]> = []): string => {
    const name = `${className.toLowerCase()}_${n++}`;
    const w = new Map(weights.map(([k, shape, gen]) => [k, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, gen) }]));
    layers.push({ name, className, config: { name, ...config }, inbound, weights: w });
    return name;
  };
  const conv = (x: string, cin: number, cout: number, k: number, stride: number): string => {
    const std = Math.sqrt(2 / (k * k * cin));
    const c = add('Conv2D', { kernel_size: [k, k], strides: [stride, stride], padding: 'same', use_bias: false, activation: 'linear' }, [x], [['kernel', [k, k, cin, cout], () => gauss() * std]]);
    return add('BatchNormalization', { epsilon: 1e-3 }, [c], [
      ['gamma', [cout], () => 0.5 + rand()],
      ['beta', [cout], () => (rand() - 0.5) * 0.2],
      ['moving_mean', [cout], () => (rand() - 0.5) * 0.2],
      ['moving_variance', [cout], () => 0.5 + rand()],
    ]);
  };
  const relu = (x: string) => add('Activation', { activation: 'relu' }, [x]);
  let x = add('InputLayer', { batch_input_shape: [null, size, size, 3] }, []);
  x = relu(conv(x, 3, 64, 7, 2));
  x = add('MaxPooling2D', { pool_size: [3, 3], strides: [2, 2], padding: 'same' }, [x]);
  let cin = 64;
  for (const [stage, blocks] of [3, 4, 6, 3].entries()) {
    const width = 64 * 2 ** stage;
    for (let b = 0; b < blocks; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      const shortcut = b === 0 ? conv(x, cin, width * 4, 1, stride) : x;
      let y = relu(conv(x, cin, width, 1, stride));
      y = relu(conv(y, width, width, 3, 1));
      y = conv(y, width, width * 4, 1, 1);
      x = relu(add('Add', {}, [y, shortcut]));
      cin = width * 4;
    }
  }
  x = add('GlobalAveragePooling2D', {}, [x]);
  const std = Math.sqrt(1 / cin);
  x = add('Dense', { activation: 'softmax', use_bias: true }, [x], [
    ['kernel', [cin, classes], () => gauss() * std],
    ['bias', [classes], () => 0],
  ]);
  return { kerasVersion: 'synthetic', layers, inputs: [layers[0]!.name], outputs: [x] };
}
