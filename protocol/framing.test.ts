// Line framing: encoding limits, decoding of bytes and lines, and every kind of bad input.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { ReadlineParser } from "@serialport/parser-readline";
import {
  encodeFrame,
  framedSize,
  FrameDecoder,
  crc16Xmodem,
  MAX_FRAME_PAYLOAD,
  MAX_LINE_BYTES,
} from "./framing.ts";
import { ErrorCode } from "./generated/device_codec.ts";
import { mulberry32 } from "./node/random_messages.ts";

interface Seen {
  frames: Uint8Array[];
  consoles: string[];
  errors: { code: number; detail: string }[];
}

function collector(): { dec: FrameDecoder; seen: Seen } {
  const seen: Seen = { frames: [], consoles: [], errors: [] };
  const dec = new FrameDecoder({
    onFrame: (p) => seen.frames.push(p),
    onConsole: (t) => seen.consoles.push(t),
    onError: (code, detail) => seen.errors.push({ code, detail }),
  });
  return { dec, seen };
}

function payload(n: number, seed = 1): Uint8Array {
  const r = mulberry32(seed);
  const p = new Uint8Array(n);
  for (let i = 0; i < n; i++) p[i] = Math.floor(r() * 256);
  return p;
}

const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"));
const text = (b: Uint8Array): string => Buffer.from(b).toString("latin1");

test("CRC-16/XMODEM check value", () => {
  // The standard check: CRC of "123456789" is 0x31C3.
  assert.equal(crc16Xmodem(ascii("123456789"), 0, 9), 0x31c3);
  assert.equal(crc16Xmodem(new Uint8Array(0), 0, 0), 0);
});

test("frames are lines of at most 128 bytes with markers outside base64, and decode back", () => {
  for (const n of [0, 1, 2, 3, 90, 91, 92, 93, 94, 200, 1000, MAX_FRAME_PAYLOAD]) {
    const p = payload(n, n + 1);
    const wire = encodeFrame(p);
    assert.equal(wire.length, framedSize(n), `size of ${n}`);
    const lines = text(wire).split("\n");
    assert.equal(lines.pop(), "", "ends with a newline");
    lines.forEach((l, i) => {
      assert.ok(l.length + 1 <= MAX_LINE_BYTES, `line ${i} of ${n}: ${l.length + 1} bytes`);
      assert.equal(l[0], i === 0 ? "!" : "*");
      assert.match(l.slice(1), /^[A-Za-z0-9+/]+={0,2}$/);
      assert.equal((l.length - 1) % 4, 0);
    });
    const { dec, seen } = collector();
    dec.pushBytes(wire);
    assert.equal(seen.errors.length, 0);
    assert.deepEqual(seen.frames, [p]);
  }
});

test("an oversized payload is not encoded", () => {
  assert.equal(encodeFrame(new Uint8Array(MAX_FRAME_PAYLOAD + 1)).length, 0);
});

test("bytes arriving one at a time, interleaved console text, CRLF endings", () => {
  const { dec, seen } = collector();
  const a = payload(300, 2);
  const b = payload(10, 3);
  const stream = Buffer.concat([
    Buffer.from("boot: pollkit 1.0\r\n"),
    Buffer.from(encodeFrame(a)),
    Buffer.from("\n\nwarn: low battery\n"),
    Buffer.from(text(encodeFrame(b)).replace(/\n/g, "\r\n"), "latin1"),
  ]);
  for (const byte of stream) dec.pushBytes(new Uint8Array([byte]));
  assert.deepEqual(seen.frames, [a, b]);
  assert.deepEqual(seen.consoles, ["boot: pollkit 1.0", "warn: low battery"]);
  assert.equal(seen.errors.length, 0);
});

test("host path: @serialport/parser-readline lines into the decoder", async () => {
  const { dec, seen } = collector();
  const frames = [payload(5, 4), payload(400, 5), payload(60, 6)];
  const input = Buffer.concat([Buffer.from("console line\n"), ...frames.map((f) => Buffer.from(encodeFrame(f)))]);
  // The parser's readable side is not in object mode: lines arrive one per 'data' event.
  const parser = new ReadlineParser({ delimiter: "\n", encoding: "latin1" });
  parser.on("data", (line: string) => dec.pushLine(line));
  const done = new Promise((resolve) => parser.on("end", resolve));
  Readable.from([input.subarray(0, 17), input.subarray(17, 200), input.subarray(200)]).pipe(parser);
  await done;
  assert.deepEqual(seen.frames, frames);
  assert.deepEqual(seen.consoles, ["console line"]);
});

test("a bit flip anywhere is caught: CRC or base64 or length error, never a wrong frame", () => {
  const p = payload(150, 7);
  const wire = encodeFrame(p);
  let caught = 0;
  for (let i = 0; i < wire.length; i++) {
    if (wire[i] === 10) continue;
    for (let bit = 0; bit < 8; bit++) {
      const bad = wire.slice();
      bad[i] ^= 1 << bit;
      const { dec, seen } = collector();
      dec.pushBytes(bad);
      dec.pushBytes(encodeFrame(p)); // the next good frame still arrives
      assert.ok(seen.frames.length >= 1);
      for (const f of seen.frames) assert.deepEqual(f, p, `flip at ${i}.${bit} produced a wrong frame`);
      if (seen.frames.length === 1) caught++;
    }
  }
  assert.ok(caught > 0);
});

test("truncated frames, stray continuations, garbage and overlong lines resynchronise", () => {
  const p = payload(300, 8);
  const q = payload(20, 9);
  const wire = text(encodeFrame(p)).split("\n").filter((l) => l !== "");
  const { dec, seen } = collector();
  dec.pushLine(wire[0]); // first fragment only: frame cut short by the next first marker
  dec.pushBytes(encodeFrame(q));
  dec.pushLine(wire[2]); // continuation without a first fragment
  dec.pushLine("!@@@@"); // bad base64
  dec.pushLine("!AAA"); // not a multiple of 4
  dec.pushBytes(ascii("!" + "A".repeat(300) + "\n")); // overlong line on the byte path
  dec.pushBytes(ascii("\x00\xff\xfe garbage \x01\n"));
  dec.pushBytes(encodeFrame(p));
  assert.deepEqual(seen.frames, [q, p]);
  const codes = seen.errors.map((e) => e.code);
  assert.deepEqual(codes, [
    ErrorCode.MALFORMED_FRAME, // cut short
    ErrorCode.MALFORMED_FRAME, // stray continuation
    ErrorCode.MALFORMED_FRAME, // bad base64
    ErrorCode.MALFORMED_FRAME, // length
    ErrorCode.MALFORMED_FRAME, // overlong line
  ]);
  assert.match(seen.errors[0].detail, /cut short/);
  assert.match(seen.errors[4].detail, /longer than 128/);
  assert.equal(seen.consoles.length, 1, "binary garbage without a marker is console text");
});

test("a length field above the limit is refused at the first line", () => {
  const { dec, seen } = collector();
  // length 0xFFFF in the first two bytes
  dec.pushLine("!" + Buffer.from([0xff, 0xff, 1, 2, 3, 4]).toString("base64"));
  assert.equal(seen.errors[0].code, ErrorCode.FRAME_TOO_LARGE);
  const small = new FrameDecoder({ maxFramePayload: 16, onFrame: () => assert.fail(), onConsole: () => {}, onError: (c) => seen.errors.push({ code: c, detail: "" }) });
  small.pushBytes(encodeFrame(payload(17)));
  assert.equal(seen.errors[1].code, ErrorCode.FRAME_TOO_LARGE);
});

test("a replayed frame decodes again (duplicates are the receiver's job, by sequence number)", () => {
  const { dec, seen } = collector();
  const wire = encodeFrame(payload(33, 10));
  dec.pushBytes(wire);
  dec.pushBytes(wire);
  assert.equal(seen.frames.length, 2);
});

test("random line noise never throws and never yields a frame that was not sent", () => {
  const rand = mulberry32(11);
  const sent = payload(120, 12);
  const { dec, seen } = collector();
  for (let i = 0; i < 3000; i++) {
    const noise = new Uint8Array(Math.floor(rand() * 200));
    for (let k = 0; k < noise.length; k++) {
      const r = rand();
      noise[k] = r < 0.05 ? 10 : r < 0.1 ? 33 : r < 0.15 ? 42 : Math.floor(rand() * 256);
    }
    dec.pushBytes(noise);
    if (i % 100 === 0) {
      dec.pushBytes(ascii("\n"));
      dec.pushBytes(encodeFrame(sent));
    }
  }
  assert.ok(seen.frames.length >= 25, `${seen.frames.length} good frames got through`);
  for (const f of seen.frames) assert.deepEqual(f, sent);
  assert.ok(seen.errors.length > 100);
});
