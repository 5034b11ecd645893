import type { Subject } from 'rxjs';
import { VisionpipeError, isVisionpipeError, messageOf } from '../errors.js';
import type { RunSummary } from '../metrics/run-stats.js';
import type { Sink } from '../sinks/sink.js';
import type { FrameSource } from '../sources/frame-source.js';
import type { EndOfInput } from './end-of-input.js';

export interface FinishRequest {
  /** Why the frame flow stopped, if it failed; outputs are then kept as `.partial` instead of finalised. */
  flowError: unknown;
  sources: readonly FrameSource[];
  sinks: readonly Sink[];
  /** A problem with the input found at the end (a file cut short, every camera gone), written before sinks close. */
  endOfInput: () => EndOfInput;
  /** Releases the model and the metrics endpoint. */
  closeRest: () => Promise<void>;
  unsubscribeStates: () => void;
  subjects: ReadonlyArray<Pick<Subject<unknown>, 'complete' | 'error'>>;
  summarize: (outputs: Record<string, string>, sourceProblems: string[]) => RunSummary;
}

/**
 * The end of every run, successful or not, in an order that loses nothing: sources close first (their last state
 * change still reaches the events file), then every sink is closed — each one even when another fails — then the
 * model and the metrics endpoint. The subjects always complete or error. A failure carries a `VP_` code, names
 * what was written and kept, and carries the run's summary (`error.summary`).
 */
export async function finishRun(req: FinishRequest): Promise<RunSummary> {
  await Promise.allSettled(req.sources.map((s) => s.close()));
  req.unsubscribeStates();
  let problem: unknown = req.flowError;
  let notes: string[] = [];
  try {
    const end = req.endOfInput();
    notes = end.notes;
    problem ??= end.error;
  } catch (err) {
    problem ??= err;
  }
  // A failed flow leaves outputs as `.partial` (they may end mid-frame); a run that ended on a bad input has
  // outputs complete for what was read, so they are finalised and the error names them.
  const finalise = req.flowError === undefined;
  const results = await Promise.allSettled(req.sinks.map((s) => (finalise ? s.close() : s.abort())));
  const written: Record<string, string> = {};
  const kept: string[] = [];
  const failures: string[] = [];
  results.forEach((r, i) => {
    const name = req.sinks[i]?.name ?? `sink ${i}`;
    if (r.status === 'rejected') failures.push(`${name}: ${messageOf(r.reason).split('\n')[0]}`);
    // A sink that never got a frame (a camera that never went live) wrote nothing: '' or null.
    else if (r.value === null || r.value === '') return;
    else if (finalise) written[name] = r.value;
    else kept.push(r.value);
  });
  await req.closeRest().catch(() => undefined);
  const summary = req.summarize(written, notes);
  if (failures.length > 0 && problem === undefined) {
    problem = new VisionpipeError('VP_SINK_FAILED', `Closing ${failures.length === 1 ? 'an output' : `${failures.length} outputs`} failed (${failures.join('; ')})`, {
      cause: results.find((r) => r.status === 'rejected')?.reason,
    });
  }
  if (problem === undefined) {
    for (const s of req.subjects) s.complete();
    return summary;
  }
  const error = asRunError(problem, { written, kept, failures });
  Object.assign(error, { summary });
  for (const s of req.subjects) s.error(error);
  throw error;
}

/** Gives an error the outputs' fate in its message; an error without a code becomes VP_SINK_FAILED / its own. */
function asRunError(problem: unknown, outputs: { written: Record<string, string>; kept: string[]; failures: string[] }): Error {
  const error = problem instanceof Error ? problem : new Error(String(problem));
  const notes: string[] = [];
  const finalised = Object.values(outputs.written);
  if (finalised.length > 0) notes.push(`Outputs finalised: ${finalised.join(', ')}`);
  if (outputs.kept.length > 0) notes.push(`Output written before the failure was kept as: ${outputs.kept.join(', ')}`);
  if (outputs.failures.length > 0 && !isVisionpipeError(error)) notes.push(`Outputs that failed to close: ${outputs.failures.join('; ')}`);
  if (notes.length > 0) error.message += `\n${notes.join('\n')}`;
  return error;
}
