import { z } from 'zod';

/**
 * A model descriptor (models/*.yaml) tells the pipeline everything about a model that the file itself does not:
 * how to feed it (size, layout, colour, normalisation), how to read its output, and its labels.
 */
export const ModelDescriptorSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().default(''),
  /**
   * `onnx`: an .onnx file; `tfjs-graph`: a TF.js model.json (graph model); `tfjs-layers`: a TF.js layers model;
   * `tflite`: a TensorFlow Lite .tflite file (float, float16 or int8; run on onnx, converted on first use).
   */
  format: z.enum(['onnx', 'tfjs-graph', 'tfjs-layers', 'tflite']),
  /** Relative to the descriptor file, absolute, or `package:<npm package>/<path inside it>`. */
  path: z.string().min(1),
  /** Which engine runs it by default (onnx also runs tfjs-graph models, converted on first use). */
  engine: z.enum(['onnx', 'tfjs']),
  task: z.enum(['classification', 'detection']),
  input: z.strictObject({
    /** Input tensor name; omit to use the model's first input. */
    name: z.string().optional(),
    /** Model input width and height in pixels. */
    sizeWh: z.tuple([z.number().int().positive(), z.number().int().positive()]),
    layout: z.enum(['nhwc', 'nchw']).default('nhwc'),
    dtype: z.enum(['float32', 'uint8']).default('float32'),
  }),
  preprocess: z
    .strictObject({
      /** stretch: ignore aspect ratio; letterbox: fit inside and pad; center-crop: fill and crop the middle. */
      resize: z.enum(['stretch', 'letterbox', 'center-crop']).default('stretch'),
      /**
       * Resize filter. auto: area averaging when shrinking by 2x or more in both directions (bilinear would
       * point-sample and alias), bilinear otherwise.
       */
      interpolation: z.enum(['auto', 'linear', 'area', 'nearest', 'cubic']).default('auto'),
      /** Channel order the model expects (frames arrive as BGR). */
      pixelFormat: z.enum(['rgb', 'bgr']).default('rgb'),
      /** value = (pixel0to255 * scale - mean[c]) / std[c] */
      scale: z.number().positive().default(1),
      mean: z.tuple([z.number(), z.number(), z.number()]).default([0, 0, 0]),
      std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).default([1, 1, 1]),
      /** Letterbox padding value (0..255). */
      padValue: z.number().min(0).max(255).default(114),
    })
    .prefault({}),
  output: z.strictObject({
    /** Output tensor name; omit to use the model's first output. */
    name: z.string().optional(),
    /**
     * probabilities: [N, classes] already softmaxed; logits: [N, classes] before softmax;
     * boxes-xyxy-score-class: [N, boxes, 6] rows of x1, y1, x2, y2, score, class in model-input pixels.
     */
    decoder: z.enum(['probabilities', 'logits', 'boxes-xyxy-score-class']),
  }),
  /** A labels file (one per line, relative like `path`) or the list itself. */
  labels: z.union([z.string(), z.array(z.string())]),
});

export type ModelDescriptorInput = z.input<typeof ModelDescriptorSchema>;
export type ModelDescriptorFields = z.output<typeof ModelDescriptorSchema>;

/** A validated descriptor with its paths resolved and labels read. */
export interface ModelDescriptor extends Omit<ModelDescriptorFields, 'labels'> {
  /** Absolute path of the model file. */
  modelPath: string;
  /** Absolute path of the descriptor, or `<inline>`. */
  descriptorPath: string;
  labels: readonly string[];
}
