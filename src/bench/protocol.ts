/**
 * `bench protocol`: what one participant's protocol-v2 maths costs per window, for a
 * preset's parameter table (default `tiny`) and a codec (default the network's): ms per
 * `encodeUpdate` (error feedback + compression), `decodeUpdate`, `readUpload` of a
 * signed file (header, SHA-256, sr25519 verify, decode), `aggregate` of N peers,
 * `outerStep` and `paramsDigest`, each the best of a few runs (wall, and the process's
 * CPU time, which a busy shared machine disturbs less). The reference is a plain
 * `TypedArray.set` copy of every parameter (the memory floor of one pass over θ).
 *
 * @module
 */
import process from "node:process";
import type { Bench } from "./mod.ts";
import { type Hparams, modelFingerprint } from "../hparams.ts";
import { paramTable, type Tensors } from "../model/params.ts";
import { fillNormal } from "../model/init.ts";
import {
  aggregate,
  type CodecSpec,
  decodeUpdate,
  encodeUpdate,
  newOuterState,
  outerStep,
  paramsDigest,
  readUpload,
  writeUpload,
} from "../protocol/mod.ts";
import { outerHparams } from "../roles/shared.ts";

/** What `bench protocol` takes (the CLI parses it from flags). */
export interface ProtocolOptions {
  /** The parameter table and outer optimizer (`tiny` by default). */
  hp: Hparams;
  spec: CodecSpec;
  /** Peers in the aggregate. */
  peers: number;
  /** Runs per figure (the best is reported). */
  repeat: number;
  json: boolean;
}

/** Process CPU ms (all threads): steadier than wall time on a shared machine. */
function cpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

/** Best wall ms of n runs; the best CPU ms of them goes to `cpu[label]`. */
function best(n: number, fn: () => void, cpu?: Record<string, number>, label = ""): number {
  let b = Infinity, bc = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now(), c0 = cpuMs();
    fn();
    b = Math.min(b, performance.now() - t0);
    bc = Math.min(bc, cpuMs() - c0);
  }
  if (cpu) cpu[label] = +bc.toFixed(1);
  return b;
}

/** A gradient-like update: N(0, 1e-3²) per value, one stream per tensor and peer. */
function updateOf(table: ReturnType<typeof paramTable>, peer: number): Tensors {
  return new Map(table.map((p) => {
    const x = new Float32Array(p.numel);
    fillNormal(x, 1e-3, ["bench/protocol", peer, p.name]);
    return [p.name, x];
  }));
}

export const bench: Bench<ProtocolOptions> = {
  summary: "ms per encode, decode, read (signed file), aggregate, outer step, digest",
  async run({ hp, spec, peers, repeat, json }) {
    const table = paramTable(hp.model);
    const values = table.reduce((a, p) => a + p.numel, 0);
    const ctx = { seed: "delta:0x" + "5a".repeat(32) };
    const { Keyring } = await import("@polkadot/keyring");
    const { cryptoWaitReady } = await import("@polkadot/util-crypto");
    await cryptoWaitReady();
    const kp = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//Alice");
    const signer = { address: kp.address, sign: (m: Uint8Array) => kp.sign(m) };
    const fingerprint = modelFingerprint(hp.model);

    const updates = Array.from({ length: peers }, (_, k) => updateOf(table, k));
    const u0 = updates[0]!;
    const cpu: Record<string, number> = {};
    // Encode from a fresh error-feedback buffer each run (the first window's cost).
    let enc = encodeUpdate(spec, u0, new Map(), ctx);
    const encodeMs = best(
      repeat,
      () => (enc = encodeUpdate(spec, u0, new Map(), ctx)),
      cpu,
      "encode",
    );
    const decodeMs = best(repeat, () => decodeUpdate(spec, enc, table, ctx), cpu, "decode");
    const meta = { window: 7, hotkey: signer.address, fingerprint };
    const file = writeUpload(enc, meta, signer);
    const expect = { spec, params: table, fingerprint, window: 7, hotkey: signer.address, ctx };
    const readMs = best(repeat, () => readUpload(file, expect), cpu, "read");

    const decoded = updates.map((u, k) => ({
      update: decodeUpdate(spec, encodeUpdate(spec, u, new Map(), ctx), table, ctx),
      weight: 1,
      key: `peer-${String(k).padStart(3, "0")}`,
    }));
    let agg = aggregate(decoded);
    const aggregateMs = best(repeat, () => (agg = aggregate(decoded)), cpu, "aggregate");
    const params: Tensors = new Map(table.map((p) => {
      const x = new Float32Array(p.numel);
      fillNormal(x, 0.02, ["bench/protocol/theta", p.name]);
      return [p.name, x];
    }));
    const state = newOuterState(params);
    const ohp = outerHparams(hp);
    const stepMs = best(repeat, () => outerStep(params, state, agg, ohp), cpu, "outer_step");
    const digestMs = best(repeat, () => paramsDigest(params), cpu, "digest");
    const copies = [...params.values()].map((p) => new Float32Array(p.length));
    const copyMs = best(repeat, () => [...params.values()].forEach((p, i) => copies[i]!.set(p)));

    const r = (v: number) => +v.toFixed(1);
    const out = {
      preset: hp.preset,
      codec: spec.name,
      tensors: table.length,
      values,
      upload_bytes: file.length,
      peers,
      encode_ms: r(encodeMs),
      decode_ms: r(decodeMs),
      read_ms: r(readMs),
      aggregate_ms: r(aggregateMs),
      outer_step_ms: r(stepMs),
      digest_ms: r(digestMs),
      copy_ms: r(copyMs),
      window_ms: r(readMs * peers + aggregateMs + stepMs + digestMs),
      cpu_ms: cpu,
    };
    if (json) console.log(JSON.stringify(out));
    else {
      console.log(
        `protocol  preset=${hp.preset} codec=${spec.name} tensors=${table.length} ` +
          `values=${values} upload=${file.length} bytes; best of ${repeat}`,
      );
      console.log(
        `  encode ${out.encode_ms} ms  decode ${out.decode_ms} ms  read (signed file) ${out.read_ms} ms`,
      );
      console.log(
        `  aggregate of ${peers} ${out.aggregate_ms} ms  outer step ${out.outer_step_ms} ms  ` +
          `digest ${out.digest_ms} ms  (copy of θ ${out.copy_ms} ms)`,
      );
      console.log(
        `  CPU ms (all threads, steadier on a shared machine): ${
          Object.entries(cpu).map(([k, v]) => `${k} ${v}`).join("  ")
        }`,
      );
      console.log(
        `  a participant's window (read ${peers} uploads, aggregate, step, digest): ${out.window_ms} ms`,
      );
    }
    return 0;
  },
};
