// Prints the SHA-256 of the batches of (window, uid) for a preset, for the cross-process
// determinism test: deno run --allow-read batch_digest.ts <window> <uid> <preset>
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { resolveHparams } from "../src/hparams.ts";
import { embeddedDataset } from "../src/data/pages.ts";

const [w, u, preset] = Deno.args;
const ds = await embeddedDataset(resolveHparams(preset ?? "tiny"));
const batches = await ds.batchesFor(Number(w), Number(u));
const h = sha256.create();
for (const b of batches) h.update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
console.log(
  JSON.stringify({
    pages: ds.pagesFor(Number(w), Number(u)),
    batches: batches.length,
    sha256: bytesToHex(h.digest()),
  }),
);
