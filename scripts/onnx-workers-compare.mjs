// Inference alone, one model file: 1 worker thread x 2 onnxruntime threads vs 2 workers x 1 thread vs 1 x 1, alternating
// rounds. Usage: node scripts/onnx-workers-compare.mjs <model.onnx> [frames=40] [rounds=3]
/* global process, console, performance, URL */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
if (isMainThread) {
  const model = process.argv[2];
  const frames = Number(process.argv[3] ?? 40);
  const configs = [[1, 2], [2, 1], [1, 1]];
  const res = new Map();
  for (let round = 0; round < Number(process.argv[4] ?? 3); round++) {
    for (const [workers, threads] of configs) {
      const ws = Array.from({ length: workers }, () => new Worker(new URL(import.meta.url), { workerData: { model, threads } }));
      await Promise.all(ws.map((w) => new Promise((r) => w.once('message', r))));
      const start = performance.now();
      const c0 = process.cpuUsage();
      await Promise.all(ws.map((w) => new Promise((r) => { w.once('message', r); w.postMessage(frames / workers); })));
      const ms = performance.now() - start;
      const c = process.cpuUsage(c0);
      const key = `${workers} worker(s) x ${threads} thread(s)`;
      (res.get(key) ?? res.set(key, []).get(key)).push([frames / (ms / 1000), (c.user + c.system) / 1000 / frames]);
      await Promise.all(ws.map((w) => w.terminate()));
    }
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const base = med(res.get('1 worker(s) x 2 thread(s)').map((x) => x[0]));
  for (const [k, v] of res) console.log(k.padEnd(26), 'fps', v.map((x) => x[0].toFixed(1)).join(' '), 'median', med(v.map((x) => x[0])).toFixed(1), (med(v.map((x) => x[0])) / base).toFixed(2) + 'x', 'cpu ms/frame', med(v.map((x) => x[1])).toFixed(1));
} else {
  const ort = await import('onnxruntime-node');
  const s = await ort.InferenceSession.create(workerData.model, { graphOptimizationLevel: 'all', intraOpNumThreads: workerData.threads, extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const meta = s.inputMetadata[0];
  const dims = meta.shape.map((d) => (typeof d === 'number' ? d : 1));
  const n = dims.reduce((a, b) => a * b, 1);
  const data = meta.type === 'uint8' ? new Uint8Array(n).map((_, i) => (i * 7) & 255) : new Float32Array(n).map((_, i) => ((i * 7) & 255) / 255);
  const t = new ort.Tensor(meta.type === 'uint8' ? 'uint8' : 'float32', data, dims);
  await s.run({ [s.inputNames[0]]: t });
  parentPort.postMessage('ready');
  parentPort.on('message', async (count) => {
    for (let i = 0; i < count; i++) await s.run({ [s.inputNames[0]]: t });
    parentPort.postMessage('done');
  });
}
