/**
 * The same pipeline consumed with `for await`: classify frames with the MLPerf Tiny ResNet (needs ../shared).
 *
 *   npx tsx samples/iterate-predictions.ts ../shared/samples/Megamind.avi
 */
import { createPipeline } from '../src/index.js';

const uri = process.argv[2] ?? '../shared/samples/Megamind.avi';
const pipeline = await createPipeline({ source: { uri, maxFrames: 30 }, model: 'mlperf-tiny-resnet' });
const done = pipeline.run();
for await (const p of pipeline.predictions()) {
  if (p.result.task === 'classification') {
    const best = p.result.classifications[0];
    console.log(`frame ${p.frameIndex}: ${best?.label ?? '?'} ${((best?.score ?? 0) * 100).toFixed(1)}%`);
  }
}
await done;
