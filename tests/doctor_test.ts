/**
 * `boltzmann doctor` as a preflight (and a peer reading a miner's bucket from the commitment
 * the local chain holds, nothing else): with only wallet flags it checks the key alone
 * (btwallet's privateKey-only fixture and its mismatched twin, and keyfiles written here
 * from the sr25519 maths); against the local chain (spec 218 runtime) and a local S3 server every
 * check passes, and an unregistered hotkey or an unwritable bucket FAILs with its reason.
 */
import assert from "node:assert/strict";
import { sr25519PairFromSeed } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import { encodeAddress } from "@polkadot/util-crypto";
import { connectSubtensor } from "../src/chain/subtensor.ts";
import { startLocalnet } from "../src/chain/localnet.ts";
import { createWallet, loadHotkey } from "../src/chain/wallet.ts";
import { type Check, formatChecks, preflight } from "../src/cli/preflight.ts";
import { startS3 } from "./_s3servers.ts";
import { resolveStore, s3Env, storeForLocation } from "../src/store/resolve.ts";
import { parseCommitment } from "../src/chain/commitment.ts";
import { ourCommitment } from "../src/cli/commitments.ts";
import { cli } from "./_cli.ts";

/** The check names of the README's example `doctor` output (its `PASS  name  detail` lines). */
async function readmeCheckNames(): Promise<string[]> {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  return [...readme.matchAll(/^PASS {2}(\S.*?) {2,}\S/gm)].map((m) => m[1]!);
}

/** Writes a btcli-style hotkey file `<dir>/w/hotkeys/<name>`. */
async function writeKeyfile(dir: string, name: string, json: Record<string, unknown>) {
  await Deno.mkdir(`${dir}/w/hotkeys`, { recursive: true });
  await Deno.writeTextFile(`${dir}/w/hotkeys/${name}`, JSON.stringify(json));
}

/** A privateKey-only keyfile (as `btcli wallet regen_hotkey` writes) for `secret`, claiming `pub`. */
function privateKeyOnly(secret: Uint8Array, pub: Uint8Array) {
  return {
    accountId: u8aToHex(pub),
    publicKey: u8aToHex(pub),
    privateKey: u8aToHex(secret),
    secretPhrase: null,
    secretSeed: null,
    ss58Address: encodeAddress(pub, 42),
  };
}

const byName = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.name, c]));

const FIXTURES = new URL("../src/chain/testdata/", import.meta.url).pathname;
/** btwallet's `test_create_keypair_from_private_key` address (src/chain/testdata/README.md). */
const BTWALLET_SS58 = "5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX";

Deno.test("doctor with only wallet flags: ss58 and PASS for btwallet's privateKey-only key, FAIL for a key whose public key is not its secret's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boltzmann-doctor-" });
  try {
    await Deno.mkdir(`${dir}/w/hotkeys`, { recursive: true });
    for (const f of ["btwallet-privkey", "btwallet-privkey-mismatch"]) {
      await Deno.copyFile(`${FIXTURES}/${f}`, `${dir}/w/hotkeys/${f}`);
    }
    const wallet = (
      h: string,
    ) => ["--wallet.path", dir, "--wallet.name", "w", "--wallet.hotkey", h];
    const good = await cli("doctor", ...wallet("btwallet-privkey"));
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, new RegExp(`^PASS +hotkey keyfile +${BTWALLET_SS58} `, "m"));
    assert.match(good.stdout, /^PASS +sign\/verify self-test/m);
    assert.match(good.stdout, /^PASS: 2 passed, 0 failed, 0 skipped$/m);

    const bad = await cli("doctor", "--json", ...wallet("btwallet-privkey-mismatch"));
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    const rep = JSON.parse(bad.stdout);
    assert.equal(rep.ok, false);
    // Its fields agree with each other (//Alice's address), but its signatures do not verify.
    assert.deepEqual(rep.checks.map((c: Check) => c.status), ["pass", "fail"]);
    assert.match(rep.checks[0].detail, /^5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY /);
    assert.match(rep.checks[1].detail, /does not belong to its secret/);

    // The same with keys made here from the sr25519 maths (polkadot's secret-key form), and
    // a seed keyfile whose stored public key is another key's.
    const a = sr25519PairFromSeed(new Uint8Array(32).fill(1));
    const b = sr25519PairFromSeed(new Uint8Array(32).fill(2));
    await writeKeyfile(dir, "good", privateKeyOnly(a.secretKey, a.publicKey));
    await writeKeyfile(dir, "mismatch", privateKeyOnly(a.secretKey, b.publicKey));
    await writeKeyfile(dir, "seed-mismatch", {
      secretSeed: u8aToHex(new Uint8Array(32).fill(1)),
      publicKey: u8aToHex(b.publicKey),
    });
    const run = async (hotkey: string) =>
      byName(
        await preflight({ wallet: { walletPath: dir, name: "w", hotkey }, env: () => undefined }),
      );
    const ok = await run("good");
    assert.equal(ok["hotkey keyfile"]!.status, "pass");
    assert.match(ok["hotkey keyfile"]!.detail, new RegExp(`^${encodeAddress(a.publicKey, 42)} `));
    assert.equal(ok["sign/verify self-test"]!.status, "pass");
    const mm = await run("mismatch");
    assert.equal(mm["hotkey keyfile"]!.status, "pass");
    assert.equal(mm["sign/verify self-test"]!.status, "fail");
    const seed = await run("seed-mismatch");
    assert.equal(seed["hotkey keyfile"]!.status, "fail");
    assert.match(seed["hotkey keyfile"]!.detail, /does not match its publicKey/);
    assert.equal(seed["sign/verify self-test"]!.status, "skip");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "doctor against the local chain and a local S3 server: PASS for every check; FAIL with the reason when unregistered or unwritable",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "boltzmann-doctor-" });
  const s3 = await startS3(["doctor-b"]);
  const walletPath = `${dir}/wallets`;
  const ours = await createWallet({ walletPath, name: "w", hotkey: "h" });
  await createWallet({ walletPath, name: "w", hotkey: "stranger" });
  const net = await startLocalnet({ port: 0, blockTimeMs: 0, tempo: 10, hotkeys: [ours.hotkey] });
  const env = (k: string) =>
    ({
      AWS_ENDPOINT_URL: s3.endpoint,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    })[k];
  const base = { endpoint: net.endpoint, netuid: net.netuid, env, timeoutMs: 10_000 };
  try {
    // Our commitment on chain, exactly as `boltzmann miner --bucket s3://doctor-b` makes it.
    const chain = await connectSubtensor({ endpoint: net.endpoint });
    const text = ourCommitment("s3://doctor-b", s3Env(env), undefined, "local");
    assert.equal(text, `b1;e=${s3.endpoint};b=doctor-b`);
    await chain.setCommitment(
      await loadHotkey({ walletPath, name: "w", hotkey: "h" }),
      net.netuid,
      text,
    );
    // A peer reads a slice from what the chain holds, and nothing else.
    const slice = new TextEncoder().encode("delta bytes");
    const key = `delta-3-${ours.hotkey}.safetensors`;
    await resolveStore("s3://doctor-b", s3Env(env)).put(key, slice);
    const onChain = (await chain.commitments(net.netuid)).get(ours.hotkey)!;
    assert.equal(onChain, text);
    const peer = storeForLocation(parseCommitment(onChain, "local"));
    assert.deepEqual(await peer.get(key, { maxBytes: 1024, timeoutMs: 10_000 }), slice);
    await chain.close();

    const all = await preflight({
      ...base,
      wallet: { walletPath, name: "w", hotkey: "h" },
      bucket: "s3://doctor-b",
    });
    const out = formatChecks(all);
    assert.deepEqual(all.filter((c) => c.status !== "pass"), [], out);
    // Every check, in the order the README's example output shows (so it cannot go stale).
    assert.deepEqual(all.map((c) => c.name), await readmeCheckNames());
    assert.equal(all.length, 13);
    const c = byName(all);
    assert.match(c["runtime"]!.detail, /spec 218$/);
    assert.match(c["hotkey registered"]!.detail, /^uid 0 /);
    // Every uid of the local subnet holds a permit; the owner's stake is its registration's.
    assert.match(c["permit and stake"]!.detail, /^validator permit yes, stake \d+(\.\d+)? /);
    assert.match(c["commit-reveal"]!.detail, /^off/);
    assert.match(c["weights rate limit and version key"]!.detail, /^rate limit 0 blocks/);
    assert.match(c["our commitment"]!.detail, new RegExp(`^s3://doctor-b on ${s3.endpoint}$`));
    assert.match(out, /^PASS: 13 passed, 0 failed, 0 skipped$/m);
    // The probe object is gone; the slice is still there.
    const left = await resolveStore("s3://doctor-b", s3Env(env)).list("");
    assert.deepEqual(left.map((x) => x.key), [`delta-3-${ours.hotkey}.safetensors`]);

    // The chain, wallet and bucket checks again (no engine) for another hotkey or bucket.
    const checks = async (hotkey: string, bucket: string) =>
      byName(
        await preflight({
          ...base,
          engine: false,
          wallet: { walletPath, name: "w", hotkey },
          bucket,
        }),
      );
    const stranger = await checks("stranger", "s3://doctor-b");
    assert.equal(stranger["hotkey registered"]!.status, "fail");
    assert.match(
      stranger["hotkey registered"]!.detail,
      /is not registered on subnet \d+; register it first/,
    );
    assert.equal(stranger["permit and stake"]!.status, "skip");

    const unwritable = await checks("h", "s3://no-such-bucket");
    assert.equal(unwritable["bucket writable"]!.status, "fail");
    assert.match(
      unwritable["bucket writable"]!.detail,
      /s3:\/\/no-such-bucket: .*HTTP 404 NoSuchBucket/,
    );
    assert.equal(unwritable["bucket readable by peers"]!.status, "skip");
    // Our on-chain commitment names another bucket: still parseable, and the note says so.
    assert.match(unwritable["our commitment"]!.detail, /differs from --bucket/);
  } finally {
    await net.stop();
    await s3.close();
    await Deno.remove(dir, { recursive: true });
  }
});
