/**
 * Operators on {@link T}: the primitives (one ONNX node each, shape inference here,
 * one backward rule each in `autodiff.ts`) and composites written from them (which need
 * no backward rule). Shapes are static; a mismatch throws when the graph is built, not
 * when it runs.
 *
 * @module
 */
import { type DType, isFloat, numel, type OnnxNode, type T } from "./graph.ts";

/** A tensor, or a number to become a scalar constant of the other operand's type. */
export type TOrNum = T | number;

function shapeStr(s: readonly number[]): string {
  return `[${s.join(", ")}]`;
}

/** Normalises a possibly negative axis against `rank`. */
export function axis(a: number, rank: number): number {
  const r = a < 0 ? a + rank : a;
  if (!Number.isInteger(r) || r < 0 || r >= rank) {
    throw new RangeError(`Axis ${a} is out of range for rank ${rank}`);
  }
  return r;
}

/** Numpy broadcasting of two shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1, y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new RangeError(`Cannot broadcast shapes ${shapeStr(a)} and ${shapeStr(b)}`);
    }
    out.push(x === 1 ? y : x);
  }
  return out;
}

function lift(x: TOrNum, like: T): T {
  return typeof x === "number" ? like.g.scalar(x, like.dtype) : x;
}

function pair(a: TOrNum, b: TOrNum): [T, T] {
  if (typeof a === "number" && typeof b === "number") {
    throw new TypeError("At least one operand must be a tensor");
  }
  const ta = typeof a === "number" ? lift(a, b as T) : a;
  const tb = lift(b, ta);
  if (ta.dtype !== tb.dtype) {
    throw new TypeError(`Operand types differ: ${ta.dtype} and ${tb.dtype}`);
  }
  return [ta, tb];
}

function binary(op: string, a: TOrNum, b: TOrNum): T {
  const [x, y] = pair(a, b);
  return x.g.node(op, [x, y], [{ dtype: x.dtype, shape: broadcastShapes(x.shape, y.shape) }])[0]!;
}

function unary(op: string, x: T, attrs = {}): T {
  return x.g.node(op, [x], [{ dtype: x.dtype, shape: x.shape }], attrs)[0]!;
}

// ---- primitives -------------------------------------------------------------------

/** Elementwise sum with broadcasting. */
export const add = (a: TOrNum, b: TOrNum): T => binary("Add", a, b);
/** Elementwise difference with broadcasting. */
export const sub = (a: TOrNum, b: TOrNum): T => binary("Sub", a, b);
/** Elementwise product with broadcasting. */
export const mul = (a: TOrNum, b: TOrNum): T => binary("Mul", a, b);
/** Elementwise quotient with broadcasting. */
export const div = (a: TOrNum, b: TOrNum): T => binary("Div", a, b);
/** Elementwise power with broadcasting. */
export const pow = (a: TOrNum, b: TOrNum): T => binary("Pow", a, b);
/** Elementwise negation. */
export const neg = (x: T): T => unary("Neg", x);
/** Elementwise e^x. */
export const exp = (x: T): T => unary("Exp", x);
/** Elementwise natural logarithm. */
export const log = (x: T): T => unary("Log", x);
/** Elementwise square root. */
export const sqrt = (x: T): T => unary("Sqrt", x);
/** Elementwise 1 / (1 + e^-x). */
export const sigmoid = (x: T): T => unary("Sigmoid", x);
/** Softmax along `ax` (ONNX opset 13 semantics: one axis). */
export const softmax = (x: T, ax = -1): T =>
  unary("Softmax", x, { axis: { int: axis(ax, x.shape.length) } });
/** A copy. */
export const identity = (x: T): T => unary("Identity", x);

/** Batched matrix product with numpy broadcasting of the leading dims (both rank >= 2). */
export function matmul(a: T, b: T): T {
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new RangeError(
      `MatMul needs rank >= 2, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`,
    );
  }
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [k2, n] = b.shape.slice(-2) as [number, number];
  if (k !== k2) {
    throw new RangeError(`MatMul inner dims differ: ${shapeStr(a.shape)} @ ${shapeStr(b.shape)}`);
  }
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return a.g.node("MatMul", [a, b], [{ dtype: a.dtype, shape: [...batch, m, n] }])[0]!;
}

/** 2-D `op(a) @ op(b)` where op transposes when the flag is set (ONNX Gemm, alpha 1, no C). */
export function gemm(a: T, b: T, transA = false, transB = false): T {
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new RangeError(
      `Gemm needs 2-D inputs, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`,
    );
  }
  const [m, k] = transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [k2, n] = transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (k !== k2) {
    throw new RangeError(
      `Gemm inner dims differ: ${shapeStr(a.shape)}${transA ? "ᵀ" : ""} @ ${shapeStr(b.shape)}${
        transB ? "ᵀ" : ""
      }`,
    );
  }
  return a.g.node("Gemm", [a, b], [{ dtype: a.dtype, shape: [m, n] }], {
    transA: { int: transA ? 1 : 0 },
    transB: { int: transB ? 1 : 0 },
  })[0]!;
}

function reducedShape(shape: readonly number[], axes: number[], keep: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keep) out.push(1);
  });
  return out;
}

/** Sum over `axes` (all when empty is not allowed: name them). */
export function reduceSum(x: T, axes: readonly number[], keepdims = true): T {
  const ax = [...new Set(axes.map((a) => axis(a, x.shape.length)))].sort((p, q) => p - q);
  if (ax.length === 0) return x;
  return x.g.node(
    "ReduceSum",
    [x, x.g.ints(ax)],
    [{
      dtype: x.dtype,
      shape: reducedShape(x.shape, ax, keepdims),
    }],
    { keepdims: { int: keepdims ? 1 : 0 } },
    { axes: ax },
  )[0]!;
}

/** Maximum over `axes`. */
export function reduceMax(x: T, axes: readonly number[], keepdims = true): T {
  const ax = [...new Set(axes.map((a) => axis(a, x.shape.length)))].sort((p, q) => p - q);
  return x.g.node("ReduceMax", [x], [{
    dtype: x.dtype,
    shape: reducedShape(x.shape, ax, keepdims),
  }], {
    axes: { ints: ax },
    keepdims: { int: keepdims ? 1 : 0 },
  })[0]!;
}

/** Same data, new shape (one -1 allowed). */
export function reshape(x: T, shape: readonly number[]): T {
  const known = shape.filter((d) => d !== -1);
  const n = numel(x.shape);
  const out = [...shape];
  const free = shape.indexOf(-1);
  if (free >= 0) out[free] = n / numel(known);
  if (numel(out) !== n || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`Cannot reshape ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
  }
  if (out.length === x.shape.length && out.every((d, i) => d === x.shape[i])) return x;
  return x.g.node("Reshape", [x, x.g.ints(out)], [{ dtype: x.dtype, shape: out }])[0]!;
}

/** Permutes dims: output dim i is input dim perm[i]. */
export function transpose(x: T, perm: readonly number[]): T {
  const r = x.shape.length;
  if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new RangeError(`Invalid permutation [${perm.join(", ")}] for rank ${r}`);
  }
  if (perm.every((p, i) => p === i)) return x;
  return x.g.node("Transpose", [x], [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }], {
    perm: { ints: perm },
  })[0]!;
}

/** Swaps the last two dims. */
export function transposeLast(x: T): T {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return transpose(x, perm);
}

/** Broadcasts `x` to `shape`. */
export function expand(x: T, shape: readonly number[]): T {
  const out = broadcastShapes(x.shape, shape);
  if (out.length !== shape.length || out.some((d, i) => d !== shape[i])) {
    throw new RangeError(`Cannot expand ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
  }
  if (out.length === x.shape.length && out.every((d, i) => d === x.shape[i])) return x;
  return x.g.node("Expand", [x, x.g.ints(shape)], [{ dtype: x.dtype, shape }])[0]!;
}

/** `x[starts:ends]` along `axes`, step 1 (bounds clamped as in ONNX). */
export function slice(
  x: T,
  starts: readonly number[],
  ends: readonly number[],
  axes: readonly number[],
): T {
  const out = [...x.shape];
  const s: number[] = [], e: number[] = [], ax: number[] = [];
  axes.forEach((a0, i) => {
    const a = axis(a0, x.shape.length), d = x.shape[a]!;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const b = clamp(starts[i]!), f = Math.max(clamp(ends[i]!), b);
    out[a] = f - b;
    s.push(b);
    e.push(f);
    ax.push(a);
  });
  return x.g.node(
    "Slice",
    [x, x.g.ints(s), x.g.ints(e), x.g.ints(ax)],
    [{ dtype: x.dtype, shape: out }],
    {},
    {
      starts: s,
      ends: e,
      axes: ax,
    },
  )[0]!;
}

/** Zero padding: `pads` = [begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}] (ONNX order). */
export function pad(x: T, pads: readonly number[]): T {
  const r = x.shape.length;
  if (pads.length !== 2 * r || pads.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new RangeError(`Pad needs ${2 * r} non-negative pads, got [${pads.join(", ")}]`);
  }
  const shape = x.shape.map((d, i) => d + pads[i]! + pads[i + r]!);
  return x.g.node("Pad", [x, x.g.ints(pads)], [{ dtype: x.dtype, shape }], {
    mode: { str: "constant" },
  }, { pads })[0]!;
}

/** Joins tensors along `ax`. */
export function concat(xs: readonly T[], ax: number): T {
  const first = xs[0];
  if (!first) throw new RangeError("Concat needs at least one tensor");
  const a = axis(ax, first.shape.length);
  const shape = [...first.shape];
  shape[a] = 0;
  for (const x of xs) {
    if (
      x.shape.length !== first.shape.length ||
      x.shape.some((d, i) => i !== a && d !== first.shape[i])
    ) {
      throw new RangeError(
        `Concat shapes differ off axis ${a}: ${shapeStr(first.shape)} and ${shapeStr(x.shape)}`,
      );
    }
    shape[a]! += x.shape[a]!;
  }
  return first.g.node("Concat", xs, [{ dtype: first.dtype, shape }], { axis: { int: a } })[0]!;
}

/** Rows of `data` along `ax` picked by integer `idx`: shape data[:ax] + idx + data[ax+1:]. */
export function gather(data: T, idx: T, ax = 0): T {
  const a = axis(ax, data.shape.length);
  if (idx.dtype !== "int64" && idx.dtype !== "int32") {
    throw new TypeError(`Gather indices must be integers, got ${idx.dtype}`);
  }
  const shape = [...data.shape.slice(0, a), ...idx.shape, ...data.shape.slice(a + 1)];
  return data.g.node("Gather", [data, idx], [{ dtype: data.dtype, shape }], {
    axis: { int: a },
  })[0]!;
}

/** `data` with `updates` added at `indices` (ScatterND, reduction add; duplicates sum). */
export function scatterNDAdd(data: T, indices: T, updates: T): T {
  return data.g.node("ScatterND", [data, indices, updates], [{
    dtype: data.dtype,
    shape: data.shape,
  }], {
    reduction: { str: "add" },
  })[0]!;
}

/** `cond ? a : b` elementwise with broadcasting. */
export function where(cond: T, a: TOrNum, b: TOrNum): T {
  const [x, y] = pair(a, b);
  if (cond.dtype !== "bool") throw new TypeError(`Where condition must be bool, got ${cond.dtype}`);
  const shape = broadcastShapes(cond.shape, broadcastShapes(x.shape, y.shape));
  return x.g.node("Where", [cond, x, y], [{ dtype: x.dtype, shape }])[0]!;
}

/** Elementwise type conversion. */
export function cast(x: T, to: DType): T {
  if (x.dtype === to) return x;
  const code = { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 }[to];
  return x.g.node("Cast", [x], [{ dtype: to, shape: x.shape }], { to: { int: code } })[0]!;
}

/** Elementwise `a == b` (bool). */
export function equal(a: TOrNum, b: TOrNum): T {
  const [x, y] = pair(a, b);
  return x.g.node("Equal", [x, y], [{
    dtype: "bool",
    shape: broadcastShapes(x.shape, y.shape),
  }])[0]!;
}

/** A tensor of `shape` filled with `value` (not differentiable; no input depends on it). */
export function full(
  like: T,
  shape: readonly number[],
  value: number,
  dtype: DType = like.dtype,
): T {
  return like.g.node("ConstantOfShape", [like.g.ints(shape)], [{ dtype, shape }], {
    value: { tensor: { dtype, values: [value], shape: [1] } },
  })[0]!;
}

/**
 * Mean softmax cross-entropy of `logits` [N, C] against int64 `labels` [N]; also returns
 * log-probabilities [N, C] so the backward can reuse them (fused rule: softmax − onehot).
 * Encoded as LogSoftmax → GatherElements → ReduceMean → Neg rather than ONNX's
 * SoftmaxCrossEntropyLoss, whose CPU kernel measured 2–3× slower than LogSoftmax alone.
 */
export function softmaxCrossEntropy(logits: T, labels: T): { loss: T; logProb: T } {
  if (
    logits.shape.length !== 2 || labels.shape.length !== 1 || labels.shape[0] !== logits.shape[0]
  ) {
    throw new RangeError(
      `SoftmaxCrossEntropyLoss needs logits [N, C] and labels [N], got ${
        shapeStr(logits.shape)
      } and ${shapeStr(labels.shape)}`,
    );
  }
  if (labels.dtype !== "int64") throw new TypeError(`Labels must be int64, got ${labels.dtype}`);
  const column = logits.g.ints([labels.shape[0]!, 1]);
  const [loss, logProb] = logits.g.node(
    "SoftmaxCrossEntropyLoss",
    [logits, labels, column],
    [{ dtype: logits.dtype, shape: [] }, { dtype: logits.dtype, shape: logits.shape }],
    {},
    {},
    ([z, l, col], [out, lp], tmp): OnnxNode[] => [
      { op: "LogSoftmax", inputs: [z!], outputs: [lp!], attrs: { axis: { int: 1 } } },
      { op: "Reshape", inputs: [l!, col!], outputs: [tmp("labels")] },
      {
        op: "GatherElements",
        inputs: [lp!, tmp("labels")],
        outputs: [tmp("picked")],
        attrs: { axis: { int: 1 } },
      },
      {
        op: "ReduceMean",
        inputs: [tmp("picked")],
        outputs: [tmp("mean")],
        attrs: { axes: { ints: [0, 1] }, keepdims: { int: 0 } },
      },
      { op: "Neg", inputs: [tmp("mean")], outputs: [out!] },
    ],
  );
  return { loss: loss!, logProb: logProb! };
}

// ---- composites (no backward rules of their own) ----------------------------------

/** Mean over `axes`. */
export function reduceMean(x: T, axes: readonly number[], keepdims = true): T {
  const n = numel(axes.map((a) => x.shape[axis(a, x.shape.length)]!));
  return mul(reduceSum(x, axes, keepdims), 1 / n);
}

/** x · sigmoid(x), the SiLU / swish activation. */
export const silu = (x: T): T => mul(x, sigmoid(x));

/** RMSNorm over the last dim: x / sqrt(mean(x²) + eps) · w (LLaMA's, no mean subtraction). */
export function rmsNorm(x: T, w: T, eps: number): T {
  const ms = reduceMean(mul(x, x), [-1]);
  return mul(div(x, sqrt(add(ms, eps))), w);
}

/** PyTorch Linear without bias: x [N, in] · Wᵀ with W [out, in]. */
export const linear = (x: T, w: T): T => gemm(x, w, false, true);

/** Sum of all elements (a scalar). */
export const sumAll = (x: T): T => reduceSum(x, [...x.shape.keys()], false);

/** True when `x` is a floating-point tensor. */
export const differentiable = (x: T): boolean => isFloat(x.dtype);
