/**
 * SigV4 against vectors AWS publishes: the `aws-sig-v4-test-suite` (get-vanilla,
 * query ordering, post-vanilla), the signing-key example of the SigV4 docs, and the
 * four header-signing examples of the S3 API reference ("Signature Calculations for
 * the Authorization Header"). Values copied by hand from those pages.
 */
import assert from "node:assert/strict";
import {
  authorization,
  canonicalRequest,
  EMPTY_SHA256,
  sha256Hex,
  signingKey,
  stringToSign,
  toHex,
} from "./sigv4.ts";

const SUITE = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};
const S3DOC = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};

const sigOf = (auth: string) => /Signature=([0-9a-f]{64})$/.exec(auth)![1];

Deno.test("sha256Hex() of the empty string", async () => {
  assert.equal(await sha256Hex(""), EMPTY_SHA256);
});

Deno.test("signingKey() matches the SigV4 docs example (iam, 20150830)", async () => {
  const k = await signingKey(SUITE.secretAccessKey, "20150830", "us-east-1", "iam");
  assert.equal(toHex(k), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
});

Deno.test("aws-sig-v4-test-suite get-vanilla: canonical request, string to sign, signature", async () => {
  const req = {
    method: "GET",
    path: "/",
    query: new URLSearchParams(),
    headers: { Host: "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z" },
    payloadHash: EMPTY_SHA256,
  };
  const creq = canonicalRequest(req);
  assert.equal(
    creq,
    "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
      EMPTY_SHA256,
  );
  assert.equal(
    await stringToSign(creq, "20150830T123600Z", "us-east-1", "service"),
    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" +
      "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
  );
  const auth = await authorization(req, SUITE, "20150830T123600Z", "us-east-1", "service");
  assert.equal(
    auth,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " +
      "SignedHeaders=host;x-amz-date, " +
      "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
  );
});

Deno.test("aws-sig-v4-test-suite get-vanilla-query-order-key-case sorts the query", async () => {
  const req = {
    method: "GET",
    path: "/",
    query: new URLSearchParams("Param2=value2&Param1=value1"),
    headers: { Host: "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z" },
    payloadHash: EMPTY_SHA256,
  };
  assert.ok(canonicalRequest(req).startsWith("GET\n/\nParam1=value1&Param2=value2\n"));
  const auth = await authorization(req, SUITE, "20150830T123600Z", "us-east-1", "service");
  assert.equal(sigOf(auth), "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
});

Deno.test("aws-sig-v4-test-suite post-vanilla", async () => {
  const req = {
    method: "POST",
    path: "/",
    query: new URLSearchParams(),
    headers: { Host: "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z" },
    payloadHash: EMPTY_SHA256,
  };
  const auth = await authorization(req, SUITE, "20150830T123600Z", "us-east-1", "service");
  assert.equal(sigOf(auth), "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
});

Deno.test("S3 docs example: GET Object with a Range header", async () => {
  const req = {
    method: "GET",
    path: "/test.txt",
    query: new URLSearchParams(),
    headers: {
      host: "examplebucket.s3.amazonaws.com",
      range: "bytes=0-9",
      "x-amz-content-sha256": EMPTY_SHA256,
      "x-amz-date": "20130524T000000Z",
    },
    payloadHash: EMPTY_SHA256,
  };
  assert.equal(
    canonicalRequest(req),
    "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n" +
      `x-amz-content-sha256:${EMPTY_SHA256}\nx-amz-date:20130524T000000Z\n\n` +
      `host;range;x-amz-content-sha256;x-amz-date\n${EMPTY_SHA256}`,
  );
  const auth = await authorization(req, S3DOC, "20130524T000000Z", "us-east-1", "s3");
  assert.equal(sigOf(auth), "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
});

Deno.test("S3 docs example: PUT Object (encoded '$' in the key, storage class header)", async () => {
  const body = "Welcome to Amazon S3.";
  const hash = await sha256Hex(body);
  assert.equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  const req = {
    method: "PUT",
    path: "/test$file.text",
    query: new URLSearchParams(),
    headers: {
      Host: "examplebucket.s3.amazonaws.com",
      Date: "Fri, 24 May 2013 00:00:00 GMT",
      "x-amz-date": "20130524T000000Z",
      "x-amz-storage-class": "REDUCED_REDUNDANCY",
      "x-amz-content-sha256": hash,
    },
    payloadHash: hash,
  };
  assert.ok(canonicalRequest(req).startsWith("PUT\n/test%24file.text\n\n"));
  const auth = await authorization(req, S3DOC, "20130524T000000Z", "us-east-1", "s3");
  assert.equal(sigOf(auth), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
});

Deno.test("S3 docs example: GET Bucket lifecycle (empty-valued query parameter)", async () => {
  const req = {
    method: "GET",
    path: "/",
    query: new URLSearchParams("lifecycle"),
    headers: {
      host: "examplebucket.s3.amazonaws.com",
      "x-amz-content-sha256": EMPTY_SHA256,
      "x-amz-date": "20130524T000000Z",
    },
    payloadHash: EMPTY_SHA256,
  };
  assert.ok(canonicalRequest(req).startsWith("GET\n/\nlifecycle=\n"));
  const auth = await authorization(req, S3DOC, "20130524T000000Z", "us-east-1", "s3");
  assert.equal(sigOf(auth), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
});

Deno.test("S3 docs example: GET Bucket (List Objects) with max-keys and prefix", async () => {
  const req = {
    method: "GET",
    path: "/",
    query: new URLSearchParams("max-keys=2&prefix=J"),
    headers: {
      host: "examplebucket.s3.amazonaws.com",
      "x-amz-content-sha256": EMPTY_SHA256,
      "x-amz-date": "20130524T000000Z",
    },
    payloadHash: EMPTY_SHA256,
  };
  const auth = await authorization(req, S3DOC, "20130524T000000Z", "us-east-1", "s3");
  assert.equal(sigOf(auth), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
});
