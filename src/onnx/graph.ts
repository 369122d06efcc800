/**
 * A small ONNX graph builder: typed tensors with static shapes, nodes appended in
 * topological order, constants as initializers, and encoding to ModelProto bytes
 * (opset 17, IR 9) with `onnx-proto`. Shape inference lives with each op in `ops.ts`;
 * this file only records what they computed. Deliberately left out: dynamic shapes,
 * subgraphs (If/Loop), external data — every graph we build has known sizes.
 *
 * @module
 */
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

/** Element types the builder knows. */
export type DType = "float32" | "float64" | "int64" | "int32" | "bool";

/** ONNX TensorProto.DataType codes. */
const DTYPE_CODE: Record<DType, number> = {
  float32: 1,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
};

/** One attribute value, tagged so ints and floats encode as ONNX expects. */
export type Attr =
  | { int: number }
  | { float: number }
  | { ints: readonly number[] }
  | { str: string }
  | { tensor: { dtype: DType; values: readonly number[]; shape: readonly number[] } };

/** A value in the graph: a graph input, a constant, or a node output. */
export interface T {
  readonly g: Graph;
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** An ONNX node as encoded (names only): what a {@link Lowering} emits. */
export interface OnnxNode {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs?: Record<string, Attr>;
}

/**
 * How a builder-level primitive becomes ONNX nodes when it is not one ONNX op (it may
 * need a fused backward rule that a chain of ONNX ops would not get). `tmp(tag)` names
 * an intermediate value, unique to this node.
 */
export type Lowering = (
  inputs: readonly string[],
  outputs: readonly string[],
  tmp: (tag: string) => string,
) => OnnxNode[];

/** One operator application. */
export interface Node {
  readonly op: string;
  readonly inputs: readonly T[];
  readonly outputs: readonly T[];
  readonly attrs: Readonly<Record<string, Attr>>;
  /** Builder-side facts the backward rules need (axes, starts, ...); not encoded. */
  readonly meta: Readonly<Record<string, readonly number[]>>;
  /** Set when the op is encoded as several ONNX nodes. */
  readonly lower?: Lowering;
}

interface Initializer {
  name: string;
  dtype: DType;
  shape: readonly number[];
  values: ArrayLike<number> | BigInt64Array;
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** True for the floating-point element types (the differentiable ones). */
export function isFloat(d: DType): boolean {
  return d === "float32" || d === "float64";
}

/** A graph under construction. Nodes are appended in topological order. */
export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: T[] = [];
  readonly outputs: T[] = [];
  private readonly inits: Initializer[] = [];
  private readonly scalars = new Map<string, T>();
  private counter = 0;

  private fresh(dtype: DType, shape: readonly number[], name?: string): T {
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new RangeError(
          `Invalid tensor shape [${shape.join(", ")}]: dims must be integers >= 0`,
        );
      }
    }
    return { g: this, name: name ?? `t${this.counter++}`, dtype, shape: [...shape] };
  }

  /** Declares a graph input. */
  input(name: string, dtype: DType, shape: readonly number[]): T {
    const t = this.fresh(dtype, shape, name);
    this.inputs.push(t);
    return t;
  }

  /** A constant tensor (an initializer). Values are converted to `dtype`. */
  constant(values: ArrayLike<number> | BigInt64Array, dtype: DType, shape: readonly number[]): T {
    if (values.length !== numel(shape)) {
      throw new RangeError(
        `Constant has ${values.length} values but shape [${shape.join(", ")}] needs ${
          numel(shape)
        }`,
      );
    }
    const t = this.fresh(dtype, shape);
    this.inits.push({ name: t.name, dtype, shape, values });
    return t;
  }

  /** A shared scalar constant (shape []) of `dtype`. */
  scalar(value: number, dtype: DType): T {
    const key = `${dtype}:${Object.is(value, -0) ? "-0" : value}`;
    let t = this.scalars.get(key);
    if (!t) {
      t = this.constant(dtype === "int64" ? BigInt64Array.of(BigInt(value)) : [value], dtype, []);
      this.scalars.set(key, t);
    }
    return t;
  }

  /** A 1-D int64 constant (shapes, axes, starts, ...). */
  ints(values: readonly number[]): T {
    return this.constant(BigInt64Array.from(values.map(BigInt)), "int64", [values.length]);
  }

  /**
   * Appends a node; `outs` are the inferred output types (ops.ts computes them).
   * @returns the node's output tensors
   */
  node(
    op: string,
    inputs: readonly T[],
    outs: readonly { dtype: DType; shape: readonly number[] }[],
    attrs: Record<string, Attr> = {},
    meta: Record<string, readonly number[]> = {},
    lower?: Lowering,
  ): T[] {
    for (const x of inputs) {
      if (x.g !== this) throw new Error(`Input '${x.name}' of ${op} belongs to another graph`);
    }
    const outputs = outs.map((o) => this.fresh(o.dtype, o.shape));
    this.nodes.push({ op, inputs: [...inputs], outputs, attrs, meta, ...(lower ? { lower } : {}) });
    return outputs;
  }

  /** Marks `t` as a graph output called `name` (through an Identity node). */
  output(t: T, name: string): void {
    const o = this.fresh(t.dtype, t.shape, name);
    this.nodes.push({ op: "Identity", inputs: [t], outputs: [o], attrs: {}, meta: {} });
    this.outputs.push(o);
  }

  /** Nodes and constants the outputs depend on (rules may build terms nobody uses). */
  private live(): { nodes: Node[]; inits: Initializer[] } {
    const need = new Set(this.outputs.map((o) => o.name));
    const nodes: Node[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      if (!n.outputs.some((o) => need.has(o.name))) continue;
      nodes.push(n);
      for (const x of n.inputs) need.add(x.name);
    }
    return { nodes: nodes.reverse(), inits: this.inits.filter((c) => need.has(c.name)) };
  }

  /** The ModelProto bytes of this graph (only what the outputs depend on). */
  encode(graphName = "boltzmann"): Uint8Array {
    const { nodes, inits } = this.live();
    const valueInfo = (t: T) => ({
      name: t.name,
      type: {
        tensorType: {
          elemType: DTYPE_CODE[t.dtype],
          shape: { dim: t.shape.map((d) => ({ dimValue: d })) },
        },
      },
    });
    const model = onnx.ModelProto.create({
      irVersion: 9,
      producerName: "boltzmann",
      opsetImport: [{ domain: "", version: 17 }],
      graph: {
        name: graphName,
        node: nodes.flatMap(lowered).map((n, i) => ({
          name: `n${i}_${n.op}`,
          opType: n.op,
          input: [...n.inputs],
          output: [...n.outputs],
          attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => encodeAttr(k, v)),
        })),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
        initializer: inits.map((c) => tensorProto(c.name, c.dtype, c.shape, c.values)),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function lowered(n: Node): OnnxNode[] {
  const ins = n.inputs.map((x) => x.name), outs = n.outputs.map((x) => x.name);
  if (n.lower) return n.lower(ins, outs, (tag) => `${outs[0]}_${tag}`);
  return [{ op: n.op, inputs: ins, outputs: outs, attrs: { ...n.attrs } }];
}

function rawBytes(dtype: DType, values: ArrayLike<number> | BigInt64Array): Uint8Array {
  let arr: ArrayBufferView;
  if (dtype === "int64") {
    arr = values instanceof BigInt64Array
      ? values
      : BigInt64Array.from(Array.from(values as ArrayLike<number>, (v) => BigInt(v)));
  } else if (values instanceof BigInt64Array) {
    throw new TypeError(`BigInt values given for a ${dtype} constant`);
  } else if (dtype === "float32") arr = Float32Array.from(values);
  else if (dtype === "float64") arr = Float64Array.from(values);
  else if (dtype === "int32") arr = Int32Array.from(values);
  else arr = Uint8Array.from(values, (v) => (v ? 1 : 0));
  // Typed arrays are little-endian on every platform ORT ships for.
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).slice();
}

function tensorProto(
  name: string,
  dtype: DType,
  shape: readonly number[],
  values: ArrayLike<number> | BigInt64Array,
) {
  return {
    name,
    dataType: DTYPE_CODE[dtype],
    dims: [...shape],
    rawData: rawBytes(dtype, values),
  };
}

function encodeAttr(name: string, v: Attr) {
  const A = onnx.AttributeProto.AttributeType;
  if ("int" in v) return { name, type: A.INT, i: v.int };
  if ("float" in v) return { name, type: A.FLOAT, f: v.float };
  if ("ints" in v) return { name, type: A.INTS, ints: [...v.ints] };
  if ("str" in v) return { name, type: A.STRING, s: new TextEncoder().encode(v.str) };
  const t = v.tensor;
  return { name, type: A.TENSOR, t: tensorProto("", t.dtype, t.shape, t.values) };
}
