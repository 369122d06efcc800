/**
 * `--bucket` → {@link Store}: `s3://name`, `file:///abs/dir`, or a plain bucket name
 * (S3). S3 settings come from environment values the CLI passes in (`loadEnv()` in
 * src/cli/config.ts reads the process environment and `.env`; this module never does).
 *
 * @module
 */
import { LocalStore } from "./local.ts";
import type { Store } from "./mod.ts";
import { S3Store } from "./s3.ts";
import type { Credentials } from "./sigv4.ts";

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
 * The store a `--bucket` value names.
 * @param bucket `s3://name`, `file:///abs/dir` or a plain S3 bucket name
 * @param env S3 settings (see {@link s3Env}); `anonymous` drops the credentials, for
 *   reading a peer's public bucket
 * @throws {RangeError} on anything else, naming the accepted forms
 */
export function resolveStore(bucket: string, env: S3Env = {}, anonymous = false): Store {
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
    return new LocalStore(path.replace(/\/+$/, "") || "/");
  }
  const name = b.startsWith("s3://") ? b.slice(5).replace(/\/$/, "") : b;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) {
    throw new RangeError(
      `Invalid bucket '${bucket}': use s3://name, file:///absolute/dir, or a bucket name of 3-63 lowercase letters, digits, '.' and '-'`,
    );
  }
  return new S3Store({
    bucket: name,
    endpoint: env.endpoint,
    region: env.region,
    pathStyle: env.pathStyle,
    credentials: anonymous ? undefined : env.credentials,
  });
}
