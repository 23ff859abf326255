// The device codec (generated, engine subset) against protobufjs and protoc: shared vectors,
// random round trips in both directions, and random or mutated bytes that must never crash.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import protobuf from "protobufjs";
import * as codec from "./generated/device_codec.ts";
import { tryDecode, isCodecError } from "./codec_runtime.ts";
import { canonical, messageTypes, toDeviceObject, toTextFormat, PROTO_PATH, type } from "./node/schema.ts";
import { generate } from "./codegen/generate.ts";
import { randomMessage, mulberry32 } from "./node/random_messages.ts";

type Json = Record<string, unknown>;
type Encode = (m: object) => Uint8Array;
type Decode = (b: Uint8Array) => object;

const codecFns = codec as unknown as Record<string, unknown>;
const enc = (name: string): Encode => codecFns[`encode${name}`] as Encode;
const dec = (name: string): Decode => codecFns[`decode${name}`] as Decode;
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const vectorDir = new URL("./vectors/", import.meta.url).pathname;
const files = readdirSync(vectorDir).filter((f) => f.endsWith(".json"));

test("there is a vector file for every message type, with edge values", () => {
  const names = files.map((f) => f.replace(".json", "")).sort();
  assert.deepEqual(names, messageTypes().map((t) => t.name).sort());
});

for (const file of files) {
  const { message, vectors } = JSON.parse(readFileSync(join(vectorDir, file), "utf8")) as {
    message: string;
    vectors: { name: string; value: Json; hex: string }[];
  };
  const t = type(message);
  test(`vectors ${message}: device codec and protobufjs give and take the same bytes`, () => {
    for (const v of vectors) {
      const deviceBytes = enc(message)(toDeviceObject(t, v.value));
      assert.equal(hex(deviceBytes), v.hex, `device encode, ${v.name}`);
      assert.equal(hex(t.encode(t.fromObject(v.value)).finish()), v.hex, `protobufjs encode, ${v.name}`);
      const bytes = Buffer.from(v.hex, "hex");
      assert.deepEqual(canonical(t, dec(message)(bytes)), canonical(t, v.value), `device decode, ${v.name}`);
      assert.deepEqual(canonical(t, t.decode(bytes)), canonical(t, v.value), `protobufjs decode, ${v.name}`);
    }
  });
}

const protoc = spawnSync("protoc", ["--version"]).status === 0;
test("vectors agree with protoc (a third implementation)", { skip: !protoc && "protoc not installed" }, () => {
  let checked = 0;
  for (const file of files) {
    const { message, vectors } = JSON.parse(readFileSync(join(vectorDir, file), "utf8")) as {
      message: string;
      vectors: { name: string; value: Json; hex: string }[];
    };
    const t = type(message);
    const input = vectors.map((v) => toTextFormat(t, v.value));
    for (let i = 0; i < vectors.length; i++) {
      const r = spawnSync("protoc", [`--encode=pollkit.v1.${message}`, "-I", join(PROTO_PATH, ".."), "pollkit.proto"], {
        input: input[i],
      });
      assert.equal(r.status, 0, `protoc failed on ${message} ${vectors[i].name}: ${r.stderr}`);
      assert.equal(r.stdout.toString("hex"), vectors[i].hex, `protoc ${message} ${vectors[i].name}`);
      checked++;
    }
  }
  assert.ok(checked > 100);
});

test("random valid messages round-trip between device codec and protobufjs, both directions", () => {
  const rand = mulberry32(20261128);
  let n = 0;
  for (const t of messageTypes()) {
    for (let i = 0; i < 60; i++) {
      const value = randomMessage(t, rand);
      const device = enc(t.name)(toDeviceObject(t, value));
      // device -> protobufjs: same values, and protobufjs re-encodes to the same bytes
      const viaPb = t.decode(device);
      assert.deepEqual(canonical(t, viaPb), canonical(t, value), `${t.name} #${i} protobufjs decode`);
      assert.equal(hex(t.encode(viaPb).finish()), hex(device), `${t.name} #${i} bytes`);
      // protobufjs -> device (protobufjs also writes explicit zeros: the device must accept them)
      const pbBytes = t.encode(t.fromObject(value)).finish();
      assert.deepEqual(canonical(t, dec(t.name)(pbBytes)), canonical(t, value), `${t.name} #${i} device decode`);
      n++;
    }
  }
  assert.equal(n, messageTypes().length * 60);
});

test("random and mutated bytes never crash either decoder: each returns a clear error", () => {
  const rand = mulberry32(7);
  const env = type("Envelope");
  let deviceErrors = 0;
  let pbErrors = 0;
  const seeds = files.flatMap((f) =>
    (JSON.parse(readFileSync(join(vectorDir, f), "utf8")) as { vectors: { hex: string }[] }).vectors.map((v) => Buffer.from(v.hex, "hex")),
  );
  for (let i = 0; i < 20000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = new Uint8Array(Math.floor(rand() * 64));
      for (let k = 0; k < bytes.length; k++) bytes[k] = Math.floor(rand() * 256);
    } else {
      const seed = seeds[Math.floor(rand() * seeds.length)];
      bytes = new Uint8Array(seed);
      const mutations = 1 + Math.floor(rand() * 3);
      for (let m = 0; m < mutations && bytes.length > 0; m++) {
        const at = Math.floor(rand() * bytes.length);
        const kind = rand();
        if (kind < 0.5) bytes[at] ^= 1 << Math.floor(rand() * 8);
        else if (kind < 0.8) bytes = bytes.slice(0, at);
        else bytes[at] = 0xff;
      }
    }
    const r = tryDecode(codec.decodeEnvelope, bytes);
    if (r.error !== null) {
      deviceErrors++;
      assert.match(r.error, /at byte \d+/);
    }
    try {
      env.decode(bytes);
    } catch (e) {
      assert.ok(e instanceof Error, "protobufjs throws an Error");
      pbErrors++;
    }
  }
  // Both decoders saw plenty of bad input (and none of it crashed them).
  assert.ok(deviceErrors > 5000, `device errors ${deviceErrors}`);
  assert.ok(pbErrors > 5000, `protobufjs errors ${pbErrors}`);
});

test("device decoder: specific malformed inputs get specific errors", () => {
  const cases: [string, string, RegExp][] = [
    ["truncated varint", "08", /truncated/],
    ["truncated length-delimited", "0a05", /runs past the end/],
    ["nested message longer than its bytes", "12050801", /runs past/],
    ["nested field overruns its message", "12010801", /truncated|runs past/],
    ["11-byte varint", "08ffffffffffffffffffff01", /longer than 10 bytes/],
    ["group wire type", "0b", /wire type 3/],
    ["field number zero", "0001", /field number 0/],
    ["uint64 above 2^53", "22090880808080808080800e".slice(0, 22), /2\^53|truncated/],
  ];
  for (const [name, h, re] of cases) {
    const r = tryDecode(codec.decodeEnvelope, Buffer.from(h, "hex"));
    assert.ok(r.error !== null, `${name} must fail`);
    assert.match(r.error ?? "", re, name);
  }
  // An acknowledgement whose uint64 does not fit a double exactly is refused, not rounded.
  const ack = Buffer.from("08ffffffffffffffffff01", "hex"); // seq = 2^64 - 1
  assert.equal(String(type("Ack").toObject(type("Ack").decode(ack), { longs: String }).seq), "18446744073709551615");
  const r = tryDecode(codec.decodeAck, ack);
  assert.match(r.error ?? "", /2\^53/);
  // Unknown fields are skipped.
  const withUnknown = Buffer.concat([Buffer.from("08c8011a03616263", "hex"), Buffer.from(type("Ack").encode({ seq: 5 }).finish())]);
  assert.equal(codec.decodeAck(withUnknown).seq, 5);
  // Errors are plain objects, not exceptions classes (Espruino cannot extend Error).
  try {
    codec.decodeEnvelope(Buffer.from("08", "hex"));
    assert.fail("should throw");
  } catch (e) {
    assert.ok(isCodecError(e));
  }
});

test("generator covers every scalar type, packed and unpacked repeats, oneof, high field numbers", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-codegen-"));
  const protoText = readFileSync(new URL("./codegen/testdata/all_types.proto", import.meta.url), "utf8");
  const runtime = new URL("./codec_runtime.ts", import.meta.url).pathname;
  const out = join(dir, "all_types_codec.ts");
  writeFileSync(out, generate(protoText, runtime, "all_types.proto"));
  const gen = (await import(out)) as Record<string, unknown>;
  const root = protobuf.parse(protoText, { keepCase: false }).root;
  root.resolveAll();
  const t = root.lookupType("pollkit.test.AllTypes");
  const encode = gen.encodeAllTypes as Encode;
  const decode = gen.decodeAllTypes as Decode;
  const rand = mulberry32(99);
  for (let i = 0; i < 400; i++) {
    const value = randomMessage(t, rand);
    const bytes = encode(toDeviceObject(t, value));
    const viaPb = t.decode(bytes);
    assert.deepEqual(canonical(t, viaPb), canonical(t, value), `#${i} protobufjs reads the device bytes`);
    assert.equal(hex(t.encode(viaPb).finish()), hex(bytes), `#${i} same bytes`);
    assert.deepEqual(canonical(t, decode(t.encode(t.fromObject(value)).finish())), canonical(t, value), `#${i} device reads protobufjs bytes`);
  }
  // Edge values of every 64-bit type, negative int32 (ten bytes), -0 and NaN-free floats.
  const edges = {
    i32: -1, i64: -9007199254740991, u64: 9007199254740991, s64: -9007199254740991, f64: 9007199254740991,
    sf64: -9007199254740991, fl: -1.5, db: 1e-300, highField: 4294967295,
  };
  const bytes = encode(edges);
  assert.equal(hex(bytes), hex(t.encode(t.fromObject(edges)).finish()));
  assert.deepEqual(canonical(t, decode(bytes)), canonical(t, edges));
  // Unpacked encoding of a packable field is accepted too.
  const unpacked = Buffer.from("9001059001069001ff01", "hex"); // packed_i32 as three varints
  assert.deepEqual((decode(unpacked) as { packedI32: number[] }).packedI32, [5, 6, 255]);
});
