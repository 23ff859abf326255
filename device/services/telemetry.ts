// Telemetry: a Health report on a schedule, and early when something significant changes
// (rate-limited), plus the device's error counters. Heartbeat health needs no acknowledgement.
// Engine subset.

import type { Timers } from "../platform/platform.ts";
import type { Health } from "../../protocol/generated/device_codec.ts";

export const HEALTH_INTERVAL_MS = 60000;
/** A change report waits at least this long after the previous report. */
export const HEALTH_MIN_GAP_MS = 2000;

export interface TelemetryOptions {
  timers: Timers;
  /** Builds a fresh Health from the device's current state. */
  sample: () => Health;
  /** Sends it (on the host link, when a host is there). */
  send: (h: Health) => void;
  intervalMs?: number;
}

export class Telemetry {
  _o: TelemetryOptions;
  _interval: number;
  _timer: number;
  _last: number;
  _changeTimer: number;
  reports: number;
  /** Errors since boot, by cause; summed into Health.error_count. */
  linkErrors: number;
  decodeErrors: number;
  storageErrors: number;
  peripheralErrors: number;

  constructor(options: TelemetryOptions) {
    this._o = options;
    this._interval = options.intervalMs ?? HEALTH_INTERVAL_MS;
    this._timer = -1;
    this._changeTimer = -1;
    this._last = -1e9;
    this.reports = 0;
    this.linkErrors = 0;
    this.decodeErrors = 0;
    this.storageErrors = 0;
    this.peripheralErrors = 0;
  }

  errorCount(): number {
    return this.linkErrors + this.decodeErrors + this.storageErrors + this.peripheralErrors;
  }

  start(): void {
    this._schedule(this._interval);
  }

  stop(): void {
    if (this._timer >= 0) this._o.timers.clearTimeout(this._timer);
    if (this._changeTimer >= 0) this._o.timers.clearTimeout(this._changeTimer);
    this._timer = -1;
    this._changeTimer = -1;
  }

  /** Sends a report now and restarts the schedule. */
  report(): void {
    this._last = this._o.timers.now();
    this.reports++;
    this._o.send(this._o.sample());
    this._schedule(this._interval);
  }

  /** Something significant changed: report soon, but not more often than HEALTH_MIN_GAP_MS. */
  changed(): void {
    if (this._changeTimer >= 0) return;
    const wait = this._last + HEALTH_MIN_GAP_MS - this._o.timers.now();
    if (wait <= 0) {
      this.report();
      return;
    }
    const self = this;
    this._changeTimer = this._o.timers.setTimeout(function () {
      self._changeTimer = -1;
      self.report();
    }, wait);
  }

  _schedule(ms: number): void {
    const self = this;
    if (this._timer >= 0) this._o.timers.clearTimeout(this._timer);
    this._timer = this._o.timers.setTimeout(function () {
      self._timer = -1;
      self.report();
    }, ms);
  }
}
