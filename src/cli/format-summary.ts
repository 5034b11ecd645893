import type { RunSummary } from '../metrics/run-stats.js';
import { STAGES } from '../metrics/run-stats.js';

function formatByClass(byClass: Record<string, { in: number; out: number }>): string {
  const entries = Object.entries(byClass);
  return entries.length === 0 ? '' : ` (${entries.map(([k, c]) => `${k} in ${c.in} out ${c.out}`).join('; ')})`;
}

/** The closing summary printed by `visionpipe run`. */
export function formatSummary(s: RunSummary): string {
  const stageLines = STAGES.map((stage) => `    ${stage.padEnd(12)} ${s.meanStageMs[stage].toFixed(2).padStart(8)} ms`);
  const outputs = Object.entries(s.outputs).map(([name, path]) => `    ${name.padEnd(12)} ${path}`);
  return [
    `visionpipe: ${s.frames} frames in ${(s.elapsedMs / 1000).toFixed(1)} s = ${s.fps.toFixed(2)} fps end to end${s.stoppedEarly ? ' (stopped early)' : ''}`,
    `  engine        ${s.engine}`,
    `  latency       p50 ${s.latencyMs.p50.toFixed(1)} ms, p95 ${s.latencyMs.p95.toFixed(1)} ms, p99 ${s.latencyMs.p99.toFixed(1)} ms (read → prediction)`,
    `  mean per frame:`,
    ...stageLines,
    ...Object.entries(s.drops)
      .filter(([, byReason]) => Object.values(byReason).some((n) => n > 0))
      .map(([source, byReason]) => `  dropped       ${source}: ${Object.entries(byReason).map(([r, n]) => `${r} ${n}`).join(', ')}`),
    ...s.sourceProblems.map((p) => `  source        ${p}`),
    ...(Object.keys(s.objectEvents).length > 0
      ? [`  object events ${Object.entries(s.objectEvents).map(([type, n]) => `${type} ${n}`).join(', ')}`]
      : []),
    ...s.lineCounts.map((l) => `  line          ${l.source} ${l.line}: in ${l.in}, out ${l.out}${formatByClass(l.byClass)}`),
    `  preprocessing copied ${(s.bytesCopiedPerFrame / 1024).toFixed(1)} KiB per frame; ring waits ${s.ringWaits}${s.meanBatchSize > 1 ? `; ${s.meanBatchSize.toFixed(2)} frames per inference call (batched)` : ''}`,
    ...(outputs.length > 0 ? ['  outputs:', ...outputs] : []),
  ].join('\n');
}
