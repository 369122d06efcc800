import assert from "node:assert/strict";
import {
  type BucketLocation,
  CommitmentRejected,
  countByReason,
  describeLocation,
  encodeCommitment,
  MAX_COMMITMENT_TEXT,
  nonPublicHost,
  parseCommitment,
  policyFor,
  r2AccountOf,
  r2Endpoint,
  redactCommitment,
  type RejectReason,
  screenCommitments,
} from "./commitment.ts";

const R2_ACCOUNT = "0123456789abcdef0123456789abcdef";
// The shapes of a real R2 API token's S3 keys: a 32-hex key id and a 64-hex secret.
const R2_READ = { accessKeyId: "a".repeat(32), secretAccessKey: "0f".repeat(32) };

// Hand-written expected texts: the encoder must produce exactly these bytes.
const EXAMPLES: [string, BucketLocation, string][] = [
  ["AWS", { bucket: "my-bucket", region: "eu-west-1" }, "b1;b=my-bucket;g=eu-west-1"],
  [
    "AWS with a prefix and read keys",
    {
      bucket: "team.bucket",
      prefix: "boltzmann/run-1",
      read: {
        accessKeyId: "AKIAIOSFODNN7EXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      },
    },
    "b1;b=team.bucket;p=boltzmann/run-1;k=AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  ],
  ["R2", { r2Account: R2_ACCOUNT, bucket: "slices" }, `b1;r2=${R2_ACCOUNT};b=slices`],
  [
    "R2 with read keys",
    { r2Account: R2_ACCOUNT, bucket: "slices", read: R2_READ },
    `b1;r2=${R2_ACCOUNT};b=slices;k=${"a".repeat(32)}:${"0f".repeat(32)}`,
  ],
  [
    "self-hosted",
    { endpoint: "https://s3.example.org:9000", bucket: "boltzmann", prefix: "m1" },
    "b1;e=https://s3.example.org:9000;b=boltzmann;p=m1",
  ],
];

Deno.test("commitments for AWS, R2 and a custom endpoint round-trip to the exact text", () => {
  for (const [what, loc, text] of EXAMPLES) {
    assert.deepEqual(encodeCommitment(loc), text, what);
    assert.deepEqual(parseCommitment(text, "public"), loc, what);
    assert.deepEqual(parseCommitment(text, "local"), loc, what);
  }
});

Deno.test("commitments without keys fit one Raw128 field (what the Python SDK's get_commitment reads)", () => {
  for (const [what, loc] of EXAMPLES) {
    const n = new TextEncoder().encode(encodeCommitment(loc)).length;
    if (!loc.read) assert.ok(n <= 128, `${what}: ${n} bytes`);
  }
  // R2 with read keys is 32 + 32 + 64 bytes of ids alone: it needs a second field.
  assert.deepEqual(encodeCommitment(EXAMPLES[3]![1]).length, 147);
});

Deno.test("local networks accept http and file:// endpoints", () => {
  const minio = { endpoint: "http://127.0.0.1:9000", bucket: "b-1" };
  assert.deepEqual(parseCommitment(encodeCommitment(minio), "local"), minio);
  const dir = { endpoint: "file:///tmp/devnet/stores/miner-0" };
  assert.deepEqual(encodeCommitment(dir), "b1;e=file:///tmp/devnet/stores/miner-0");
  assert.deepEqual(parseCommitment("b1;e=file:///tmp/devnet/stores/miner-0", "local"), dir);
});

function refused(text: string, policy: "public" | "local", reason: RejectReason, detail?: RegExp) {
  let e: unknown;
  try {
    parseCommitment(text, policy);
  } catch (x) {
    e = x;
  }
  assert.ok(e instanceof CommitmentRejected, `${text} was accepted`);
  assert.deepEqual(e.reason, reason, `${text} → ${e.message}`);
  if (detail) assert.match(e.message, detail);
}

/** A hostile text, or a text and what the refusal's message must say. */
type Case = string | [string, RegExp];

const PRIVATE_HOSTS = [
  "10.0.0.1",
  "127.0.0.1",
  "192.168.1.20:9000",
  "172.16.0.1",
  "169.254.169.254",
  "100.64.0.1",
  "0.0.0.0",
  "0x7f.0.0.1",
  "2130706433",
  "[::1]",
  "[fe80::1]",
  "[fd00::5]",
  "[::ffff:10.0.0.1]",
  "localhost:9000",
  "minio",
  "s3.corp.internal",
];

/** Hostile commitments, by the reason each must be refused for and the policy it is read with. */
const HOSTILE: [RejectReason, "public" | "local", Case[]][] = [
  // Overlong: one byte over the limit, even though every field is well-formed.
  ["too_long", "local", [[`b1;b=abc;p=${"a".repeat(MAX_COMMITMENT_TEXT - 10)}`, /385 bytes/]]],
  // Private, loopback, link-local IP literals on a public network (and their disguises).
  ["private_endpoint", "public", PRIVATE_HOSTS.map((h) => `b1;e=https://${h};b=abc`)],
  ["file_endpoint", "public", ["b1;e=file:///tmp/x"]],
  ["insecure_endpoint", "public", ["b1;e=http://s3.example.org;b=abc"]],
  // Local networks accept any host, but only in canonical form.
  ["bad_endpoint", "local", [
    [`b1;e=https://${"a".repeat(130)}.com;b=abc`, /more than 128/],
    ["b1;e=http://0x7f.0.0.1;b=abc", /canonical/],
    "b1;e=file:///tmp/../etc",
    "b1;e=ftp://s3.example.org;b=abc",
    ["b1;e=https://s3.example.org/path;b=abc", /no path/],
    "b1;e=https://u:p@s3.example.org;b=abc",
    ["b1;e=https://S3.example.org;b=abc", /canonical/],
    ["b1;e=https://s3.example.org:443;b=abc", /canonical/],
    `b1;r2=${R2_ACCOUNT.toUpperCase()};b=abc`,
  ]],
  // Spaces, controls, non-ASCII; then bad characters inside a field.
  ["bad_characters", "local", [
    ["b1;b=my bucket", /U\+0020 at offset 7/],
    "b1;b=abc\n",
    ["b1;b=bück", /U\+00fc/],
  ]],
  ["bad_bucket", "local", ["b1;b=My_Bucket", "b1;b=a..b", "b1;b=192.168.0.1"]],
  ["bad_prefix", "local", [
    [`b1;b=abc;p=${"a".repeat(65)}`, /65 characters/],
    "b1;b=abc;p=/lead",
    "b1;b=abc;p=a/../b",
  ]],
  ["bad_region", "local", ["b1;b=abc;g=EU_WEST"]],
  ["bad_credentials", "local", ["b1;b=abc;k=ab:secretsecret", "b1;b=abc;k=AKIAIOSFODNN7EXAMPLE"]],
  // Shape: old formats, unknown and repeated fields, missing bucket, conflicting fields.
  ["bad_format", "local", [
    ["s3://my-bucket", /older boltzmann/],
    "file:///tmp/x",
    "",
    "b2;b=abc",
    "b1;b=abc;g",
    "b1;b=abc;g=",
    `b1;e=https://s3.example.org;r2=${R2_ACCOUNT};b=abc`,
    "b1;e=file:///tmp/x;b=abc",
  ]],
  ["unknown_field", "local", ["b1;b=abc;x=1"]],
  ["duplicate_field", "local", ["b1;b=abc;b=def"]],
  ["missing_bucket", "local", ["b1;g=us-east-1"]],
];

Deno.test("hostile commitments are refused with their reason", () => {
  assert.equal(
    `b1;b=abc;p=${"a".repeat(MAX_COMMITMENT_TEXT - 10)}`.length,
    MAX_COMMITMENT_TEXT + 1,
  );
  for (const [reason, policy, cases] of HOSTILE) {
    for (const c of cases) {
      const [text, detail] = typeof c === "string" ? [c] : c;
      refused(text, policy, reason, detail);
    }
  }
  // Every reason that a text alone can cause has a case.
  const covered = new Set(HOSTILE.map(([r]) => r));
  assert.deepEqual(CommitmentRejected.reasons.filter((r) => !covered.has(r)), []);
});

Deno.test("encodeCommitment refuses what it could not read back", () => {
  assert.throws(() => encodeCommitment({ bucket: "a;b=c" }), CommitmentRejected);
  assert.throws(() => encodeCommitment({ bucket: "Upper" }), /^CommitmentRejected: bad_bucket/);
  assert.throws(() => encodeCommitment({}), /missing_bucket/);
});

Deno.test("public hosts: names and addresses that are reachable from anywhere pass", () => {
  for (
    const h of ["s3.amazonaws.com", "abc.r2.cloudflarestorage.com", "8.8.8.8", "[2606:4700::1]"]
  ) {
    assert.deepEqual(nonPublicHost(h), null, h);
  }
  assert.deepEqual(nonPublicHost("[64:ff9b::a00:1]"), "a private address");
  assert.deepEqual(nonPublicHost("[2001:db8::1]"), "a reserved or multicast address");
});

Deno.test("R2 endpoints and descriptions", () => {
  assert.deepEqual(r2AccountOf(r2Endpoint(R2_ACCOUNT)), R2_ACCOUNT);
  assert.deepEqual(r2AccountOf("https://s3.example.org"), null);
  const d = describeLocation({ r2Account: R2_ACCOUNT, bucket: "slices", read: R2_READ });
  assert.deepEqual(d, `s3://slices on R2 account ${R2_ACCOUNT} (read keys committed)`);
  assert.ok(!d.includes(R2_READ.secretAccessKey));
  assert.deepEqual(describeLocation({ bucket: "b-1", prefix: "x" }), "s3://b-1/x on AWS us-east-1");
});

Deno.test("redactCommitment hides the read keys and keeps every other field", () => {
  const text = encodeCommitment({ r2Account: R2_ACCOUNT, bucket: "slices", read: R2_READ });
  const red = redactCommitment(text);
  assert.equal(red, `b1;r2=${R2_ACCOUNT};b=slices;k=<redacted>`);
  assert.ok(!red.includes(R2_READ.accessKeyId) && !red.includes(R2_READ.secretAccessKey));
  assert.equal(redactCommitment("b1;b=abc;g=eu-west-1"), "b1;b=abc;g=eu-west-1");
  // Unparseable text is still redacted, never refused: it is only being logged.
  assert.equal(redactCommitment("junk;k=a:b;k=c"), "junk;k=<redacted>;k=<redacted>");
});

Deno.test("policyFor: local only when told, or for a chain on this machine", () => {
  assert.equal(policyFor("local"), "local");
  assert.equal(policyFor(undefined, "ws://127.0.0.1:9944"), "local");
  assert.equal(policyFor(undefined, "ws://localhost:9944"), "local");
  assert.equal(policyFor("local", "ws://10.0.0.5:9944"), "local");
  assert.equal(policyFor("test"), "public");
  assert.equal(policyFor("finney"), "public");
  assert.equal(policyFor(undefined), "public");
  assert.equal(policyFor(undefined, "wss://lite.example.org:443"), "public");
  assert.equal(policyFor("test", "ws://127.0.0.1:9944"), "public");
});

Deno.test("screenCommitments splits accepted and refused, with reasons and counts", () => {
  const m = new Map([
    ["hk-a", "b1;b=bucket-a"],
    ["hk-b", "b1;e=https://10.1.2.3;b=bucket-b"],
    ["hk-c", "s3://old-style"],
    ["hk-d", "b1;e=file:///tmp/d"],
  ]);
  const pub = screenCommitments(m, "public");
  assert.deepEqual([...pub.accepted.keys()], ["hk-a"]);
  assert.deepEqual(pub.refused.map((r) => [r.hotkey, r.reason]), [
    ["hk-b", "private_endpoint"],
    ["hk-c", "bad_format"],
    ["hk-d", "file_endpoint"],
  ]);
  const counts = countByReason(pub.refused);
  assert.equal(counts.private_endpoint, 1);
  assert.equal(counts.too_long, 0);
  assert.equal(Object.keys(counts).length, CommitmentRejected.reasons.length);
  const local = screenCommitments(m, "local");
  assert.deepEqual([...local.accepted.keys()], ["hk-a", "hk-b", "hk-d"]);
});
