// The ballot scanner driver against the scanner model over a simulated UART (virtual clock):
// framing across chunk boundaries, every kind of damaged frame answered with a NAK, noise, and
// the stop-and-wait exchange with resends.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../../simulator/clock/timers.ts";
import {
  BallotScannerModel,
  ballotBody,
  scannerFrame,
  crc16XmodemBits,
} from "../../simulator/models/ballot_scanner.ts";
import {
  BallotScanner,
  NAK_BAD_FRAME,
  NAK_MALFORMED,
  NAK_TOO_LARGE,
  SCAN_SEQ_UNKNOWN,
  encodeScannerFrame,
  parseBallotBody,
  type ScannedBallot,
} from "./ballot_scanner.ts";
import { crc16Xmodem } from "../../protocol/framing.ts";

function rig(chunkBytes = 32) {
  const clock = new VirtualClock();
  const timers = clock.timers();
  const model = new BallotScannerModel({ timers, chunkBytes, resendMs: 300 });
  const driver = new BallotScanner({ uart: model.uart, timers });
  const got: ScannedBallot[] = [];
  driver.onBallot((b) => got.push(b));
  return { clock, model, driver, got };
}

test("the model's bit-by-bit CRC equals the firmware's table CRC (CRC-16/XMODEM check value)", () => {
  const check = new TextEncoder().encode("123456789");
  assert.equal(crc16Xmodem(check, 0, check.length), 0x31c3);
  assert.equal(crc16XmodemBits(check, 0, check.length), 0x31c3);
  const body = ballotBody(7, { serial: "B-0001", marks: [[1], []] });
  assert.deepEqual(encodeScannerFrame(body), scannerFrame(body));
});

test("a ballot frame split into 1-byte chunks is read whole; the firmware's ACK completes it", () => {
  const r = rig(1);
  r.driver.onBallot((b) => {
    r.got.push(b);
    r.driver.ack(b.seq, 41);
  });
  r.model.feed({ serial: "SN-77", marks: [[2], [0, 9]] });
  r.clock.advance(100);
  assert.equal(r.got.length, 1);
  assert.equal(r.got[0].serial, "SN-77");
  assert.deepEqual(r.got[0].contests, [0, 1]);
  assert.deepEqual([...r.got[0].masks[0]], [0x04]);
  assert.deepEqual([...r.got[0].masks[1]], [0x01, 0x02]);
  assert.deepEqual(r.model.accepted, [{ serial: "SN-77", seq: 1, ordinal: 41 }]);
  assert.equal(r.model.resends, 0);
});

test("no answer: the scanner resends the same SEQ and bytes until it gets one", () => {
  const r = rig();
  let answer = false;
  r.driver.onBallot((b) => {
    r.got.push(b);
    if (answer) r.driver.ack(b.seq, 1);
  });
  r.model.feed({ serial: "X1", marks: [[0]] });
  r.clock.advance(1000);
  assert.ok(r.got.length >= 3, "resent on timeout");
  assert.ok(r.got.every((b) => b.seq === r.got[0].seq && b.serial === "X1"));
  answer = true;
  r.clock.advance(400);
  assert.equal(r.model.acked, 1);
  assert.ok(r.model.timeouts >= 3);
});

test("a frame whose STX was damaged on the line is refused, and the scanner's resend gets through", () => {
  const r = rig();
  r.driver.onBallot((b) => {
    r.got.push(b);
    r.driver.ack(b.seq, 1);
  });
  r.model.pair.flipNext("toDevice");
  // The mask byte 0x02 of option 1 looks like an STX once the real one is gone: the driver reads
  // a false frame there, refuses it (seq unknown) and the scanner sends the ballot again.
  r.model.feed({ serial: "CRC-1", marks: [[1]] });
  r.clock.advance(1000);
  assert.ok(r.model.replies.length >= 2);
  assert.equal(r.model.replies[0].type, "nak");
  assert.equal(r.model.replies[0].seq, SCAN_SEQ_UNKNOWN);
  assert.equal(r.model.acked, 1, "the resend got through");
  assert.equal(r.model.rejected, 0, "a NAK with an unknown SEQ never diverts the ballot");
  assert.equal(r.got.length, 1, "the damaged frame never reached the service");
  assert.ok(r.driver.errors >= 1);
});

test("a damaged body byte (CRC mismatch) is refused", () => {
  const r = rig();
  const f = scannerFrame(ballotBody(5, { serial: "AB", marks: [[0]] }));
  f[6] ^= 0x20;
  r.model.sendRaw(f);
  r.clock.advance(100);
  assert.equal(r.got.length, 0);
  assert.deepEqual(
    r.model.replies.map((x) => [x.type, x.reason]),
    [["nak", NAK_BAD_FRAME]],
  );
});

test("a truncated frame is answered NAK_BAD_FRAME after the quiet time, and the next frame is read", () => {
  const r = rig();
  const f = scannerFrame(ballotBody(9, { serial: "TRUNC", marks: [[0]] }));
  r.model.sendRaw(f.subarray(0, f.length - 4));
  r.clock.advance(100);
  assert.equal(r.got.length, 0);
  assert.equal(r.model.replies.length, 1);
  assert.equal(r.model.replies[0].reason, NAK_BAD_FRAME);
  r.model.sendRaw(scannerFrame(ballotBody(10, { serial: "OK", marks: [[0]] })));
  r.clock.advance(100);
  assert.equal(r.got.length, 1);
  assert.equal(r.got[0].serial, "OK");
});

test("an oversized length is answered NAK_TOO_LARGE and its bytes are not read as frames", () => {
  const r = rig();
  const big = new Uint8Array(400).fill(0x02); // STX bytes inside the body must not start frames
  big[0] = 0x42;
  const f = new Uint8Array(405);
  f[0] = 0x02;
  f[1] = 400 >> 8;
  f[2] = 400 & 0xff;
  f.set(big, 3);
  r.model.sendRaw(f);
  r.clock.advance(200);
  assert.equal(r.got.length, 0);
  assert.deepEqual(
    r.model.replies.map((x) => [x.type, x.reason]),
    [["nak", NAK_TOO_LARGE]],
  );
});

test("noise between frames is dropped without an answer", () => {
  const r = rig();
  r.model.sendRaw(Uint8Array.of(0x00, 0xff, 0x41, 0x13));
  r.model.sendRaw(scannerFrame(ballotBody(3, { serial: "N1", marks: [[0]] })));
  r.clock.advance(100);
  assert.equal(r.got.length, 1);
  assert.equal(r.driver.noise, 4);
  assert.equal(r.model.replies.length, 0);
});

test("protocol rules of the body: each violation is NAK_MALFORMED with its SEQ", () => {
  const cases: [string, number[]][] = [
    ["serial length 0", [0x42, 0, 4, 0, 0]],
    ["serial too long", [0x42, 0, 4, 33, ...new Array(33).fill(0x41), 0]],
    ["non-printable serial", [0x42, 0, 4, 2, 0x41, 0x0a, 0]],
    ["17 contests", [0x42, 0, 4, 1, 0x41, 17, ...new Array(17).fill(0).flatMap((_, i) => [i, 1, 1])]],
    ["mask of 0 bytes", [0x42, 0, 4, 1, 0x41, 1, 0, 0]],
    ["mask of 17 bytes", [0x42, 0, 4, 1, 0x41, 1, 0, 17, ...new Array(17).fill(0)]],
    ["contest listed twice", [0x42, 0, 4, 1, 0x41, 2, 0, 1, 1, 0, 1, 2]],
    ["ends inside the marks", [0x42, 0, 4, 1, 0x41, 1, 0, 2, 1]],
    ["trailing bytes", [0x42, 0, 4, 1, 0x41, 1, 0, 1, 1, 9]],
    ["SEQ 0", [0x42, 0, 0, 1, 0x41, 0]],
    ["unknown type", [0x77, 0, 4, 1]],
  ];
  for (const [what, body] of cases) {
    const r = rig();
    r.model.sendRaw(scannerFrame(Uint8Array.from(body)));
    r.clock.advance(100);
    assert.equal(r.got.length, 0, what);
    assert.equal(r.model.replies.length, 1, what);
    assert.equal(r.model.replies[0].type, "nak", what);
    assert.equal(r.model.replies[0].reason, NAK_MALFORMED, what);
    assert.equal(r.model.replies[0].seq, (body[1] << 8) | body[2], what);
  }
});

test("parseBallotBody accepts an unmarked ballot and a full 16-contest ballot", () => {
  const empty = parseBallotBody(Uint8Array.from([0x42, 0, 1, 3, 0x41, 0x42, 0x43, 0]));
  assert.equal(empty.error, null);
  assert.deepEqual(empty.ballot!.contests, []);
  const marks = Array.from({ length: 16 }, (_, i) => [i]);
  const full = parseBallotBody(ballotBody(2, { serial: "F".repeat(32), marks }));
  assert.equal(full.error, null);
  assert.equal(full.ballot!.contests.length, 16);
});

test("a PING is answered with the polls state and count", () => {
  const r = rig();
  r.driver.onPing((seq) => r.driver.status(seq, 3, 12));
  r.model.ping(0x1234);
  r.clock.advance(100);
  assert.deepEqual(
    r.model.replies.map((x) => [x.type, x.seq, x.state, x.counted]),
    [["status", 0x1234, 3, 12]],
  );
});

test("close() stops answering", () => {
  const r = rig();
  r.driver.close();
  r.model.feed({ serial: "Z", marks: [[0]] });
  r.clock.advance(100);
  assert.equal(r.got.length, 0);
  assert.equal(r.model.replies.length, 0);
});
