/**
 * A minimal S3-compatible object server on 127.0.0.1 for `bench slices`, shipped in the
 * binary (the tests' servers, s3rver and @20minutes/s3rver, are test packages the binary
 * leaves out). Path-style PUT, GET, HEAD and DELETE of objects in one bucket, kept in
 * memory; every request must carry a valid SigV4 signature and payload hash for
 * {@link BENCH_CREDS}. It leaves out listing, multipart uploads, ranges, presigned URLs
 * and persistence: it exists to time our client's upload and download path, and is no
 * independent check of that client (the tests use s3rver for that).
 *
 * @module
 */
import type { Credentials } from "../store/sigv4.ts";
import { authorization, sha256Hex } from "../store/sigv4.ts";

/** The only key pair the server accepts. */
export const BENCH_CREDS: Credentials = { accessKeyId: "BENCH", secretAccessKey: "BENCH-SECRET" };

/** A running server. */
export interface BenchS3 {
  endpoint: string;
  close(): Promise<void>;
}

/** Largest object accepted, so a stray client cannot fill memory. */
const MAX_OBJECT_BYTES = 1 << 30;

function s3Error(status: number, code: string): Response {
  return new Response(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code></Error>`, {
    status,
    headers: { "content-type": "application/xml" },
  });
}

/** Whether `req` (with body `body`) is signed for {@link BENCH_CREDS}. */
async function signedOk(req: Request, url: URL, body: Uint8Array | undefined): Promise<boolean> {
  const auth = req.headers.get("authorization") ?? "";
  const m = /Credential=([^/]+)\/\d{8}\/([^/]+)\/s3\/aws4_request, SignedHeaders=([^,]+),/.exec(
    auth,
  );
  const date = req.headers.get("x-amz-date");
  const payloadHash = req.headers.get("x-amz-content-sha256");
  if (!m || m[1] !== BENCH_CREDS.accessKeyId || !date || !payloadHash) return false;
  if (payloadHash !== await sha256Hex(body ?? new Uint8Array())) return false;
  const headers: Record<string, string> = {};
  for (const h of m[3]!.split(";")) headers[h] = req.headers.get(h) ?? "";
  const want = await authorization(
    {
      method: req.method,
      path: decodeURIComponent(url.pathname),
      query: url.searchParams,
      headers,
      payloadHash,
    },
    BENCH_CREDS,
    date,
    m[2]!,
    "s3",
  );
  return want === auth;
}

/** Starts a server holding one empty `bucket` on a free port. */
export function startBenchS3(bucket: string): BenchS3 {
  const objects = new Map<string, Uint8Array<ArrayBuffer>>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const [, b, ...rest] = url.pathname.split("/");
    const key = decodeURIComponent(rest.join("/"));
    if (b !== bucket || key === "") return s3Error(404, "NoSuchBucket");
    let body: Uint8Array<ArrayBuffer> | undefined;
    if (req.method === "PUT") {
      const declared = Number(req.headers.get("content-length") ?? NaN);
      if (!(declared <= MAX_OBJECT_BYTES)) return s3Error(400, "EntityTooLarge");
      body = new Uint8Array(await req.arrayBuffer());
    }
    if (!(await signedOk(req, url, body))) return s3Error(403, "SignatureDoesNotMatch");
    switch (req.method) {
      case "PUT":
        objects.set(key, body!);
        return new Response(null, { status: 200 });
      case "GET":
      case "HEAD": {
        const o = objects.get(key);
        if (!o) return s3Error(404, "NoSuchKey");
        return new Response(req.method === "GET" ? o : null, {
          headers: { "content-length": String(o.length) },
        });
      }
      case "DELETE":
        objects.delete(key);
        return new Response(null, { status: 204 });
      default:
        return s3Error(501, "NotImplemented");
    }
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    close: () => server.shutdown(),
  };
}
