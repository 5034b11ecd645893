/**
 * Zones and lines over tracks, in one import: the config schemas (`source.zones`, `source.lines`), resolving
 * fractions to pixels, the zone tracker and the line counter, and the geometry they rest on.
 */
export {
  ZoneSchema,
  LineSchema,
  ZonesSchema,
  LinesSchema,
  resolveGeometry,
  anchorPoint,
  classKey,
  matchesClasses,
  observeHeld,
  type AnchorName,
  type Held,
  type HoldRule,
  type LineConfig,
  type LineConfigInput,
  type PointXy,
  type ResolvedLine,
  type ResolvedZone,
  type ZoneConfig,
  type ZoneConfigInput,
} from './geometry-schema.js';
export {
  ZoneTracker,
  pointInPolygon,
  windingNumber,
  onPolygonEdge,
  type ZoneEvent,
  type ZoneOccupancy,
  type ZoneTrackerOptions,
} from './zones.js';
export {
  LineCounter,
  sideOfLine,
  pathCrossesSegment,
  type LineCounts,
  type LineCrossEvent,
  type LineCounterOptions,
  type Side,
} from './lines.js';
