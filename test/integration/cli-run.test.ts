import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ffprobeFrameCount, runCli } from '../helpers/cli.js';
import { HAS_SHARED, VTEST } from '../helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!HAS_SHARED)('visionpipe run on a real clip (needs ../shared)', () => {
  it('classifies all 795 frames of vtest.avi with the MLPerf ResNet through onnx: MP4 and one JSON line per frame', () => {
    const video = join(dir, 'vtest-resnet.mp4');
    const events = join(dir, 'vtest-resnet.jsonl');
    const r = runCli(['run', VTEST, '--model', 'mlperf-tiny-resnet', '--output', video, '--events', events, '--quiet']);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/795 frames/);
    expect(r.stdout).toMatch(/onnxruntime-node/);
    expect(ffprobeFrameCount(video)).toBe(795);
    const lines = readFileSync(events, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(795);
    const parsed = lines.map((l) => JSON.parse(l) as { frameIndex: number; timestampMs: number; classifications: Array<{ label: string; score: number }>; timingsMs: Record<string, number> });
    expect(parsed.map((p) => p.frameIndex)).toEqual(Array.from({ length: 795 }, (_, i) => i));
    expect(parsed[10]?.timestampMs).toBe(1000);
    for (const p of parsed) {
      expect(p.classifications).toHaveLength(3);
      expect(p.classifications[0]?.score).toBeGreaterThan(0);
      expect(Object.keys(p.timingsMs)).toEqual(['read', 'queue', 'preprocess', 'infer', 'postprocess', 'track', 'annotate']);
    }
    // No half-written leftovers.
    expect(existsSync(`${video}.partial`)).toBe(false);
    expect(existsSync(`${events}.partial`)).toBe(false);
  });

  it('runs the MLPerf ResNet on OpenCV DNN (--engine opencv) with the same answers as onnxruntime', () => {
    const read = (engine: string) => {
      const events = join(dir, `vtest-${engine}.jsonl`);
      const r = runCli(['run', VTEST, '--model', 'mlperf-tiny-resnet', '--engine', engine, '--events', events, '--max-frames', '40', '--quiet']);
      expect(r.code).toBe(0);
      return { stdout: r.stdout, lines: readFileSync(events, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { frameIndex: number; classifications: Array<{ label: string; score: number }> }) };
    };
    const ocv = read('opencv');
    const ort = read('onnx');
    expect(ocv.stdout).toMatch(/opencv-dnn 4\.\d+/);
    expect(ocv.lines.map((l) => l.frameIndex)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    ocv.lines.forEach((l, i) => {
      expect(l.classifications[0]?.label).toBe(ort.lines[i]?.classifications[0]?.label);
      expect(Math.abs(l.classifications[0]!.score - ort.lines[i]!.classifications[0]!.score)).toBeLessThan(1e-3);
    });
  });

  it('finds pedestrians in vtest.avi with the default model (centernet, converted to ONNX)', () => {
    const events = join(dir, 'vtest-centernet.jsonl');
    const r = runCli(['run', VTEST, '--events', events, '--max-frames', '6', '--quiet']);
    expect(r.code).toBe(0);
    const lines = readFileSync(events, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(6);
    const persons = lines.flatMap((l) =>
      (JSON.parse(l) as { detections: Array<{ label: string; score: number; xyxy: number[] }> }).detections.filter((d) => d.label === 'person'),
    );
    expect(persons.length).toBeGreaterThanOrEqual(6);
    for (const p of persons) {
      const [x1 = -1, y1 = -1, x2 = 0, y2 = 0] = p.xyxy;
      expect(x1).toBeGreaterThanOrEqual(0);
      expect(y1).toBeGreaterThanOrEqual(0);
      expect(x2).toBeLessThanOrEqual(768);
      expect(y2).toBeLessThanOrEqual(576);
    }
    // The confident ones are upright pedestrians: taller than wide.
    const confident = persons.filter((p) => p.score >= 0.5);
    expect(confident.length).toBeGreaterThanOrEqual(6);
    for (const p of confident) {
      const [x1 = 0, y1 = 0, x2 = 0, y2 = 0] = p.xyxy;
      expect(y2 - y1).toBeGreaterThan(x2 - x1);
    }
  });
});
