import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { messageOf } from '../errors.js';
import { kerasToOnnx } from '../models/keras/keras-to-onnx.js';
import { syntheticResnet50, seededRandom } from '../models/keras/synthetic-resnet.js';
import { runFrames } from '../models/optimize/evaluate-variant.js';
import { runFramesOpenCv, withNchwInput } from '../models/optimize/opencv-dnn.js';
import { quantizeQdq } from '../models/optimize/quantize-qdq.js';
import { percentile } from '../metrics/run-stats.js';

interface Timing {
  meanMs: number;
  p99Ms: number;
  sizeMiB: number;
}

export interface Int8BenchResult {
  fp32: Timing;
  int8: Timing;
  /** The fp32 model on OpenCV DNN, or why it could not run there. */
  opencv: Timing | { error: string };
  speedup: number;
  runs: number;
}

/**
 * fp32 against int8 QDQ for a ResNet-50-shaped network (seeded weights) on onnxruntime, and the fp32 model on
 * OpenCV DNN, in one process, alternating rounds so all see the same machine state. Calibration uses seeded
 * image-like inputs.
 */
export async function benchInt8Resnet50(rounds = 4, runsPerRound = 10): Promise<Int8BenchResult> {
  const { graph } = kerasToOnnx(syntheticResnet50());
  const rand = seededRandom(7);
  const frames = Array.from({ length: 8 }, () => Float32Array.from({ length: 224 * 224 * 3 }, () => rand() * 255));
  const dims = [1, 224, 224, 3];
  const int8 = await quantizeQdq(graph, { calibration: frames, dims, method: 'minmax' });
  const models = { fp32: graph.toBytes(), int8: int8.toBytes(), opencv: withNchwInput(graph).toBytes() };
  const ms: Record<keyof typeof models, number[]> = { fp32: [], int8: [], opencv: [] };
  const inputs = Array.from({ length: runsPerRound }, (_, i) => frames[i % frames.length]!);
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-bench-'));
  let opencvError: string | undefined;
  try {
    for (let r = 0; r < rounds; r++) {
      for (const name of ['fp32', 'int8'] as const) ms[name].push(...(await runFrames(models[name], inputs, dims)).ms);
      if (opencvError !== undefined) continue;
      try {
        ms.opencv.push(...(await runFramesOpenCv(models.opencv, join(dir, 'resnet50-nchw.onnx'), inputs, [224, 224])).ms);
      } catch (err) {
        opencvError = messageOf(err).split('\n')[0]!;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const stats = (name: keyof typeof models): Timing => {
    const sorted = [...ms[name]].sort((a, b) => a - b);
    return { meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length, p99Ms: percentile(sorted, 99), sizeMiB: models[name].byteLength / 2 ** 20 };
  };
  const fp32 = stats('fp32');
  const q = stats('int8');
  return { fp32, int8: q, opencv: opencvError === undefined ? stats('opencv') : { error: opencvError }, speedup: fp32.meanMs / q.meanMs, runs: rounds * runsPerRound };
}

export function formatInt8Bench(r: Int8BenchResult): string {
  return [
    `### int8 vs fp32: ResNet-50-shaped network (224×224, seeded weights), onnxruntime CPU (and OpenCV DNN), batch 1, ${r.runs} runs each, alternating`,
    '',
    '| | mean ms | p99 ms | file MiB |',
    '|---|---|---|---|',
    `| fp32 | ${r.fp32.meanMs.toFixed(1)} | ${r.fp32.p99Ms.toFixed(1)} | ${r.fp32.sizeMiB.toFixed(1)} |`,
    `| int8 QDQ | ${r.int8.meanMs.toFixed(1)} | ${r.int8.p99Ms.toFixed(1)} | ${r.int8.sizeMiB.toFixed(1)} |`,
    ...('error' in r.opencv ? [] : [`| fp32 on OpenCV DNN | ${r.opencv.meanMs.toFixed(1)} | ${r.opencv.p99Ms.toFixed(1)} | ${r.opencv.sizeMiB.toFixed(1)} |`]),
    '',
    `int8 speed-up over fp32: **${r.speedup.toFixed(2)}x**` +
      ('error' in r.opencv ? ` (OpenCV DNN: ${r.opencv.error})` : `; onnxruntime fp32 over OpenCV DNN fp32: **${(r.opencv.meanMs / r.fp32.meanMs).toFixed(2)}x**`),
    '',
  ].join('\n');
}
