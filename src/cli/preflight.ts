/**
 * The preflight `boltzmann doctor` runs with wallet, network and bucket flags: a list of
 * PASS/FAIL checks a user reads before their first window — the key (loads, ss58, a
 * sign/verify self-test), the engine, the chain (endpoint, runtime, extensions, subnet
 * parameters, registration, permit and stake, our commitment) and the bucket (put, get,
 * delete a probe object; read it back as a peer would, from the commitment alone).
 *
 * A check that cannot run because an earlier one failed is `skip`, not FAIL; the
 * earlier FAIL carries the reason.
 *
 * @module
 */
import { decodeAddress } from "@polkadot/util-crypto";
import { u8aEq } from "@polkadot/util";
import type { Hotkey } from "../chain/mod.ts";
import { connectSubtensor, type NetworkName } from "../chain/subtensor.ts";
import { loadHotkey } from "../chain/wallet.ts";
import type { SubtensorChain } from "../chain/subtensor.ts";
import { selfTest } from "../chain/wallet.ts";
import { neuronOf, runtimeOf, subnetParamsOf } from "../chain/facts.ts";
import {
  CommitmentRejected,
  describeLocation,
  parseCommitment,
  policyFor,
} from "../chain/commitment.ts";
import { readKeysEnv, resolveStore, s3Env, storeForLocation } from "../store/resolve.ts";
import type { Store } from "../store/mod.ts";
import { bucketLocation, ourCommitment } from "./commitments.ts";
import { probeProvider } from "../onnx/probe.ts";

/** One line of the preflight. */
export interface Check {
  name: string;
  status: "pass" | "fail" | "skip";
  detail: string;
}

/** What to check. Chain checks run when `network`, `endpoint` or `netuid` is given. */
export interface PreflightOptions {
  wallet: { walletPath: string; name: string; hotkey: string };
  network?: NetworkName;
  endpoint?: string;
  netuid?: number;
  bucket?: string;
  /** Environment lookup (S3 settings, read keys). */
  env: (key: string) => string | undefined;
  /** Run the ONNX Runtime probe (default true when chain or bucket checks run). */
  engine?: boolean;
  /** Connect timeout in ms (default 15 s). */
  timeoutMs?: number;
}

/**
 * The key self-test (wallet.ts's `selfTest`: a test message signed with the keyfile's
 * secret must verify against its public key), plus: the ss58 address encodes that key.
 * @returns null when it passes, else the reason and the fix
 */
export function signVerify(key: Hotkey): string | null {
  if (!u8aEq(decodeAddress(key.ss58), key.publicKey)) {
    return `the ss58 address ${key.ss58} does not encode the key's public key`;
  }
  const why = selfTest(key);
  return why === undefined
    ? null
    : `${why}: its stored public key does not belong to its secret; regenerate the hotkey file (btcli wallet regen-hotkey)`;
}

const msg = (e: unknown) => (e as Error).message ?? String(e);

/** Runs every check that the options ask for, in order. Never throws. */
export async function preflight(o: PreflightOptions): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: string, status: Check["status"], detail: string) =>
    checks.push({ name, status, detail });
  const wantChain = o.network !== undefined || o.endpoint !== undefined ||
    o.netuid !== undefined;

  // The key.
  let key: Hotkey | null = null;
  const path = `${o.wallet.walletPath}/${o.wallet.name}/hotkeys/${o.wallet.hotkey}`;
  try {
    // The self-test is reported as its own check below.
    key = await loadHotkey({ ...o.wallet, selfTest: false });
    add("hotkey keyfile", "pass", `${key.ss58} (${path})`);
  } catch (e) {
    add("hotkey keyfile", "fail", msg(e));
  }
  if (key) {
    const why = signVerify(key);
    add("sign/verify self-test", why ? "fail" : "pass", why ?? "a signed test message verifies");
    if (why) key = null; // a key that cannot sign is no key for the checks below
  } else {
    add("sign/verify self-test", "skip", "no key");
  }
  if (!wantChain && o.bucket === undefined) return checks;

  if (o.engine ?? true) {
    const [cpu, cuda] = [await probeProvider("cpu"), await probeProvider("cuda")];
    add(
      "engine",
      cpu.ok ? "pass" : "fail",
      `cpu ${
        cpu.ok ? `ran a graph in ${Math.round(cpu.ms ?? 0)} ms` : `unavailable: ${cpu.error}`
      }; cuda ${cuda.ok ? "ran a graph" : "unavailable (see `boltzmann doctor`)"}`,
    );
  }

  const policy = policyFor(o.network, o.endpoint);
  // Our bucket and the commitment peers will read it from.
  let own: Store | null = null, ours: string | undefined;
  if (o.bucket !== undefined) {
    try {
      const loc = bucketLocation(o.bucket);
      const s3 = s3Env(o.env);
      own = resolveStore(loc, s3);
      ours = ourCommitment(loc, s3, readKeysEnv(o.env), policy);
    } catch (e) {
      own = null;
      add("bucket commitment", "fail", msg(e));
    }
  }

  if (wantChain) await chainChecks(o, key, ours, policy, add);

  if (o.bucket !== undefined) {
    if (own && ours) await bucketChecks(own, ours, policy, add);
    else {
      add("bucket writable", "skip", "no usable --bucket");
      add("bucket readable by peers", "skip", "no usable --bucket");
    }
  }
  return checks;
}

type Add = (name: string, status: Check["status"], detail: string) => void;

async function chainChecks(
  o: PreflightOptions,
  key: Hotkey | null,
  ours: string | undefined,
  policy: "public" | "local",
  add: Add,
): Promise<void> {
  const names = [
    "runtime",
    "transaction extensions",
    "commit-reveal",
    "weights rate limit and version key",
    "hotkey registered",
    "permit and stake",
    "our commitment",
  ];
  let chain: SubtensorChain;
  try {
    chain = await connectSubtensor({
      network: o.network,
      endpoint: o.endpoint,
      timeoutMs: o.timeoutMs,
    });
  } catch (e) {
    add("endpoint answers", "fail", msg(e));
    for (const n of names) add(n, "skip", "no chain");
    return;
  }
  try {
    try {
      add("endpoint answers", "pass", `${chain.endpoint} at block ${await chain.currentBlock()}`);
    } catch (e) {
      add("endpoint answers", "fail", msg(e));
    }
    try {
      const rt = await runtimeOf(chain);
      add("runtime", "pass", `${rt.specName} spec ${rt.specVersion}`);
      const bad = rt.extensions.filter((x) => !x.understood);
      add(
        "transaction extensions",
        bad.length ? "fail" : "pass",
        bad.length
          ? `not understood: ${bad.map((x) => `${x.name} (${x.reason ?? "unknown"})`).join(", ")}`
          : `all ${rt.extensions.length} understood (${
            rt.extensions.map((x) => x.name).join(", ")
          })`,
      );
    } catch (e) {
      add("runtime", "fail", msg(e));
      add("transaction extensions", "skip", "no runtime");
    }
    if (o.netuid === undefined) {
      for (const n of names.slice(2)) add(n, "skip", "no --netuid");
      return;
    }
    const netuid = o.netuid;
    let rateLimit: number | undefined;
    try {
      const p = await subnetParamsOf(chain, netuid);
      rateLimit = p.weightsRateLimit;
      add(
        "commit-reveal",
        "pass",
        p.commitRevealEnabled
          ? `on, reveal period ${p.revealPeriodEpochs} epoch(s) of ${p.tempo + 1} blocks`
          : `off (tempo ${p.tempo})`,
      );
      add(
        "weights rate limit and version key",
        "pass",
        `rate limit ${p.weightsRateLimit} blocks, version key ${p.weightsVersionKey}`,
      );
    } catch (e) {
      add("commit-reveal", "fail", msg(e));
      add("weights rate limit and version key", "skip", "no subnet parameters");
    }
    if (!key) {
      for (const n of names.slice(4)) add(n, "skip", "no usable key");
      return;
    }
    try {
      const n = await neuronOf(chain, netuid, key.ss58);
      if (!n) {
        add(
          "hotkey registered",
          "fail",
          `${key.ss58} is not registered on subnet ${netuid}; register it first (btcli subnet register --netuid ${netuid} --wallet.name ${o.wallet.name} --wallet.hotkey ${o.wallet.hotkey})`,
        );
        add("permit and stake", "skip", "not registered");
      } else {
        add("hotkey registered", "pass", `uid ${n.uid} on subnet ${netuid}`);
        add(
          "permit and stake",
          "pass",
          `validator permit ${n.validatorPermit ? "yes" : "no"}, stake ${formatRao(n.stake)}` +
            (n.validatorPermit && n.stake > 0n ? " (can validate)" : " (a miner needs neither)") +
            (n.lastUpdate > 0 && rateLimit !== undefined
              ? `; last weights update at block ${n.lastUpdate}, next allowed at block ${
                n.lastUpdate + rateLimit
              }`
              : ""),
        );
      }
    } catch (e) {
      add("hotkey registered", "fail", msg(e));
      add("permit and stake", "skip", "no neuron");
    }
    try {
      const text = (await chain.commitments(netuid)).get(key.ss58);
      if (text === undefined) {
        if (ours) {
          add(
            "our commitment",
            "pass",
            `none yet; boltzmann miner|validator commits ${JSON.stringify(ours)} at start`,
          );
        } else {
          add(
            "our commitment",
            "fail",
            `${key.ss58} has no bucket commitment on subnet ${netuid}; pass --bucket to check the one boltzmann will commit`,
          );
        }
      } else {
        try {
          const loc = parseCommitment(text, policy);
          const note = ours && ours !== text
            ? `; differs from --bucket, the next start re-commits ${JSON.stringify(ours)}`
            : "";
          add("our commitment", "pass", `${describeLocation(loc)}${note}`);
        } catch (e) {
          if (!(e instanceof CommitmentRejected)) throw e;
          add(
            "our commitment",
            "fail",
            `peers refuse ${JSON.stringify(text.slice(0, 64))} (${e.reason}): ${e.detail}`,
          );
        }
      }
    } catch (e) {
      add("our commitment", "fail", msg(e));
    }
  } finally {
    await chain.close();
  }
}

async function bucketChecks(
  own: Store,
  ours: string,
  policy: "public" | "local",
  add: Add,
): Promise<void> {
  const rnd = crypto.getRandomValues(new Uint8Array(8));
  const key = `doctor-probe-${[...rnd].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  const body = crypto.getRandomValues(new Uint8Array(64));
  const opts = { maxBytes: 1024, timeoutMs: 15_000 };
  const same = (a: Uint8Array | null) => a !== null && u8aEq(a, body);
  let written = false;
  try {
    await own.put(key, body);
    written = true;
    if (!same(await own.get(key, opts))) throw new Error(`GET '${key}' returned other bytes`);
  } catch (e) {
    add("bucket writable", "fail", `${own.location}: ${msg(e)}`);
    add("bucket readable by peers", "skip", "nothing written");
    if (written) await own.delete(key).catch(() => {});
    return;
  }
  let peerRead: string | null = null;
  try {
    const peer = storeForLocation(parseCommitment(ours, policy));
    if (!same(await peer.get(key, opts))) {
      peerRead = `GET '${key}' from the committed location found nothing or other bytes`;
    }
  } catch (e) {
    peerRead = msg(e);
  }
  try {
    await own.delete(key);
    if (await own.get(key, opts) !== null) throw new Error(`'${key}' is still there after DELETE`);
    add("bucket writable", "pass", `${own.location}: put, get and delete of a probe object`);
  } catch (e) {
    add("bucket writable", "fail", `${own.location}: delete: ${msg(e)}`);
  }
  const where = describeLocation(parseCommitment(ours, policy));
  add(
    "bucket readable by peers",
    peerRead ? "fail" : "pass",
    peerRead
      ? `${where}: ${peerRead}; make the bucket public or set BOLTZMANN_READ_ACCESS_KEY_ID/BOLTZMANN_READ_SECRET_ACCESS_KEY`
      : `${where}: read back using only the commitment`,
  );
}

/** Rao as tokens with up to 9 decimals (1 token = 10⁹ rao). */
export function formatRao(rao: bigint): string {
  const neg = rao < 0n, a = neg ? -rao : rao;
  const frac = (a % 1_000_000_000n).toString().padStart(9, "0").replace(/0+$/, "");
  return `${neg ? "-" : ""}${a / 1_000_000_000n}${frac ? `.${frac}` : ""}`;
}

/** The PASS/FAIL list and a summary line. */
export function formatChecks(checks: readonly Check[]): string {
  const w = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.map((c) =>
    `${c.status.toUpperCase().padEnd(4)}  ${c.name.padEnd(w)}  ${c.detail}`
  );
  const n = (s: Check["status"]) => checks.filter((c) => c.status === s).length;
  lines.push(
    `${n("fail") ? "FAIL" : "PASS"}: ${n("pass")} passed, ${n("fail")} failed, ${
      n("skip")
    } skipped`,
  );
  return lines.join("\n");
}
