/**
 * How close a converted int8 .tflite is to TensorFlow Lite's own results, layer by layer (the numbers in the README's
 * "TFLite models"): every operator's output is made a model output (the model is rewritten with the test writer),
 * then run by TFLite's interpreter (wasm, the tests' reference engine) and by onnxruntime on the conversion, on
 * every 8th frame of a clip; for each layer, the share of equal 8-bit values and the largest difference in steps.
 * Then the int8 vs uint8 weight storage (see integerWeightTypeForThisCpu) is timed side by side.
 *
 *   npx tsx scripts/tflite-compare.ts [model_quant.tflite] [clip] [descriptor]
 *
 * Needs the dev dependencies (@tensorflow/tfjs-tflite, flatbuffers).
 */
import * as ort from 'onnxruntime-node';
import { loadModelDescriptor } from '../src/models/load-descriptor.js';
import { parseTflite, readTfliteFile } from '../src/models/tflite/read-tflite.js';
import { integerWeightTypeForThisCpu, tfliteToOnnx, type IntegerWeightType } from '../src/models/tflite/tflite-to-onnx.js';
import { inputDims, preprocessSpecOf } from '../src/preprocess/preprocess-frame.js';
import { preprocessedFrames } from '../test/helpers/frames.js';
import { openTfliteReference } from '../test/helpers/tflite-reference.js';
import { toWriterModel, writeTflite } from '../test/helpers/tflite-writer.js';

const [modelFile = '../shared/models/mlperf-tiny-resnet/pretrainedResnet_quant.tflite', clip = '../shared/samples/vtest.avi', descriptorName = 'mlperf-tiny-resnet'] = process.argv.slice(2);

const model = readTfliteFile(modelFile);
const inputT = model.tensors[model.inputs[0]!]!;
const inputQuant = inputT.quant === null ? undefined : { scale: inputT.quant.scale[0]!, zeroPoint: inputT.quant.zeroPoint[0]! };
const spec = preprocessSpecOf(loadModelDescriptor(descriptorName));
const frames = await preprocessedFrames(clip, spec, 8);

async function layers(weights: IntegerWeightType): Promise<void> {
  const produced = model.operators.map((o) => o.outputs[0]!).filter((t) => model.tensors[t]!.quant !== null);
  const bytes = writeTflite({ ...toWriterModel(model), outputs: produced });
  const converted = tfliteToOnnx(parseTflite(bytes), 'layers', weights);
  const session = await ort.InferenceSession.create(converted.graph.toBytes());
  const reference = await openTfliteReference(bytes, inputQuant);
  const stats = produced.map(() => ({ n: 0, equal: 0, max: 0 }));
  for (const x of frames) {
    const ours = await session.run({ input: new ort.Tensor('float32', x, inputDims(spec)) });
    const theirs = reference.run(x).outputs;
    produced.forEach((t, k) => {
      const q = model.tensors[t]!.quant!;
      const values = ours[k === 0 ? 'output' : `output_${k}`]!.data as Float32Array;
      values.forEach((v, j) => {
        const d = Math.abs(Math.round(v / q.scale[0]!) + q.zeroPoint[0]! - Number(theirs[k]![j]));
        const s = stats[k]!;
        s.n++;
        if (d === 0) s.equal++;
        s.max = Math.max(s.max, d);
      });
    });
  }
  reference.close();
  await session.release();
  console.log(`\n${modelFile}: ${weights} weights, ${frames.length} frames of ${clip}\n`);
  console.log('| # | op | tensor | equal to TFLite | max Δ (steps) |\n|---|---|---|---|---|');
  produced.forEach((t, k) => {
    const op = model.operators.find((o) => o.outputs[0] === t)!;
    const s = stats[k]!;
    console.log(`| ${op.index} | ${op.op} | ${model.tensors[t]!.name.split(';')[0]} | ${((100 * s.equal) / s.n).toFixed(1)} % | ${s.max} |`);
  });
}

console.log(`this CPU stores quantized weights as ${integerWeightTypeForThisCpu()}`);
await layers('uint8');
await layers('int8');

// Latency of the two weight storages, side by side (single thread, alternating rounds).
const sessions = await Promise.all(
  (['int8', 'uint8'] as const).map(async (w) => [w, await ort.InferenceSession.create(tfliteToOnnx(model, w, w).graph.toBytes(), { intraOpNumThreads: 1 })] as const),
);
const ms = new Map<string, number[]>(sessions.map(([w]) => [w, []]));
for (let round = 0; round < 5; round++) {
  for (const [w, s] of sessions) {
    const t0 = performance.now();
    for (const x of frames) await s.run({ input: new ort.Tensor('float32', x, inputDims(spec)) });
    ms.get(w)!.push((performance.now() - t0) / frames.length);
  }
}
for (const [w, v] of ms) console.log(`${w} weights: median ${v.sort((a, b) => a - b)[2]!.toFixed(3)} ms per frame (1 thread)`);
for (const [, s] of sessions) await s.release();
