// Watches whether one part of the verification device (the card reader, the fingerprint module)
// answers. The part's driver reports the outcome of every command (answered() / failed()); a
// number of failures in a row is a fault, and the first answer after it clears it. While faulted
// the part is probed again on a back-off schedule (retryMs, doubling up to maxRetryMs), never in a
// tight loop. A part that nothing has talked to for checkMs is probed too, so that a part left
// unused (the card reader while no register is loaded, the fingerprint module between voters) is
// still checked. An explicit check (boot, self-test) is decisive: its failure is a fault at once.
// Engine subset.

import type { Timers } from "../../platform/platform.ts";

export interface PartWatchOptions {
  timers: Timers;
  /**
   * Probes the part and sets it up again (a part that comes back may have lost its settings);
   * cb(null) when it answered, else why not.
   */
  probe: (cb: (why: string | null) => void) => void;
  /** The fault came (true, with the reason) or went (false). */
  onFault: (on: boolean, why: string) => void;
  /** True while the part is in use and its own outcome will tell (a capture): no probe then. */
  busy?: () => boolean;
  /** Failures in a row that make a fault. Default 3. */
  failures?: number;
  /** A part that did not answer for this long is probed (ms). Default 30000. */
  checkMs?: number;
  /** Between probes after a failure, and before the first re-probe of a faulted part (ms). Default 2000. */
  retryMs?: number;
  /** Longest wait between re-probes of a faulted part (ms). Default 60000. */
  maxRetryMs?: number;
}

export class PartWatch {
  _o: PartWatchOptions;
  _t: Timers;
  _n: number;
  _checkMs: number;
  _retryMs: number;
  _maxMs: number;
  /** True while the part does not answer (its bit is set in peripheral_faults). */
  faulted: boolean;
  /** Why the last command failed ("" when the last one was answered). */
  why: string;
  _streak: number;
  _lastOk: number;
  /** The wait before the next re-probe of a faulted part. */
  _wait: number;
  _timer: number;
  _timerAt: number;
  _probing: boolean;
  _decisive: boolean;
  _failedInProbe: boolean;
  _waiters: ((why: string | null) => void)[];
  _on: boolean;

  constructor(options: PartWatchOptions) {
    this._o = options;
    this._t = options.timers;
    this._n = options.failures ?? 3;
    this._checkMs = options.checkMs ?? 30000;
    this._retryMs = options.retryMs ?? 2000;
    this._maxMs = options.maxRetryMs ?? 60000;
    this.faulted = false;
    this.why = "";
    this._streak = 0;
    this._lastOk = 0;
    this._wait = this._retryMs;
    this._timer = -1;
    this._timerAt = 0;
    this._probing = false;
    this._decisive = false;
    this._failedInProbe = false;
    this._waiters = [];
    this._on = false;
  }

  /** Starts watching with a decisive probe (the boot self-test of the part). */
  start(): void {
    this._on = true;
    this._streak = 0;
    this._lastOk = this._t.now();
    this.check(null);
  }

  stop(): void {
    this._on = false;
    this._disarm();
  }

  /** The part answered a command. */
  answered(): void {
    this._lastOk = this._t.now();
    this.why = "";
    if (this._streak === 0 && !this.faulted) return;
    this._streak = 0;
    if (this.faulted) {
      this.faulted = false;
      this._wait = this._retryMs;
      this._o.onFault(false, "");
    }
    if (this._on) this._arm(this._checkMs);
  }

  /** A command failed for the part's sake (no answer, damaged answers). */
  failed(why: string): void {
    this.why = why;
    this._streak++;
    this._failedInProbe = true;
    if (!this._on || this.faulted) return;
    if (this._streak >= this._n || (this._probing && this._decisive)) {
      this._fault(why);
      return;
    }
    // Not yet a fault: look again soon (unless something else is about to).
    if (this._timer < 0 || this._timerAt > this._t.now() + this._retryMs) this._arm(this._retryMs);
  }

  /**
   * Probes the part now (or joins the probe under way) and treats the result as decisive: a
   * failure is a fault at once. cb(null) when it answered, else why not.
   */
  check(cb: ((why: string | null) => void) | null): void {
    if (cb !== null) this._waiters.push(cb);
    this._decisive = true;
    if (!this._probing) this._probe();
  }

  _fault(why: string): void {
    this.faulted = true;
    this._wait = this._retryMs;
    this._o.onFault(true, why);
    this._arm(this._wait);
  }

  _probe(): void {
    const self = this;
    const faultedBefore = this.faulted;
    this._probing = true;
    this._failedInProbe = false;
    this._o.probe(function (why: string | null) {
      const decisive = self._decisive;
      self._probing = false;
      self._decisive = false;
      // The driver reported each command already; a probe refused before anything reached the
      // part (no command, so no report) counts here.
      if (why !== null && !self._failedInProbe) self.failed(why);
      if (why === null) self.answered();
      if (self._on) {
        if (why === null) {
          if (self._timer < 0) self._arm(self._checkMs);
        } else if (!self.faulted && decisive) self._fault(why);
        else if (self.faulted && faultedBefore) {
          // Still not answering: wait longer before the next re-probe.
          self._wait = self._wait * 2 > self._maxMs ? self._maxMs : self._wait * 2;
          self._arm(self._wait);
        }
      }
      const w = self._waiters;
      self._waiters = [];
      for (let i = 0; i < w.length; i++) w[i](why);
    });
  }

  _tick(): void {
    if (!this._on || this._probing) return;
    const busy = this._o.busy;
    if (busy !== undefined && busy()) {
      this._arm(this._retryMs);
      return;
    }
    if (!this.faulted && this._streak === 0) {
      // Whole milliseconds: a clock with fractions must not make a timer of nothing.
      const left = Math.ceil(this._checkMs - (this._t.now() - this._lastOk));
      if (left > 0) {
        this._arm(left);
        return;
      }
    }
    this._probe();
  }

  _arm(ms: number): void {
    const self = this;
    this._disarm();
    this._timerAt = this._t.now() + ms;
    this._timer = this._t.setTimeout(function () {
      self._timer = -1;
      self._tick();
    }, ms);
  }

  _disarm(): void {
    if (this._timer >= 0) this._t.clearTimeout(this._timer);
    this._timer = -1;
  }
}
