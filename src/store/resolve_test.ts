/**
 * Both ends of the bucket commitment on real local S3 servers: a miner writes with its own
 * keys and commits its location; a peer opens the bucket from the commitment text alone.
 */
import assert from "node:assert/strict";
import { startS3, STRICT_CREDS } from "../../tests/_s3servers.ts";
import { committedLocation, readKeysEnv, resolveStore, storeForLocation } from "./resolve.ts";
import { StoreError } from "./mod.ts";
import { encodeCommitment, parseCommitment } from "../chain/commitment.ts";

const HK = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const OPTS = { maxBytes: 1 << 20, timeoutMs: 10_000 };

Deno.test("a peer reads a miner's bucket on a SigV4 server using only what the miner committed", async () => {
  const s3 = await startS3(["miner-bucket"], true);
  try {
    // The miner: its write keys and endpoint from its environment, a prefix in --bucket.
    const env = { endpoint: s3.endpoint, credentials: STRICT_CREDS };
    const own = resolveStore("s3://miner-bucket/run-1", env);
    assert.equal(own.location, "s3://miner-bucket/run-1");
    const key = `delta-7-${HK}.safetensors`;
    const bytes = new TextEncoder().encode("a signed slice");
    await own.put(key, bytes);
    const text = encodeCommitment(committedLocation("s3://miner-bucket/run-1", env, STRICT_CREDS));
    assert.equal(
      text,
      `b1;e=${s3.endpoint};b=miner-bucket;p=run-1;k=${STRICT_CREDS.accessKeyId}:${STRICT_CREDS.secretAccessKey}`,
    );

    // The peer: nothing but the text.
    const peer = storeForLocation(parseCommitment(text, "local"));
    assert.deepEqual(await peer.get(key, OPTS), bytes);
    assert.deepEqual((await peer.list("delta-")).map((o) => o.key), [key]);
    // The prefix is real: the object is not at the bucket's root.
    const root = resolveStore("s3://miner-bucket", env);
    assert.equal(await root.get(key, OPTS), null);
    assert.deepEqual((await root.list("run-1/")).map((o) => o.key), [`run-1/${key}`]);

    // The peer signs with the committed keys: a wrong committed secret gets a 403.
    const wrong = { accessKeyId: STRICT_CREDS.accessKeyId, secretAccessKey: "WRONGSECRET" };
    const bad = storeForLocation(
      parseCommitment(
        encodeCommitment(committedLocation("s3://miner-bucket/run-1", env, wrong)),
        "local",
      ),
    );
    await assert.rejects(
      bad.get(key, OPTS),
      (e) => e instanceof StoreError && /403/.test(e.message),
    );
  } finally {
    await s3.close();
  }
});

Deno.test("a public bucket (no keys committed) is read anonymously", async () => {
  const s3 = await startS3(["open-bucket"]);
  try {
    const env = { endpoint: s3.endpoint, credentials: STRICT_CREDS, region: "eu-central-1" };
    await resolveStore("open-bucket", env).put("checkpoint-3.json", new Uint8Array([1, 2, 3]));
    const text = encodeCommitment(committedLocation("open-bucket", env));
    assert.equal(text, `b1;e=${s3.endpoint};b=open-bucket;g=eu-central-1`);
    const peer = storeForLocation(parseCommitment(text, "local"));
    assert.deepEqual(await peer.get("checkpoint-3.json", OPTS), new Uint8Array([1, 2, 3]));
  } finally {
    await s3.close();
  }
});

Deno.test("committedLocation: AWS, R2 and directories become compact commitments", () => {
  const acct = "0123456789abcdef0123456789abcdef";
  assert.equal(encodeCommitment(committedLocation("s3://b-1", {})), "b1;b=b-1");
  assert.equal(
    encodeCommitment(committedLocation("b-1", { region: "eu-west-1" })),
    "b1;b=b-1;g=eu-west-1",
  );
  assert.equal(
    encodeCommitment(
      committedLocation("b-1", { endpoint: "https://s3.eu-west-1.amazonaws.com/" }),
    ),
    "b1;b=b-1;g=eu-west-1",
  );
  assert.equal(
    encodeCommitment(
      committedLocation("b-1", {
        endpoint: `https://${acct}.r2.cloudflarestorage.com`,
        region: "auto",
      }),
    ),
    `b1;r2=${acct};b=b-1`,
  );
  assert.equal(encodeCommitment(committedLocation("file:///tmp/m0/")), "b1;e=file:///tmp/m0");
  assert.throws(
    () => committedLocation("b-1", { endpoint: "https://h.example.org/sub" }),
    /no path/,
  );
  assert.throws(() => committedLocation("s3://b-1/../x"), /bad_prefix/);
  assert.throws(() => committedLocation("s3://B"), /Invalid bucket/);
  assert.throws(
    () => readKeysEnv((k) => (k === "BOLTZMANN_READ_ACCESS_KEY_ID" ? "x" : undefined)),
    /Incomplete read keys/,
  );
});
