/**
 * Extensions derived from metadata, against hand-built metadata whose extension list and
 * types are those of the public runtime source:
 * - today's (opentensor/subtensor main, spec 425, runtime/src/lib.rs `TxExtension`, the
 *   structs in runtime/src/{check_mortality,check_nonce,transaction_payment_wrapper,
 *   sudo_wrapper}.rs, pallets/shield/src/extension.rs, pallets/subtensor/src/extensions/
 *   subtensor.rs, pallets/drand/src/drand_priority.rs);
 * - spec 218's (the local chain's runtime, as its metadata lists them).
 * Expected bytes are written out by hand from SCALE's rules.
 */
import assert from "node:assert/strict";
import { Metadata, TypeRegistry } from "@polkadot/types";
import { u8aToHex } from "@polkadot/util";
import { cryptoWaitReady, sr25519Verify } from "@polkadot/util-crypto";
import { Keyring } from "@polkadot/keyring";
import { deriveExtensions, type ExtensionDef, extensionEntries, refusal } from "./extensions.ts";

type Ty = { path?: string[]; params?: unknown[]; def: Record<string, unknown> };
/** An extension: its types inline or by name ("@ctp"). */
type Ext = { identifier: string; type: Ty | string; additional: Ty | string };

/** A metadata v14 with one pallet (`System.remark`) and the given extensions. */
function buildMetadata(
  exts: Ext[],
): `0x${string}` {
  const types: Ty[] = [];
  const add = (t: Ty) => types.push(t) - 1;
  const u8 = add({ def: { primitive: "U8" } });
  const a32 = add({ def: { array: { len: 32, type: u8 } } });
  const u32 = add({ def: { primitive: "U32" } });
  const u64 = add({ def: { primitive: "U64" } });
  const cu64 = add({ def: { compact: { type: u64 } } });
  const cu32 = add({ def: { compact: { type: u32 } } });
  const unit = add({ def: { tuple: [] } });
  const bytes = add({ def: { sequence: { type: u8 } } });
  const h256 = add({
    path: ["primitive_types", "H256"],
    def: { composite: { fields: [{ type: a32 }] } },
  });
  /** An enum type: `[name, fields]` per variant, indices in order. */
  const variants = (
    path: string[],
    vs: [string, { name?: string; type: number; typeName?: string }[]][],
    params?: unknown[],
  ) =>
    add({
      path,
      ...(params ? { params } : {}),
      def: { variant: { variants: vs.map(([name, fields], index) => ({ name, index, fields })) } },
    });
  const era = variants(["sp_runtime", "generic", "era", "Era"], [
    ["Immortal", []],
    ["Mortal1", [{ type: u8 }]],
  ]);
  const optHash = variants(["Option"], [
    ["None", []],
    ["Some", [{ type: a32 }]],
  ], [{ name: "T", type: a32 }]);
  const mode = variants(["frame_metadata_hash_extension", "Mode"], [
    ["Disabled", []],
    ["Enabled", []],
  ]);
  const call = variants(["frame_system", "pallet", "Call"], [
    ["remark", [{ name: "remark", type: bytes, typeName: "Vec<u8>" }]],
  ]);
  const named: Record<string, number> = {
    u8,
    a32,
    u32,
    u64,
    cu64,
    cu32,
    unit,
    h256,
    era,
    optHash,
    mode,
  };
  // Cases refer to shared types by name ("@cu64"), so they can be written without ids.
  const id = (t: Ty | string): number => {
    if (typeof t === "string") return named[t.slice(1)] ??= id(SUB[t.slice(1)]!);
    return add(
      JSON.parse(
        JSON.stringify(t),
        (_k, v) => typeof v === "string" && v.startsWith("@") ? id(v) : v,
      ),
    );
  };
  const entries = exts.map((e) => ({
    identifier: e.identifier,
    type: id(e.type),
    additionalSigned: id(e.additional),
  }));
  const registry = new TypeRegistry();
  const md = new Metadata(registry, {
    magicNumber: 0x6174656d,
    metadata: {
      v14: {
        lookup: {
          types: types.map((type, id) => ({
            id,
            type: { params: [], path: [], docs: [], ...type },
          })),
        },
        pallets: [{ name: "System", index: 0, calls: { type: call }, constants: [] }],
        extrinsic: { type: unit, version: 4, signedExtensions: entries },
        type: unit,
      },
    },
  });
  return md.toHex();
}

/** Nested types the cases refer to by name. */
const SUB: Record<string, Ty> = {};

const empty = (...path: string[]): Ty => ({ path, def: { composite: { fields: [] } } });
const unit: Ty = { def: { tuple: [] } };
const u32: Ty = { def: { primitive: "U32" } };
const h256: Ty = {
  path: ["primitive_types", "H256"],
  def: { composite: { fields: [{ type: "@a32" }] } },
};

// pallet_transaction_payment::ChargeTransactionPayment<T>(#[codec(compact)] BalanceOf<T>)
SUB.ctp = {
  path: ["pallet_transaction_payment", "ChargeTransactionPayment"],
  def: { composite: { fields: [{ type: "@cu64", typeName: "BalanceOf<T>" }] } },
};

const SYSTEM: Ext[] = [
  {
    identifier: "CheckNonZeroSender",
    type: empty("frame_system", "extensions", "check_non_zero_sender", "CheckNonZeroSender"),
    additional: unit,
  },
  {
    identifier: "CheckSpecVersion",
    type: empty("frame_system", "extensions", "check_spec_version", "CheckSpecVersion"),
    additional: u32,
  },
  {
    identifier: "CheckTxVersion",
    type: empty("frame_system", "extensions", "check_tx_version", "CheckTxVersion"),
    additional: u32,
  },
  {
    identifier: "CheckGenesis",
    type: empty("frame_system", "extensions", "check_genesis", "CheckGenesis"),
    additional: h256,
  },
];

const METADATA_HASH: Ext = {
  identifier: "CheckMetadataHash",
  type: {
    path: ["frame_metadata_hash_extension", "CheckMetadataHash"],
    def: { composite: { fields: [{ name: "mode", type: "@mode", typeName: "Mode" }] } },
  },
  additional: "@optHash",
};

/** Today's `TxExtension` (spec 425), in order. */
const TODAY: Ext[] = [
  ...SYSTEM,
  {
    // check_mortality::CheckMortality<T>(pub Era, PhantomData<T>): PhantomData has no type.
    identifier: "CheckMortality",
    type: {
      path: ["node_subtensor_runtime", "check_mortality", "CheckMortality"],
      def: { composite: { fields: [{ type: "@era", typeName: "Era" }] } },
    },
    additional: h256,
  },
  {
    // check_nonce::CheckNonce<T>(#[codec(compact)] pub T::Nonce), Nonce = u32.
    identifier: "CheckNonce",
    type: {
      path: ["node_subtensor_runtime", "check_nonce", "CheckNonce"],
      def: { composite: { fields: [{ type: "@cu32", typeName: "T::Nonce" }] } },
    },
    additional: unit,
  },
  {
    identifier: "CheckWeight",
    type: empty("frame_system", "extensions", "check_weight", "CheckWeight"),
    additional: unit,
  },
  {
    // ChargeTransactionPaymentWrapper<T> { inner: ChargeTransactionPayment<T> }
    identifier: "ChargeTransactionPaymentWrapper",
    type: {
      path: [
        "node_subtensor_runtime",
        "transaction_payment_wrapper",
        "ChargeTransactionPaymentWrapper",
      ],
      def: {
        composite: {
          fields: [{ name: "inner", type: "@ctp", typeName: "ChargeTransactionPayment<T>" }],
        },
      },
    },
    additional: unit,
  },
  {
    identifier: "SudoTransactionExtension",
    type: empty("node_subtensor_runtime", "sudo_wrapper", "SudoTransactionExtension"),
    additional: unit,
  },
  {
    identifier: "CheckShieldedTxValidity",
    type: empty("pallet_shield", "extension", "CheckShieldedTxValidity"),
    additional: unit,
  },
  {
    identifier: "SubtensorTransactionExtension",
    type: empty("pallet_subtensor", "extensions", "subtensor", "SubtensorTransactionExtension"),
    additional: unit,
  },
  {
    identifier: "DrandPriority",
    type: empty("pallet_drand", "drand_priority", "DrandPriority"),
    additional: unit,
  },
  METADATA_HASH,
];

/** Spec 218's list, as its metadata has it. */
const SPEC218: Ext[] = [
  ...SYSTEM,
  {
    identifier: "CheckMortality",
    type: {
      path: ["frame_system", "extensions", "check_mortality", "CheckMortality"],
      def: { composite: { fields: [{ type: "@era", typeName: "Era" }] } },
    },
    additional: h256,
  },
  {
    identifier: "CheckNonce",
    type: {
      path: ["frame_system", "extensions", "check_nonce", "CheckNonce"],
      def: { composite: { fields: [{ type: "@cu32", typeName: "T::Nonce" }] } },
    },
    additional: unit,
  },
  {
    identifier: "CheckWeight",
    type: empty("frame_system", "extensions", "check_weight", "CheckWeight"),
    additional: unit,
  },
  { identifier: "ChargeTransactionPayment", type: "@ctp", additional: unit },
  {
    identifier: "SubtensorSignedExtension",
    type: empty("pallet_subtensor", "SubtensorSignedExtension"),
    additional: unit,
  },
  {
    identifier: "CommitmentsSignedExtension",
    type: empty("pallet_commitments", "CommitmentsSignedExtension"),
    additional: unit,
  },
  METADATA_HASH,
];

function registryWith(hex: `0x${string}`, defs?: Record<string, ExtensionDef>): TypeRegistry {
  const registry = new TypeRegistry();
  // The same call ApiPromise makes with its `signedExtensions` option.
  registry.setMetadata(new Metadata(registry, hex), undefined, defs, defs === undefined);
  return registry;
}

function derive(hex: `0x${string}`) {
  const md = new Metadata(new TypeRegistry(), hex);
  return deriveExtensions(md.asLatest.lookup, extensionEntries(md));
}

const GENESIS = "0x" + "ab".repeat(32);
/** A fixed MultiSignature::Sr25519 (01 + 64 bytes) so the extrinsic bytes are fixed. */
const SIG = new Uint8Array(65).fill(7).fill(1, 0, 1);

/** Extrinsic and signing payload of `System.remark(0x0102)` signed with fixed values. */
function encode(registry: TypeRegistry, specVersion: number) {
  const pub = new Uint8Array(32).fill(9);
  const method = registry.createType("Call", { callIndex: [0, 0], args: { remark: "0x0102" } });
  const payload = {
    method: method.toHex(),
    era: registry.createType("ExtrinsicEra", "0x00"),
    nonce: 300,
    tip: 1_000_000,
    mode: 0,
    specVersion,
    transactionVersion: 1,
    genesisHash: GENESIS,
    blockHash: GENESIS,
    metadataHash: undefined,
    version: 4,
  };
  const xt = registry.createType("Extrinsic", method);
  xt.addSignature(pub, SIG, payload);
  const signing = registry.createType("ExtrinsicPayload", payload, { version: 4 });
  return { xt: xt.toU8a(), signing: signing.toU8a({ method: true }), method: method.toU8a() };
}

const hex = (...parts: (string | Uint8Array)[]) =>
  parts.map((p) => (typeof p === "string" ? p.replace(/^0x/, "") : u8aToHex(p).slice(2))).join("");

Deno.test("today's extension list (spec 425) is derived and encodes as the runtime says", async () => {
  const md = buildMetadata(TODAY);
  const d = derive(md);
  assert.deepEqual(d.names, TODAY.map((e) => e.identifier));
  assert.ok(d.info.every((e) => e.understood), JSON.stringify(d.info));
  assert.equal(refusal(d.info, "x"), undefined);
  assert.deepEqual(d.defs.ChargeTransactionPaymentWrapper, {
    extrinsic: { tip: "Compact<u64>" },
    payload: {},
  });
  assert.deepEqual(d.defs.CheckMortality, {
    extrinsic: { era: "ExtrinsicEra" },
    payload: { blockHash: "H256" },
  });
  assert.deepEqual(d.defs.CheckNonce, { extrinsic: { nonce: "Compact<u32>" }, payload: {} });
  assert.deepEqual(d.defs.CheckMetadataHash, {
    extrinsic: { mode: "u8" },
    payload: { metadataHash: "Option<[u8;32]>" },
  });
  for (
    const e of [
      "SudoTransactionExtension",
      "CheckShieldedTxValidity",
      "SubtensorTransactionExtension",
      "DrandPriority",
      "CheckWeight",
      "CheckNonZeroSender",
    ]
  ) {
    assert.deepEqual(d.defs[e], { extrinsic: {}, payload: {} }, e);
  }

  const registry = registryWith(md, d.defs);
  const { xt, signing, method } = encode(registry, 425);
  // Extension part: immortal era 00, compact nonce 300 = b1 04, compact tip 10^6 = 02 09 3d 00,
  // metadata-hash mode 0 = 00; nothing for the nine empty extensions.
  const ext = "00" + "b104" + "02093d00" + "00";
  const body = "84" + "00" + "09".repeat(32) + "01" + "07".repeat(64) + ext + hex(method);
  assert.equal(
    u8aToHex(xt),
    "0x" + hex(registry.createType("Compact<u32>", body.length / 2).toU8a(), body),
  );
  // Signing payload: call, the extension part, then spec 425 (a9 01 00 00), tx version 1,
  // genesis hash, the era's block hash (genesis when immortal), metadata hash None (00).
  assert.equal(
    u8aToHex(signing),
    "0x" + hex(method, ext, "a9010000", "01000000", GENESIS, GENESIS, "00"),
  );

  // The same without derivation: what @polkadot/types 16.5 alone does. It drops the tip,
  // so the node would read the call's first byte as the tip: the bug this module fixes.
  const naive = encode(registryWith(md), 425);
  assert.notEqual(u8aToHex(naive.xt), u8aToHex(xt));

  // A real signature over the payload verifies with the signer's key.
  await cryptoWaitReady();
  const pair = new Keyring({ type: "sr25519" }).addFromUri("//Alice");
  const signed = registry.createType(
    "Extrinsic",
    registry.createType("Call", { callIndex: [0, 0], args: { remark: "0x0102" } }),
  );
  signed.sign(pair, {
    era: registry.createType("ExtrinsicEra", "0x00"),
    nonce: 300,
    tip: 1_000_000,
    mode: 0,
    genesisHash: GENESIS,
    blockHash: GENESIS,
    runtimeVersion: { specVersion: 425, transactionVersion: 1 },
    signedExtensions: registry.signedExtensions,
  } as never);
  assert.ok(sr25519Verify(signing, signed.signature.toU8a(), pair.publicKey));
});

Deno.test("the spec-218 list still encodes as before", () => {
  const md = buildMetadata(SPEC218);
  const d = derive(md);
  assert.deepEqual(d.names, SPEC218.map((e) => e.identifier));
  assert.ok(d.info.every((e) => e.understood), JSON.stringify(d.info));
  const derived = encode(registryWith(md, d.defs), 218);
  const stock = encode(registryWith(md), 218);
  assert.equal(u8aToHex(derived.xt), u8aToHex(stock.xt));
  assert.equal(u8aToHex(derived.signing), u8aToHex(stock.signing));
  const ext = "00" + "b104" + "02093d00" + "00";
  assert.equal(
    u8aToHex(derived.signing),
    "0x" + hex(derived.method, ext, "da000000", "01000000", GENESIS, GENESIS, "00"),
  );
});

Deno.test("an extension carrying a value boltzmann cannot fill is refused by name", () => {
  const md = buildMetadata([
    ...TODAY.slice(0, -1),
    {
      identifier: "FutureCheck",
      type: {
        path: ["pallet_future", "FutureCheck"],
        def: { composite: { fields: [{ type: "@u32" }] } },
      },
      additional: unit,
    },
    { identifier: "ImplicitThing", type: empty("pallet_future", "ImplicitThing"), additional: u32 },
    METADATA_HASH,
  ]);
  const d = derive(md);
  const bad = d.info.filter((e) => !e.understood).map((e) => e.name);
  assert.deepEqual(bad, ["FutureCheck", "ImplicitThing"]);
  const line = refusal(d.info, "node-subtensor spec 999")!;
  assert.match(
    line,
    /^Cannot sign for node-subtensor spec 999: transaction extensions FutureCheck \(.*\), ImplicitThing \(.*\) cannot be derived/,
  );
  assert.ok(!line.includes("\n"));
});
