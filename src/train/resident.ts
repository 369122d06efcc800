/**
 * Resident blocks: a model's parameters, gradients and AdamW moments allocated inside one
 * shared WebAssembly memory, so that the AdamW kernel (wasm/adamw.wat) updates them where
 * they are on every thread, with no staging copies (measured at 58 M: the kernel on
 * resident tensors ≈ 1.7× the staged one per core; docs/PERFORMANCE.md).
 *
 * ONNX Runtime's binding refuses SharedArrayBuffer-backed tensors, so the arrays handed
 * out are views of a second, ordinary ArrayBuffer over the same bytes
 * (`Deno.UnsafePointerView.getArrayBuffer`, the ffi permission): ORT reads the parameters
 * and writes the gradients there, the kernel sees the same memory through the shared one.
 * That ArrayBuffer does not keep the memory alive, so a WeakMap from it to its block does:
 * the block lives as long as any of its arrays. Without the ffi permission, or beyond the
 * 4 GiB of a 32-bit memory, there is no block and callers keep plain arrays (the staged
 * kernel gives the same bits).
 *
 * @module
 */
import type { ParamSpec, Tensors } from "../model/params.ts";
import type { AdamState } from "./adamw.ts";

/** One shared memory holding resident tensors. */
export interface ResidentBlock {
  /** Unique in this process (workers cache their kernel instance by it). */
  id: number;
  memory: WebAssembly.Memory;
}

const blocks = new WeakMap<ArrayBufferLike, ResidentBlock>();
let nextId = 1;

/** The block `t` lives in, if it is a resident array. */
export function blockOf(t: Float32Array): ResidentBlock | undefined {
  return blocks.get(t.buffer);
}

/** Floats per tensor rounded up to 4, so every tensor starts 16-byte aligned. */
const padded = (n: number): number => Math.ceil(n / 4) * 4;

const PAGE = 65536;
/** A 32-bit WebAssembly memory holds at most 65536 pages. */
const MAX_PAGES = 65536;

/** Resident parameters, gradients and a fresh AdamW state for `table`. */
export interface ResidentModel {
  params: Tensors;
  grads: Tensors;
  opt: AdamState;
}

/**
 * Zeroed parameters, gradients and AdamW moments (step 0) for `table`, resident in one
 * block; null without the ffi permission, or where they exceed one 32-bit memory.
 */
export function residentModel(table: readonly ParamSpec[]): ResidentModel | null {
  const floats = table.reduce((s, p) => s + 4 * padded(p.numel), 0);
  const pages = Math.max(1, Math.ceil((4 * floats) / PAGE));
  if (pages > MAX_PAGES || !canAlias()) return null;
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  } catch {
    return null; // out of address space or memory
  }
  const ptr = Deno.UnsafePointer.of(
    new Uint8Array(memory.buffer) as unknown as Uint8Array<ArrayBuffer>,
  );
  if (!ptr) return null;
  const alias = Deno.UnsafePointerView.getArrayBuffer(ptr, pages * PAGE);
  blocks.set(alias, { id: nextId++, memory });
  let at = 0;
  const take = (n: number) => {
    const t = new Float32Array(alias, 4 * at, n);
    at += padded(n);
    return t;
  };
  const params: Tensors = new Map(), grads: Tensors = new Map();
  const m: Tensors = new Map(), v: Tensors = new Map();
  for (const p of table) {
    params.set(p.name, take(p.numel));
    grads.set(p.name, take(p.numel));
    m.set(p.name, take(p.numel));
    v.set(p.name, take(p.numel));
  }
  return { params, grads, opt: { step: 0, m, v } };
}

function canAlias(): boolean {
  try {
    return typeof Deno.UnsafePointerView?.getArrayBuffer === "function" &&
      Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}
