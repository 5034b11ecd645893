/**
 * A library user's program: run the default detector over a clip, count persons per frame from the RxJS stream,
 * and print the run summary. Compiled in CI (npm run typecheck) so it cannot rot.
 *
 *   npx tsx samples/subscribe-predictions.ts samples/vtest.avi 50
 */
import { filter, map } from 'rxjs';
import { createPipeline, isVisionpipeError, type Prediction } from '../src/index.js';

const [uri = 'samples/vtest.avi', maxFrames = '50'] = process.argv.slice(2);

function personCount(p: Prediction): number {
  return p.result.task === 'detection' ? p.result.detections.filter((d) => d.label === 'person').length : 0;
}

try {
  const pipeline = await createPipeline({ source: { uri, maxFrames: Number(maxFrames) }, model: 'centernet' });
  pipeline.predictions$
    .pipe(
      map((p) => ({ frame: p.frameIndex, persons: personCount(p), latencyMs: Math.round(p.latencyMs) })),
      filter((row) => row.frame % 10 === 0),
    )
    .subscribe((row) => console.log(JSON.stringify(row)));
  const summary = await pipeline.run();
  console.log(`${summary.frames} frames at ${summary.fps.toFixed(1)} fps on ${summary.engine}`);
} catch (err) {
  console.error(isVisionpipeError(err) ? `${err.code}: ${err.message}` : err);
  process.exitCode = 1;
}
