import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { InferenceWorkerHost } from '../../../src/inference/worker-host.js';
import { asBatchedModel, asOnnxDescriptor, asPixelInputDescriptor, BATCH_TOLERANCE } from '../../../src/models/convert-model.js';
import { ModelDescriptorSchema, type ModelDescriptor } from '../../../src/models/descriptor-schema.js';
import { loadModelDescriptor } from '../../../src/models/load-descriptor.js';
import { withDynamicBatch } from '../../../src/models/onnx/dynamic-batch.js';
import { DataType, OnnxGraph } from '../../../src/models/onnx/onnx-graph.js';
import { batchDifference, probeGraph, testImage } from '../../../src/models/onnx/probe-graph.js';

/**
 * Batching across sources needs a model that takes a batch; the converters make batch-1 graphs. withDynamicBatch
 * batches what works per image and runs the rest per image in a Scan: checked here with onnxruntime, a batch of N
 * against N runs of the original.
 */

const dir = mkdtempSync(join(tmpdir(), 'vp-batch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A batch-1 graph shaped like a converted detector: a convolution body (per image; two resizes, one whose ratio a
 * float scale reproduces and one it does not; a reshape keeping the leading 1) and a head that folds the batch into
 * rows (a reshape to [-1, 4] then a reduction over the rows), which must run per image.
 */
function detectorLike(): OnnxGraph {
  const g = new OnnxGraph('detector_like');
  g.inputs.push({ name: 'x', dims: [1, 3, 6, 6] });
  const w = g.constant('w', [4, 3, 3, 3], Float32Array.from({ length: 108 }, (_, i) => Math.sin(i) * 0.3));
  const b = g.constant('b', [4], Float32Array.of(0.1, -0.2, 0.3, 0));
  const r = g.add('Relu', [g.add('Conv', ['x', w, b], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] })]);
  const resize = (h: number) => g.add('Resize', [r, '', '', g.constant('sizes', [4], BigInt64Array.from([1n, 4n, BigInt(h), BigInt(h)]), DataType.INT64)], { mode: 'linear' });
  const m10 = g.add('ReduceMean', [resize(10)], { axes: [2, 3], keepdims: 1 }); // 10 / 6: a float scale would round to 9
  const m12 = g.add('ReduceMean', [resize(12)], { axes: [2, 3], keepdims: 1 }); // 12 / 6 = 2 exactly
  const o1 = g.add('Reshape', [g.add('Add', [m10, m12]), g.constant('s1', [2], BigInt64Array.of(1n, -1n), DataType.INT64)]);
  const rows = g.add('Reshape', [r, g.constant('s2', [2], BigInt64Array.of(-1n, 4n), DataType.INT64)]);
  const o2 = g.add('ReduceMax', [rows], { axes: [0], keepdims: 1 });
  g.nodes.push({ op: 'Identity', inputs: [o1], outputs: ['pooled'], name: 'pooled_out' }, { op: 'Identity', inputs: [o2], outputs: ['head'], name: 'head_out' });
  g.outputs.push({ name: 'pooled', dims: [1, 4] }, { name: 'head', dims: [1, 4] });
  return g;
}

const images = (n: number) => Array.from({ length: n }, (_, seed) => testImage([1, 3, 6, 6], DataType.FLOAT, seed + 1));

describe('withDynamicBatch', () => {
  it('batches the body, runs the batch-folding head per image, and matches batch 1 image by image', async () => {
    const g = detectorLike();
    const { graph, plan } = withDynamicBatch(g, await probeGraph(g, images(1)[0]!));
    expect(plan.firstPerImage).toMatchObject({ op: 'Reshape', why: expect.stringMatching(/folds the batch/) });
    expect(plan.perImageNodes).toBe(3); // Reshape → ReduceMax → Identity
    expect(graph.nodes.filter((n) => n.op === 'Scan')).toHaveLength(1);
    expect(graph.inputs[0]!.dims).toEqual([null, 3, 6, 6]);
    // The exact ratio became constant scales; the other keeps sizes, now taken from the input's own batch.
    const resizes = graph.nodes.filter((n) => n.op === 'Resize');
    expect(resizes.map((n) => n.inputs.length).sort()).toEqual([3, 4]);
    expect(await batchDifference(g, graph, images(3))).toBeLessThanOrEqual(1e-6);
    const session = await ort.InferenceSession.create(graph.toBytes());
    const joined = new Float32Array(3 * 108);
    images(3).forEach((im, i) => joined.set(im, i * 108));
    const out = await session.run({ x: new ort.Tensor('float32', joined, [3, 3, 6, 6]) });
    expect(out['pooled']!.dims).toEqual([3, 4]);
    expect(out['head']!.dims).toEqual([3, 4]);
    await session.release();
  });

  it('refuses a model where nothing worth batching comes before the first op that needs batch 1', async () => {
    const g = new OnnxGraph('shape_first');
    g.inputs.push({ name: 'x', dims: [1, 3, 4, 4] });
    const shape = g.add('Shape', ['x']);
    const y = g.add('Reshape', ['x', shape]);
    g.nodes.push({ op: 'Identity', inputs: [g.add('Relu', [y])], outputs: ['y'], name: 'out' });
    g.outputs.push({ name: 'y', dims: [1, 3, 4, 4] });
    const probe = await probeGraph(g, testImage([1, 3, 4, 4], DataType.FLOAT));
    expect(() => withDynamicBatch(g, probe)).toThrow(/cannot take a batch: nothing worth batching comes before Shape/);
  });

  it('refuses control flow and outputs whose size depends on the picture; keeps a batch-folding Flatten per image', async () => {
    const loop = detectorLike();
    loop.nodes.push({ op: 'If', inputs: ['c'], outputs: ['z'], name: 'branch' });
    expect(() => withDynamicBatch(loop, new Map())).toThrow(/control flow \(If "branch"\)/);

    const nz = new OnnxGraph('nonzero');
    nz.inputs.push({ name: 'x', dims: [1, 3, 4, 4] });
    const conv = nz.add('Conv', ['x', nz.constant('w', [2, 3, 1, 1], Float32Array.from({ length: 6 }, (_, i) => i - 2))]);
    const rows = nz.add('Reshape', [conv, nz.constant('s', [2], BigInt64Array.of(-1n, 2n), DataType.INT64)]);
    nz.nodes.push({ op: 'NonZero', inputs: [rows], outputs: ['where'], name: 'nz' });
    nz.outputs.push({ name: 'where', dims: [2, null] });
    expect(() => withDynamicBatch(nz, new Map())).toThrow(/"where" has a size that depends on the picture/);
    nz.outputs[0] = { name: 'where', dims: [] }; // undeclared: found while walking the per-image part
    const nzProbe = await probeGraph(nz, testImage([1, 3, 4, 4], DataType.FLOAT));
    expect(() => withDynamicBatch(nz, nzProbe)).toThrow(/NonZero "nz" makes outputs whose size depends/);

    const flat = new OnnxGraph('flatten2');
    flat.inputs.push({ name: 'x', dims: [1, 3, 4, 4] });
    const c2 = flat.add('Conv', ['x', flat.constant('w', [2, 3, 1, 1], Float32Array.from({ length: 6 }, (_, i) => i - 2))]);
    const f = flat.add('Flatten', [c2], { axis: 2 }); // [1·2, 16]: the batch is folded in
    flat.nodes.push({ op: 'ReduceMax', inputs: [f], outputs: ['m'], name: 'm', attrs: { axes: [0], keepdims: 1 } });
    flat.outputs.push({ name: 'm', dims: [1, 16] });
    const { graph, plan } = withDynamicBatch(flat, await probeGraph(flat, testImage([1, 3, 4, 4], DataType.FLOAT)));
    expect(plan.firstPerImage?.op).toBe('Flatten');
    expect(await batchDifference(flat, graph, [1, 2].map((seed) => testImage([1, 3, 4, 4], DataType.FLOAT, seed)))).toBeLessThanOrEqual(1e-6);
  });

  it('a graph read from a file never gets a fresh name it already uses (the Scan body reads outer names)', async () => {
    const { readOnnxGraph } = await import('../../../src/models/onnx/onnx-graph.js');
    const g = detectorLike();
    g.nodes.push({ op: 'Identity', inputs: ['pooled'], outputs: ['axis0__7'], name: 'taken' });
    const read = readOnnxGraph(g.toBytes());
    const names = new Set(Array.from({ length: 20 }, () => read.fresh('axis0')));
    expect(names.has('axis0__7')).toBe(false);
  });

  it('refuses a model whose batch is not 1 or whose input count is not one, saying batching stays off', async () => {
    const g = detectorLike();
    g.inputs[0] = { name: 'x', dims: [2, 3, 6, 6] };
    expect(() => withDynamicBatch(g, new Map())).toThrow(/batch is 2, not 1/);
    try {
      withDynamicBatch(g, new Map());
    } catch (err) {
      expect((err as { code: string; hint: string }).code).toBe('VP_MODEL_UNSUPPORTED');
      expect((err as { hint: string }).hint).toMatch(/keeps batch 1/);
    }
  });
});

describe('the inference worker batches runs waiting in its queue', () => {
  it('answers every run in order with the output batch 1 gives, and runs waiting inputs in one call', async () => {
    const g = detectorLike();
    const original = join(dir, 'original.onnx');
    writeFileSync(original, g.toBytes());
    const batched = join(dir, 'batched.onnx');
    writeFileSync(batched, withDynamicBatch(g, await probeGraph(g, images(1)[0]!)).graph.toBytes());
    const descriptor: ModelDescriptor = {
      modelPath: original,
      descriptorPath: original,
      ...ModelDescriptorSchema.parse({
        name: 'detector-like',
        format: 'onnx',
        path: original,
        engine: 'onnx',
        task: 'classification',
        input: { name: 'x', sizeWh: [6, 6], layout: 'nchw' },
        output: { name: 'head', decoder: 'probabilities' },
        labels: ['a', 'b', 'c', 'd'],
      }),
      labels: ['a', 'b', 'c', 'd'], // as the loader resolves them
    };
    const host = await InferenceWorkerHost.start(descriptor, 'onnx', undefined, { modelPath: batched, maxBatch: 4 });
    try {
      expect(host.maxBatch).toBe(4);
      const inputs = images(12);
      const expected = await Promise.all(
        inputs.map(async (im) => {
          const s = await ort.InferenceSession.create(original);
          const out = (await s.run({ x: new ort.Tensor('float32', im, [1, 3, 6, 6]) }))['head']!.data as Float32Array;
          await s.release();
          return out;
        }),
      );
      const order: number[] = [];
      // Twelve runs sent at once: while the worker runs the first, the others wait in its queue.
      const results = await Promise.all(
        inputs.map((im, i) =>
          host.run(i, Float32Array.from(im).buffer, [1, 3, 6, 6], 'float32', () => order.push(i)),
        ),
      );
      expect(order).toEqual([...Array(12).keys()]);
      results.forEach((r, i) => {
        expect(r.outputDims).toEqual([1, 4]);
        expect(Math.max(...r.output.map((v, k) => Math.abs(v - expected[i]![k]!)))).toBeLessThanOrEqual(1e-6);
      });
      const sizes = results.map((r) => r.batchSize ?? 1);
      expect(Math.max(...sizes)).toBeGreaterThan(1);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(4);
    } finally {
      await host.close();
    }
  });
});

describe('asBatchedModel on the default detector (CenterNet, converted from TF.js)', () => {
  it('batches its backbone, runs the decoding head per image, matches batch 1, and times the batch sizes on this machine', async () => {
    const d = await asPixelInputDescriptor(await asOnnxDescriptor(loadModelDescriptor('centernet')));
    const b = await asBatchedModel(d, 4, {}, dir);
    expect(b.plan.firstPerImage?.op).toBe('Reshape'); // TF's BatchGather: flattens the batch into rows
    expect(b.plan.perImageNodes).toBeLessThan(20);
    expect(b.plan.batchedNodes).toBeGreaterThan(400);
    expect(Object.keys(b.perImageMs).sort()).toEqual(['1', '2', '4']);
    expect([1, 2, 4]).toContain(b.maxBatch);
    // The check the cache entry passed, repeated on other images: the stored model, 3 images in one call.
    const { readOnnxGraph } = await import('../../../src/models/onnx/onnx-graph.js');
    const { readFileSync } = await import('node:fs');
    const original = readOnnxGraph(readFileSync(d.modelPath));
    const batched = readOnnxGraph(readFileSync(b.modelPath));
    const pics = [5, 6, 7].map((seed) => testImage([1, 512, 512, 3], DataType.UINT8, seed));
    expect(await batchDifference(original, batched, pics)).toBeLessThanOrEqual(BATCH_TOLERANCE);
  }, 120_000);
});
