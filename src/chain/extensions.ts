/**
 * Transaction extensions derived from the connected runtime's own metadata.
 *
 * `@polkadot/types` knows substrate's stock extensions by name and treats any other as
 * carrying nothing. Bittensor's runtime wraps stock ones under new names
 * (`ChargeTransactionPaymentWrapper` carries the tip) and adds its own, so trusting the
 * names alone produces extrinsics the node cannot decode. Here every extension the
 * metadata lists is derived from its type in the metadata's type registry:
 *
 * - fields whose type encodes to nothing (unit, PhantomData, empty composites) drop out;
 * - a composite or tuple with one remaining field is unwrapped (so
 *   `ChargeTransactionPaymentWrapper { inner: ChargeTransactionPayment(Compact<u64>) }` is
 *   a compact tip);
 * - what is left must be a value the signer knows how to fill: the era, nonce, tip,
 *   metadata-hash mode in the extrinsic; spec and transaction version, genesis hash,
 *   era's block hash and metadata hash in the signed payload. Its name comes from the
 *   substrate extension found while unwrapping (by identifier or type path), or from the
 *   field's own name; its type string from the metadata's shape.
 *
 * An extension that carries anything else cannot be filled in correctly, so it is
 * reported as not understood (and connecting refuses to sign).
 *
 * @module
 */
/** The metadata's type lookup (`api.registry.lookup`, or `metadata.asLatest.lookup`). */
export interface Lookup {
  getSiType(id: number): unknown;
}

/** One transaction extension of the connected runtime, and whether boltzmann can encode it. */
export interface ExtensionInfo {
  name: string;
  understood: boolean;
  reason?: string;
}

/** Field name → `@polkadot/types` type string, in encoding order. */
export type Fields = Record<string, string>;

/** An extension as `@polkadot/types` takes it (`signedExtensions` of `ApiOptions`). */
export interface ExtensionDef {
  extrinsic: Fields;
  payload: Fields;
}

/** One entry of the metadata's extension list: identifier and the two type ids. */
export interface ExtensionEntry {
  identifier: string;
  /** Type of what the extrinsic carries. */
  type: number;
  /** Type of what only the signed payload carries (`additionalSigned` / `implicit`). */
  implicit: number;
}

/** What {@link deriveExtensions} found. */
export interface DerivedExtensions {
  /** Identifiers in metadata order. */
  names: string[];
  defs: Record<string, ExtensionDef>;
  info: ExtensionInfo[];
}

/** The signer's values: which part each belongs to. */
const EXTRINSIC_VALUES = new Set(["era", "nonce", "tip", "mode"]);
const PAYLOAD_VALUES = new Set([
  "specVersion",
  "transactionVersion",
  "genesisHash",
  "blockHash",
  "metadataHash",
]);

/** Substrate's extensions and the value each part carries when it is a single unnamed one. */
const KNOWN: Record<string, { extrinsic?: string; payload?: string }> = {
  CheckSpecVersion: { payload: "specVersion" },
  CheckVersion: { payload: "specVersion" },
  CheckTxVersion: { payload: "transactionVersion" },
  CheckGenesis: { payload: "genesisHash" },
  CheckMortality: { extrinsic: "era", payload: "blockHash" },
  CheckEra: { extrinsic: "era", payload: "blockHash" },
  CheckNonce: { extrinsic: "nonce" },
  ChargeTransactionPayment: { extrinsic: "tip" },
  CheckMetadataHash: { extrinsic: "mode", payload: "metadataHash" },
};

// The shapes of PortableRegistry entries read here (see @polkadot/types' Si1Type).
interface SiField {
  name: { isSome: boolean; unwrap(): { toString(): string } };
  type: { toNumber(): number };
}
interface SiType {
  path: { toString(): string }[];
  def: {
    type: string;
    asComposite: { fields: SiField[] };
    asTuple: { toNumber(): number }[];
    asPrimitive: { type: string };
    asCompact: { type: { toNumber(): number } };
    asArray: { len: { toNumber(): number }; type: { toNumber(): number } };
    asVariant: {
      variants: {
        name: { toString(): string };
        fields: unknown[];
        index: { toNumber(): number };
      }[];
    };
    asSequence: { type: { toNumber(): number } };
  };
}

/** Why a type cannot be used; caught per extension. */
class Underivable extends Error {}

/**
 * The extension list of a decoded runtime metadata (v14, v15 or v16), in order.
 * @param metadata `api.runtimeMetadata` (a `Metadata`)
 */
export function extensionEntries(metadata: unknown): ExtensionEntry[] {
  // deno-lint-ignore no-explicit-any
  const m = metadata as any;
  const version: number = m.version;
  if (version === 14 || version === 15) {
    const md = version === 14 ? m.asV14 : m.asV15;
    // deno-lint-ignore no-explicit-any
    return md.extrinsic.signedExtensions.map((e: any) => ({
      identifier: e.identifier.toString(),
      type: e.type.toNumber(),
      implicit: e.additionalSigned.toNumber(),
    }));
  }
  if (version === 16) {
    const ext = m.asV16.extrinsic;
    // deno-lint-ignore no-explicit-any
    const all = ext.transactionExtensions.map((e: any) => ({
      identifier: e.identifier.toString(),
      type: e.type.toNumber(),
      implicit: e.implicit.toNumber(),
    }));
    // Version-4 signed extrinsics use the list for version 0 of the extensions.
    const byVersion = ext.transactionExtensionsByVersion.toJSON() as Record<string, number[]>;
    const idx = byVersion["0"] ?? Object.values(byVersion)[0];
    return idx ? idx.map((i) => all[i]!) : all;
  }
  throw new Error(`Unsupported metadata version ${version}: expected 14, 15 or 16`);
}

/**
 * Derives every extension of `entries` from `registry`'s type lookup (the metadata's).
 * @param registry the metadata's type lookup
 */
export function deriveExtensions(registry: Lookup, entries: ExtensionEntry[]): DerivedExtensions {
  const defs: Record<string, ExtensionDef> = {};
  const info: ExtensionInfo[] = [];
  const used = new Set<string>();
  for (const e of entries) {
    try {
      const def: ExtensionDef = {
        extrinsic: fieldsOf(registry, e.identifier, e.type, "extrinsic"),
        payload: fieldsOf(registry, e.identifier, e.implicit, "payload"),
      };
      for (const k of [...Object.keys(def.extrinsic), ...Object.keys(def.payload)]) {
        if (used.has(k)) throw new Underivable(`it carries '${k}' a second time`);
      }
      for (const k of [...Object.keys(def.extrinsic), ...Object.keys(def.payload)]) used.add(k);
      defs[e.identifier] = def;
      info.push({ name: e.identifier, understood: true });
    } catch (err) {
      if (!(err instanceof Underivable)) throw err;
      info.push({ name: e.identifier, understood: false, reason: err.message });
    }
  }
  return { names: entries.map((e) => e.identifier), defs, info };
}

function siType(lookup: Lookup, id: number): SiType {
  return lookup.getSiType(id) as SiType;
}

function pathOf(t: SiType): string {
  return t.path.map((p) => p.toString()).join("::");
}

/** True when values of type `id` encode to no bytes. */
function isEmpty(registry: Lookup, id: number, depth = 0): boolean {
  if (depth > 16) return false;
  const t = siType(registry, id);
  switch (t.def.type) {
    case "Composite":
      return t.def.asComposite.fields.every((f) => isEmpty(registry, f.type.toNumber(), depth + 1));
    case "Tuple":
      return t.def.asTuple.every((x) => isEmpty(registry, x.toNumber(), depth + 1));
    case "Array":
      return t.def.asArray.len.toNumber() === 0 ||
        isEmpty(registry, t.def.asArray.type.toNumber(), depth + 1);
    default:
      return false;
  }
}

/** The fields part `part` of extension `ident` carries, with type id `id`. */
function fieldsOf(registry: Lookup, ident: string, id: number, part: "extrinsic" | "payload") {
  const allowed = part === "extrinsic" ? EXTRINSIC_VALUES : PAYLOAD_VALUES;
  const names = [ident];
  let fieldName: string | undefined;
  for (let depth = 0; depth < 16; depth++) {
    if (isEmpty(registry, id)) return {};
    const t = siType(registry, id);
    const last = t.path.length > 0 ? t.path[t.path.length - 1]!.toString() : undefined;
    if (last) names.push(last);
    let inner: { name?: string; id: number }[] | undefined;
    if (t.def.type === "Composite") {
      inner = t.def.asComposite.fields
        .filter((f) => !isEmpty(registry, f.type.toNumber()))
        .map((f) => ({
          name: f.name.isSome ? f.name.unwrap().toString() : undefined,
          id: f.type.toNumber(),
        }));
    } else if (t.def.type === "Tuple") {
      inner = t.def.asTuple.filter((x) => !isEmpty(registry, x.toNumber())).map((x) => ({
        id: x.toNumber(),
      }));
    }
    if (inner && inner.length === 1 && !isLeafPath(t)) {
      fieldName = inner[0]!.name ?? fieldName;
      id = inner[0]!.id;
      continue;
    }
    if (inner && inner.length > 1) {
      // Several values: each must be a named one the signer knows.
      const out: Fields = {};
      for (const f of inner) {
        if (!f.name || !allowed.has(f.name)) {
          throw new Underivable(
            `its ${part} part carries '${
              f.name ?? "an unnamed field"
            }', a value boltzmann cannot fill`,
          );
        }
        out[f.name] = leafType(registry, f.id, f.name);
      }
      return out;
    }
    const known = names.map((n) => KNOWN[n]?.[part]).find((v) => v !== undefined);
    const name = known ?? (fieldName && allowed.has(fieldName) ? fieldName : undefined);
    if (!name) {
      throw new Underivable(
        `its ${part} part carries a ${describe(t)} that boltzmann does not know how to fill`,
      );
    }
    return { [name]: leafType(registry, id, name) };
  }
  throw new Underivable(`its ${part} type nests too deeply`);
}

/** Composite types that are values in their own right (not wrappers to look through). */
function isLeafPath(t: SiType): boolean {
  const p = pathOf(t);
  return p === "sp_runtime::generic::era::Era" ||
    /^(primitive_types|sp_core)::H(160|256|512)$/.test(p);
}

function describe(t: SiType): string {
  const p = pathOf(t);
  return p ? `${t.def.type.toLowerCase()} ${p}` : t.def.type.toLowerCase();
}

/** The `@polkadot/types` type string of a leaf value of type `id`. */
function leafType(registry: Lookup, id: number, name: string, depth = 0): string {
  if (depth > 8) throw new Underivable(`its '${name}' type nests too deeply`);
  const t = siType(registry, id);
  const p = pathOf(t);
  if (p === "sp_runtime::generic::era::Era") return "ExtrinsicEra";
  if (/^(primitive_types|sp_core)::H256$/.test(p)) return "H256";
  switch (t.def.type) {
    case "Primitive": {
      const prim = t.def.asPrimitive.type.toString().toLowerCase();
      if (/^(u8|u16|u32|u64|u128|bool)$/.test(prim)) return prim;
      break;
    }
    case "Compact": {
      const inner = leafType(registry, t.def.asCompact.type.toNumber(), name, depth + 1);
      if (/^u(8|16|32|64|128)$/.test(inner)) return `Compact<${inner}>`;
      break;
    }
    case "Array": {
      const len = t.def.asArray.len.toNumber();
      const inner = leafType(registry, t.def.asArray.type.toNumber(), name, depth + 1);
      if (inner === "u8") return `[u8;${len}]`;
      break;
    }
    case "Composite": {
      const fields = t.def.asComposite.fields.filter((f) => !isEmpty(registry, f.type.toNumber()));
      if (fields.length === 1) {
        return leafType(registry, fields[0]!.type.toNumber(), name, depth + 1);
      }
      break;
    }
    case "Variant": {
      const vs = t.def.asVariant.variants;
      if (
        p === "Option" ||
        (t.path.length === 0 && vs.map((v) => v.name.toString()).join() === "None,Some")
      ) {
        const some = vs.find((v) => v.name.toString() === "Some");
        // deno-lint-ignore no-explicit-any
        const f = (some?.fields as any[] | undefined)?.[0];
        if (f) return `Option<${leafType(registry, f.type.toNumber(), name, depth + 1)}>`;
      }
      // A field-less enum encodes as its one-byte index, which the signer passes as a number.
      if (vs.length > 0 && vs.every((v) => v.fields.length === 0)) return "u8";
      break;
    }
  }
  throw new Underivable(`its '${name}' value has a ${describe(t)} type boltzmann cannot encode`);
}

/**
 * One line naming every extension boltzmann cannot encode, or undefined when all are.
 */
export function refusal(info: ExtensionInfo[], spec: string): string | undefined {
  const bad = info.filter((e) => !e.understood);
  if (bad.length === 0) return undefined;
  return `Cannot sign for ${spec}: transaction extension${bad.length > 1 ? "s" : ""} ${
    bad.map((e) => `${e.name} (${e.reason})`).join(", ")
  } cannot be derived from the metadata; this runtime is not supported by this boltzmann`;
}
