// Offline frame decoding: the Envelope out of frame lines, and each kind of damage named.

import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeFrame } from "../../protocol/framing.ts";
import { Envelope } from "../../protocol/node/schema.ts";
import { decodeFrameLines, decodeHexPayload } from "./frame_decode.ts";

function frameLines(obj: Record<string, unknown>): string[] {
  return Buffer.from(encodeFrame(Envelope.encode(Envelope.fromObject(obj)).finish())).toString("latin1").trimEnd().split("\n");
}

const hello = { hello: { deviceId: "VVD-000123", role: 1, hardwareModel: "vvd-h1", firmwareVersion: "1.2.3", capabilities: [1, 2, 3], publicKey: Buffer.alloc(64, 7).toString("base64") } };
const health = { health: { batteryMv: 3912, stateOfChargePermille: 875, chargeState: 3 } };

test("a multi-line frame and a one-line frame, console text between them skipped", () => {
  const lines = [...frameLines(hello), "booted VVD-000123", ...frameLines(health)];
  assert.ok(frameLines(hello).length > 1, "the hello spans several lines");
  const r = decodeFrameLines(lines, true);
  assert.ok(r.ok);
  assert.equal((r.value[0].hello as Record<string, unknown>).deviceId, "VVD-000123");
  assert.deepEqual(r.value[1], { health: { batteryMv: 3912, stateOfChargePermille: 875, chargeState: "CHARGE_STATE_FAST_CHARGE" } });
});

test("console text is an error where frame lines were expected", () => {
  assert.deepEqual(decodeFrameLines(["booted"], false), { ok: false, error: { kind: "notFrameLine", line: 1 } });
});

test("each kind of damage is named with its line", () => {
  const [first, second] = frameLines(hello);
  const one = frameLines(health)[0];
  const flipped = one.slice(0, 6) + (one[6] === "A" ? "B" : "A") + one.slice(7);
  assert.deepEqual(decodeFrameLines([flipped], false), { ok: false, error: { kind: "badCrc", line: 1 } });
  const r = decodeFrameLines([first], false);
  assert.ok(!r.ok && r.error.kind === "truncated" && r.error.line === 1 && r.error.have < r.error.need);
  const cut = decodeFrameLines([first, one], false);
  assert.ok(!cut.ok && cut.error.kind === "truncated", "a new first line before the frame was complete");
  assert.deepEqual(decodeFrameLines([second], false), { ok: false, error: { kind: "orphan", line: 1 } });
  assert.deepEqual(decodeFrameLines([one.slice(0, -2)], false), { ok: false, error: { kind: "cutLine", line: 1, chars: one.length - 3 } });
  const bad = decodeFrameLines(["!AB$S"], false);
  assert.ok(!bad.ok && bad.error.kind === "badBase64");
  assert.deepEqual(decodeFrameLines(["booted"], true), { ok: false, error: { kind: "noFrames" } });
});

test("a frame that is sound but holds no Envelope", () => {
  const empty = Buffer.from(encodeFrame(new Uint8Array(0))).toString("latin1").trim();
  assert.deepEqual(decodeFrameLines([empty], false), { ok: false, error: { kind: "notEnvelope", frame: 1, detail: null } });
  const junk = Buffer.from(encodeFrame(new Uint8Array([0x12, 0xff]))).toString("latin1").trim();
  const r = decodeFrameLines([junk], false);
  assert.ok(!r.ok && r.error.kind === "notEnvelope" && r.error.detail !== null);
});

test("hex payloads", () => {
  const hex = Buffer.from(Envelope.encode(Envelope.fromObject(health)).finish()).toString("hex");
  const r = decodeHexPayload(`0x${hex.replace(/(..)/g, "$1 ")}`);
  assert.ok(r.ok);
  assert.equal((r.value.health as Record<string, unknown>).batteryMv, 3912);
  assert.deepEqual(decodeHexPayload("abc"), { ok: false, error: { kind: "badHex", reason: "oddLength" } });
  assert.deepEqual(decodeHexPayload("zz"), { ok: false, error: { kind: "badHex", reason: "badChar", char: "z" } });
  assert.deepEqual(decodeHexPayload(""), { ok: false, error: { kind: "badHex", reason: "empty" } });
});
