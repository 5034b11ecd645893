/**
 * visionpipe's public API. Everything a library user needs is exported here; anything else is internal.
 *
 * ```ts
 * const pipeline = await createPipeline({ source: { uri: 'clip.mp4' }, model: 'centernet' });
 * pipeline.predictions$.subscribe((p) => console.log(p.frameIndex, p.result));
 * const summary = await pipeline.run();
 * ```
 */
export { createPipeline, type Pipeline, type PipelineOptions } from './pipeline/create-pipeline.js';
export { loadConfig, parseConfig, type ConfigOverrides } from './config/load-config.js';
export { ConfigSchema, type Config, type ConfigInput } from './config/schema.js';
export { VisionpipeError, isVisionpipeError, ERROR_CODES, type ErrorCode } from './errors.js';
export type { Prediction, AnnotatedFrame, Frame, StageTimingsMs } from './pipeline/frame.js';
export type { FrameResult, Classification, Detection } from './postprocess/results.js';
export type { RunSummary } from './metrics/run-stats.js';
export { loadModelDescriptor, listModelNames } from './models/load-descriptor.js';
export type { ModelDescriptor } from './models/descriptor-schema.js';
export { toEventJson } from './pipeline/prediction-event.js';
export { optimizeModel, type OptimizeOptions, type OptimizeReport, type VariantReport } from './models/optimize/optimize-model.js';
export { convertModel } from './models/convert-model.js';
export {
  createTracker,
  DEFAULT_TRACKER_OPTIONS,
  type Track,
  type TrackInput,
  type TrackState,
  type Tracker,
  type TrackerOptions,
} from './tracking/index.js';
export {
  OBJECT_EVENT_SCHEMA_VERSION,
  OBJECT_EVENT_TYPES,
  type ObjectEvent,
  type ObjectEventType,
  type ObjectStartEvent,
  type ObjectUpdateEvent,
  type ObjectEndEvent,
  type ZoneEnterEvent,
  type ZoneExitEvent,
  type ZoneDwellEvent,
  type LineCrossObjectEvent,
} from './tracking/object-events.js';
export type { LineCounts } from './tracking/lines.js';
