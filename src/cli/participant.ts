/**
 * Builds what a miner or validator runs with from flags and the environment: hyper-
 * parameters, hotkey, chain connection, stores, dataset, trainer, starting parameters,
 * metrics endpoint. Shared by `boltzmann miner` and `boltzmann validator`.
 *
 * @module
 */
import { type Options, UsageError } from "./args.ts";
import { hparamsFromFlags, loadEnv } from "./config.ts";
import { engineOptions } from "./engine.ts";
import { datasetFromFlags } from "./dataset.ts";
import { connectFromFlags, policyFromFlags, s3FromEnv } from "./connect.ts";
import { modelFingerprint } from "../hparams.ts";
import { paramTable } from "../model/params.ts";
import { Metrics } from "../metrics.ts";
import { type MetricsServer, serveMetrics } from "./metrics_server.ts";
import { getLogger } from "../log.ts";
import { readKeysEnv, resolveStore } from "../store/resolve.ts";
import { bucketLocation, ourCommitment } from "./commitments.ts";
import type { Store } from "../store/mod.ts";
import { createTrainer } from "../train/trainer.ts";
import type { Chain, Hotkey } from "../chain/mod.ts";
import { defaultWalletPath, loadHotkey } from "../chain/wallet.ts";
import type { RoleDeps } from "../roles/miner.ts";
import { startParams } from "../roles/resume.ts";
import { stopOnSignals } from "./stop_signals.ts";

const log = getLogger(["boltzmann", "cli"]);

/** Flag surfaces of `miner` and `validator` (each adds its own). */
export { PARTICIPANT_SURFACES } from "./flags.ts";

/** Everything the role loops take, built from flags, and what the CLI needs besides. */
export interface Participant extends RoleDeps<Hotkey, Chain> {
  maxWindows?: number;
  close(): Promise<void>;
}

/**
 * Builds a participant. The caller must `close()` it.
 * @throws {UsageError} on missing or bad flags
 */
export async function buildParticipant(o: Options): Promise<Participant> {
  const hp = await hparamsFromFlags(o);
  const env = loadEnv();
  o.need("netuid", "the subnet to join");
  o.need("bucket", "s3://name[/prefix], file:///abs/dir, or a bucket name");
  const maxWindows = o.numOpt("max-windows");
  const s3 = s3FromEnv(env);
  let store: Store, location: string;
  try {
    const own = bucketLocation(o.str("bucket"));
    store = resolveStore(own, s3);
    location = ourCommitment(own, s3, readKeysEnv(env), policyFromFlags(o));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const key = await loadHotkey({
    walletPath: o.strOpt("wallet.path") ?? defaultWalletPath(env("HOME") ?? "."),
    name: o.strOpt("wallet.name") ?? "default",
    hotkey: o.strOpt("wallet.hotkey") ?? "default",
  });
  const metrics = new Metrics();
  // A busy node (a loaded machine running a whole devnet) may miss one connect timeout.
  let conn;
  for (let attempt = 1;; attempt++) {
    try {
      conn = await connectFromFlags(o, "the subnet to join", metrics);
      break;
    } catch (e) {
      if (attempt >= 3 || !/timed out/.test((e as Error).message)) throw e;
      log.warn(`${(e as Error).message}; retrying (${attempt} of 2)`);
    }
  }
  const { chain, subtensor, netuid, openStore } = conn;
  const stateDir = o.strOpt("state-dir") ??
    `${env("XDG_CACHE_HOME") ?? `${env("HOME") ?? "."}/.cache`}/boltzmann/state/${key.ss58}`;
  // Our weights go through the chain's rate limit, version key and commit-reveal, with
  // pending commits kept beside our state (and revealed if a previous run left any).
  await subtensor.attachWeights(key, netuid, stateDir);
  const dataset = await datasetFromFlags(o, hp, env);
  const trainer = await createTrainer(hp, engineOptions(o, env));
  const params = await startParams(hp, o.strOpt("checkpoint"));
  if (paramTable(hp.model).some((p) => params.get(p.name)?.length !== p.numel)) {
    throw new UsageError(
      "The checkpoint does not match the hyper-parameters' model: check --preset/--hparams",
    );
  }
  log.info(
    `Model ${hp.preset}: ${paramTable(hp.model).length} tensors, fingerprint ${
      modelFingerprint(hp.model)
    }`,
  );
  const stop = stopOnSignals();
  let server: MetricsServer | null = null;
  const m = o.strOpt("metrics");
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
    metrics,
    signal: stop.signal,
    maxWindows,
    async close() {
      stop.dispose();
      await server?.close();
      await trainer.close();
      await chain.close();
    },
  };
}
