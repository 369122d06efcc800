import assert from "node:assert/strict";

/** The modules whose every exported function carries an `@example` that `deno test --doc` runs (test.sh). */
export const DOC_MODULES = [
  "src/window.ts",
  "src/safetensors.ts",
  "src/slices/gather.ts",
  "src/slices/summary.ts",
  "src/slices/validate.ts",
  "src/slices/wire.ts",
  "src/store/mod.ts",
  "src/protocol/codec.ts",
  "src/protocol/bits.ts",
];

Deno.test("every exported function of the documented modules has an @example", async () => {
  const root = new URL("../", import.meta.url);
  const missing: string[] = [];
  for (const path of DOC_MODULES) {
    const text = await Deno.readTextFile(new URL(path, root));
    for (const m of text.matchAll(/^export (?:async )?function (\w+)/gm)) {
      const before = text.slice(0, m.index);
      const doc = before.slice(before.lastIndexOf("/**"));
      if (!doc.trimEnd().endsWith("*/") || !doc.includes("@example")) {
        missing.push(`${path} ${m[1]}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});

Deno.test("test.sh runs deno test --doc over exactly these modules", async () => {
  const sh = await Deno.readTextFile(new URL("../test.sh", import.meta.url));
  const line = sh.split("\n").find((l) => l.startsWith("DOC_MODULES="));
  assert.ok(line, "test.sh sets DOC_MODULES");
  assert.deepEqual(
    line.slice(line.indexOf('"') + 1, line.lastIndexOf('"')).split(" "),
    DOC_MODULES,
  );
  assert.match(sh, /run_tests --doc \$DOC_MODULES/);
});
