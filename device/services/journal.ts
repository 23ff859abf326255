// Journal: the append-only record log in flash. Records stay until the host acknowledges them as
// durably stored; a power cut at any byte of any write loses nothing that was appended before it.
// Engine subset (ENGINES.md): no destructuring, spread, default parameters, regex or Map; helpers
// are declared before use; integers are packed by hand into Uint8Array.
//
// ON-FLASH FORMAT (all integers little-endian; CRC-32 is the IEEE one of zlib and E.CRC32)
//
// Page header, 24 bytes at offset 0 of a page in use:
//    0  u8[4]  magic "PKJ1"
//    4  u32    gen      page generation: 1 + the highest gen on flash when the page was started;
//                       orders the pages of the log (oldest = lowest gen, head = highest)
//    8  u32    seqBase  the seq the first record of this page gets (the journal's next seq when
//                       the page was started)
//   12  u32    ackSeq   the acknowledged seq when the page was started
//   16  u32    CRC-32 of bytes 0..15
//   20  u32    retired: 0xFFFFFFFF while the page is live; programmed to 0 just before the page
//              is erased, so that an erase cut short never leaves a page that still looks live
//              (not covered by the CRC: any bit cleared means retired)
// A page whose header is not valid, or is retired, is free (blank, half-erased, torn header):
// it is erased before use unless it reads all 0xFF.
//
// Entries follow from offset 24, each starting on a 4-byte boundary (padding is never written):
//    0  u8     type     0x52 "R" data record, 0x41 "A" ack marker
//    1  u8     0        reserved
//    2  u16    len      payload length (0 for an ack marker)
//    4  u32    seq      data record: its sequence number; ack marker: the acknowledged seq
//    8  u8[len] payload
//  8+len u32   CRC-32 of bytes 0 .. 8+len-1
// The data records of a page carry consecutive seqs from seqBase. The scan of a page stops at
// the first entry that is not valid (bad type, length past the page, CRC mismatch, unexpected
// seq): that entry and everything after it in the page are never trusted. All 0xFF where an
// entry would start is the clean end of the page. Each entry or header is written by a single
// program() call, and each byte is programmed at most once between erases.
//
// RECOVERY RULES (open)
// - The head is the live page with the highest gen. It is never erased while it is the head, so
//   its header always holds a seqBase above every seq handed out in older pages.
// - nextSeq = max over live pages of (seqBase + number of valid data records), plus ONE if the
//   head's tail is dirty (any byte not 0xFF after its last valid entry): a torn entry is taken to
//   have consumed the seq it would have had, and the head is closed (new entries go to a fresh
//   page). Should CRC-valid records sit past the tear (only bit rot can put them there) their
//   seqs are skipped too, though the records are not returned. So no seq returned by append() is
//   ever handed out again, nor any seq of which a byte reached flash. A seq whose append() did
//   not return and of which no byte was programmed (or that failed with JOURNAL_FULL or
//   TOO_LARGE) may be handed out again: only encode() saw it. Seqs may therefore have gaps after
//   a power cut; acknowledgements are cumulative, so a gap never blocks the host.
// - ackedSeq = max(every header's ackSeq, every ack marker, seqBase of the oldest live page - 1).
//   The last term holds because a page is only retired when every record in it has been
//   acknowledged by the host (in RAM at least), and pages are retired oldest first: retiring a
//   page persists the ack of its records by itself. A newer page header carries an ack at least
//   as high as every marker in older pages, so retiring old pages never moves the ack back.
// - Seqs are u32: 4 billion records per journal lifetime. They restart at 1 only if the whole
//   journal area is wiped from outside.
//
// MEMORY: per page gen, seqBase, record count and end offset in typed arrays, and the page order;
// no record is kept in RAM. A read walks the entry headers of one page.

import type { Flash } from "../platform/platform.ts";

/** Success. */
export const JOURNAL_OK = 0;
/** ack(): accepted (ackedSeq() moved) but there is no flash room to persist it yet; it is
 *  persisted by the next page started, the next compaction or the next ack that finds room. */
export const ACK_PENDING = 1;
/** append(): no room without overwriting unacknowledged records. */
export const JOURNAL_FULL = -1;
/** append(): the record cannot fit in one page (see maxRecordSize()). */
export const TOO_LARGE = -2;
/** ack(): a seq that was never handed out (above nextSeq() - 1), negative or not an integer. */
export const BAD_ACK = -3;
/** Called before open(). */
export const NOT_OPEN = -4;
/** open(): the flash geometry cannot hold a journal. */
export const BAD_CONFIG = -5;

export const PAGE_HEADER_SIZE = 24;
const PAGE_HEADER_WRITTEN = 20; // the retired word stays 0xFF until the page is retired
/** Bytes an entry takes besides its payload: 8 before it, the CRC after it. */
export const ENTRY_OVERHEAD = 12;
const ENTRY_HEAD = 8;
const T_DATA = 0x52;
const T_ACK = 0x41;
const M0 = 0x50; // "P"
const M1 = 0x4b; // "K"
const M2 = 0x4a; // "J"
const M3 = 0x31; // "1"

// Page states in RAM.
const S_UNKNOWN = 0; // no live header: blank, half-erased, torn or retired; check before use
const S_BLANK = 1; // known erased this session
const S_LOG = 2; // live header, part of the log

// CRC-32 (reflected polynomial 0xEDB88320) with a 16-entry table: 64 bytes of RAM.
const CRC_NIBBLE = new Uint32Array([
  0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
  0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
]);

/** CRC-32 (IEEE: zlib, E.CRC32) of bytes[start, end), in the engine subset. */
/** Running CRC-32: start from 0xFFFFFFFF, feed ranges, finish with crc32Final. */
export function crc32Update(crc: number, bytes: Uint8Array, start: number, end: number): number {
  let c = crc;
  for (let i = start; i < end; i++) {
    const b = bytes[i];
    c = (c >>> 4) ^ CRC_NIBBLE[(c ^ b) & 15];
    c = (c >>> 4) ^ CRC_NIBBLE[(c ^ (b >>> 4)) & 15];
  }
  return c;
}

export function crc32Final(crc: number): number {
  return (crc ^ 0xffffffff) >>> 0;
}

export function crc32(bytes: Uint8Array, start: number, end: number): number {
  return crc32Final(crc32Update(0xffffffff, bytes, start, end));
}

function get16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

function get32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function isSeq(n: number): boolean {
  return typeof n === "number" && n >= 0 && n <= 0xffffffff && Math.floor(n) === n;
}

function isBlank(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    if (b[i] !== 0xff) return false;
  }
  return true;
}

/** "123456789", the standard check input of CRC-32 (0xCBF43926). */
const CRC_CHECK = new Uint8Array([0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39]);
const CRC_CHECK_VALUE = 0xcbf43926;

export interface JournalOptions {
  flash: Flash;
  /** isNearFull() turns true when this share of the capacity holds unacknowledged data (80). */
  nearFullPercent?: number;
  /**
   * A faster CRC-32 (IEEE) of a whole array, e.g. E.CRC32 on Espruino; open() checks it against
   * the standard check value and refuses it (BAD_CONFIG) if it differs. Default: in JS.
   */
  crc32?: (bytes: Uint8Array) => number;
}

/** What open() found. */
export interface JournalStatus {
  /** JOURNAL_OK or BAD_CONFIG. */
  code: number;
  /** Pages holding a live header (part of the log). */
  logPages: number;
  /** Pages without a live header (blank, half-erased, torn header, retired). */
  freePages: number;
  /** Valid data records found. */
  records: number;
  /** True when the head page ended in a torn entry (a write cut by power loss). */
  tornTail: boolean;
  nextSeq: number;
  ackedSeq: number;
}

/** Receives one unacknowledged record; return false to stop the walk. */
export type UnackedVisitor = (seq: number, data: Uint8Array) => boolean | void;

export class Journal {
  private _f: Flash;
  private _ps: number;
  private _pc: number;
  private _near: number;
  private _crcFn: ((bytes: Uint8Array) => number) | null;
  private _open: boolean;
  // Per page: state, gen, seqBase, valid data records, end of the last valid entry.
  private _st: Uint8Array;
  private _gen: Uint32Array;
  private _base: Uint32Array;
  private _cnt: Uint32Array;
  private _end: Uint32Array;
  /** Log pages, oldest first; the last one is the head. */
  private _log: number[];
  /** The head's tail is dirty (torn entry): nothing more is written to it. */
  private _closed: boolean;
  private _maxGen: number;
  private _next: number;
  /** Acknowledged seq as accepted from the host (may be ahead of flash: see ACK_PENDING). */
  private _ack: number;
  /** Acknowledged seq as recovery would find it on flash. */
  private _dack: number;
  // Scan results (no destructuring in the subset).
  private _scanTorn: boolean;
  private _scanAck: number;

  constructor(options: JournalOptions) {
    this._f = options.flash;
    this._ps = options.flash.pageSize;
    this._pc = options.flash.pageCount;
    this._near = options.nearFullPercent ?? 80;
    this._crcFn = options.crc32 ?? null;
    this._open = false;
    const n = this._pc > 0 ? this._pc : 0;
    this._st = new Uint8Array(n);
    this._gen = new Uint32Array(n);
    this._base = new Uint32Array(n);
    this._cnt = new Uint32Array(n);
    this._end = new Uint32Array(n);
    this._log = [];
    this._closed = false;
    this._maxGen = 0;
    this._next = 1;
    this._ack = 0;
    this._dack = 0;
    this._scanTorn = false;
    this._scanAck = 0;
  }

  /** Rebuilds the state from flash (after boot or a power cut). Writes nothing. */
  open(): JournalStatus {
    const ps = this._ps;
    const pc = this._pc;
    this._open = false;
    this._log = [];
    this._closed = false;
    this._maxGen = 0;
    this._next = 1;
    this._ack = 0;
    this._dack = 0;
    if (ps < PAGE_HEADER_SIZE + ENTRY_OVERHEAD + 4 || ps % 4 !== 0 || pc < 2) {
      return this._status(BAD_CONFIG, 0, false);
    }
    if (this._crc(CRC_CHECK, 0, CRC_CHECK.length) !== CRC_CHECK_VALUE) return this._status(BAD_CONFIG, 0, false);
    let ackMax = 0;
    for (let p = 0; p < pc; p++) {
      const h = this._f.read(p, 0, PAGE_HEADER_SIZE);
      if (this._headerLive(h)) {
        this._st[p] = S_LOG;
        this._gen[p] = get32(h, 4);
        this._base[p] = get32(h, 8);
        const a = get32(h, 12);
        if (a > ackMax) ackMax = a;
        if (this._gen[p] > this._maxGen) this._maxGen = this._gen[p];
        this._log.push(p);
      } else {
        this._st[p] = S_UNKNOWN;
      }
      this._cnt[p] = 0;
      this._end[p] = PAGE_HEADER_SIZE;
    }
    const gen = this._gen;
    this._log.sort(function (a: number, b: number): number {
      return gen[a] - gen[b];
    });
    let records = 0;
    let torn = false;
    const nLog = this._log.length;
    for (let i = 0; i < nLog; i++) {
      const p = this._log[i];
      this._scan(p, i === nLog - 1);
      records += this._cnt[p];
      if (this._scanAck > ackMax) ackMax = this._scanAck;
      const after = this._base[p] + this._cnt[p];
      if (after > this._next) this._next = after;
      if (i === nLog - 1 && this._scanTorn) torn = true;
    }
    if (torn) {
      // The torn entry may have been a record: its seq is consumed, and so are the seqs of any
      // valid-looking records past the tear.
      const head = this._log[nLog - 1];
      const beyond = this._seqsBeyond(head, this._end[head]);
      this._next = beyond >= this._next ? beyond + 1 : this._next + 1;
      this._closed = true;
    }
    if (nLog > 0) {
      const implied = this._base[this._log[0]] - 1;
      if (implied > ackMax) ackMax = implied;
    }
    if (ackMax > this._next - 1) ackMax = this._next - 1;
    this._ack = ackMax;
    this._dack = ackMax;
    this._open = true;
    return this._status(JOURNAL_OK, records, torn);
  }

  /**
   * Appends one record. `encode` receives the seq the record will get and returns its bytes; it
   * may be called even when the append then fails, so it must not act on the seq by itself.
   * Returns the seq (>= 1) or JOURNAL_FULL / TOO_LARGE / NOT_OPEN. Once this returns a seq the
   * record is on flash.
   */
  append(encode: (seq: number) => Uint8Array): number {
    if (!this._open) return NOT_OPEN;
    const seq = this._next;
    const data = encode(seq);
    const len = data.length;
    if (len > this.maxRecordSize()) return TOO_LARGE;
    const need = ENTRY_OVERHEAD + len;
    let p = this._head();
    if (p < 0 || this._closed || this._end[p] + need > this._ps) {
      p = this._startPage();
      if (p < 0) return JOURNAL_FULL;
    }
    const off = this._end[p];
    this._f.program(p, off, this._entry(T_DATA, seq, data));
    this._end[p] = align4(off + need);
    this._cnt[p]++;
    this._next = seq + 1;
    return seq;
  }

  /**
   * Acknowledges every record up to `seq`. JOURNAL_OK once it is on flash, ACK_PENDING when it
   * was accepted but there was no room to persist it, BAD_ACK for a seq never handed out.
   * Acks at or below the current one are harmless no-ops (OK).
   */
  ack(seq: number): number {
    if (!this._open) return NOT_OPEN;
    if (!isSeq(seq) || seq > this._next - 1) return BAD_ACK;
    if (seq <= this._dack) return JOURNAL_OK;
    if (seq > this._ack) this._ack = seq;
    return this._persistAck();
  }

  /** Erases every page whose records are all acknowledged (never the head). Returns pages erased. */
  compact(): number {
    if (!this._open) return 0;
    let n = 0;
    while (this._log.length > 1 && this._reclaimable(this._log[0])) {
      this._eraseOldest();
      n++;
    }
    if (this._dack < this._ack) this._persistAck();
    return n;
  }

  /** The record `seq`, checked against its CRC, or null (never stored, compacted, torn). */
  read(seq: number): Uint8Array | null {
    if (!this._open || !isSeq(seq)) return null;
    const p = this._pageOf(seq);
    if (p < 0) return null;
    const end = this._end[p];
    let off = PAGE_HEADER_SIZE;
    while (off + ENTRY_OVERHEAD <= end) {
      const h = this._f.read(p, off, ENTRY_HEAD);
      const len = get16(h, 2);
      if (h[0] === T_DATA && get32(h, 4) === seq) {
        const e = this._readEntry(p, off, end, h);
        return e === null ? null : e.slice(ENTRY_HEAD, ENTRY_HEAD + len);
      }
      off = align4(off + ENTRY_OVERHEAD + len);
    }
    return null;
  }

  /**
   * Calls `cb` for each unacknowledged record with seq >= fromSeq, in order, until it returns
   * false. The callback must not append, ack or compact (collect, then act). Returns the count.
   */
  forEachUnacked(fromSeq: number, cb: UnackedVisitor): number {
    if (!this._open) return 0;
    const from = fromSeq > this._ack + 1 ? fromSeq : this._ack + 1;
    const pages = this._log.slice();
    let n = 0;
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i];
      if (this._cnt[p] === 0 || this._base[p] + this._cnt[p] - 1 < from) continue;
      const end = this._end[p];
      let off = PAGE_HEADER_SIZE;
      while (off + ENTRY_OVERHEAD <= end) {
        const h = this._f.read(p, off, ENTRY_HEAD);
        const len = get16(h, 2);
        const s = get32(h, 4);
        if (h[0] === T_DATA && s >= from) {
          const e = this._readEntry(p, off, end, h);
          if (e !== null) {
            n++;
            if (cb(s, e.slice(ENTRY_HEAD, ENTRY_HEAD + len)) === false) return n;
          }
        }
        off = align4(off + ENTRY_OVERHEAD + len);
      }
    }
    return n;
  }

  /** The first unacknowledged seq above `afterSeq`, or 0 when there is none. No flash access. */
  nextUnacked(afterSeq: number): number {
    const x = afterSeq > this._ack ? afterSeq : this._ack;
    for (let i = 0; i < this._log.length; i++) {
      const p = this._log[i];
      const c = this._cnt[p];
      if (c === 0) continue;
      const lo = this._base[p];
      if (lo + c - 1 > x) return lo > x ? lo : x + 1;
    }
    return 0;
  }

  /** Up to `max` unacknowledged seqs, in order. */
  unackedSeqs(max: number): number[] {
    const out: number[] = [];
    let s = this.nextUnacked(0);
    while (s > 0 && out.length < max) {
      out.push(s);
      s = this.nextUnacked(s);
    }
    return out;
  }

  /** Lowest seq still stored (nextSeq() when the journal holds no record). */
  firstSeq(): number {
    for (let i = 0; i < this._log.length; i++) {
      const p = this._log[i];
      if (this._cnt[p] > 0) return this._base[p];
    }
    return this._next;
  }

  /** The seq the next append will get (if it succeeds). */
  nextSeq(): number {
    return this._next;
  }

  /** Highest acknowledged seq (accepted from the host). */
  ackedSeq(): number {
    return this._ack;
  }

  /** Highest acknowledged seq that is on flash (ackedSeq() unless an ack is ACK_PENDING). */
  durableAckSeq(): number {
    return this._dack;
  }

  /** Number of unacknowledged records. */
  backlog(): number {
    let n = 0;
    for (let i = 0; i < this._log.length; i++) {
      const p = this._log[i];
      const c = this._cnt[p];
      if (c === 0) continue;
      const lo = this._base[p] > this._ack ? this._base[p] : this._ack + 1;
      const hi = this._base[p] + c - 1;
      if (hi >= lo) n += hi - lo + 1;
    }
    return n;
  }

  /** Largest payload one record can carry. */
  maxRecordSize(): number {
    const m = this._ps - PAGE_HEADER_SIZE - ENTRY_OVERHEAD;
    return m > 0xffff ? 0xffff : m;
  }

  /** Bytes (entry overhead included) that can still be written without touching unacked data. */
  freeBytes(): number {
    if (!this._open) return 0;
    let n = 0;
    const h = this._head();
    if (h >= 0 && !this._closed) n += this._ps - this._end[h];
    return n + this._freePages() * (this._ps - PAGE_HEADER_SIZE);
  }

  /** Total bytes for entries: every page without its header. */
  capacityBytes(): number {
    return this._pc * (this._ps - PAGE_HEADER_SIZE);
  }

  /** True when at least nearFullPercent of the capacity is taken by data not yet reclaimable. */
  isNearFull(): boolean {
    const cap = this.capacityBytes();
    return (cap - this.freeBytes()) * 100 >= this._near * cap;
  }

  // ---- internals ----

  private _crc(b: Uint8Array, start: number, end: number): number {
    const fn = this._crcFn;
    return fn === null ? crc32(b, start, end) : fn(b.subarray(start, end)) >>> 0;
  }

  private _headerLive(h: Uint8Array): boolean {
    return (
      h[0] === M0 && h[1] === M1 && h[2] === M2 && h[3] === M3 && get32(h, 16) === this._crc(h, 0, 16) &&
      get32(h, 20) === 0xffffffff
    );
  }

  private _pageHeader(gen: number, seqBase: number, ackSeq: number): Uint8Array {
    const h = new Uint8Array(PAGE_HEADER_WRITTEN);
    h[0] = M0;
    h[1] = M1;
    h[2] = M2;
    h[3] = M3;
    put32(h, 4, gen);
    put32(h, 8, seqBase);
    put32(h, 12, ackSeq);
    put32(h, 16, this._crc(h, 0, 16));
    return h;
  }

  /** One entry ready to program. */
  private _entry(type: number, seq: number, payload: Uint8Array): Uint8Array {
    const n = payload.length;
    const e = new Uint8Array(ENTRY_OVERHEAD + n);
    e[0] = type;
    e[1] = 0;
    put16(e, 2, n);
    put32(e, 4, seq);
    e.set(payload, ENTRY_HEAD);
    put32(e, ENTRY_HEAD + n, this._crc(e, 0, ENTRY_HEAD + n));
    return e;
  }

  /**
   * The whole entry at `off` of page p (its first 8 bytes already read as `h`) if it is well
   * formed, ends by `limit` and passes its CRC; otherwise null.
   */
  private _readEntry(p: number, off: number, limit: number, h: Uint8Array): Uint8Array | null {
    const len = get16(h, 2);
    if ((h[0] !== T_DATA && h[0] !== T_ACK) || h[1] !== 0 || off + ENTRY_OVERHEAD + len > limit) return null;
    const e = this._f.read(p, off, ENTRY_OVERHEAD + len);
    return this._crc(e, 0, ENTRY_HEAD + len) === get32(e, ENTRY_HEAD + len) ? e : null;
  }

  private _status(code: number, records: number, torn: boolean): JournalStatus {
    return {
      code: code,
      logPages: this._log.length,
      freePages: code === JOURNAL_OK ? this._pc - this._log.length : 0,
      records: records,
      tornTail: torn,
      nextSeq: this._next,
      ackedSeq: this._ack,
    };
  }

  private _head(): number {
    const n = this._log.length;
    return n > 0 ? this._log[n - 1] : -1;
  }

  /** Walks the entries of a log page: sets _cnt, _end, _scanAck, _scanTorn. */
  private _scan(p: number, isHead: boolean): void {
    const ps = this._ps;
    const base = this._base[p];
    let k = base;
    let off = PAGE_HEADER_SIZE;
    let torn = false;
    let ackMax = 0;
    while (off + ENTRY_OVERHEAD <= ps) {
      const h = this._f.read(p, off, ENTRY_HEAD);
      if (isBlank(h)) break;
      const e = this._readEntry(p, off, ps, h);
      if (e === null) {
        torn = true;
        break;
      }
      const len = get16(e, 2);
      const s = get32(e, 4);
      // A data record must carry the next seq of its page; an ack cannot exceed what was issued.
      if (e[0] === T_DATA ? s !== k : len !== 0 || s > k - 1) {
        torn = true;
        break;
      }
      if (e[0] === T_DATA) k++;
      else if (s > ackMax) ackMax = s;
      off = align4(off + ENTRY_OVERHEAD + len);
    }
    this._cnt[p] = k - base;
    this._end[p] = off;
    if (isHead && !torn) torn = !this._erasedFrom(p, off);
    this._scanTorn = torn;
    this._scanAck = ackMax;
  }

  /**
   * The highest seq of any valid data entry at a 4-byte boundary after `from` in page p
   * (resynchronising past a torn entry), or 0. Used only to keep such seqs from being reused.
   */
  private _seqsBeyond(p: number, from: number): number {
    let max = 0;
    for (let off = from + 4; off + ENTRY_OVERHEAD <= this._ps; off += 4) {
      const h = this._f.read(p, off, ENTRY_HEAD);
      if (h[0] !== T_DATA || get32(h, 4) <= max) continue;
      if (this._readEntry(p, off, this._ps, h) !== null) max = get32(h, 4);
    }
    return max;
  }

  /** True when every byte of page p from `from` to its end reads 0xFF. */
  private _erasedFrom(p: number, from: number): boolean {
    const ps = this._ps;
    let off = from;
    while (off < ps) {
      const n = ps - off > 64 ? 64 : ps - off;
      if (!isBlank(this._f.read(p, off, n))) return false;
      off += n;
    }
    return true;
  }

  /** A non-head log page all of whose records are acknowledged. */
  private _reclaimable(p: number): boolean {
    if (p === this._head()) return false;
    const c = this._cnt[p];
    return c === 0 || this._base[p] + c - 1 <= this._ack;
  }

  /** Free pages: not in the log, or reclaimable (a prefix of the log, never the head). */
  private _freePages(): number {
    let n = this._pc - this._log.length;
    for (let i = 0; i < this._log.length - 1; i++) {
      if (!this._reclaimable(this._log[i])) break;
      n++;
    }
    return n;
  }

  /** Retires then erases the oldest log page (reclaimable): that persists the ack of its records. */
  private _eraseOldest(): void {
    const p = this._log[0];
    this._f.program(p, PAGE_HEADER_WRITTEN, new Uint8Array(4));
    this._f.erase(p);
    this._log.shift();
    this._st[p] = S_BLANK;
    this._cnt[p] = 0;
    this._end[p] = PAGE_HEADER_SIZE;
    const implied = this._base[this._log[0]] - 1;
    if (implied > this._ack) this._ack = implied;
    if (implied > this._dack) this._dack = implied;
  }

  /** Picks a free page, erases it if needed and writes a header: the new head. -1 if none. */
  private _startPage(): number {
    const pc = this._pc;
    const h = this._head();
    const start = h >= 0 ? (h + 1) % pc : 0;
    let p = -1;
    // Blank pages first, then pages without a live header, then the oldest reclaimable page;
    // starting after the head spreads the wear.
    for (let i = 0; i < pc && p < 0; i++) {
      const q = (start + i) % pc;
      if (this._st[q] === S_BLANK) p = q;
    }
    for (let i = 0; i < pc && p < 0; i++) {
      const q = (start + i) % pc;
      if (this._st[q] === S_UNKNOWN) p = q;
    }
    if (p >= 0 && this._st[p] === S_UNKNOWN) {
      if (!this._erasedFrom(p, 0)) this._f.erase(p);
      this._st[p] = S_BLANK;
    }
    if (p < 0) {
      if (this._log.length < 2 || !this._reclaimable(this._log[0])) return -1;
      p = this._log[0];
      this._eraseOldest();
    }
    const gen = this._maxGen + 1;
    this._f.program(p, 0, this._pageHeader(gen, this._next, this._ack));
    this._maxGen = gen;
    this._st[p] = S_LOG;
    this._gen[p] = gen;
    this._base[p] = this._next;
    this._cnt[p] = 0;
    this._end[p] = PAGE_HEADER_SIZE;
    this._log.push(p);
    this._closed = false;
    this._dack = this._ack;
    return p;
  }

  /** Writes the current ack to flash: a marker in the head, or a new page whose header has it. */
  private _persistAck(): number {
    const h = this._head();
    if (h >= 0 && !this._closed && this._end[h] + ENTRY_OVERHEAD <= this._ps) {
      const off = this._end[h];
      this._f.program(h, off, this._entry(T_ACK, this._ack, new Uint8Array(0)));
      this._end[h] = off + ENTRY_OVERHEAD;
      this._dack = this._ack;
      return JOURNAL_OK;
    }
    return this._startPage() >= 0 ? JOURNAL_OK : ACK_PENDING;
  }

  /** The log page holding record `seq`, or -1. */
  private _pageOf(seq: number): number {
    for (let i = 0; i < this._log.length; i++) {
      const p = this._log[i];
      const c = this._cnt[p];
      if (c > 0 && seq >= this._base[p] && seq < this._base[p] + c) return p;
    }
    return -1;
  }
}
