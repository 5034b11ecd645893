import { describe, expect, it } from 'vitest';
import { deepMerge, loadConfig, parseConfig } from '../../../src/config/load-config.js';
import { VisionpipeError } from '../../../src/errors.js';

describe('config', () => {
  it('fills every default from the one schema and freezes the result', () => {
    const c = parseConfig({ source: { uri: 'a.mp4' } });
    expect(c.model).toBe('centernet');
    expect(c.pipeline).toEqual({ ringSize: 2, maxInFlight: 4, failWhen: 'all-sources-failed', maxFailedFramesInARow: 10, pixelsInModel: true, justInTime: true, maxBatch: 4, batchChoice: 'measured' });
    expect(c.output.segmentSeconds).toBe(300);
    expect(c.source[0]).toMatchObject({ maxFps: null, decoder: 'opencv', allowTruncated: false, maxQueuedFrames: 64 });
    expect(c.output.video).toBeNull();
    expect(Object.isFrozen(c.pipeline)).toBe(true);
  });

  it('lets overrides win over the file, and keeps the file where a flag is not given', () => {
    const c = loadConfig({ file: 'config/examples/resnet-classify.yaml', sourceUris: ['b.mp4'], overrides: { output: { video: undefined } } });
    expect(c.source[0]?.uri).toBe('b.mp4');
    expect(c.model).toBe('mlperf-tiny-resnet');
    expect(c.output.video).toBe('out/megamind-resnet.mp4');
  });

  it.each([
    [{ source: { uri: 'a.mp4' }, colour: 'red' }, /unknown key "colour" at the top level/],
    [{ source: { uri: 'a.mp4', fps: 3 } }, /unknown key "fps" in source/],
    [{ source: { uri: 'a.mp4' }, pipeline: { ringSize: 0 } }, /pipeline\.ringSize: .*>=1.*\(got 0\)/],
    [{ source: { uri: 'a.mp4' }, engine: 'cuda' }, /engine: .*"onnx".*\(got "cuda"\)/],
    [{ source: {} }, /source\.uri: .*\(got nothing\)/],
  ])('rejects %j naming the key, the value and what is allowed', (raw, pattern) => {
    expect(() => parseConfig(raw)).toThrow(pattern);
  });

  it('reports every problem at once, with a stable code', () => {
    try {
      parseConfig({ source: { uri: '' }, pipeline: { ringSize: 99 }, extra: 1 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(VisionpipeError);
      expect((err as VisionpipeError).code).toBe('VP_CONFIG_INVALID');
      expect((err as Error).message.split('\n  - ')).toHaveLength(4);
    }
  });

  it.each(['config/examples/resnet-classify.yaml', 'config/examples/rtsp-cameras.yaml'])('example %s is valid', (file) => {
    expect(loadConfig({ file }).source.length).toBeGreaterThan(0);
  });

  it('the commented default file is valid', () => {
    expect(loadConfig({ file: 'config/default.yaml' }).source[0]?.uri).toBe('samples/vtest.avi');
  });

  it('never echoes a secret, and refuses two delivery targets under one name', () => {
    const bad = {
      source: { uri: 'x.mp4' },
      delivery: {
        mqtt: { url: 'mqtt://bob:pw-in-url@broker', password: 123456 },
        webhooks: [{ url: 'https://a.example/h', secret: 987654, name: 'a' }, { url: 'https://b.example/h', name: 'a' }, { url: 'https://u:p@c.example/h', name: 'mqtt' }],
      },
    };
    let message = '';
    try {
      parseConfig(bad);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('delivery.mqtt.password');
    expect(message).toContain('delivery.webhooks.1.name');
    expect(message).toContain('delivery.webhooks.2.name');
    expect(message).toContain('delivery.webhooks.2.url');
    for (const secret of ['123456', '987654', 'u:p@']) expect(message).not.toContain(secret);
  });

  it('deepMerge treats undefined as "not given"', () => {
    expect(deepMerge({ a: { b: 1, c: 2 } }, { a: { b: undefined, c: 3 } })).toEqual({ a: { b: 1, c: 3 } });
  });
});
