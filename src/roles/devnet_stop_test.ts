import assert from "node:assert/strict";
import { type Child, type DevnetChain, type DevnetDeps, runDevnet } from "./devnet.ts";

/** Fake participants that run until killed, and a fake chain, recording what was stopped. */
function fakes() {
  const killed: string[] = [];
  const running = new Set<string>();
  let chainStopped = false;
  let spawned = Promise.withResolvers<void>();
  const chain: DevnetChain = {
    endpoint: "ws://fake",
    netuid: 1,
    uids: () => Promise.resolve(new Map()),
    head: () => 0,
    weights: () => Promise.resolve(new Map()),
    stop: () => {
      chainStopped = true;
      return Promise.resolve();
    },
  };
  const deps: DevnetDeps = {
    createHotkey: (name) => Promise.resolve(`hk-${name}`),
    startChain: () => Promise.resolve(chain),
    spawn: (p): Child => {
      const exit = Promise.withResolvers<number>();
      running.add(p.name);
      if (running.size === 3) spawned.resolve();
      return {
        name: p.name,
        ready: Promise.resolve(),
        kill: (signal = "SIGTERM") => {
          killed.push(`${p.name} ${signal}`);
          running.delete(p.name);
          exit.resolve(0);
        },
        exited: exit.promise,
      };
    },
    baselines: () => Promise.reject(new Error("not reached")),
  };
  return {
    deps,
    killed,
    running,
    chainStopped: () => chainStopped,
    allSpawned: () => spawned.promise,
    reset: () => spawned = Promise.withResolvers<void>(),
  };
}

Deno.test("a stop request (SIGINT/SIGTERM in the CLI) ends devnet with every child and the chain stopped", async () => {
  const out = await Deno.makeTempDir();
  try {
    const f = fakes();
    const ac = new AbortController();
    const run = runDevnet(f.deps, {
      honest: 2,
      windows: 5,
      out,
      // Without the stop, this run would end here instead, failing the message check.
      timeoutMs: 60_000,
      adversaries: [],
      skipBaseline: true,
      print: () => {},
      signal: ac.signal,
    });
    await f.allSpawned();
    assert.deepEqual([...f.running].sort(), ["honest-1", "honest-2", "validator"]);
    ac.abort("SIGTERM");
    await assert.rejects(run, /^Error: Devnet stopped \(SIGTERM\)$/);
    assert.deepEqual(f.running.size, 0);
    assert.deepEqual(f.killed.slice(0, 3).sort(), [
      "honest-1 SIGTERM",
      "honest-2 SIGTERM",
      "validator SIGTERM",
    ]);
    assert.ok(f.chainStopped());
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a devnet stopped before it starts spawns nothing", async () => {
  const out = await Deno.makeTempDir();
  try {
    const f = fakes();
    const ac = new AbortController();
    ac.abort("SIGINT");
    await assert.rejects(
      runDevnet(f.deps, { honest: 1, windows: 1, out, adversaries: [], signal: ac.signal }),
      /Devnet stopped \(SIGINT\)/,
    );
    assert.deepEqual(f.killed, []);
    assert.equal(f.running.size, 0);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
