/**
 * Deterministic sr25519 test keys: the signer whose 32 seed bytes all equal one byte, so
 * every run (and every test) gets the same addresses.
 *
 * @module
 */
import {
  cryptoWaitReady,
  encodeAddress,
  sr25519PairFromSeed,
  sr25519Sign,
} from "@polkadot/util-crypto";
import type { Signer } from "../src/slices/wire.ts";

await cryptoWaitReady();

/** The signer (ss58 prefix 42) whose seed is 32 bytes of `byte`. */
export function seedSigner(byte: number): Signer {
  const pair = sr25519PairFromSeed(new Uint8Array(32).fill(byte));
  return { address: encodeAddress(pair.publicKey, 42), sign: (m) => sr25519Sign(m, pair) };
}
