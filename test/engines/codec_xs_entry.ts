// Entry of the XS codec test bundle (test/engines/codec_xs.test.ts) and of the XS part of
// bench/codec.ts. Firmware-style code: it is bundled with the device codec and the framing into
// one script and must keep to the engine subset (ENGINES.md): no destructuring, spread, default
// parameters, computed keys, optional chaining, Map, Array.from, TextEncoder/TextDecoder...
//
// It installs the global `handleCommand(ArrayBuffer): ArrayBuffer` that the XS harness calls.
//
// Request:  op (1 byte) | name length n (1 byte) | message type name (n ASCII bytes) | payload
// Reply (ops 1-7): status (1 byte: 0 done, 1 an exception escaped) | body
//   1 ENCODE        payload: ASCII JSON of the device object, bytes as {"$b":[...]}
//                   body: the encoded bytes (status 1: the exception text)
//   2 DECODE        payload: protobuf bytes. body: ASCII JSON {"value", "error"} of tryDecode,
//                   Uint8Arrays as {"$b":[...]}; a non-codec exception gives {"thrown": text}
//   3 DECODE_BATCH  payload: repeated (length: 2 bytes big-endian | bytes); body: JSON array
//                   of what DECODE would give for each
//   4 FRAME_ENCODE  payload: bytes. body: encodeFrame(payload)
//   5 FRAME_DECODE  payload: mode (1 byte) | chunk size (1 byte) | stream bytes. Mode 0 feeds
//                   FrameDecoder.pushBytes in chunks of that size (0: all at once), mode 1 feeds
//                   pushLine with each "\n"-terminated line. body: JSON array of events
//                   {"f": payload} | {"c": console text} | {"e": code, "d": detail}
//   6 NAMES         body: JSON array of the message type names this bundle knows
//   7 ECHO_JSON     payload: ASCII JSON. body: the JSON after a revive/plain round trip (checks
//                   the transport itself)
// Metered ops for the bench (raw replies, no status byte, so that nothing but the work differs):
//   10 STASH_ENCODE payload as ENCODE: the revived object and the encoder are kept; empty reply
//   11 RUN_ENCODE   encodes the stashed object; reply: the encoded bytes' own ArrayBuffer
//   12 STASH_DECODE payload as DECODE: a copy of the bytes and the decoder are kept; empty reply
//   13 RUN_DECODE   decodes the stashed bytes, keeps the result; empty reply
//   14 STASH_FRAME  payload: bytes kept for RUN_FRAME; empty reply
//   15 RUN_FRAME    encodeFrame of the stashed bytes; reply: the frame's ArrayBuffer
// A RUN request is 2 bytes: op | dry. With dry = 1 it takes exactly the same path but skips the
// work and replies with an empty buffer, so compute(op, 0) - compute(op, 1) is the cost of the
// work alone (one encode, one decode or one encodeFrame, plus handing back its buffer).

import { MESSAGE_CODECS } from "../../protocol/generated/device_codec.ts";
import { tryDecode } from "../../protocol/codec_runtime.ts";
import { encodeFrame, FrameDecoder } from "../../protocol/framing.ts";

interface Codec {
  // Method syntax: each entry takes its own message type.
  encode(m: object): Uint8Array;
  decode(bytes: Uint8Array): object;
}

interface Dict {
  [key: string]: unknown;
}

// Every message type of the generated codec.
const CODECS = MESSAGE_CODECS as unknown as { [name: string]: Codec };

const EMPTY = new ArrayBuffer(0);

// ---------------------------------------------------------------------------------------------
// Transport helpers: ASCII text both ways (the device has no TextEncoder/TextDecoder), bytes in
// JSON as {"$b": [numbers]} (JSON revivers and replacers are ignored on Espruino).

function asciiText(bytes: Uint8Array, start: number): string {
  let s = "";
  for (let i = start; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

const HEX = "0123456789abcdef";

function escapeUnit(c: number): string {
  return "\\u" + HEX.charAt((c >> 12) & 15) + HEX.charAt((c >> 8) & 15) + HEX.charAt((c >> 4) & 15) + HEX.charAt(c & 15);
}

// Long strings are walked with for...of, never with charCodeAt(i) or substring: XS keeps strings
// as UTF-8, so indexing is a scan from the start and an indexed loop is quadratic in time (the
// compute meter does not show it, the wall clock does). Pieces are joined once at the end.

/** JSON text with every character outside printable ASCII written as a \u escape. */
function asciiJson(value: unknown): string {
  const s = JSON.stringify(value);
  const parts: string[] = [];
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c < 0x7f) parts.push(ch);
    else {
      parts.push(escapeUnit(c));
      if (ch.length > 1) parts.push(escapeUnit(ch.charCodeAt(1)));
    }
  }
  return parts.join("");
}

/** A status byte followed by the characters of an ASCII string, as an ArrayBuffer. */
function textReply(status: number, text: string): ArrayBuffer {
  const out = new Uint8Array(text.length + 1);
  out[0] = status;
  let i = 1;
  for (const ch of text) out[i++] = ch.charCodeAt(0) & 255;
  return out.buffer;
}

function bytesReply(status: number, bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.length + 1);
  out[0] = status;
  out.set(bytes, 1);
  return out.buffer;
}

/** The bytes' ArrayBuffer when they fill it, else a copy (ArrayBuffer.prototype.slice is missing on Espruino). */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer as ArrayBuffer;
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy.buffer;
}

/** Parsed JSON to device form: {"$b": [...]} becomes a Uint8Array. */
function revive(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) {
    const list: unknown[] = [];
    for (let i = 0; i < v.length; i++) list.push(revive(v[i]));
    return list;
  }
  const o = v as Dict;
  const b = o.$b;
  if (Array.isArray(b)) {
    const u = new Uint8Array(b.length);
    for (let i = 0; i < b.length; i++) u[i] = b[i] as number;
    return u;
  }
  const out: Dict = {};
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) out[keys[i]] = revive(o[keys[i]]);
  return out;
}

/** Device form to plain JSON data: a Uint8Array becomes {"$b": [...]}. */
function plain(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (v instanceof Uint8Array) {
    const list: number[] = [];
    for (let i = 0; i < v.length; i++) list.push(v[i]);
    return { $b: list };
  }
  if (Array.isArray(v)) {
    const list: unknown[] = [];
    for (let i = 0; i < v.length; i++) list.push(plain(v[i]));
    return list;
  }
  const o = v as Dict;
  const out: Dict = {};
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) out[keys[i]] = plain(o[keys[i]]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Operations

function decodeResult(codec: Codec, bytes: Uint8Array): Dict {
  try {
    const r = tryDecode(codec.decode, bytes);
    return { value: plain(r.value), error: r.error };
  } catch (e) {
    return { thrown: String(e) };
  }
}

function decodeBatch(codec: Codec, data: Uint8Array): unknown[] {
  const results: unknown[] = [];
  let p = 0;
  while (p + 2 <= data.length) {
    const n = (data[p] << 8) | data[p + 1];
    p += 2;
    results.push(decodeResult(codec, data.subarray(p, p + n)));
    p += n;
  }
  return results;
}

function frameDecode(data: Uint8Array): unknown[] {
  const events: unknown[] = [];
  const decoder = new FrameDecoder({
    onFrame: function (payload: Uint8Array) {
      events.push({ f: plain(payload) });
    },
    onConsole: function (text: string) {
      events.push({ c: text });
    },
    onError: function (code: number, detail: string) {
      events.push({ e: code, d: detail });
    },
  });
  const mode = data[0];
  const chunk = data[1];
  const stream = data.subarray(2);
  if (mode === 0) {
    if (chunk === 0) decoder.pushBytes(stream);
    else for (let i = 0; i < stream.length; i += chunk) decoder.pushBytes(stream.subarray(i, i + chunk));
  } else {
    let line = "";
    for (let i = 0; i < stream.length; i++) {
      const b = stream[i];
      if (b === 10) {
        decoder.pushLine(line);
        line = "";
      } else line += String.fromCharCode(b);
    }
  }
  return events;
}

// Bench state: what the metered RUN_* operations work on.
let stashCodec: Codec = CODECS.Health;
let stashValue: object = {};
let stashBytes: Uint8Array = new Uint8Array(0);
let stashFrame: Uint8Array = new Uint8Array(0);
let stashResult: unknown = null;

function handle(buf: ArrayBuffer): ArrayBuffer {
  const req = new Uint8Array(buf);
  const op = req[0];
  // The metered operations first, with the least work before them; `dry` skips only the work.
  if (op === 11) {
    if (req[1] === 1) return EMPTY;
    return ownBuffer(stashCodec.encode(stashValue));
  }
  if (op === 13) {
    if (req[1] === 1) return EMPTY;
    stashResult = stashCodec.decode(stashBytes);
    return EMPTY;
  }
  if (op === 15) {
    if (req[1] === 1) return EMPTY;
    return ownBuffer(encodeFrame(stashFrame));
  }

  const nameLength = req[1];
  const name = asciiText(req.subarray(2, 2 + nameLength), 0);
  const payload = req.subarray(2 + nameLength);
  const codec = CODECS[name];
  try {
    if (op === 6) return textReply(0, asciiJson(Object.keys(CODECS)));
    if (op === 4) return bytesReply(0, encodeFrame(payload));
    if (op === 5) return textReply(0, asciiJson(frameDecode(payload)));
    if (op === 7) return textReply(0, asciiJson(plain(revive(JSON.parse(asciiText(payload, 0))))));
    if (op === 14) {
      stashFrame = payload.slice();
      return EMPTY;
    }
    if (codec === undefined) return textReply(1, "unknown message type " + name);
    if (op === 1) return bytesReply(0, codec.encode(revive(JSON.parse(asciiText(payload, 0))) as object));
    if (op === 2) return textReply(0, asciiJson(decodeResult(codec, payload)));
    if (op === 3) return textReply(0, asciiJson(decodeBatch(codec, payload)));
    if (op === 10) {
      stashCodec = codec;
      stashValue = revive(JSON.parse(asciiText(payload, 0))) as object;
      return EMPTY;
    }
    if (op === 12) {
      stashCodec = codec;
      stashBytes = payload.slice();
      stashResult = null;
      return EMPTY;
    }
    return textReply(1, "unknown op " + op);
  } catch (e) {
    return textReply(1, asciiJson(String(e)));
  }
}

const host = globalThis as unknown as Dict;
host.handleCommand = handle;
// Keeps the last decode result reachable from the global object (RUN_DECODE's work is observable).
host.lastDecodeResult = function (): unknown {
  return stashResult;
};
