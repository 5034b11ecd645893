import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPipeline } from '../pipeline/create-pipeline.js';
import type { RunSummary } from '../metrics/run-stats.js';
import { sampleFrames } from '../models/optimize/optimize-model.js';
import { loadOptimizeSubject, writeVariantDescriptor } from '../models/optimize/optimize-subject.js';
import { calibrateAll, quantizeQdq } from '../models/optimize/quantize-qdq.js';

export interface Int8DetectorBench {
  clip: string;
  frames: number;
  rounds: number;
  /** End-to-end fps and inference ms per frame of each run, in the order run (fp32, int8, fp32, int8, …). */
  runs: Array<{ variant: 'fp32' | 'int8'; fps: number; inferMs: number; detections: number }>;
}

/**
 * The default detector (CenterNet) in fp32 against its int8 variant in the whole file pipeline (decode, preprocess,
 * infer, annotate, MP4 and events), on the same clip, in one process, alternating fp32 / int8 runs. The int8 variant
 * is what `visionpipe optimize centernet` writes as int8-mse: calibrated on 64 frames of the clip's first half, MSE
 * ranges, full integer arrangement, run through the descriptor optimize writes next to it.
 */
export async function benchInt8Detector(clip: string, maxFrames: number | null, rounds = 2): Promise<Int8DetectorBench> {
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-bench-int8-'));
  try {
    const subject = await loadOptimizeSubject('centernet');
    const { calibration } = await sampleFrames(clip, subject.spec, 64, 1);
    const ranges = await calibrateAll(subject.graph, calibration, subject.dims);
    const int8 = await quantizeQdq(subject.graph, { calibration, dims: subject.dims, method: 'mse', ranges });
    const file = join(dir, 'centernet.int8-mse.onnx');
    writeFileSync(file, int8.toBytes());
    const descriptor = writeVariantDescriptor(subject, 'int8-mse', file)!;
    const runs: Int8DetectorBench['runs'] = [];
    for (let r = 0; r < rounds; r++) {
      for (const [variant, model] of [['fp32', 'centernet'], ['int8', descriptor]] as const) {
        const pipeline = await createPipeline({
          source: { uri: clip, maxFrames },
          model,
          output: { video: join(dir, `${variant}-${r}.mp4`), events: join(dir, `${variant}-${r}.jsonl`) },
        });
        const s: RunSummary = await pipeline.run();
        runs.push({ variant, fps: s.fps, inferMs: s.meanStageMs.infer, detections: detectionsIn(join(dir, `${variant}-${r}.jsonl`)) });
      }
    }
    return { clip, frames: maxFrames ?? 0, rounds, runs };
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
  const of = (v: 'fp32' | 'int8') => b.runs.filter((r) => r.variant === v);
  const [fp32, int8] = [of('fp32'), of('int8')];
  const fps = (rs: typeof fp32) => median(rs.map((r) => r.fps));
  const infer = (rs: typeof fp32) => median(rs.map((r) => r.inferMs));
  return [
    `### default detector in the pipeline: fp32 vs int8 (int8-mse, full integer arrangement), ${b.rounds} alternating rounds, same clip${b.frames > 0 ? ` (first ${b.frames} frames)` : ''}`,
    '',
    '| | fp32 | int8 |',
    '|---|---|---|',
    `| end-to-end fps, each run | ${fp32.map((r) => r.fps.toFixed(2)).join(' / ')} | ${int8.map((r) => r.fps.toFixed(2)).join(' / ')} |`,
    `| inference ms per frame, each run | ${fp32.map((r) => r.inferMs.toFixed(1)).join(' / ')} | ${int8.map((r) => r.inferMs.toFixed(1)).join(' / ')} |`,
    `| detections | ${fp32[0]?.detections ?? 0} | ${int8[0]?.detections ?? 0} |`,
    '',
    `int8 / fp32 end-to-end fps (medians): **${(fps(int8) / fps(fp32)).toFixed(2)}x**; inference ${(infer(fp32) / infer(int8)).toFixed(2)}x faster. ` +
      'Whether int8 pays depends on the CPU: with VNNI / AMX onnxruntime runs u8 × s8 at several times fp32, on AVX2 alone it does not.',
    '',
  ].join('\n');
}
