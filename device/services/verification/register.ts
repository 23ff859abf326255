// The station register in flash: per voter a lookup key (the first 8 bytes of SHA-256 of the voter
// id; the id itself is never stored) and the matcher's prepared template, sorted by key, read on
// demand. Written power-safely: the header page is erased first and programmed last, so a torn
// write leaves no valid header and the register reads as not loaded. Engine subset.
//
// IMAGE FORMAT (all integers little-endian; CRC-32 is the journal's)
// Page 0, the header (its own page, programmed in one call after everything else):
//    0  u8[4] magic "PKRG"        4  u16 format (1)          6  u16 exemption cap, per mille
//    8  u32 voters n             12  u32 data bytes          16  u32 CRC-32 of keys + offsets
//   20  u32 artifact version     24  u8 station id length    25  u8 election id length
//   26  u8 supervisor keys k     27  u8 0
//   28  station id, election id (UTF-8), k supervisor card keys (8 bytes each)
//   then u32 CRC-32 of every header byte before it (this CRC is the register's tag)
// From page 1, offset 0, one byte stream across pages:
//   keys      n x 8 bytes, ascending (unsigned, byte by byte)
//   offsets   (n + 1) x u32: where record i starts in the data, and where the data ends
//   data      per voter: serializePrepared bytes, then u32 CRC-32 of them

import type { Flash } from "../../platform/platform.ts";
import { crc32, crc32Final, crc32Update } from "../journal.ts";
import { checkEnd, readLength, readString, readVarint32, sizeUtf8, skipField, writeUtf8, isCodecError } from "../../../protocol/codec_runtime.ts";
import type { Reader } from "../../../protocol/codec_runtime.ts";
import { ArtifactKind, readRegisteredVoter, type SignedArtifact } from "../../../protocol/generated/device_codec.ts";
import { parseTemplate } from "../../biometrics/iso19794.ts";
import { prepare, serializePrepared } from "../../biometrics/matcher.ts";

import { sha256 } from "../../crypto/sha256.ts";

export { sha256 };

export type Sha256Fn = (data: Uint8Array) => Uint8Array;

/** The lookup key of a voter id (or a supervisor card id): the first 8 bytes of SHA-256(UTF-8). */
export function cardKey(id: string, hash: Sha256Fn | null): Uint8Array {
  const w = { b: new Uint8Array(sizeUtf8(id)), p: 0 };
  writeUtf8(w, id);
  const d = (hash ?? sha256)(w.b);
  return d.slice(0, 8);
}

function hi32(k: Uint8Array, at: number): number {
  return ((k[at] << 24) | (k[at + 1] << 16) | (k[at + 2] << 8) | k[at + 3]) >>> 0;
}

function get16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

function get32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 255;
  b[at + 1] = (v >>> 8) & 255;
  b[at + 2] = (v >>> 16) & 255;
  b[at + 3] = (v >>> 24) & 255;
}

function utf8(s: string): Uint8Array {
  const w = { b: new Uint8Array(sizeUtf8(s)), p: 0 };
  writeUtf8(w, s);
  return w.b;
}

function decodeUtf8(b: Uint8Array): string {
  const r = { b: new Uint8Array(b.length + 1), p: 0 };
  r.b[0] = b.length; // a length prefix (< 128) so that the codec's readString decodes it
  r.b.set(b, 1);
  return readString(r, r.b.length);
}

export const REGISTER_FORMAT = 1;
const HEADER_FIXED = 28;
/** Longest station or election id kept (bytes of UTF-8). */
export const MAX_ID_BYTES = 64;
export const MAX_SUPERVISORS = 32;
/** Register indexes are stored in 24 bits in the station log. */
export const MAX_VOTERS = 0xffffff;
export const DEFAULT_EXEMPTION_CAP_PERMILLE = 50;

/** What loadRegister found in a StationRegister body, before writing it. */
interface Parsed {
  stationId: string;
  electionId: string;
  cap: number;
  sup: Uint8Array;
  supCount: number;
  n: number;
  /** Per voter, in body order: where its RegisteredVoter starts and ends in the body. */
  at: Uint32Array;
  end: Uint32Array;
  /** Key halves (big-endian words) and prepared size, in body order. */
  khi: Uint32Array;
  klo: Uint32Array;
  size: Uint32Array;
}

/** Per voter in body order: prepared bytes, or an error text (never naming the voter). */
function preparedOf(body: Uint8Array, at: number, end: number, i: number): Uint8Array | string {
  const r: Reader = { b: body, p: at };
  const v = readRegisteredVoter(r, end);
  const t = parseTemplate(v.template ?? new Uint8Array(0));
  if (t.template === null || t.error !== 0) return "voter #" + i + ": template refused: " + t.detail;
  return serializePrepared(prepare(t.template));
}

function lessKey(ahi: number, alo: number, bhi: number, blo: number): boolean {
  return ahi < bhi || (ahi === bhi && alo < blo);
}

/** Heap sort of the permutation `perm` by key: typed arrays only, no recursion. */
function sortByKey(perm: Uint32Array, khi: Uint32Array, klo: Uint32Array): void {
  const n = perm.length;
  function sift(start: number, end: number): void {
    let root = start;
    for (;;) {
      let child = 2 * root + 1;
      if (child >= end) return;
      if (child + 1 < end && lessKey(khi[perm[child]], klo[perm[child]], khi[perm[child + 1]], klo[perm[child + 1]])) child++;
      if (!lessKey(khi[perm[root]], klo[perm[root]], khi[perm[child]], klo[perm[child]])) return;
      const t = perm[root];
      perm[root] = perm[child];
      perm[child] = t;
      root = child;
    }
  }
  for (let s = (n >> 1) - 1; s >= 0; s--) sift(s, n);
  for (let e = n - 1; e > 0; e--) {
    const t = perm[0];
    perm[0] = perm[e];
    perm[e] = t;
    sift(0, e);
  }
}

export interface RegisterImageOptions {
  flash: Flash;
  sha256?: Sha256Fn;
  crc32?: (bytes: Uint8Array) => number;
}

export class RegisterImage {
  _f: Flash;
  _ps: number;
  _hash: Sha256Fn | null;
  _crcFn: ((bytes: Uint8Array) => number) | null;
  loaded: boolean;
  /** Why the image is not loaded ("" when loaded). */
  problem: string;
  count: number;
  stationId: string;
  electionId: string;
  capPermille: number;
  version: number;
  /** The header's CRC: names this image in the station log. */
  tag: number;
  _dataBytes: number;
  _sup: Uint8Array;
  _supCount: number;

  constructor(options: RegisterImageOptions) {
    this._f = options.flash;
    this._ps = options.flash.pageSize;
    this._hash = options.sha256 ?? null;
    this._crcFn = options.crc32 ?? null;
    this.loaded = false;
    this.problem = "not opened";
    this.count = 0;
    this.stationId = "";
    this.electionId = "";
    this.capPermille = DEFAULT_EXEMPTION_CAP_PERMILLE;
    this.version = 0;
    this.tag = 0;
    this._dataBytes = 0;
    this._sup = new Uint8Array(0);
    this._supCount = 0;
  }

  _crc(b: Uint8Array): number {
    return this._crcFn === null ? crc32(b, 0, b.length) : this._crcFn(b) >>> 0;
  }

  /** Bytes available for the body (keys, offsets, data). */
  capacity(): number {
    return this._f.pageCount > 1 ? (this._f.pageCount - 1) * this._ps : 0;
  }

  /** Reads `len` body bytes from body address `addr`, across pages. */
  _read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const page = 1 + Math.floor(a / this._ps);
      const off = a % this._ps;
      const k = this._ps - off < len - done ? this._ps - off : len - done;
      out.set(this._f.read(page, off, k), done);
      done += k;
    }
    return out;
  }

  /**
   * Reads and checks the header and the key table. `full` also checks every record's CRC (after
   * a write). Sets loaded / problem; returns loaded.
   */
  open(full: boolean): boolean {
    this.loaded = false;
    this.count = 0;
    const ps = this._ps;
    if (this._f.pageCount < 2 || ps < 64 || ps % 8 !== 0) {
      this.problem = "register area too small";
      return false;
    }
    const fixed = this._f.read(0, 0, HEADER_FIXED);
    if (fixed[0] !== 0x50 || fixed[1] !== 0x4b || fixed[2] !== 0x52 || fixed[3] !== 0x47 || get16(fixed, 4) !== REGISTER_FORMAT) {
      this.problem = "no register image";
      return false;
    }
    const hlen = HEADER_FIXED + fixed[24] + fixed[25] + 8 * fixed[26];
    if (hlen + 4 > ps || fixed[24] > MAX_ID_BYTES || fixed[25] > MAX_ID_BYTES || fixed[26] > MAX_SUPERVISORS) {
      this.problem = "register header damaged";
      return false;
    }
    const h = this._f.read(0, 0, hlen + 4);
    const tag = get32(h, hlen);
    if (this._crc(h.subarray(0, hlen)) !== tag) {
      this.problem = "register header damaged (torn write?)";
      return false;
    }
    const n = get32(h, 8);
    const dataBytes = get32(h, 12);
    const tableBytes = 12 * n + 4;
    if (n < 1 || n > MAX_VOTERS || tableBytes + dataBytes > this.capacity()) {
      this.problem = "register header inconsistent";
      return false;
    }
    // The key and offset tables, read a page at a time (never all in RAM).
    if (this._crcRange(0, tableBytes) !== get32(h, 16)) {
      this.problem = "register key table damaged";
      return false;
    }
    this.count = n;
    this._dataBytes = dataBytes;
    this.capPermille = get16(h, 6);
    this.version = get32(h, 20);
    let p = HEADER_FIXED;
    this.stationId = decodeUtf8(h.subarray(p, p + h[24]));
    p += h[24];
    this.electionId = decodeUtf8(h.subarray(p, p + h[25]));
    p += h[25];
    this._supCount = h[26];
    this._sup = h.slice(p, p + 8 * h[26]);
    this.tag = tag;
    if (full) {
      for (let i = 0; i < n; i++) {
        if (this.template(i) === null) {
          this.count = 0;
          this.problem = "register record " + i + " damaged";
          return false;
        }
      }
    }
    this.loaded = true;
    this.problem = "";
    return true;
  }

  /** CRC-32 of body bytes [addr, addr + len), read a page at a time. */
  _crcRange(addr: number, len: number): number {
    let c = 0xffffffff;
    let done = 0;
    while (done < len) {
      const k = len - done < this._ps ? len - done : this._ps;
      c = crc32Update(c, this._read(addr + done, k), 0, k);
      done += k;
    }
    return crc32Final(c);
  }

  /** The key of entry i (8 bytes). */
  _key(i: number): Uint8Array {
    return this._read(8 * i, 8);
  }

  /** The register index of the voter with this key, or -1. Binary search in flash. */
  find(key: Uint8Array): number {
    if (!this.loaded || key.length !== 8) return -1;
    const khi = hi32(key, 0);
    const klo = hi32(key, 4);
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const k = this._key(mid);
      const mhi = hi32(k, 0);
      const mlo = hi32(k, 4);
      if (mhi === khi && mlo === klo) return mid;
      if (lessKey(mhi, mlo, khi, klo)) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The prepared template bytes of entry i (checked against their CRC), or null. */
  template(i: number): Uint8Array | null {
    if (i < 0 || i >= this.count) return null;
    const n = this.count;
    const o = this._read(8 * n + 4 * i, 8);
    const start = get32(o, 0);
    const end = get32(o, 4);
    if (end < start + 4 || end > this._dataBytes) return null;
    const rec = this._read(12 * n + 4 + start, end - start);
    const len = end - start - 4;
    if (this._crc(rec.subarray(0, len)) !== get32(rec, len)) return null;
    return rec.subarray(0, len);
  }

  /** True when `key` is one of the register's supervisor card keys. */
  isSupervisor(key: Uint8Array): boolean {
    for (let s = 0; s < this._supCount; s++) {
      let same = true;
      for (let j = 0; j < 8; j++) {
        if (this._sup[8 * s + j] !== key[j]) {
          same = false;
          break;
        }
      }
      if (same) return true;
    }
    return false;
  }

  /** Flash bytes the loaded register takes (header page excluded). */
  imageBytes(): number {
    return this.loaded ? 12 * this.count + 4 + this._dataBytes : 0;
  }

  /** Exemptions allowed: the cap per mille of the register, rounded down. */
  exemptionCap(): number {
    return Math.floor((this.count * this.capPermille) / 1000);
  }

  /** Erases the whole image (header first). */
  erase(): void {
    this._f.erase(0);
    this.loaded = false;
    this.count = 0;
    this.problem = "no register image";
    for (let p = 1; p < this._f.pageCount; p++) this._f.erase(p);
  }

  /** Checks a StationRegister body without writing anything: error text or the parsed summary. */
  _parse(a: SignedArtifact): Parsed | string {
    if (a.kind !== ArtifactKind.STATION_REGISTER) return "not a station register artifact (kind " + a.kind + ")";
    const body = a.body ?? new Uint8Array(0);
    const p: Parsed = {
      stationId: "",
      electionId: "",
      cap: 0,
      sup: new Uint8Array(8 * MAX_SUPERVISORS),
      supCount: 0,
      n: 0,
      at: new Uint32Array(0),
      end: new Uint32Array(0),
      khi: new Uint32Array(0),
      klo: new Uint32Array(0),
      size: new Uint32Array(0),
    };
    const r: Reader = { b: body, p: 0 };
    // Pass 0: the scalar fields, supervisor cards and the number of voters.
    while (r.p < body.length) {
      const t = readVarint32(r);
      if (t === 10) p.stationId = readString(r, body.length);
      else if (t === 18) p.electionId = readString(r, body.length);
      else if (t === 32) p.cap = readVarint32(r);
      else if (t === 42) {
        if (p.supCount >= MAX_SUPERVISORS) return "more than " + MAX_SUPERVISORS + " supervisor cards";
        const id = readString(r, body.length);
        if (id.length === 0) return "empty supervisor card id";
        p.sup.set(cardKey(id, this._hash), 8 * p.supCount);
        p.supCount++;
      } else if (t === 26) {
        r.p = readLength(r, body.length);
        p.n++;
      } else skipField(r, t, body.length);
    }
    checkEnd(r, body.length);
    if (p.stationId.length === 0) return "register names no station";
    if (utf8(p.stationId).length > MAX_ID_BYTES || utf8(p.electionId).length > MAX_ID_BYTES) return "station or election id too long";
    if ((a.stationId ?? "") !== "" && a.stationId !== p.stationId) return "artifact is for station " + a.stationId + " but its register for " + p.stationId;
    if ((a.electionId ?? "") !== "" && a.electionId !== p.electionId) return "artifact election id differs from its register's";
    if (p.n < 1) return "register has no voters";
    if (p.n > MAX_VOTERS) return "register has too many voters";
    if (p.cap > 1000) return "exemption cap over 1000 per mille";
    // Pass 1: each voter's key and prepared size (templates parsed and prepared once here).
    p.at = new Uint32Array(p.n);
    p.end = new Uint32Array(p.n);
    p.khi = new Uint32Array(p.n);
    p.klo = new Uint32Array(p.n);
    p.size = new Uint32Array(p.n);
    r.p = 0;
    let i = 0;
    while (r.p < body.length) {
      const t = readVarint32(r);
      if (t !== 26) {
        skipField(r, t, body.length);
        continue;
      }
      const e = readLength(r, body.length);
      p.at[i] = r.p;
      p.end[i] = e;
      const v = readRegisteredVoter(r, e);
      if ((v.voterId ?? "").length === 0) return "voter #" + i + " has no id";
      const k = cardKey(v.voterId as string, this._hash);
      p.khi[i] = hi32(k, 0);
      p.klo[i] = hi32(k, 4);
      const prep = preparedOf(body, p.at[i], e, i);
      if (typeof prep === "string") return prep;
      p.size[i] = prep.length + 4;
      i++;
    }
    return p;
  }

  /**
   * Writes the register of a verified artifact. Everything is checked before flash is touched (an
   * invalid register leaves the old image as it was); `beforeFlash` runs just before the first
   * erase. Returns an error text or null.
   */
  write(a: SignedArtifact, maxVoters: number, beforeFlash: (() => void) | null): string | null {
    let parsed: Parsed | string;
    try {
      parsed = this._parse(a);
    } catch (e) {
      return "register body does not decode: " + (isCodecError(e) ? e.message : String(e));
    }
    if (typeof parsed === "string") return parsed;
    const p = parsed;
    const n = p.n;
    if (n > maxVoters) return "the station log has room for " + maxVoters + " voters, the register has " + n;
    const perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    sortByKey(perm, p.khi, p.klo);
    for (let i = 1; i < n; i++) {
      if (p.khi[perm[i]] === p.khi[perm[i - 1]] && p.klo[perm[i]] === p.klo[perm[i - 1]]) {
        return "voters #" + perm[i - 1] + " and #" + perm[i] + " have the same id";
      }
    }
    let dataBytes = 0;
    for (let i = 0; i < n; i++) dataBytes += p.size[i];
    const tableBytes = 12 * n + 4;
    if (tableBytes + dataBytes > this.capacity()) {
      return "register needs " + (tableBytes + dataBytes) + " bytes of flash, " + this.capacity() + " available";
    }
    const sid = utf8(p.stationId);
    const eid = utf8(p.electionId);
    const hlen = HEADER_FIXED + sid.length + eid.length + 8 * p.supCount;
    if (hlen + 4 > this._ps) return "register header does not fit a flash page";

    // From here on flash changes: the old header goes first.
    if (beforeFlash !== null) beforeFlash();
    this._f.erase(0);
    this.loaded = false;
    const w = new StreamWriter(this._f, this._ps);
    const word = new Uint8Array(8);
    for (let j = 0; j < n; j++) {
      const v = perm[j];
      word[0] = p.khi[v] >>> 24;
      word[1] = (p.khi[v] >>> 16) & 255;
      word[2] = (p.khi[v] >>> 8) & 255;
      word[3] = p.khi[v] & 255;
      word[4] = p.klo[v] >>> 24;
      word[5] = (p.klo[v] >>> 16) & 255;
      word[6] = (p.klo[v] >>> 8) & 255;
      word[7] = p.klo[v] & 255;
      w.put(word, 8);
    }
    let off = 0;
    for (let j = 0; j <= n; j++) {
      put32(word, 0, off);
      w.put(word, 4);
      if (j < n) off += p.size[perm[j]];
    }
    const body = a.body as Uint8Array;
    for (let j = 0; j < n; j++) {
      const v = perm[j];
      const prep = preparedOf(body, p.at[v], p.end[v], v);
      if (typeof prep === "string" || prep.length + 4 !== p.size[v]) return "voter #" + v + ": template prepared differently twice";
      w.put(prep, prep.length);
      put32(word, 0, this._crc(prep));
      w.put(word, 4);
    }
    w.flush();
    const tableCrc = this._crcRange(0, tableBytes);

    const h = new Uint8Array(hlen + 4);
    h[0] = 0x50;
    h[1] = 0x4b;
    h[2] = 0x52;
    h[3] = 0x47;
    h[4] = REGISTER_FORMAT;
    const cap = p.cap === 0 ? DEFAULT_EXEMPTION_CAP_PERMILLE : p.cap;
    h[6] = cap & 255;
    h[7] = cap >>> 8;
    put32(h, 8, n);
    put32(h, 12, dataBytes);
    put32(h, 16, tableCrc);
    put32(h, 20, a.version ?? 0);
    h[24] = sid.length;
    h[25] = eid.length;
    h[26] = p.supCount;
    h.set(sid, HEADER_FIXED);
    h.set(eid, HEADER_FIXED + sid.length);
    h.set(p.sup.subarray(0, 8 * p.supCount), HEADER_FIXED + sid.length + eid.length);
    put32(h, hlen, this._crc(h.subarray(0, hlen)));
    this._f.program(0, 0, h);
    if (!this.open(true)) return "register did not read back: " + this.problem;
    return null;
  }
}

/** Writes the body as a stream: each page erased, then programmed once when full. */
class StreamWriter {
  _f: Flash;
  _ps: number;
  _page: number;
  _buf: Uint8Array;
  _n: number;

  constructor(f: Flash, ps: number) {
    this._f = f;
    this._ps = ps;
    this._page = 1;
    this._buf = new Uint8Array(ps);
    this._n = 0;
  }

  put(b: Uint8Array, len: number): void {
    let i = 0;
    while (i < len) {
      const k = this._ps - this._n < len - i ? this._ps - this._n : len - i;
      this._buf.set(b.subarray(i, i + k), this._n);
      this._n += k;
      i += k;
      if (this._n === this._ps) this._emit();
    }
  }

  _emit(): void {
    this._f.erase(this._page);
    this._f.program(this._page, 0, this._n === this._ps ? this._buf : this._buf.subarray(0, this._n));
    this._page++;
    this._buf.fill(0xff);
    this._n = 0;
  }

  flush(): void {
    if (this._n > 0) this._emit();
  }
}
