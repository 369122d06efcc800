/**
 * `--bucket` → {@link Store}: `s3://name[/prefix]`, `file:///abs/dir`, or a plain bucket
 * name (S3). S3 settings come from environment values the CLI passes in (`loadEnv()` in
 * src/cli/config.ts reads the process environment and `.env`; this module never does).
 *
 * Also both ends of the bucket commitment (src/chain/commitment.ts): the location our own
 * bucket is committed as ({@link committedLocation}), and a peer's store opened from its
 * commitment alone ({@link storeForLocation}).
 *
 * @module
 */
import { LocalStore } from "./local.ts";
import type { Store } from "./mod.ts";
import { S3Store } from "./s3.ts";
import type { Credentials } from "./sigv4.ts";
import {
  type BucketLocation,
  encodeCommitment,
  r2AccountOf,
  r2Endpoint,
} from "../chain/commitment.ts";

/** S3 settings from `AWS_*` variables. */
export interface S3Env {
  credentials?: Credentials;
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
}

/**
 * Picks the S3 settings out of an environment lookup (the CLI's `loadEnv()`): `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL` (or
 * `AWS_ENDPOINT_URL_S3`), `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_S3_FORCE_PATH_STYLE`.
 * @throws {RangeError} when only one of the key pair is set
 */
export function s3Env(get: (key: string) => string | undefined): S3Env {
  const env = (k: string) => get(k) || undefined;
  const id = env("AWS_ACCESS_KEY_ID"), secret = env("AWS_SECRET_ACCESS_KEY");
  if ((id === undefined) !== (secret === undefined)) {
    throw new RangeError(
      "Incomplete S3 credentials: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither for anonymous reads",
    );
  }
  const ps = env("AWS_S3_FORCE_PATH_STYLE")?.toLowerCase();
  return {
    credentials: id && secret
      ? { accessKeyId: id, secretAccessKey: secret, sessionToken: env("AWS_SESSION_TOKEN") }
      : undefined,
    endpoint: env("AWS_ENDPOINT_URL_S3") ?? env("AWS_ENDPOINT_URL"),
    region: env("AWS_REGION") ?? env("AWS_DEFAULT_REGION"),
    pathStyle: ps === undefined || ps === "" ? undefined : ps === "true" || ps === "1",
  };
}

/**
 * The read-only keys we commit for peers: `BOLTZMANN_READ_ACCESS_KEY_ID` and
 * `BOLTZMANN_READ_SECRET_ACCESS_KEY` (both or neither). They become public on chain.
 * @throws {RangeError} when only one is set
 */
export function readKeysEnv(
  get: (key: string) => string | undefined,
): BucketLocation["read"] | undefined {
  const id = get("BOLTZMANN_READ_ACCESS_KEY_ID") || undefined;
  const secret = get("BOLTZMANN_READ_SECRET_ACCESS_KEY") || undefined;
  if ((id === undefined) !== (secret === undefined)) {
    throw new RangeError(
      "Incomplete read keys: set both BOLTZMANN_READ_ACCESS_KEY_ID and BOLTZMANN_READ_SECRET_ACCESS_KEY, or neither (public bucket)",
    );
  }
  return id && secret ? { accessKeyId: id, secretAccessKey: secret } : undefined;
}

/** A parsed `--bucket` value. */
type BucketFlag = { dir: string } | { bucket: string; prefix?: string };

function parseBucketFlag(bucket: string): BucketFlag {
  const b = bucket.trim();
  if (b.startsWith("file://")) {
    let path: string;
    try {
      const u = new URL(b);
      path = u.host === "" ? decodeURIComponent(u.pathname) : "";
    } catch {
      path = "";
    }
    if (!path.startsWith("/")) {
      throw new RangeError(`Invalid bucket '${bucket}': a local store is file:///absolute/dir`);
    }
    return { dir: path.replace(/\/+$/, "") || "/" };
  }
  const rest = b.startsWith("s3://") ? b.slice(5).replace(/\/+$/, "") : b;
  const slash = rest.indexOf("/");
  const name = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? undefined : rest.slice(slash + 1);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) {
    throw new RangeError(
      `Invalid bucket '${bucket}': use s3://name[/prefix], file:///absolute/dir, or a bucket name of 3-63 lowercase letters, digits, '.' and '-'`,
    );
  }
  return { bucket: name, prefix };
}

/**
 * The store a `--bucket` value names.
 * @param bucket `s3://name[/prefix]`, `file:///abs/dir` or a plain S3 bucket name
 * @param env S3 settings (see {@link s3Env}); `anonymous` drops the credentials, for
 *   reading a peer's public bucket
 * @throws {RangeError} on anything else, naming the accepted forms
 */
export function resolveStore(bucket: string, env: S3Env = {}, anonymous = false): Store {
  const f = parseBucketFlag(bucket);
  if ("dir" in f) return new LocalStore(f.dir);
  return new S3Store({
    bucket: f.bucket,
    prefix: f.prefix,
    endpoint: env.endpoint,
    region: env.region,
    pathStyle: env.pathStyle,
    credentials: anonymous ? undefined : env.credentials,
  });
}

/**
 * Where our own `--bucket` is, as we commit it: a directory, or the bucket and prefix with
 * the endpoint and region of `env` (an R2 endpoint becomes its account id, an AWS regional
 * endpoint its region) and the public read keys, if any.
 * @throws {RangeError} on a bad flag or an endpoint with a path
 * @throws {CommitmentRejected} (src/chain/commitment.ts) when it cannot be committed
 */
export function committedLocation(
  bucket: string,
  env: S3Env = {},
  read?: BucketLocation["read"],
): BucketLocation {
  const f = parseBucketFlag(bucket);
  if ("dir" in f) return { endpoint: `file://${f.dir}` };
  const loc: BucketLocation = {};
  let region = env.region;
  if (env.endpoint) {
    let u: URL;
    try {
      u = new URL(env.endpoint);
    } catch {
      throw new RangeError(
        `Invalid AWS_ENDPOINT_URL '${env.endpoint}': expected https://host[:port]`,
      );
    }
    if (u.pathname !== "/" || u.search || u.username) {
      throw new RangeError(
        `Cannot commit AWS_ENDPOINT_URL '${env.endpoint}': peers need scheme://host[:port], no path`,
      );
    }
    const origin = `${u.protocol}//${u.host}`;
    const account = r2AccountOf(origin);
    const aws = /^https:\/\/s3\.([a-z0-9-]+)\.amazonaws\.com$/.exec(origin);
    if (account) {
      loc.r2Account = account;
      if (region === "auto") region = undefined;
    } else if (aws && (region === undefined || region === aws[1])) {
      region = aws[1];
    } else {
      loc.endpoint = origin;
    }
  }
  loc.bucket = f.bucket;
  if (region !== undefined && region !== "us-east-1") loc.region = region;
  if (f.prefix !== undefined) loc.prefix = f.prefix;
  if (read) loc.read = read;
  encodeCommitment(loc); // refuses what peers could not parse
  return loc;
}

/**
 * A peer's store opened from its commitment alone: its endpoint, region, bucket, prefix,
 * and its committed read keys (anonymous requests when it committed none).
 */
export function storeForLocation(loc: BucketLocation): Store {
  if (loc.endpoint?.startsWith("file://")) return new LocalStore(loc.endpoint.slice(7) || "/");
  const endpoint = loc.r2Account ? r2Endpoint(loc.r2Account) : loc.endpoint;
  return new S3Store({
    bucket: loc.bucket!,
    prefix: loc.prefix,
    endpoint,
    region: loc.region ?? (loc.r2Account ? "auto" : "us-east-1"),
    pathStyle: endpoint !== undefined,
    credentials: loc.read,
  });
}
