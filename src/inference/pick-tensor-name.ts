import { VisionpipeError } from '../errors.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';

/** The descriptor's tensor name if the model has it, else the model's first; a clear error when it has neither. */
export function pickTensorName(
  wanted: string | undefined,
  names: readonly string[],
  what: 'input' | 'output',
  d: ModelDescriptor,
): string {
  if (wanted === undefined) {
    const first = names[0];
    if (first === undefined) throw new VisionpipeError('VP_MODEL_INVALID', `The model has no ${what}`, { value: d.modelPath });
    return first;
  }
  if (!names.includes(wanted)) {
    throw new VisionpipeError('VP_MODEL_SHAPE_MISMATCH', `The model has no ${what} named "${wanted}" (descriptor ${d.name})`, {
      value: wanted,
      expected: `one of ${names.map((n) => `"${n}"`).join(', ')}`,
    });
  }
  return wanted;
}
