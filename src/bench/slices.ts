/**
 * `bench slices`: for a preset's parameter table (default `seed`), at its compression:
 * gather and scatter GB/s against a plain `TypedArray.set` copy of the same bytes
 * (target >= 0.5x), encode / validate-decode GB/s in F32 and BF16, sr25519 sign and
 * verify ms, and upload / download MB/s of one slice to a local S3 server (s3_server.ts on
 * 127.0.0.1, our SigV4 client) against writing / reading the same bytes to a local file.
 * Also the score fidelity of BF16 deltas: |cos(δ_bf16, g) - cos(δ_f32, g)|.
 *
 * Memory: parameters of the same shape share one buffer (the `seed` table would need
 * 4.8 GB otherwise); each tensor is still gathered at its own indices, so the memory
 * access pattern is the one of a real model.
 */
import type { Bench } from "./mod.ts";
import { type Hparams, modelFingerprint } from "../hparams.ts";
import { paramTable, type Tensors } from "../model/params.ts";
import { fillNormal } from "../model/init.ts";
import { DERIVATION_VERSION, sliceIndices } from "../window.ts";
import { gather, scatter } from "../slices/gather.ts";
import { encodeSlice, type SliceDtype } from "../slices/wire.ts";
import { decodeSlice } from "../slices/validate.ts";
import { bf16ToF32, f32ToBf16 } from "../safetensors.ts";
import { S3Store } from "../store/s3.ts";
import { BENCH_CREDS, startBenchS3 } from "./s3_server.ts";

function best(n: number, fn: () => void): number {
  let b = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    b = Math.min(b, performance.now() - t0);
  }
  return b;
}

async function bestAsync(n: number, fn: () => Promise<void>): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    b = Math.min(b, performance.now() - t0);
  }
  return b;
}

/** Deterministic standard-normal values (the model initialiser's generator). */
function normals(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  fillNormal(out, 1, ["bench/slices", seed]);
  return out;
}

function cos(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

/** What `bench slices` takes (the CLI parses it from flags). */
export interface SlicesOptions {
  /** The parameter table and compression (`seed` by default). */
  hp: Hparams;
  json: boolean;
}

export const bench: Bench<SlicesOptions> = {
  summary: "gather/scatter vs TypedArray.set, codec GB/s, sign/verify ms, S3 vs file MB/s",
  async run({ hp, json }) {
    const table = paramTable(hp.model);
    const start = performance.now();
    const say = (s: string) =>
      json || console.log(`${s}  [${((performance.now() - start) / 1000).toFixed(1)} s]`);
    const out: Record<string, unknown> = { preset: hp.preset, compression: hp.compression };

    // Parameters: one buffer per distinct size, filled with small values.
    const buffers = new Map<number, Float32Array>();
    const params: Tensors = new Map();
    for (const p of table) {
      let b = buffers.get(p.numel);
      if (!b) {
        b = new Float32Array(p.numel);
        for (let i = 0; i < b.length; i++) b[i] = ((i * 2654435761) % 2001 - 1000) * 1e-5;
        buffers.set(p.numel, b);
      }
      params.set(p.name, b);
    }
    const seed = "delta:0x" + "5a".repeat(32);
    const t0 = performance.now();
    const indices = new Map(
      table.map((p) => [p.name, sliceIndices(seed, p.name, p.numel, hp.compression)]),
    );
    let k = 0;
    for (const v of indices.values()) k += v.length;
    const bytes = k * 4;
    say(
      `slices  preset=${hp.preset} tensors=${table.length} compression=${hp.compression} ` +
        `values=${k} (${(bytes / 1e6).toFixed(1)} MB f32); indices in ${
          (performance.now() - t0).toFixed(0)
        } ms`,
    );

    // gather / scatter vs a TypedArray.set copy of the same bytes, tensor by tensor.
    let slice: Tensors = new Map();
    const gFreshMs = best(3, () => (slice = gather(params, indices)));
    const gMs = best(3, () => (slice = gather(params, indices, slice)));
    const sMs = best(3, () => scatter(params, indices, slice));
    const srcs = [...slice.values()];
    const dsts = srcs.map((s) => new Float32Array(s.length));
    const cMs = best(3, () => srcs.forEach((s, i) => dsts[i]!.set(s)));
    // The hardware bound: a gather reads every cache line holding an index (64 bytes for
    // 4 useful ones once compression >= 16); streaming those lines sequentially is the
    // best any gather can do.
    let lineBytes = 0;
    for (const p of table) {
      lineBytes += Math.min(p.numel * 4, indices.get(p.name)!.length * 64);
    }
    const big = buffers.get(Math.max(...buffers.keys()))!;
    let sink = 0;
    const lMs = best(3, () => {
      for (let i = 0; i < big.length; i += 16) sink += big[i]!;
    }) * lineBytes / (big.length * 4);
    out.line_stream_checksum = sink; // keeps the streaming loop observable
    const gbs = (ms: number) => bytes / ms / 1e6;
    out.gather_gb_s = +gbs(gMs).toFixed(2);
    out.gather_fresh_gb_s = +gbs(gFreshMs).toFixed(2);
    out.scatter_gb_s = +gbs(sMs).toFixed(2);
    out.copy_gb_s = +gbs(cMs).toFixed(2);
    out.gather_ratio = +(cMs / gMs).toFixed(3);
    out.scatter_ratio = +(cMs / sMs).toFixed(3);
    out.cache_lines_mb = +(lineBytes / 1e6).toFixed(0);
    out.gather_vs_line_stream = +(lMs / gMs).toFixed(2);
    say(
      `  gather  ${out.gather_gb_s} GB/s (fresh arrays ${out.gather_fresh_gb_s})  scatter ${out.scatter_gb_s} GB/s  ` +
        `vs TypedArray.set ${out.copy_gb_s} GB/s: ratio ${out.gather_ratio}x / ${out.scatter_ratio}x (target >= 0.5x)`,
    );
    say(
      `  hardware bound: the gather touches ${out.cache_lines_mb} MB of cache lines; streaming them ` +
        `takes ${lMs.toFixed(0)} ms vs gather ${
          gMs.toFixed(0)
        } ms: ${out.gather_vs_line_stream}x of the bound`,
    );

    // Keys: a signer from @polkadot (sr25519).
    const { Keyring } = await import("@polkadot/keyring");
    const { cryptoWaitReady } = await import("@polkadot/util-crypto");
    await cryptoWaitReady();
    const kp = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//Alice");
    const signer = { address: kp.address, sign: (m: Uint8Array) => kp.sign(m) };
    const msg = new Uint8Array(32).fill(7);
    let sig: Uint8Array = new Uint8Array(64);
    const signMs = best(20, () => (sig = kp.sign(msg)));
    const verifyMs = best(20, () => void kp.verify(msg, sig, kp.publicKey));
    out.sign_ms = +signMs.toFixed(2);
    out.verify_ms = +verifyMs.toFixed(2);
    say(`  sr25519 sign ${out.sign_ms} ms  verify ${out.verify_ms} ms`);

    // Codec: encode (hash + sign) and full validation (hash, verify, finite check).
    const meta = {
      kind: "delta" as const,
      window: 1,
      hotkey: kp.address,
      fingerprint: modelFingerprint(hp.model),
      version: DERIVATION_VERSION,
      loss: 3.5,
      tokens: 1 << 20,
      batches: 8,
    };
    const expect = {
      table,
      indices,
      fingerprint: meta.fingerprint,
      window: 1,
      kind: "delta" as const,
      hotkey: kp.address,
    };
    let file: Uint8Array = new Uint8Array(0);
    for (const dtype of ["F32", "BF16"] as SliceDtype[]) {
      const eMs = best(2, () => (file = encodeSlice(slice, meta, signer, dtype)));
      const dMs = best(2, () => void decodeSlice(file, expect));
      const key = dtype.toLowerCase();
      out[`encode_${key}_gb_s`] = +(file.length / eMs / 1e6).toFixed(2);
      out[`decode_${key}_gb_s`] = +(file.length / dMs / 1e6).toFixed(2);
      out[`file_${key}_mb`] = +(file.length / 1e6).toFixed(1);
      say(
        `  ${dtype.padEnd(4)} file ${out[`file_${key}_mb`]} MB  encode ${
          out[`encode_${key}_gb_s`]
        } GB/s ` +
          `(${eMs.toFixed(0)} ms)  validate+decode ${out[`decode_${key}_gb_s`]} GB/s (${
            dMs.toFixed(0)
          } ms)`,
      );
    }
    file = encodeSlice(slice, meta, signer, "F32");

    // Store: one slice up and down through a local S3 server vs a local file.
    const srv = startBenchS3("bench");
    const dir = await Deno.makeTempDir({ prefix: "boltzmann-bench-" });
    try {
      const s3 = new S3Store({
        bucket: "bench",
        endpoint: srv.endpoint,
        credentials: BENCH_CREDS,
      });
      const opts = { maxBytes: file.length, timeoutMs: 120_000 };
      const upMs = await bestAsync(2, () => s3.put("slice", file));
      const downMs = await bestAsync(2, async () => void (await s3.get("slice", opts)));
      const fwMs = await bestAsync(2, () => Deno.writeFile(`${dir}/slice`, file));
      const frMs = await bestAsync(2, async () => void (await Deno.readFile(`${dir}/slice`)));
      const mbs = (ms: number) => +(file.length / ms / 1e3).toFixed(0);
      Object.assign(out, {
        s3_upload_mb_s: mbs(upMs),
        s3_download_mb_s: mbs(downMs),
        file_write_mb_s: mbs(fwMs),
        file_read_mb_s: mbs(frMs),
      });
      say(
        `  local S3 (bench/s3_server.ts, SigV4 verified) upload ${out.s3_upload_mb_s} MB/s  download ` +
          `${out.s3_download_mb_s} MB/s  vs local file write ${out.file_write_mb_s} MB/s  read ${out.file_read_mb_s} MB/s`,
      );
    } finally {
      await srv.close();
      await Deno.remove(dir, { recursive: true });
    }

    // BF16 fidelity of the validator's score cos(δ, g): δ correlated with g at several levels.
    const n = 1 << 20;
    const g = normals(n, 1), noise = normals(n, 2);
    let worst = 0;
    for (const rho of [0.01, 0.1, 0.5, 0.9]) {
      const d = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        d[i] = (rho * g[i]! + Math.sqrt(1 - rho * rho) * noise[i]!) * 1e-4;
      }
      const db = bf16ToF32(f32ToBf16(d));
      worst = Math.max(worst, Math.abs(cos(db, g) - cos(d, g)));
    }
    out.bf16_score_abs_error_max = +worst.toExponential(2);
    say(
      `  BF16 deltas: |score(bf16) - score(f32)| <= ${out.bf16_score_abs_error_max} (cos, 1M values)`,
    );
    if (json) console.log(JSON.stringify(out));
    return 0;
  },
};
