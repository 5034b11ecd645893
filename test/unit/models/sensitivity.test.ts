import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/models/keras/synthetic-resnet.js';
import { OnnxGraph } from '../../../src/models/onnx/onnx-graph.js';
import { maskedSimulation, quantizedTensors, quantizeQdq } from '../../../src/models/optimize/quantize-qdq.js';
import { sensitivityGuidedMixed } from '../../../src/models/optimize/sensitivity.js';

const DIMS = [1, 4, 8, 8];
const SIZE = 4 * 8 * 8;

/**
 * Three Convs; the first one's output has one channel with a huge offset that the next Conv ignores. One uint8
 * range per tensor then spends its 256 levels on that channel, and the other three — the ones that matter — are
 * rounded to almost nothing: that tensor, and only it, has to stay float.
 */
function network(): { g: OnnxGraph; wide: string } {
  const rand = seededRandom(11);
  const g = new OnnxGraph('wide');
  g.inputs = [{ name: 'x', dims: DIMS }];
  const w = (dims: number[], f: (i: number) => number = () => rand() - 0.5) => g.constant('w', dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => f(i)));
  const wide = g.add('Conv', ['x', w([4, 4, 1, 1]), g.constant('b', [4], Float32Array.of(0, 0, 0, 1000))], { kernel_shape: [1, 1] });
  // The next Conv reads only channels 0–2 (input channel 3's weights are 0).
  const mid = g.add('Conv', [wide, w([4, 4, 3, 3], (i) => (Math.floor(i / 9) % 4 === 3 ? 0 : rand() - 0.5)), g.constant('b', [4], new Float32Array(4))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  const out = g.add('Conv', [mid, w([2, 4, 1, 1]), g.constant('b', [2], new Float32Array(2))], { kernel_shape: [1, 1] });
  g.outputs = [{ name: out, dims: [1, 2, 8, 8] }];
  return { g, wide };
}

async function outputs(g: OnnxGraph, frames: Float32Array[]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(g.toBytes());
  try {
    const out: Float32Array[] = [];
    for (const x of frames) out.push((await session.run({ x: new ort.Tensor('float32', x, DIMS) }))[g.outputs[0]!.name]!.data as Float32Array);
    return out;
  } finally {
    await session.release();
  }
}

describe('sensitivity-guided mixed precision', () => {
  const rand = seededRandom(3);
  const frames = Array.from({ length: 8 }, () => Float32Array.from({ length: SIZE }, () => rand() * 2 - 1));
  const calibration = frames.slice(0, 4);
  const held = frames.slice(4);
  /** Agreement: 1 − squared error / variance of the fp32 output, on frames not used to calibrate. */
  const agreementWith = async (g: OnnxGraph) => {
    const reference = await outputs(g, held);
    return async (q: OnnxGraph) => {
      const out = await outputs(q, held);
      let se = 0;
      let variance = 0;
      out.forEach((o, f) => {
        const r = reference[f]!;
        const mean = r.reduce((a, b) => a + b, 0) / r.length;
        o.forEach((v, i) => ((se += (v - r[i]!) ** 2), (variance += (r[i]! - mean) ** 2)));
      });
      return 1 - se / variance;
    };
  };

  it('finds the one tensor whose rounding ruins the output, keeps it float, and so meets a budget full int8 misses', async () => {
    const { g, wide } = network();
    const agreementOf = await agreementWith(g);
    const base = { calibration, dims: DIMS, method: 'minmax' as const, weightType: 'int8' as const };
    const budget = 0.99;
    const full = await agreementOf(await quantizeQdq(g, base));
    expect(full).toBeLessThan(budget);
    expect(quantizedTensors(g)).toContain(wide);

    const meanAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;
    const mixed = await sensitivityGuidedMixed(g, base, agreementOf, budget, calibration.slice(0, 2), meanAbsDiff);
    expect(mixed.floatLayers.map((l) => l.tensor)).toEqual([wide]);
    expect(mixed.floatLayers[0]!.producer).toBe('Conv');
    expect(mixed.metBudget).toBe(true);
    expect(mixed.agreement).toBeGreaterThanOrEqual(budget);
    expect(await agreementOf(mixed.graph)).toBe(mixed.agreement);
    // Float: no QuantizeLinear reads it; the other tensors are still quantized.
    expect(mixed.graph.nodes.filter((n) => n.op === 'QuantizeLinear' && n.inputs[0] === wide)).toHaveLength(0);
    expect(mixed.graph.nodes.filter((n) => n.op === 'QuantizeLinear').length).toBeGreaterThan(0);
    expect(mixed.frontier.map((p) => p.floatTensors)).toContain(1);
    // Every order that met the budget offers its variant for timing, the chosen one first.
    expect(mixed.budgetMet[0]!.graph).toBe(mixed.graph);
    expect(new Set(mixed.budgetMet.map((p) => p.order)).size).toBe(mixed.budgetMet.length);
    for (const p of mixed.budgetMet) {
      expect(p.agreement).toBeGreaterThanOrEqual(budget);
      expect(await agreementOf(p.graph)).toBe(p.agreement);
    }
    // Without profiled node times there is no order by milliseconds.
    expect(mixed.frontier.some((p) => p.order === 'error per ms saved (profiled)')).toBe(false);
  });

  it('with profiled node times, first keeps float the tensors whose nodes run slower in int8, then meets the budget from there', async () => {
    const { g, wide } = network();
    const agreementOf = await agreementWith(g);
    const base = { calibration, dims: DIMS, method: 'minmax' as const, weightType: 'int8' as const };
    const [first, second, third] = g.nodes.filter((n) => n.op === 'Conv');
    const mid = second!.outputs[0]!;
    // The middle Conv is twice as slow in int8 as in float; the others gain. Tensor by tensor (producer +
    // consumers): `wide` 0.9 − 1 = −0.1 ms, `mid` −1 + 0.5 = −0.5 ms, the output 0.5 ms.
    const timing = {
      fp32MsByNode: new Map([first!.name, second!.name, third!.name].map((n) => [n, 1])),
      int8MsByNode: new Map([
        [first!.name, 0.1],
        [second!.name, 2],
        [third!.name, 0.5],
      ]),
      // Conversions free here: what is tested is the order by the nodes' times.
      conversionMsPerElement: 0,
    };
    const meanAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;
    const budget = 0.99;
    const mixed = await sensitivityGuidedMixed(g, base, agreementOf, budget, calibration.slice(0, 2), meanAbsDiff, undefined, timing);
    expect(mixed.floatLayers.map((l) => l.tensor)).toEqual([wide]);
    const profiled = mixed.budgetMet.find((p) => p.order === 'error per ms saved (profiled)');
    expect(profiled).toBeDefined();
    // Both tensors that cost time in int8, most time lost first: `mid` is float though accuracy does not need it.
    expect(profiled!.floatLayers.map((l) => l.tensor)).toEqual([mid, wide]);
    expect(profiled!.floatLayers.map((l) => l.savedMs)).toEqual([expect.closeTo(-0.5, 9), expect.closeTo(-0.1, 9)]);
    expect(profiled!.agreement).toBeGreaterThanOrEqual(budget);
    expect(mixed.frontier.filter((p) => p.order === 'error per ms saved (profiled)').map((p) => p.floatTensors)).toEqual([2]);

    // Conversions at 1 µs an element: a lone float `wide` would have `mid` quantized again (256 elements; the
    // graph input is float already): 0.256 ms, more than the 0.1 ms it gives back — no longer free. `mid` would have
    // `wide` dequantized (256; the output, a graph output, is float anyway): 0.256 ms against 0.5 ms lost — still free.
    const costly = await sensitivityGuidedMixed(g, base, agreementOf, budget, calibration.slice(0, 2), meanAbsDiff, undefined, { ...timing, conversionMsPerElement: 1e-3 });
    const byTime = costly.budgetMet.find((p) => p.order === 'error per ms saved (profiled)')!;
    expect(byTime.floatLayers.map((l) => [l.tensor, l.boundaryMs])).toEqual([
      [mid, expect.closeTo(0.256, 9)],
      [wide, expect.closeTo(0.256, 9)],
    ]);
    expect(costly.frontier.filter((p) => p.order === 'error per ms saved (profiled)').map((p) => p.floatTensors)).toEqual([1, 2]);
  });

  it("counts a lone float tensor's conversions: the Q after the next Conv's fused Relu, no DQ of the float graph input", async () => {
    const rand = seededRandom(17);
    const g = new OnnxGraph('relus');
    g.inputs = [{ name: 'x', dims: DIMS }];
    const w = (dims: number[]) => g.constant('w', dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand() - 0.5));
    const a = g.add('Relu', [g.add('Conv', ['x', w([4, 4, 1, 1]), w([4])], { kernel_shape: [1, 1] })]);
    // The middle Conv halves the resolution, so its output (8 × 4 × 4 elements after the Relu) has its own size.
    const b = g.add('Relu', [g.add('Conv', [a, w([8, 4, 2, 2]), w([8])], { kernel_shape: [2, 2], strides: [2, 2] })]);
    const out = g.add('Conv', [b, w([2, 8, 1, 1]), w([2])], { kernel_shape: [1, 1] });
    g.outputs = [{ name: out, dims: [1, 2, 4, 4] }];
    const shapes = new Map([
      [a, DIMS],
      [b, [1, 8, 4, 4]],
      [out, [1, 2, 4, 4]],
    ]);
    const sim = await maskedSimulation(g, { calibration, dims: DIMS, method: 'minmax' }, (t) => shapes.get(t));
    expect(sim.tensors).toContain(a);
    // `a` float: the first Conv runs float on the float input (nothing to dequantize); the middle Conv runs float
    // and its Relu's output, read by the last Conv in int8, is quantized again: 8 × 4 × 4.
    expect(sim.boundaryElements.get(a)).toBe(128);
    // `b` float: `a` is dequantized for the middle Conv (4 × 8 × 8); the last Conv writes the graph output, float anyway.
    expect(sim.boundaryElements.get(b)).toBe(256);
  });
});
