import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

/** Non-test modules under src/, relative to the repository root. */
async function srcModules(dir = "src"): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(new URL(dir, root))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await srcModules(path));
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) out.push(path);
  }
  return out;
}

Deno.test("src/ holds only what the program runs: every module is reachable from main.ts", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const reached = new Set(
    info.modules.map((m) => m.specifier).filter((s) => s.startsWith(root.href))
      .map((s) => s.slice(root.href.length)),
  );
  // Test helpers, oracles and generator code live in tests/ and scripts/ instead.
  const unreached = (await srcModules()).filter((m) => !reached.has(m)).sort();
  assert.deepEqual(unreached, []);
});
