import { readFileSync, writeFileSync } from 'node:fs';
import { cv, type Mat, type Net } from '../cv.js';
import { VisionpipeError, messageOf } from '../errors.js';
import { cachedModelFile, MODEL_CACHE_DIR } from '../models/convert-model.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import { readOnnxGraph } from '../models/onnx/onnx-graph.js';
import { withNchwInput } from '../models/optimize/opencv-dnn.js';
import type { EngineInfo } from './engine.js';
import type { WorkerRunResult } from './worker-host.js';

/**
 * The `opencv` engine: OpenCV DNN (`readNetFromONNX`, CPU) on an ONNX model. OpenCV may only be loaded in one
 * thread per process, and the pipeline's capture and preprocessing already own it on the main thread, so this
 * engine lives there too — `forwardAsync` runs the network on the libuv pool, which keeps the event loop free.
 * Runs are serialised (one network, one input at a time) and complete in order, like the worker's.
 */
export class OpenCvDnnHost {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly net: Net,
    readonly info: EngineInfo,
    private readonly layout: 'nhwc' | 'nchw',
  ) {}

  /** Reads the ONNX model (rewritten for OpenCV DNN's NCHW blobs, cached next to the converted models) into a Net. */
  static async start(descriptor: ModelDescriptor, cacheDir = MODEL_CACHE_DIR): Promise<OpenCvDnnHost> {
    if (descriptor.format !== 'onnx') {
      throw new VisionpipeError('VP_ENGINE_UNAVAILABLE', `The opencv engine runs ONNX models; "${descriptor.name}" is ${descriptor.format}`, { value: 'opencv' });
    }
    if (descriptor.input.dtype !== 'float32') {
      throw new VisionpipeError('VP_ENGINE_UNAVAILABLE', `The opencv engine feeds float32 blobs; "${descriptor.name}" takes ${descriptor.input.dtype}`, {
        value: 'opencv',
        hint: 'Use --engine onnx for this model.',
      });
    }
    const original = readOnnxGraph(readFileSync(descriptor.modelPath), descriptor.name);
    // The NCHW rewrite is made once per model file and cached; later runs load the cached file.
    const file = await cachedModelFile(descriptor.modelPath, `${descriptor.name}-opencv`, 'opencv-v1', cacheDir, async (partial) => {
      const graph = descriptor.input.layout === 'nhwc' ? withNchwInput(original) : original;
      const [, c] = graph.inputs[0]?.dims ?? [];
      if (c !== 3) {
        throw new VisionpipeError('VP_ENGINE_UNAVAILABLE', `OpenCV DNN takes NCHW input; "${descriptor.name}" takes NHWC without a leading transpose to NCHW`, {
          value: 'opencv',
          hint: 'Use --engine onnx for this model, or export it with an NCHW input.',
        });
      }
      writeFileSync(partial, graph.toBytes());
    });
    let net: Net;
    try {
      net = cv.readNetFromONNX(file);
    } catch (cause) {
      throw new VisionpipeError('VP_ENGINE_UNAVAILABLE', `OpenCV DNN ${cv.version.major}.${cv.version.minor} cannot load "${descriptor.name}": ${messageOf(cause).split('\n')[0]}`, {
        value: 'opencv',
        hint: 'OpenCV DNN supports fewer ONNX ops than onnxruntime; use --engine onnx for this model.',
        cause,
      });
    }
    const info: EngineInfo = {
      backend: `opencv-dnn ${cv.version.major}.${cv.version.minor}.${cv.version.revision} (cpu)`,
      inputName: original.inputs[0]?.name ?? 'input',
      outputName: original.outputs[0]?.name ?? 'output',
      inputShape: original.inputs[0]?.dims ?? [],
    };
    return new OpenCvDnnHost(net, info, descriptor.input.layout);
  }

  /** Same contract as the worker host's run: the buffer goes back through `giveBack` before the promise settles. */
  run(
    slotId: number,
    buffer: ArrayBuffer,
    dims: number[],
    _dtype: 'float32' | 'uint8',
    giveBack: (slotId: number, buffer: ArrayBuffer) => void,
  ): Promise<WorkerRunResult> {
    const job = this.queue.then(async () => {
      try {
        if (this.closed) throw new VisionpipeError('VP_INFERENCE_FAILED', 'The opencv engine is closed');
        const started = performance.now();
        const [h, w] = this.layout === 'nhwc' ? [dims[1]!, dims[2]!] : [dims[2]!, dims[3]!];
        const output = await forwardNet(this.net, new Float32Array(buffer), this.layout, [h, w]);
        return { slotId, buffer, output: output.data, outputDims: output.dims, inferMs: performance.now() - started };
      } catch (err) {
        throw err instanceof VisionpipeError ? err : new VisionpipeError('VP_INFERENCE_FAILED', `OpenCV DNN failed: ${messageOf(err)}`, { cause: err });
      } finally {
        giveBack(slotId, buffer);
      }
    });
    this.queue = job.catch(() => undefined);
    return job;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
  }
}

/**
 * One float32 input (NHWC or NCHW, batch 1) through an OpenCV DNN net: wrapped in a Mat, turned into an NCHW blob,
 * run with forwardAsync (libuv pool), and the first output copied out flat with its dims.
 */
export async function forwardNet(net: Net, input: Float32Array, layout: 'nhwc' | 'nchw', [h, w]: [number, number]): Promise<{ data: Float32Array; dims: number[] }> {
  const made: Mat[] = [];
  const own = <T extends Mat>(m: T): T => {
    made.push(m);
    return m;
  };
  try {
    const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    let image: Mat;
    if (layout === 'nhwc') image = own(new cv.Mat(bytes, h, w, cv.CV_32FC3));
    else {
      const plane = h * w * 4;
      image = own(new cv.Mat([0, 1, 2].map((c) => own(new cv.Mat(bytes.subarray(c * plane, (c + 1) * plane), h, w, cv.CV_32F)))));
    }
    const blob = own(cv.blobFromImage(image, 1, new cv.Size(w, h), new cv.Vec3(0, 0, 0), false, false));
    net.setInput(blob);
    const out = own(await net.forwardAsync());
    const sizes = out.sizes;
    // The output is a view into the net's memory; a flat float copy is ours to read (N-d Mats have no getData).
    const flat = own(sizes.length <= 2 ? out.copy() : out.flattenFloat(1, sizes.reduce((a, b) => a * b, 1)));
    const data = flat.getData();
    return { data: new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)), dims: sizes };
  } finally {
    for (const m of made) m.release();
  }
}
