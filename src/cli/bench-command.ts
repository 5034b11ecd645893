import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { benchCameraFaults, formatCameraFaults } from '../bench/camera-faults-bench.js';
import { benchClips, formatClipsBench } from '../bench/clips-bench.js';
import { benchCluster, formatClusterBench } from '../bench/cluster-bench.js';
import { benchDelivery, formatDeliveryBench } from '../bench/delivery-bench.js';
import { benchFilePipeline, formatBench, inferenceAloneMs, type BenchCase } from '../bench/file-pipeline-bench.js';
import { benchInt8Resnet50, formatInt8Bench } from '../bench/int8-bench.js';
import { benchInt8Detector, formatInt8DetectorBench } from '../bench/int8-detector-bench.js';
import { benchLiveOverload, formatLiveJustInTime, formatLiveOverload } from '../bench/live-overload-bench.js';
import { benchLivePage, formatLivePageBench } from '../bench/live-page-bench.js';
import { benchMultiCamera, formatMultiCamera } from '../bench/multi-camera-bench.js';
import { benchTracking, formatTrackingBench } from '../bench/tracking-bench.js';
import { benchTrackingPipeline, formatTrackingPipelineBench } from '../bench/tracking-pipeline-bench.js';
import type { RunSummary } from '../metrics/run-stats.js';
import { reportError } from './report-error.js';

/**
 * `visionpipe bench`: side-by-side measurements in one run. Uses ../shared's clips when present, else
 * samples/vtest.avi (from `bash scripts/setup.sh --samples`).
 */
export async function benchCommand(flags: { clip?: string; maxFrames?: number; only?: string; liveSeconds?: number; faultSeconds?: number }): Promise<number> {
  try {
    const shared = resolve('..', 'shared', 'samples', 'vtest.avi');
    const clip = flags.clip ?? (existsSync(shared) ? shared : resolve('samples', 'vtest.avi'));
    const cases: BenchCase[] = ([
      { name: 'classification, onnx', clip, model: 'mlperf-tiny-resnet', engine: 'onnx', maxFrames: flags.maxFrames ?? null },
      { name: 'classification, opencv (OpenCV DNN)', clip, model: 'mlperf-tiny-resnet', engine: 'opencv', maxFrames: flags.maxFrames ?? null },
      { name: 'detection (default model), onnx (converted from TF.js)', clip, model: 'centernet', engine: 'onnx', maxFrames: flags.maxFrames ?? null },
      { name: 'detection (default model), tfjs (wasm)', clip, model: 'centernet', engine: 'tfjs', maxFrames: flags.maxFrames ?? null },
    ] satisfies BenchCase[]).filter((c) => flags.only === undefined || c.model === flags.only);
    process.stdout.write(`# visionpipe bench (${new Date().toISOString()})\n\n`);
    const overlapped = new Map<string, RunSummary>();
    for (const c of cases) {
      process.stderr.write(`bench: ${c.name} …\n`);
      try {
        const rows = await benchFilePipeline(c);
        const aloneMs = await inferenceAloneMs(c).catch(() => null);
        const o = rows.find((r) => r.mode === 'overlapped');
        if (o !== undefined) overlapped.set(`${c.model}/${c.engine}`, o.summary);
        process.stdout.write(`${formatBench(c, rows, aloneMs)}\n`);
      } catch (err) {
        process.stdout.write(`### ${c.name}: skipped (${(err as Error).message.split('\n')[0]})\n\n`);
      }
    }
    const [viaOnnx, viaTfjs] = [overlapped.get('centernet/onnx'), overlapped.get('centernet/tfjs')];
    if (viaOnnx !== undefined && viaTfjs !== undefined) {
      process.stdout.write(
        [
          '### default detector: converted ONNX vs original TF.js graph (overlapped pipeline, same clip)',
          '',
          `end-to-end ${viaOnnx.fps.toFixed(2)} vs ${viaTfjs.fps.toFixed(2)} fps: **${(viaOnnx.fps / viaTfjs.fps).toFixed(2)}x**; ` +
            `inference ${viaOnnx.meanStageMs.infer.toFixed(1)} vs ${viaTfjs.meanStageMs.infer.toFixed(1)} ms per frame: ` +
            `**${(viaTfjs.meanStageMs.infer / viaOnnx.meanStageMs.infer).toFixed(2)}x**`,
          '',
          '',
        ].join('\n'),
      );
    }
    if (flags.only === undefined || flags.only === 'tracking') {
      process.stderr.write('bench: tracking …\n');
      // The default detector's fps from this run (when it ran) puts the tracker's cost per frame in proportion.
      process.stdout.write(`${formatTrackingBench(benchTracking(), { endToEndFps: viaOnnx?.fps })}\n`);
      await optionalCase('tracking on / off in the pipeline', 'tracking in the pipeline', async (write) => write(formatTrackingPipelineBench(await benchTrackingPipeline({ clip, maxFrames: flags.maxFrames ?? 300 }))));
    }
    if (flags.only === undefined || flags.only === 'clips') {
      await optionalCase('event clips', 'event clips', async (write) => write(formatClipsBench(await benchClips({ clip, maxFrames: flags.maxFrames ?? 300 }))));
    }
    if (flags.only === undefined || flags.only === 'page') {
      await optionalCase('live page viewers', 'live page', async (write) => write(formatLivePageBench(await benchLivePage({ clip, maxFrames: flags.maxFrames ?? 300 }))));
    }
    if (flags.only === undefined || flags.only === 'delivery') {
      // Paced at 1000 events/s (latency under a realistic load), then unpaced (the most it sustains).
      await optionalCase('delivery to mosquitto', 'delivery', async (write) => {
        write(formatDeliveryBench(await benchDelivery({ ratePerS: 1000 }), 1000));
        write(formatDeliveryBench(await benchDelivery({ ratePerS: Infinity, events: 10_000 }), Infinity));
      });
    }
    if (flags.only === undefined || flags.only === 'int8') {
      process.stderr.write('bench: int8 vs fp32 …\n');
      process.stdout.write(`${formatInt8Bench(await benchInt8Resnet50())}\n`);
    }
    if (flags.only === undefined || flags.only === 'int8-detector') {
      await optionalCase('int8 detector', 'default detector fp32 vs int8 in the pipeline', async (write) =>
        write(formatInt8DetectorBench(await benchInt8Detector(clip, flags.maxFrames ?? 150))),
      );
    }
    if (flags.only === undefined || flags.only === 'live') {
      await optionalCase('live overload', 'live overload', async (write) =>
        write(formatLiveOverload(await benchLiveOverload({ clip: existsSync(clip) ? clip : undefined, durationS: flags.liveSeconds ?? 70, sourceFps: 25, model: 'centernet', engine: 'tfjs' }))),
      );
      // The default model on onnx at 30 fps (over 2x what it sustains here): double buffering, then just in time.
      await optionalCase('live just in time', 'live just in time', async (write) => {
        const live = { clip: existsSync(clip) ? clip : undefined, durationS: flags.liveSeconds ?? 70, sourceFps: 30, model: 'centernet', engine: 'onnx' as const };
        const db = await benchLiveOverload({ ...live, justInTime: false });
        const jit = await benchLiveOverload({ ...live, justInTime: true });
        const aloneMs = existsSync(clip) ? await inferenceAloneMs({ name: 'live', clip, model: 'centernet', engine: 'onnx', maxFrames: null }).catch(() => null) : null;
        write(`${formatLiveOverload(db)}\n${formatLiveOverload(jit)}\n${formatLiveJustInTime(db, jit, aloneMs)}`);
      });
    }
    if (flags.only === undefined || flags.only === 'batch') {
      // 4 cameras at 10 fps: the default detector (more than one machine's worth here) and the small classifier.
      for (const model of ['centernet', 'mlperf-tiny-resnet']) {
        await optionalCase(`4 cameras batched vs unbatched (${model})`, `batching ${model}`, async (write) =>
          write(formatMultiCamera(await benchMultiCamera({ clip: existsSync(clip) ? clip : undefined, model, cameras: 4, cameraFps: 10, secondsPerRun: flags.liveSeconds ?? 20, rounds: 2 }))),
        );
      }
    }
    if (flags.only === undefined || flags.only === 'faults') {
      const faultS = flags.faultSeconds ?? 180;
      // The baseline follows the fault phase's length (60 s for the default 180 s), so a short dry run stays short.
      const aloneS = Math.min(60, faultS / 2);
      await optionalCase('camera faults', 'camera faults', async (write) =>
        write(formatCameraFaults(await benchCameraFaults({ clip: existsSync(clip) ? clip : undefined, faultS, aloneS, sourceFps: 10, model: 'mlperf-tiny-resnet', engine: 'onnx' }))),
      );
    }
    if (flags.only === undefined || flags.only === 'cluster') {
      const cluster = { clip, model: 'mlperf-tiny-resnet', jobs: 20, framesPerJob: flags.maxFrames ?? 10, workerCounts: [1, 2, 3] };
      await optionalCase('cluster workers on Redis', 'cluster', async (write) => write(formatClusterBench(await benchCluster(cluster), cluster)));
    }
    return 0;
  } catch (err) {
    return reportError(err, false);
  }
}

/**
 * One bench case that needs something the machine may lack (a broker, the RTSP server, ffmpeg): its sections, and
 * one `skipped` line saying why if it fails, so the other cases still run.
 */
async function optionalCase(progress: string, title: string, run: (write: (section: string) => void) => Promise<void>): Promise<void> {
  process.stderr.write(`bench: ${progress} …\n`);
  try {
    // Each section is printed as soon as it is measured: a later failure keeps what came before.
    await run((section) => process.stdout.write(`${section}\n`));
  } catch (err) {
    process.stdout.write(`### ${title}: skipped (${(err as Error).message.split('\n')[0]})\n\n`);
  }
}
