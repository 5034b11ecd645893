import type { Config } from '../config/schema.js';
import { VisionpipeError } from '../errors.js';
import type { FrameSource } from '../sources/frame-source.js';

/**
 * What the end of the input says about the run, decided after the frames are through and before the outputs
 * close: a file that ended before the frame count its container declares (VP_SOURCE_TRUNCATED, unless
 * `allowTruncated`), and sources that gave up (VP_SOURCE_LOST when every source did, or any with
 * `failWhen: any-source-failed`). Each cut-short file gets a `source-end` event in the events file.
 */
export function endOfInputProblem(
  sources: readonly FrameSource[],
  config: Config,
  ended: ReadonlySet<FrameSource>,
  emitEvent: (event: Record<string, unknown>) => void,
): Error | undefined {
  const problems: Error[] = [];
  sources.forEach((s, i) => {
    const declared = s.info.frameCount;
    const read = s.framesRead;
    if (!ended.has(s) || s.info.kind !== 'file' || declared === null || read === undefined || read >= declared) return;
    const allowed = config.source[i]?.allowTruncated === true;
    emitEvent({ type: 'source-end', source: s.info.id, atMs: Date.now(), framesRead: read, framesDeclared: declared, truncated: true });
    if (!allowed) {
      problems.push(
        new VisionpipeError('VP_SOURCE_TRUNCATED', `${s.info.id} ended after ${read} of the ${declared} frames its container declares`, {
          value: s.info.id,
        }),
      );
    }
  });
  const failed = sources.filter((s) => s.failure !== undefined);
  if (failed.length > 0 && (failed.length === sources.length || config.pipeline.failWhen === 'any-source-failed')) {
    const first = failed[0]?.failure;
    if (failed.length === 1 && first !== undefined) problems.push(first);
    else {
      const why = failed.map((s) => `  - ${s.failure?.message.split('\n')[0] ?? s.info.id}`).join('\n');
      problems.push(new VisionpipeError('VP_SOURCE_LOST', `${failed.length === sources.length ? 'Every source' : `${failed.length} sources`} gave up:\n${why}\n`));
    }
  }
  return problems[0];
}
