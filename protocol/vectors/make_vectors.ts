// Writes the shared test vectors: protocol/vectors/<Message>.json, one file per message type.
// Each vector is a value in plain JSON form (64-bit numbers as numbers, bytes as base64, enums as
// numbers) and its canonical proto3 encoding (hex) as protobufjs produces it. The tests check the
// device codec, protobufjs and protoc against these files; rerun this script only when the schema
// changes, and review the diff.
//
// Usage: tsx protocol/vectors/make_vectors.ts

import { writeFileSync } from "node:fs";
import protobuf from "protobufjs";
import { messageTypes, type } from "../node/schema.ts";

type Json = Record<string, unknown>;

const ARABIC = "مركز الاقتراع رقم ١٢ – بغداد";
const KURDISH = "بنکەی دەنگدان";
const MIXED = "Ünïcødé ✓ 𝄞 emoji 🗳️";
const LONG = "x".repeat(300);

const maxOf: Record<string, number> = {
  int32: 2147483647, uint32: 4294967295, sint32: 2147483647, fixed32: 4294967295, sfixed32: 2147483647,
  int64: 9007199254740991, uint64: 9007199254740991, sint64: 9007199254740991, fixed64: 9007199254740991,
  sfixed64: 9007199254740991, float: 3.4028234663852886e38, double: 1.7976931348623157e308,
};
const minOf: Record<string, number> = {
  int32: -2147483648, sint32: -2147483648, sfixed32: -2147483648, int64: -9007199254740991,
  sint64: -9007199254740991, sfixed64: -9007199254740991, uint32: 1, fixed32: 1, uint64: 1, fixed64: 1,
  float: -1.5, double: -2.5e-300,
};

/** Every field set to an edge value; nested messages recursively (depth-limited). */
function edge(t: protobuf.Type, pick: "max" | "min" | "text", depth = 0): Json {
  const out: Json = {};
  const seenOneof = new Set<string>();
  for (const f of t.fieldsArray) {
    if (f.partOf) {
      if (seenOneof.has(f.partOf.name)) continue;
      seenOneof.add(f.partOf.name);
    }
    let v: unknown;
    if (f.resolvedType instanceof protobuf.Type) {
      if (depth > 2) continue;
      v = edge(f.resolvedType, pick, depth + 1);
    } else if (f.resolvedType instanceof protobuf.Enum) {
      const values = Object.values(f.resolvedType.values);
      v = pick === "max" ? Math.max(...values) : pick === "min" ? 1 : 99; // 99: unknown to this schema
    } else if (f.type === "string") v = pick === "max" ? LONG : pick === "min" ? "a" : ARABIC;
    else if (f.type === "bytes") v = Buffer.from(pick === "max" ? new Uint8Array(200).fill(255) : [0, 1, 127, 128, 255]).toString("base64");
    else if (f.type === "bool") v = true;
    else v = pick === "max" ? maxOf[f.type] : pick === "min" ? minOf[f.type] : 1;
    out[f.name] = f.repeated ? [v, v] : v;
  }
  return out;
}

const b64 = (hex: string): string => Buffer.from(hex, "hex").toString("base64");
const key64 = b64("04".repeat(0) + "a1".repeat(32) + "b2".repeat(32));
const sig64 = b64("5c".repeat(64));

/** Values as devices really send them. */
const typical: Record<string, Json[]> = {
  Hello: [
    {
      protocolVersion: 1, deviceId: "VVD-000123", role: 1, hardwareModel: "pollkit-vvd-r2",
      firmwareVersion: "1.0.0", bootId: 3735928559, capabilities: [1, 2, 3, 6, 7, 8], publicKey: key64,
      journalNextSeq: 42,
    },
    { protocolVersion: 1, deviceId: "host-agent-baghdad-01", role: 3 },
  ],
  Health: [
    {
      batteryMv: 3987, stateOfChargePermille: 874, currentMa: -212, temperatureDecic: 287, chargeState: 1,
      uptimeS: 86400, rebootReason: 1, freeMemoryBytes: 61000, freeStorageBytes: 480000, journalBacklog: 3,
      clockMs: 1795000000000, chargeMode: 2, errorCount: 1,
    },
    { batteryMv: 3301, temperatureDecic: -105, chargeState: 5, chargerFaults: 9, peripheralFaults: 32 },
  ],
  Record: [
    { seq: 1, timeMs: 1795000000000, kind: 1, payload: b64("0801150000beef1a05312e302e30") },
    { seq: 4294967296, timeMs: 1795000001234, kind: 9, payload: b64("00112233"), signature: sig64 },
  ],
  Ack: [{ seq: 17 }, { seq: 4294967295 }, { seq: 4294967296 }],
  TimeSync: [{ hostTimeMs: 1795000000000 }, { hostTimeMs: 1795000000000, deviceTimeMs: 1794999999000 }],
  Command: [
    { id: 1, info: {} },
    { id: 2, diagnostics: { parts: [1, 3, 4] } },
    { id: 3, setTime: { unixMs: 1795000000000 }, authority: b64("c0ffee") },
    { id: 4, setChargeMode: { mode: 2 } },
    { id: 5, transferChunk: { offset: 4096, data: b64("00".repeat(64)) } },
    { id: 6, readLog: { maxLines: 50 } },
  ],
  CommandResult: [
    { id: 1, status: 0, info: { deviceId: "RAD-000007", role: 2, firmwareVersion: "1.0.0", journalNextSeq: 9 } },
    { id: 2, status: 0, diagnostics: { parts: [{ part: 1, verdict: 1 }, { part: 3, verdict: 2, detail: "no battery" }] } },
    { id: 7, status: 2, message: "technician authority required" },
    { id: 8, status: 0, log: { lines: ["boot", ARABIC, ""] } },
  ],
  Error: [{ code: 1, detail: "frame CRC mismatch" }, { code: 5, commandId: 12 }],
  Envelope: [
    { health: { batteryMv: 3987, stateOfChargePermille: 874, currentMa: -212, clockMs: 1795000000000 } },
    { ack: { seq: 17 } },
    { ack: {} },
    { record: { seq: 5, timeMs: 1795000000000, kind: 3, signature: sig64 } },
    { error: { code: 4, detail: "bad varint" } },
  ],
  AuditEvent: [{ event: "polls.opened", actor: "supervisor", detail: KURDISH }],
};

function encodeHex(t: protobuf.Type, value: Json): string {
  return Buffer.from(t.encode(t.fromObject(value)).finish()).toString("hex");
}

/** protobufjs writes explicitly set zero values; vectors hold canonical proto3 (zeros omitted). */
function dropZeros(t: protobuf.Type, value: Json): Json {
  const out: Json = {};
  for (const k of Object.keys(value)) {
    const f = t.fields[k];
    const v = value[k];
    if (f.resolvedType instanceof protobuf.Type) {
      out[k] = f.repeated ? (v as Json[]).map((x) => dropZeros(f.resolvedType as protobuf.Type, x)) : dropZeros(f.resolvedType, v as Json);
      continue;
    }
    if (!f.repeated && !f.partOf && (v === 0 || v === "" || v === false)) continue;
    out[k] = v;
  }
  return out;
}

const dir = new URL(".", import.meta.url).pathname;
let count = 0;
for (const t of messageTypes()) {
  const values: { name: string; value: Json }[] = [
    { name: "empty (all zero values)", value: {} },
    { name: "maximum values", value: edge(t, "max") },
    { name: "minimum values", value: edge(t, "min") },
    { name: "Arabic text and unknown enum numbers", value: edge(t, "text") },
    ...(typical[t.name] ?? []).map((value, i) => ({ name: `typical ${i + 1}`, value })),
  ];
  if (t.fieldsArray.some((f) => f.type === "string")) {
    const s = t.fieldsArray.find((f) => f.type === "string" && !f.repeated && !f.partOf);
    if (s) {
      values.push({ name: "non-ASCII text", value: { [s.name]: MIXED } });
      values.push({ name: "empty string", value: { [s.name]: "" } });
    }
  }
  const vectors = values.map((v) => {
    const value = dropZeros(t, v.value);
    return { name: v.name, value, hex: encodeHex(t, value) };
  });
  count += vectors.length;
  writeFileSync(`${dir}${t.name}.json`, JSON.stringify({ message: t.name, vectors }, null, 2) + "\n");
}
console.log(`wrote ${count} vectors for ${messageTypes().length} message types`);
void type;
