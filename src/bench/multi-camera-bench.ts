import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asBatchedModel, asOnnxDescriptor, asPixelInputDescriptor, type BatchedModel } from '../models/convert-model.js';
import { loadModelDescriptor } from '../models/load-descriptor.js';
import { createPipeline } from '../pipeline/create-pipeline.js';
import { RtspServer, freePort, makeFrames } from './rtsp-server.js';

export interface MultiCameraRun {
  maxBatch: number;
  predictionsPerS: number;
  /** Frames per inference call the run achieved. */
  meanBatchSize: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  meanInferMs: number;
  dropped: number;
}

export interface MultiCameraResult {
  model: string;
  cameras: number;
  cameraFps: number;
  secondsPerRun: number;
  /** Runs in the order they ran (batched and unbatched alternate). */
  runs: MultiCameraRun[];
  /** What asBatchedModel measured on this machine: inference per image at each batch size, and its pick. */
  batched: BatchedModel;
}

/**
 * `cameras` RTSP cameras (one real GStreamer server, its stream shared by every client) at `cameraFps` into one
 * pipeline on `model`: batched (frames of several cameras in one inference call, up to `cameras`, forced on with
 * batchChoice always) against unbatched (maxBatch 1), alternating for `rounds` rounds in the same run.
 */
export async function benchMultiCamera(options: { clip?: string; model: string; cameras: number; cameraFps: number; secondsPerRun: number; rounds: number }): Promise<MultiCameraResult> {
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-multicam-bench-'));
  const server = await RtspServer.start({ port: await freePort(), framesDir: makeFrames(join(dir, 'frames'), 250, options.clip), fps: options.cameraFps });
  try {
    const descriptor = await asPixelInputDescriptor(await asOnnxDescriptor(loadModelDescriptor(options.model)));
    const batched = await asBatchedModel(descriptor, options.cameras);
    const runs: MultiCameraRun[] = [];
    for (let round = 0; round < options.rounds; round++) {
      for (const maxBatch of [options.cameras, 1]) runs.push(await runOnce(server.url, options, maxBatch));
    }
    return { model: options.model, cameras: options.cameras, cameraFps: options.cameraFps, secondsPerRun: options.secondsPerRun, runs, batched };
  } finally {
    await server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runOnce(url: string, options: { model: string; cameras: number; secondsPerRun: number }, maxBatch: number): Promise<MultiCameraRun> {
  const pipeline = await createPipeline({
    source: Array.from({ length: options.cameras }, () => ({ uri: url })),
    model: options.model,
    engine: 'onnx',
    pipeline: { maxBatch, batchChoice: 'always' },
  });
  let first: number | null = null;
  let count = 0;
  // Counted from the first prediction (connecting and the first frames are not throughput).
  pipeline.predictions$.subscribe(() => {
    first ??= performance.now();
    count++;
  });
  const stop = setTimeout(() => pipeline.stop(), (options.secondsPerRun + 3) * 1000);
  const summary = await pipeline.run();
  clearTimeout(stop);
  const elapsedS = first === null ? 1 : (performance.now() - first) / 1000;
  return {
    maxBatch,
    predictionsPerS: count / elapsedS,
    meanBatchSize: summary.meanBatchSize,
    latencyP50Ms: summary.latencyMs.p50,
    latencyP99Ms: summary.latencyMs.p99,
    meanInferMs: summary.meanStageMs.infer,
    dropped: Object.values(summary.drops).reduce((n, d) => n + Object.values(d).reduce((a, b) => a + b, 0), 0),
  };
}

export function formatMultiCamera(r: MultiCameraResult): string {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const of = (b: number) => r.runs.filter((x) => x.maxBatch === b);
  const rate = (b: number) => median(of(b).map((x) => x.predictionsPerS));
  const row = (label: string, b: number) => {
    const runs = of(b);
    return `| ${label} | ${runs.map((x) => x.predictionsPerS.toFixed(2)).join(' / ')} | ${median(runs.map((x) => x.meanBatchSize)).toFixed(2)} | ${median(runs.map((x) => x.meanInferMs)).toFixed(1)} | ${median(runs.map((x) => x.latencyP50Ms)).toFixed(0)} / ${median(runs.map((x) => x.latencyP99Ms)).toFixed(0)} | ${median(runs.map((x) => x.dropped))} |`;
  };
  const perImage = Object.entries(r.batched.perImageMs).map(([n, ms]) => `batch ${n}: ${ms.toFixed(2)} ms`).join(', ');
  return [
    `### ${r.cameras} RTSP cameras at ${r.cameraFps} fps, ${r.model}: batched vs unbatched (${r.runs.length / 2} rounds of ${r.secondsPerRun} s each, alternating)`,
    '',
    '| | predictions/s (each round) | frames per call | mean inference call ms | latency p50 / p99 ms | dropped (median) |',
    '|---|---|---|---|---|---|',
    row(`batched (maxBatch ${r.cameras})`, r.cameras),
    row('unbatched', 1),
    '',
    `batched / unbatched predictions/s: **${(rate(r.cameras) / rate(1)).toFixed(2)}x** (medians)`,
    '',
    `inference per image, timed by asBatchedModel on this CPU: ${perImage}; batchChoice measured would use maxBatch ${r.batched.maxBatch}` +
      ` (${r.batched.plan.batchedNodes} nodes batched, ${r.batched.plan.perImageNodes} per image${r.batched.plan.firstPerImage === null ? '' : ` from ${r.batched.plan.firstPerImage.op}: ${r.batched.plan.firstPerImage.why}`})`,
    '',
  ].join('\n');
}
