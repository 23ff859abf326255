// The tally service of the result acceleration device (RAD): the election definition, the polls
// state machine, one ballot at a time from the scanner, the running tally, the signed station
// result at close and its paper voucher. Engine subset.
//
// DURABILITY. Two logs hold a ballot: this service's ballot log (a Journal over the role log,
// never compacted until clear()) and the firmware journal (a BALLOT record, sent to the host).
// The ballot log is the authority; a ballot goes through, each step durable before the next:
//   1. 'B' entry in the ballot log (serial, scanner SEQ, ordinal, choices, and the journal's
//      next seq before the BALLOT record), then the tally and the serial set in RAM;
//   2. the BALLOT record (BallotEffect) in the firmware journal, through `record`;
//   3. 'J' entry (ordinal, journal seq) in the ballot log; only then the scanner gets its ACK.
// A power cut before 1 completes loses the ballot: the scanner got no ACK and resends it, and it
// is counted then. A cut after 1 and before 3: at boot the log is replayed (the ballot counts),
// and the journal is searched from the noted seq for a BALLOT record with that ordinal and serial:
// if one is there a 'J' is written, otherwise the record is journalled again. The cut cannot fall
// after the record reached the host, since 3 is written synchronously in the record's callback,
// before the link sends anything. So every ballot of the log has exactly one BALLOT record. The
// scanner's resend carries the same SEQ and serial and is answered from the log (ACK again).
// Closing is the same: 'C' (close time, journal's next seq), the RESULT record, 'K' (its seq);
// at boot a 'C' without 'K' is finished from the log (the result encodes to the same bytes).
//
// MEMORY: the tally (one u32 per option, blank and invalid per contest), the serial set (8 bytes
// per counted ballot, at most maxBallots), the last answer given to the scanner.

import type { Flash, Platform } from "../../platform/platform.ts";
import { Journal, JOURNAL_OK } from "../journal.ts";
import {
  NAK_BUSY,
  NAK_DUPLICATE,
  NAK_FULL,
  NAK_MALFORMED,
  NAK_NOT_OPEN,
  type BallotScanner,
  type ScannedBallot,
} from "../../drivers/ballot_scanner.ts";
import type { EscPosPrinter, PrinterError } from "../../drivers/escpos_printer.ts";
import { tryDecode } from "../../../protocol/codec_runtime.ts";
import {
  PollsState,
  RecordKind,
  decodeBallotEffect,
  decodeRecord,
  encodeBallotEffect,
  encodeStationResult,
  type Record as JournalRecord,
  type SignedArtifact,
  type StationResult,
} from "../../../protocol/generated/device_codec.ts";
import { parseElection, type Election } from "./election.ts";
import {
  LOG_BALLOT,
  LOG_CLOSE,
  LOG_ELECTION,
  LOG_JOURNALLED,
  LOG_OPEN,
  LOG_PRINTED,
  LOG_REJECT,
  LOG_RESULT,
  LOG_VERIFIED,
  SerialSet,
  Tally,
  buildResult,
  choicesFit,
  decodeLogEntry,
  encodeLogEntry,
  judgeBallot,
  logEntry,
  serialHash,
  type LogEntry,
} from "./tally.ts";
import { buildVoucher, shortDigest } from "./voucher.ts";

/** What the service reads of the firmware journal (device/services/journal.ts Journal). */
export interface TallyJournalView {
  nextSeq(): number;
  forEachUnacked(fromSeq: number, cb: (seq: number, data: Uint8Array) => boolean | void): number;
}

/** SHA-256 with a callback (the secure element's sha256 has this shape). */
export type Sha256Fn = (data: Uint8Array, cb: (err: { code: number; message: string } | null, digest?: Uint8Array) => void) => void;

export const PRINTER_ERR_NOT_FITTED = 100;
export const PRINTER_ERR_NO_RESULT = 101;

export interface TallyServiceOptions {
  /** Timers, wall clock, identity (device serial on the voucher) and log. */
  platform: Platform;
  /** Journals a record (the firmware signs RESULT); cb(seq > 0) once it is durable, else a code. */
  record: (kind: number, payload: Uint8Array, cb: (seq: number) => void) => void;
  /** The firmware journal, read at boot to finish a ballot or result cut by power loss. */
  journal: TallyJournalView;
  /** SHA-256 (of the election body; of the result, for the voucher digest). */
  sha256: Sha256Fn;
  scanner: BallotScanner;
  /** Null when no printer is fitted. */
  printer: EscPosPrinter | null;
  /** The role log region of the data flash (dataRegions(...).roleLog). */
  roleLog: Flash;
  /** This device's station (an election definition for another station is refused). */
  stationId: () => string;
  /** Ballots one election may count (bounds the serial set: 8 bytes each). Default 3000. */
  maxBallots?: number;
  /** Retry of a journal write that failed (journal full), ms. Default 2000. */
  retryMs?: number;
  /** Automatic retry of a voucher that failed to print, ms (0: only on request). Default 30000. */
  printRetryMs?: number;
  /** A faster CRC-32 for the ballot log (E.CRC32), as in JournalOptions. */
  crc32?: (bytes: Uint8Array) => number;
  /** Polls state or counts changed (display, telemetry). */
  onChange?: () => void;
  /** A voucher print finished (null) or failed. */
  onVoucher?: (err: PrinterError | null) => void;
}

/** The answer last given for a logged ballot (reason 0: ACK with ordinal). */
interface LastAnswer {
  seq: number;
  serial: string;
  ordinal: number;
  reason: number;
}

/** A ballot in the ballot log whose BALLOT record is not (known to be) in the journal. */
interface PendingBallot {
  scanSeq: number;
  ordinal: number;
  serial: string;
  choices: number[];
  jnext: number;
}

export interface VoucherStatus {
  /** Copies printed (0: not yet). */
  printed: number;
  printing: boolean;
  /** The last print error, null after a success. */
  error: PrinterError | null;
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class TallyService {
  /** Ballot-log entries that did not replay (damaged or inconsistent); expected 0. */
  logErrors: number;
  _o: TallyServiceOptions;
  _p: Platform;
  _log: Journal;
  _logOk: boolean;
  _maxBallots: number;
  // What the ballot log holds (read at construction).
  _logSha: Uint8Array | null;
  _logId: string;
  _logActive: boolean;
  // The loaded election.
  _e: Election | null;
  _sha: Uint8Array | null;
  _state: number;
  _tally: Tally | null;
  _serials: SerialSet;
  _opened: number;
  _closed: number;
  _closeJnext: number;
  _verified: number;
  _verifiedKnown: boolean;
  _last: LastAnswer | null;
  _pending: PendingBallot | null;
  _journalling: boolean;
  _loading: boolean;
  // The result.
  _result: StationResult | null;
  _payload: Uint8Array | null;
  _resultSeq: number;
  _digest: Uint8Array | null;
  _finishing: boolean;
  _closeCbs: ((result: StationResult | null, err: string | null) => void)[];
  _closeWaits: number;
  // The voucher.
  _printed: number;
  _printing: boolean;
  _printErr: PrinterError | null;
  _retryTimer: number;
  _printTimer: number;

  constructor(options: TallyServiceOptions) {
    const self = this;
    this._o = options;
    this._p = options.platform;
    this.logErrors = 0;
    this._maxBallots = options.maxBallots ?? 3000;
    this._log = new Journal({ flash: options.roleLog, crc32: options.crc32 });
    this._logOk = this._log.open().code === JOURNAL_OK;
    this._logSha = null;
    this._logId = "";
    this._logActive = false;
    this._e = null;
    this._sha = null;
    this._state = PollsState.NOT_LOADED;
    this._tally = null;
    this._serials = new SerialSet(this._maxBallots);
    this._opened = 0;
    this._closed = 0;
    this._closeJnext = 0;
    this._verified = 0;
    this._verifiedKnown = false;
    this._last = null;
    this._pending = null;
    this._journalling = false;
    this._loading = false;
    this._result = null;
    this._payload = null;
    this._resultSeq = 0;
    this._digest = null;
    this._finishing = false;
    this._closeCbs = [];
    this._closeWaits = 0;
    this._printed = 0;
    this._printing = false;
    this._printErr = null;
    this._retryTimer = -1;
    this._printTimer = -1;
    if (this._logOk) this._scanLog();
    else this._p.log("tally: ballot log could not open");
    options.scanner.onBallot(function (b: ScannedBallot) {
      self._onBallot(b);
    });
    options.scanner.onPing(function (seq: number) {
      self._o.scanner.status(seq, self._state, self._tally === null ? 0 : self._tally.counted);
    });
  }

  // ---- public API ----

  /**
   * Takes the election definition from a SignedArtifact whose signature was already verified.
   * Returns an error at once for a definition that is malformed or for another station; else
   * null, and the definition is adopted once its SHA-256 is computed: cb(null), or cb(error) when
   * the ballot log holds another election (clear it first). At boot, loading the same definition
   * again rebuilds the tally, the serial set and the polls state from the ballot log.
   */
  loadElection(artifact: SignedArtifact, cb?: (err: string | null) => void): string | null {
    const self = this;
    if (!this._logOk) return "the ballot log could not be opened";
    if (this._loading) return "an election definition is already being loaded";
    // A fresh device learns its station from the definition itself (the authority has already
    // refused one for another station); a device bound to a station checks it.
    const mine = this._o.stationId();
    const parsed = parseElection(artifact, mine !== "" ? mine : (artifact.stationId ?? ""));
    const e = parsed.election;
    if (e === null) return parsed.error ?? "bad definition";
    this._loading = true;
    this._o.sha256(e.body, function (err, digest) {
      self._loading = false;
      let result: string | null;
      if (err !== null || digest === undefined || digest.length !== 32) result = "SHA-256 of the definition failed" + (err !== null ? ": " + err.message : "");
      else result = self._adopt(e, digest);
      if (result !== null) self._p.log("tally: election " + e.id + " refused: " + result);
      self._changed();
      if (cb) cb(result);
    });
    return null;
  }

  /** Opens the polls (from READY). Needs the wall clock set. Returns an error or null. */
  openPolls(): string | null {
    if (this._loading) return "an election definition is being loaded";
    if (this._state === PollsState.NOT_LOADED) return "no election loaded";
    if (this._state === PollsState.OPEN) return "the polls are already open";
    if (this._state === PollsState.CLOSED) return "the polls are closed";
    const now = this._p.clock.wallMs();
    if (!(now > 0)) return "the clock is not set";
    const en = logEntry(LOG_OPEN);
    en.timeMs = now;
    const s = this._append(en);
    if (s < 0) return "the ballot log is full (" + s + ")";
    this._opened = now;
    this._state = PollsState.OPEN;
    this._p.log("tally: polls open");
    this._changed();
    return null;
  }

  /**
   * Closes the polls: the station result is built, journalled as a signed RESULT record, then its
   * voucher printed (a printer fault does not hold the result back). cb(result, null) once the
   * result is journalled; cb(result, error) if it could not be (retried); cb(null, error) when the
   * polls are not open. Called again once closed, it answers with the same result.
   */
  closePolls(cb: (result: StationResult | null, err: string | null) => void): void {
    const self = this;
    if (this._state === PollsState.CLOSED) {
      this._closeCbs.push(cb);
      this._finishClose();
      return;
    }
    if (this._state !== PollsState.OPEN) {
      cb(null, "the polls are not open");
      return;
    }
    if (this._pending !== null || this._journalling) {
      // A ballot is between its log entry and its journal record: let it finish first.
      if (this._closeWaits++ < 100) {
        this._p.timers.setTimeout(function () {
          self.closePolls(cb);
        }, 50);
      } else {
        this._closeWaits = 0;
        cb(null, "a ballot is still waiting for the journal");
      }
      return;
    }
    this._closeWaits = 0;
    const now = this._p.clock.wallMs();
    const en = logEntry(LOG_CLOSE);
    en.timeMs = now;
    en.seq = this._o.journal.nextSeq();
    const s = this._append(en);
    if (s < 0) {
      cb(null, "the ballot log is full (" + s + ")");
      return;
    }
    this._closed = now;
    this._closeJnext = en.seq;
    this._state = PollsState.CLOSED;
    this._p.log("tally: polls closed");
    this._changed();
    this._closeCbs.push(cb);
    this._finishClose();
  }

  /** PollsState value. */
  state(): number {
    return this._state;
  }

  /** The verification device's count of verified voters (paired stations), for the result. */
  setVerifiedVoters(n: number): string | null {
    if (typeof n !== "number" || !(n >= 0) || n > 100000000 || Math.floor(n) !== n) return "bad voter count";
    if (this._state === PollsState.NOT_LOADED) return "no election loaded";
    if (this._state === PollsState.CLOSED) return "the polls are closed: the result is signed";
    if (this._verifiedKnown && this._verified === n) return null;
    const en = logEntry(LOG_VERIFIED);
    en.seq = n;
    const s = this._append(en);
    if (s < 0) return "the ballot log is full (" + s + ")";
    this._verified = n;
    this._verifiedKnown = true;
    return null;
  }

  /**
   * Forgets the election: the ballot log is acknowledged and compacted (power-safe: one ack entry
   * makes it empty). Refused while the polls are open or the result is not journalled. The caller
   * checks authority and that the host has acknowledged every record.
   */
  clear(): string | null {
    if (!this._logOk) return "the ballot log could not be opened";
    if (this._state === PollsState.OPEN) return "close the polls first";
    if (this._state === PollsState.CLOSED && this._resultSeq === 0) return "the result is not journalled yet";
    if (this._loading || this._journalling || this._finishing || this._printing) return "busy";
    const last = this._log.nextSeq() - 1;
    if (last > this._log.durableAckSeq()) {
      const r = this._log.ack(last);
      if (r < 0) return "ballot log: ack failed (" + r + ")";
      this._log.compact();
      if (this._log.durableAckSeq() < last) return "ballot log: the clear could not be written";
    }
    this._log.compact();
    this._reset();
    this._p.log("tally: election cleared");
    this._changed();
    return null;
  }

  /** Prints the voucher again (on request, e.g. after paper was loaded). */
  printVoucher(cb?: (err: PrinterError | null) => void): void {
    const self = this;
    const done = cb ?? function () {};
    if (this._state !== PollsState.CLOSED || this._resultSeq === 0 || this._payload === null) {
      done({ code: PRINTER_ERR_NO_RESULT, message: "no journalled result to print" });
      return;
    }
    if (this._digest === null) {
      const payload = this._payload;
      this._o.sha256(payload, function (err, d) {
        if (err !== null || d === undefined) done({ code: PRINTER_ERR_NO_RESULT, message: "digest of the result failed" });
        else {
          self._digest = d;
          self._print(self._printed, done);
        }
      });
      return;
    }
    this._print(this._printed, done);
  }

  /** The loaded election, or null. */
  election(): Election | null {
    return this._e;
  }

  /** Ballots counted and rejected so far. */
  counts(): { counted: number; rejected: number } {
    const t = this._tally;
    return { counted: t === null ? 0 : t.counted, rejected: t === null ? 0 : t.rejected };
  }

  /** The running tally as a StationResult (closedMs 0 while open), or null with no election. */
  snapshot(): StationResult | null {
    if (this._e === null || this._tally === null || this._sha === null) return null;
    return buildResult(this._e, this._tally, {
      electionSha256: this._sha,
      openedMs: this._opened,
      closedMs: this._closed,
      verifiedVoters: this._verified,
      verifiedVotersKnown: this._verifiedKnown,
    });
  }

  /** The final result once the polls are closed, else null. */
  result(): StationResult | null {
    return this._result;
  }

  /** The encoded result (the RESULT record's payload), or null. */
  resultPayload(): Uint8Array | null {
    return this._payload;
  }

  /** Journal seq of the RESULT record (0: not journalled yet). */
  resultSeq(): number {
    return this._resultSeq;
  }

  /** The voucher's short digest (8 hex digits of SHA-256 of the result payload), "" until known. */
  resultDigest(): string {
    return this._digest === null ? "" : shortDigest(this._digest);
  }

  voucherStatus(): VoucherStatus {
    return { printed: this._printed, printing: this._printing, error: this._printErr };
  }

  /** Stops the service's timers (the drivers belong to the caller). */
  close(): void {
    this._stopTimers();
  }

  // ---- election ----

  _scanLog(): void {
    const self = this;
    this._log.forEachUnacked(0, function (seq: number, data: Uint8Array) {
      const en = decodeLogEntry(data);
      if (en === null) return;
      if (en.type === LOG_ELECTION) {
        self._logSha = en.sha;
        self._logId = en.text;
      } else if (en.type === LOG_BALLOT || en.type === LOG_REJECT || en.type === LOG_OPEN) self._logActive = true;
    });
  }

  _adopt(e: Election, sha: Uint8Array): string | null {
    if (this._e !== null) {
      if (sameBytes(sha, this._sha)) return null;
      const t = this._tally;
      if (this._state !== PollsState.READY || (t !== null && (t.counted > 0 || t.rejected > 0))) {
        return "election " + this._e.id + " is in progress on this device: clear it first";
      }
      return this._adoptNew(e, sha);
    }
    if (this._logSha === null || !this._logActive) {
      if (this._logSha !== null && sameBytes(this._logSha, sha)) {
        this._setElection(e, sha);
        this._replay();
        return null;
      }
      return this._adoptNew(e, sha);
    }
    if (!sameBytes(this._logSha, sha)) return "this device holds ballots of election " + this._logId + ": clear it first";
    this._setElection(e, sha);
    this._replay();
    this._reconcile();
    return null;
  }

  /** Writes the 'E' entry of a definition and starts from READY. */
  _adoptNew(e: Election, sha: Uint8Array): string | null {
    const en = logEntry(LOG_ELECTION);
    en.sha = sha;
    en.text = e.id;
    const s = this._append(en);
    if (s < 0) return "the ballot log is full (" + s + ")";
    this._logSha = sha;
    this._logId = e.id;
    this._setElection(e, sha);
    this._state = PollsState.READY;
    this._p.log("tally: election " + e.id + " loaded");
    return null;
  }

  _setElection(e: Election, sha: Uint8Array): void {
    this._e = e;
    this._sha = sha;
    this._tally = new Tally(e);
    this._serials.clear();
    this._last = null;
    this._pending = null;
    this._state = PollsState.READY;
  }

  /** Rebuilds the state from the ballot log (the election's definition is set). */
  _replay(): void {
    const self = this;
    const e = this._e;
    const t = this._tally;
    if (e === null || t === null) return;
    this._log.forEachUnacked(0, function (seq: number, data: Uint8Array) {
      const en = decodeLogEntry(data);
      if (en === null) {
        self.logErrors++;
        return;
      }
      const type = en.type;
      if (type === LOG_OPEN) {
        self._opened = en.timeMs;
        if (self._state === PollsState.READY) self._state = PollsState.OPEN;
      } else if (type === LOG_BALLOT) {
        if (en.ordinal !== t.counted + 1 || !choicesFit(e, en.choices)) {
          self.logErrors++;
          return;
        }
        t.apply(e, en.choices);
        self._serials.add(serialHash(en.text), seq);
        self._last = { seq: en.scanSeq, serial: en.text, ordinal: en.ordinal, reason: 0 };
        self._pending = { scanSeq: en.scanSeq, ordinal: en.ordinal, serial: en.text, choices: en.choices, jnext: en.seq };
      } else if (type === LOG_JOURNALLED) {
        const p = self._pending;
        if (p !== null && p.ordinal === en.ordinal) self._pending = null;
      } else if (type === LOG_REJECT) {
        t.rejected++;
        self._last = { seq: en.scanSeq, serial: en.text, ordinal: 0, reason: en.reason };
      } else if (type === LOG_VERIFIED) {
        self._verified = en.seq;
        self._verifiedKnown = true;
      } else if (type === LOG_CLOSE) {
        self._closed = en.timeMs;
        self._closeJnext = en.seq;
        self._state = PollsState.CLOSED;
      } else if (type === LOG_RESULT) {
        self._resultSeq = en.seq;
      } else if (type === LOG_PRINTED) {
        self._printed = en.seq;
      }
    });
    this._p.log("tally: ballot log replayed: " + t.counted + " counted, " + t.rejected + " rejected, state " + this._state);
  }

  /** After a replay: finishes what a power cut interrupted (a ballot's journal record, the result). */
  _reconcile(): void {
    const p = this._pending;
    if (p !== null) {
      const found = this._findRecord(p.jnext, function (r: JournalRecord) {
        if (r.kind !== RecordKind.BALLOT) return false;
        const b = tryDecode(decodeBallotEffect, r.payload ?? new Uint8Array(0));
        return b.value !== null && b.value.ordinal === p.ordinal && b.value.serial === p.serial;
      });
      if (found > 0) this._noteJournalled(p, found, false);
      else this._journalPending(false);
    }
    if (this._state === PollsState.CLOSED) this._finishClose();
  }

  /** The seq of the first unacknowledged journal record from `from` that `match` accepts, or 0. */
  _findRecord(from: number, match: (r: JournalRecord) => boolean): number {
    let found = 0;
    this._o.journal.forEachUnacked(from, function (seq: number, data: Uint8Array) {
      const r = tryDecode(decodeRecord, data);
      if (r.value !== null && match(r.value)) {
        found = seq;
        return false;
      }
      return true;
    });
    return found;
  }

  // ---- ballots ----

  _onBallot(b: ScannedBallot): void {
    const sc = this._o.scanner;
    if (this._pending !== null && !this._journalling) this._journalPending(false);
    if (this._pending !== null || this._journalling || this._loading) {
      sc.nak(b.seq, NAK_BUSY);
      return;
    }
    const last = this._last;
    if (last !== null && last.seq === b.seq && last.serial === b.serial) {
      // A resend: the scanner lost our answer.
      if (last.reason === 0) sc.ack(b.seq, last.ordinal);
      else sc.nak(b.seq, last.reason);
      return;
    }
    const st = this._state;
    if (st === PollsState.NOT_LOADED) {
      // An election in the ballot log that is not loaded yet (boot): the scanner waits.
      sc.nak(b.seq, this._logSha !== null && this._logActive ? NAK_BUSY : NAK_NOT_OPEN);
      return;
    }
    if (st === PollsState.CLOSED) {
      sc.nak(b.seq, NAK_NOT_OPEN);
      return;
    }
    if (st === PollsState.READY) {
      this._reject(b, NAK_NOT_OPEN);
      return;
    }
    const e = this._e;
    const t = this._tally;
    if (e === null || t === null) {
      sc.nak(b.seq, NAK_BUSY);
      return;
    }
    const j = judgeBallot(e, b.contests, b.masks);
    if (j.choices === null) {
      this._p.log("tally: ballot " + b.serial + " refused: " + j.error);
      sc.nak(b.seq, NAK_MALFORMED);
      return;
    }
    if (this._isCounted(b.serial)) {
      this._reject(b, NAK_DUPLICATE);
      return;
    }
    if (t.counted >= this._maxBallots || this._serials.full()) {
      sc.nak(b.seq, NAK_FULL);
      return;
    }
    const en = logEntry(LOG_BALLOT);
    en.scanSeq = b.seq;
    en.ordinal = t.counted + 1;
    en.seq = this._o.journal.nextSeq();
    en.text = b.serial;
    en.choices = j.choices;
    const ls = this._append(en);
    if (ls < 0) {
      this._p.log("tally: ballot log full (" + ls + "): ballot " + b.serial + " not counted");
      sc.nak(b.seq, NAK_FULL);
      return;
    }
    t.apply(e, j.choices);
    this._serials.add(serialHash(b.serial), ls);
    this._last = { seq: b.seq, serial: b.serial, ordinal: en.ordinal, reason: 0 };
    this._pending = { scanSeq: b.seq, ordinal: en.ordinal, serial: b.serial, choices: j.choices, jnext: en.seq };
    this._journalPending(true);
  }

  /** True when `serial` is among the counted ballots (hash match confirmed from the log). */
  _isCounted(serial: string): boolean {
    const log = this._log;
    return this._serials.find(serialHash(serial), function (logSeq: number) {
      const d = log.read(logSeq);
      if (d === null) return false;
      const en = decodeLogEntry(d);
      return en !== null && en.type === LOG_BALLOT && en.text === serial;
    });
  }

  _reject(b: ScannedBallot, reason: number): void {
    const en = logEntry(LOG_REJECT);
    en.scanSeq = b.seq;
    en.reason = reason;
    en.text = b.serial;
    if (this._append(en) > 0 && this._tally !== null) {
      this._tally.rejected++;
      this._last = { seq: b.seq, serial: b.serial, ordinal: 0, reason: reason };
      this._changed();
    } else this._p.log("tally: ballot log full: rejection of " + b.serial + " not counted");
    this._o.scanner.nak(b.seq, reason);
  }

  /** Journals the pending ballot's BALLOT record; `answer`: ACK the scanner once it is durable. */
  _journalPending(answer: boolean): void {
    const self = this;
    const p = this._pending;
    if (p === null || this._journalling) return;
    this._journalling = true;
    const payload = encodeBallotEffect({ serial: p.serial, ordinal: p.ordinal, choices: p.choices });
    this._o.record(RecordKind.BALLOT, payload, function (seq: number) {
      self._journalling = false;
      if (self._pending !== p) return;
      if (seq > 0) self._noteJournalled(p, seq, answer);
      else {
        self._p.log("tally: ballot " + p.ordinal + " not journalled (" + seq + "), will retry");
        self._scheduleRetry();
      }
    });
  }

  _noteJournalled(p: PendingBallot, seq: number, answer: boolean): void {
    const en = logEntry(LOG_JOURNALLED);
    en.ordinal = p.ordinal;
    en.seq = seq;
    if (this._append(en) < 0) this._p.log("tally: ballot log full: journal seq of ballot " + p.ordinal + " not noted");
    this._pending = null;
    if (answer) this._o.scanner.ack(p.scanSeq, p.ordinal);
    this._changed();
  }

  // ---- close and result ----

  _finishClose(): void {
    const self = this;
    const e = this._e;
    const t = this._tally;
    const sha = this._sha;
    if (this._finishing || e === null || t === null || sha === null) return;
    if (this._result === null || this._payload === null) {
      this._result = buildResult(e, t, {
        electionSha256: sha,
        openedMs: this._opened,
        closedMs: this._closed,
        verifiedVoters: this._verified,
        verifiedVotersKnown: this._verifiedKnown,
      });
      this._payload = encodeStationResult(this._result);
    }
    const payload = this._payload;
    if (this._resultSeq === 0) {
      const found = this._findRecord(this._closeJnext, function (r: JournalRecord) {
        return r.kind === RecordKind.RESULT && sameBytes(r.payload ?? null, payload);
      });
      if (found > 0) this._noteResult(found);
    }
    if (this._resultSeq === 0) {
      this._finishing = true;
      this._o.record(RecordKind.RESULT, payload, function (seq: number) {
        self._finishing = false;
        if (seq > 0) {
          self._noteResult(seq);
          self._finishClose();
        } else {
          self._p.log("tally: result not journalled (" + seq + "), will retry");
          self._flushClose("the result could not be journalled (" + seq + ")");
          self._scheduleRetry();
        }
      });
      return;
    }
    if (this._digest === null) {
      this._finishing = true;
      this._o.sha256(payload, function (err, d) {
        self._finishing = false;
        if (err === null && d !== undefined) self._digest = d;
        else self._p.log("tally: digest of the result failed: the voucher waits");
        self._flushClose(null);
        if (self._digest !== null && self._printed === 0) self._print(0, null);
      });
      return;
    }
    this._flushClose(null);
  }

  _noteResult(seq: number): void {
    const en = logEntry(LOG_RESULT);
    en.seq = seq;
    if (this._append(en) < 0) this._p.log("tally: ballot log full: result seq not noted");
    this._resultSeq = seq;
    this._p.log("tally: result journalled as record " + seq);
  }

  _flushClose(err: string | null): void {
    const cbs = this._closeCbs;
    this._closeCbs = [];
    for (let i = 0; i < cbs.length; i++) cbs[i](this._result, err);
  }

  // ---- voucher ----

  _print(copy: number, cb: ((err: PrinterError | null) => void) | null): void {
    const self = this;
    const pr = this._o.printer;
    const e = this._e;
    const r = this._result;
    const d = this._digest;
    if (pr === null || e === null || r === null || d === null) {
      const err = { code: pr === null ? PRINTER_ERR_NOT_FITTED : PRINTER_ERR_NO_RESULT, message: pr === null ? "no printer fitted" : "no result" };
      if (cb !== null) cb(err);
      return;
    }
    if (this._printing) {
      if (cb !== null) cb({ code: 5, message: "the voucher is being printed" });
      return;
    }
    this._printing = true;
    const lines = buildVoucher({
      election: e,
      result: r,
      seq: this._resultSeq,
      digest: d,
      deviceId: this._p.identity.serial,
      copy: copy,
      columns: pr.columns,
    });
    pr.print(lines, function (err: PrinterError | null) {
      self._printing = false;
      self._printErr = err;
      if (err === null) {
        self._printed++;
        const en = logEntry(LOG_PRINTED);
        en.seq = self._printed;
        self._append(en);
        self._p.log("tally: voucher printed");
      } else {
        self._p.log("tally: voucher not printed: " + err.message);
        if (self._printed === 0) self._schedulePrint();
      }
      if (self._o.onVoucher) self._o.onVoucher(err);
      if (cb !== null) cb(err);
    });
  }

  _schedulePrint(): void {
    const self = this;
    const ms = this._o.printRetryMs ?? 30000;
    if (ms <= 0 || this._printTimer >= 0) return;
    this._printTimer = this._p.timers.setTimeout(function () {
      self._printTimer = -1;
      if (self._printed === 0 && !self._printing) self._print(0, null);
    }, ms);
  }

  // ---- helpers ----

  _scheduleRetry(): void {
    const self = this;
    if (this._retryTimer >= 0) return;
    this._retryTimer = this._p.timers.setTimeout(function () {
      self._retryTimer = -1;
      if (self._pending !== null) self._journalPending(true);
      if (self._state === PollsState.CLOSED && self._resultSeq === 0) self._finishClose();
    }, this._o.retryMs ?? 2000);
  }

  _stopTimers(): void {
    if (this._retryTimer >= 0) this._p.timers.clearTimeout(this._retryTimer);
    if (this._printTimer >= 0) this._p.timers.clearTimeout(this._printTimer);
    this._retryTimer = -1;
    this._printTimer = -1;
  }

  _append(en: LogEntry): number {
    const bytes = encodeLogEntry(en);
    return this._log.append(function () {
      return bytes;
    });
  }

  _reset(): void {
    this._stopTimers();
    this._logSha = null;
    this._logId = "";
    this._logActive = false;
    this._e = null;
    this._sha = null;
    this._state = PollsState.NOT_LOADED;
    this._tally = null;
    this._serials.clear();
    this._opened = 0;
    this._closed = 0;
    this._closeJnext = 0;
    this._verified = 0;
    this._verifiedKnown = false;
    this._last = null;
    this._pending = null;
    this._result = null;
    this._payload = null;
    this._resultSeq = 0;
    this._digest = null;
    this._closeCbs = [];
    this._printed = 0;
    this._printErr = null;
  }

  _changed(): void {
    if (this._o.onChange) this._o.onChange();
  }
}
