import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load-config.js';
import { sessionThreads } from '../../../src/inference/onnx-engine.js';

describe('onnx thread settings', () => {
  it('defaults: onnxruntime’s thread counts, spinning off (measured); spinning on is onnxruntime’s own default', () => {
    const c = parseConfig({ source: { uri: 'x.mp4' } });
    expect(c.onnx).toEqual({ intraOpThreads: null, interOpThreads: null, spinWait: false, workers: 1 });
    expect(sessionThreads({ ...c.onnx, spinWait: true })).toEqual({});
  });

  it('maps to onnxruntime session options: thread counts, parallel execution for inter-op threads, spinning off as a session config entry', () => {
    expect(sessionThreads({ intraOpThreads: 1, interOpThreads: 2, spinWait: false })).toEqual({
      intraOpNumThreads: 1,
      interOpNumThreads: 2,
      executionMode: 'parallel',
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    });
  });

  it('rejects thread counts that are not whole numbers ≥ 1, naming the key', () => {
    for (const bad of [0, -1, 1.5, 'two']) {
      expect(() => parseConfig({ source: { uri: 'x.mp4' }, onnx: { intraOpThreads: bad } })).toThrow(/onnx\.intraOpThreads/);
    }
  });
});
