/**
 * Slices: moving a window's parameter values in and out of the model (gather.ts), the
 * signed safetensors wire format (wire.ts) and the validation of untrusted slices
 * (validate.ts). No I/O: stores live in src/store/.
 *
 * @module
 */
export * from "./gather.ts";
export * from "./wire.ts";
export * from "./validate.ts";
export * from "./summary.ts";
