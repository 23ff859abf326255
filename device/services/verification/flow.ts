// The verification flow at the polling station: an explicit state machine driven by the card
// reader (polled on a timer while a card can be acted on: not while no register is loaded, nor
// while the reader does not answer), the fingerprint module's callbacks and the buttons. One
// voter at a time: card, register look-up, up to three finger captures matched against the
// register's template AND the card's, then the verdict, shown only once the voter's mark and
// record are on flash (the service's transaction callback). Supervisor paths: an exemption for a
// voter whose fingers cannot be read, and opening / closing the polls. Engine subset.
//
// A fingerprint module that does not answer (the service's part watch says so, or a capture got
// no answer and a probe right after confirms it) is nobody's verdict: the voter in hand is shown
// the device error at once, no capture is tried against the dead module and nothing is journalled
// for the voter (no RejectReason names a device fault; a rejection would count in the turnout
// figures). The supervisor may still exempt the voter; the module answering again resumes the
// captures of a voter still waiting.
//
// No voter id, card id or template byte is ever logged, shown or passed on: the card id becomes
// a key (a hash) at once, and a screen carries counts and attempt numbers only.

import type { Display, Timers, ButtonId, Screen } from "../../platform/platform.ts";
import type { Pn532, Pn532Error } from "../../drivers/pn532.ts";
import { readCard, CARD_ERR_NO_CARD, CARD_ERR_REMOVED, type CardData, type CardError } from "../../drivers/voter_card.ts";
import {
  FingerprintModule,
  FP_ERR_NO_FINGER,
  FP_ERR_NO_MODULE,
  FP_ERR_POOR_IMAGE,
  FP_ERR_TIMEOUT,
  type FpError,
} from "../../drivers/fingerprint_module.ts";
import { parseTemplate, parseCompactCard } from "../../biometrics/iso19794.ts";
import { prepare, prepareProbe, loadPrepared, type Matcher, type Prepared } from "../../biometrics/matcher.ts";
import { RejectReason } from "../../../protocol/generated/device_codec.ts";
import type { RegisterImage } from "./register.ts";
import {
  K_EXEMPT_CARD,
  K_FAIL_NO_FINGER,
  K_FAIL_NO_MATCH,
  K_FAIL_POOR_IMAGE,
  K_FAIL_SENSOR,
  K_FAIL_TIMEOUT,
  K_NOT_OPEN,
  K_PRESENT_FINGER,
  K_READING,
  K_RECORDING,
  K_NOT_RECORDED,
  K_SUP_CARD,
  K_SUP_DENIED,
  K_SUPERVISOR_CARD,
  K_VERIFIED,
  K_EXEMPTED,
  K_CONFIRM_OPEN,
  K_CONFIRM_CLOSE,
  screen,
  rejectedScreen,
  errorScreen,
} from "./screens.ts";

// States (numbers; the names are for people).
/** Stopped. */
export const S_OFF = 0;
/**
 * Polls not open (not loaded, ready, closing, closed): voter cards refused, supervisor button taken.
 * The reader is polled only while a register is loaded: with none, no card can be acted on.
 */
export const S_STANDBY = 1;
/** Polls open, waiting for a card: the reader is polled every pollMs. */
export const S_IDLE = 2;
/** A voter card is being read. */
export const S_READING = 3;
/** A finger capture in progress (attempt 1..3). */
export const S_CAPTURE = 4;
/** The reason of a failed attempt shown, the next attempt follows. */
export const S_RETRY = 5;
/** The voter's mark and record being written; the verdict follows in their callback. */
export const S_RECORDING = 6;
/** A verdict or rejection shown; back to idle after verdictMs (or ok). */
export const S_VERDICT = 7;
/** Exemption: waiting for the supervisor's card. */
export const S_EXEMPT_CARD = 8;
/** Polls control: waiting for the supervisor's card. */
export const S_ADMIN_CARD = 9;
/** Supervisor recognised: ok opens (or closes) the polls, cancel goes back. */
export const S_CONFIRM = 10;
/**
 * A voter in hand while the fingerprint module does not answer: the device error shown, nothing
 * journalled. The supervisor button starts an exemption; the card taken away, cancel or
 * supervisorMs end it (back to rest); the module answering again resumes the captures.
 */
export const S_SENSOR = 11;

export const MAX_ATTEMPTS = 3;
/** Compact card minutiae are in 0.1 mm up to 25.5 mm: the image they may lie in, at 197 px/cm. */
const CARD_AREA_PX = 503;

/** What the flow needs from the service around it. */
export interface FlowHost {
  register: RegisterImage;
  /** True while voters are taken (polls open, not closing). */
  accepting(): boolean;
  isVoted(index: number): boolean;
  exemptedSoFar(): number;
  exemptionCap(): number;
  /** The screen of the standby state (depends on the polls state). */
  standbyScreen(): Screen;
  idleScreen(): Screen;
  /** The lookup key of a card id (first 8 bytes of its SHA-256). */
  key(id: string): Uint8Array;
  /** Marks the voter as voted and journals it; cb(seq): > 0 committed, else refused. */
  markVoted(index: number, exempt: boolean, attempts: number, cb: (seq: number) => void): void;
  /** Journals a rejection; cb(seq) as above. */
  reject(reason: number, attempts: number, cb: (seq: number) => void): void;
  /** 1: the supervisor may open the polls, 2: close them, 0: nothing to do. */
  adminAction(): number;
  openPolls(actor: string): string | null;
  closePolls(actor: string): void;
  counts(): { verified: number; exempted: number };
  log(text: string): void;
  /** False while the card reader does not answer (the service probes it; wake() when it is back). */
  readerUp(): boolean;
  /** Whether a card presented in standby can be acted on (a register is loaded). */
  standbyCards(): boolean;
  /** False while the fingerprint module does not answer (the service probes it; fingerWake() when it is back). */
  fingerUp(): boolean;
  /** Probes the fingerprint module now, decisively (a failure is a fault at once); cb(true) when it answered. */
  checkFinger(cb: (up: boolean) => void): void;
}

export interface FlowOptions {
  host: FlowHost;
  timers: Timers;
  display: Display;
  reader: Pn532;
  fingerprint: FingerprintModule;
  matcher: Matcher;
  pollMs?: number;
  retryMs?: number;
  verdictMs?: number;
  supervisorMs?: number;
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class VerificationFlow {
  _h: FlowHost;
  _t: Timers;
  _d: Display;
  _r: Pn532;
  _fp: FingerprintModule;
  _m: Matcher;
  _pollMs: number;
  _retryMs: number;
  _verdictMs: number;
  _supMs: number;
  state: number;
  /** Bumped at every state change: callbacks of an earlier state are dropped. */
  _gen: number;
  _timer: number;
  _deadline: number;
  /** A card already handled and not yet seen removed (uid, and key for voter cards). */
  _present: Uint8Array | null;
  _presentKey: Uint8Array | null;
  // The voter in hand.
  _idx: number;
  _key: Uint8Array | null;
  _uid: Uint8Array | null;
  _card: Prepared | null;
  _reg: Prepared | null;
  _attempt: number;
  _sawImage: boolean;
  _sawCardMismatch: boolean;
  _admin: number;
  _lastScreen: Screen | null;
  /** The reader is not being polled for now (see _park); wake() resumes. */
  _parked: boolean;

  constructor(options: FlowOptions) {
    this._h = options.host;
    this._t = options.timers;
    this._d = options.display;
    this._r = options.reader;
    this._fp = options.fingerprint;
    this._m = options.matcher;
    this._pollMs = options.pollMs ?? 250;
    this._retryMs = options.retryMs ?? 1500;
    this._verdictMs = options.verdictMs ?? 4000;
    this._supMs = options.supervisorMs ?? 30000;
    this.state = S_OFF;
    this._gen = 0;
    this._timer = -1;
    this._deadline = 0;
    this._present = null;
    this._presentKey = null;
    this._idx = -1;
    this._key = null;
    this._uid = null;
    this._card = null;
    this._reg = null;
    this._attempt = 0;
    this._sawImage = false;
    this._sawCardMismatch = false;
    this._admin = 0;
    this._lastScreen = null;
    this._parked = false;
  }

  // ---- plumbing ----

  _show(s: Screen): void {
    this._lastScreen = s;
    this._d.show(s);
  }

  /** Enters a state: earlier callbacks and timers become stale; a capture left behind is cancelled. */
  _enter(st: number): number {
    if (this.state === S_CAPTURE && st !== S_CAPTURE) this._fp.cancel();
    this.state = st;
    this._gen++;
    this._parked = false;
    if (this._timer >= 0) this._t.clearTimeout(this._timer);
    this._timer = -1;
    return this._gen;
  }

  _after(ms: number, gen: number, fn: () => void): void {
    const self = this;
    if (this._timer >= 0) this._t.clearTimeout(this._timer);
    this._timer = this._t.setTimeout(function () {
      self._timer = -1;
      if (gen === self._gen) fn();
    }, ms);
  }

  /** Starts in standby or idle, as the polls are. */
  start(): void {
    this.rest();
  }

  stop(): void {
    this._enter(S_OFF);
  }

  /** Back to the resting state (idle if voters are taken, else standby). */
  rest(): void {
    if (this._h.accepting()) this._idle();
    else this._standby();
  }

  /** The polls changed (opened, closing, closed, register loaded): re-rest unless a voter is in hand. */
  pollsChanged(): void {
    const s = this.state;
    if (s === S_OFF || s === S_STANDBY || s === S_IDLE || s === S_ADMIN_CARD || s === S_CONFIRM) this.rest();
  }

  /**
   * Polls are closing: a voter in capture or waiting for an exemption is cancelled; one held by a
   * fingerprint module fault is let go (no capture was tried: nothing to journal).
   */
  interrupt(): void {
    const s = this.state;
    if (s === S_CAPTURE || s === S_RETRY || s === S_EXEMPT_CARD || s === S_READING) this._rejectVoter(RejectReason.CANCELLED);
    else if (s === S_SENSOR) this.rest();
    else this.pollsChanged();
  }

  _standby(): void {
    const gen = this._enter(S_STANDBY);
    this._show(this._h.standbyScreen());
    this._poll(gen);
  }

  _idle(): void {
    const gen = this._enter(S_IDLE);
    this._idx = -1;
    this._key = null;
    this._uid = null;
    this._card = null;
    this._reg = null;
    this._show(this._h.idleScreen());
    this._poll(gen);
  }

  /** One look at the reader, then the next after pollMs; what a new card means depends on the state. */
  _poll(gen: number): void {
    const self = this;
    if (this.state === S_STANDBY && !this._h.standbyCards()) {
      this._park(gen);
      return;
    }
    if (!this._h.readerUp()) {
      const st = this.state;
      if (st === S_IDLE || st === S_STANDBY) this._show(errorScreen("reader"));
      this._park(gen);
      return;
    }
    this._r.detect(function (err: Pn532Error | null, uid: Uint8Array | null) {
      if (gen !== self._gen) return;
      if (err === null && uid === null) {
        self._present = null;
        self._presentKey = null;
        if (self.state === S_SENSOR) {
          // The voter held by the module fault took the card away.
          self.rest();
          return;
        }
      }
      // Held by the module fault, only the card leaving matters (a random-UID card looks new).
      if (self.state === S_SENSOR) {
        self._keepPolling(gen);
        return;
      }
      if (err !== null || uid === null || sameBytes(uid, self._present)) self._keepPolling(gen);
      else self._newCard(gen, uid);
    });
  }

  /**
   * No look at the reader for now: no card could be acted on, or the reader does not answer (the
   * service probes it on its own schedule). A supervisor's wait still ends on time.
   */
  _park(gen: number): void {
    const self = this;
    this._parked = true;
    const st = this.state;
    if (st === S_EXEMPT_CARD || st === S_ADMIN_CARD || st === S_SENSOR) {
      const left = Math.ceil(this._deadline - this._t.now());
      this._after(left > 0 ? left : 0, gen, function () {
        self._parked = false;
        self._keepPolling(gen);
      });
    }
  }

  /** The reader answers again: a parked state looks at it again (idle and standby show their screen again). */
  wake(): void {
    if (!this._parked) return;
    const st = this.state;
    if (st === S_IDLE || st === S_STANDBY) {
      this.rest();
      return;
    }
    // The supervisor's deadline timer of the parked wait: the polling chain takes over.
    if (this._timer >= 0) this._t.clearTimeout(this._timer);
    this._timer = -1;
    this._parked = false;
    this._poll(this._gen);
  }

  /** The next look at the reader; a supervisor who does not come in time ends the wait. */
  _keepPolling(gen: number): void {
    const self = this;
    const st = this.state;
    if ((st === S_EXEMPT_CARD || st === S_ADMIN_CARD || st === S_SENSOR) && this._t.now() >= this._deadline) {
      if (st === S_EXEMPT_CARD) this._rejectVoter(RejectReason.CANCELLED);
      else this.rest();
      return;
    }
    this._after(this._pollMs, gen, function () {
      self._poll(gen);
    });
  }

  _newCard(gen: number, uid: Uint8Array): void {
    const self = this;
    const st = this.state;
    if (st === S_STANDBY) {
      // Cards are refused while the polls are not open.
      this._present = uid;
      this._show(screen(K_NOT_OPEN, null));
      this._after(this._verdictMs, gen, function () {
        self._standby();
      });
      return;
    }
    if (st === S_IDLE) {
      const g = this._enter(S_READING);
      this._show(screen(K_READING, null));
      this._read(g, uid, function (card: CardData) {
        self._voterCard(g, card);
      });
      return;
    }
    // S_EXEMPT_CARD or S_ADMIN_CARD: a supervisor's card is wanted.
    this._read(gen, uid, function (card: CardData) {
      self._supervisorCard(gen, card);
    });
  }

  /** Reads the card in the field; an unreadable voter card is a rejection, a vanished one nothing. */
  _read(gen: number, uid: Uint8Array, then: (card: CardData) => void): void {
    const self = this;
    readCard(this._r, function (err: CardError | null, card?: CardData) {
      if (gen !== self._gen) return;
      if (err !== null && (err.code === CARD_ERR_NO_CARD || err.code === CARD_ERR_REMOVED)) {
        // The card left before it could be read: as if it had not come.
        if (self.state === S_READING) self.rest();
        else self._keepPolling(gen);
        return;
      }
      self._present = uid;
      if (err !== null || card === undefined) {
        self._h.log("card read failed (" + (err === null ? 0 : err.code) + ")");
        if (self.state === S_READING) self._rejectVoter(RejectReason.CARD_UNREADABLE);
        else self._keepPolling(gen);
        return;
      }
      if (card.uid && card.uid.length > 0) self._present = card.uid;
      then(card);
    });
  }

  // ---- the voter ----

  _voterCard(gen: number, card: CardData): void {
    const self = this;
    if (card.kind !== "voter") {
      this._show(screen(K_SUPERVISOR_CARD, null));
      this._after(this._verdictMs, gen, function () {
        self.rest();
      });
      return;
    }
    const key = this._h.key(card.id);
    if (sameBytes(key, this._presentKey)) {
      // The same voter card, still in the field (a card with a random UID answers anew): no
      // second rejection for it.
      this._idle();
      return;
    }
    this._presentKey = key;
    this._key = key;
    this._uid = this._present;
    const reg = this._h.register;
    const idx = reg.find(key);
    if (idx < 0) {
      this._rejectVoter(RejectReason.NOT_IN_REGISTER);
      return;
    }
    this._idx = idx;
    if (this._h.isVoted(idx)) {
      this._rejectVoter(RejectReason.ALREADY_VOTED);
      return;
    }
    const ct = card.template === null ? null : parseCompactCard(card.template, CARD_AREA_PX, CARD_AREA_PX);
    if (ct === null || ct.template === null || ct.error !== 0) {
      this._rejectVoter(RejectReason.CARD_UNREADABLE);
      return;
    }
    this._card = prepare(ct.template);
    const rb = reg.template(idx);
    this._reg = rb === null ? null : loadPrepared(rb);
    if (this._reg === null) {
      this._h.log("register record " + idx + " unreadable");
      this._show(errorScreen("register"));
      this._rejectVoter(RejectReason.UNSPECIFIED);
      return;
    }
    this._attempt = 0;
    this._sawImage = false;
    this._sawCardMismatch = false;
    this._capture();
  }

  _capture(): void {
    const self = this;
    if (!this._h.fingerUp()) {
      // No capture against a module known not to answer: the voter is told at once.
      this._sensorDown();
      return;
    }
    const gen = this._enter(S_CAPTURE);
    this._attempt++;
    this._show(screen(K_PRESENT_FINGER, { attempt: this._attempt, max: MAX_ATTEMPTS }));
    this._fp.capture(function (err: FpError | null, iso?: Uint8Array) {
      if (gen !== self._gen) return;
      if (err !== null || iso === undefined) {
        const code = err === null ? 0 : err.code;
        if (code === FP_ERR_NO_FINGER) self._failed(K_FAIL_NO_FINGER);
        else if (code === FP_ERR_POOR_IMAGE) self._failed(K_FAIL_POOR_IMAGE);
        else if (code === FP_ERR_TIMEOUT) self._failed(K_FAIL_TIMEOUT);
        else if (code === FP_ERR_NO_MODULE) self._noModule();
        else {
          self._h.log("fingerprint module error " + code);
          self._failed(K_FAIL_SENSOR);
        }
        return;
      }
      const t = parseTemplate(iso);
      if (t.template === null || t.error !== 0) {
        self._failed(K_FAIL_POOR_IMAGE);
        return;
      }
      self._sawImage = true;
      const live = prepareProbe(t.template);
      // matches(enrolled, probe): the live print is the probe of both.
      const regOk = self._m.matches(self._reg as Prepared, live);
      const cardOk = regOk && self._m.matches(self._card as Prepared, live);
      if (regOk && cardOk) {
        self._commit(false);
        return;
      }
      if (regOk) self._sawCardMismatch = true;
      self._failed(K_FAIL_NO_MATCH);
    });
  }

  /** An attempt failed: its reason on screen, then the next attempt or the rejection. */
  _failed(reasonKey: string): void {
    const self = this;
    if (this._attempt >= MAX_ATTEMPTS) {
      const why = this._sawCardMismatch
        ? RejectReason.CARD_MISMATCH
        : this._sawImage
          ? RejectReason.FINGER_MISMATCH
          : RejectReason.CAPTURE_FAILED;
      this._rejectVoter(why);
      return;
    }
    const gen = this._enter(S_RETRY);
    this._show(screen(reasonKey, { attempt: this._attempt, max: MAX_ATTEMPTS }));
    this._after(this._retryMs, gen, function () {
      self._capture();
    });
  }

  /**
   * A capture got no answer at all (neither the scan nor the cancel that followed): the module is
   * probed at once, decisively. Gone: the device error, the attempt not counted (the module never
   * took it). There: a sensor failure like any other, the next attempt follows.
   */
  _noModule(): void {
    const self = this;
    if (!this._h.fingerUp()) {
      this._attempt--;
      this._sensorDown();
      return;
    }
    // The finger prompt stays while the module is probed (about two seconds when it is gone);
    // the supervisor and cancel buttons work as between attempts.
    const g = this._enter(S_RETRY);
    this._h.checkFinger(function (up: boolean) {
      if (g !== self._gen) return;
      if (up) self._failed(K_FAIL_SENSOR);
      else {
        self._attempt--;
        self._sensorDown();
      }
    });
  }

  /** The fingerprint module does not answer: the voter in hand sees the device error; nothing is journalled. */
  _sensorDown(): void {
    const gen = this._enter(S_SENSOR);
    this._show(errorScreen("fingerprint"));
    this._deadline = this._t.now() + this._supMs;
    this._poll(gen);
  }

  /** The fingerprint module answers again: a voter held by its fault gets their captures. */
  fingerWake(): void {
    if (this.state === S_SENSOR) this._capture();
  }

  /** The voter is marked and journalled; only then the verdict. */
  _commit(exempt: boolean): void {
    const self = this;
    const gen = this._enter(S_RECORDING);
    this._show(screen(K_RECORDING, null));
    this._h.markVoted(this._idx, exempt, this._attempt, function (seq: number) {
      if (gen !== self._gen) return;
      const g = self._enter(S_VERDICT);
      if (seq > 0) {
        const c = self._h.counts();
        if (exempt) self._show(screen(K_EXEMPTED, { exempted: c.exempted, cap: self._h.exemptionCap() }));
        else self._show(screen(K_VERIFIED, { verified: c.verified }));
      } else self._show(screen(K_NOT_RECORDED, null));
      self._verdictDone(g);
    });
  }

  _rejectVoter(reason: number): void {
    const self = this;
    const gen = this._enter(S_RECORDING);
    if (reason !== RejectReason.UNSPECIFIED) this._show(rejectedScreen(reason));
    this._h.reject(reason, this._attempt, function () {
      if (gen !== self._gen) return;
      // A rejection is shown whether or not its record could be written: the voter is not marked.
      self._verdictDone(self._enter(S_VERDICT));
    });
  }

  _verdictDone(gen: number): void {
    const self = this;
    this._attempt = 0;
    this._after(this._verdictMs, gen, function () {
      self.rest();
    });
  }

  // ---- supervisor ----

  _supervisorCard(gen: number, card: CardData): void {
    const self = this;
    const key = this._h.key(card.id);
    if (this.state === S_EXEMPT_CARD && card.kind === "voter" && sameBytes(key, this._key)) {
      // Still the voter's own card.
      this._keepPolling(gen);
      return;
    }
    const ok = card.kind === "supervisor" && this._h.register.isSupervisor(key);
    if (this.state === S_EXEMPT_CARD) {
      if (!ok) {
        this._rejectVoter(RejectReason.EXEMPTION_DENIED);
        return;
      }
      if (this._h.exemptedSoFar() >= this._h.exemptionCap()) {
        this._rejectVoter(RejectReason.EXEMPTION_CAP);
        return;
      }
      this._commit(true);
      return;
    }
    // Polls control.
    if (!ok) {
      const g = this._enter(S_VERDICT);
      this._show(screen(K_SUP_DENIED, null));
      this._verdictDone(g);
      return;
    }
    const g = this._enter(S_CONFIRM);
    const c = this._h.counts();
    if (this._admin === 1) this._show(screen(K_CONFIRM_OPEN, { voters: this._h.register.count }));
    else this._show(screen(K_CONFIRM_CLOSE, { verified: c.verified, exempted: c.exempted }));
    this._after(this._supMs, g, function () {
      self.rest();
    });
  }

  _waitSupervisor(st: number, key: string, params: { [name: string]: string | number } | null): void {
    const gen = this._enter(st);
    this._show(screen(key, params));
    this._deadline = this._t.now() + this._supMs;
    this._poll(gen);
  }

  /** A button on the device. */
  button(b: ButtonId): void {
    const s = this.state;
    if (b === "supervisor") {
      if (s === S_CAPTURE || s === S_RETRY || s === S_SENSOR) {
        if (this._h.exemptedSoFar() >= this._h.exemptionCap()) {
          this._rejectVoter(RejectReason.EXEMPTION_CAP);
          return;
        }
        const c = this._h.counts();
        this._waitSupervisor(S_EXEMPT_CARD, K_EXEMPT_CARD, { exempted: c.exempted, cap: this._h.exemptionCap() });
        return;
      }
      if (s === S_IDLE || s === S_STANDBY) {
        this._admin = this._h.adminAction();
        if (this._admin !== 0) this._waitSupervisor(S_ADMIN_CARD, K_SUP_CARD, null);
      }
      return;
    }
    if (b === "cancel") {
      if (s === S_CAPTURE || s === S_RETRY || s === S_EXEMPT_CARD) {
        this._rejectVoter(RejectReason.CANCELLED);
      } else if (s === S_SENSOR) {
        // No capture was tried for this voter (or the module died under it): nothing to journal.
        this.rest();
      } else if (s === S_ADMIN_CARD || s === S_CONFIRM || s === S_VERDICT) this.rest();
      return;
    }
    if (b === "ok") {
      if (s === S_CONFIRM) {
        // The service calls pollsChanged() once the polls changed.
        this._enter(S_STANDBY);
        if (this._admin === 1) {
          const err = this._h.openPolls("supervisor");
          if (err !== null) {
            this._h.log("open polls: " + err);
            this.rest();
          }
        } else this._h.closePolls("supervisor");
      } else if (s === S_VERDICT) this.rest();
    }
  }

  lastScreen(): Screen | null {
    return this._lastScreen;
  }
}
