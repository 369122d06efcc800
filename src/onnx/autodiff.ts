/**
 * Reverse-mode automatic differentiation over the graphs of `graph.ts`: ONE table of
 * vector-Jacobian rules (one entry per primitive of `ops.ts`) and one reverse walk that
 * appends the backward nodes to the same graph (tinygrad's `gradient.py` shape).
 * Composites need no rule. Only output 0 of a node is differentiable.
 *
 * @module
 */
import { type Attr, isFloat, type Node, type T } from "./graph.ts";
import {
  add,
  cast,
  concat,
  div,
  equal,
  exp,
  expand,
  full,
  gemm,
  log,
  matmul,
  mul,
  neg,
  pad,
  pow,
  reduceSum,
  reshape,
  scatterNDAdd,
  slice,
  sub,
  transpose,
  transposeLast,
  where,
} from "./ops.ts";

/** Gradient of output 0 → one gradient (or undefined: none/not needed) per input. */
type Rule = (g: T, x: readonly T[], y: T, n: Node) => (T | undefined)[];

function attr(n: Node, name: string): Attr | undefined {
  return n.attrs[name];
}
const int = (n: Node, k: string, d = 0): number => {
  const a = attr(n, k);
  return a && "int" in a ? a.int : d;
};
const ints = (n: Node, k: string): readonly number[] => {
  const a = attr(n, k);
  if (a && "ints" in a) return a.ints;
  const m = n.meta[k];
  if (!m) throw new Error(`Node ${n.op} lacks '${k}'`);
  return m;
};

/** Sums `g` down to `shape` (undoes numpy broadcasting). */
export function sumTo(g: T, shape: readonly number[]): T {
  const lead = g.shape.length - shape.length;
  const axes = [...Array(lead).keys()];
  shape.forEach((d, i) => {
    if (d === 1 && g.shape[i + lead] !== 1) axes.push(i + lead);
  });
  return reshape(reduceSum(g, axes, true), shape);
}

/** The vector-Jacobian products, one per primitive. */
export const RULES: Readonly<Record<string, Rule>> = {
  Identity: (g) => [g],
  Add: (g, [a, b]) => [sumTo(g, a!.shape), sumTo(g, b!.shape)],
  Sub: (g, [a, b]) => [sumTo(g, a!.shape), sumTo(neg(g), b!.shape)],
  Mul: (g, [a, b]) => [sumTo(mul(g, b!), a!.shape), sumTo(mul(g, a!), b!.shape)],
  Div: (g, [a, b], y) => [sumTo(div(g, b!), a!.shape), sumTo(neg(mul(g, div(y, b!))), b!.shape)],
  Pow: (g, [a, b], y) => [
    sumTo(mul(g, mul(b!, pow(a!, sub(b!, 1)))), a!.shape),
    sumTo(mul(g, mul(y, log(a!))), b!.shape),
  ],
  Neg: (g) => [neg(g)],
  Exp: (g, _x, y) => [mul(g, y)],
  Log: (g, [x]) => [div(g, x!)],
  Sqrt: (g, _x, y) => [div(g, mul(y, 2))],
  Sigmoid: (g, _x, y) => [mul(g, mul(y, sub(1, y)))],
  Softmax: (g, _x, y, n) => [mul(y, sub(g, reduceSum(mul(g, y), [int(n, "axis", -1)], true)))],
  MatMul: (g, [a, b]) => [
    sumTo(matmul(g, transposeLast(b!)), a!.shape),
    sumTo(matmul(transposeLast(a!), g), b!.shape),
  ],
  Gemm: (g, [a, b], _y, n) => {
    const ta = int(n, "transA") === 1, tb = int(n, "transB") === 1;
    return [
      ta ? gemm(b!, g, tb, true) : gemm(g, b!, false, !tb),
      tb ? gemm(g, a!, true, ta) : gemm(a!, g, !ta, false),
    ];
  },
  ReduceSum: (g, [x], _y, n) => {
    const keep = x!.shape.map((d, i) => (ints(n, "axes").includes(i) ? 1 : d));
    return [expand(reshape(g, keep), x!.shape), undefined];
  },
  ReduceMax: (g, [x], y, n) => {
    const ax = ints(n, "axes");
    const keep = x!.shape.map((d, i) => (ax.includes(i) ? 1 : d));
    // Ties share the gradient equally (as PyTorch's amax does).
    const mask = cast(equal(x!, reshape(y, keep)), x!.dtype);
    return [mul(div(mask, reduceSum(mask, ax, true)), reshape(g, keep))];
  },
  Reshape: (g, [x]) => [reshape(g, x!.shape), undefined],
  Transpose: (g, _x, _y, n) => {
    const perm = ints(n, "perm");
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [transpose(g, inv)];
  },
  Expand: (g, [x]) => [sumTo(g, x!.shape), undefined],
  Slice: (g, [x], _y, n) => {
    const r = x!.shape.length, pads = new Array<number>(2 * r).fill(0);
    const starts = ints(n, "starts"), ends = ints(n, "ends");
    ints(n, "axes").forEach((a, i) => {
      pads[a] = starts[i]!;
      pads[a + r] = x!.shape[a]! - ends[i]!;
    });
    return [pad(g, pads), undefined, undefined, undefined];
  },
  Pad: (g, [x], _y, n) => {
    const p = ints(n, "pads"), r = x!.shape.length;
    const axes = [...Array(r).keys()];
    return [slice(g, p.slice(0, r), axes.map((a) => p[a]! + x!.shape[a]!), axes), undefined];
  },
  Concat: (g, xs, _y, n) => {
    const a = int(n, "axis");
    let at = 0;
    return xs.map((x) => slice(g, [at], [at += x.shape[a]!], [a]));
  },
  Gather: (g, [data, idx], _y, n) => {
    if (int(n, "axis") !== 0) {
      throw new Error("No gradient rule for Gather along an axis other than 0");
    }
    const rows = idx!.shape.reduce((p, q) => p * q, 1);
    const rest = data!.shape.slice(1);
    const zeros = full(g, data!.shape, 0);
    const at = reshape(cast(idx!, "int64"), [rows, 1]);
    return [scatterNDAdd(zeros, at, reshape(g, [rows, ...rest])), undefined];
  },
  Where: (g, [c, a, b]) => [
    undefined,
    sumTo(where(c!, g, 0), a!.shape),
    sumTo(where(c!, 0, g), b!.shape),
  ],
  Cast: (g, [x]) => [isFloat(x!.dtype) ? cast(g, x!.dtype) : undefined],
  // Fused: d(mean CE)/d logits = (softmax − onehot) · g / N, from the saved log-probs;
  // the onehot is subtracted by scattering −g/N at (row, label), N updates, not N×C.
  SoftmaxCrossEntropyLoss: (g, [logits, labels], _y, n) => {
    const rows = logits!.shape[0]!;
    const s = div(g, rows);
    const p = mul(exp(n.outputs[1]!), s);
    const at = concat([
      g.g.constant(BigInt64Array.from({ length: rows }, (_, i) => BigInt(i)), "int64", [rows, 1]),
      reshape(labels!, [rows, 1]),
    ], 1);
    return [scatterNDAdd(p, at, expand(neg(s), [rows])), undefined, undefined];
  },
};

/**
 * Appends the backward pass of `loss` to its graph.
 * @param loss a scalar tensor (or any tensor when `seed` is given)
 * @param wrt the tensors to differentiate against (usually graph inputs)
 * @param seed d(objective)/d(loss); ones when omitted
 * @returns one gradient per `wrt` entry, same shapes (zeros where `loss` does not depend on it)
 * @throws {Error} naming the op that has no rule
 */
export function grad(loss: T, wrt: readonly T[], seed?: T): T[] {
  const graph = loss.g;
  if (!seed && loss.shape.length !== 0) {
    throw new RangeError(
      `grad() needs a scalar loss or a seed, got shape [${loss.shape.join(", ")}]`,
    );
  }
  const nodes = [...graph.nodes];
  // Tensors that depend on `wrt`: only their gradients are worth building.
  const live = new Set(wrt.map((w) => w.name));
  for (const n of nodes) {
    if (n.inputs.some((x) => live.has(x.name))) {
      for (const o of n.outputs) if (isFloat(o.dtype)) live.add(o.name);
    }
  }
  const grads = new Map<string, T>([[loss.name, seed ?? full(loss, loss.shape, 1)]]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!n.inputs.some((x) => live.has(x.name))) continue;
    const g = grads.get(n.outputs[0]!.name);
    n.outputs.slice(1).forEach((o, k) => {
      if (grads.has(o.name)) throw new Error(`No gradient rule for output ${k + 1} of ${n.op}`);
    });
    if (!g) continue;
    const rule = RULES[n.op];
    if (!rule) {
      throw new Error(
        `No gradient rule for op '${n.op}': add one to RULES in src/onnx/autodiff.ts`,
      );
    }
    const gin = rule(g, n.inputs, n.outputs[0]!, n);
    if (gin.length !== n.inputs.length) {
      throw new Error(
        `Gradient rule for ${n.op} returned ${gin.length} gradients for ${n.inputs.length} inputs`,
      );
    }
    n.inputs.forEach((x, k) => {
      const gx = gin[k];
      if (!gx || !live.has(x.name)) return;
      if (gx.shape.length !== x.shape.length || gx.shape.some((d, j) => d !== x.shape[j])) {
        throw new Error(
          `Gradient rule for ${n.op} input ${k} has shape [${gx.shape.join(", ")}], expected [${
            x.shape.join(", ")
          }]`,
        );
      }
      const prev = grads.get(x.name);
      grads.set(x.name, prev ? add(prev, gx) : gx);
    });
  }
  return wrt.map((w) => grads.get(w.name) ?? full(w, w.shape, 0));
}
