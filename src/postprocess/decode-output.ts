import type { Config } from '../config/schema.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import type { InputTransform } from '../preprocess/letterbox-geometry.js';
import { softmax, topK } from './classify.js';
import { decodeXyxyScoreClass } from './detect.js';
import type { FrameResult } from './results.js';

/** Turns a raw output tensor into a FrameResult, as the descriptor's decoder says. */
export type OutputDecoder = (output: Float32Array, transform: InputTransform, frameWh: readonly [number, number]) => FrameResult;

export function createDecoder(d: ModelDescriptor, options: Config['postprocess']): OutputDecoder {
  switch (d.output.decoder) {
    case 'probabilities':
      return (out) => ({ task: 'classification', classifications: topK(out, options.topK, d.labels) });
    case 'logits':
      return (out) => ({ task: 'classification', classifications: topK(softmax(out), options.topK, d.labels) });
    case 'boxes-xyxy-score-class':
      return (out, transform, frameWh) => ({
        task: 'detection',
        detections: decodeXyxyScoreClass(out, transform, frameWh, d.labels, options),
      });
  }
}
