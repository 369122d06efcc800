import assert from "node:assert/strict";
import { resolveHparams } from "../hparams.ts";
import { pages } from "../window.ts";
import { packRows } from "./pages.ts";
import { FINEWEB_DATASET, fineWebDataset, parseRows } from "./remote.ts";
import { tokenizer } from "./tokenizer.ts";

const hp = { ...resolveHparams("tiny"), batchSize: 2, seqLen: 16 };
const N = 1000;
const text = (i: number) => `Row ${i} of the test split. The whale swam ${i % 7} miles north.`;

/** A datasets-server /rows response in the recorded format (fields as the API returns). */
function rowsBody(offset: number, length: number) {
  const n = Math.max(0, Math.min(length, N - offset));
  return {
    features: [
      { feature_idx: 0, name: "text", type: { dtype: "string", _type: "Value" } },
      { feature_idx: 1, name: "id", type: { dtype: "string", _type: "Value" } },
      { feature_idx: 2, name: "dump", type: { dtype: "string", _type: "Value" } },
    ],
    rows: Array.from({ length: n }, (_, k) => ({
      row_idx: offset + k,
      row: {
        text: text(offset + k),
        id: `<urn:uuid:${offset + k}>`,
        dump: "CC-MAIN-2013-20",
        url: "http://example.com/",
        language: "en",
        language_score: 0.97,
        token_count: 20,
        score: 3.1,
        int_score: 3,
      },
      truncated_cells: [],
    })),
    num_rows_total: N,
    num_rows_per_page: 100,
    partial: false,
  };
}

interface Server {
  base: string;
  requests: URLSearchParams[];
  close(): Promise<void>;
}

/** A local server; `fail(n)` decides the status of request n (0-based), "hang" never answers. */
function serve(fail: (n: number) => number | "hang" | "bad" = () => 200): Server {
  const requests: URLSearchParams[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const n = requests.length;
    requests.push(url.searchParams);
    const f = fail(n);
    if (f === "hang") {
      // Longer than the client's timeout; shutdown() waits for it, so nothing leaks.
      await new Promise((r) => setTimeout(r, 300));
      return new Response("late");
    }
    if (f === "bad") return Response.json({ rows: [{ row_idx: 5, row: {} }], num_rows_total: N });
    if (f !== 200) return Response.json({ error: "Not found for this config" }, { status: f });
    if (url.pathname !== "/rows") return new Response("no", { status: 404 });
    const p = url.searchParams;
    return Response.json(rowsBody(Number(p.get("offset")), Number(p.get("length"))));
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

Deno.test("fineWebDataset(): page p is rows [100p, 100p+100), packed like the embedded corpus", async () => {
  const s = serve();
  try {
    const ds = await fineWebDataset(hp, { baseUrl: s.base, backoffMs: 1 });
    // 1000 rows = 10 pages; the last max(1, floor(10/100)) = 1 is held out.
    assert.equal(ds.totalPages, 9);
    assert.equal(ds.name, `fineweb:${FINEWEB_DATASET}/default/train`);
    assert.deepEqual(ds.pagesFor(4, 2), pages(4, 2, hp.pagesPerWindow, 9));
    const rows = await ds.pageRows(2);
    assert.deepEqual(rows.map((r) => r.text), Array.from({ length: 100 }, (_, k) => text(200 + k)));
    const q = s.requests.at(-1)!;
    assert.deepEqual(Object.fromEntries(q), {
      dataset: FINEWEB_DATASET,
      config: "default",
      split: "train",
      offset: "200",
      length: "100",
    });
    const t = tokenizer();
    const want = packRows(rows.map((r) => t.encode(r.text, { bos: false })), 2, 16);
    assert.deepEqual(await ds.pageBatches(2), want);
    assert.equal(s.requests.length, 2, "page 2 was fetched once (size probe + page)");
    // Evaluation reads the held-out page 9 (rows 900..999).
    const ev = await ds.evalBatches(3);
    assert.equal(ev.length, 3);
    assert.equal(s.requests.at(-1)!.get("offset"), "900");
    await assert.rejects(() => ds.pageBatches(9), RangeError);
  } finally {
    await s.close();
  }
});

Deno.test("fineWebDataset(): retries 503 and 429 with backoff, then succeeds", async () => {
  const s = serve((n) => (n === 0 ? 503 : n === 1 ? 429 : 200));
  try {
    const ds = await fineWebDataset(hp, { baseUrl: s.base, backoffMs: 1, attempts: 3 });
    assert.equal(ds.totalPages, 9);
    assert.equal(s.requests.length, 3);
  } finally {
    await s.close();
  }
});

/**
 * fineWebDataset() against a server whose every answer is `reply`: it must fail with
 * `error` after exactly `requests` requests.
 */
async function failsAgainst(
  reply: "hang" | "bad" | number,
  opts: Partial<Parameters<typeof fineWebDataset>[1]>,
  error: RegExp,
  requests: number,
) {
  const s = serve(() => reply);
  try {
    await assert.rejects(
      () => fineWebDataset(hp, { baseUrl: s.base, backoffMs: 1, ...opts }),
      error,
    );
    assert.equal(s.requests.length, requests);
  } finally {
    await s.close();
  }
}

Deno.test("fineWebDataset(): a 404 fails at once with the server's reason", async () => {
  await failsAgainst(
    404,
    { config: "nope" },
    /Cannot fetch fineweb rows from .*config=nope.*: HTTP 404: Not found for this config/,
    1,
  );
});

Deno.test("fineWebDataset(): a malformed response is rejected, not retried", async () => {
  await failsAgainst(
    "bad",
    {},
    /Invalid datasets-server response: 1 rows at offset 0, expected 1|row_idx 5, expected 0/,
    1,
  );
});

Deno.test("fineWebDataset(): a server that never answers times out, each attempt", async () => {
  await failsAgainst(
    "hang",
    { attempts: 2, timeoutMs: 100 },
    /after 2 attempts: no answer within 100 ms/,
    2,
  );
});

Deno.test("fineWebDataset(): offline gives one clear line naming the fix", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await assert.rejects(
    () => fineWebDataset(hp, { baseUrl: `http://127.0.0.1:${port}`, backoffMs: 1, attempts: 2 }),
    (e: Error) => {
      assert.match(e.message, /^Cannot fetch fineweb rows from http:\/\/127\.0\.0\.1:\d+\/rows\?/);
      assert.match(e.message, /after 2 attempts: .*--dataset embedded$/);
      assert.ok(!e.message.includes("\n"));
      return true;
    },
  );
});

Deno.test("fineWebDataset(): the page cache serves repeat pages and stays under its cap", async () => {
  const s = serve();
  const dir = await Deno.makeTempDir();
  try {
    const opts = { baseUrl: s.base, backoffMs: 1, cacheDir: dir, totalRows: N };
    const a = await fineWebDataset(hp, opts);
    assert.equal(s.requests.length, 0, "pinned totalRows needs no size probe");
    await a.pageBatches(1);
    assert.equal(s.requests.length, 1);
    const b = await fineWebDataset(hp, opts); // a fresh process would see the same files
    assert.deepEqual(await b.pageBatches(1), await a.pageBatches(1));
    assert.equal(s.requests.length, 1, "second dataset read page 1 from the cache");
    // A corrupt cache file is ignored and refetched.
    for await (const e of Deno.readDir(dir)) await Deno.writeTextFile(`${dir}/${e.name}`, "{oops");
    const c = await fineWebDataset(hp, opts);
    await c.pageBatches(1);
    assert.equal(s.requests.length, 2);
    // Cap: one page file is ~7 KB; a 10 KB cap keeps only the newest.
    const d = await fineWebDataset(hp, { ...opts, cacheMaxBytes: 10_000 });
    for (const p of [3, 4, 5]) await d.pageBatches(p);
    let total = 0, files = 0;
    for await (const e of Deno.readDir(dir)) {
      total += (await Deno.stat(`${dir}/${e.name}`)).size;
      files++;
    }
    assert.ok(total <= 10_000 && files === 1, `${files} files, ${total} bytes`);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseRows() checks shape, count and row indices", () => {
  assert.deepEqual(parseRows(rowsBody(998, 100), 998, 100), {
    texts: [text(998), text(999)],
    numRowsTotal: N,
  });
  assert.throws(() => parseRows(null, 0, 1), /no 'rows' array/);
  assert.throws(() => parseRows({ rows: [], num_rows_total: -1 }, 0, 1), /num_rows_total -1/);
  assert.throws(() => parseRows(rowsBody(0, 2), 1, 2), /row_idx 0, expected 1/);
  assert.throws(() => parseRows(rowsBody(0, 2), 0, 3), /2 rows at offset 0, expected 3/);
  const noText = rowsBody(0, 1);
  (noText.rows[0]!.row as { text?: string }).text = undefined;
  assert.throws(() => parseRows(noText, 0, 1), /row 0 has no text/);
});
