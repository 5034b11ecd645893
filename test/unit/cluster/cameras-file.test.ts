import { describe, expect, it } from 'vitest';
import { cameraHash, desiredCameras } from '../../../src/cluster/cameras-file.js';
import { parseQueueUrl } from '../../../src/cluster/queue-target.js';
import { VisionpipeError } from '../../../src/errors.js';

describe('cameras.yaml → desired cameras', () => {
  it('merges defaults under each camera, fills {camera}, makes the source live at the camera fps', () => {
    const [cam] = desiredCameras({
      defaults: { model: 'mlperf-tiny-resnet', output: { events: '/shared/out/{camera}.jsonl' } },
      cameras: [{ id: 'door', uri: 'rtsp://cam/door', fps: 4 }],
    });
    expect(cam).toMatchObject({ id: 'door', fps: 4, config: { model: 'mlperf-tiny-resnet', output: { events: '/shared/out/door.jsonl' }, source: { uri: 'rtsp://cam/door', kind: 'live', maxFps: 4 } } });
  });

  it('the hash changes with any setting and not with key order', () => {
    expect(cameraHash('rtsp://a', 5, { model: 'm', output: { a: 1, b: 2 } })).toBe(cameraHash('rtsp://a', 5, { output: { b: 2, a: 1 }, model: 'm' }));
    expect(cameraHash('rtsp://a', 5, {})).not.toBe(cameraHash('rtsp://a', 6, {}));
    expect(cameraHash('rtsp://a', 5, {})).not.toBe(cameraHash('rtsp://b', 5, {}));
  });

  it.each([
    { name: 'no cameras key', raw: {}, message: /cameras/ },
    { name: 'a bad id', raw: { cameras: [{ id: 'a b', uri: 'rtsp://x' }] }, message: /cameras\.0\.id/ },
    { name: 'a duplicate id', raw: { cameras: [{ id: 'a', uri: 'rtsp://x' }, { id: 'a', uri: 'rtsp://y' }] }, message: /"a": the id is used twice/ },
    { name: 'an unknown run-config key', raw: { defaults: { modle: 'x' }, cameras: [{ id: 'a', uri: 'rtsp://x' }] }, message: /camera "a".*modle/s },
    { name: 'a list of sources in defaults', raw: { defaults: { source: [{}] }, cameras: [{ id: 'a', uri: 'rtsp://x' }] }, message: /one object of source settings/ },
  ])('rejects $name with one VP_CONFIG_INVALID', ({ raw, message }) => {
    try {
      desiredCameras(raw);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(VisionpipeError);
      expect((err as VisionpipeError).code).toBe('VP_CONFIG_INVALID');
      expect((err as Error).message).toMatch(message);
    }
  });
});

describe('--queue URLs', () => {
  it('parses host, port, db, password and prefix, and hides the password', () => {
    const t = parseQueueUrl('redis://:s3cret@redis.local:6380/2?prefix=site-a');
    expect(t.connection).toMatchObject({ host: 'redis.local', port: 6380, db: 2, password: 's3cret' });
    expect(t.prefix).toBe('site-a');
    expect(t.display).not.toContain('s3cret');
    expect(parseQueueUrl('rediss://h').connection.tls).toEqual({});
  });

  it.each(['localhost:6379', 'http://h:6379', 'redis://h/99', 'redis://h?prefix=a:b', 'redis://:pw@'])('rejects %s', (url) => {
    expect(() => parseQueueUrl(url)).toThrow(/Invalid --queue URL/);
  });
});
