/**
 * Test helpers: local S3-compatible servers on 127.0.0.1 with a random port and a
 * temporary directory, started and stopped by the test itself. `s3rver` accepts any
 * signature; `@20minutes/s3rver` verifies SigV4 (key pair S3RVER / S3RVER).
 *
 * @module
 */
import S3rver from "s3rver";
import S3rverStrict from "@20minutes/s3rver";

/** A running server. */
export interface TestS3 {
  endpoint: string;
  dir: string;
  close(): Promise<void>;
}

/** Credentials `@20minutes/s3rver` knows (its built-in dummy account). */
export const STRICT_CREDS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

/** Starts a server with `buckets` created; `strict` picks the SigV4-verifying one. */
export async function startS3(buckets: string[], strict = false): Promise<TestS3> {
  const dir = await Deno.makeTempDir({ prefix: "boltzmann-s3-" });
  // deno-lint-ignore no-explicit-any
  const Ctor: any = strict ? S3rverStrict : S3rver;
  const server = new Ctor({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const addr = await server.run();
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    dir,
    async close() {
      await server.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
