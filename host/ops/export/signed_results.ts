// The signed-results export and its standalone verification. The export holds, per result, the
// Record bytes exactly as the device signed them (base64), the device id and its registered public
// key, and the station: anyone can check every result with `pollkit verify-result <file>` without
// the operations database. This module needs no store (the CLI imports it alone).
//
// File format (JSON, media type application/json):
//   { "format": "pollkit-signed-results", "version": 1, "exportedMs": <ms>,
//     "results": [ { "stationId", "governorate", "office", "deviceId", "publicKeyHex" (X || Y, hex),
//                    "seq", "receivedMs", "record" (base64 of the Record bytes) }, ... ] }
// or NDJSON: the same header object without "results" on the first line, then one result object
// per line.
//
// A record verifies when: it parses as a Record of kind RESULT; its signature (P-256, r || s) is
// valid over SHA-256 of the Record without its signature field, against the key given (or, with a
// registry, against the device's registered key, which must then equal the one given); its payload
// decodes as a StationResult; and that result is for the station the file says.

import { readRecord } from "../ingest/record_wire.ts";
import { verifyP256 } from "../election/election.ts";
import { decodeResult, RecordKind, type StationResultV } from "../views/payloads.ts";
import type { RegisteredDevice } from "../store/store.ts";

export const SIGNED_RESULTS_FORMAT = "pollkit-signed-results";
export const SIGNED_RESULTS_VERSION = 1;

export interface SignedResultEntry {
  stationId: string;
  governorate: string;
  office: string;
  deviceId: string;
  publicKeyHex: string;
  seq: number;
  receivedMs: number;
  /** base64 of the Record bytes as signed. */
  record: string;
}

export interface SignedResultsFile {
  format: typeof SIGNED_RESULTS_FORMAT;
  version: number;
  exportedMs: number;
  results: SignedResultEntry[];
}

export function signedResultsFile(
  records: Array<{ stationId: string; governorate: string; office: string; deviceId: string; seq: number; receivedMs: number; bytes: Uint8Array }>,
  keyOf: (deviceId: string) => string,
  exportedMs: number,
): SignedResultsFile {
  return {
    format: SIGNED_RESULTS_FORMAT,
    version: SIGNED_RESULTS_VERSION,
    exportedMs,
    results: records.map((r) => ({
      stationId: r.stationId,
      governorate: r.governorate,
      office: r.office,
      deviceId: r.deviceId,
      publicKeyHex: keyOf(r.deviceId),
      seq: r.seq,
      receivedMs: r.receivedMs,
      record: Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength).toString("base64"),
    })),
  };
}

export function signedResultsNdjson(file: SignedResultsFile): string {
  const head = { format: file.format, version: file.version, exportedMs: file.exportedMs };
  return [JSON.stringify(head), ...file.results.map((r) => JSON.stringify(r))].join("\n") + "\n";
}

// --- verification --------------------------------------------------------------------------------

/** The file as a whole is not an export (not JSON/NDJSON, wrong format, no results). */
export class SignedFileError extends Error {}

export type ProblemCode =
  | "malformed-entry"
  | "malformed-record"
  | "not-a-result"
  | "unsigned"
  | "bad-signature"
  | "unknown-device"
  | "wrong-key"
  | "bad-payload"
  | "station-mismatch";

export interface Problem {
  code: ProblemCode;
  /** English detail (the CLI words it per language from the code and params). */
  detail: string;
  params: Record<string, string | number>;
}

export interface VerifyOutcome {
  /** 1-based position in the file. */
  index: number;
  stationId: string;
  deviceId: string;
  seq: number;
  ok: boolean;
  /** The key was checked against a registry. */
  keyChecked: boolean;
  problems: Problem[];
  result: StationResultV | null;
  signedMs: number;
}

const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Splits the file's text into entries; throws SignedFileError when it is not an export. */
export function parseSignedResults(text: string): unknown[] {
  const body = text.replace(/^\uFEFF/, "").trim();
  if (body === "") throw new SignedFileError("the file is empty");
  let head: unknown;
  let entries: unknown[];
  try {
    head = JSON.parse(body);
    entries = head !== null && typeof head === "object" && Array.isArray((head as { results?: unknown }).results) ? (head as { results: unknown[] }).results : [];
  } catch {
    // NDJSON: a header line, then one entry per line.
    const lines = body.split(/\r?\n/).filter((l) => l.trim() !== "");
    try {
      head = JSON.parse(lines[0]);
    } catch (e) {
      throw new SignedFileError(`not JSON or NDJSON: ${e instanceof Error ? e.message : String(e)}`);
    }
    entries = lines.slice(1).map((l, i) => {
      try {
        return JSON.parse(l) as unknown;
      } catch (e) {
        throw new SignedFileError(`line ${i + 2} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }
  if (head === null || typeof head !== "object" || (head as { format?: unknown }).format !== SIGNED_RESULTS_FORMAT) {
    throw new SignedFileError(`not a signed-results export (expected "format": "${SIGNED_RESULTS_FORMAT}")`);
  }
  const version = (head as { version?: unknown }).version;
  if (version !== SIGNED_RESULTS_VERSION) throw new SignedFileError(`unsupported export version ${JSON.stringify(version)} (this build reads ${SIGNED_RESULTS_VERSION})`);
  if (entries.length === 0) throw new SignedFileError("the export holds no results");
  return entries;
}

function normKey(k: string): string | null {
  let x = k.trim();
  if (x.length === 130 && x.startsWith("04")) x = x.slice(2);
  return x.length === 128 && HEX.test(x) ? x.toLowerCase() : null;
}

/** Verifies one entry; `registry` (optional) maps device ids to their registered devices. */
export function verifyEntry(raw: unknown, index: number, registry?: Map<string, RegisteredDevice>): VerifyOutcome {
  const out: VerifyOutcome = { index, stationId: "", deviceId: "", seq: 0, ok: false, keyChecked: false, problems: [], result: null, signedMs: 0 };
  const fail = (code: ProblemCode, detail: string, params: Record<string, string | number> = {}): VerifyOutcome => {
    out.problems.push({ code, detail, params });
    out.ok = false;
    return out;
  };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return fail("malformed-entry", "the entry is not a JSON object", {});
  const e = raw as Record<string, unknown>;
  for (const k of ["stationId", "deviceId", "publicKeyHex", "record"]) {
    if (typeof e[k] !== "string") return fail("malformed-entry", `${k} is missing or not a string`, { field: k });
  }
  out.stationId = e.stationId as string;
  out.deviceId = e.deviceId as string;
  out.seq = typeof e.seq === "number" ? e.seq : 0;
  const givenKey = normKey(e.publicKeyHex as string);
  if (givenKey === null) return fail("malformed-entry", "publicKeyHex is not a P-256 public key (64 bytes X || Y in hex)", { field: "publicKeyHex" });
  const b64 = (e.record as string).replace(/\s+/g, "");
  if (!BASE64.test(b64) || b64.length === 0) return fail("malformed-entry", "record is not base64", { field: "record" });
  const bytes = new Uint8Array(Buffer.from(b64, "base64"));
  let rec;
  try {
    rec = readRecord(bytes);
  } catch (err) {
    return fail("malformed-record", `the record does not parse: ${err instanceof Error ? err.message : String(err)}`, { error: err instanceof Error ? err.message : String(err) });
  }
  out.seq = rec.seq;
  out.signedMs = rec.timeMs;
  if (rec.kind !== RecordKind.RESULT) return fail("not-a-result", `the record is of kind ${rec.kind}, not RESULT (${RecordKind.RESULT})`, { kind: rec.kind });
  if (rec.signature === null || rec.signature.length !== 64) {
    return fail("unsigned", rec.signature === null ? "the record carries no signature" : `the signature is ${rec.signature.length} bytes, expected 64`, { bytes: rec.signature?.length ?? 0 });
  }
  let key = givenKey;
  if (registry) {
    const d = registry.get(out.deviceId);
    if (!d) return fail("unknown-device", `${out.deviceId} is not in the registry`, { device: out.deviceId });
    out.keyChecked = true;
    if (d.publicKeyHex.toLowerCase() !== givenKey) {
      fail("wrong-key", `the public key given for ${out.deviceId} is not its registered key`, { device: out.deviceId });
      key = d.publicKeyHex.toLowerCase();
    }
  }
  if (!verifyP256(key, rec.signingBytes, rec.signature)) {
    fail("bad-signature", `the signature does not verify against ${out.deviceId}'s ${registry ? "registered" : "given"} key: the record was altered or signed by another device`, { device: out.deviceId });
  }
  const res = decodeResult(rec.payload);
  if (!res.ok) return fail("bad-payload", res.error, { error: res.error });
  out.result = res.value;
  if (res.value.stationId !== out.stationId) {
    fail("station-mismatch", `the signed result is for station ${JSON.stringify(res.value.stationId)}, the file says ${JSON.stringify(out.stationId)}`, { signed: res.value.stationId, file: out.stationId });
  }
  out.ok = out.problems.length === 0;
  return out;
}

export function verifySignedResults(text: string, registry?: RegisteredDevice[]): VerifyOutcome[] {
  const entries = parseSignedResults(text);
  const reg = registry ? new Map(registry.map((d) => [d.deviceId, d])) : undefined;
  return entries.map((e, i) => verifyEntry(e, i + 1, reg));
}
