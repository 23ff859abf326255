// Election definitions in the operations console: imported like the registry, they give the
// results views the names of contests and options, the reconciliation the register size, and the
// result-overdue alert each station's close time. Node only.
//
// Accepted files (`pollkit ops import-election <file|dir>`, `election` in the ops config, POST
// /api/elections):
//   - an encoded SignedArtifact of kind ARTIFACT_KIND_ELECTION_DEFINITION (binary, or its base64
//     as text). When the console is configured with the commission's public key, the signature
//     (P-256, r || s, over SHA-256 of the artifact encoded without `signature`) must verify;
//     without a key it is stored as "signature not checked".
//   - JSON: an ElectionDefinition object (camelCase or snake_case field names), a SignedArtifact
//     object ({kind, stationId, electionId, version, issuedMs, body: base64, signature: base64}),
//     a base64 string of an encoded artifact, an array of any of these, or {"definitions": [...]}.
//     One bad entry rejects the whole file with an error naming it; nothing is stored.
//   - a directory: every file in it (sorted by name), all or nothing.
// A definition replaces the one stored for the same (election, station) unless that one came in
// a signed artifact of a higher version (no rollback).

import { createHash, createPublicKey, verify as verifySignature } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { tryDecode } from "../../../protocol/codec_runtime.ts";
import {
  ArtifactKind,
  decodeElectionDefinition,
  decodeSignedArtifact,
  encodeElectionDefinition,
  encodeSignedArtifact,
  type ElectionDefinition,
  type SignedArtifact,
} from "../../../protocol/generated/device_codec.ts";
import type { OpsStore, StoredElection } from "../store/store.ts";

export class ElectionImportError extends Error {}

export interface ContestDef {
  id: string;
  name: string;
  options: string[];
  maxMarks: number;
}

/** A definition as the views use it. */
export interface ElectionDef {
  electionId: string;
  name: string;
  /** "" applies to every station without its own definition. */
  stationId: string;
  contests: ContestDef[];
  pollsOpenMs: number;
  pollsCloseMs: number;
  registerSize: number;
  /** SHA-256 (hex) of the encoded definition, and of the artifact it came in ("" for JSON). */
  sha256: string;
  artifactSha256: string;
  signatureChecked: boolean;
  signed: boolean;
  version: number;
  source: string;
  importedMs: number;
}

export interface ImportOptions {
  /** The commission's P-256 public key (X || Y or 04 || X || Y, hex); null: signatures not checked. */
  commissionKeyHex?: string | null;
  nowMs?: number;
}

const HEX = /^[0-9a-fA-F]*$/;
const BASE64 = /^[A-Za-z0-9+/=\s_-]+$/;

function sha256Hex(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Normalises a commission key (hex, 64 bytes or 65 with 0x04 first) to X || Y hex; throws on anything else. */
export function commissionKeyHex(value: string): string {
  let k = value.trim();
  if (k.length === 130 && k.startsWith("04")) k = k.slice(2);
  if (k.length !== 128 || !HEX.test(k)) throw new ElectionImportError("the commission key must be a P-256 public key, 64 bytes X || Y (128 hex characters)");
  return k.toLowerCase();
}

/** Verifies a P-256 / SHA-256 signature (r || s) with a key as X || Y hex. */
export function verifyP256(publicKeyHex: string, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || publicKeyHex.length !== 128) return false;
  try {
    const key = createPublicKey({
      key: { kty: "EC", crv: "P-256", x: Buffer.from(publicKeyHex.slice(0, 64), "hex").toString("base64url"), y: Buffer.from(publicKeyHex.slice(64), "hex").toString("base64url") },
      format: "jwk",
    });
    return verifySignature("sha256", data, { key, dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    return false;
  }
}

/**
 * The message's bytes with every occurrence of field `field` removed (what a signature over "the
 * message encoded with that field empty" covers). Strict: anything that is not well-formed
 * protobuf is an error.
 */
export function withoutField(b: Uint8Array, field: number): Uint8Array {
  const keep: Array<[number, number]> = [];
  let pos = 0;
  let from = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= b.length) throw new ElectionImportError(`truncated varint at offset ${pos}`);
      const byte = b[pos++];
      result += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new ElectionImportError(`varint longer than 10 bytes at offset ${pos}`);
  };
  while (pos < b.length) {
    const start = pos;
    const tag = varint();
    const f = Math.floor(tag / 8);
    const wire = tag & 7;
    if (f === 0) throw new ElectionImportError(`field number 0 at offset ${start}`);
    if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 2) {
      const len = varint();
      pos += len;
    }
    else if (wire === 5) pos += 4;
    else throw new ElectionImportError(`invalid wire type ${wire} at offset ${start}`);
    if (pos > b.length) throw new ElectionImportError(`field ${f} runs past the end of the message`);
    if (f === field) {
      keep.push([from, start]);
      from = pos;
    }
  }
  keep.push([from, b.length]);
  let n = 0;
  for (const [s, e] of keep) n += e - s;
  const out = new Uint8Array(n);
  let at = 0;
  for (const [s, e] of keep) {
    out.set(b.subarray(s, e), at);
    at += e - s;
  }
  return out;
}

function defFromDecoded(m: ElectionDefinition, where: string): Omit<ElectionDef, "sha256" | "artifactSha256" | "signatureChecked" | "signed" | "version" | "source" | "importedMs"> {
  const electionId = m.electionId ?? "";
  if (electionId === "") throw new ElectionImportError(`${where}: election_id is missing`);
  const contests: ContestDef[] = [];
  const seen = new Set<string>();
  for (const [i, c] of (m.contests ?? []).entries()) {
    const id = c.id ?? "";
    if (id === "") throw new ElectionImportError(`${where}: contest ${i + 1} has no id`);
    if (seen.has(id)) throw new ElectionImportError(`${where}: contest id ${JSON.stringify(id)} appears twice`);
    seen.add(id);
    const options = c.options ?? [];
    if (options.length === 0) throw new ElectionImportError(`${where}: contest ${JSON.stringify(id)} has no options`);
    contests.push({ id, name: c.name ?? "", options: options.slice(), maxMarks: c.maxMarks || 1 });
  }
  if (contests.length === 0) throw new ElectionImportError(`${where}: the definition has no contests`);
  const pollsOpenMs = m.pollsOpenMs ?? 0;
  const pollsCloseMs = m.pollsCloseMs ?? 0;
  if (pollsOpenMs && pollsCloseMs && pollsCloseMs <= pollsOpenMs) throw new ElectionImportError(`${where}: polls_close_ms is not after polls_open_ms`);
  return { electionId, name: m.name ?? "", stationId: m.stationId ?? "", contests, pollsOpenMs, pollsCloseMs, registerSize: m.registerSize ?? 0 };
}

/** A StoredElection decoded for the views. */
export function electionDef(s: StoredElection): ElectionDef {
  const r = tryDecode(decodeElectionDefinition, s.definition);
  if (r.value === null) throw new ElectionImportError(`stored definition ${s.electionId}/${s.stationId} does not decode: ${r.error}`);
  return {
    ...defFromDecoded(r.value, `${s.electionId}/${s.stationId || "*"}`),
    sha256: s.sha256,
    artifactSha256: s.artifact ? sha256Hex(s.artifact) : "",
    signatureChecked: s.signatureChecked,
    signed: s.artifact !== null,
    version: s.version,
    source: s.source,
    importedMs: s.importedMs,
  };
}

// --- parsing ---------------------------------------------------------------------------------

function fromArtifactBytes(bytes: Uint8Array, where: string, o: ImportOptions, source: string): StoredElection {
  const r = tryDecode(decodeSignedArtifact, bytes);
  if (r.value === null) throw new ElectionImportError(`${where}: not a SignedArtifact (${r.error})`);
  const a = r.value;
  if (a.kind !== ArtifactKind.ELECTION_DEFINITION) {
    throw new ElectionImportError(`${where}: the artifact is of kind ${a.kind ?? 0}, not an election definition (${ArtifactKind.ELECTION_DEFINITION})`);
  }
  const body = a.body ?? new Uint8Array(0);
  const d = tryDecode(decodeElectionDefinition, body);
  if (d.value === null) throw new ElectionImportError(`${where}: the artifact's body is not an ElectionDefinition (${d.error})`);
  const def = defFromDecoded(d.value, where);
  if ((a.electionId ?? "") !== "" && a.electionId !== def.electionId) {
    throw new ElectionImportError(`${where}: the artifact names election ${JSON.stringify(a.electionId)} but its definition ${JSON.stringify(def.electionId)}`);
  }
  if ((a.stationId ?? "") !== def.stationId) {
    throw new ElectionImportError(`${where}: the artifact is for station ${JSON.stringify(a.stationId ?? "")} but its definition for ${JSON.stringify(def.stationId)}`);
  }
  let checked = false;
  if (o.commissionKeyHex) {
    const sig = a.signature ?? new Uint8Array(0);
    if (sig.length === 0) throw new ElectionImportError(`${where}: the artifact is not signed`);
    if (!verifyP256(o.commissionKeyHex, withoutField(bytes, 7), sig)) {
      throw new ElectionImportError(`${where}: the commission signature does not verify (tampered, or signed by another key)`);
    }
    checked = true;
  }
  return {
    electionId: def.electionId,
    stationId: def.stationId,
    sha256: sha256Hex(body),
    definition: body.slice(),
    artifact: bytes.slice(),
    signatureChecked: checked,
    version: a.version ?? 0,
    importedMs: o.nowMs ?? Date.now(),
    source,
  };
}

const camel = (k: string): string => k.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

function camelKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelKeys);
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[camel(k)] = camelKeys(x);
  return out;
}

function jsonInt(o: Record<string, unknown>, k: string, where: string): number {
  const v = o[k];
  if (v === undefined || v === null) return 0;
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new ElectionImportError(`${where}: ${k} must be a non-negative integer`);
  return n;
}

function jsonStr(o: Record<string, unknown>, k: string, where: string): string {
  const v = o[k];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new ElectionImportError(`${where}: ${k} must be a string`);
  return v;
}

function fromDefinitionJson(o: Record<string, unknown>, where: string, opts: ImportOptions, source: string): StoredElection {
  const contestsRaw = o.contests;
  if (!Array.isArray(contestsRaw)) throw new ElectionImportError(`${where}: contests must be an array`);
  const contests = contestsRaw.map((c, i) => {
    const w = `${where} contest ${i + 1}`;
    if (c === null || typeof c !== "object" || Array.isArray(c)) throw new ElectionImportError(`${w}: not an object`);
    const cc = c as Record<string, unknown>;
    const options = cc.options;
    if (!Array.isArray(options) || !options.every((x) => typeof x === "string")) throw new ElectionImportError(`${w}: options must be an array of names`);
    return { id: jsonStr(cc, "id", w), name: jsonStr(cc, "name", w), options: options as string[], maxMarks: jsonInt(cc, "maxMarks", w) };
  });
  const m: ElectionDefinition = {
    electionId: jsonStr(o, "electionId", where),
    name: jsonStr(o, "name", where),
    stationId: jsonStr(o, "stationId", where),
    contests,
    pollsOpenMs: jsonInt(o, "pollsOpenMs", where),
    pollsCloseMs: jsonInt(o, "pollsCloseMs", where),
    registerSize: jsonInt(o, "registerSize", where),
  };
  const def = defFromDecoded(m, where);
  // JSON definitions are the operator's own file: stored as unsigned, whatever the key.
  const bytes = encodeElectionDefinition(m);
  return {
    electionId: def.electionId,
    stationId: def.stationId,
    sha256: sha256Hex(bytes),
    definition: bytes,
    artifact: null,
    signatureChecked: false,
    version: 0,
    importedMs: opts.nowMs ?? Date.now(),
    source,
  };
}

function fromJsonEntry(v: unknown, where: string, o: ImportOptions, source: string): StoredElection {
  if (typeof v === "string") {
    if (!BASE64.test(v)) throw new ElectionImportError(`${where}: a string entry must be the base64 of an encoded SignedArtifact`);
    return fromArtifactBytes(new Uint8Array(Buffer.from(v, "base64")), where, o, source);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new ElectionImportError(`${where}: not an object`);
  const obj = camelKeys(v) as Record<string, unknown>;
  if ("body" in obj) {
    // A SignedArtifact in JSON: re-encode exactly the fields it names, in field order.
    if (typeof obj.body !== "string" || !BASE64.test(obj.body)) throw new ElectionImportError(`${where}: body must be base64`);
    if (obj.signature !== undefined && (typeof obj.signature !== "string" || !BASE64.test(obj.signature))) throw new ElectionImportError(`${where}: signature must be base64`);
    const kind = typeof obj.kind === "string" ? (obj.kind === "ARTIFACT_KIND_ELECTION_DEFINITION" ? ArtifactKind.ELECTION_DEFINITION : -1) : jsonInt(obj, "kind", where);
    const bytes = encodeArtifact({
      kind,
      stationId: jsonStr(obj, "stationId", where),
      electionId: jsonStr(obj, "electionId", where),
      version: jsonInt(obj, "version", where),
      issuedMs: jsonInt(obj, "issuedMs", where),
      body: new Uint8Array(Buffer.from(obj.body, "base64")),
      signature: new Uint8Array(Buffer.from(typeof obj.signature === "string" ? obj.signature : "", "base64")),
    });
    return fromArtifactBytes(bytes, where, o, source);
  }
  return fromDefinitionJson(obj, where, o, source);
}

function encodeArtifact(a: SignedArtifact): Uint8Array {
  if ((a.kind ?? 0) < 0) throw new ElectionImportError("kind must be ARTIFACT_KIND_ELECTION_DEFINITION (3)");
  return encodeSignedArtifact(a);
}

/** Parses one file's bytes into definitions (all or nothing). `name` names it in errors. */
export function parseElectionFile(bytes: Uint8Array, name: string, o: ImportOptions = {}): StoredElection[] {
  if (bytes.length === 0) throw new ElectionImportError(`${name}: the file is empty`);
  const text = Buffer.from(bytes).toString("utf8").replace(/^\uFEFF/, "");
  const head = text.trimStart()[0];
  if (head === "{" || head === "[" || head === '"') {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new ElectionImportError(`${name}: JSON does not parse: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (v !== null && typeof v === "object" && !Array.isArray(v) && Array.isArray((v as { definitions?: unknown }).definitions)) {
      v = (v as { definitions: unknown[] }).definitions;
    }
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) throw new ElectionImportError(`${name}: no definitions in the file`);
    const out = list.map((x, i) => fromJsonEntry(x, Array.isArray(v) ? `${name} entry ${i + 1}` : name, o, name));
    checkDuplicates(out, name);
    return out;
  }
  // Base64 text of one artifact (whitespace and line breaks allowed).
  if (BASE64.test(text) && text.trim().length > 0 && !bytes.some((b) => b < 9)) {
    return [fromArtifactBytes(new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "base64")), name, o, name)];
  }
  return [fromArtifactBytes(bytes, name, o, name)];
}

function checkDuplicates(list: StoredElection[], name: string): void {
  const seen = new Set<string>();
  for (const e of list) {
    const k = `${e.electionId}\u0000${e.stationId}`;
    if (seen.has(k)) throw new ElectionImportError(`${name}: election ${e.electionId} station ${JSON.stringify(e.stationId)} is defined twice`);
    seen.add(k);
  }
}

/** Reads a file, or every file of a directory, into definitions (all or nothing). */
export function readElectionPath(path: string, o: ImportOptions = {}): StoredElection[] {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new ElectionImportError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const files = st.isDirectory()
    ? readdirSync(path)
        .filter((n) => !n.startsWith("."))
        .sort()
        .map((n) => join(path, n))
        .filter((p) => statSync(p).isFile())
    : [path];
  if (files.length === 0) throw new ElectionImportError(`${path}: no files to import`);
  const out: StoredElection[] = [];
  for (const f of files) out.push(...parseElectionFile(new Uint8Array(readFileSync(f)), basename(f), o));
  checkDuplicates(out, path);
  return out;
}

/**
 * Stores definitions after the rollback check against what is stored; returns what was stored.
 * Throws (storing nothing) when one would replace a signed definition of a higher version.
 */
export function storeElections(store: OpsStore, list: StoredElection[]): StoredElection[] {
  const existing = new Map(store.elections().map((e) => [`${e.electionId}\u0000${e.stationId}`, e]));
  for (const e of list) {
    const old = existing.get(`${e.electionId}\u0000${e.stationId}`);
    if (old && old.artifact !== null && old.version > e.version) {
      throw new ElectionImportError(
        `election ${e.electionId} station ${JSON.stringify(e.stationId)}: version ${e.version} is older than the imported version ${old.version} (${old.source})`,
      );
    }
  }
  store.putElections(list);
  return list;
}

export function importElection(store: OpsStore, path: string, o: ImportOptions = {}): StoredElection[] {
  return storeElections(store, readElectionPath(path, o));
}

/** A short description of stored definitions (API and CLI). */
export function electionSummary(e: StoredElection): Record<string, unknown> {
  const d = electionDef(e);
  return {
    electionId: d.electionId,
    stationId: d.stationId,
    name: d.name,
    contests: d.contests.map((c) => ({ id: c.id, name: c.name, options: c.options.length })),
    pollsOpenMs: d.pollsOpenMs,
    pollsCloseMs: d.pollsCloseMs,
    registerSize: d.registerSize,
    sha256: d.sha256,
    signed: d.signed,
    signatureChecked: d.signatureChecked,
    version: d.version,
    source: d.source,
    importedMs: d.importedMs,
  };
}

// --- lookup ----------------------------------------------------------------------------------

/** Definitions by station, for the views. */
export class ElectionIndex {
  readonly all: ElectionDef[];
  private readonly byStation = new Map<string, ElectionDef[]>();
  private readonly wideDefs: ElectionDef[] = [];
  private readonly contests = new Map<string, ContestDef>();

  constructor(stored: StoredElection[]) {
    this.all = [];
    for (const s of stored) {
      try {
        this.all.push(electionDef(s));
      } catch {
        /* a stored definition that no longer decodes is skipped (it decoded at import) */
      }
    }
    for (const d of this.all) {
      if (d.stationId === "") this.wideDefs.push(d);
      else {
        let l = this.byStation.get(d.stationId);
        if (!l) this.byStation.set(d.stationId, (l = []));
        l.push(d);
      }
      for (const c of d.contests) if (!this.contests.has(`${d.electionId}\u0000${c.id}`)) this.contests.set(`${d.electionId}\u0000${c.id}`, c);
      for (const c of d.contests) if (!this.contests.has(`\u0000${c.id}`)) this.contests.set(`\u0000${c.id}`, c);
    }
    // Latest close first, so "the station's election" is the most recent one.
    const byClose = (a: ElectionDef, b: ElectionDef): number => b.pollsCloseMs - a.pollsCloseMs || (a.electionId < b.electionId ? -1 : 1);
    for (const l of this.byStation.values()) l.sort(byClose);
    this.wideDefs.sort(byClose);
  }

  get size(): number {
    return this.all.length;
  }

  /** The station's definition: its own, else the election-wide one; of `electionId` when given, else the latest. */
  forStation(stationId: string, electionId?: string): ElectionDef | null {
    const own = this.byStation.get(stationId) ?? [];
    const match = (d: ElectionDef): boolean => electionId === undefined || electionId === "" || d.electionId === electionId;
    return own.find(match) ?? this.wideDefs.find(match) ?? null;
  }

  /** Stations that have a definition of their own. */
  stations(): string[] {
    return [...this.byStation.keys()];
  }

  hasWide(): boolean {
    return this.wideDefs.length > 0;
  }

  /** A contest's definition (names), preferring the given election. */
  contest(contestId: string, electionId = ""): ContestDef | null {
    return this.contests.get(`${electionId}\u0000${contestId}`) ?? this.contests.get(`\u0000${contestId}`) ?? null;
  }
}
