// The firmware's SHA-256 against Node's, one-shot and streamed in pieces of every size, across
// the block boundaries where padding goes wrong.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Sha256, sha256 } from "./sha256.ts";

const ref = (d: Uint8Array): string => createHash("sha256").update(d).digest("hex");
const hex = (d: Uint8Array): string => Buffer.from(d).toString("hex");

test("SHA-256 equals node:crypto for lengths 0 to 300 and a large input, one-shot and streamed", () => {
  assert.equal(hex(sha256(new TextEncoder().encode("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  for (let n = 0; n <= 300; n++) {
    const d = randomBytes(n);
    assert.equal(hex(sha256(d)), ref(d), `length ${n}`);
    const h = new Sha256();
    const step = 1 + (n % 13);
    for (let i = 0; i < n; i += step) h.update(d, i, Math.min(n, i + step));
    assert.equal(hex(h.digest()), ref(d), `length ${n} in pieces of ${step}`);
  }
  const big = randomBytes(200_000);
  assert.equal(hex(sha256(big)), ref(big));
});
