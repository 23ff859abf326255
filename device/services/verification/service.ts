// The verification service of the verification device (VVD role): the station register in flash,
// the station log (voted marks and counters, power-safe), the polls, the hourly turnout records,
// the signed turnout report at close, and the flow at the table (flow.ts). Engine subset.
//
// What survives a power cut or reboot (all from the station log, see turnout.ts): the register,
// the polls state, every voter marked as voted (verified or exempted) and every rejection by
// reason (so every count), and the last hourly record done. What does not: a voter in hand (card
// read, captures under way: the voter presents the card again) and the attempt count. A record
// interrupted between its station-log intent and the firmware journal is settled at boot by
// looking for it in the firmware journal: the counts then match the records exactly.
//
// The card reader and the fingerprint module are watched (part_watch.ts): probed at boot, judged
// by every command while in use, probed on a schedule while not; one that stops answering sets its
// bit in Health.peripheral_faults until it answers again. While the fingerprint module does not
// answer, a voter is told at once instead of waiting out three captures (flow.ts, S_SENSOR).

import type { ButtonId, Flash, Platform, Screen } from "../../platform/platform.ts";
import { partitionFlash } from "../../platform/flash_partition.ts";
import type { Pn532 } from "../../drivers/pn532.ts";
import type { FingerprintModule } from "../../drivers/fingerprint_module.ts";
import type { Matcher } from "../../biometrics/matcher.ts";
import { tryDecode } from "../../../protocol/codec_runtime.ts";
import {
  Peripheral,
  PollsState,
  Verdict,
  RecordKind,
  decodeRecord,
  decodeTurnoutCounts,
  decodeVerificationEvent,
  encodeAuditEvent,
  encodeTurnoutCounts,
  encodeVerificationEvent,
  type PartVerdict,
  type SignedArtifact,
  type TurnoutCounts,
} from "../../../protocol/generated/device_codec.ts";
import { RegisterImage, cardKey, type Sha256Fn } from "./register.ts";
import { StationLog, T_CLOSE, T_EXEMPTED, T_HOUR, T_REJECTED, T_VERIFIED, turnoutCounts, type Intent } from "./turnout.ts";
import { VerificationFlow, S_CAPTURE, S_READING, type FlowHost } from "./flow.ts";
import { PartWatch } from "./part_watch.ts";
import { K_CLOSED, K_CLOSING, K_NOT_LOADED, K_PRESENT_CARD, K_READY, screen } from "./screens.ts";

const HOUR_MS = 3600000;
/** Station-log bytes one voter takes (intent 20 + commit 16); a fifth of the log is kept for the rest. */
const LOG_BYTES_PER_VOTER = 36;

/** Read access to the firmware journal (device/services/journal.ts), for the boot check. */
export interface RecordReader {
  nextSeq(): number;
  read(seq: number): Uint8Array | null;
}

export interface VerificationServiceOptions {
  platform: Platform;
  /** Journals a record (signed when its kind is); cb gets its seq once it is on flash, or < 0. */
  record: (kind: number, payload: Uint8Array, cb: (seq: number) => void) => void;
  reader: Pn532;
  fingerprint: FingerprintModule;
  matcher: Matcher;
  /** dataRegions(platform.dataFlash).roleLog: the register image and the station log. */
  roleLog: Flash;
  /**
   * The firmware journal, read at boot to settle a record interrupted by a power cut. Without it
   * an interrupted mark counts as voted (never twice) and an interrupted close is redone.
   */
  journal?: RecordReader | null;
  /** Pages of roleLog for the station log (the rest holds the register). Default: a quarter, >= 2. */
  logPages?: number;
  /** A faster SHA-256 (e.g. Espruino's crypto); default: in JS. */
  sha256?: Sha256Fn;
  /** A faster CRC-32 (E.CRC32); default: in JS. */
  crc32?: (bytes: Uint8Array) => number;
  /** Polls state or counts changed (telemetry can report at once). */
  onChange?: () => void;
  pollMs?: number;
  retryMs?: number;
  verdictMs?: number;
  supervisorMs?: number;
  /** A part that did not answer for this long is probed (ms). Default 30000. */
  partCheckMs?: number;
  /** First re-probe of a part that stopped answering (ms; then doubling up to a minute). Default 2000. */
  partRetryMs?: number;
}

interface Txn {
  type: number;
  arg: number;
  kind: number;
  payload: () => Uint8Array;
  cb: (seq: number) => void;
}

function nothing(): void {}

export class VerificationService {
  _o: VerificationServiceOptions;
  _p: Platform;
  register: RegisterImage;
  log: StationLog;
  flow: VerificationFlow;
  _hash: Sha256Fn | null;
  _txq: Txn[];
  _txBusy: boolean;
  /** Bumped by clear() and stop(): callbacks of before are dropped. */
  _epoch: number;
  _closing: boolean;
  /** Why the stored data cannot be used ("" when fine). */
  _fault: string;
  _hourTimer: number;
  _hourQueued: boolean;
  _started: boolean;
  /** Bit (1 << Peripheral) for the reader / fingerprint module while they do not answer. */
  _faults: number;
  readerWatch: PartWatch;
  fingerWatch: PartWatch;

  constructor(options: VerificationServiceOptions) {
    const self = this;
    this._o = options;
    this._p = options.platform;
    this._hash = options.sha256 ?? null;
    const f = options.roleLog;
    let lp = options.logPages ?? f.pageCount >> 2;
    if (lp < 2) lp = 2;
    if (lp > f.pageCount - 2) throw new Error("verification: roleLog of " + f.pageCount + " pages is too small");
    this.register = new RegisterImage({ flash: partitionFlash(f, 0, f.pageCount - lp), sha256: options.sha256, crc32: options.crc32 });
    this.log = new StationLog({ flash: partitionFlash(f, f.pageCount - lp, lp), crc32: options.crc32 });
    this._txq = [];
    this._txBusy = false;
    this._epoch = 0;
    this._closing = false;
    this._fault = "";
    this._hourTimer = -1;
    this._hourQueued = false;
    this._started = false;
    this._faults = 0;
    const reader = options.reader;
    const fp = options.fingerprint;
    this.readerWatch = new PartWatch({
      timers: this._p.timers,
      probe: function (cb: (why: string | null) => void) {
        reader.init(function (err) {
          cb(err === null ? null : err.message);
        });
      },
      onFault: function (on: boolean, why: string) {
        self._partChanged(Peripheral.CARD_READER, "card reader", on, why);
        if (!on) self.flow.wake();
      },
      checkMs: options.partCheckMs,
      retryMs: options.partRetryMs,
    });
    this.fingerWatch = new PartWatch({
      timers: this._p.timers,
      probe: function (cb: (why: string | null) => void) {
        fp.open(function (err) {
          cb(err === null ? null : err.message);
        });
      },
      onFault: function (on: boolean, why: string) {
        self._partChanged(Peripheral.FINGERPRINT, "fingerprint module", on, why);
        if (!on) self.flow.fingerWake();
      },
      busy: function () {
        return self.flow.state === S_CAPTURE;
      },
      checkMs: options.partCheckMs,
      retryMs: options.partRetryMs,
    });
    const rw = this.readerWatch;
    const fw = this.fingerWatch;
    reader.onHealth = function (why: string | null) {
      if (why === null) rw.answered();
      else rw.failed(why);
    };
    fp.onHealth = function (why: string | null) {
      if (why === null) fw.answered();
      else fw.failed(why);
    };
    const host: FlowHost = {
      register: this.register,
      accepting: function () {
        return self.state() === PollsState.OPEN && !self._closing;
      },
      isVoted: function (i: number) {
        return self.log.isVoted(i);
      },
      exemptedSoFar: function () {
        return self.log.exempted;
      },
      exemptionCap: function () {
        return self.register.exemptionCap();
      },
      standbyScreen: function () {
        return self._standbyScreen();
      },
      idleScreen: function () {
        return screen(K_PRESENT_CARD, { verified: self.log.verified, exempted: self.log.exempted });
      },
      key: function (id: string) {
        return cardKey(id, self._hash);
      },
      markVoted: function (index: number, exempt: boolean, attempts: number, cb: (seq: number) => void) {
        self._markVoted(index, exempt, attempts, cb);
      },
      reject: function (reason: number, attempts: number, cb: (seq: number) => void) {
        self._reject(reason, attempts, cb);
      },
      adminAction: function () {
        const s = self.state();
        return s === PollsState.READY ? 1 : s === PollsState.OPEN && !self._closing ? 2 : 0;
      },
      openPolls: function (actor: string) {
        return self.openPolls(actor);
      },
      closePolls: function (actor: string) {
        self.closePolls(nothing, actor);
      },
      counts: function () {
        return { verified: self.log.verified, exempted: self.log.exempted };
      },
      log: function (text: string) {
        self._p.log("verification: " + text);
      },
      readerUp: function () {
        return !self.readerWatch.faulted;
      },
      standbyCards: function () {
        return self.state() !== PollsState.NOT_LOADED;
      },
      fingerUp: function () {
        return !self.fingerWatch.faulted;
      },
      checkFinger: function (cb: (up: boolean) => void) {
        self.fingerWatch.check(function (why: string | null) {
          cb(why === null);
        });
      },
    };
    this.flow = new VerificationFlow({
      host: host,
      timers: this._p.timers,
      display: this._p.display,
      reader: options.reader,
      fingerprint: options.fingerprint,
      matcher: options.matcher,
      pollMs: options.pollMs,
      retryMs: options.retryMs,
      verdictMs: options.verdictMs,
      supervisorMs: options.supervisorMs,
    });
  }

  // ---- boot ----

  /**
   * Boots the service: reads the register and the station log, settles a record interrupted by a
   * power cut, then probes the reader and the fingerprint module (the boot self-test of both: one
   * that does not answer is a fault at once) and starts the flow. Call it right after
   * the firmware journal is opened and before the link starts (no acknowledgement may compact
   * the journal before the check).
   */
  start(): void {
    const self = this;
    this._started = true;
    this._openStored();
    this._p.buttons.onPress(function (b: ButtonId) {
      self.button(b);
    });
    this.readerWatch.start();
    this.fingerWatch.start();
    this.flow.start();
    // An hour that passed while the device was off gets its record now.
    this._hourCheck();
    this._scheduleHour();
  }

  stop(): void {
    this._epoch++;
    this._started = false;
    this._txq = [];
    this._txBusy = false;
    this._stopHour();
    this.flow.stop();
    this.readerWatch.stop();
    this.fingerWatch.stop();
  }

  _openStored(): void {
    this._fault = "";
    if (!this.register.open(false)) {
      if (this.register.problem !== "no register image") this._log("register not loaded: " + this.register.problem);
      this.log.open(0);
      return;
    }
    if (!this.log.open(this.register.count)) {
      this._fault = "station log unreadable";
    } else if (this.log.opened && this.log.openTag !== this.register.tag) {
      this._fault = "station log belongs to another register";
    }
    if (this._fault !== "") {
      this._log(this._fault);
      return;
    }
    const p = this.log.pending();
    if (p !== null) {
      const done = this._interrupted(p);
      this.log.settle(done);
      this._log("an interrupted " + String.fromCharCode(p.type) + " record was " + (done ? "found: counted" : "not written: dropped"));
    }
  }

  /** True when the record of the open intent `p` reached the firmware journal. */
  _interrupted(p: Intent): boolean {
    const j = this._o.journal ?? null;
    if (j === null) return p.type !== T_CLOSE;
    const kind = this._kindOf(p.type);
    const end = j.nextSeq();
    for (let s = p.seqHint > 0 ? p.seqHint : 1; s < end; s++) {
      const b = j.read(s);
      if (b === null) continue;
      const r = tryDecode(decodeRecord, b).value;
      if (r === null || r.kind !== kind) continue;
      const payload = r.payload ?? new Uint8Array(0);
      if (p.type === T_VERIFIED || p.type === T_EXEMPTED || p.type === T_REJECTED) {
        const e = tryDecode(decodeVerificationEvent, payload).value;
        if (e === null || e.stationId !== this.register.stationId) continue;
        if (p.type === T_REJECTED ? e.reason === p.arg : e.verified === this.log.verified + 1) return true;
      } else {
        const t = tryDecode(decodeTurnoutCounts, payload).value;
        if (t === null || t.stationId !== this.register.stationId) continue;
        if (p.type === T_CLOSE ? t.final === true : t.periodEndMs === p.arg * HOUR_MS) return true;
      }
    }
    return false;
  }

  _kindOf(type: number): number {
    if (type === T_VERIFIED) return RecordKind.VOTER_VERIFIED;
    if (type === T_EXEMPTED) return RecordKind.VOTER_EXEMPTED;
    if (type === T_REJECTED) return RecordKind.VERIFICATION_REJECTED;
    if (type === T_HOUR) return RecordKind.TURNOUT_HOURLY;
    return RecordKind.TURNOUT_REPORT;
  }

  // ---- the intent protocol (turnout.ts), one at a time ----

  _transact(t: Txn): void {
    this._txq.push(t);
    if (!this._txBusy) this._nextTxn();
  }

  _nextTxn(): void {
    const self = this;
    const epoch = this._epoch;
    for (;;) {
      const t = this._txq.shift();
      if (t === undefined) {
        this._txBusy = false;
        return;
      }
      this._txBusy = true;
      const j = this._o.journal ?? null;
      const s = this.log.intent(t.type, t.arg, j === null ? 0 : j.nextSeq());
      if (s <= 0) {
        this._log("station log refused an entry (" + s + ")");
        t.cb(s);
        continue;
      }
      this._o.record(t.kind, t.payload(), function (seq: number) {
        if (epoch !== self._epoch) return;
        self.log.settle(seq > 0);
        t.cb(seq);
        self._changed();
        self._nextTxn();
      });
      return;
    }
  }

  _markVoted(index: number, exempt: boolean, attempts: number, cb: (seq: number) => void): void {
    const self = this;
    this._transact({
      type: exempt ? T_EXEMPTED : T_VERIFIED,
      arg: index,
      kind: exempt ? RecordKind.VOTER_EXEMPTED : RecordKind.VOTER_VERIFIED,
      payload: function () {
        return encodeVerificationEvent({
          stationId: self.register.stationId,
          verified: self.log.verified + 1,
          exempted: self.log.exempted + (exempt ? 1 : 0),
          attempts: attempts,
          actor: exempt ? "supervisor" : "",
        });
      },
      cb: cb,
    });
  }

  _reject(reason: number, attempts: number, cb: (seq: number) => void): void {
    const self = this;
    this._transact({
      type: T_REJECTED,
      arg: reason,
      kind: RecordKind.VERIFICATION_REJECTED,
      payload: function () {
        return encodeVerificationEvent({
          stationId: self.register.stationId,
          verified: self.log.verified,
          exempted: self.log.exempted,
          reason: reason,
          attempts: attempts,
        });
      },
      cb: cb,
    });
  }

  // ---- hourly turnout ----

  _stopHour(): void {
    if (this._hourTimer >= 0) this._p.timers.clearTimeout(this._hourTimer);
    this._hourTimer = -1;
  }

  /** While the polls are open: a check at each wall-clock hour (at least once a minute). */
  _scheduleHour(): void {
    const self = this;
    this._stopHour();
    if (this.state() !== PollsState.OPEN) return;
    const wall = this._p.clock.wallMs();
    let wait = 60000;
    if (wall > 0) {
      const next = (Math.floor(wall / HOUR_MS) + 1) * HOUR_MS - wall;
      if (next < wait) wait = next;
    }
    const epoch = this._epoch;
    this._hourTimer = this._p.timers.setTimeout(function () {
      self._hourTimer = -1;
      if (epoch !== self._epoch) return;
      self._hourCheck();
      self._scheduleHour();
    }, wait);
  }

  _hourCheck(): void {
    const self = this;
    const wall = this._p.clock.wallMs();
    if (wall <= 0 || this.state() !== PollsState.OPEN || this._closing || this._hourQueued) return;
    const h = Math.floor(wall / HOUR_MS);
    if (h <= this.log.lastHour || h <= this.log.openHour) return;
    // The counts as of the hour's end (now), not as of when the record's turn comes.
    const payload = encodeTurnoutCounts(this._counts(h * HOUR_MS, false));
    this._hourQueued = true;
    this._transact({
      type: T_HOUR,
      arg: h,
      kind: RecordKind.TURNOUT_HOURLY,
      payload: function () {
        return payload;
      },
      cb: function (seq: number) {
        self._hourQueued = false;
        if (seq <= 0) self._log("hourly turnout record refused (" + seq + ")");
      },
    });
  }

  // ---- polls ----

  /** READY -> OPEN. Returns an error text or null. */
  openPolls(actor?: string): string | null {
    const s = this.state();
    if (s !== PollsState.READY) return s === PollsState.NOT_LOADED ? "no station register loaded" : "polls are not ready to open";
    const wall = this._p.clock.wallMs();
    if (this.log.markOpen(this.register.tag, wall > 0 ? Math.floor(wall / HOUR_MS) : 0) <= 0) return "station log refused the opening";
    this._o.record(RecordKind.AUDIT, encodeAuditEvent({ event: "polls.opened", actor: actor ?? "host", detail: "" }), nothing);
    this._scheduleHour();
    this.flow.pollsChanged();
    this._changed();
    return null;
  }

  /**
   * OPEN -> CLOSED: a voter in capture is cancelled, one being recorded finishes, then the signed
   * turnout report (final) is journalled; cb(null, report) once it is on flash, or cb(error, null).
   */
  closePolls(cb: (err: string | null, report: TurnoutCounts | null) => void, actor?: string): void {
    const self = this;
    if (this.state() !== PollsState.OPEN || this._closing) {
      cb(this._closing ? "polls are already closing" : "polls are not open", null);
      return;
    }
    this._closing = true;
    this.flow.interrupt();
    let report: TurnoutCounts | null = null;
    this._transact({
      type: T_CLOSE,
      arg: 0,
      kind: RecordKind.TURNOUT_REPORT,
      payload: function () {
        report = self._counts(self._p.clock.wallMs(), true);
        return encodeTurnoutCounts(report);
      },
      cb: function (seq: number) {
        self._closing = false;
        if (seq > 0) {
          self._stopHour();
          self._log("polls closed by " + (actor ?? "host"));
        }
        self.flow.pollsChanged();
        self._changed();
        if (seq > 0) cb(null, report);
        else cb("the turnout report could not be journalled (" + seq + ")", null);
      },
    });
  }

  state(): number {
    if (!this.register.loaded || this._fault !== "") return PollsState.NOT_LOADED;
    if (this.log.closed) return PollsState.CLOSED;
    if (this.log.opened) return PollsState.OPEN;
    return PollsState.READY;
  }

  _counts(periodEndMs: number, final: boolean): TurnoutCounts {
    const loaded = this.register.loaded;
    return turnoutCounts(
      this.log,
      loaded ? this.register.stationId : "",
      loaded ? this.register.electionId : "",
      loaded ? this.register.count : 0,
      periodEndMs,
      final,
    );
  }

  /** The counts now (counts only: no identity). */
  counts(): TurnoutCounts {
    return this._counts(this._p.clock.wallMs(), this.log.closed);
  }

  /** The station whose register is loaded ("" when none): Health.station_id. */
  stationId(): string {
    return this.state() === PollsState.NOT_LOADED ? "" : this.register.stationId;
  }

  electionId(): string {
    return this.state() === PollsState.NOT_LOADED ? "" : this.register.electionId;
  }

  // ---- register ----

  /**
   * Loads the register of a commission-verified StationRegister artifact: only before the polls
   * open (NOT_LOADED or READY). Nothing stored changes if the register is refused. Returns an error
   * text or null.
   */
  loadRegister(artifact: SignedArtifact): string | null {
    const self = this;
    const s = this.state();
    if (s === PollsState.OPEN || s === PollsState.CLOSED) return "polls have been opened: clear the election first";
    if (this._txBusy) return "busy";
    const room = this.log.capacityBytes() - this.log.capacityBytes() / 5;
    const err = this.register.write(artifact, Math.floor(room / LOG_BYTES_PER_VOTER), function () {
      self.log.erase();
    });
    this._openStored();
    if (err === null) {
      this._o.record(
        RecordKind.AUDIT,
        encodeAuditEvent({
          event: "register.loaded",
          actor: "device",
          detail: "station " + this.register.stationId + ", " + this.register.count + " voters, version " + this.register.version,
        }),
        nothing,
      );
    }
    this.flow.pollsChanged();
    this._changed();
    return err;
  }

  /** Erases the register and the station log (ClearElection): back to NOT_LOADED. */
  clear(): void {
    this._epoch++;
    this._txq = [];
    this._txBusy = false;
    this._closing = false;
    this._hourQueued = false;
    this._stopHour();
    this.flow.stop();
    this.register.erase();
    this.log.erase();
    this._openStored();
    if (this._started) this.flow.start();
    this._changed();
  }

  /** A button of the device (start() installs this as the platform's button handler). */
  button(b: ButtonId): void {
    this.flow.button(b);
  }

  lastScreen(): Screen | null {
    return this.flow.lastScreen();
  }

  _standbyScreen(): Screen {
    const s = this.state();
    if (s === PollsState.READY) return screen(K_READY, { voters: this.register.count });
    if (s === PollsState.OPEN) return screen(K_CLOSING, null);
    if (s === PollsState.CLOSED) {
      return screen(K_CLOSED, { verified: this.log.verified, exempted: this.log.exempted, rejected: this.log.rejectedTotal() });
    }
    return screen(K_NOT_LOADED, null);
  }

  _partFault(part: number, on: boolean): void {
    const before = this._faults;
    if (on) this._faults = this._faults | (1 << part);
    else this._faults = this._faults & ~(1 << part);
    if (before !== this._faults) this._changed();
  }

  /** A watched part stopped answering (on) or answers again: its bit, one log line, a Health. */
  _partChanged(part: number, name: string, on: boolean, why: string): void {
    if (on) this._log(name + " does not answer (" + why + "): reported; probing it again with back-off");
    else this._log(name + " answers again");
    this._partFault(part, on);
  }

  /** Bits (1 << Peripheral) of the card reader and fingerprint module while they do not answer. */
  peripheralFaults(): number {
    return this._faults;
  }

  /**
   * Self-test of the card reader and the fingerprint module, those of `parts` (Peripheral values):
   * each probed now (a failure is a fault at once), except a part at work for a voter (the reader
   * during a card read, the module during a capture), whose own outcome tells. cb gets one verdict
   * per part tested, in no particular order.
   */
  selfTest(parts: number[], cb: (verdicts: PartVerdict[]) => void): void {
    const out: PartVerdict[] = [];
    const todo: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === Peripheral.CARD_READER || parts[i] === Peripheral.FINGERPRINT) todo.push(parts[i]);
    }
    let left = todo.length;
    if (left === 0) {
      cb(out);
      return;
    }
    // One call per part: its callback keeps its own `part` (no closure over a loop binding).
    for (let i = 0; i < todo.length; i++) {
      this._testPart(todo[i], function (v: PartVerdict) {
        out.push(v);
        left--;
        if (left === 0) cb(out);
      });
    }
  }

  _testPart(part: number, done: (v: PartVerdict) => void): void {
    const self = this;
    const reader = part === Peripheral.CARD_READER;
    const w = reader ? this.readerWatch : this.fingerWatch;
    // A part at work for a voter is not set up again under the voter's card or finger.
    const st = this.flow.state;
    if (reader ? st === S_READING : st === S_CAPTURE) {
      done({ part: part, verdict: w.faulted ? Verdict.FAIL : Verdict.PASS, detail: w.faulted ? w.why : "in use" });
      return;
    }
    w.check(function (why: string | null) {
      let detail = why ?? "";
      if (why === null && reader) {
        const f = self._o.reader.firmware;
        detail = f === null ? "answers" : "PN532 firmware " + f.ver + "." + f.rev;
      } else if (why === null) detail = "firmware " + self._o.fingerprint.firmwareVersion;
      done({ part: part, verdict: why === null ? Verdict.PASS : Verdict.FAIL, detail: detail });
    });
  }

  _changed(): void {
    const f = this._o.onChange;
    if (f) f();
  }

  _log(text: string): void {
    this._p.log("verification: " + text);
  }
}
