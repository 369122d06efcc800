import assert from "node:assert/strict";
import { VERSION } from "../src/version.ts";
import { cli } from "./_cli.ts";

Deno.test("cli --version prints the version", async () => {
  const r = await cli("--version");
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), `boltzmann ${VERSION}`);
});

Deno.test("cli --help lists every subcommand, and each has its own --help", async () => {
  const r = await cli("--help");
  assert.equal(r.code, 0);
  for (const c of ["miner", "validator", "inspect", "devnet", "bench", "doctor"]) {
    assert.match(r.stdout, new RegExp(`\\n  ${c} `));
    const h = await cli(c, "--help");
    assert.equal(h.code, 0, `${c} --help`);
    assert.match(h.stdout, new RegExp(`boltzmann ${c}`));
  }
});

Deno.test("cli unknown command, flag or value: one line, exit code 2", async () => {
  const bad = [
    [["frobnicate"], /Unknown command 'frobnicate': use one of miner, /],
    [["doctor", "--bogus"], /Unknown flag '--bogus': accepted flags are /],
    [["doctor", "--log-level", "loud"], /Invalid --log-level 'loud': expected one of trace, /],
    [["bench", "nope"], /Unknown benchmark 'nope': use one of indices, /],
    [["bench", "indices", "--preset", "huge"], /Unknown preset 'huge': use one of tiny, seed/],
  ] as const;
  for (const [args, re] of bad) {
    const r = await cli(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line for ${args.join(" ")}`);
  }
});

Deno.test("cli doctor --json runs a graph on the CPU provider", async () => {
  const r = await cli("doctor", "--json");
  assert.equal(r.code, 0);
  const rep = JSON.parse(r.stdout);
  assert.equal(rep.boltzmann, VERSION);
  assert.deepEqual(rep.providers[0].provider, "cpu");
  assert.equal(rep.providers[0].ok, true);
  assert.ok(["set", "unset"].includes(rep.s3_credentials.AWS_SECRET_ACCESS_KEY));
});
