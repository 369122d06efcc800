/**
 * Builds what a miner or validator runs with from flags and the environment: hyper-
 * parameters, hotkey, chain connection, stores, dataset, trainer, starting parameters,
 * metrics endpoint. Shared by `boltzmann miner` and `boltzmann validator`.
 *
 * @module
 */
import type { ParseArgsOptionsConfig } from "node:util";
import { type Flags, int, NETWORK_FLAGS, oneOf, str, UsageError } from "./args.ts";
import { hparamsFromFlags, loadEnv } from "./config.ts";
import { ENGINE_FLAGS, engineOptions } from "./engine.ts";
import { DATASET_FLAGS, datasetFromFlags } from "./dataset.ts";
import { modelFingerprint } from "../hparams.ts";
import { paramTable, type Tensors } from "../model/params.ts";
import { initParams } from "../model/init.ts";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.ts";
import { Metrics } from "../metrics.ts";
import { type MetricsServer, serveMetrics } from "./metrics_server.ts";
import { getLogger } from "../log.ts";
import {
  committedLocation,
  readKeysEnv,
  resolveStore,
  type S3Env,
  s3Env,
} from "../store/resolve.ts";
import {
  type BucketLocation,
  type CommitmentPolicy,
  CommitmentRejected,
  encodeCommitment,
  parseCommitment,
  policyFor,
} from "../chain/commitment.ts";
import { peerStores, screenChain } from "./commitments.ts";
import type { Store } from "../store/mod.ts";
import { createTrainer } from "../train/trainer.ts";
import {
  type Chain,
  connectSubtensor,
  defaultWalletPath,
  type Hotkey,
  loadHotkey,
  NETWORKS,
} from "../chain/mod.ts";
import { listPeers } from "../roles/exchange.ts";
import type { RoleDeps } from "../roles/miner.ts";
import { loadLatestCheckpoint } from "../roles/checkpoints.ts";

const log = getLogger(["boltzmann", "cli"]);

/** Flags of `miner` and `validator`. */
export const PARTICIPANT_FLAGS: ParseArgsOptionsConfig = {
  ...NETWORK_FLAGS,
  ...ENGINE_FLAGS,
  ...DATASET_FLAGS,
  metrics: { type: "string" },
  "max-windows": { type: "string" },
  checkpoint: { type: "string" },
  dtype: { type: "string" },
  "state-dir": { type: "string" },
};

/** Help lines for {@link PARTICIPANT_FLAGS}. */
export const PARTICIPANT_USAGE = [
  "  --wallet.name N --wallet.hotkey H   the hotkey that signs (btcli layout)",
  "  --wallet.path P                     wallets folder (default ~/.bittensor/wallets)",
  "  --subtensor.network finney|test|local, or --subtensor.chain_endpoint ws://host:port",
  "  --netuid N                          the subnet (required)",
  "  --bucket B                          our bucket: s3://name[/prefix], file:///abs/dir, or a name",
  "  --preset tiny|seed, --hparams FILE  hyper-parameters (all peers must agree)",
  "  --device cpu|cuda, --threads N      compute",
  "  --dataset embedded|fineweb          data source (see `boltzmann data --help`)",
  "  --checkpoint DIR                    start from this HF checkpoint (default: the lead",
  "                                      validator's newest, else the deterministic init)",
  "  --dtype f32|bf16                    slice element type (default f32)",
  "  --state-dir DIR                     our model after each window, to resume after a restart",
  "                                      (default ~/.cache/boltzmann/state/<hotkey>)",
  "  --metrics HOST:PORT                 serve Prometheus metrics",
  "  --max-windows N                     stop after N windows",
  "  --json --log-level L --log-format text|json",
  "Environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION (or .env);",
  "  BOLTZMANN_READ_ACCESS_KEY_ID, BOLTZMANN_READ_SECRET_ACCESS_KEY: read-only keys committed",
  "  on chain for peers (public: anyone can read them)",
];

/** Everything the role loops take, built from flags, and what the CLI needs besides. */
export interface Participant extends RoleDeps<Hotkey, Chain> {
  /** Saves the model after window `w` into the state directory (atomic). */
  saveState(w: number, params: Tensors): Promise<void>;
  maxWindows?: number;
  dtype: "F32" | "BF16";
  close(): Promise<void>;
}

/** A `--bucket` value with a local directory made an absolute `file://` URL. */
export function bucketLocation(bucket: string): string {
  if (bucket.startsWith("file://")) return bucket;
  if (bucket.startsWith("/") || bucket.startsWith(".")) {
    Deno.mkdirSync(bucket, { recursive: true });
    return `file://${Deno.realPathSync(bucket)}`;
  }
  return bucket.startsWith("s3://") ? bucket : `s3://${bucket}`;
}

/**
 * The commitment text of our bucket (`own` as {@link bucketLocation} returns it), checked
 * as peers on this network will check it.
 * @throws {RangeError} naming why peers would refuse it
 */
export function ourCommitment(
  own: string,
  s3: S3Env,
  read: BucketLocation["read"],
  policy: CommitmentPolicy,
): string {
  const text = encodeCommitment(committedLocation(own, s3, read));
  try {
    parseCommitment(text, policy);
  } catch (e) {
    if (!(e instanceof CommitmentRejected)) throw e;
    throw new RangeError(
      `Peers on this network would refuse our bucket commitment (${e.reason}): ${e.detail}; public networks need an https endpoint on a public host`,
    );
  }
  return text;
}

/**
 * Builds a participant. The caller must `close()` it.
 * @throws {UsageError} on missing or bad flags
 */
export async function buildParticipant(flags: Flags): Promise<Participant> {
  const hp = await hparamsFromFlags(flags);
  const env = loadEnv();
  const netuidFlag = str(flags, "netuid");
  if (netuidFlag === undefined) throw new UsageError("Missing --netuid N: the subnet to join");
  const netuid = int(flags, "netuid", 0, 0, 65535);
  const bucket = str(flags, "bucket");
  if (!bucket) {
    throw new UsageError("Missing --bucket: s3://name, file:///abs/dir, or a bucket name");
  }
  const maxWindows = flags["max-windows"] === undefined
    ? undefined
    : int(flags, "max-windows", 0, 1);
  const dtype = oneOf(flags, "dtype", ["f32", "bf16"] as const, "f32") === "bf16" ? "BF16" : "F32";
  const network = str(flags, "subtensor.network");
  if (network !== undefined && !(NETWORKS as readonly string[]).includes(network)) {
    throw new UsageError(
      `Invalid --subtensor.network '${network}': expected one of ${NETWORKS.join(", ")}`,
    );
  }
  let s3;
  try {
    s3 = s3Env(env);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const policy = policyFor(network, str(flags, "subtensor.chain_endpoint"));
  let store: Store, location: string;
  try {
    const own = bucketLocation(bucket);
    store = resolveStore(own, s3);
    location = ourCommitment(own, s3, readKeysEnv(env), policy);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const openStore = peerStores(policy);
  const key = await loadHotkey({
    walletPath: str(flags, "wallet.path") ?? env("BT_WALLET_PATH") ??
      defaultWalletPath(env("HOME") ?? "."),
    name: str(flags, "wallet.name", "default")!,
    hotkey: str(flags, "wallet.hotkey", "default")!,
  });
  const metrics = new Metrics();
  // Roles see only commitments that pass the network's policy.
  const chain = screenChain(
    await connectSubtensor({
      network: network as (typeof NETWORKS)[number] | undefined,
      endpoint: str(flags, "subtensor.chain_endpoint"),
    }),
    policy,
    metrics,
  ).chain;
  const dataset = await datasetFromFlags(flags, hp, env);
  const trainer = await createTrainer(hp, engineOptions(flags));
  let params: Tensors | null = null;
  const stateDir = str(flags, "state-dir") ??
    `${env("XDG_CACHE_HOME") ?? `${env("HOME") ?? "."}/.cache`}/boltzmann/state/${key.ss58}`;
  const ckpt = str(flags, "checkpoint");
  if (ckpt) {
    params = (await loadCheckpoint(ckpt)).params;
    log.info(`Starting from checkpoint ${ckpt}`);
  } else {
    // The newer of our own saved state and the lead validator's published checkpoint.
    const local = await loadState(stateDir).catch((e) => {
      log.warn(`Ignoring saved state in ${stateDir}: ${(e as Error).message}`);
      return null;
    });
    const lead = await loadLatestCheckpoint(hp, await listPeers(chain, netuid), openStore).catch(
      (e) => {
        log.warn(`No usable published checkpoint: ${(e as Error).message}`);
        return null;
      },
    );
    const pick = local && (!lead || local.window >= lead.window) ? local : lead;
    if (pick) {
      params = pick.params;
      log.info(
        `Resuming from ${
          pick === local ? `our state in ${stateDir}` : `${lead!.from}'s checkpoint`
        } of window ${pick.window}`,
      );
    }
  }
  params ??= initParams(hp.model, 0);
  if (paramTable(hp.model).some((p) => params!.get(p.name)?.length !== p.numel)) {
    throw new UsageError(
      "The checkpoint does not match the hyper-parameters' model: check --preset/--hparams",
    );
  }
  log.info(
    `Model ${hp.preset}: ${paramTable(hp.model).length} tensors, fingerprint ${
      modelFingerprint(hp.model)
    }`,
  );
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let server: MetricsServer | null = null;
  const m = str(flags, "metrics");
  if (m) {
    server = serveMetrics(metrics, m);
    log.info(`Metrics on ${server.url}`);
  }
  return {
    hp,
    chain,
    netuid,
    key,
    signer: { address: key.ss58, sign: (msg) => key.sign(msg) },
    store,
    location,
    openStore,
    dataset,
    trainer,
    params,
    saveState: async (w, p) => {
      await saveCheckpoint(`${stateDir}/model`, hp.model, p);
      await Deno.writeTextFile(`${stateDir}/window.json.tmp`, JSON.stringify({ window: w }));
      await Deno.rename(`${stateDir}/window.json.tmp`, `${stateDir}/window.json`);
    },
    metrics,
    signal: ac.signal,
    maxWindows,
    dtype,
    async close() {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
      await server?.close();
      await trainer.close();
      await chain.close();
    },
  };
}

/** Our saved model and the window it is from, or null when there is none. */
async function loadState(dir: string): Promise<{ window: number; params: Tensors } | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/window.json`);
  } catch {
    return null;
  }
  const w = JSON.parse(text)?.window;
  if (!Number.isSafeInteger(w) || w < 0) throw new Error("window.json holds no window number");
  return { window: w, params: (await loadCheckpoint(`${dir}/model`)).params };
}
