import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VisionpipeError } from '../../../src/errors.js';
import { kerasToOnnx } from '../../../src/models/keras/keras-to-onnx.js';
import { readKerasH5 } from '../../../src/models/keras/read-keras-h5.js';
import { seededRandom } from '../../../src/models/keras/synthetic-resnet.js';
import { OnnxGraph, readOnnxGraph } from '../../../src/models/onnx/onnx-graph.js';
import { runFrames, score, scoreDetections } from '../../../src/models/optimize/evaluate-variant.js';
import { optimizeModel, pickVariant, type OptimizeReport, type VariantReport } from '../../../src/models/optimize/optimize-model.js';
import { quantizeQdq } from '../../../src/models/optimize/quantize-qdq.js';
import { runCli } from '../../helpers/cli.js';
import { HAS_SHARED, SHARED, VTEST } from '../../helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-optimize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const RESNET = join(SHARED, 'models/mlperf-tiny-resnet');

/** One frame of [N, 6] rows (x1, y1, x2, y2, score, class), padded with empty rows like the detector's output. */
const rows = (...boxes: number[][]) => Float32Array.from([...boxes.flat(), ...new Array<number>(6 * 4).fill(0)]);

describe('box-level agreement for detectors', () => {
  const a = [10, 10, 50, 90, 0.8, 0];
  const b = [100, 20, 140, 100, 0.6, 2];
  it('is 1 for the same boxes and reports their closeness', () => {
    const s = scoreDetections([rows(a, b)], [rows(b, a)], [1], 0);
    expect(s.metric).toBe('box-f1');
    expect(s.agreement).toBe(1);
    expect(s.boxes).toMatchObject({ reference: 2, variant: 2, matched: 2, meanIou: 1, sameWithinTolerance: 1 });
  });
  it('counts a missing box, an extra box and a changed class', () => {
    expect(scoreDetections([rows(a, b)], [rows(a)], [1], 0).agreement).toBeCloseTo((2 * 0.5 * 1) / 1.5, 6);
    expect(scoreDetections([rows(a)], [rows(a, b)], [1], 0).agreement).toBeCloseTo((2 * 0.5 * 1) / 1.5, 6);
    expect(scoreDetections([rows(a)], [rows([...a.slice(0, 5), 1])], [1], 0).agreement).toBe(0);
  });
  it('does not call a score hovering at the threshold a disagreement, but a moved box is', () => {
    expect(scoreDetections([rows([...a.slice(0, 4), 0.31, 0])], [rows([...a.slice(0, 4), 0.29, 0])], [1], 0, 0.3).agreement).toBe(1);
    const moved = scoreDetections([rows(a)], [rows([30, 10, 70, 90, 0.8, 0])], [1], 0);
    expect(moved.agreement).toBe(0);
    const nudged = scoreDetections([rows(a)], [rows([12, 10, 52, 90, 0.79, 0])], [1], 0);
    expect(nudged.agreement).toBe(1);
    expect(nudged.boxes?.sameWithinTolerance).toBe(1);
    expect(nudged.boxes?.meanIou).toBeLessThan(1);
  });
});

describe('reading ONNX files', () => {
  it('rejects a truncated file and an opset older than 13, each with one clear error', () => {
    const g = new OnnxGraph('tiny');
    g.inputs = [{ name: 'x', dims: [1, 4] }];
    g.outputs = [{ name: 'y', dims: [1, 4] }];
    g.nodes = [{ op: 'Relu', inputs: ['x'], outputs: ['y'], name: 'relu' }];
    const bytes = g.toBytes(13);
    expect(readOnnxGraph(bytes).nodes.map((n) => n.op)).toEqual(['Relu']);
    const error = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as VisionpipeError;
      }
      throw new Error('no error');
    };
    expect(error(() => readOnnxGraph(g.toBytes(11), 'old.onnx'))).toMatchObject({ code: 'VP_MODEL_UNSUPPORTED', message: expect.stringMatching(/opset 11/) });
    expect(error(() => readOnnxGraph(bytes.subarray(0, bytes.length - 7), 'cut.onnx'))).toMatchObject({ code: 'VP_MODEL_INVALID' });
  });

  it.skipIf(!HAS_SHARED)('reads the reference MLPerf ONNX so that writing it back gives the same outputs (needs ../shared)', async () => {
    const bytes = readFileSync(join(RESNET, 'pretrainedResnet.onnx'));
    const g = readOnnxGraph(bytes, 'pretrainedResnet.onnx');
    const rand = seededRandom(7);
    const frames = Array.from({ length: 4 }, () => Float32Array.from({ length: 32 * 32 * 3 }, () => Math.round(rand() * 255)));
    const a = await runFrames(bytes, frames, [1, 32, 32, 3], 0);
    const b = await runFrames(g.toBytes(), frames, [1, 32, 32, 3], 0);
    a.outputs.forEach((o, i) => expect(Array.from(b.outputs[i]!)).toEqual(Array.from(o)));
  });
});

describe.skipIf(!HAS_SHARED)('precision simulation (needs ../shared)', () => {
  it('at 16 bits stays with fp32; at 8 bits it is as far off as the real int8 graph', async () => {
    const { graph } = kerasToOnnx(await readKerasH5(join(RESNET, 'pretrainedResnet.h5')));
    const rand = seededRandom(11);
    const frames = Array.from({ length: 24 }, () => Float32Array.from({ length: 32 * 32 * 3 }, () => Math.round(rand() * 255)));
    const dims = [1, 32, 32, 3];
    // Calibrated on the frames it is measured on: no clipping, so only the rounding differs between bit widths.
    const base = { calibration: frames, dims, method: 'minmax' as const };
    const fp32 = await runFrames(graph.toBytes(), frames, dims, 0);
    const diff = async (g: OnnxGraph) => {
      const r = await runFrames(g.toBytes(), frames, dims, 0);
      return score(fp32.outputs, r.outputs, r.ms, 0).meanAbsProbDiff!;
    };
    const d16 = await diff(await quantizeQdq(graph, { ...base, simulateBits: 16 }));
    const d8 = await diff(await quantizeQdq(graph, { ...base, simulateBits: 8 }));
    const int8 = await diff(await quantizeQdq(graph, base));
    expect(d16).toBeLessThan(d8 / 20);
    expect(d8).toBeGreaterThan(int8 / 3);
    expect(d8).toBeLessThan(int8 * 3);
  });
});

describe.skipIf(!HAS_SHARED)('int8 for the MLPerf ResNet on vtest.avi (needs ../shared)', () => {
  const int8Best = (r: OptimizeReport) => Math.max(...r.variants.filter((v) => v.name.startsWith('int8')).map((v) => v.agreement));
  it('agrees with fp32 on ≥ 97 % of 300 held-out frames when frames are area-averaged to 32×32, and the pick meets the 99 % budget', async () => {
    const r = await optimizeModel({ model: join(RESNET, 'pretrainedResnet.h5'), clip: VTEST, outDir: join(dir, 'area') });
    expect(r.evalFrames).toBe(300);
    expect(int8Best(r)).toBeGreaterThanOrEqual(0.97);
    expect(r.variants.find((v) => v.name === r.picked)!.agreement).toBeGreaterThanOrEqual(0.99);
  });
  it('agrees far less when frames are point-sampled by a bilinear resize, and the report then says how many bits it would take', async () => {
    const r = await optimizeModel({ model: join(RESNET, 'pretrainedResnet.h5'), clip: VTEST, outDir: join(dir, 'linear'), preprocess: { interpolation: 'linear' } });
    // Min-max ranges lose most here; the MSE / equalized variants win a little of it back (measured 0.95 at best).
    const minmax = r.variants.find((v) => v.name === 'int8-minmax')!.agreement;
    expect(minmax).toBeLessThan(0.95);
    expect(int8Best(r)).toBeGreaterThanOrEqual(minmax);
    expect(int8Best(r)).toBeLessThan(0.99);
    expect(r.precisionSweep?.[0]?.bits).toBe(8);
    expect(r.precisionSweep!.length).toBeGreaterThan(1);
    // And which rounding the loss comes from: weights alone, activations alone.
    expect(r.precisionSweep!.filter((p) => p.only !== undefined).map((p) => [p.bits, p.only])).toEqual([[8, 'weights'], [8, 'activations']]);
    const report = readFileSync(join(dir, 'linear', 'report.md'), 'utf8');
    expect(report).toContain('## How many bits this model needs on this clip');
    expect(report).toMatch(/Rounding only the weights keeps [\d.]+ %, only the activations [\d.]+ %: (the (weights|activations) lose more|both lose about the same) here/);
  });
});

describe.skipIf(!HAS_SHARED)('visionpipe optimize beyond Keras (needs ../shared)', () => {
  // Seven variants of a 512×512 detector, each scored and timed: about 2 minutes on 2 cores, more under load.
  it('takes a detector by its descriptor and compares variants box by box', () => {
    const out = join(dir, 'centernet');
    // A loose budget: int8 meets it, so the precision sweep (four more simulated runs) is skipped and the test stays short.
    const r = runCli(['optimize', 'centernet', '--clip', VTEST, '--out', out, '--calibration-frames', '6', '--eval-frames', '8', '--budget', '0.3']);
    expect(r.stderr).not.toMatch(/visionpipe: error/);
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as {
      task: string; metric: string; variants: Array<{ name: string; agreement: number; meanMs: number; p99Ms: number; method?: string; boxes: { reference: number } }>;
    };
    expect(report).toMatchObject({ task: 'detection', metric: 'box-f1' });
    const methods = ['int8-minmax', 'int8-percentile', 'int8-mse', 'int8-equalized', 'int8-equalized-bias-corrected'];
    expect(report.variants.map((v) => v.name)).toEqual(expect.arrayContaining(['fp32', 'fp16-weights', ...methods]));
    // Each method side by side: its box F1 and its mean / p99 latency, and how it was made.
    for (const name of methods) {
      const v = report.variants.find((x) => x.name === name)!;
      expect(v.agreement).toBeGreaterThanOrEqual(0);
      expect(v.p99Ms).toBeGreaterThanOrEqual(v.meanMs);
      expect(v.method).toMatch(name.includes('equalized') ? /equalization/ : new RegExp(name.slice(5)));
    }
    expect(r.stdout).toMatch(/int8-equalized-bias-corrected +box-f1 .* p99 /);
    expect(report.variants[0]).toMatchObject({ name: 'fp32', agreement: 1 });
    // vtest.avi has pedestrians in every frame.
    expect(report.variants[0]!.boxes.reference).toBeGreaterThan(8);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('| variant | box F1 vs fp32 (IoU ≥ 0.5) |');
    // Each variant comes with a descriptor: `visionpipe run -m` takes it, and the int8 graph runs in the pipeline.
    const events = join(out, 'int8-run.jsonl');
    const run = runCli(['run', VTEST, '-m', join(out, 'centernet.int8-mse.yaml'), '--max-frames', '3', '-e', events, '--quiet']);
    expect(run.stderr).not.toMatch(/visionpipe: error/);
    expect(run.code).toBe(0);
    const predictions = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; task?: string });
    expect(predictions.filter((p) => p.type === 'prediction' && p.task === 'detection')).toHaveLength(3);
  }, 400_000);

  it('takes an ONNX classifier file, and a bad ONNX file ends with one clear error', () => {
    const out = join(dir, 'onnx');
    const r = runCli(['optimize', join(RESNET, 'pretrainedResnet.onnx'), '--clip', VTEST, '--out', out, '--calibration-frames', '8', '--eval-frames', '12']);
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { task: string; metric: string };
    expect(report).toMatchObject({ task: 'classification', metric: 'top-1' });
    const bad = join(dir, 'bad.onnx');
    writeFileSync(bad, readFileSync(join(RESNET, 'pretrainedResnet.onnx')).subarray(0, 5000));
    const e = runCli(['optimize', bad, '--clip', VTEST, '--out', join(dir, 'bad')]);
    expect(e.code).toBe(1);
    expect(e.stderr.match(/visionpipe: error VP_MODEL_INVALID/g)).toHaveLength(1);
  });
});

describe('picking a variant', () => {
  const v = (name: string, agreement: number, meanMs: number) =>
    ({ name, agreement, meanMs, metric: 'top-1', p99Ms: meanMs, sizeBytes: 0, file: `${name}.onnx` }) as VariantReport;
  const fp32 = v('fp32', 1, 10);
  it('takes the fastest variant within the budget, never the OpenCV DNN row', () => {
    expect(pickVariant([fp32, v('opencv-dnn-fp32', 1, 2), v('fp16-weights', 1, 9.9), v('int8-minmax', 0.995, 5), v('int8-percentile', 0.98, 4)], 0.99).name).toBe('int8-minmax');
  });
  it('between equally fast variants (within 5 %) takes the more accurate', () => {
    expect(pickVariant([fp32, v('int8-minmax', 0.991, 5), v('int8-percentile', 0.997, 5.2)], 0.99).name).toBe('int8-percentile');
  });
  it('keeps fp32 when nothing within the budget is clearly (over 5 %) faster', () => {
    expect(pickVariant([fp32, v('fp16-weights', 1, 9.7), v('int8-minmax', 0.9, 3)], 0.99).name).toBe('fp32');
  });
});

describe.skipIf(!HAS_SHARED)('visionpipe optimize on bad input: one clear error, exit 1 (needs ../shared)', () => {
  const h5 = join(RESNET, 'pretrainedResnet.h5');
  it.each([
    { name: 'missing clip', args: [h5, '--clip', join(dir, 'nope.mp4')], code: 'VP_SOURCE_NOT_FOUND', mentions: 'nope.mp4' },
    { name: 'missing --eval-clip', args: [h5, '--clip', VTEST, '--eval-clip', join(dir, 'gone.mp4')], code: 'VP_SOURCE_NOT_FOUND', mentions: 'gone.mp4' },
    { name: 'clip that is not a video', args: [h5, '--clip', join(SHARED, 'models/mlperf-tiny-resnet/labels.txt')], code: 'VP_SOURCE_UNREADABLE', mentions: 'labels.txt' },
    { name: 'missing model file', args: [join(dir, 'nope.h5'), '--clip', VTEST], code: 'VP_MODEL_NOT_FOUND', mentions: 'nope.h5' },
    { name: 'unknown descriptor', args: ['resnet9000', '--clip', VTEST], code: 'VP_MODEL_NOT_FOUND', mentions: 'resnet9000' },
    { name: 'a file that is no model', args: [join(SHARED, 'models/mlperf-tiny-resnet/labels.txt'), '--clip', VTEST], code: 'VP_MODEL_UNSUPPORTED', mentions: 'labels.txt' },
  ])('$name → $code', ({ args, code, mentions }) => {
    const r = runCli(['optimize', ...args, '--out', join(dir, 'bad-input')]);
    expect(r.code).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('visionpipe: error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(code);
    expect(r.stderr).toContain(mentions);
  });
});
