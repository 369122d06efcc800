import assert from "node:assert/strict";
import { BlockClock, Stopped } from "./clock.ts";

function fakeSource() {
  let cb: ((b: number, h: string) => void) | null = null;
  const asked: number[] = [];
  return {
    asked,
    emit: (b: number) => cb?.(b, `0x${b.toString(16).padStart(64, "0")}`),
    src: {
      subscribeBlocks(f: (b: number, h: string) => void) {
        cb = f;
        return Promise.resolve(() => {
          cb = null;
        });
      },
      blockHash(b: number) {
        asked.push(b);
        return Promise.resolve(`0x${"ff".repeat(32)}`);
      },
    },
  };
}

Deno.test("BlockClock.waitFor() resolves once the block arrives, in order", async () => {
  const f = fakeSource();
  const c = await BlockClock.start(f.src);
  const order: number[] = [];
  const a = c.waitFor(3).then(() => order.push(3));
  const b = c.waitFor(1).then(() => order.push(1));
  f.emit(1);
  await b;
  assert.deepEqual(order, [1]);
  f.emit(2);
  f.emit(4);
  await a;
  assert.deepEqual(order, [1, 3]);
  assert.equal(c.block, 4);
  await c.waitFor(2); // already past: immediate
  c.stop();
});

Deno.test("BlockClock.hashOf() uses the subscription's hashes, else asks the chain", async () => {
  const f = fakeSource();
  const c = await BlockClock.start(f.src);
  f.emit(7);
  assert.equal(await c.hashOf(7), `0x${"7".padStart(64, "0")}`);
  assert.equal(await c.hashOf(5), `0x${"ff".repeat(32)}`);
  assert.deepEqual(f.asked, [5]);
  c.stop();
});

Deno.test("BlockClock.waitFor() rejects with Stopped on abort", async () => {
  const f = fakeSource();
  const c = await BlockClock.start(f.src);
  const ac = new AbortController();
  const p = c.waitFor(100, ac.signal);
  ac.abort();
  await assert.rejects(p, Stopped);
  await assert.rejects(c.waitFor(100, ac.signal), Stopped);
  c.stop();
});
