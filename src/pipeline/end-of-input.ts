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
): EndOfInput {
  const problems: Error[] = [];
  const notes: string[] = [];
  sources.forEach((s, i) => {
    const declared = s.info.frameCount;
    const read = s.framesRead;
    if (!ended.has(s) || s.info.kind !== 'file' || declared === null || read === undefined || read >= declared) return;
    const allowed = config.source[i]?.allowTruncated === true;
    emitEvent({ type: 'source-end', source: s.info.id, atMs: Date.now(), framesRead: read, framesDeclared: declared, truncated: true });
    notes.push(`${s.info.id}: ended after ${read} of the ${declared} frames its container declares${allowed ? ' (allowed)' : ''}`);
    if (!allowed) {
      problems.push(
        new VisionpipeError('VP_SOURCE_TRUNCATED', `${s.info.id} ended after ${read} of the ${declared} frames its container declares`, {
          value: s.info.id,
        }),
      );
    }
  });
  const failed = sources.filter((s) => s.failure !== undefined);
  for (const s of failed) notes.push(s.failure?.message.split('\n')[0] ?? `${s.info.id} gave up`);
  if (failed.length > 0 && (failed.length === sources.length || config.pipeline.failWhen === 'any-source-failed')) {
    const first = failed[0]?.failure;
    if (failed.length === 1 && first !== undefined) problems.push(first);
    else {
      const why = failed.map((s) => `  - ${s.failure?.message.split('\n')[0] ?? s.info.id}`).join('\n');
      problems.push(new VisionpipeError('VP_SOURCE_LOST', `${failed.length === sources.length ? 'Every source' : `${failed.length} sources`} gave up:\n${why}\n`));
    }
  }
  return { error: problems[0], notes };
}

export interface EndOfInput {
  /** The error the run ends with, if the input calls for one. */
  error: Error | undefined;
  /** One line per problem, for the summary (also those that are allowed or do not fail the run). */
  notes: string[];
}
