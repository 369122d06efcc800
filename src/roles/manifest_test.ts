import assert from "node:assert/strict";
import {
  decodeManifest,
  encodeManifest,
  type Manifest,
  MANIFEST_FORMAT,
  ManifestRejected,
  sha256Hex,
} from "./manifest.ts";
import { seedSigner } from "../../tests/_test_keys.ts";

const LEAD = seedSigner(1), A = seedSigner(2), B = seedSigner(3);
const D0 = "0".repeat(64), D1 = "1".repeat(64);
const BASE: Omit<Manifest, "format"> = {
  window: 7,
  lead: LEAD.address,
  fingerprint: "fp",
  codec: "dense:s3:128",
  baseDigest: D0,
  digest: D1,
  uploads: [
    { uid: 3, hotkey: B.address, sha256: sha256Hex(new Uint8Array([1])), bytes: 1, weight: 0.25 },
    { uid: 2, hotkey: A.address, sha256: sha256Hex(new Uint8Array([2])), bytes: 1, weight: 1 },
  ],
};
const EXPECT = { window: 7, lead: LEAD.address, fingerprint: "fp", codec: "dense:s3:128" };

Deno.test("a signed manifest round trips, entries sorted by hotkey", () => {
  const m = decodeManifest(encodeManifest(BASE, LEAD), EXPECT);
  assert.equal(m.format, MANIFEST_FORMAT);
  assert.deepEqual(m.uploads.map((u) => u.hotkey), [A.address, B.address].sort());
  assert.deepEqual(
    [...m.uploads].sort((a, b) => a.uid - b.uid),
    [...BASE.uploads].sort((a, b) => a.uid - b.uid),
  );
  assert.equal(m.baseDigest, D0);
  assert.equal(m.digest, D1);
  // sha256Hex is SHA-256 (FIPS 180-2 test vector "abc").
  assert.equal(
    sha256Hex(new TextEncoder().encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("bad manifests are refused with one line naming the problem", () => {
  const good = new TextDecoder().decode(encodeManifest(BASE, LEAD));
  const edit = (f: (j: Record<string, unknown>) => void) => {
    const j = JSON.parse(good);
    f(j);
    return new TextEncoder().encode(JSON.stringify(j));
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ["not JSON", new TextEncoder().encode("{"), /not UTF-8 JSON/],
    ["too large", new Uint8Array((1 << 20) + 1), /over the cap/],
    ["another window", edit((j) => j.window = 8), /window 8, expected 7/],
    ["another lead", edit((j) => j.lead = A.address), /lead/],
    ["another codec", edit((j) => j.codec = "f32"), /codec/],
    ["bad digest", edit((j) => j.digest = "xyz"), /'digest' missing or malformed/],
    ["weight 0", edit((j) => (j.uploads as { weight: number }[])[0]!.weight = 0), /entry 0/],
    ["unsorted", edit((j) => (j.uploads as unknown[]).reverse()), /not sorted/],
    [
      "tampered weight",
      edit((j) => (j.uploads as { weight: number }[])[0]!.weight = 2),
      /signature/,
    ],
    ["signed by another key", encodeManifest({ ...BASE, lead: A.address }, A), /lead/],
  ];
  for (const [what, bytes, re] of cases) {
    assert.throws(() => decodeManifest(bytes, EXPECT), (e: unknown) => {
      assert.ok(e instanceof ManifestRejected, what);
      assert.match(e.message, re, what);
      assert.ok(!e.message.includes("\n"), what);
      return true;
    }, what);
  }
  assert.throws(() => encodeManifest(BASE, A), /not the signer/);
});
