import type { Classification } from './results.js';

/** Softmax over one row, numerically stable. */
export function softmax(logits: ArrayLike<number>): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] ?? -Infinity);
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i] ?? 0) - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) / sum;
  return out;
}

/** The k highest-scoring classes of one row of probabilities, best first. */
export function topK(probabilities: ArrayLike<number>, k: number, labels: readonly string[]): Classification[] {
  const idx = Array.from({ length: probabilities.length }, (_, i) => i);
  idx.sort((a, b) => (probabilities[b] ?? 0) - (probabilities[a] ?? 0));
  return idx.slice(0, k).map((classId) => ({
    classId,
    label: labels[classId] ?? `class ${classId}`,
    score: probabilities[classId] ?? 0,
  }));
}
