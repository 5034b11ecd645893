import * as ort from 'onnxruntime-node';
import type { Logger } from '../../log.js';
import { silentLogger } from '../../log.js';
import type { OnnxGraph } from '../onnx/onnx-graph.js';
import { probeGraph } from '../onnx/probe-graph.js';
import { calibrateAll, maskedSimulation, prepareForQuantization, quantizeQdq, type MaskedSimulation, type QuantizeOptions } from './quantize-qdq.js';

/** A tensor left in float by the mixed-precision search, and why. */
export interface FloatLayer {
  tensor: string;
  /** The op that produces it (after the importer: e.g. Conv, Add, Mul). */
  producer: string;
  /**
   * What rounding only this tensor to 8 bits costs on the sensitivity frames: the task's own disagreement with fp32
   * at the model's output (1 − box F1, or mean |Δp|), plus a thousandth of the squared error over variance where the
   * quantized span ends (which orders tensors the task metric cannot tell apart).
   */
  error: number;
  /** Millions of multiply-accumulates per frame that run in float instead of int8 because of it. */
  mmacs: number;
  /**
   * With profiled node times: milliseconds per frame that int8 saves on its producer and consumers on this CPU
   * (their fp32 kernels' time minus their integer kernels'); negative where int8 is slower there.
   */
  savedMs?: number;
  /** With profiled node times: what the Q / DQ around it would cost if it were the only float tensor (ms per frame). */
  boundaryMs?: number;
}

/** Per-node kernel times (ms per frame, by node name of the prepared graph) of the float and the fully int8 model. */
export interface NodeTiming {
  fp32MsByNode: ReadonlyMap<string, number>;
  int8MsByNode: ReadonlyMap<string, number>;
  /** What a QuantizeLinear / DequantizeLinear costs per element on this CPU (ms; see conversionMsPerElement). */
  conversionMsPerElement: number;
}

export interface FrontierPoint {
  /** Which order tensors were taken float in. */
  order: 'sensitivity per MAC' | 'graph order from the input' | 'error per ms saved (profiled)';
  floatTensors: number;
  agreement: number;
}

export interface MixedSearch {
  /** The variant with the fewest float tensors that met the budget; else the one with the most tried (below it). */
  graph: OnnxGraph;
  floatLayers: FloatLayer[];
  agreement: number;
  metBudget: boolean;
  /** Every point evaluated: float tensors kept → agreement with fp32. */
  frontier: FrontierPoint[];
  /** Candidate tensors. */
  candidates: number;
  /** The order the chosen variant's float tensors were taken in. */
  order: FrontierPoint['order'];
  /**
   * For each order that met the budget, the fewest float tensors found to meet it; the chosen one first. Fewer
   * float tensors is not the same as faster (a float tensor costs what its producer and consumers take in float on
   * this CPU, and what int8 would have saved there): the caller times them all and its pick rule decides.
   */
  budgetMet: MixedPoint[];
}

/** One variant of the search: its float tensors (in the order taken) and its agreement with fp32. */
export interface MixedPoint {
  order: FrontierPoint['order'];
  graph: OnnxGraph;
  floatLayers: FloatLayer[];
  agreement: number;
}

/**
 * Sensitivity-guided mixed precision for networks too large for a one-layer-at-a-time search (and for detectors,
 * where box F1 per evaluation is costly):
 * 1. Sensitivity: one masked-simulation session (see maskedSimulation) rounds one candidate tensor at a time to
 *    8 bits on a few calibration frames; its error is the task's disagreement at the model's output (frameError),
 *    with the error where the quantized span ends as a tie-break (see FloatLayer.error).
 * 2. Cost: the multiply-accumulates that would run in float if that tensor stayed float (its producer and consumers).
 * 3. Tensors are ranked by error per MAC; graph order from the input is the other candidate order (errors compound
 *    with depth). Both are evaluated with half the tensors float; in each that meets the budget there, the shortest
 *    prefix that still meets it is found by bisection over real agreement evaluations, and the shorter wins. When
 *    neither does, the better order is tried up to three quarters of the tensors.
 * 4. With per-node times profiled on this CPU (timing), a third order measures cost in milliseconds instead of
 *    MACs: first every tensor whose producer and consumers run slower in int8 than in float by more than the Q / DQ
 *    a float island there adds (float there is both faster and exact), most time lost first; then by error per
 *    millisecond int8 saves, those conversions counted. Its shortest prefix meeting
 *    the budget is searched from the end of those free tensors up (fewer would give back time and accuracy).
 */
export async function sensitivityGuidedMixed(
  fp32: OnnxGraph,
  base: Omit<QuantizeOptions, 'floatTensors' | 'keepFloat'>,
  agreementOf: (g: OnnxGraph) => Promise<number>,
  budget: number,
  sensitivityFrames: Float32Array[],
  /** The task's disagreement of one frame's model output with fp32's (0 = the same answer). */
  frameError: (fp32Output: Float32Array, output: Float32Array) => number,
  logger: Logger = silentLogger,
  timing?: NodeTiming,
): Promise<MixedSearch> {
  // Calibrated once: every variant of the search uses the same ranges.
  base = { ...base, ranges: base.ranges ?? (await calibrateAll(fp32, base.calibration, base.dims)) };
  const probe = await probeGraph(prepareForQuantization(fp32), sensitivityFrames[0]!);
  const sim = await maskedSimulation(fp32, base, (t) => probe.get(t)?.dims);
  const errors = await layerErrors(sim, sensitivityFrames, base.dims, frameError);
  const producerOf = (t: string) => sim.graph.nodes.find((n) => n.outputs.includes(t))?.op ?? '?';
  const savedMsOf = (t: string) =>
    timing === undefined
      ? {}
      : {
          // Nodes in both profiles only: one onnxruntime fused away in one of them (a residual Add inside a float
          // NCHWc Conv) would read 0 ms there and pass for a saving or a loss it is not.
          savedMs: (sim.nodesOf.get(t) ?? [])
            .filter((n) => timing.fp32MsByNode.has(n) && timing.int8MsByNode.has(n))
            .reduce((sum, n) => sum + timing.fp32MsByNode.get(n)! - timing.int8MsByNode.get(n)!, 0),
          boundaryMs: (sim.boundaryElements.get(t) ?? 0) * timing.conversionMsPerElement,
        };
  const ranked: FloatLayer[] = sim.tensors
    .map((tensor, i) => ({ tensor, producer: producerOf(tensor), error: errors[i]!, mmacs: (sim.macs.get(tensor) ?? 0) / 1e6, ...savedMsOf(tensor) }))
    .sort((a, b) => b.error / Math.max(b.mmacs, 1e-3) - a.error / Math.max(a.mmacs, 1e-3));
  logger.info({ candidates: ranked.length, mostSensitive: ranked.slice(0, 5).map((l) => `${l.tensor} (${l.producer})`) }, 'int8 sensitivity per tensor measured');

  // Two orders to take tensors float in: by sensitivity per MAC, and in graph order from the input. Rounding errors
  // compound with depth, which one tensor rounded alone does not show: on CenterNet the first half of the tensors
  // in graph order recovered far more box F1 than the most sensitive half (measured: README).
  const inGraphOrder = sim.tensors.map((t) => ranked.find((l) => l.tensor === t)!);
  const orders: Array<{ name: FrontierPoint['order']; layers: FloatLayer[] }> = [
    { name: 'sensitivity per MAC', layers: ranked },
    { name: 'graph order from the input', layers: inGraphOrder },
  ];
  // Float where int8 is slower by more than the conversions around it cost is free; after those, the most error per
  // millisecond int8 saves (conversions included). A lone float tensor costs its islands' Q / DQ; more float around
  // it shares them, which this per-tensor estimate does not see (the clock, in the end, decides).
  const netSavedMs = (l: FloatLayer) => (l.savedMs ?? 0) + (l.boundaryMs ?? 0);
  const byTime = [...ranked].sort((a, b) => {
    const [sa, sb] = [netSavedMs(a), netSavedMs(b)];
    if (sa < 0 || sb < 0) return sa < 0 && sb < 0 ? sa - sb : sa < 0 ? -1 : 1;
    return b.error / sb - a.error / sa;
  });
  const measured = { name: 'error per ms saved (profiled)' as const, layers: byTime };
  const free = byTime.filter((l) => netSavedMs(l) < 0).length;
  const frontier: FrontierPoint[] = [];
  const built = new Map<string, { order: FrontierPoint['order']; graph: OnnxGraph; agreement: number; layers: FloatLayer[] }>();
  const evaluate = async (order: (typeof orders)[number], k: number) => {
    const layers = order.layers.slice(0, k);
    const graph = await quantizeQdq(fp32, { ...base, floatTensors: new Set(layers.map((l) => l.tensor)) });
    const agreement = await agreementOf(graph);
    frontier.push({ order: order.name, floatTensors: k, agreement });
    built.set(`${order.name}/${k}`, { order: order.name, graph, agreement, layers });
    logger.info({ order: order.name, floatTensors: k, agreement }, 'mixed precision evaluated');
    return agreement;
  };
  const most = Math.ceil(ranked.length / 2);
  const atHalf: number[] = [];
  for (const order of orders) atHalf.push(await evaluate(order, most));
  let order = orders[atHalf[1]! > atHalf[0]! ? 1 : 0]!;
  // Bisection between a prefix that misses the budget and one that meets it: the fewest float tensors (among
  // prefixes of one order) that still meet it.
  const bisect = async (o: (typeof orders)[number], lo: number, hi: number) => {
    let steps = 0;
    while (hi - lo > 1 && steps++ < 10) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await evaluate(o, mid)) >= budget) hi = mid;
      else lo = mid;
    }
    return hi;
  };
  let chosen = `${order.name}/${most}`;
  const metKeys: string[] = [];
  if (Math.max(...atHalf) >= budget) {
    // Every order that meets the budget at half is bisected, and the one needing the fewest float tensors is the
    // chosen one: which order is better at half says little about which needs fewer (CenterNet: sensitivity per MAC
    // 99 % at half but 61 tensors at 0.95; graph order 97 % at half but 15 tensors). Both are returned (budgetMet):
    // which one runs faster is for the clock to say.
    let fewest = Infinity;
    for (const [i, o] of orders.entries()) {
      if (atHalf[i]! < budget) continue;
      const k = await bisect(o, 0, most);
      metKeys.push(`${o.name}/${k}`);
      const better = k < fewest || (k === fewest && built.get(`${o.name}/${k}`)!.agreement > built.get(chosen)!.agreement);
      if (better) [fewest, order, chosen] = [k, o, `${o.name}/${k}`];
    }
  } else {
    // Below the budget with half the tensors float: three quarters (a model that is mostly float, shown so the
    // frontier says what the budget costs), and a quarter for the frontier's shape.
    const threeQuarters = Math.ceil((3 * ranked.length) / 4);
    await evaluate(order, Math.ceil(most / 2));
    if ((await evaluate(order, threeQuarters)) >= budget) metKeys.push((chosen = `${order.name}/${await bisect(order, most, threeQuarters)}`));
  }
  if (timing !== undefined) {
    // From the free prefix up: the fewest float tensors of this order that meet the budget, if half of them do.
    // All the free tensors, however many: fewer would give back both time and accuracy.
    const from = Math.max(free, 1);
    let met: number | undefined;
    if ((await evaluate(measured, from)) >= budget) met = from;
    else if (from < most && (await evaluate(measured, most)) >= budget) met = await bisect(measured, from, most);
    logger.info({ freeTensors: free, floatTensors: met ?? null }, 'profiled order searched');
    if (met !== undefined) {
      const key = `${measured.name}/${met}`;
      metKeys.push(key);
      const current = built.get(chosen)!;
      if (current.agreement < budget || met < current.layers.length) [order, chosen] = [measured, key];
    }
  }
  const best = built.get(chosen)!;
  const point = (key: string): MixedPoint => {
    const b = built.get(key)!;
    return { order: b.order, graph: b.graph, floatLayers: b.layers, agreement: b.agreement };
  };
  return {
    graph: best.graph,
    floatLayers: best.layers,
    agreement: best.agreement,
    metBudget: best.agreement >= budget,
    frontier: frontier.sort((a, b) => a.order.localeCompare(b.order) || a.floatTensors - b.floatTensors),
    candidates: ranked.length,
    order: order.name,
    budgetMet: [chosen, ...metKeys.filter((k) => k !== chosen)].filter((k) => metKeys.includes(k)).map(point),
  };
}

/**
 * For each candidate tensor, what rounding only it costs (see FloatLayer.error), averaged over frames. One
 * session, one run per tensor and frame.
 */
async function layerErrors(sim: MaskedSimulation, frames: Float32Array[], dims: number[], frameError: (fp32Output: Float32Array, output: Float32Array) => number): Promise<Float64Array> {
  const { graph, maskName, tensors, exits } = sim;
  const output = graph.outputs[0]!.name;
  const fetches = [...new Set([output, ...exits])];
  const session = await ort.InferenceSession.create(graph.toBytes(graph.opset, exits), { graphOptimizationLevel: 'all' });
  const errors = new Float64Array(tensors.length);
  try {
    const inputName = graph.inputs[0]!.name;
    for (const frame of frames) {
      const run = async (mask: Float32Array) => session.run({ [inputName]: new ort.Tensor('float32', frame, dims), [maskName]: new ort.Tensor('float32', mask, [mask.length]) }, fetches);
      const reference = await run(new Float32Array(tensors.length));
      const variance = exits.map((e) => {
        const y = reference[e]!.data as Float32Array;
        const mean = y.reduce((a, b) => a + b, 0) / y.length;
        return Math.max(y.reduce((a, v) => a + (v - mean) ** 2, 0), 1e-12);
      });
      for (let i = 0; i < tensors.length; i++) {
        const mask = new Float32Array(tensors.length);
        mask[i] = 1;
        const out = await run(mask);
        let exitError = 0;
        exits.forEach((e, j) => {
          const y = out[e]!.data as Float32Array;
          const r = reference[e]!.data as Float32Array;
          let se = 0;
          for (let k = 0; k < y.length; k++) se += (y[k]! - r[k]!) ** 2;
          exitError += se / variance[j]!;
        });
        const task = frameError(reference[output]!.data as Float32Array, out[output]!.data as Float32Array);
        errors[i]! += (task + 1e-3 * exitError) / frames.length;
      }
    }
  } finally {
    await session.release();
  }
  return errors;
}
