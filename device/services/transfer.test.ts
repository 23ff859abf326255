// The device's transfer receiver: in-order chunks, repeats answered without rewriting, resume of
// the same file, a different file of the same size started afresh, and refusals.

import { test } from "node:test";
import assert from "node:assert/strict";
import { TransferReceiver, CountingSink } from "./transfer.ts";
import { crc32 } from "./journal.ts";
import { Status } from "../../protocol/generated/device_codec.ts";

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

test("chunks in order, repeats ignored, gaps refused with the offset to resume from", () => {
  const sink = new CountingSink();
  const rx = new TransferReceiver(sink);
  const data = bytes(3000, 1);
  assert.equal(rx.begin({ kind: 2, totalBytes: 3000 }).status, Status.OK);
  assert.equal(rx.chunk({ offset: 0, data: data.subarray(0, 1000) }).status, Status.OK);
  assert.equal(rx.chunk({ offset: 0, data: data.subarray(0, 1000) }).status, Status.OK, "a repeat is answered");
  const gap = rx.chunk({ offset: 2000, data: data.subarray(2000) });
  assert.equal(gap.status, Status.BAD_ARGUMENT);
  assert.equal(gap.transfer?.receivedBytes, 1000);
  assert.equal(rx.end(new Uint8Array(0)).status, Status.BAD_ARGUMENT, "not complete yet");
  rx.chunk({ offset: 1000, data: data.subarray(1000, 2000) });
  rx.chunk({ offset: 2000, data: data.subarray(2000) });
  const end = rx.end(new Uint8Array(0));
  assert.equal(end.status, Status.OK);
  assert.equal(end.transfer?.complete, true);
  assert.equal(sink.digest(), crc32(data, 0, data.length), "each byte written once, in order");
  assert.equal(rx.begin({ kind: 2, totalBytes: 0 }).status, Status.BAD_ARGUMENT);
});

test("resume continues the same file; another file of the same size starts afresh", () => {
  const sink = new CountingSink();
  const rx = new TransferReceiver(sink);
  const a = bytes(2000, 1);
  const b = bytes(2000, 2);
  const shaA = new Uint8Array(32).fill(0xaa);
  const shaB = new Uint8Array(32).fill(0xbb);
  rx.begin({ kind: 2, totalBytes: 2000, sha256: shaA });
  rx.chunk({ offset: 0, data: a.subarray(0, 1000) });
  const again = rx.begin({ kind: 2, totalBytes: 2000, sha256: shaA });
  assert.equal(again.transfer?.receivedBytes, 1000, "same file: resume where it was");
  const other = rx.begin({ kind: 2, totalBytes: 2000, sha256: shaB });
  assert.equal(other.transfer?.receivedBytes, 0, "different file: from the start");
  rx.chunk({ offset: 0, data: b });
  assert.equal(rx.end(new Uint8Array(0)).status, Status.OK);
  assert.equal(sink.digest(), crc32(b, 0, b.length), "only the second file's bytes");
});
