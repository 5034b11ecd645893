import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { messageOf } from '../errors.js';
import { kerasToOnnx } from '../models/keras/keras-to-onnx.js';
import { syntheticResnet50, seededRandom } from '../models/keras/synthetic-resnet.js';
import { latencyOf, onnxVariant, timeAlternating, type TimedVariant } from '../models/optimize/evaluate-variant.js';
import { openCvVariant, withNchwInput } from '../models/optimize/opencv-dnn.js';
import { quantizeQdq } from '../models/optimize/quantize-qdq.js';

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
  const inputs = Array.from({ length: runsPerRound }, (_, i) => frames[i % frames.length]!);
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-bench-'));
  const file = (name: keyof typeof models) => join(dir, `resnet50.${name}.onnx`);
  try {
    for (const name of ['fp32', 'int8', 'opencv'] as const) writeFileSync(file(name), models[name]);
    const timed: TimedVariant[] = [onnxVariant('fp32', file('fp32'), dims), onnxVariant('int8', file('int8'), dims)];
    let opencvError: string | undefined;
    try {
      const opencv = openCvVariant('opencv', file('opencv'), [224, 224]);
      await (await opencv.open()).run(inputs[0]!);
      timed.push(opencv);
    } catch (err) {
      opencvError = messageOf(err).split('\n')[0]!;
    }
    const ms = await timeAlternating(timed, inputs, { framesPerRound: runsPerRound, minRounds: rounds, maxRounds: rounds });
    const stats = (name: keyof typeof models): Timing => ({ ...latencyOf(ms.get(name) ?? []), sizeMiB: models[name].byteLength / 2 ** 20 });
    const fp32 = stats('fp32');
    const q = stats('int8');
    return { fp32, int8: q, opencv: opencvError === undefined ? stats('opencv') : { error: opencvError }, speedup: fp32.meanMs / q.meanMs, runs: rounds * runsPerRound };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
