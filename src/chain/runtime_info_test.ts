import assert from "node:assert/strict";
import type { ApiPromise } from "@polkadot/api";
import { readStakes, stakesFromMetagraph } from "./runtime_info.ts";

const A = "5A", B = "5B", C = "5C";

/** An api with only what readStakes touches: the runtime call and/or the storage item. */
function api(
  o: { metagraph?: { hotkeys: string[]; totalStake: bigint[] } | null; alpha?: bigint[] },
) {
  const call = o.metagraph === undefined ? {} : {
    subnetInfoRuntimeApi: {
      getMetagraph: (_n: number) =>
        Promise.resolve(
          o.metagraph === null ? { isSome: false } : {
            isSome: true,
            unwrap: () => ({
              hotkeys: o.metagraph!.hotkeys.map((h) => ({ toString: () => h })),
              totalStake: o.metagraph!.totalStake.map((x) => ({ toString: () => x.toString() })),
            }),
          },
        ),
    },
  };
  const query = o.alpha === undefined ? { subtensorModule: {} } : {
    subtensorModule: {
      totalHotkeyAlpha: {
        multi: (keys: [string, number][]) =>
          Promise.resolve(keys.map((_, i) => ({ toBigInt: () => o.alpha![i]! }))),
      },
    },
  };
  return { call, query } as unknown as ApiPromise;
}

Deno.test("stake: the runtime's metagraph total_stake where it has the call, storage alpha otherwise", async () => {
  // get_metagraph's total_stake (inherited and root stake included) wins over storage alpha.
  const both = api({ metagraph: { hotkeys: [A, B], totalStake: [7n, 9n] }, alpha: [1n, 2n] });
  assert.deepEqual(await readStakes(both, 1, [B, A, C]), [9n, 7n, 0n]);
  // A runtime without the call (spec 218), or a subnet it does not know: TotalHotkeyAlpha.
  assert.deepEqual(await readStakes(api({ alpha: [1n, 2n] }), 1, [A, B]), [1n, 2n]);
  assert.deepEqual(await readStakes(api({ metagraph: null, alpha: [5n] }), 1, [A]), [5n]);
  // Neither: zero, not an error.
  assert.deepEqual(await readStakes(api({}), 1, [A]), [0n]);
  assert.throws(() => stakesFromMetagraph([A, B], [1n], [A]), /2 hotkeys but 1 stakes/);
});
