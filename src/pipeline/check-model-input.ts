import type { Config, EngineName } from '../config/schema.js';
import { VisionpipeError } from '../errors.js';
import type { EngineInfo } from '../inference/engine.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import { trackSettingsOf } from '../tracking/track-schema.js';

/** The model's declared input shape must agree with the descriptor (dynamic dimensions agree with anything). */
export function checkModelInput(info: EngineInfo, d: ModelDescriptor, expected: readonly number[]): void {
  const actual = info.inputShape;
  if (actual.length === 0) return; // the model does not declare its shape
  const agrees = actual.length === expected.length && actual.every((dim, i) => dim === null || dim === expected[i]);
  if (!agrees) {
    throw new VisionpipeError('VP_MODEL_SHAPE_MISMATCH', `The model "${d.name}" does not take the input its descriptor describes`, {
      value: `model input "${info.inputName}" of shape [${actual.map((x) => x ?? '?').join(', ')}]`,
      expected: `[${expected.join(', ')}] (descriptor ${d.descriptorPath}: input.sizeWh ${d.input.sizeWh.join('x')}, layout ${d.input.layout})`,
    });
  }
}

/**
 * The onnx and opencv engines read .onnx files, TF.js graph models and TFLite files (converted first); the tfjs
 * engine reads TF.js models.
 */
export function checkEngineFormat(engine: EngineName, d: ModelDescriptor): void {
  const ok = engine === 'tfjs' ? d.format.startsWith('tfjs') : d.format === 'onnx' || d.format === 'tfjs-graph' || d.format === 'tflite';
  if (!ok) {
    throw new VisionpipeError('VP_ENGINE_UNAVAILABLE', `The ${engine} engine cannot run a ${d.format} model ("${d.name}")`, {
      value: engine,
      expected: d.format === 'onnx' ? 'engine onnx' : 'engine tfjs',
      hint: 'Use --engine auto (the descriptor’s engine), or convert the model first (visionpipe convert).',
    });
  }
}

/**
 * Tracking needs boxes, snapshots need tracking, and class filters must name the model's classes: config mistakes
 * that would otherwise run without a word and produce nothing. Found before anything runs (run and validate).
 */
export function checkTracking(config: Config, descriptor: ModelDescriptor): void {
  const tracked = config.source.map((source) => trackSettingsOf(source) !== null);
  config.source.forEach((source, i) => {
    if (!tracked[i]) return;
    const key = config.source.length === 1 ? 'source' : `source.${i}`;
    if (descriptor.task !== 'detection') {
      throw new VisionpipeError('VP_CONFIG_INVALID', `${key} is tracked (track, zones or lines), but model ${descriptor.name} is a ${descriptor.task} model`, {
        value: descriptor.name,
        expected: 'a detection model (e.g. centernet) for tracking, zones and lines',
        hint: `Remove ${key}.track, zones and lines, or choose a detection model.`,
      });
    }
    const filters: [string, readonly string[] | undefined][] = [
      [`${key}.track.classes`, typeof source.track === 'object' ? source.track.classes : undefined],
      ...source.zones.map((z, j): [string, readonly string[] | undefined] => [`${key}.zones.${j}.classes`, z.classes]),
      ...source.lines.map((l, j): [string, readonly string[] | undefined] => [`${key}.lines.${j}.classes`, l.classes]),
    ];
    for (const [path, classes] of filters) {
      const unknown = (classes ?? []).filter((c) => !descriptor.labels.includes(c) && !isClassId(c, descriptor.labels.length));
      if (unknown.length === 0) continue;
      const known = descriptor.labels.slice(0, 12).join(', ');
      throw new VisionpipeError('VP_CONFIG_INVALID', `${path} names ${unknown.map((c) => `"${c}"`).join(', ')}, not a class of model ${descriptor.name}`, {
        value: unknown.join(', '),
        expected: `labels of the model (${known}${descriptor.labels.length > 12 ? ', …' : ''}) or class ids 0..${descriptor.labels.length - 1}`,
        hint: 'Check the spelling against the model\'s labels file.',
      });
    }
  });
  if (config.output.snapshots !== null && !tracked.some(Boolean)) {
    throw new VisionpipeError('VP_CONFIG_INVALID', 'output.snapshots (--snapshots) is set, but no source is tracked: there would be no objects to snapshot', {
      value: config.output.snapshots,
      expected: 'a source with track, zones or lines',
      hint: 'Add `track: true` (or zones / lines) to the source, or leave snapshots out.',
    });
  }
  if (config.output.clips !== null && !tracked.some(Boolean)) {
    throw new VisionpipeError('VP_CONFIG_INVALID', 'output.clips (--clips) is set, but no source is tracked: there would be no object events to clip', {
      value: config.output.clips,
      expected: 'a source with track, zones or lines',
      hint: 'Add `track: true` (or zones / lines) to the source, or leave clips out.',
    });
  }
}

function isClassId(text: string, classCount: number): boolean {
  return /^\d+$/.test(text) && Number(text) < classCount;
}
