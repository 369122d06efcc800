/**
 * Bittensor wallets as btcli lays them out: `<path>/<name>/coldkeypub.txt` and
 * `<path>/<name>/hotkeys/<hotkey>`, JSON keyfiles with `accountId`, `publicKey`,
 * `privateKey`, `secretPhrase`, `secretSeed`, `ss58Address`. Keys are sr25519 via
 * `@polkadot/keyring`, SS58 prefix 42. Every loaded key signs and verifies a test message
 * before it is returned.
 *
 * Only hotkeys sign in boltzmann, so encrypted keyfiles (btcli's coldkeys) are refused
 * rather than decrypted. Secrets never leave this module except inside the returned pair.
 *
 * @module
 */
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { u8aToHex } from "@polkadot/util";
import {
  cryptoWaitReady,
  mnemonicGenerate,
  mnemonicToMiniSecret,
  mnemonicValidate,
  sr25519PairFromSeed,
  sr25519Verify,
} from "@polkadot/util-crypto";
import { join } from "node:path";
import type { Hotkey } from "./mod.ts";

/** Largest keyfile we read: btcli's are a few hundred bytes. */
const MAX_KEYFILE_BYTES = 64 * 1024;

/** `~/.bittensor/wallets`, btcli's default wallet path, from a home directory. */
export function defaultWalletPath(home: string): string {
  return join(home, ".bittensor", "wallets");
}

let keyring: Keyring | undefined;
async function getKeyring(): Promise<Keyring> {
  if (!keyring) {
    await cryptoWaitReady();
    keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
  }
  return keyring;
}

function hotkeyOf(pair: KeyringPair): Hotkey {
  return {
    ss58: pair.address,
    publicKey: pair.publicKey,
    sign: (msg) => pair.sign(msg),
    pair,
  };
}

/** A hotkey from a secret URI (`//Alice`, a mnemonic, `mnemonic//derivation`): dev keys. */
export async function hotkeyFromUri(uri: string): Promise<Hotkey> {
  return hotkeyOf((await getKeyring()).createFromUri(uri));
}

/** The fields btcli writes into a keyfile; secrets are null in `coldkeypub.txt`. */
export interface KeyfileJson {
  accountId: string;
  publicKey: string;
  privateKey: string | null;
  secretPhrase: string | null;
  secretSeed: string | null;
  ss58Address: string;
}

/** Checks that a keyfile is not one of btcli's encrypted formats; returns its JSON text. */
function plainKeyfileText(path: string, bytes: Uint8Array): string {
  if (bytes.length > MAX_KEYFILE_BYTES) {
    throw new Error(
      `Cannot read keyfile '${path}': ${bytes.length} bytes exceeds ${MAX_KEYFILE_BYTES}; point --wallet.path at a btcli wallet`,
    );
  }
  const text = new TextDecoder().decode(bytes).trim();
  if (
    text.startsWith("$NACL") || text.startsWith("$ANSIBLE_VAULT") || text.startsWith("gAAAAA")
  ) {
    throw new Error(
      `Cannot read keyfile '${path}': it is encrypted; boltzmann signs only with an unencrypted hotkey (btcli wallet new_hotkey writes one)`,
    );
  }
  return text;
}

function parseKeyfile(path: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`Cannot read keyfile '${path}': not JSON; expected a btcli keyfile`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new Error(`Cannot read keyfile '${path}': not a JSON object; expected a btcli keyfile`);
  }
  return v as Record<string, unknown>;
}

function optString(path: string, o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    throw new Error(`Cannot read keyfile '${path}': field '${k}' is not a string`);
  }
  return v;
}

function hexBytes(path: string, field: string, hex: string, len: number): Uint8Array {
  const h = hex.startsWith("0x") ? hex.slice(2) : hex;
  if (!/^[0-9a-fA-F]*$/.test(h) || h.length !== 2 * len) {
    throw new Error(
      `Cannot read keyfile '${path}': field '${field}' is not ${len} bytes of hex`,
    );
  }
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

async function readKeyfile(path: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot read keyfile '${path}': no such file; create it with 'boltzmann wallet create' or btcli, or fix --wallet.name/--wallet.hotkey/--wallet.path`,
      );
    }
    throw new Error(`Cannot read keyfile '${path}': ${(e as Error).message}`);
  }
  return plainKeyfileText(path, bytes);
}

/**
 * schnorrkel's two encodings of an sr25519 secret key's scalar: sp_core and btwallet keep
 * it raw (`SecretKey::to_bytes`), `@polkadot/util-crypto` keeps it multiplied by the
 * cofactor 8 (`to_ed25519_bytes`, a 3-bit left shift of the little-endian 32 bytes); the
 * 32-byte nonce after it is the same in both. Returns the `@polkadot` form of a raw key, or
 * undefined when the scalar cannot be a raw one (its top 3 bits are set).
 */
export function rawSecretToPolkadot(raw: Uint8Array): Uint8Array | undefined {
  if (raw.length !== 64 || (raw[31]! & 0xe0) !== 0) return undefined;
  const out = raw.slice();
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const b = raw[i]!;
    out[i] = ((b << 3) | carry) & 0xff;
    carry = b >> 5;
  }
  return out;
}

/** The raw (btwallet / sp_core) form of a `@polkadot` sr25519 secret key: a 3-bit right shift. */
export function polkadotSecretToRaw(secret: Uint8Array): Uint8Array {
  const out = secret.slice();
  for (let i = 0; i < 32; i++) out[i] = (secret[i]! >> 3) | ((secret[i + 1] ?? 0) << 5 & 0xff);
  out[31] = secret[31]! >> 3;
  return out;
}

/** The message the key self-test signs (any fixed bytes do; this names its purpose). */
const SELF_TEST = new TextEncoder().encode("boltzmann keyfile self-test");

/**
 * Signs a test message with `key` and verifies it against its public key; returns why it
 * failed, or undefined. A keyfile whose public key is not its secret's fails here.
 */
export function selfTest(key: { publicKey: Uint8Array; sign(m: Uint8Array): Uint8Array }) {
  let sig: Uint8Array;
  try {
    sig = key.sign(SELF_TEST);
  } catch (e) {
    return `signing failed: ${(e as Error).message}`;
  }
  return sr25519Verify(SELF_TEST, sig, key.publicKey)
    ? undefined
    : "a signed test message does not verify with its public key";
}

/** Options of {@link hotkeyFromKeyfile} and {@link loadHotkey}. */
export interface LoadOptions {
  /** Sign and verify a test message and refuse a key that fails (default true). */
  selfTest?: boolean;
}

/**
 * Loads the signing keypair from a keyfile's JSON text, the way bittensor does: from
 * `secretSeed` if present, else `secretPhrase`, else `privateKey` (btwallet's raw
 * schnorrkel form, or `@polkadot`'s: whichever signs for `publicKey`); then checks it
 * against `ss58Address`/`publicKey` when they are present, and signs and verifies a test
 * message.
 * @throws {Error} naming the file and the problem
 */
export async function hotkeyFromKeyfile(
  path: string,
  text: string,
  opts: LoadOptions = {},
): Promise<Hotkey> {
  const kr = await getKeyring();
  const o = parseKeyfile(path, text);
  const seed = optString(path, o, "secretSeed");
  const phrase = optString(path, o, "secretPhrase");
  const priv = optString(path, o, "privateKey");
  let pair: KeyringPair;
  if (seed !== undefined) {
    pair = kr.createFromPair(sr25519PairFromSeed(hexBytes(path, "secretSeed", seed, 32)));
  } else if (phrase !== undefined) {
    const words = phrase.split("//")[0]!.split("/")[0]!.trim();
    if (!mnemonicValidate(words)) {
      throw new Error(`Cannot read keyfile '${path}': 'secretPhrase' is not a valid mnemonic`);
    }
    pair = kr.createFromUri(phrase);
  } else if (priv !== undefined) {
    const secretKey = hexBytes(path, "privateKey", priv, 64);
    const pub = optString(path, o, "publicKey");
    if (pub === undefined) {
      throw new Error(`Cannot read keyfile '${path}': 'privateKey' without 'publicKey'`);
    }
    const publicKey = hexBytes(path, "publicKey", pub, 32);
    // btwallet writes the raw form; files from older boltzmann and polkadot.js the other.
    const candidates = [rawSecretToPolkadot(secretKey), secretKey].filter((c) => c !== undefined);
    const pairs = candidates.map((c) => kr.createFromPair({ publicKey, secretKey: c }));
    pair = pairs.find((p) => selfTest(p) === undefined) ?? pairs.at(-1)!;
  } else {
    throw new Error(
      `Cannot read keyfile '${path}': no secretSeed, secretPhrase or privateKey; it holds a public key only and cannot sign`,
    );
  }
  const ss58 = optString(path, o, "ss58Address");
  if (ss58 !== undefined && ss58 !== pair.address) {
    throw new Error(
      `Cannot read keyfile '${path}': its secret gives ${pair.address} but ss58Address says ${ss58}`,
    );
  }
  const pub = optString(path, o, "publicKey");
  if (
    pub !== undefined && u8aToHex(pair.publicKey) !== u8aToHex(hexBytes(path, "publicKey", pub, 32))
  ) {
    throw new Error(`Cannot read keyfile '${path}': its secret does not match its publicKey`);
  }
  const key = hotkeyOf(pair);
  const why = opts.selfTest === false ? undefined : selfTest(key);
  if (why) {
    throw new Error(
      `Cannot use keyfile '${path}': ${why} (its privateKey is not the secret of its publicKey); regenerate the hotkey from its mnemonic (btcli wallet regen_hotkey)`,
    );
  }
  return key;
}

/** Options naming a btcli hotkey. */
export interface WalletOptions {
  /** Wallets folder; default `~/.bittensor/wallets` (pass it in: only the CLI reads HOME). */
  walletPath?: string;
  /** `--wallet.name`: the coldkey's folder. */
  name: string;
  /** `--wallet.hotkey`: the file under `hotkeys/`. */
  hotkey: string;
}

function walletDir(opts: { walletPath?: string; name: string }): string {
  if (!opts.walletPath) {
    throw new Error("Cannot find wallets: no wallet path given; pass --wallet.path");
  }
  checkName("wallet name", opts.name);
  return join(opts.walletPath, opts.name);
}

function checkName(what: string, v: string): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(v) || v === "." || v === "..") {
    throw new Error(
      `Invalid ${what} '${v}': use 1 to 64 letters, digits, '_', '-' or '.'`,
    );
  }
}

/**
 * Loads a btcli hotkey: `<walletPath>/<name>/hotkeys/<hotkey>`.
 * @throws {Error} when the file is missing, encrypted, malformed or inconsistent
 */
export async function loadHotkey(opts: WalletOptions & LoadOptions): Promise<Hotkey> {
  checkName("hotkey name", opts.hotkey);
  const path = join(walletDir(opts), "hotkeys", opts.hotkey);
  return await hotkeyFromKeyfile(path, await readKeyfile(path), opts);
}

/**
 * Reads `<walletPath>/<name>/coldkeypub.txt`: the coldkey's SS58 address.
 * @throws {Error} when the file is missing or malformed
 */
export async function readColdkeyPub(opts: { walletPath?: string; name: string }): Promise<string> {
  const path = join(walletDir(opts), "coldkeypub.txt");
  const o = parseKeyfile(path, await readKeyfile(path));
  const ss58 = optString(path, o, "ss58Address");
  if (ss58 === undefined) throw new Error(`Cannot read keyfile '${path}': no ss58Address`);
  return ss58;
}

/** The keyfile JSON btcli writes for a keypair made from `mnemonic`. */
export async function keyfileFromMnemonic(mnemonic: string): Promise<KeyfileJson> {
  const kr = await getKeyring();
  const seed = mnemonicToMiniSecret(mnemonic);
  const sr = sr25519PairFromSeed(seed);
  const secretKey = sr.secretKey;
  const pair = kr.createFromPair(sr);
  const pub = u8aToHex(pair.publicKey);
  return {
    accountId: pub,
    publicKey: pub,
    // btwallet's raw schnorrkel form, so btcli reads the file as it reads its own.
    privateKey: u8aToHex(polkadotSecretToRaw(secretKey)),
    secretPhrase: mnemonic,
    secretSeed: u8aToHex(seed),
    ss58Address: pair.address,
  };
}

/** Writes `text` to a new file `path` (mode 0600) atomically; refuses to overwrite. */
async function writeNew(path: string, text: string): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, text, { mode: 0o600, createNew: true });
  try {
    // link() fails if `path` exists, so a concurrent create cannot be overwritten.
    await Deno.link(tmp, path);
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new Error(`Cannot create '${path}': it already exists; choose another name`);
    }
    throw e;
  } finally {
    await Deno.remove(tmp);
  }
}

/** What {@link createWallet} made: addresses and paths, no secrets. */
export interface CreatedWallet {
  coldkey: string;
  hotkey: string;
  coldkeyCreated: boolean;
  paths: string[];
}

/**
 * Creates a btcli-layout wallet for local use: an unencrypted coldkey (like
 * `btcli wallet create --no-use-password`) and `coldkeypub.txt` unless the coldkey exists,
 * and a new hotkey. Never overwrites a file.
 * @throws {Error} when the hotkey file already exists
 */
export async function createWallet(opts: WalletOptions): Promise<CreatedWallet> {
  checkName("hotkey name", opts.hotkey);
  const dir = walletDir(opts);
  const hotPath = join(dir, "hotkeys", opts.hotkey);
  try {
    await Deno.lstat(hotPath);
    throw new Error(
      `Cannot create hotkey '${hotPath}': it already exists; choose another --hotkey`,
    );
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(join(dir, "hotkeys"), { recursive: true, mode: 0o700 });
  const paths: string[] = [];
  const pubPath = join(dir, "coldkeypub.txt");
  let coldkey: string;
  let coldkeyCreated = false;
  try {
    coldkey = await readColdkeyPub(opts);
  } catch (e) {
    if (!(e instanceof Error && e.message.includes("no such file"))) throw e;
    const cold = await keyfileFromMnemonic(mnemonicGenerate(12));
    await writeNew(join(dir, "coldkey"), JSON.stringify(cold));
    const pub: KeyfileJson = {
      ...cold,
      privateKey: null,
      secretPhrase: null,
      secretSeed: null,
    };
    await writeNew(pubPath, JSON.stringify(pub));
    paths.push(join(dir, "coldkey"), pubPath);
    coldkey = cold.ss58Address;
    coldkeyCreated = true;
  }
  const hot = await keyfileFromMnemonic(mnemonicGenerate(12));
  await writeNew(hotPath, JSON.stringify(hot));
  paths.push(hotPath);
  return { coldkey, hotkey: hot.ss58Address, coldkeyCreated, paths };
}
