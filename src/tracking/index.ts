/** The tracking module's public surface: the tracker, its value types, and the pieces others reuse. */
export type { Track, TrackInput, TrackState, TrackerOptions, Tracker, Xyxy } from './types.js';
export { createTracker, resolveTrackerOptions, DEFAULT_TRACKER_OPTIONS } from './create-tracker.js';
export { solveAssignment, type AssignmentOptions, type AssignmentResult } from './assignment.js';
export { iou } from './iou.js';
