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
 * The onnx and opencv engines read .onnx files and TF.js graph models (converted first); the tfjs engine reads
 * TF.js models.
 */
export function checkEngineFormat(engine: EngineName, d: ModelDescriptor): void {
  const ok = engine === 'tfjs' ? d.format.startsWith('tfjs') : d.format === 'onnx' || d.format === 'tfjs-graph';
  if (!ok) {
    throw new VisionpipeError('VP_ENGINE_UNAVAILABLE', `The ${engine} engine cannot run a ${d.format} model ("${d.name}")`, {
      value: engine,
      expected: d.format === 'onnx' ? 'engine onnx' : 'engine tfjs',
      hint: 'Use --engine auto (the descriptor’s engine), or convert the model first (visionpipe convert).',
    });
  }
}

/** Tracking needs boxes: a tracked source with a classification model is a config error, found before anything runs. */
export function checkTracking(config: Config, descriptor: ModelDescriptor): void {
  if (descriptor.task === 'detection') return;
  config.source.forEach((source, i) => {
    if (trackSettingsOf(source) === null) return;
    const key = config.source.length === 1 ? 'source' : `source.${i}`;
    throw new VisionpipeError('VP_CONFIG_INVALID', `${key} is tracked (track, zones or lines), but model ${descriptor.name} is a ${descriptor.task} model`, {
      value: descriptor.name,
      expected: 'a detection model (e.g. centernet) for tracking, zones and lines',
      hint: `Remove ${key}.track, zones and lines, or choose a detection model.`,
    });
  });
}
