import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPipeline } from '../pipeline/create-pipeline.js';
import type { RunSummary } from '../metrics/run-stats.js';
import { sampleFrames } from '../models/optimize/optimize-model.js';
import { loadOptimizeSubject, writeVariantDescriptor } from '../models/optimize/optimize-subject.js';
import { equalizeCrossLayer } from '../models/optimize/equalize.js';
import { calibrateAll, quantizeQdq, quantizedTensors } from '../models/optimize/quantize-qdq.js';

export type Int8BenchVariant = 'fp32' | 'int8' | 'int8-mixed';

export interface Int8DetectorBench {
  clip: string;
  frames: number;
  rounds: number;
  /** How many tensors, from the input, the int8-mixed variant keeps float. */
  mixedFloatTensors: number;
  /** End-to-end fps and inference ms per frame of each run, in the order run (fp32, int8, int8-mixed, fp32, …). */
  runs: Array<{ variant: Int8BenchVariant; fps: number; inferMs: number; detections: number }>;
}

/**
 * The first tensors in graph order that `visionpipe optimize centernet --clip vtest.avi --budget 0.95` kept float
 * (measured, the count chosen on the calibration frames: 11 of 172 → 95.1 % box F1 on 100 held-out frames, 1.35x
 * fp32, the variant picked, on an AMD EPYC with AVX-512 VNNI).
 */
const MIXED_FLOAT_TENSORS = 11;

/**
 * The default detector (CenterNet) in fp32 against its int8 variants in the whole file pipeline (decode, preprocess,
 * infer, annotate, MP4 and events), on the same clip, in one process, alternating runs. The int8 variants are the
 * ones `visionpipe optimize centernet` writes, calibrated on 64 frames of the clip's first half with percentile
 * ranges after cross-layer equalization: `int8` in the full integer arrangement (weights stored for this CPU),
 * `int8-mixed` with the first tensors (graph order from the input) left float and int8 weights (optimize's int8-mixed-s8). Each runs through the descriptor optimize writes next to it.
 */
export async function benchInt8Detector(clip: string, maxFrames: number | null, rounds = 2): Promise<Int8DetectorBench> {
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-bench-int8-'));
  try {
    const subject = await loadOptimizeSubject('centernet');
    const { calibration } = await sampleFrames(clip, subject.spec, 64, 1);
    const { graph: equalized } = equalizeCrossLayer(subject.graph);
    const ranges = await calibrateAll(equalized, calibration, subject.dims);
    const base = { calibration, dims: subject.dims, method: 'percentile' as const, ranges };
    const floatTensors = new Set(quantizedTensors(equalized).slice(0, MIXED_FLOAT_TENSORS));
    const models: Array<[Int8BenchVariant, string]> = [['fp32', 'centernet']];
    for (const [variant, graph] of [
      ['int8', await quantizeQdq(equalized, base)],
      // int8 weights (u8 × s8): what optimize writes on CPUs with VNNI, and its int8-mixed-s8 on those without (the
      // faster kernel on every x86 CPU).
      ['int8-mixed', await quantizeQdq(equalized, { ...base, floatTensors, weightType: 'int8' })],
    ] as const) {
      const file = join(dir, `centernet.${variant}.onnx`);
      writeFileSync(file, graph.toBytes());
      models.push([variant, writeVariantDescriptor(subject, variant, file)!]);
    }
    const runs: Int8DetectorBench['runs'] = [];
    for (let r = 0; r < rounds; r++) {
      for (const [variant, model] of models) {
        const pipeline = await createPipeline({
          source: { uri: clip, maxFrames },
          model,
          output: { video: join(dir, `${variant}-${r}.mp4`), events: join(dir, `${variant}-${r}.jsonl`) },
        });
        const s: RunSummary = await pipeline.run();
        runs.push({ variant, fps: s.fps, inferMs: s.meanStageMs.infer, detections: detectionsIn(join(dir, `${variant}-${r}.jsonl`)) });
      }
    }
    return { clip, frames: maxFrames ?? 0, rounds, mixedFloatTensors: MIXED_FLOAT_TENSORS, runs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Detections over all prediction events of an events file. */
function detectionsIn(events: string): number {
  return readFileSync(events, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .reduce((n, l) => n + ((JSON.parse(l) as { detections?: unknown[] }).detections?.length ?? 0), 0);
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return Number.isInteger(mid) ? (sorted[mid - 1]! + sorted[mid]!) / 2 : sorted[Math.floor(mid)]!;
};

export function formatInt8DetectorBench(b: Int8DetectorBench): string {
  const variants: Int8BenchVariant[] = ['fp32', 'int8', 'int8-mixed'];
  const of = (v: Int8BenchVariant) => b.runs.filter((r) => r.variant === v);
  const fps = (v: Int8BenchVariant) => median(of(v).map((r) => r.fps));
  const infer = (v: Int8BenchVariant) => median(of(v).map((r) => r.inferMs));
  const row = (label: string, cell: (v: Int8BenchVariant) => string) => `| ${label} | ${variants.map(cell).join(' | ')} |`;
  return [
    `### default detector in the pipeline: fp32 vs int8 (percentile + equalization; full integer; int8-mixed: the first ${b.mixedFloatTensors} tensors float, int8 weights), ${b.rounds} alternating rounds, same clip${b.frames > 0 ? ` (first ${b.frames} frames)` : ''}`,
    '',
    `| | ${variants.join(' | ')} |`,
    `|---|${variants.map(() => '---|').join('')}`,
    row('end-to-end fps, each run', (v) => of(v).map((r) => r.fps.toFixed(2)).join(' / ')),
    row('inference ms per frame, each run', (v) => of(v).map((r) => r.inferMs.toFixed(1)).join(' / ')),
    row('detections', (v) => String(of(v)[0]?.detections ?? 0)),
    row('end-to-end fps vs fp32 (medians)', (v) => `${(fps(v) / fps('fp32')).toFixed(2)}x`),
    row('inference speed vs fp32 (medians)', (v) => `${(infer('fp32') / infer(v)).toFixed(2)}x`),
    '',
    'Whether int8 pays depends on the CPU: with VNNI / AMX onnxruntime runs u8 × s8 at several times fp32, on AVX2 alone it does not.',
    '',
  ].join('\n');
}
