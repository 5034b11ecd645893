import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cv, type Mat, type Net } from '../cv.js';
import { VisionpipeError, messageOf } from '../errors.js';
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
  static async start(descriptor: ModelDescriptor, cacheDir = join(tmpdir(), 'visionpipe-models')): Promise<OpenCvDnnHost> {
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
    const declared = original.inputs[0]?.dims ?? [];
    const graph = descriptor.input.layout === 'nhwc' ? withNchwInput(original) : original;
    const [, c] = graph.inputs[0]?.dims ?? [];
    if (c !== 3) {
      throw new VisionpipeError('VP_ENGINE_UNAVAILABLE', `OpenCV DNN takes NCHW input; "${descriptor.name}" takes NHWC without a leading transpose to NCHW`, {
        value: 'opencv',
        hint: 'Use --engine onnx for this model, or export it with an NCHW input.',
      });
    }
    const st = statSync(descriptor.modelPath);
    const key = createHash('sha256').update(`${descriptor.modelPath}|${st.size}|${st.mtimeMs}|opencv-v1`).digest('hex').slice(0, 16);
    const file = join(cacheDir, `${descriptor.name}-opencv-${key}.onnx`);
    if (!existsSync(file)) {
      mkdirSync(cacheDir, { recursive: true });
      const partial = `${file}.${process.pid}.partial`;
      writeFileSync(partial, graph.toBytes());
      renameSync(partial, file);
    }
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
      inputShape: declared,
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
        const output = await this.forward(buffer, dims);
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

  private async forward(buffer: ArrayBuffer, dims: number[]): Promise<{ data: Float32Array; dims: number[] }> {
    const [h, w] = this.layout === 'nhwc' ? [dims[1]!, dims[2]!] : [dims[2]!, dims[3]!];
    const made: Mat[] = [];
    const own = <T extends Mat>(m: T): T => {
      made.push(m);
      return m;
    };
    try {
      let image: Mat;
      if (this.layout === 'nhwc') image = own(new cv.Mat(Buffer.from(buffer), h, w, cv.CV_32FC3));
      else {
        const plane = h * w * 4;
        const planes = [0, 1, 2].map((c) => own(new cv.Mat(Buffer.from(buffer, c * plane, plane), h, w, cv.CV_32F)));
        image = own(new cv.Mat(planes));
      }
      const blob = own(cv.blobFromImage(image, 1, new cv.Size(w, h), new cv.Vec3(0, 0, 0), false, false));
      this.net.setInput(blob);
      const out = own(await this.net.forwardAsync());
      const sizes = out.sizes;
      const total = sizes.reduce((a, b) => a * b, 1);
      // The output is a view into the net's memory; a flat float copy is ours to read (N-d Mats have no getData).
      const flat = own(sizes.length <= 2 ? out.copy() : out.flattenFloat(1, total));
      const bytes = flat.getData();
      return { data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), dims: sizes };
    } finally {
      for (const m of made) m.release();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
  }
}
