import assert from "node:assert/strict";
import {
  pages,
  seedBlock,
  sliceIndices,
  sliceSeed,
  sliceSize,
  windowOf,
  windowStart,
} from "../src/window.ts";

interface Vectors {
  windows: {
    block: number;
    window_length: number;
    window: number;
    start: number;
    state_seed_block: number;
    delta_seed_block: number;
  }[];
  indices: { seed: string; name: string; numel: number; compression: number; indices: number[] }[];
  pages: { window: number; uid: number; n: number; total_pages: number; pages: number[] }[];
}

// Written by scripts/window_ref.py, an independent Python implementation of docs/PROTOCOL.md.
const V: Vectors = JSON.parse(
  await Deno.readTextFile(new URL("./vectors/window.json", import.meta.url)),
);

Deno.test("windowOf() and seedBlock() match the vectors", () => {
  for (const v of V.windows) {
    const w = windowOf(v.block, v.window_length);
    assert.equal(w, v.window);
    assert.equal(windowStart(w, v.window_length), v.start);
    assert.equal(seedBlock("state", w, v.window_length), v.state_seed_block);
    assert.equal(seedBlock("delta", w, v.window_length), v.delta_seed_block);
  }
});

Deno.test("sliceIndices() matches the Python reference vectors", () => {
  for (const v of V.indices) {
    assert.deepEqual(Array.from(sliceIndices(v.seed, v.name, v.numel, v.compression)), v.indices);
  }
});

Deno.test("pages() matches the Python reference vectors", () => {
  for (const v of V.pages) assert.deepEqual(pages(v.window, v.uid, v.n, v.total_pages), v.pages);
});

Deno.test("sliceIndices() is sorted, distinct, in range and of exact size", () => {
  for (const [numel, c] of [[1, 1], [2, 1], [3, 2], [1000, 7], [65537, 100], [1 << 20, 64]]) {
    const idx = sliceIndices("delta:x", "p", numel!, c!);
    assert.equal(idx.length, sliceSize(numel!, c!));
    for (let i = 0; i < idx.length; i++) {
      assert.ok(idx[i]! < numel!);
      if (i > 0) assert.ok(idx[i]! > idx[i - 1]!, "strictly increasing");
    }
  }
});

Deno.test("sliceIndices() depends on seed and name, and is roughly uniform", () => {
  const a = sliceIndices("delta:a", "p", 10000, 10), b = sliceIndices("delta:b", "p", 10000, 10);
  const c = sliceIndices("delta:a", "q", 10000, 10);
  assert.notDeepEqual(a, b);
  assert.notDeepEqual(a, c);
  // Each of 10 deciles of [0, 10000) should hold about 1/10 of 1000 indices per seed;
  // over 50 seeds a decile's count is ~Binomial-ish around 5000 (sd ≈ 67).
  const deciles = new Array(10).fill(0);
  for (let s = 0; s < 50; s++) {
    for (const x of sliceIndices(`delta:${s}`, "p", 10000, 10)) deciles[Math.floor(x / 1000)]++;
  }
  for (const d of deciles) assert.ok(Math.abs(d - 5000) < 400, `decile count ${d}`);
});

Deno.test("pages() gives distinct pages to different uids in one window", () => {
  const total = 500, n = 3;
  for (const w of [0, 1, 99, 12345]) {
    const seen = new Set<number>();
    for (let uid = 0; uid < 100; uid++) {
      for (const p of pages(w, uid, n, total)) {
        assert.ok(p >= 0 && p < total);
        assert.ok(!seen.has(p), `page ${p} assigned twice in window ${w}`);
        seen.add(p);
      }
    }
  }
  assert.notDeepEqual(pages(1, 0, 3, total), pages(2, 0, 3, total));
});

Deno.test("window functions reject bad arguments with clear errors", () => {
  assert.throws(() => windowOf(-1, 5), /Invalid block -1/);
  assert.throws(() => windowOf(1.5, 5), /Invalid block 1.5/);
  assert.throws(() => windowOf(3, 0), /Invalid window length 0/);
  assert.throws(() => sliceIndices("s", "p", 100, 0), /Invalid compression 0/);
  assert.throws(() => sliceIndices("s", "p", 0, 10), /Invalid numel 0/);
  assert.throws(() => sliceIndices("s", "p", 2 ** 33, 10), /Invalid numel/);
  assert.throws(() => pages(0, -1, 1, 10), /Invalid uid -1/);
  assert.throws(() => pages(0, 0, 1, 0), /Invalid total pages 0/);
  assert.throws(() => sliceSeed("delta", "0x12"), /Invalid block hash '0x12'/);
});

Deno.test("two processes derive identical indices and pages", async () => {
  const code = `
    import { sliceIndices, pages } from ${
    JSON.stringify(new URL("../src/window.ts", import.meta.url).href)
  };
    const idx = sliceIndices("delta:0x" + "11".repeat(32), "model.embed_tokens.weight", 4096000, 100);
    let h = 0; for (const x of idx) h = (Math.imul(h, 31) + x) >>> 0;
    console.log(JSON.stringify({ n: idx.length, h, pages: pages(77, 5, 4, 1000) }));`;
  const run = async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(out.code, 0);
    return new TextDecoder().decode(out.stdout).trim();
  };
  const [a, b] = await Promise.all([run(), run()]);
  assert.equal(a, b);
  const local = sliceIndices(
    "delta:0x" + "11".repeat(32),
    "model.embed_tokens.weight",
    4096000,
    100,
  );
  let h = 0;
  for (const x of local) h = (Math.imul(h, 31) + x) >>> 0;
  assert.deepEqual(JSON.parse(a), { n: local.length, h, pages: pages(77, 5, 4, 1000) });
});
