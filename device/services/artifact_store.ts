// ArtifactStore: the commission-signed artifacts a device holds (station register, election
// definition, configuration), the anti-rollback version floors of every artifact it ever accepted
// (firmware included), and the replay floor of technician authority. Power-safe: a power cut at
// any byte of any write leaves either the old or the new state, never a mix.
// Also here, because the store, the authority and the firmware update share them: SHA-256 in the
// engine subset (streaming), byte sources over flash, page runs written in order, and a
// power-safe "latest record wins" register over a Journal. Engine subset.
//
// LAYOUT of dataRegions(dataFlash).artifacts (pages renumbered from 0):
//   [0, META_PAGES)   a Journal holding store states; the latest valid record is the state
//   [META_PAGES, n)   blob pages: each held artifact occupies a run of whole pages
// A new artifact is staged into a run of pages that no held artifact uses, checked, and becomes
// current only when the state record naming it is on flash (one journal append). The run it
// replaces is free from then on. So a cut while staging or committing leaves the old artifact and
// the old floors; a cut after the append leaves the new ones.
//
// STATE RECORD (protobuf varints and length-prefixed strings/bytes, in this order):
//   u32 format (1) | u64 lastIssuedMs | string technicianId
//   u32 nHeld,   each: kind, station, election, version, page, pages, length, crc32, digest(32)
//   u32 nFloors, each: kind, station, version, digest(32)
// `digest` is the SHA-256 the commission signature covers (the artifact encoded without its
// signature): an equal version with an equal digest is the same content (an idempotent reload).

import type { Flash } from "../platform/platform.ts";
import { partitionFlash } from "../platform/flash_partition.ts";
import { Journal, JOURNAL_OK, crc32Update, crc32Final } from "./journal.ts";
import {
  sizeVarint32,
  sizeVarint64,
  sizeString,
  sizeBytes,
  writeVarint32,
  writeVarint64,
  writeString,
  writeBytes,
  readVarint32,
  readUint64,
  readString,
  readBytes,
  type Writer,
  type Reader,
} from "../../protocol/codec_runtime.ts";
import { ArtifactKind, decodeSignedArtifact, type SignedArtifact } from "../../protocol/generated/device_codec.ts";

// ---------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), streaming, 32-bit arithmetic only.

import { Sha256, sha256, type Hasher } from "../crypto/sha256.ts";

export { Sha256, sha256, type Hasher };

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Byte sources and page runs

/** Read access to bytes that may live in flash (an artifact too large for RAM). */
export interface ByteSource {
  length: number;
  read(offset: number, length: number): Uint8Array;
}

export function memorySource(bytes: Uint8Array): ByteSource {
  return {
    length: bytes.length,
    read: function (offset: number, length: number) {
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** `length` bytes stored from the start of page `first` of `flash`, across pages. */
export function flashSource(flash: Flash, first: number, length: number): ByteSource {
  const ps = flash.pageSize;
  return {
    length: length,
    read: function (offset: number, n: number) {
      const out = new Uint8Array(n);
      let done = 0;
      while (done < n) {
        const at = offset + done;
        const page = first + Math.floor(at / ps);
        const off = at % ps;
        const k = ps - off < n - done ? ps - off : n - done;
        out.set(flash.read(page, off, k), done);
        done += k;
      }
      return out;
    },
  };
}

/** Feeds source bytes [start, end) to a hasher, a page-sized piece at a time. */
export function hashSource(h: Hasher, src: ByteSource, start: number, end: number): void {
  let at = start;
  while (at < end) {
    const n = end - at > 1024 ? 1024 : end - at;
    h.update(src.read(at, n), 0, n);
    at += n;
  }
}

/** CRC-32 (the journal's) of source bytes [0, length). */
export function crcSource(src: ByteSource): number {
  let c = 0xffffffff;
  let at = 0;
  while (at < src.length) {
    const n = src.length - at > 1024 ? 1024 : src.length - at;
    c = crc32Update(c, src.read(at, n), 0, n);
    at += n;
  }
  return crc32Final(c);
}

/**
 * Writes a run of whole pages in order, erasing each page just before the first byte goes into
 * it, so that every byte is programmed once per erase.
 */
export class PageRun {
  _f: Flash;
  _first: number;
  _pages: number;
  _written: number;
  _erased: number;

  constructor(flash: Flash, first: number, pages: number) {
    this._f = flash;
    this._first = first;
    this._pages = pages;
    this._written = 0;
    this._erased = 0;
  }

  capacity(): number {
    return this._pages * this._f.pageSize;
  }

  /** Appends `data` at `offset` (must be the length written so far). False: out of order, full, flash error. */
  write(offset: number, data: Uint8Array): boolean {
    const ps = this._f.pageSize;
    if (offset !== this._written || offset + data.length > this.capacity()) return false;
    let done = 0;
    while (done < data.length) {
      const at = offset + done;
      const page = Math.floor(at / ps);
      if (page >= this._erased) {
        this._f.erase(this._first + page);
        this._erased = page + 1;
      }
      const off = at % ps;
      const k = ps - off < data.length - done ? ps - off : data.length - done;
      this._f.program(this._first + page, off, data.subarray(done, done + k));
      done += k;
    }
    this._written = offset + data.length;
    return true;
  }

  written(): number {
    return this._written;
  }

  source(): ByteSource {
    return flashSource(this._f, this._first, this._written);
  }
}

/**
 * A power-safe register over a Journal: write() appends a new value, open() returns the newest
 * valid one. Every value but the newest is acknowledged, so the journal reclaims their pages by
 * itself and never the one holding the newest.
 */
export class LatestRecord {
  _j: Journal;
  _ok: boolean;

  constructor(flash: Flash) {
    this._j = new Journal({ flash: flash });
    this._ok = false;
  }

  /** The newest value on flash (null: none, or the flash cannot hold a journal). */
  open(): Uint8Array | null {
    const st = this._j.open();
    this._ok = st.code === JOURNAL_OK;
    if (!this._ok) return null;
    let last: Uint8Array | null = null;
    this._j.forEachUnacked(0, function (seq: number, data: Uint8Array) {
      last = data;
    });
    return last;
  }

  ok(): boolean {
    return this._ok;
  }

  /** Largest value write() takes. */
  maxSize(): number {
    return this._j.maxRecordSize();
  }

  /** True once the value is on flash. */
  write(data: Uint8Array): boolean {
    if (!this._ok) return false;
    const seq = this._j.append(function () {
      return data;
    });
    if (seq < 0) return false;
    if (seq > 1) this._j.ack(seq - 1);
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// Configuration artifacts

/**
 * The body of an ARTIFACT_KIND_CONFIGURATION artifact: UTF-8 text, one `key=value` per line.
 * Keys the core uses: `site` (the site technicians' tokens must name) and `station` (the station
 * this device serves). Other keys are kept for the firmware. Lines without `=` and lines starting
 * with `#` are ignored.
 */
export interface DeviceConfiguration {
  site: string;
  station: string;
  keys: string[];
  values: string[];
}

export function parseConfiguration(body: Uint8Array): DeviceConfiguration {
  const r: Reader = { b: new Uint8Array(body.length + 5), p: 0 };
  const w: Writer = { b: r.b, p: 0 };
  writeVarint32(w, body.length);
  r.b.set(body, w.p);
  const text = readString(r, w.p + body.length);
  const out: DeviceConfiguration = { site: "", station: "", keys: [], values: [] };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const eq = line.indexOf("=");
    if (line === "" || line.charAt(0) === "#" || eq <= 0) continue;
    const k = line.substring(0, eq).trim();
    const v = line.substring(eq + 1).trim();
    if (k === "site") out.site = v;
    else if (k === "station") out.station = v;
    out.keys.push(k);
    out.values.push(v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The store

/** An artifact the device holds. */
export interface HeldArtifact {
  kind: number;
  stationId: string;
  electionId: string;
  version: number;
  /** First page (of the artifacts region) and pages of its run. */
  page: number;
  pages: number;
  /** Bytes of the encoded SignedArtifact as received. */
  length: number;
  crc: number;
  /** SHA-256 covered by the commission's signature. */
  digest: Uint8Array;
}

/** The newest version accepted for a (kind, station): anything older is refused. */
export interface VersionFloor {
  kind: number;
  stationId: string;
  version: number;
  digest: Uint8Array;
}

/** What the commit of an artifact records about it (from its parsed header). */
export interface ArtifactIdentity {
  kind: number;
  stationId: string;
  electionId: string;
  version: number;
  digest: Uint8Array;
}

/** A verified artifact about to become current: its identity and where its body lies. */
export interface StagedArtifact extends ArtifactIdentity {
  bodyOffset: number;
  bodyLength: number;
}

/**
 * Where a transfer of a signed artifact is written before it is verified, and how it becomes
 * current once verified (the store for station data, the firmware slots for firmware).
 */
export interface ArtifactStaging {
  /** Prepares for `total` bytes: null, or why not (no room, a firmware trial running). */
  begin(total: number): string | null;
  /** Appends in order; false on a flash error or past the room reserved. */
  write(offset: number, data: Uint8Array): boolean;
  /** The bytes received so far. */
  source(): ByteSource;
  /** The verified artifact becomes current, power-safe: null, or why not. */
  commit(a: StagedArtifact): string | null;
}

interface StoreState {
  lastIssuedMs: number;
  technicianId: string;
  held: HeldArtifact[];
  floors: VersionFloor[];
}

const STATE_FORMAT = 1;
/** Kinds whose artifact the store itself holds (firmware lives in the firmware slots). */
export const HELD_KINDS = [ArtifactKind.STATION_REGISTER, ArtifactKind.ELECTION_DEFINITION, ArtifactKind.CONFIGURATION];

function emptyState(): StoreState {
  return { lastIssuedMs: 0, technicianId: "", held: [], floors: [] };
}

function copyState(s: StoreState): StoreState {
  return { lastIssuedMs: s.lastIssuedMs, technicianId: s.technicianId, held: s.held.slice(), floors: s.floors.slice() };
}

function stateSize(s: StoreState): number {
  let n = sizeVarint32(STATE_FORMAT) + sizeVarint64(s.lastIssuedMs) + sizeString(s.technicianId) + sizeVarint32(s.held.length);
  for (let i = 0; i < s.held.length; i++) {
    const h = s.held[i];
    n += sizeVarint32(h.kind) + sizeString(h.stationId) + sizeString(h.electionId) + sizeVarint32(h.version);
    n += sizeVarint32(h.page) + sizeVarint32(h.pages) + sizeVarint32(h.length) + sizeVarint32(h.crc) + sizeBytes(h.digest);
  }
  n += sizeVarint32(s.floors.length);
  for (let i = 0; i < s.floors.length; i++) {
    const f = s.floors[i];
    n += sizeVarint32(f.kind) + sizeString(f.stationId) + sizeVarint32(f.version) + sizeBytes(f.digest);
  }
  return n;
}

function encodeState(s: StoreState): Uint8Array {
  const w: Writer = { b: new Uint8Array(stateSize(s)), p: 0 };
  writeVarint32(w, STATE_FORMAT);
  writeVarint64(w, s.lastIssuedMs);
  writeString(w, s.technicianId);
  writeVarint32(w, s.held.length);
  for (let i = 0; i < s.held.length; i++) {
    const h = s.held[i];
    writeVarint32(w, h.kind);
    writeString(w, h.stationId);
    writeString(w, h.electionId);
    writeVarint32(w, h.version);
    writeVarint32(w, h.page);
    writeVarint32(w, h.pages);
    writeVarint32(w, h.length);
    writeVarint32(w, h.crc);
    writeBytes(w, h.digest);
  }
  writeVarint32(w, s.floors.length);
  for (let i = 0; i < s.floors.length; i++) {
    const f = s.floors[i];
    writeVarint32(w, f.kind);
    writeString(w, f.stationId);
    writeVarint32(w, f.version);
    writeBytes(w, f.digest);
  }
  return w.b;
}

/** The state in `b`, or null when it does not parse (never expected: records are CRC-checked). */
function decodeState(b: Uint8Array): StoreState | null {
  const r: Reader = { b: b, p: 0 };
  const end = b.length;
  try {
    if (readVarint32(r) !== STATE_FORMAT) return null;
    const s = emptyState();
    s.lastIssuedMs = readUint64(r);
    s.technicianId = readString(r, end);
    const nh = readVarint32(r);
    for (let i = 0; i < nh; i++) {
      s.held.push({
        kind: readVarint32(r),
        stationId: readString(r, end),
        electionId: readString(r, end),
        version: readVarint32(r),
        page: readVarint32(r),
        pages: readVarint32(r),
        length: readVarint32(r),
        crc: readVarint32(r),
        digest: readBytes(r, end),
      });
    }
    const nf = readVarint32(r);
    for (let i = 0; i < nf; i++) {
      s.floors.push({ kind: readVarint32(r), stationId: readString(r, end), version: readVarint32(r), digest: readBytes(r, end) });
    }
    return r.p === end ? s : null;
  } catch (e) {
    return null;
  }
}

export interface ArtifactStoreOptions {
  /** dataRegions(platform.dataFlash).artifacts */
  flash: Flash;
  /** Pages of the state journal (at least 2; default 4). */
  metaPages?: number;
}

export class ArtifactStore {
  _f: Flash;
  _meta: LatestRecord;
  _mp: number;
  _s: StoreState;
  _cfg: DeviceConfiguration | null;
  _stage: PageRun | null;
  _stagePage: number;
  _error: string;

  constructor(options: ArtifactStoreOptions) {
    this._f = options.flash;
    this._mp = options.metaPages ?? 4;
    const n = options.flash.pageCount;
    this._meta = new LatestRecord(partitionFlash(options.flash, 0, this._mp < n ? this._mp : n));
    this._s = emptyState();
    this._cfg = null;
    this._stage = null;
    this._stagePage = 0;
    this._error = "";
  }

  /** Reads the state from flash (boot, or after a power cut). Returns an error text or null. */
  open(): string | null {
    this._s = emptyState();
    this._cfg = null;
    this._stage = null;
    if (this._f.pageCount < this._mp + 2) return this._fail("artifact region too small: " + this._f.pageCount + " pages");
    const b = this._meta.open();
    if (!this._meta.ok()) return this._fail("artifact state journal does not open");
    if (b !== null) {
      const s = decodeState(b);
      if (s === null) return this._fail("artifact state record does not parse");
      this._s = s;
    }
    this._loadConfig();
    this._error = "";
    return null;
  }

  /** Why the store is unusable ("" when it is fine). */
  error(): string {
    return this._error;
  }

  // ---- reading ----

  held(kind: number): HeldArtifact | null {
    for (let i = 0; i < this._s.held.length; i++) if (this._s.held[i].kind === kind) return this._s.held[i];
    return null;
  }

  /** The stored bytes of the held artifact of `kind` (the encoded SignedArtifact). */
  source(kind: number): ByteSource | null {
    const h = this.held(kind);
    return h === null ? null : flashSource(this._f, h.page, h.length);
  }

  /** The held artifact's bytes, checked against their CRC; null if none or damaged. */
  bytes(kind: number): Uint8Array | null {
    const h = this.held(kind);
    if (h === null) return null;
    const src = flashSource(this._f, h.page, h.length);
    if (crcSource(src) !== h.crc) return null;
    return src.read(0, h.length);
  }

  /** The held artifact, decoded (it was verified when accepted). */
  artifact(kind: number): SignedArtifact | null {
    const b = this.bytes(kind);
    if (b === null) return null;
    try {
      return decodeSignedArtifact(b);
    } catch (e) {
      return null;
    }
  }

  floor(kind: number, stationId: string): VersionFloor | null {
    const fl = this._s.floors;
    for (let i = 0; i < fl.length; i++) if (fl[i].kind === kind && fl[i].stationId === stationId) return fl[i];
    return null;
  }

  floors(): VersionFloor[] {
    return this._s.floors.slice();
  }

  lastIssuedMs(): number {
    return this._s.lastIssuedMs;
  }

  technicianId(): string {
    return this._s.technicianId;
  }

  configuration(): DeviceConfiguration | null {
    return this._cfg;
  }

  /**
   * The station this device serves: the configuration's `station` when it names one, else the
   * station of the held station register, else that of the held election definition ("": none).
   */
  stationId(): string {
    if (this._cfg !== null && this._cfg.station !== "") return this._cfg.station;
    const r = this.held(ArtifactKind.STATION_REGISTER);
    if (r !== null && r.stationId !== "") return r.stationId;
    const e = this.held(ArtifactKind.ELECTION_DEFINITION);
    return e !== null ? e.stationId : "";
  }

  /** The station of the role data held (register or election definition), "" when none is held. */
  roleDataStation(): string {
    const r = this.held(ArtifactKind.STATION_REGISTER);
    if (r !== null && r.stationId !== "") return r.stationId;
    const e = this.held(ArtifactKind.ELECTION_DEFINITION);
    return e !== null ? e.stationId : "";
  }

  /** The site technicians' tokens must name: the configuration's `site`, else the station id. */
  site(): string {
    if (this._cfg !== null && this._cfg.site !== "") return this._cfg.site;
    return this.stationId();
  }

  // ---- staging and committing ----

  /** Reserves a run of free pages for `total` bytes. False: no room (or the store is unusable). */
  stageBegin(total: number): boolean {
    this._stage = null;
    if (this._error !== "" || total <= 0) return false;
    const ps = this._f.pageSize;
    const need = Math.floor((total + ps - 1) / ps);
    const n = this._f.pageCount;
    let run = 0;
    for (let p = this._mp; p < n; p++) {
      if (this._pageUsed(p)) run = 0;
      else {
        run++;
        if (run === need) {
          this._stagePage = p - need + 1;
          this._stage = new PageRun(this._f, this._stagePage, need);
          return true;
        }
      }
    }
    return false;
  }

  stageWrite(offset: number, data: Uint8Array): boolean {
    return this._stage !== null && this._stage.write(offset, data);
  }

  /** The bytes staged so far. */
  staged(): ByteSource {
    return this._stage !== null ? this._stage.source() : memorySource(new Uint8Array(0));
  }

  /**
   * Makes the staged bytes the held artifact of `id.kind` and raises its version floor, in one
   * power-safe write. Returns an error text or null.
   */
  commitStaged(id: ArtifactIdentity): string | null {
    if (this._stage === null) return "nothing staged";
    const src = this._stage.source();
    const ps = this._f.pageSize;
    const h: HeldArtifact = {
      kind: id.kind,
      stationId: id.stationId,
      electionId: id.electionId,
      version: id.version,
      page: this._stagePage,
      pages: Math.floor((src.length + ps - 1) / ps),
      length: src.length,
      crc: crcSource(src),
      digest: id.digest,
    };
    const s = copyState(this._s);
    const held: HeldArtifact[] = [];
    for (let i = 0; i < s.held.length; i++) if (s.held[i].kind !== id.kind) held.push(s.held[i]);
    held.push(h);
    s.held = held;
    this._setFloor(s, id);
    const err = this._write(s);
    if (err === null) {
      this._stage = null;
      if (id.kind === ArtifactKind.CONFIGURATION) this._loadConfig();
    }
    return err;
  }

  /** Raises the floor of (kind, station) to `id.version` (artifacts held elsewhere: firmware). */
  raiseFloor(id: ArtifactIdentity): string | null {
    const f = this.floor(id.kind, id.stationId);
    if (f !== null && f.version === id.version && sameBytes(f.digest, id.digest)) return null;
    const s = copyState(this._s);
    this._setFloor(s, id);
    return this._write(s);
  }

  /** Records the newest technician authority accepted (replay floor). Error text or null. */
  recordAuthority(issuedMs: number, technicianId: string): string | null {
    if (issuedMs <= this._s.lastIssuedMs) return "authority is not newer than the last one";
    const s = copyState(this._s);
    s.lastIssuedMs = issuedMs;
    s.technicianId = technicianId;
    return this._write(s);
  }

  /** Forgets the held artifacts of these kinds (their floors stay). Error text or null. */
  drop(kinds: number[]): string | null {
    const s = copyState(this._s);
    const held: HeldArtifact[] = [];
    for (let i = 0; i < s.held.length; i++) if (kinds.indexOf(s.held[i].kind) < 0) held.push(s.held[i]);
    if (held.length === s.held.length) return null;
    s.held = held;
    const err = this._write(s);
    if (err === null) this._loadConfig();
    return err;
  }

  /** The store as the staging area of a transfer (station register, election, configuration). */
  staging(): ArtifactStaging {
    const self = this;
    return {
      begin: function (total: number) {
        return self.stageBegin(total) ? null : self._error !== "" ? self._error : "no room for " + total + " bytes in the artifact store";
      },
      write: function (offset: number, data: Uint8Array) {
        return self.stageWrite(offset, data);
      },
      source: function () {
        return self.staged();
      },
      commit: function (a: StagedArtifact) {
        return self.commitStaged(a);
      },
    };
  }

  // ---- internals ----

  _fail(message: string): string {
    this._error = message;
    return message;
  }

  _pageUsed(p: number): boolean {
    const h = this._s.held;
    for (let i = 0; i < h.length; i++) if (p >= h[i].page && p < h[i].page + h[i].pages) return true;
    return false;
  }

  _setFloor(s: StoreState, id: ArtifactIdentity): void {
    const floors: VersionFloor[] = [];
    for (let i = 0; i < s.floors.length; i++) {
      const f = s.floors[i];
      if (!(f.kind === id.kind && f.stationId === id.stationId)) floors.push(f);
    }
    floors.push({ kind: id.kind, stationId: id.stationId, version: id.version, digest: id.digest });
    s.floors = floors;
  }

  _write(s: StoreState): string | null {
    if (this._error !== "") return this._error;
    const b = encodeState(s);
    if (b.length > this._meta.maxSize()) return "artifact state too large (" + s.floors.length + " version floors)";
    if (!this._meta.write(b)) return "artifact state could not be written";
    this._s = s;
    return null;
  }

  _loadConfig(): void {
    this._cfg = null;
    const a = this.artifact(ArtifactKind.CONFIGURATION);
    if (a !== null) this._cfg = parseConfiguration(a.body ?? new Uint8Array(0));
  }
}
