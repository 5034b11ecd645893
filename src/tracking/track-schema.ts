import { z } from 'zod';
import { DEFAULT_TRACKER_OPTIONS, resolveTrackerOptions } from './create-tracker.js';
import type { TrackerOptions } from './types.js';

/**
 * `source.track`: the tracking stage of one source. `true` or `{}` turns it on with the defaults; every tracker
 * option of {@link TrackerOptions} can be set here, plus what the pipeline does with the tracks.
 */
export const TrackSchema = z
  .strictObject({
    highScore: z.number().min(0).max(1).optional(),
    lowScore: z.number().min(0).max(1).optional(),
    newTrackScore: z.number().min(0).max(1).optional(),
    matchIou: z.number().gt(0).max(1).optional(),
    lowMatchIou: z.number().gt(0).max(1).optional(),
    minHits: z.number().int().min(1).max(1000).optional(),
    maxAgeMs: z.number().min(0).max(3_600_000).optional(),
    classAware: z.boolean().optional(),
    /** Track only detections of these labels (or class ids written as strings); omit for every class. */
    classes: z.array(z.string().min(1)).min(1, 'list at least one class, or omit `classes` for all').optional(),
    /** At most one `object.update` per track per this many ms (zone changes send one at once); 0 = every frame. */
    updateIntervalMs: z.number().min(0).max(3_600_000).default(1000),
  })
  .superRefine((track, ctx) => {
    // The cross-option rules (lowScore ≤ highScore, …) live in one place: the tracker's own check.
    try {
      resolveTrackerOptions(trackerOptionsOf(track));
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

export type TrackConfig = z.output<typeof TrackSchema>;
export type TrackConfigInput = z.input<typeof TrackSchema>;

/** What a source's `track` key resolves to: the tracker's full options and the stage's own settings. */
export interface TrackSettings {
  tracker: Readonly<TrackerOptions>;
  classes: readonly string[] | undefined;
  updateIntervalMs: number;
}

/** `source.track` as written: on with defaults (true), off (false), options, or not given (on iff zones or lines). */
export const SourceTrackSchema = z
  .union([z.boolean(), TrackSchema], { error: 'expected true, false, or tracker options such as { classes: [person] }' })
  .optional();

/**
 * The tracking settings of a source, or null when it is not tracked. Not given means on exactly when the source
 * has zones or lines (they are about tracks), off otherwise.
 */
export function trackSettingsOf(source: {
  track?: boolean | TrackConfig | undefined;
  zones: readonly unknown[];
  lines: readonly unknown[];
}): TrackSettings | null {
  const track = source.track ?? (source.zones.length > 0 || source.lines.length > 0);
  if (track === false) return null;
  const config: TrackConfig = track === true ? { updateIntervalMs: 1000 } : track;
  return { tracker: resolveTrackerOptions(trackerOptionsOf(config)), classes: config.classes, updateIntervalMs: config.updateIntervalMs };
}

function trackerOptionsOf(track: TrackConfig): Partial<TrackerOptions> {
  const keys = Object.keys(DEFAULT_TRACKER_OPTIONS) as (keyof TrackerOptions)[];
  return Object.fromEntries(keys.filter((k) => track[k] !== undefined).map((k) => [k, track[k]])) as Partial<TrackerOptions>;
}
