// The station log: a power-safe Journal (never acknowledged, never compacted until the election is
// cleared) that holds what the verification device must remember across a power cut: polls
// opened, every voter marked as voted (by register index: no identity), every rejection by reason,
// the hourly turnout records done and the polls closed. The voted bitmap and every counter are
// rebuilt from it at boot. Engine subset.
//
// ENTRIES (the journal's payload). An "intent" is 8 bytes: u8 type, u24 argument, u32 seqHint
// (the firmware journal's next seq when the intent was written: its record gets that seq or a
// later one). COMMIT and ABORT are 1 byte and settle the one open intent before them.
//   'O' polls opened   argument = hour number when opened, u32 = the register image's tag
//                      (settles nothing, has no record of its own)
//   'V' voter verified argument = register index     record VOTER_VERIFIED
//   'E' voter exempted argument = register index     record VOTER_EXEMPTED
//   'R' rejection      argument = RejectReason       record VERIFICATION_REJECTED
//   'H' hourly turnout argument = hour number (wall ms / 3600000 at the period end)  TURNOUT_HOURLY
//   'C' polls closed   argument 0                     record TURNOUT_REPORT (final)
//   '+' commit, '-' abort
//
// THE PROTOCOL (one intent open at a time):
//   1. append the intent (durable);  2. journal the record (signed, async);
//   3. record landed: append COMMIT, then act on it (count, show the verdict);
//      record refused (journal full, signing failed): append ABORT.
// Only a committed intent counts. A power cut leaves at most the LAST intent open; at boot the
// service settles it by looking for its record in the firmware journal from seqHint on (found:
// COMMIT, else ABORT). That is exact because nothing can acknowledge and compact the record
// between its append and the COMMIT (both happen in the same synchronous callback), and the boot
// check runs before the link starts. A record never exists without its intent before it, so "a
// record without its mark" cannot arise; "a mark without its record" is the open intent, settled.

import type { Flash } from "../../platform/platform.ts";
import { Journal, JOURNAL_OK } from "../journal.ts";
import { RejectReason, type RejectionCount, type TurnoutCounts } from "../../../protocol/generated/device_codec.ts";

export const T_OPEN = 0x4f;
export const T_VERIFIED = 0x56;
export const T_EXEMPTED = 0x45;
export const T_REJECTED = 0x52;
export const T_HOUR = 0x48;
export const T_CLOSE = 0x43;
const T_COMMIT = 0x2b;
const T_ABORT = 0x2d;
/** RejectReason values counted (0 .. CANCELLED). */
export const REASONS = RejectReason.CANCELLED + 1;
/** Room kept free before an intent is written: the intent, its COMMIT, and slack for a page. */
const ROOM_NEEDED = 64;

/** The log's own errors (intent refused). */
export const LOG_FULL = -20;
export const LOG_BUSY = -21;
export const LOG_FAULT = -22;

export interface Intent {
  type: number;
  arg: number;
  seqHint: number;
}

export class StationLog {
  _f: Flash;
  _j: Journal;
  _size: number;
  /** Voted (verified or exempted) per register index. */
  _voted: Uint8Array;
  verified: number;
  exempted: number;
  /** Rejections per RejectReason value. */
  rejected: Uint32Array;
  opened: boolean;
  closed: boolean;
  /** The register tag the polls were opened with (0 when not opened). */
  openTag: number;
  /** Hour number of the last hourly record committed (0: none). */
  lastHour: number;
  /** Hour number (wall ms / 3600000) when the polls opened (0: clock unset or not opened). */
  openHour: number;
  /** The open intent, or null. */
  _pending: Intent | null;
  ok: boolean;

  constructor(options: { flash: Flash; crc32?: (bytes: Uint8Array) => number }) {
    this._f = options.flash;
    this._j = new Journal({ flash: options.flash, crc32: options.crc32 });
    this._size = 0;
    this._voted = new Uint8Array(0);
    this.verified = 0;
    this.exempted = 0;
    this.rejected = new Uint32Array(REASONS);
    this.opened = false;
    this.closed = false;
    this.openTag = 0;
    this.lastHour = 0;
    this.openHour = 0;
    this._pending = null;
    this.ok = false;
  }

  /** Rebuilds the bitmap and counters for a register of `size` voters. Writes nothing. */
  open(size: number): boolean {
    this._size = size;
    this._voted = new Uint8Array((size + 7) >> 3);
    this.verified = 0;
    this.exempted = 0;
    this.rejected = new Uint32Array(REASONS);
    this.opened = false;
    this.closed = false;
    this.openTag = 0;
    this.lastHour = 0;
    this.openHour = 0;
    this._pending = null;
    const st = this._j.open();
    this.ok = st.code === JOURNAL_OK;
    if (!this.ok) return false;
    const self = this;
    this._j.forEachUnacked(0, function (seq: number, d: Uint8Array) {
      self._apply(d);
    });
    return true;
  }

  _apply(d: Uint8Array): void {
    const t = d[0];
    if (t === T_COMMIT || t === T_ABORT) {
      const p = this._pending;
      this._pending = null;
      if (p !== null && t === T_COMMIT) this._effect(p);
      return;
    }
    if (d.length < 8) return;
    const arg = d[1] | (d[2] << 8) | (d[3] << 16);
    const v = (d[4] | (d[5] << 8) | (d[6] << 16) | (d[7] << 24)) >>> 0;
    if (t === T_OPEN) {
      this.opened = true;
      this.openTag = v;
      this.openHour = arg;
    } else this._pending = { type: t, arg: arg, seqHint: v };
  }

  _effect(p: Intent): void {
    const t = p.type;
    if (t === T_VERIFIED || t === T_EXEMPTED) {
      if (p.arg < this._size && !this.isVoted(p.arg)) {
        this._voted[p.arg >> 3] |= 1 << (p.arg & 7);
        this.verified++;
        if (t === T_EXEMPTED) this.exempted++;
      }
    } else if (t === T_REJECTED) {
      if (p.arg < REASONS) this.rejected[p.arg]++;
    } else if (t === T_HOUR) {
      if (p.arg > this.lastHour) this.lastHour = p.arg;
    } else if (t === T_CLOSE) this.closed = true;
  }

  isVoted(i: number): boolean {
    return i >= 0 && i < this._size && (this._voted[i >> 3] & (1 << (i & 7))) !== 0;
  }

  rejectedTotal(): number {
    let n = 0;
    for (let i = 0; i < REASONS; i++) n += this.rejected[i];
    return n;
  }

  pending(): Intent | null {
    return this._pending;
  }

  _write(d: Uint8Array): number {
    return this._j.append(function () {
      return d;
    });
  }

  /** Records that the polls opened (hour number `hour`) for the register with this tag. */
  markOpen(tag: number, hour: number): number {
    if (!this.ok) return LOG_FAULT;
    const d = new Uint8Array(8);
    d[0] = T_OPEN;
    d[1] = hour & 255;
    d[2] = (hour >>> 8) & 255;
    d[3] = (hour >>> 16) & 255;
    d[4] = tag & 255;
    d[5] = (tag >>> 8) & 255;
    d[6] = (tag >>> 16) & 255;
    d[7] = (tag >>> 24) & 255;
    const s = this._write(d);
    if (s > 0) {
      this.opened = true;
      this.openTag = tag >>> 0;
      this.openHour = hour;
    }
    return s;
  }

  /** Step 1 of the protocol. Returns the entry's seq (> 0) or LOG_FULL / LOG_BUSY / LOG_FAULT. */
  intent(type: number, arg: number, seqHint: number): number {
    if (!this.ok) return LOG_FAULT;
    if (this._pending !== null) return LOG_BUSY;
    if (this._j.freeBytes() < ROOM_NEEDED) return LOG_FULL;
    const d = new Uint8Array(8);
    d[0] = type;
    d[1] = arg & 255;
    d[2] = (arg >>> 8) & 255;
    d[3] = (arg >>> 16) & 255;
    d[4] = seqHint & 255;
    d[5] = (seqHint >>> 8) & 255;
    d[6] = (seqHint >>> 16) & 255;
    d[7] = (seqHint >>> 24) & 255;
    const s = this._write(d);
    if (s > 0) this._pending = { type: type, arg: arg, seqHint: seqHint >>> 0 };
    return s > 0 ? s : LOG_FULL;
  }

  /**
   * Settles the open intent: `commit` true counts it. The counters change even if the settling
   * entry cannot be written (a later boot settles it again from the firmware journal, the same way).
   */
  settle(commit: boolean): number {
    const p = this._pending;
    if (p === null) return LOG_BUSY;
    this._pending = null;
    if (commit) this._effect(p);
    const d = new Uint8Array(1);
    d[0] = commit ? T_COMMIT : T_ABORT;
    // Should this entry not reach flash, the next boot settles the intent again, the same way.
    return this._write(d);
  }

  /** Bytes left for entries. */
  freeBytes(): number {
    return this._j.freeBytes();
  }

  capacityBytes(): number {
    return this._j.capacityBytes();
  }

  /** Erases the whole log (election cleared or a new register loaded). */
  erase(): void {
    for (let p = 0; p < this._f.pageCount; p++) this._f.erase(p);
    this.open(this._size);
  }
}

/** The turnout counts message (counts only) for a record or for counts(). */
export function turnoutCounts(
  log: StationLog,
  stationId: string,
  electionId: string,
  registerSize: number,
  periodEndMs: number,
  final: boolean,
): TurnoutCounts {
  const by: RejectionCount[] = [];
  for (let r = 0; r < REASONS; r++) {
    if (log.rejected[r] > 0) by.push({ reason: r, count: log.rejected[r] });
  }
  return {
    stationId: stationId,
    electionId: electionId,
    registerSize: registerSize,
    verified: log.verified,
    exempted: log.exempted,
    rejected: log.rejectedTotal(),
    rejectedByReason: by,
    periodEndMs: periodEndMs,
    final: final,
  };
}
