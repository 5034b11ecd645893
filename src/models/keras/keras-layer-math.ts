/** TF / Keras padding arithmetic, exactly as TensorFlow computes it ("same" puts the odd pixel at the end). */
export function samePads(inSize: number, kernel: number, stride: number, dilation = 1): [number, number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + effective - inSize, 0);
  const begin = Math.floor(total / 2);
  return [begin, total - begin, out];
}

export function validOut(inSize: number, kernel: number, stride: number, dilation = 1): number {
  return Math.floor((inSize - ((kernel - 1) * dilation + 1)) / stride) + 1;
}

/**
 * Pads ([top, left, bottom, right], ONNX order) and output size of a conv / pooling window over an h×w map.
 * Returns null for a padding mode other than same / valid, so each importer can name the node it came from.
 */
export function windowGeometry(
  [h, w]: [number, number],
  k: [number, number],
  s: [number, number],
  d: [number, number],
  padding: 'same' | 'valid' | string,
): { pads: number[]; h: number; w: number } | null {
  if (padding === 'same') {
    const [t, b, oh] = samePads(h, k[0], s[0], d[0]);
    const [l, r, ow] = samePads(w, k[1], s[1], d[1]);
    return { pads: [t, l, b, r], h: oh, w: ow };
  }
  if (padding !== 'valid') return null;
  return { pads: [0, 0, 0, 0], h: validOut(h, k[0], s[0], d[0]), w: validOut(w, k[1], s[1], d[1]) };
}

/** Keras kernel [kh, kw, cin, cout] → ONNX [cout, cin, kh, kw]. */
export function hwioToOihw(data: Float32Array, [kh, kw, cin, cout]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let y = 0; y < kh!; y++)
    for (let x = 0; x < kw!; x++)
      for (let i = 0; i < cin!; i++)
        for (let o = 0; o < cout!; o++) out[((o * cin! + i) * kh! + y) * kw! + x] = data[((y * kw! + x) * cin! + i) * cout! + o]!;
  return out;
}

/** Keras depthwise kernel [kh, kw, cin, mult] → ONNX grouped [cin * mult, 1, kh, kw]. */
export function depthwiseToOnnx(data: Float32Array, [kh, kw, cin, mult]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let y = 0; y < kh!; y++)
    for (let x = 0; x < kw!; x++)
      for (let c = 0; c < cin!; c++)
        for (let m = 0; m < mult!; m++) out[((c * mult! + m) * kh! + y) * kw! + x] = data[((y * kw! + x) * cin! + c) * mult! + m]!;
  return out;
}

/** Two-int Keras arguments may be an int, a pair, or (for ZeroPadding2D) ((top, bottom), (left, right)). */
export function pair(v: unknown, fallback: number): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && typeof v[0] === 'number') return [v[0], (v[1] as number | undefined) ?? v[0]];
  return [fallback, fallback];
}
