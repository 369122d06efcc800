import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeAddress, signatureVerify, sr25519PairFromSeed } from "@polkadot/util-crypto";
import { hexToU8a, u8aToHex } from "@polkadot/util";
import { withTempDir } from "../../tests/_temp_dir.ts";
import {
  createWallet,
  hotkeyFromUri,
  loadHotkey,
  polkadotSecretToRaw,
  rawSecretToPolkadot,
  readColdkeyPub,
  selfTest,
} from "./wallet.ts";

const TESTDATA = new URL("./testdata/", import.meta.url).pathname;
const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const DEV_ROOT = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";

/** Runs `fn` on a wallets folder holding the fixture keyfiles as hotkeys of wallet "fx". */
function withFixtureWallets(fn: (dir: string) => Promise<void>): Promise<void> {
  return withTempDir("wallet", async (dir) => {
    await Deno.mkdir(join(dir, "fx", "hotkeys"), { recursive: true });
    for (const f of ["dev-phrase", "alice-seed", "alice-phrase"]) {
      await Deno.copyFile(join(TESTDATA, f), join(dir, "fx", "hotkeys", f));
    }
    await fn(dir);
  });
}

Deno.test("loadHotkey() derives the known addresses of the dev keyfiles", async () => {
  await withFixtureWallets(async (dir) => {
    const load = (hotkey: string) => loadHotkey({ walletPath: dir, name: "fx", hotkey });
    assert.equal((await load("dev-phrase")).ss58, DEV_ROOT);
    const a = await load("alice-seed");
    assert.equal(a.ss58, ALICE);
    assert.equal(
      u8aToHex(a.publicKey),
      "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d",
    );
    assert.equal((await load("alice-phrase")).ss58, ALICE);
    assert.equal((await hotkeyFromUri("//Alice")).ss58, ALICE);
    const msg = new TextEncoder().encode("boltzmann");
    const sig = a.sign(msg);
    assert.equal(sig.length, 64);
    assert.ok(signatureVerify(msg, sig, ALICE).isValid);
    assert.ok(!signatureVerify(new TextEncoder().encode("other"), sig, ALICE).isValid);
  });
});

Deno.test("createWallet() writes btcli's layout and fields and never overwrites", async () => {
  await withTempDir("wallet", async (dir) => {
    const w = await createWallet({ walletPath: dir, name: "w", hotkey: "h1" });
    assert.equal(w.coldkeyCreated, true);
    const files = ["coldkey", "coldkeypub.txt", "hotkeys/h1"].map((f) => join(dir, "w", f));
    assert.deepEqual(w.paths, files);
    const fields = [
      "accountId",
      "privateKey",
      "publicKey",
      "secretPhrase",
      "secretSeed",
      "ss58Address",
    ];
    for (const f of files) {
      const st = await Deno.stat(f);
      assert.equal(st.mode! & 0o777, 0o600, f);
      assert.deepEqual(Object.keys(JSON.parse(await Deno.readTextFile(f))).sort(), fields, f);
    }
    const hot = JSON.parse(await Deno.readTextFile(files[2]!));
    assert.equal(hot.ss58Address, w.hotkey);
    assert.equal(hot.accountId, u8aToHex(decodeAddress(w.hotkey)));
    assert.equal(hot.publicKey, hot.accountId);
    assert.equal(hot.secretPhrase.split(" ").length, 12);
    assert.match(hot.secretSeed, /^0x[0-9a-f]{64}$/);
    assert.match(hot.privateKey, /^0x[0-9a-f]{128}$/);
    const pub = JSON.parse(await Deno.readTextFile(files[1]!));
    assert.equal(pub.ss58Address, w.coldkey);
    assert.equal(pub.secretPhrase, null);
    assert.equal(pub.secretSeed, null);
    assert.equal(pub.privateKey, null);
    assert.equal(await readColdkeyPub({ walletPath: dir, name: "w" }), w.coldkey);
    // The hotkey loads back from its seed, and from its phrase alone.
    assert.equal((await loadHotkey({ walletPath: dir, name: "w", hotkey: "h1" })).ss58, w.hotkey);
    await Deno.writeTextFile(
      join(dir, "w", "hotkeys", "phrase-only"),
      JSON.stringify({ secretPhrase: hot.secretPhrase }),
    );
    assert.equal(
      (await loadHotkey({ walletPath: dir, name: "w", hotkey: "phrase-only" })).ss58,
      w.hotkey,
    );
    await Deno.writeTextFile(
      join(dir, "w", "hotkeys", "private-only"),
      JSON.stringify({ ...hot, secretPhrase: null, secretSeed: null }),
    );
    const p = await loadHotkey({ walletPath: dir, name: "w", hotkey: "private-only" });
    assert.equal(p.ss58, w.hotkey);
    const msg = new TextEncoder().encode("m");
    assert.ok(signatureVerify(msg, p.sign(msg), w.hotkey).isValid);
    // A second hotkey keeps the coldkey; the same hotkey name is refused.
    const w2 = await createWallet({ walletPath: dir, name: "w", hotkey: "h2" });
    assert.equal(w2.coldkeyCreated, false);
    assert.equal(w2.coldkey, w.coldkey);
    assert.notEqual(w2.hotkey, w.hotkey);
    const before = await Deno.readTextFile(files[2]!);
    await assert.rejects(
      createWallet({ walletPath: dir, name: "w", hotkey: "h1" }),
      /Cannot create hotkey .*h1': it already exists/,
    );
    assert.equal(await Deno.readTextFile(files[2]!), before);
    const left = [...Deno.readDirSync(join(dir, "w", "hotkeys"))].map((e) => e.name).sort();
    assert.deepEqual(left, ["h1", "h2", "phrase-only", "private-only"], "no temporary files left");
  });
});

Deno.test("loadHotkey() refuses missing, malformed, encrypted and inconsistent keyfiles", async () => {
  await withFixtureWallets(async (dir) => {
    const put = (name: string, text: string) =>
      Deno.writeTextFile(join(dir, "fx", "hotkeys", name), text);
    const load = (hotkey: string, name = "fx") => loadHotkey({ walletPath: dir, name, hotkey });
    await assert.rejects(load("nope"), /Cannot read keyfile '.*nope': no such file/);
    await assert.rejects(load("x", "nowallet"), /no such file/);
    await put("garbage", "not json {");
    await assert.rejects(load("garbage"), /'.*garbage': not JSON/);
    await put("array", "[1,2]");
    await assert.rejects(load("array"), /not a JSON object/);
    await put("nacl", "$NACL" + "x".repeat(100));
    await assert.rejects(load("nacl"), /it is encrypted/);
    await put("vault", "$ANSIBLE_VAULT;1.1;AES256\n3131");
    await assert.rejects(load("vault"), /it is encrypted/);
    await put(
      "pubonly",
      await Deno.readTextFile(join(TESTDATA, "alice-seed")).then((t) =>
        JSON.stringify({ ...JSON.parse(t), secretSeed: null })
      ),
    );
    await assert.rejects(load("pubonly"), /public key only and cannot sign/);
    await put("shortseed", JSON.stringify({ secretSeed: "0x1234" }));
    await assert.rejects(load("shortseed"), /'secretSeed' is not 32 bytes of hex/);
    await put("badphrase", JSON.stringify({ secretPhrase: "not a valid mnemonic at all" }));
    await assert.rejects(load("badphrase"), /not a valid mnemonic/);
    await put(
      "wrongaddr",
      JSON.stringify({
        secretSeed: "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a",
        ss58Address: DEV_ROOT,
      }),
    );
    await assert.rejects(load("wrongaddr"), /gives 5Grw.* but ss58Address says 5Dfh/);
    await put("numseed", JSON.stringify({ secretSeed: 42 }));
    await assert.rejects(load("numseed"), /field 'secretSeed' is not a string/);
    await put("huge", "{" + " ".repeat(70_000) + "}");
    await assert.rejects(load("huge"), /exceeds 65536/);
    await assert.rejects(load("../x"), /Invalid hotkey name '..\/x'/);
    await assert.rejects(
      loadHotkey({ name: "fx", hotkey: "alice-seed" }),
      /no wallet path given/,
    );
  });
});

Deno.test("btwallet's privateKey-only hotkey signs a message that verifies; a mismatched one is refused", async () => {
  await withTempDir("wallet", async (dir) => {
    await Deno.mkdir(join(dir, "bt", "hotkeys"), { recursive: true });
    for (const f of ["btwallet-privkey", "btwallet-privkey-mismatch"]) {
      await Deno.copyFile(join(TESTDATA, f), join(dir, "bt", "hotkeys", f));
    }
    const k = await loadHotkey({ walletPath: dir, name: "bt", hotkey: "btwallet-privkey" });
    // btwallet's test_create_keypair_from_private_key: this public key and address.
    assert.equal(k.ss58, "5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX");
    const msg = new TextEncoder().encode("boltzmann");
    assert.ok(signatureVerify(msg, k.sign(msg), k.ss58).isValid);
    // The same key as the mnemonic btwallet derives it from: one account, two keyfile kinds.
    const fromPhrase = await hotkeyFromUri(
      "old leopard transfer rib spatial phone calm indicate online fire caution review",
    );
    assert.equal(fromPhrase.ss58, k.ss58);
    // The raw form is the @polkadot form divided by the cofactor: a round trip.
    const raw = hexToU8a(
      JSON.parse(await Deno.readTextFile(join(TESTDATA, "btwallet-privkey"))).privateKey,
    );
    assert.deepEqual(polkadotSecretToRaw(rawSecretToPolkadot(raw)!), raw);
    await assert.rejects(
      loadHotkey({ walletPath: dir, name: "bt", hotkey: "btwallet-privkey-mismatch" }),
      /Cannot use keyfile '.*btwallet-privkey-mismatch': a signed test message does not verify with its public key/,
    );
    // Without the self-test (doctor reports it as its own check) the file loads.
    const loose = await loadHotkey({
      walletPath: dir,
      name: "bt",
      hotkey: "btwallet-privkey-mismatch",
      selfTest: false,
    });
    assert.equal(selfTest(loose), "a signed test message does not verify with its public key");
    assert.equal(selfTest(k), undefined);
  });
});

Deno.test("createWallet() writes privateKey in btwallet's raw form, and it loads back", async () => {
  await withTempDir("wallet", async (dir) => {
    const w = await createWallet({ walletPath: dir, name: "w", hotkey: "h" });
    const file = JSON.parse(await Deno.readTextFile(join(dir, "w", "hotkeys", "h")));
    const expected = sr25519PairFromSeed(hexToU8a(file.secretSeed));
    assert.equal(file.privateKey, u8aToHex(polkadotSecretToRaw(expected.secretKey)));
    // A privateKey-only copy (what regen_hotkey leaves) loads to the same address.
    await Deno.writeTextFile(
      join(dir, "w", "hotkeys", "p"),
      JSON.stringify({ ...file, secretPhrase: null, secretSeed: null }),
    );
    assert.equal((await loadHotkey({ walletPath: dir, name: "w", hotkey: "p" })).ss58, w.hotkey);
  });
});
