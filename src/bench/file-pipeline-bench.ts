import type { EngineName } from '../config/schema.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load-config.js';
import { sessionThreads } from '../inference/onnx-engine.js';
import { silentLogger } from '../log.js';
import { asOnnxDescriptor } from '../models/convert-model.js';
import { loadModelDescriptor } from '../models/load-descriptor.js';
import { createPipeline, pixelInputOrFloat } from '../pipeline/create-pipeline.js';
import { inputByteLength, inputDims, preprocessInto, preprocessSpecOf } from '../preprocess/preprocess-frame.js';
import { openVideoFile } from '../sources/file-source.js';
import { STAGES, type RunSummary } from '../metrics/run-stats.js';

export interface BenchCase {
  name: string;
  clip: string;
  model: string;
  engine: EngineName;
  maxFrames: number | null;
}

export interface BenchRow {
  /** sequential, overlapped, or (onnx engine) overlapped with OpenCV's float input instead of pixels in the model. */
  mode: 'sequential' | 'overlapped' | 'overlapped, float input' | 'overlapped, 2 workers x 1 thread';
  summary: RunSummary;
}

/**
 * The same clip and model twice, in one process, one after the other: the sequential loop (one frame at a time
 * through read → preprocess → infer → annotate → write: ring of 1, one frame in flight) and the overlapped
 * pipeline (double-buffered ring, frames in flight), both writing the MP4 and the events file. On the onnx engine a
 * third run is the overlapped pipeline with OpenCV's float input (pipeline.pixelsInModel false), to show what
 * moving the per-pixel work into the model changes, side by side.
 */
/**
 * Inference alone, the floor the pipeline is measured against: the same model file the pipeline's worker ran (with its
 * pixel prologue), the same onnxruntime settings, one real preprocessed frame of the clip fed again and again in
 * this process with nothing else running. Median ms of 30 calls after 5 warm-up calls. onnx engine only.
 */
export async function inferenceAloneMs(c: BenchCase): Promise<number | null> {
  if (c.engine !== 'onnx') return null;
  const config = parseConfig({ source: { uri: c.clip }, model: c.model, engine: c.engine });
  // The same model file the pipeline ran: with its prologue, unless it could not take one.
  const descriptor = await pixelInputOrFloat(await asOnnxDescriptor(loadModelDescriptor(config.model)), silentLogger);
  const spec = preprocessSpecOf(descriptor);
  const { capture, first } = await openVideoFile(c.clip);
  capture.release();
  const buffer = new ArrayBuffer(inputByteLength(spec));
  await preprocessInto(first, spec, buffer);
  first.release();
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(descriptor.modelPath, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', ...sessionThreads(config.onnx) });
  const data = spec.dtype === 'uint8' ? new Uint8Array(buffer) : new Float32Array(buffer);
  const feeds = { [session.inputNames.includes(descriptor.input.name ?? '') ? descriptor.input.name! : session.inputNames[0]!]: new ort.Tensor(spec.dtype, data, inputDims(spec)) };
  const ms: number[] = [];
  try {
    for (let i = 0; i < 35; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      if (i >= 5) ms.push(performance.now() - t0);
    }
  } finally {
    await session.release();
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)]!;
}

export async function benchFilePipeline(c: BenchCase): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-bench-'));
  const rows: BenchRow[] = [];
  try {
    type Mode = [BenchRow['mode'], number, number, boolean, number];
    const modes: Mode[] = [
      ['sequential', 1, 1, true, 1],
      ['overlapped', 2, 4, true, 1],
      ...(c.engine === 'onnx'
        ? ([
            ['overlapped, float input', 2, 4, false, 1],
            // One worker with onnxruntime's 2 threads against 2 workers with 1 thread each (onnx.workers).
            ['overlapped, 2 workers x 1 thread', 2, 4, true, 2],
          ] satisfies Mode[])
        : []),
    ];
    for (const [mode, ringSize, maxInFlight, pixelsInModel, workers] of modes) {
      const pipeline = await createPipeline({
        source: { uri: c.clip, maxFrames: c.maxFrames },
        model: c.model,
        engine: c.engine,
        onnx: { workers },
        pipeline: { ringSize, maxInFlight, pixelsInModel },
        output: { video: join(dir, `${mode}.mp4`), events: join(dir, `${mode}.jsonl`) },
      });
      rows.push({ mode, summary: await pipeline.run() });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** A side-by-side table with the ratio and the bound 1 / max(stage). */
export function formatBench(c: BenchCase, rows: BenchRow[], aloneMs: number | null = null): string {
  const [seq, ovl] = rows.map((r) => r.summary);
  if (seq === undefined || ovl === undefined) return '';
  const cols = rows.map((r) => r.summary);
  const row = (label: string, f: (s: RunSummary) => string) => `| ${label} | ${cols.map(f).join(' | ')} |`;
  const rule = `|---|${cols.map(() => '---|').join('')}`;
  const header = `| stage (mean ms/frame) | ${rows.map((r) => r.mode).join(' | ')} |`;
  const lines = STAGES.map((s) => row(s, (r) => r.meanStageMs[s].toFixed(2)));
  const slowest = (r: RunSummary) => {
    const busy = STAGES.filter((s) => s !== 'queue').map((s) => [s, r.meanStageMs[s]] as const);
    return busy.reduce((a, b) => (b[1] > a[1] ? b : a));
  };
  const [bStage, bMs] = slowest(ovl);
  return [
    `### ${c.name}: ${c.model} on ${c.clip}${c.maxFrames === null ? '' : ` (first ${c.maxFrames} frames)`}`,
    `engine: ${ovl.engine}`,
    '',
    `| | ${rows.map((r) => r.mode).join(' | ')} |`,
    rule,
    row('frames', (r) => String(r.frames)),
    row('end-to-end fps', (r) => r.fps.toFixed(2)),
    row('latency p50 / p99 ms', (r) => `${r.latencyMs.p50.toFixed(1)} / ${r.latencyMs.p99.toFixed(1)}`),
    row('bytes copied per frame (preprocess)', (r) => r.bytesCopiedPerFrame.toFixed(0)),
    '',
    header,
    rule,
    ...lines,
    '',
    `overlapped / sequential fps ratio: **${(ovl.fps / seq.fps).toFixed(2)}x**`,
    ...(aloneMs === null
      ? []
      : [
          `inference alone (same model file and settings, one real frame, nothing else running): ${aloneMs.toFixed(2)} ms = ${(1000 / aloneMs).toFixed(2)} fps; the overlapped pipeline reaches **${((100 * ovl.fps * aloneMs) / 1000).toFixed(0)} %** of it, the sequential loop ${((100 * seq.fps * aloneMs) / 1000).toFixed(0)} %`,
        ]),
    ...(cols[2] === undefined
      ? []
      : [
          `pixels in the model / float input (both overlapped) fps ratio: **${(ovl.fps / cols[2].fps).toFixed(2)}x**; preprocess ${cols[2].meanStageMs.preprocess.toFixed(2)} → ${ovl.meanStageMs.preprocess.toFixed(2)} ms, infer ${cols[2].meanStageMs.infer.toFixed(2)} → ${ovl.meanStageMs.infer.toFixed(2)} ms, ${(cols[2].bytesCopiedPerFrame / 2 ** 20).toFixed(2)} → ${(ovl.bytesCopiedPerFrame / 2 ** 20).toFixed(2)} MiB copied per frame`,
        ]),
    ...(cols[3] === undefined
      ? []
      : [
          `2 workers × 1 thread / 1 worker × 2 threads (both overlapped) fps ratio: **${(cols[3].fps / ovl.fps).toFixed(2)}x**${aloneMs === null ? '' : `; 2 workers reach ${((100 * cols[3].fps * aloneMs) / 1000).toFixed(0)} % of inference alone (1 worker × 2 threads)`}`,
        ]),
    `bound 1/max(stage) for the overlapped run: ${(1000 / bMs).toFixed(2)} fps (slowest stage: ${bStage}, ${bMs.toFixed(2)} ms); reached ${((100 * ovl.fps * bMs) / 1000).toFixed(0)} %`,
    '',
  ].join('\n');
}
