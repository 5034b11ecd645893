import { kerasToOnnx } from '../models/keras/keras-to-onnx.js';
import { syntheticResnet50, seededRandom } from '../models/keras/synthetic-resnet.js';
import { runFrames } from '../models/optimize/evaluate-variant.js';
import { quantizeQdq } from '../models/optimize/quantize-qdq.js';
import { percentile } from '../metrics/run-stats.js';

export interface Int8BenchResult {
  fp32: { meanMs: number; p99Ms: number; sizeMiB: number };
  int8: { meanMs: number; p99Ms: number; sizeMiB: number };
  speedup: number;
  runs: number;
}

/**
 * fp32 against int8 QDQ for a ResNet-50-shaped network (seeded weights), in one process, alternating rounds so
 * both see the same machine state. Calibration uses seeded image-like inputs.
 */
export async function benchInt8Resnet50(rounds = 4, runsPerRound = 10): Promise<Int8BenchResult> {
  const { graph } = kerasToOnnx(syntheticResnet50());
  const rand = seededRandom(7);
  const frames = Array.from({ length: 8 }, () => Float32Array.from({ length: 224 * 224 * 3 }, () => rand() * 255));
  const dims = [1, 224, 224, 3];
  const int8 = await quantizeQdq(graph, { calibration: frames, dims, method: 'minmax' });
  const models = { fp32: graph.toBytes(), int8: int8.toBytes() };
  const ms: Record<'fp32' | 'int8', number[]> = { fp32: [], int8: [] };
  const inputs = Array.from({ length: runsPerRound }, (_, i) => frames[i % frames.length]!);
  for (let r = 0; r < rounds; r++) {
    for (const name of ['fp32', 'int8'] as const) ms[name].push(...(await runFrames(models[name], inputs, dims)).ms);
  }
  const stats = (name: 'fp32' | 'int8') => {
    const sorted = [...ms[name]].sort((a, b) => a - b);
    return { meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length, p99Ms: percentile(sorted, 99), sizeMiB: models[name].byteLength / 2 ** 20 };
  };
  const fp32 = stats('fp32');
  const q = stats('int8');
  return { fp32, int8: q, speedup: fp32.meanMs / q.meanMs, runs: rounds * runsPerRound };
}

export function formatInt8Bench(r: Int8BenchResult): string {
  return [
    `### int8 vs fp32: ResNet-50-shaped network (224×224, seeded weights), onnxruntime CPU, batch 1, ${r.runs} runs each, alternating`,
    '',
    '| | mean ms | p99 ms | file MiB |',
    '|---|---|---|---|',
    `| fp32 | ${r.fp32.meanMs.toFixed(1)} | ${r.fp32.p99Ms.toFixed(1)} | ${r.fp32.sizeMiB.toFixed(1)} |`,
    `| int8 QDQ | ${r.int8.meanMs.toFixed(1)} | ${r.int8.p99Ms.toFixed(1)} | ${r.int8.sizeMiB.toFixed(1)} |`,
    '',
    `int8 speed-up over fp32: **${r.speedup.toFixed(2)}x**`,
    '',
  ].join('\n');
}
