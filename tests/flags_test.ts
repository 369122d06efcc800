import assert from "node:assert/strict";
import { flagTable, helpLines, markdownRows, parseOptions, UsageError } from "../src/cli/args.ts";
import { COMMANDS, DATASET_NAMES, NETWORK_NAMES, SURFACES } from "../src/cli/flags.ts";
import { usage } from "../src/cli/command.ts";
import { BENCHES } from "../src/cli/bench.ts";
import { NETWORKS } from "../src/chain/subtensor.ts";
import { DATASETS } from "../src/data/open.ts";
import { withFlagTables } from "../scripts/readme_flags.ts";

/** Table rows as trimmed cells (deno fmt pads them; the separator row is dropped). */
function rows(markdown: string): string[][] {
  return markdown.split("\n").filter((l) => l.startsWith("|") && !/^\|[\s|:-]+\|$/.test(l))
    .map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
}

Deno.test("README: the flag tables are the schema's (run `deno task flags` when this fails)", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = (s: string) =>
    s.slice(s.indexOf("<!-- flags:begin"), s.indexOf("<!-- flags:end"));
  // deno fmt pads table cells, stretches separator rows and wraps long lines: undo that.
  const norm = (s: string) => section(s).replace(/-{3,}/g, "---").replace(/\s+/g, " ").trim();
  const want = await withFlagTables(readme);
  assert.equal(norm(readme), norm(want));
  // The comparison itself sees every row.
  const one = markdownRows(SURFACES[1]!)[1]!;
  assert.ok(rows(section(readme)).some((r) => r.join() === one.join()));
});

Deno.test("schema: choice lists written out in flags.ts equal their modules' own", () => {
  assert.deepEqual([...NETWORK_NAMES], [...NETWORKS]);
  assert.deepEqual([...DATASET_NAMES], [...DATASETS]);
});

Deno.test("schema: every command's surfaces compose, and its --help lists each of its flags", async () => {
  const used = new Set<string>(["global"]);
  const check = (name: string, surfaces: typeof SURFACES, help: string) => {
    for (const s of surfaces) {
      assert.ok(SURFACES.includes(s), `${name}: surface ${s.name} is not in SURFACES`);
      used.add(s.name);
    }
    for (const f of flagTable(surfaces).values()) {
      assert.match(help, new RegExp(`--${f.name.replace(".", "\\.")}\\b`), `${name} --${f.name}`);
    }
  };
  for (const c of COMMANDS) {
    const { command } = await c.load();
    if (c.name !== "bench") check(c.name, command.surfaces, usage(command.about, command.surfaces));
  }
  for (const [n, b] of Object.entries(BENCHES)) {
    check(`bench ${n}`, b.surfaces, usage("", b.surfaces));
  }
  assert.deepEqual(SURFACES.map((s) => s.name).filter((n) => !used.has(n)), []);
});

const T = [{
  name: "t",
  title: "Test",
  flags: [
    { name: "n", type: "int", min: 1, max: 9, default: 3, help: "a count" },
    { name: "c", type: "choice", choices: ["a", "b"], help: "a choice" },
    { name: "p", type: "string", env: "T_PATH", help: "a path" },
    { name: "x", type: "number", min: 0, max: 1, help: "a fraction" },
    { name: "b", type: "boolean", help: "a switch" },
  ],
}] as const;

Deno.test("schema: defaults, environment, and values checked by their row", () => {
  const env = (k: string) => (k === "T_PATH" ? "/from/env" : undefined);
  const { options: d } = parseOptions([], T, { env });
  assert.equal(d.num("n"), 3);
  assert.equal(d.strOpt("c"), undefined);
  assert.equal(d.strOpt("p"), "/from/env");
  assert.equal(d.bool("b"), false);
  assert.equal(d.given.size, 0);
  const { options: o } = parseOptions(
    ["--n", "9", "--c=b", "--p", "/flag", "--x", "0.25", "--b"],
    T,
    { env },
  );
  assert.deepEqual([o.num("n"), o.str("c"), o.str("p"), o.num("x"), o.bool("b")], [
    9,
    "b",
    "/flag",
    0.25,
    true,
  ]);
  const bad: [string[], RegExp][] = [
    [["--n", "10"], /^Invalid --n '10': expected an integer from 1 to 9$/],
    [["--n", "2.5"], /^Invalid --n '2.5': expected an integer from 1 to 9$/],
    [["--c", "z"], /^Invalid --c 'z': expected one of a, b$/],
    [["--x", "NaN"], /^Invalid --x 'NaN': expected a number from 0 to 1$/],
    [["--q"], /^Unknown flag '--q': accepted flags are --n --c --p --x --b$/],
    [["--p"], /--p/],
  ];
  for (const [argv, re] of bad) {
    assert.throws(
      () => parseOptions(argv, T, { env }),
      (e) => e instanceof UsageError && re.test(e.message),
      argv.join(" "),
    );
  }
  assert.throws(() => d.need("c", "pick one"), /Missing --c: pick one$/);
  assert.throws(() => d.num("nope"), /not in this command's schema/);
  assert.throws(() => flagTable([T[0], T[0]]), /declared twice/);
});

Deno.test("schema: help shows defaults and environment variables", () => {
  const text = helpLines(T).join("\n");
  assert.match(text, /--n V +a count \(default 3\)/);
  assert.match(text, /--p V +a path \(env T_PATH\)/);
});

Deno.test("the binary check runs every benchmark", async () => {
  const sh = await Deno.readTextFile(new URL("../scripts/check_binary.sh", import.meta.url));
  const ran = [...sh.matchAll(/^run bench (\w+) /gm)].map((m) => m[1]);
  assert.deepEqual(ran.sort(), Object.keys(BENCHES).sort());
});

Deno.test("schema: every environment variable it lists is read somewhere in src/", async () => {
  const texts: string[] = [];
  const walk = async (dir: URL) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(new URL(`${e.name}/`, dir));
      else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts") && e.name !== "flags.ts") {
        texts.push(await Deno.readTextFile(new URL(e.name, dir)));
      }
    }
  };
  await walk(new URL("../src/", import.meta.url));
  const names = SURFACES.flatMap((s) => [
    ...(s.environment ?? []).map((e) => e.name),
    ...s.flags.flatMap((f) => f.env ? [f.env] : []),
  ]);
  assert.ok(names.length > 0);
  const unread = names.filter((n) => !texts.some((t) => t.includes(`"${n}"`)));
  assert.deepEqual(unread, []);
});
