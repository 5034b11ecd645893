import type { Track, Tracker } from '../types.js';
import type { EvalFrame } from './eval-frame.js';
import type { Scene } from './synthetic-scenes.js';

export interface RunSceneOptions {
  /**
   * Called around each update with its duration, µs, for cost measurements (the metrics do not depend on it).
   * Default: not timed.
   */
  onUpdateUs?: (durationUs: number, detections: number) => void;
}

/**
 * Feeds a scene's detections to `tracker`, frame by frame at the scene's times, and returns the frames the metrics
 * take: the truth, and as hypotheses the tracks confirmed after that frame (tentative tracks have no id to show
 * yet; lost tracks are not output, as in ByteTrack's and MOTChallenge's convention). Resets the tracker first.
 */
export function runScene(scene: Scene, tracker: Tracker, options: RunSceneOptions = {}): EvalFrame[] {
  tracker.reset();
  return scene.frames.map((frame) => {
    let tracks: Track[];
    if (options.onUpdateUs === undefined) {
      tracks = tracker.update(frame.detections, frame.timeMs);
    } else {
      const startNs = process.hrtime.bigint();
      tracks = tracker.update(frame.detections, frame.timeMs);
      options.onUpdateUs(Number(process.hrtime.bigint() - startNs) / 1000, frame.detections.length);
    }
    return { gt: frame.gt, hyp: tracks.filter((t) => t.state === 'confirmed').map((t) => ({ id: t.id, xyxy: t.xyxy })) };
  });
}
