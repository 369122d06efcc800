/**
 * The commitment edge as miners, validators and `inspect` use it: our commitment built
 * from `--bucket` and the environment, peers listed through the screened chain, and a
 * peer's bucket on a local S3 server opened from its commitment alone.
 */
import assert from "node:assert/strict";
import { formatRefused, ourCommitment, peerStores, screenChain } from "./commitments.ts";
import { listPeers } from "../roles/exchange.ts";
import { Metrics } from "../metrics.ts";
import { resolveStore } from "../store/resolve.ts";
import { startS3, STRICT_CREDS } from "../../tests/_s3servers.ts";

const OPTS = { maxBytes: 1 << 20, timeoutMs: 10_000 };

/** A chain of three hotkeys with the given commitments, counting reads. */
function chainWith(commits: Map<string, string>) {
  return {
    reads: 0,
    metagraph: () =>
      Promise.resolve({
        uids: [0, 1, 2],
        hotkeys: ["hk-miner", "hk-private", "hk-old"],
        stake: [0, 0, 0],
        validatorPermit: [false, false, false],
      }),
    commitments(_netuid: number) {
      this.reads++;
      return Promise.resolve(new Map(commits));
    },
  };
}

Deno.test("a validator lists a miner through the screened chain and reads its S3 bucket from the commitment alone", async () => {
  const s3 = await startS3(["miner-b"], true);
  try {
    // The miner writes with its own keys and commits (read keys = its keys here: the
    // SigV4 test server knows one pair).
    const env = { endpoint: s3.endpoint, credentials: STRICT_CREDS };
    await resolveStore("s3://miner-b/w", env).put("scores-1-hk.json", new Uint8Array([7]));
    const text = ourCommitment("s3://miner-b/w", env, STRICT_CREDS, "local");
    const raw = chainWith(
      new Map([
        ["hk-miner", text],
        ["hk-private", "b1;e=https://192.168.1.9;b=stolen"],
        ["hk-old", "s3://legacy"],
      ]),
    );
    const metrics = new Metrics();
    const screened = screenChain(raw, "local", metrics);
    const peers = await listPeers(screened.chain, 1);
    assert.deepEqual(peers.map((p) => p.hotkey), ["hk-miner", "hk-private"]);
    assert.deepEqual(screened.refused().map((r) => r.reason), ["bad_format"]);
    assert.equal(raw.reads, 1); // `this` inside the wrapped chain is the chain itself
    const got = await peerStores("local")(peers[0]!.location).get("scores-1-hk.json", OPTS);
    assert.deepEqual(got, new Uint8Array([7]));

    // On a public network the private endpoint is refused too, and counted by reason.
    const pub = screenChain(raw, "public", metrics);
    assert.deepEqual((await listPeers(pub.chain, 1)).map((p) => p.hotkey), []);
    assert.deepEqual(pub.refused().map((r) => [r.hotkey, r.reason]), [
      ["hk-miner", "insecure_endpoint"],
      ["hk-private", "private_endpoint"],
      ["hk-old", "bad_format"],
    ]);
    assert.equal(metrics.get("boltzmann_commitments_refused", { reason: "private_endpoint" }), 1);
    assert.equal(metrics.get("boltzmann_commitments_refused", { reason: "too_long" }), 0);
    assert.match(metrics.render(), /^boltzmann_commitments_refused\{reason="bad_format"\} 1$/m);
  } finally {
    await s3.close();
  }
});

Deno.test("ourCommitment refuses, at start-up, a bucket that peers on the network would refuse", () => {
  const local = { endpoint: "http://127.0.0.1:9000" };
  assert.equal(
    ourCommitment("s3://b-1", local, undefined, "local"),
    "b1;e=http://127.0.0.1:9000;b=b-1",
  );
  assert.throws(
    () => ourCommitment("s3://b-1", local, undefined, "public"),
    /refuse our bucket commitment \(insecure_endpoint\)/,
  );
  assert.throws(
    () => ourCommitment("file:///tmp/m", {}, undefined, "public"),
    /\(file_endpoint\)/,
  );
  assert.equal(ourCommitment("s3://b-1/run", {}, undefined, "public"), "b1;b=b-1;p=run");
});

Deno.test("inspect's refused-commitments section: counts by reason, then one line per hotkey", () => {
  assert.equal(formatRefused([]), "Bucket commitments refused: none");
  const text = formatRefused([
    { hotkey: "hk-b", reason: "private_endpoint", detail: "host is a private address" },
    { hotkey: "hk-c", reason: "bad_format", detail: "old form" },
    { hotkey: "hk-d", reason: "private_endpoint", detail: "host is a loopback address" },
  ]);
  assert.equal(
    text,
    [
      "Bucket commitments refused: 3 (bad_format 1, private_endpoint 2)",
      "  hk-b  private_endpoint: host is a private address",
      "  hk-c  bad_format: old form",
      "  hk-d  private_endpoint: host is a loopback address",
    ].join("\n"),
  );
});
