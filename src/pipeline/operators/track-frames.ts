import { map, type OperatorFunction } from 'rxjs';
import type { SnapshotStore } from '../../snapshots/snapshot-store.js';
import type { SourceTracking } from '../../tracking/source-tracking.js';
import type { Decoded, Tracked } from './staged-frame.js';

/**
 * Follows objects from frame to frame on tracked sources: the tracker, zones and lines (SourceTracking), and the
 * best frame of each object for its snapshot (copied now, before annotation draws on the frame). The decoder keeps
 * boxes down to the trackers' low score (ByteTrack's second stage needs them); the prediction keeps only those at
 * or above `minScore`, as without tracking.
 */
export function trackFrames(
  trackings: ReadonlyMap<string, SourceTracking>,
  snapshots: SnapshotStore | null,
  minScore: number,
): OperatorFunction<Decoded, Tracked> {
  return map((staged) => {
    const startMs = performance.now();
    const { frame, result } = staged;
    const tracking = trackings.get(frame.sourceId);
    if (result.task !== 'detection') return { ...staged, tracked: null, timings: { ...staged.timings, track: 0 } };
    const shown = { task: 'detection' as const, detections: result.detections.filter((d) => d.score >= minScore) };
    if (tracking === undefined) return { ...staged, result: shown, tracked: null, timings: { ...staged.timings, track: 0 } };
    const tracked = tracking.update(result.detections, { index: frame.index, timestampMs: frame.timestampMs, sizeWh: frame.sizeWh });
    if (snapshots !== null) {
      for (const id of tracked.forgotten) snapshots.forget(frame.sourceId, id);
      for (const t of tracked.bestImproved) {
        const label = t.label === undefined ? {} : { label: t.label };
        snapshots.capture(frame.sourceId, { trackId: t.id, classId: t.classId, ...label, xyxy: t.xyxy, score: t.score }, frame);
      }
    }
    return { ...staged, result: shown, tracked, timings: { ...staged.timings, track: performance.now() - startMs } };
  });
}
