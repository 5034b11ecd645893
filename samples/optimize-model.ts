/**
 * A library user's program: make a model fast on your own footage. Writes fp32 / fp16 / int8 ONNX variants, measures
 * agreement with fp32 and latency on this machine, and says which one to deploy. Compiled in CI (npm run typecheck).
 *
 *   npx tsx samples/optimize-model.ts ../shared/models/mlperf-tiny-resnet/pretrainedResnet.h5 samples/vtest.avi
 */
import { isVisionpipeError, optimizeModel } from '../src/index.js';

const [model = 'mlperf-tiny-resnet', clip = 'samples/vtest.avi', outDir = 'out/optimize'] = process.argv.slice(2);

try {
  const report = await optimizeModel({ model, clip, outDir, budget: 0.99 });
  for (const v of report.variants) {
    console.log(`${v.name.padEnd(16)} agreement ${(100 * v.agreement).toFixed(1)} %  ${v.meanMs.toFixed(2)} ms  ${v.file}`);
  }
  const picked = report.variants.find((v) => v.name === report.picked)!;
  console.log(`deploy ${picked.file}: ${report.speedupVsFp32.toFixed(2)}x fp32 (report: ${outDir}/report.md)`);
} catch (err) {
  console.error(isVisionpipeError(err) ? `${err.code}: ${err.message}` : err);
  process.exitCode = 1;
}
