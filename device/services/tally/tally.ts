// The counting rules of the result acceleration device, kept apart from I/O: judging one ballot's
// marks against the election definition, the running tally, the set of serials already counted,
// the entries of the power-safe ballot log, and the station result. Engine subset.
//
// RULES
// - A contest with no mark is blank. More marks than the contest's max_marks make it invalid
//   (an over-vote); the other contests of the ballot still count.
// - Every ballot counted adds one to ballots_counted, whatever its contests hold.
// - A serial already counted is a duplicate: the ballot is rejected (ballots_rejected), and so is a
//   ballot fed while the polls are loaded but not yet open.
//
// BALLOT LOG ENTRIES (payloads of records in a Journal over the role log; integers little-endian)
//   'E' 0x45  sha256[32] idLen:u8 id            an election definition was adopted
//   'O' 0x4F  time:u32 lo, u32 hi               polls opened (wall clock, ms)
//   'B' 0x42  scanSeq:u16 ordinal:u32 jnext:u32 serialLen:u8 serial n:u8 choices:i8[n]
//             a ballot counted; jnext is the firmware journal's next seq before its BALLOT record
//   'J' 0x4A  ordinal:u32 seq:u32               that ballot's BALLOT record is journal record seq
//   'R' 0x52  scanSeq:u16 reason:u8 serialLen:u8 serial   a ballot rejected (NAK reason)
//   'V' 0x56  count:u32                         the verification device's count of voters
//   'C' 0x43  time:u32 lo, u32 hi, jnext:u32    polls closed
//   'K' 0x4B  seq:u32                           the RESULT record is journal record seq
//   'P' 0x50  copies:u32                        the voucher was printed (copies so far)

import { crc32 } from "../journal.ts";
import { CHOICE_BLANK, CHOICE_INVALID, type Election } from "./election.ts";
import type { ContestResult, StationResult } from "../../../protocol/generated/device_codec.ts";

export const LOG_ELECTION = 0x45;
export const LOG_OPEN = 0x4f;
export const LOG_BALLOT = 0x42;
export const LOG_JOURNALLED = 0x4a;
export const LOG_REJECT = 0x52;
export const LOG_VERIFIED = 0x56;
export const LOG_CLOSE = 0x43;
export const LOG_RESULT = 0x4b;
export const LOG_PRINTED = 0x50;

/** One ballot-log entry; the fields a type does not use stay 0 / empty. */
export interface LogEntry {
  type: number;
  sha: Uint8Array;
  /** Election id ('E') or ballot serial ('B', 'R'). */
  text: string;
  scanSeq: number;
  ordinal: number;
  /** Journal seq ('J', 'K'), the journal's next seq ('B', 'C'), count ('V', 'P'). */
  seq: number;
  timeMs: number;
  reason: number;
  choices: number[];
}

export function logEntry(type: number): LogEntry {
  return { type: type, sha: new Uint8Array(0), text: "", scanSeq: 0, ordinal: 0, seq: 0, timeMs: 0, reason: 0, choices: [] };
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

function get16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

function get32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

function putTime(b: Uint8Array, at: number, ms: number): void {
  put32(b, at, ms % 4294967296);
  put32(b, at + 4, Math.floor(ms / 4294967296));
}

function getTime(b: Uint8Array, at: number): number {
  return get32(b, at + 4) * 4294967296 + get32(b, at);
}

/** ASCII text (ids and serials are ASCII by construction). */
function putAscii(b: Uint8Array, at: number, s: string): void {
  for (let i = 0; i < s.length; i++) b[at + i] = s.charCodeAt(i) & 0x7f;
}

function getAscii(b: Uint8Array, at: number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(b[at + i]);
  return s;
}

/** The bytes of one ballot-log entry. */
export function encodeLogEntry(e: LogEntry): Uint8Array {
  const t = e.type;
  let b: Uint8Array;
  if (t === LOG_ELECTION) {
    b = new Uint8Array(34 + e.text.length);
    b.set(e.sha.subarray(0, 32), 1);
    b[33] = e.text.length;
    putAscii(b, 34, e.text);
  } else if (t === LOG_OPEN) {
    b = new Uint8Array(9);
    putTime(b, 1, e.timeMs);
  } else if (t === LOG_BALLOT) {
    const n = e.text.length;
    b = new Uint8Array(13 + n + e.choices.length);
    put16(b, 1, e.scanSeq);
    put32(b, 3, e.ordinal);
    put32(b, 7, e.seq);
    b[11] = n;
    putAscii(b, 12, e.text);
    b[12 + n] = e.choices.length;
    for (let i = 0; i < e.choices.length; i++) b[13 + n + i] = e.choices[i] & 0xff;
  } else if (t === LOG_JOURNALLED) {
    b = new Uint8Array(9);
    put32(b, 1, e.ordinal);
    put32(b, 5, e.seq);
  } else if (t === LOG_REJECT) {
    b = new Uint8Array(5 + e.text.length);
    put16(b, 1, e.scanSeq);
    b[3] = e.reason;
    b[4] = e.text.length;
    putAscii(b, 5, e.text);
  } else if (t === LOG_VERIFIED || t === LOG_RESULT || t === LOG_PRINTED) {
    b = new Uint8Array(5);
    put32(b, 1, e.seq);
  } else if (t === LOG_CLOSE) {
    b = new Uint8Array(13);
    putTime(b, 1, e.timeMs);
    put32(b, 9, e.seq);
  } else {
    b = new Uint8Array(1);
  }
  b[0] = t;
  return b;
}

/** One ballot-log entry, or null when the bytes are not one (wrong length, unknown type). */
export function decodeLogEntry(b: Uint8Array): LogEntry | null {
  if (b.length < 1) return null;
  const e = logEntry(b[0]);
  const t = b[0];
  const n = b.length;
  if (t === LOG_ELECTION) {
    if (n < 34 || n !== 34 + b[33]) return null;
    e.sha = b.slice(1, 33);
    e.text = getAscii(b, 34, b[33]);
  } else if (t === LOG_OPEN) {
    if (n !== 9) return null;
    e.timeMs = getTime(b, 1);
  } else if (t === LOG_BALLOT) {
    if (n < 13) return null;
    const s = b[11];
    if (n < 13 + s || n !== 13 + s + b[12 + s]) return null;
    e.scanSeq = get16(b, 1);
    e.ordinal = get32(b, 3);
    e.seq = get32(b, 7);
    e.text = getAscii(b, 12, s);
    for (let i = 0; i < b[12 + s]; i++) e.choices.push((b[13 + s + i] << 24) >> 24);
  } else if (t === LOG_JOURNALLED) {
    if (n !== 9) return null;
    e.ordinal = get32(b, 1);
    e.seq = get32(b, 5);
  } else if (t === LOG_REJECT) {
    if (n < 5 || n !== 5 + b[4]) return null;
    e.scanSeq = get16(b, 1);
    e.reason = b[3];
    e.text = getAscii(b, 5, b[4]);
  } else if (t === LOG_VERIFIED || t === LOG_RESULT || t === LOG_PRINTED) {
    if (n !== 5) return null;
    e.seq = get32(b, 1);
  } else if (t === LOG_CLOSE) {
    if (n !== 13) return null;
    e.timeMs = getTime(b, 1);
    e.seq = get32(b, 9);
  } else return null;
  return e;
}

/** What judging a ballot's marks gives: the choices, or why the marks are not acceptable. */
export interface Judgement {
  choices: number[] | null;
  error: string | null;
}

/**
 * Applies the rules to one ballot's marks. `contests[i]` is a contest index of the definition and
 * `masks[i]` its marked options (bit j of byte k = option 8k + j); contests not listed are
 * unmarked. Returns the BallotEffect.choices (layout in election.ts), or an error for marks that
 * do not fit the definition (unknown contest, contest listed twice, mark on no option).
 */
export function judgeBallot(e: Election, contests: number[], masks: Uint8Array[]): Judgement {
  const choices: number[] = [];
  for (let i = 0; i < e.slots; i++) choices.push(CHOICE_BLANK);
  if (contests.length !== masks.length) return { choices: null, error: "marks do not match contests" };
  if (contests.length > e.contests.length) return { choices: null, error: "too many contests: " + contests.length };
  const seen: boolean[] = [];
  for (let i = 0; i < contests.length; i++) {
    const ci = contests[i];
    if (typeof ci !== "number" || ci < 0 || ci >= e.contests.length || Math.floor(ci) !== ci) {
      return { choices: null, error: "unknown contest index " + ci };
    }
    if (seen[ci] === true) return { choices: null, error: "contest index " + ci + " listed twice" };
    seen[ci] = true;
    const c = e.contests[ci];
    const m = masks[i];
    const marked: number[] = [];
    for (let k = 0; k < m.length; k++) {
      const byte = m[k];
      if (byte === 0) continue;
      for (let j = 0; j < 8; j++) {
        if ((byte & (1 << j)) === 0) continue;
        const opt = k * 8 + j;
        if (opt >= c.options.length) return { choices: null, error: "contest " + c.id + ": mark on option " + opt + " of " + c.options.length };
        marked.push(opt);
      }
    }
    if (marked.length === 0) continue; // blank: the slots stay CHOICE_BLANK
    if (marked.length > c.maxMarks) {
      for (let s = 0; s < c.slots; s++) choices[c.slot + s] = CHOICE_INVALID;
      continue;
    }
    for (let s = 0; s < marked.length; s++) choices[c.slot + s] = marked[s];
  }
  return { choices: choices, error: null };
}

/** True when `choices` is a well-formed ballot effect for this election (log replay check). */
export function choicesFit(e: Election, choices: number[]): boolean {
  if (choices.length !== e.slots) return false;
  for (let i = 0; i < e.contests.length; i++) {
    const c = e.contests[i];
    const first = choices[c.slot];
    if (first === CHOICE_INVALID) {
      for (let s = 1; s < c.slots; s++) if (choices[c.slot + s] !== CHOICE_INVALID) return false;
      continue;
    }
    let prev = -1;
    let ended = false;
    for (let s = 0; s < c.slots; s++) {
      const v = choices[c.slot + s];
      if (v === CHOICE_BLANK) {
        ended = true;
        continue;
      }
      if (ended || v < 0 || v >= c.options.length || v <= prev) return false;
      prev = v;
    }
  }
  return true;
}

/** The running tally of one election: per contest, votes per option then blank then invalid. */
export class Tally {
  counts: Uint32Array[];
  counted: number;
  rejected: number;

  constructor(e: Election) {
    this.counts = [];
    for (let i = 0; i < e.contests.length; i++) this.counts.push(new Uint32Array(e.contests[i].options.length + 2));
    this.counted = 0;
    this.rejected = 0;
  }

  /** Adds one ballot's effect (choices already checked with choicesFit or made by judgeBallot). */
  apply(e: Election, choices: number[]): void {
    for (let i = 0; i < e.contests.length; i++) {
      const c = e.contests[i];
      const row = this.counts[i];
      const n = c.options.length;
      const first = choices[c.slot];
      if (first === CHOICE_INVALID) row[n + 1]++;
      else if (first === CHOICE_BLANK) row[n]++;
      else {
        for (let s = 0; s < c.slots; s++) {
          const v = choices[c.slot + s];
          if (v >= 0) row[v]++;
        }
      }
    }
    this.counted++;
  }

  contestResults(e: Election): ContestResult[] {
    const out: ContestResult[] = [];
    for (let i = 0; i < e.contests.length; i++) {
      const row = this.counts[i];
      const n = e.contests[i].options.length;
      const votes: number[] = [];
      for (let k = 0; k < n; k++) votes.push(row[k]);
      out.push({ contestId: e.contests[i].id, votes: votes, blank: row[n], invalid: row[n + 1] });
    }
    return out;
  }
}

/** The inputs of a station result besides the tally. */
export interface ResultFacts {
  electionSha256: Uint8Array;
  openedMs: number;
  closedMs: number;
  verifiedVoters: number;
  verifiedVotersKnown: boolean;
}

/**
 * The station result (canonical: the codec writes fields in number order and leaves defaults
 * out, so the same tally and facts always encode to the same bytes).
 */
export function buildResult(e: Election, t: Tally, f: ResultFacts): StationResult {
  return {
    electionId: e.id,
    stationId: e.stationId,
    electionSha256: f.electionSha256,
    openedMs: f.openedMs,
    closedMs: f.closedMs,
    ballotsCounted: t.counted,
    ballotsRejected: t.rejected,
    contests: t.contestResults(e),
    verifiedVoters: f.verifiedVotersKnown ? f.verifiedVoters : 0,
    verifiedVotersKnown: f.verifiedVotersKnown,
  };
}

/** 32-bit hash of a serial (CRC-32 of its ASCII bytes): the key of the serial set. */
export function serialHash(serial: string): number {
  const b = new Uint8Array(serial.length);
  putAscii(b, 0, serial);
  return crc32(b, 0, b.length);
}

/**
 * The serials already counted, in bounded memory: a sorted array of 32-bit serial hashes with, for
 * each, the ballot-log seq of the entry holding the full serial. A hash match is confirmed by
 * reading that entry, so a hash collision never rejects a genuine ballot. 8 bytes per ballot.
 */
export class SerialSet {
  _h: Uint32Array;
  _s: Uint32Array;
  _n: number;
  _max: number;

  constructor(maxEntries: number) {
    this._max = maxEntries;
    const first = maxEntries < 64 ? maxEntries : 64;
    this._h = new Uint32Array(first);
    this._s = new Uint32Array(first);
    this._n = 0;
  }

  size(): number {
    return this._n;
  }

  full(): boolean {
    return this._n >= this._max;
  }

  clear(): void {
    this._n = 0;
  }

  /** First index whose hash is >= h. */
  _lower(h: number): number {
    let lo = 0;
    let hi = this._n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this._h[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Calls `same(logSeq)` for each entry with hash h until one returns true; true if one did. */
  find(h: number, same: (logSeq: number) => boolean): boolean {
    for (let i = this._lower(h); i < this._n && this._h[i] === h; i++) {
      if (same(this._s[i])) return true;
    }
    return false;
  }

  /** Adds (h, logSeq); false when the set is full. */
  add(h: number, logSeq: number): boolean {
    if (this._n >= this._max) return false;
    if (this._n === this._h.length) {
      let cap = this._h.length * 2;
      if (cap > this._max) cap = this._max;
      if (cap < 1) cap = 1;
      const nh = new Uint32Array(cap);
      const ns = new Uint32Array(cap);
      nh.set(this._h);
      ns.set(this._s);
      this._h = nh;
      this._s = ns;
    }
    let i = this._lower(h);
    while (i < this._n && this._h[i] === h) i++;
    for (let k = this._n; k > i; k--) {
      this._h[k] = this._h[k - 1];
      this._s[k] = this._s[k - 1];
    }
    this._h[i] = h >>> 0;
    this._s[i] = logSeq;
    this._n++;
    return true;
  }
}
