// The device codec and the framing running on Moddable XS (xsnap), against Node: the entry
// codec_xs_entry.ts is bundled with esbuild the way firmware is (one IIFE script, engine subset)
// and driven through test/helpers/xs_harness.ts. Every vector of every message type must give
// the same bytes and the same values in XS as on Node (where the device codec and protobufjs
// already agree, see protocol/codec.test.ts); malformed input must come back as a decode error,
// with the same text as on Node, never as an exception; frames must be byte-identical both ways.
//
// Transport (see the entry's header): requests are op | name length | name | payload; values
// travel as ASCII JSON (non-ASCII characters as \u escapes, because firmware has no TextDecoder)
// with byte fields as {"$b": [numbers]}.

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse as acornParse } from "acorn";
import * as codec from "../../protocol/generated/device_codec.ts";
import { tryDecode } from "../../protocol/codec_runtime.ts";
import { encodeFrame, FrameDecoder, MAX_FRAME_PAYLOAD } from "../../protocol/framing.ts";
import { canonical, messageTypes, toDeviceObject, type } from "../../protocol/node/schema.ts";
import { mulberry32, randomMessage } from "../../protocol/node/random_messages.ts";
import { startXsBundle, type XsWorker } from "../helpers/xs_harness.ts";
import { checkBundle } from "../../tools/bundle_check.ts";
import { asciiJson, buildCodecBundle, plain, request, revive } from "./codec_xs_transport.ts";

type Json = Record<string, unknown>;
interface Vector {
  name: string;
  value: Json;
  hex: string;
}

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const VECTOR_DIR = join(REPO, "protocol/vectors");

const OP = {
  ENCODE: 1,
  DECODE: 2,
  DECODE_BATCH: 3,
  FRAME_ENCODE: 4,
  FRAME_DECODE: 5,
  NAMES: 6,
  ECHO_JSON: 7,
} as const;

// ---------------------------------------------------------------------------------------------
// Transport, Node side

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

let xs: XsWorker;
let bundle: string;

/** Sends a request; returns the reply body, failing the test on status 1 (an exception in XS). */
async function call(op: number, name: string, payload: Uint8Array | string): Promise<Uint8Array> {
  const { reply } = await xs.command(request(op, name, payload));
  assert.ok(reply.length >= 1, `op ${op} ${name}: empty reply`);
  const body = reply.subarray(1);
  if (reply[0] !== 0) assert.fail(`op ${op} ${name}: XS says ${Buffer.from(body).toString("latin1")}`);
  return body;
}

async function callJson(op: number, name: string, payload: Uint8Array | string): Promise<unknown> {
  const body = await call(op, name, payload);
  return revive(JSON.parse(Buffer.from(body).toString("latin1")));
}

interface DecodeOutcome {
  value?: unknown;
  error?: string | null;
  thrown?: string;
}

/** What the entry's DECODE gives, computed on Node with the same code. */
function nodeDecode(name: string, bytes: Uint8Array): DecodeOutcome {
  const decode = (codec as unknown as Record<string, (b: Uint8Array) => object>)[`decode${name}`];
  try {
    const r = tryDecode(decode, bytes);
    return { value: r.value, error: r.error };
  } catch (e) {
    return { thrown: String(e) };
  }
}

function nodeEncode(name: string, value: object): Uint8Array {
  return (codec as unknown as Record<string, (m: object) => Uint8Array>)[`encode${name}`](value);
}

function batch(list: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const b of list) {
    assert.ok(b.length < 65536);
    parts.push(Uint8Array.of(b.length >> 8, b.length & 255), b);
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** Decodes every input in XS (one command) and checks each outcome against Node's. */
async function decodeAllAndCompare(name: string, inputs: Uint8Array[], label: string): Promise<DecodeOutcome[]> {
  const outcomes = (await callJson(OP.DECODE_BATCH, name, batch(inputs))) as DecodeOutcome[];
  assert.equal(outcomes.length, inputs.length, `${label}: one outcome per input`);
  for (let i = 0; i < inputs.length; i++) {
    const got = outcomes[i];
    assert.equal(got.thrown, undefined, `${label} ${hex(inputs[i])}: XS threw instead of returning an error`);
    assert.deepEqual(got, nodeDecode(name, inputs[i]), `${label} ${hex(inputs[i])}: XS and Node differ`);
  }
  return outcomes;
}

function loadVectors(): { message: string; vectors: Vector[] }[] {
  return readdirSync(VECTOR_DIR)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(VECTOR_DIR, f), "utf8")) as { message: string; vectors: Vector[] });
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  bundle = await buildCodecBundle();
  xs = await startXsBundle(bundle, { name: "codec" });
});

after(async () => {
  await xs?.close();
});

describe("the bundle", () => {
  test("is plain ES2020 with no esbuild helpers injected", () => {
    // Class fields (ES2022), `??=` and the like would fail to parse here.
    acornParse(bundle, { ecmaVersion: 2020, sourceType: "script" });
    const helpers = bundle.match(/\b__[A-Za-z]+\b/g) ?? [];
    assert.deepEqual([...new Set(helpers)], [], "esbuild runtime helpers in the bundle");
    assert.match(bundle, /^\(\(\) => \{/m, "one IIFE");
  });

  test("passes the bundle checker (engine subset)", () => {
    assert.deepEqual(checkBundle(bundle, "codec_xs.js"), []);
  });

  test("knows every message type of the schema", async () => {
    const names = (await callJson(OP.NAMES, "", "")) as string[];
    assert.deepEqual([...names].sort(), messageTypes().map((t) => t.name).sort());
  });

  test("transport round trip (non-ASCII text, lone surrogates, bytes, 2^53 - 1)", async () => {
    const value = {
      text: "مركز الاقتراع ١٢ – بغداد 𝄞🗳️ \u0000\u007f\u0080 \"q\" \\ \ud800 x \udfff",
      big: 9007199254740991,
      neg: -2147483648,
      bytes: new Uint8Array([0, 1, 127, 128, 255]),
      list: [new Uint8Array(0), { inner: new Uint8Array([42]) }],
    };
    assert.deepEqual(await callJson(OP.ECHO_JSON, "", asciiJson(plain(value))), value);
  });
});

describe("vectors in XS", () => {
  for (const { message, vectors } of loadVectors()) {
    test(`${message}: XS encodes every vector to its bytes and decodes them to its value`, async () => {
      const t = type(message);
      for (const v of vectors) {
        const device = toDeviceObject(t, v.value);
        const bytes = await call(OP.ENCODE, message, asciiJson(plain(device)));
        assert.equal(hex(bytes), v.hex, `${message} "${v.name}": XS encode`);
        assert.equal(hex(nodeEncode(message, device)), v.hex, `${message} "${v.name}": Node device encode`);

        const got = (await callJson(OP.DECODE, message, fromHex(v.hex))) as DecodeOutcome;
        assert.equal(got.thrown, undefined, `${message} "${v.name}": XS threw`);
        assert.equal(got.error, null, `${message} "${v.name}": XS decode error`);
        assert.deepEqual(canonical(t, got.value as object), canonical(t, v.value), `${message} "${v.name}": XS decode`);
        // The exact device objects match too (defaults filled, oneof fields absent, Uint8Arrays).
        assert.deepEqual(got.value, nodeDecode(message, fromHex(v.hex)).value, `${message} "${v.name}": XS vs Node object`);
      }
    });
  }

  test("random valid messages: XS and Node give the same bytes and objects", async () => {
    const rand = mulberry32(20260101);
    let n = 0;
    for (const t of messageTypes()) {
      for (let i = 0; i < 8; i++) {
        const device = toDeviceObject(t, randomMessage(t, rand));
        const expected = nodeEncode(t.name, device);
        const bytes = await call(OP.ENCODE, t.name, asciiJson(plain(device)));
        assert.equal(hex(bytes), hex(expected), `${t.name} random #${i}`);
        const got = (await callJson(OP.DECODE, t.name, expected)) as DecodeOutcome;
        assert.deepEqual(got, nodeDecode(t.name, expected), `${t.name} random #${i} decode`);
        n++;
      }
    }
    assert.equal(n, messageTypes().length * 8);
  });
});

describe("malformed input in XS", () => {
  test("specific malformed inputs give the expected error text, as on Node", async () => {
    const cases: [string, string, string, RegExp][] = [
      ["Health", "truncated varint", "08", /^truncated input at byte \d+$/],
      ["Health", "truncated value after a tag", "0893", /^truncated input/],
      ["Health", "11-byte varint (32-bit field)", "08ffffffffffffffffffff01", /varint longer than 10 bytes/],
      ["Health", "11-byte varint (uint64 field)", "68ffffffffffffffffffff01", /varint longer than 10 bytes/],
      ["Health", "11-byte varint as a tag", "ffffffffffffffffffff01", /varint longer than 10 bytes/],
      ["Health", "uint64 of 2^53", "68808080808080808001", /above 2\^53/],
      ["Ack", "uint64 of 2^64 - 1", "08ffffffffffffffffff01", /above 2\^53/],
      ["Envelope", "length past the end", "0a05", /runs past the end/],
      ["Envelope", "nested message longer than its bytes", "12050801", /runs past/],
      ["Envelope", "nested field overruns its message", "12010801", /truncated|runs past/],
      ["Envelope", "group wire type", "0b", /wire type 3/],
      ["Envelope", "wire type 7", "0f", /wire type 7/],
      ["Envelope", "field number zero", "0001", /field number 0/],
      ["Envelope", "fixed64 of an unknown field cut short", "f90101020304", /truncated/],
      ["Hello", "truncated fixed32", "35010203", /truncated/],
      ["Hello", "packed run cut inside a varint", "3a0201ff", /truncated|runs past/],
      ["Record", "bytes longer than the message", "22ff01aabb", /runs past the end/],
    ];
    for (const [message, label, h, re] of cases) {
      const got = (await callJson(OP.DECODE, message, fromHex(h))) as DecodeOutcome;
      assert.equal(got.thrown, undefined, `${label}: XS threw ${got.thrown}`);
      assert.equal(got.value, null, `${label}: no value`);
      assert.equal(typeof got.error, "string", `${label}: an error string`);
      assert.match(got.error as string, re, label);
      assert.deepEqual(got, nodeDecode(message, fromHex(h)), `${label}: same as Node`);
    }
  });

  test("every vector cut short decodes in XS exactly as on Node (error or prefix value)", async () => {
    let errors = 0;
    for (const { message, vectors } of loadVectors()) {
      for (const v of vectors) {
        const full = fromHex(v.hex);
        const n = full.length;
        if (n === 0) continue;
        // Every prefix of short vectors; for long ones the first 64, the last 16 and a stride.
        const lengths = new Set<number>();
        for (let k = 0; k < n; k++) {
          if (n <= 96 || k < 64 || k >= n - 16 || k % Math.ceil(n / 32) === 0) lengths.add(k);
        }
        const inputs = [...lengths].map((k) => full.slice(0, k));
        const outcomes = await decodeAllAndCompare(message, inputs, `${message} "${v.name}" cut`);
        errors += outcomes.filter((o) => typeof o.error === "string").length;
      }
    }
    assert.ok(errors > 300, `truncations that must fail: ${errors}`);
  });

  test("random and mutated bytes: XS never throws and agrees with Node", async () => {
    const rand = mulberry32(1128);
    const seeds = loadVectors().flatMap((f) => f.vectors.map((v) => ({ message: f.message, bytes: fromHex(v.hex) })));
    const perType = new Map<string, Uint8Array[]>();
    for (let i = 0; i < 3000; i++) {
      let message: string;
      let bytes: Uint8Array;
      if (i % 3 === 0) {
        message = ["Envelope", "Health", "Command", "Hello"][i % 4];
        bytes = new Uint8Array(Math.floor(rand() * 48));
        for (let k = 0; k < bytes.length; k++) bytes[k] = Math.floor(rand() * 256);
      } else {
        const seed = seeds[Math.floor(rand() * seeds.length)];
        message = seed.message;
        bytes = seed.bytes.slice();
        const mutations = 1 + Math.floor(rand() * 3);
        for (let m = 0; m < mutations && bytes.length > 0; m++) {
          const at = Math.floor(rand() * bytes.length);
          const kind = rand();
          if (kind < 0.5) bytes[at] ^= 1 << Math.floor(rand() * 8);
          else if (kind < 0.7) bytes = bytes.slice(0, at);
          else bytes[at] = 0xff;
        }
      }
      const list = perType.get(message) ?? [];
      list.push(bytes);
      perType.set(message, list);
    }
    let errors = 0;
    for (const [message, inputs] of perType) {
      const outcomes = await decodeAllAndCompare(message, inputs, `${message} fuzz`);
      errors += outcomes.filter((o) => typeof o.error === "string").length;
    }
    assert.ok(errors > 500, `fuzz inputs that failed to decode: ${errors}`);
  });
});

describe("framing in XS", () => {
  function payloads(): Uint8Array[] {
    const rand = mulberry32(5);
    const sizes = [0, 1, 2, 3, 4, 5, 88, 89, 90, 91, 92, 93, 94, 120, 181, 182, 183, 200, 500, 1000, 2047, MAX_FRAME_PAYLOAD];
    const list: Uint8Array[] = sizes.map((n) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
      return b;
    });
    // Real Envelopes, and bytes that look like markers, newlines and CRs.
    const envelopes = loadVectors().find((f) => f.message === "Envelope");
    for (const v of envelopes?.vectors ?? []) list.push(fromHex(v.hex));
    list.push(new Uint8Array([10, 13, 33, 42, 61, 0, 255]));
    return list;
  }

  test("encodeFrame gives the same bytes in XS as on Node", async () => {
    for (const p of payloads()) {
      const got = await call(OP.FRAME_ENCODE, "", p);
      assert.equal(Buffer.from(got).toString("latin1"), Buffer.from(encodeFrame(p)).toString("latin1"), `payload of ${p.length} bytes`);
    }
    // Over the limit: nothing, on both.
    const tooBig = new Uint8Array(MAX_FRAME_PAYLOAD + 1);
    assert.equal((await call(OP.FRAME_ENCODE, "", tooBig)).length, 0);
    assert.equal(encodeFrame(tooBig).length, 0);
  });

  type FrameEvent = { f: Uint8Array } | { c: string } | { e: number; d: string };

  /** The entry's FRAME_DECODE, run on Node. */
  function nodeFrameEvents(mode: number, chunk: number, stream: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    const decoder = new FrameDecoder({
      onFrame: (payload) => events.push({ f: new Uint8Array(payload) }),
      onConsole: (text) => events.push({ c: text }),
      onError: (code, detail) => events.push({ e: code, d: detail }),
    });
    if (mode === 0) {
      if (chunk === 0) decoder.pushBytes(stream);
      else for (let i = 0; i < stream.length; i += chunk) decoder.pushBytes(stream.subarray(i, i + chunk));
    } else {
      const text = Buffer.from(stream).toString("latin1");
      const lines = text.split("\n");
      lines.pop(); // the entry only feeds "\n"-terminated lines
      for (const line of lines) decoder.pushLine(line);
    }
    return events;
  }

  async function xsFrameEvents(mode: number, chunk: number, stream: Uint8Array): Promise<FrameEvent[]> {
    const payload = new Uint8Array(stream.length + 2);
    payload[0] = mode;
    payload[1] = chunk;
    payload.set(stream, 2);
    return (await callJson(OP.FRAME_DECODE, "", payload)) as FrameEvent[];
  }

  const FEEDS: [number, number][] = [
    [0, 0],
    [0, 1],
    [0, 7],
    [0, 64],
    [0, 200],
    [1, 0],
  ];

  test("XS's FrameDecoder takes Node's frames, whole, in chunks and line by line", async () => {
    const list = payloads();
    const parts: Uint8Array[] = [];
    const expected: FrameEvent[] = [];
    list.forEach((p, i) => {
      if (i % 5 === 0) {
        const text = `console line ${i}: مرحبا`;
        parts.push(Buffer.from(text + "\r\n", "utf8"));
        // Console bytes arrive one char per byte (latin1), as the decoder documents for bytes.
        expected.push({ c: Buffer.from(text, "utf8").toString("latin1") });
      }
      parts.push(encodeFrame(p));
      expected.push({ f: p });
    });
    const stream = new Uint8Array(Buffer.concat(parts));
    for (const [mode, chunk] of FEEDS) {
      const got = await xsFrameEvents(mode, chunk, stream);
      assert.deepEqual(got, nodeFrameEvents(mode, chunk, stream), `mode ${mode} chunk ${chunk}: XS vs Node`);
      if (mode === 0) assert.deepEqual(got, expected, `mode ${mode} chunk ${chunk}: every frame and console line`);
    }
  });

  test("damaged streams: XS reports the same errors as Node and resyncs", async () => {
    const a = encodeFrame(fromHex("12290893" + "1f".repeat(40)));
    const big = new Uint8Array(300).map((_, i) => i & 255);
    const b = encodeFrame(big);
    const c = encodeFrame(new Uint8Array([1, 2, 3]));
    const flip = (frame: Uint8Array, at: number): Uint8Array => {
      const copy = frame.slice();
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      const i = alphabet.indexOf(String.fromCharCode(copy[at]));
      copy[at] = alphabet.charCodeAt((i + 1) % 64);
      return copy;
    };
    const firstLineOf = (frame: Uint8Array): Uint8Array => frame.subarray(0, frame.indexOf(10) + 1);
    const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"));
    const streams: [string, Uint8Array[]][] = [
      ["bad CRC", [flip(a, 5), c]],
      ["frame cut short, then a new frame", [firstLineOf(b), c]],
      ["continuation without a first fragment", [b.subarray(b.indexOf(10) + 1), c]],
      ["bad base64", [text("!AB$D\n"), c]],
      ["fragment not a multiple of 4", [text("!ABCDE\n"), c]],
      ["overlong line", [text("!" + "A".repeat(200) + "\n"), c]],
      ["overlong console line", [text("x".repeat(700) + "\n"), c]],
      ["length field above the limit", [text("!//8AAA==\n"), c]],
      ["padding in the middle", [text("!AA==AAA\n"), c]],
      ["frame longer than its length field", [text("!AAEBAQEB\n"), c]],
    ];
    for (const [label, parts] of streams) {
      const stream = new Uint8Array(Buffer.concat(parts));
      for (const [mode, chunk] of FEEDS) {
        const got = await xsFrameEvents(mode, chunk, stream);
        const want = nodeFrameEvents(mode, chunk, stream);
        assert.deepEqual(got, want, `${label}, mode ${mode} chunk ${chunk}: XS vs Node`);
        const last = got[got.length - 1];
        assert.ok(last !== undefined && "f" in last, `${label}, mode ${mode} chunk ${chunk}: the next frame still arrives`);
        if (mode === 0) assert.ok(got.some((e) => "e" in e || ("c" in e && e.c.endsWith("..."))), `${label}: reported`);
      }
    }
  });
});
