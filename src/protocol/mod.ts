/**
 * Protocol v2 (docs/PROTOCOL.md): one shared model updated each window by compressed,
 * error-corrected updates. Codecs, the signed upload, the miner's update, aggregation,
 * the deterministic outer step and the θ digest. Pure maths and wire format; the roles
 * (src/roles/) and `bench converge` call these same functions.
 *
 * @module
 */
export * from "./codec.ts";
export * from "./outer.ts";
export * from "./update.ts";
export * from "./upload.ts";
