import { stampEvent } from './event-stamp.js';
import type { Prediction } from './frame.js';

const round3 = (v: number) => Math.round(v * 1000) / 1000;
const round1 = (v: number) => Math.round(v * 10) / 10;

/** The JSON form of a prediction: one line of the events file. Numbers rounded for readability. */
export function toEventJson(p: Prediction): Record<string, unknown> {
  const body =
    p.result.task === 'detection'
      ? {
          detections: p.result.detections.map((d) => ({
            label: d.label,
            classId: d.classId,
            score: round3(d.score),
            xyxy: d.xyxy.map(round1),
          })),
        }
      : {
          classifications: p.result.classifications.map((c) => ({ label: c.label, classId: c.classId, score: round3(c.score) })),
        };
  const tracks =
    p.tracks === undefined
      ? {}
      : {
          tracks: p.tracks.map((t) => ({
            trackId: t.id,
            label: t.label,
            classId: t.classId,
            score: round3(t.score),
            xyxy: t.xyxy.map(round1),
            state: t.state,
          })),
        };
  return stampEvent({
    type: 'prediction',
    source: p.sourceId,
    frameIndex: p.frameIndex,
    timestampMs: round3(p.timestampMs),
    task: p.result.task,
    ...body,
    ...tracks,
    latencyMs: round3(p.latencyMs),
    timingsMs: Object.fromEntries(Object.entries(p.timingsMs).map(([k, v]) => [k, round3(v)])),
  });
}
