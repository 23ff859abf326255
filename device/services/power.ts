// Power service: charge management and battery metrics from a BQ2589x charger and a MAX1704x fuel
// gauge. Engine subset (ENGINES.md): callbacks and timers, plain objects, no exceptions out.
//
// MODES (ChargeMode)
// - NORMAL: charge to full (4.208 V, termination by the charger: charge state DONE; the charger
//   restarts by itself when the cell sags VRECHG below full). Sampled every `sampleMs` (30 s).
// - STORAGE: hold the cell at 40-60 % state of charge for months on a rack. Below
//   STORAGE_RESUME_PERMILLE (42 %) the service tops the cell up to STORAGE_TARGET_PERMILLE
//   (52 %) at a gentle `storageChargeCurrentMa` (0.25 C), then disables charging; a cell above the
//   window is never charged and drifts down by self-discharge (faster when `drainAboveWindow`
//   cuts the input so that the device's own load runs from the cell until it is back at 52 %).
//   Sampled every hour (`storageSampleMs`) while idle.
// - MAINTAIN: the same window, but the device only wakes every `maintainWakeMs` (24 h of device
//   time): it checks the cell, tops it up when it is below 42 %, and sleeps again.
// A top-up is controlled by coulomb counting, not by the gauge: a ModelGauge reads the state of
// charge from the voltage, which a charge current pushes up (the gauge reads 5-15 % high while
// charging and a few % low for hours after). So at the start of a top-up the service takes the
// gauge's resting reading s0 and charges (target - s0) x capacity, counted from the charger's
// current ADC. The capacity is the estimated one (design x state of health) or, before there is
// an estimate, 80 % of the design capacity (the replacement threshold), so a top-up undershoots
// rather than overshoots; the first relaxed reading after a top-up starts another one if it is
// still more than 5 % short of the target (by then the first top-up has usually given the state of
// health estimate, so the second one is accurate). While topping up, the
// samples come every `chargingSampleMs` (10 min) or at the moment the count will be reached,
// whichever is sooner. Top-ups and the drain start only on relaxed readings (no charge current
// for SOH_RELAX_MS = 6 h). The gauge (which reads high under charge) stops a top-up at 70 % as a
// safety net, and so does the charger's own DONE.
//
// JEITA (temperature from the charger's TS ADC, enforced here whatever the charger does itself)
//   below 0 C: no charge (TEMPERATURE alarm)      0 to <10 C: charge current halved
//   10 to <40 C: normal                            40 to <45 C: charge voltage 4.1 V
//   45 C and above: no charge (TEMPERATURE alarm)
//   Leaving a no-charge band takes 1 C of hysteresis (charge again at >= 1 C, or < 44 C).
//   The BQ25895's own JEITA profile (TS_PROFILE 1) also acts: it cuts the current to 20 % of
//   ICHG below 10 C and 200 mV off VREG above 45 C; the service's limits are upper bounds on top.
//
// LOW BATTERY (only while running from the cell, i.e. no good input power): LOW_BATTERY at
// <= 15 % (cleared at >= 20 % or on input power); CRITICAL_BATTERY at <= 5 % or <= 3.3 V under
// load: the alarm is raised, charging is disabled, then onCritical(done) lets the firmware finish
// and seal its journal, then shutdown() runs (at done(), or after `criticalTimeoutMs` = 10 s if
// done never comes). Without a gauge reading, LOW_BATTERY falls back on <= 3.5 V.
// RESTART: after that shutdown the device stays down until good input power (VBUS present and
// power good), or a cell at RESTART_PERMILLE (10 %, twice the critical level: about 75 minutes at
// 120 mA on 3 Ah before CRITICAL again), or without a gauge reading RESTART_MV (3.6 V, about 10 %
// at rest). The board's power path keeps it off (the simulator models that); where a target's
// shutdown is only a reset, the firmware holds at boot (holdAfterShutdown) instead of looping.
//
// METRICS (Health fields): battery_mv (gauge VCELL, or the charger's BATV ADC without a gauge),
// state of charge (gauge), current (charger ICHGR ADC while charging, else the gauge's CRATE
// times the capacity: negative when draining), temperature (TS ADC through tsPercentToDeciC),
// charge state, charger fault bits, cycle count, state of health, discharge rate (gauge CRATE).
// - Charge counting: every sample integrates the charger's measured current since the previous
//   sample (trapezoid; a rectangle when the service itself switched charging on or off at the
//   previous sample, when it knows when the current started or stopped).
// - Cycle count: charge throughput; each design capacity put into the cell is one cycle.
//   Noise-free (nothing is counted while not charging), unlike summing gauge SOC steps.
// - State of health: a span runs from the last resting gauge reading before a charge starts (on
//   input power, cell not loaded) to the first resting reading at least SOH_RELAX_MS (6 h) after
//   the charge ended; it is dropped if the cell carries a load meanwhile (no input power, or the
//   drain). Spans of at least 10 % are added up; once they total 30 %, capacity = mAh / (SOC
//   fraction), SOH = capacity / design (the first estimate is taken as is, later ones blended 1:3
//   into it). 0 = not yet estimated. Nothing is persisted here: the firmware may keep
//   cycleCount() and stateOfHealthPermille() and pass them back (options.cycleCount,
//   options.stateOfHealthPermille).
//
// ALARMS (PowerAlarm via onAlarm, each raised once and cleared once; bit 1 << kind in
// powerAlarms()): LOW_BATTERY, CRITICAL_BATTERY (never cleared: the device shuts down),
// OUT_OF_STORAGE_WINDOW (storage/maintain mode, SOC outside 40-60 % for longer than
// `outOfWindowGraceMs`, 72 h by default), CHARGER_FAULT (the charger's fault bits, JEITA
// cool/warm excepted, or POWER_CHARGER_SILENT when it does not answer; raised again when new
// bits appear while it is active, so that no fault is hidden), TEMPERATURE (outside the JEITA
// charge window), NO_BATTERY (the gauge, powered by the cell, is silent and TS reads an open
// thermistor), AGEING_CELL (SOH < 80 %, cleared at 82 %), GAUGE_FAULT (no answer twice in a row,
// or a reading out of range).
//
// CHARGER WATCHDOG: when the sampling cadence is at most 80 s the charger's I2C watchdog runs
// (160 s) and every sample kicks it; with longer cadences (storage, maintain) it is disabled, so
// that the charger keeps the settings of this service while the MCU sleeps. A watchdog fault
// (registers back at their defaults) makes the service write its settings again. The fault the
// chip latches at power-on (it starts in default mode) is ignored at the first sample.
//
// ADC: every scheduled sample starts a one-shot conversion of the charger's monitor and reads the
// result ADC_SETTLE_MS later (tCONV is at most 1 s in the datasheet). sample() on demand reads
// the latest conversion.

import type { Timers, WallClock } from "../platform/platform.ts";
import {
  Bq2589x,
  CHARGER_FAULT_NTC_COLD,
  CHARGER_FAULT_NTC_COOL,
  CHARGER_FAULT_NTC_HOT,
  CHARGER_FAULT_NTC_WARM,
  CHARGER_FAULT_WATCHDOG,
  tsPercentToDeciC,
  type ChargerStatus,
} from "../drivers/charger_bq2589x.ts";
import { Max1704x, type GaugeReading } from "../drivers/fuel_gauge_max1704x.ts";
import { ChargeMode, ChargeState, PowerAlarmKind, Verdict, type Health, type PowerAlarm } from "../../protocol/generated/device_codec.ts";

export const POWER_SAMPLE_MS = 30000;
export const POWER_STORAGE_SAMPLE_MS = 3600000;
export const POWER_MAINTAIN_WAKE_MS = 86400000;
export const POWER_CHARGING_SAMPLE_MS = 600000;
export const MIN_CHARGING_SAMPLE_MS = 5000;
export const ADC_SETTLE_MS = 1000;
export const DEFAULT_DESIGN_CAPACITY_MAH = 3000;

export const STORAGE_LOW_PERMILLE = 400;
export const STORAGE_HIGH_PERMILLE = 600;
export const STORAGE_RESUME_PERMILLE = 420;
export const STORAGE_TARGET_PERMILLE = 520;
/** The first relaxed reading after a top-up this far below the target starts another one. */
export const STORAGE_RECHECK_PERMILLE = 50;
/** A top-up stops if the gauge (which reads high under charge) reaches this. */
export const STORAGE_CHARGE_CAP_PERMILLE = 700;
/** Capacity assumed for top-ups before the state of health is estimated, permille of design. */
export const UNKNOWN_SOH_PERMILLE = 800;
export const OUT_OF_WINDOW_GRACE_MS = 72 * 3600000;

export const LOW_BATTERY_PERMILLE = 150;
export const LOW_BATTERY_CLEAR_PERMILLE = 200;
export const CRITICAL_PERMILLE = 50;
export const CRITICAL_MV = 3300;
export const CRITICAL_TIMEOUT_MS = 10000;
/** Without a gauge reading, the low-battery warning falls back on the cell voltage. */
export const LOW_BATTERY_MV = 3500;
/** A device shut down on a flat cell restarts without input power only from this charge up. */
export const RESTART_PERMILLE = 100;
export const RESTART_MV = 3600;
/** How often a device held after a low-battery shutdown checks for input power. */
export const RESTART_POLL_MS = 60000;

export const FULL_CHARGE_MV = 4208;
export const WARM_CHARGE_MV = 4100;
export const JEITA_COLD_DECIC = 0;
export const JEITA_COOL_DECIC = 100;
export const JEITA_WARM_DECIC = 400;
export const JEITA_HOT_DECIC = 450;
export const JEITA_HYSTERESIS_DECIC = 10;

export const AGEING_SOH_PERMILLE = 800;
export const AGEING_CLEAR_PERMILLE = 820;
export const SOH_RELAX_MS = 6 * 3600000;
export const SOH_MIN_SPAN_PERMILLE = 100;
export const SOH_ESTIMATE_SPAN_PERMILLE = 300;
/**
 * TS at the top of the ADC's range (80 % of REGN): the pack's thermistor is not connected. With
 * the gauge (powered by the cell) silent too, the pack is not there.
 */
export const TS_OPEN_PERCENT = 79.5;
/** Bit set in chargerFaults when the charger does not answer on the bus at all. */
export const POWER_CHARGER_SILENT = 1 << 30;

/** JEITA bands. */
export const BAND_UNKNOWN = 0;
export const BAND_COLD = 1;
export const BAND_COOL = 2;
export const BAND_NORMAL = 3;
export const BAND_WARM = 4;
export const BAND_HOT = 5;

const WATCHDOG_S = 160;
const WATCHDOG_MAX_CADENCE_MS = 80000;

export interface PowerMetrics {
  batteryMv: number;
  stateOfChargePermille: number;
  /** Positive charging, negative discharging. */
  currentMa: number;
  temperatureDecic: number;
  chargeState: number;
  chargerFaults: number;
  chargeMode: number;
  cycleCount: number;
  stateOfHealthPermille: number;
  dischargePermillePerHour: number;
  powerAlarms: number;
  /** Good input power (VBUS present and power good). */
  externalPower: boolean;
  /** The input is cut off (high impedance) so that the load drains the cell into the window. */
  draining: boolean;
  /** Charging is enabled by this service (the charger may still be done or faulted). */
  chargeEnabled: boolean;
  /** Storage/maintain: a top-up is in progress. */
  toppingUp: boolean;
  /** The JEITA band (BAND_*). */
  band: number;
  gaugeOk: boolean;
  chargerOk: boolean;
  /** Monotonic time of the sample. */
  atMs: number;
}

export interface PowerOptions {
  charger: Bq2589x;
  gauge: Max1704x;
  timers: Timers;
  clock: WallClock;
  /** ChargeMode; NORMAL when absent or not a valid mode. */
  mode?: number;
  /** The firmware journals it as RECORD_KIND_POWER_ALARM. */
  onAlarm: (alarm: PowerAlarm) => void;
  /** Seal the journal, then call done; the service then calls shutdown. */
  onCritical: (done: () => void) => void;
  shutdown: () => void;
  designCapacityMah?: number;
  /** Fast-charge current in normal mode; default 0.5 C of the design capacity. */
  chargeCurrentMa?: number;
  /** Top-up current in storage and maintain modes; default 0.25 C. */
  storageChargeCurrentMa?: number;
  /** Default 2000 mA. */
  inputCurrentLimitMa?: number;
  sampleMs?: number;
  storageSampleMs?: number;
  maintainWakeMs?: number;
  chargingSampleMs?: number;
  outOfWindowGraceMs?: number;
  criticalTimeoutMs?: number;
  /**
   * Storage/maintain above the window: cut the input (high impedance) so that the device's own
   * load runs from the cell and brings it down faster than self-discharge alone. Default true.
   */
  drainAboveWindow?: boolean;
  /** Restored by the firmware from its own storage, if it keeps them. */
  cycleCount?: number;
  stateOfHealthPermille?: number;
  /** Called after every sample (e.g. for telemetry.changed() when alarms change). */
  onSample?: (m: PowerMetrics) => void;
}

function validMode(mode: unknown): boolean {
  return mode === ChargeMode.NORMAL || mode === ChargeMode.STORAGE || mode === ChargeMode.MAINTAIN;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Faults that raise CHARGER_FAULT: every bit except the JEITA cool/warm indications. */
function alarmFaultBits(faults: number): number {
  return faults & ~(CHARGER_FAULT_NTC_COOL | CHARGER_FAULT_NTC_WARM);
}

function gaugeSane(g: GaugeReading | null): boolean {
  if (g === null) return false;
  if (!(g.voltageMv >= 2000 && g.voltageMv <= 5000)) return false;
  if (!(g.socPermille >= 0 && g.socPermille <= 1000)) return false;
  return true;
}

export class PowerService {
  _o: PowerOptions;
  _charger: Bq2589x;
  _gauge: Max1704x;
  _t: Timers;
  mode: number;
  _design: number;
  _ichg: number;
  _ichgStorage: number;
  _running: boolean;
  _timer: number;
  _critTimer: number;
  /** 0 running, 1 critical (waiting for the firmware), 2 shut down. */
  _crit: number;
  _chargerPresent: boolean;
  _maskWd: boolean;
  // What was last written to the charger (-1: unknown, write it).
  _wEnable: number;
  _wCurrent: number;
  _wVoltage: number;
  _wWatchdog: number;
  _wHiz: number;
  _justEnabled: boolean;
  _band: number;
  _alarms: number;
  _faultBits: number;
  _outSince: number;
  _m: PowerMetrics;
  // Storage top-up and drain.
  _hold: boolean;
  _recheck: boolean;
  _drain: boolean;
  _topMah: number;
  _topTargetMah: number;
  _chargeMa: number;
  // Charge counting: the current assumed to flow just after the previous sample (-1: started then).
  _lastMs: number;
  _flowMa: number;
  _chargedMah: number;
  _cycleBase: number;
  // State of health.
  _soh: number;
  _prevRestSoc: number;
  _lastChargeMs: number;
  _spanOn: boolean;
  _spanSoc0: number;
  _spanMah: number;
  _sumMah: number;
  _sumSoc: number;
  /** Alarm records emitted (raised or cleared) since construction. */
  alarmEvents: number;
  samples: number;
  /** Completed storage/maintain top-ups, and the wall-clock time of the last one (0: none). */
  topUps: number;
  lastTopUpWallMs: number;

  constructor(options: PowerOptions) {
    this._o = options;
    this._charger = options.charger;
    this._gauge = options.gauge;
    this._t = options.timers;
    this.mode = validMode(options.mode) ? (options.mode as number) : ChargeMode.NORMAL;
    this._design = options.designCapacityMah ?? DEFAULT_DESIGN_CAPACITY_MAH;
    this._ichg = options.chargeCurrentMa ?? Math.round(this._design / 2);
    this._ichgStorage = options.storageChargeCurrentMa ?? Math.round(this._design / 4);
    this._running = false;
    this._timer = -1;
    this._critTimer = -1;
    this._crit = 0;
    this._chargerPresent = false;
    this._maskWd = false;
    this._wEnable = -1;
    this._wCurrent = -1;
    this._wVoltage = -1;
    this._wWatchdog = -1;
    this._wHiz = -1;
    this._justEnabled = false;
    this._band = BAND_UNKNOWN;
    this._alarms = 0;
    this._faultBits = 0;
    this._outSince = -1;
    this._hold = false;
    this._recheck = false;
    this._drain = false;
    this._topMah = 0;
    this._topTargetMah = 0;
    this._chargeMa = 0;
    this._lastMs = -1;
    this._flowMa = 0;
    this._chargedMah = 0;
    this._cycleBase = options.cycleCount ?? 0;
    this._soh = options.stateOfHealthPermille ?? 0;
    this._prevRestSoc = -1;
    this._lastChargeMs = -1;
    this._spanOn = false;
    this._spanSoc0 = 0;
    this._spanMah = 0;
    this._sumMah = 0;
    this._sumSoc = 0;
    this.alarmEvents = 0;
    this.samples = 0;
    this.topUps = 0;
    this.lastTopUpWallMs = 0;
    this._m = {
      batteryMv: 0,
      stateOfChargePermille: 0,
      currentMa: 0,
      temperatureDecic: 0,
      chargeState: ChargeState.UNKNOWN,
      chargerFaults: 0,
      chargeMode: this.mode,
      cycleCount: this._cycleBase,
      stateOfHealthPermille: this._soh,
      dischargePermillePerHour: 0,
      powerAlarms: 0,
      externalPower: false,
      draining: false,
      chargeEnabled: false,
      toppingUp: false,
      band: BAND_UNKNOWN,
      gaugeOk: false,
      chargerOk: false,
      atMs: 0,
    };
  }

  /** Probes the charger, configures it (charging off until the first sample) and starts sampling. */
  start(): void {
    if (this._running || this._crit === 2) return;
    this._running = true;
    this._chargerPresent = this._charger.probe();
    // The chip starts in default mode with its watchdog fault latched: not a fault of ours.
    this._maskWd = true;
    this._configure(false);
    this._tick();
  }

  /**
   * Stops sampling. The charger keeps its settings (its watchdog, when on, then restores its
   * defaults), except the drain: the input is connected again.
   */
  stop(): void {
    if (this._wHiz === 1) this._wHiz = this._charger.setHighImpedance(false) ? 0 : -1;
    this._drain = false;
    this._running = false;
    if (this._timer >= 0) this._t.clearTimeout(this._timer);
    this._timer = -1;
  }

  /**
   * Whether a device shut down on a flat cell may start again now: good input power, or a cell at
   * RESTART_PERMILLE (RESTART_MV without a gauge reading). True when nothing measures the cell.
   */
  restartAllowed(): boolean {
    const st = this._charger.probe() ? this._charger.readStatus() : null;
    if (st !== null && st.vbusPresent && st.powerGood) return true;
    const g = this._gauge.read();
    if (g !== null && gaugeSane(g)) return g.socPermille >= RESTART_PERMILLE;
    if (st !== null && st.batteryMv > 0) return st.batteryMv >= RESTART_MV;
    return true;
  }

  /**
   * At boot after a LOW_BATTERY shutdown: false when the device may start now; true when it must
   * stay down, and then `resume` is called once restartAllowed() (checked every RESTART_POLL_MS).
   */
  holdAfterShutdown(resume: () => void): boolean {
    if (this._running || this.restartAllowed()) return false;
    this._pollRestart(resume);
    return true;
  }

  _pollRestart(resume: () => void): void {
    const self = this;
    this._timer = this._t.setTimeout(function () {
      self._timer = -1;
      if (self.restartAllowed()) resume();
      else self._pollRestart(resume);
    }, RESTART_POLL_MS);
  }

  /** Changes the charge mode; false (and nothing changes) when `mode` is not a valid ChargeMode. */
  setMode(mode: number): boolean {
    if (!validMode(mode)) return false;
    if (mode === this.mode) return true;
    this.mode = mode;
    this._m.chargeMode = mode;
    this._hold = false;
    this._drain = false;
    this._outSince = -1;
    if (this._running) {
      // Decide again now (with the latest conversion), then resume the cadence of the new mode.
      this.sample();
      this._schedule();
    }
    return true;
  }

  /** Reads both chips now, runs the charge control and the alarms, and returns the metrics. */
  sample(): PowerMetrics {
    if (this._crit === 2) return this._m;
    const now = this._t.now();
    const m = this._m;
    this.samples++;
    let st: ChargerStatus | null = null;
    if (!this._chargerPresent && this._charger.probe()) {
      // Absent at start (or never configured): configure it now.
      this._chargerPresent = true;
      this._configure(false);
    }
    if (this._chargerPresent) {
      st = this._charger.readStatus();
      if (st === null) st = this._charger.readStatus();
    }
    let g: GaugeReading | null = this._gauge.read();
    if (!gaugeSane(g)) g = this._gauge.read();
    const gaugeOk = gaugeSane(g);
    const noBattery = st !== null && !gaugeOk && st.tsPercent >= TS_OPEN_PERCENT;
    const external = st !== null && st.vbusPresent && st.powerGood;

    let faults = st === null ? POWER_CHARGER_SILENT : st.faults;
    if (this._maskWd) faults = faults & ~CHARGER_FAULT_WATCHDOG;
    this._maskWd = false;
    // A watchdog expiry put the charger's registers back at their defaults: write ours again.
    if ((faults & CHARGER_FAULT_WATCHDOG) !== 0) this._configure(true);
    if (st !== null && this._wWatchdog > 0) this._charger.kickWatchdog();

    if (st !== null) {
      m.temperatureDecic = Math.round(tsPercentToDeciC(st.tsPercent));
      this._band = this._bandFor(m.temperatureDecic);
    }
    m.chargerOk = st !== null;
    m.gaugeOk = gaugeOk;
    m.externalPower = external;
    m.chargerFaults = faults >>> 0;
    if (gaugeOk && g !== null) {
      m.stateOfChargePermille = clamp(Math.round(g.socPermille), 0, 1000);
      m.batteryMv = Math.round(g.voltageMv);
      m.dischargePermillePerHour = Math.round(g.cratePermillePerHour);
    } else if (st !== null) {
      m.batteryMv = noBattery ? 0 : Math.round(st.batteryMv);
      m.dischargePermillePerHour = 0;
    }
    const charging =
      st !== null && !noBattery && (st.chargeState === ChargeState.FAST_CHARGE || st.chargeState === ChargeState.PRE_CHARGE);
    const chargeMa = charging && st !== null && st.chargeCurrentMa > 0 ? st.chargeCurrentMa : 0;
    this._chargeMa = chargeMa;
    m.chargeState = noBattery ? ChargeState.NO_BATTERY : st === null ? ChargeState.UNKNOWN : st.chargeState;
    if (chargeMa > 0) m.currentMa = Math.round(chargeMa);
    else if (gaugeOk && g !== null && g.cratePermillePerHour < 0) {
      m.currentMa = Math.round((g.cratePermillePerHour * this._capacityMah(false)) / 1000);
    } else m.currentMa = 0;

    this._count(now, chargeMa, external && !noBattery && this._wHiz !== 1, gaugeOk ? m.stateOfChargePermille : -1);
    m.cycleCount = this.cycleCount();
    m.stateOfHealthPermille = this._soh;

    this._alarmsFor(now, st, faults, noBattery, external, gaugeOk);
    this._control(st, gaugeOk, noBattery, external);
    m.band = this._band;
    m.chargeMode = this.mode;
    m.atMs = now;
    this._lowBattery(noBattery, external, gaugeOk);
    // What flows after this sample, for the next interval's count.
    if (this._wEnable === 1 && external && !noBattery && this._wHiz !== 1) this._flowMa = chargeMa > 0 ? chargeMa : this._justEnabled ? -1 : 0;
    else this._flowMa = 0;
    this._justEnabled = false;
    m.chargeEnabled = this._wEnable === 1;
    m.draining = this._wHiz === 1;
    m.toppingUp = this._hold;
    m.powerAlarms = this._alarms;
    if (this._o.onSample !== undefined) this._o.onSample(m);
    return m;
  }

  /** The metrics of the last sample, without touching the bus. */
  metrics(): PowerMetrics {
    return this._m;
  }

  /** Copies the battery fields of the last sample into a Health report. */
  fillHealth(h: Health): void {
    const m = this._m;
    h.batteryMv = m.batteryMv;
    h.stateOfChargePermille = m.stateOfChargePermille;
    h.currentMa = m.currentMa;
    h.temperatureDecic = m.temperatureDecic;
    h.chargeState = m.chargeState;
    h.chargerFaults = m.chargerFaults;
    h.chargeMode = this.mode;
    h.cycleCount = m.cycleCount;
    h.stateOfHealthPermille = m.stateOfHealthPermille;
    h.dischargePermillePerHour = m.dischargePermillePerHour;
    h.powerAlarms = this._alarms;
  }

  /** Bit (1 << PowerAlarmKind) set for each active alarm. */
  powerAlarms(): number {
    return this._alarms;
  }

  cycleCount(): number {
    return this._cycleBase + Math.floor(this._chargedMah / this._design);
  }

  /** Charge put into the cell since construction (mAh), from the charger's current ADC. */
  chargedMah(): number {
    return this._chargedMah;
  }

  /** Capacity now against design, permille; 0 until estimated. */
  stateOfHealthPermille(): number {
    return this._soh;
  }

  /** Verdict per chip: ABSENT when it does not answer its probe, FAIL when it answers but reads wrong. */
  selfTest(): { charger: number; gauge: number } {
    let charger = Verdict.ABSENT;
    if (this._charger.probe()) charger = this._charger.readStatus() !== null ? Verdict.PASS : Verdict.FAIL;
    let gauge = Verdict.ABSENT;
    if (this._gauge.probe()) gauge = gaugeSane(this._gauge.read()) ? Verdict.PASS : Verdict.FAIL;
    return { charger: charger, gauge: gauge };
  }

  // ---- internals

  /**
   * The capacity for conversions between mAh and state of charge: the estimate, or before there is
   * one the design capacity (`conservative`: UNKNOWN_SOH_PERMILLE of it, for top-ups).
   */
  _capacityMah(conservative: boolean): number {
    const soh = this._soh > 0 ? this._soh : conservative ? UNKNOWN_SOH_PERMILLE : 1000;
    return (this._design * soh) / 1000;
  }

  _cadence(): number {
    const o = this._o;
    if (this._crit !== 0 || this.mode === ChargeMode.NORMAL) return o.sampleMs ?? POWER_SAMPLE_MS;
    const m = this._m;
    if (this._hold && m.externalPower && this._wEnable === 1) {
      // Topping up: the next sample when the count will be reached, at the latest chargingSampleMs.
      const max = o.chargingSampleMs ?? POWER_CHARGING_SAMPLE_MS;
      const ma = this._chargeMa > 0 ? this._chargeMa : this._ichgStorage;
      const left = this._topTargetMah - this._topMah;
      let wait = Math.ceil(((left > 0 ? left : 0) / ma) * 3600000);
      if (wait > max) wait = max;
      if (wait < MIN_CHARGING_SAMPLE_MS) wait = MIN_CHARGING_SAMPLE_MS;
      return wait;
    }
    if (this.mode === ChargeMode.MAINTAIN) return o.maintainWakeMs ?? POWER_MAINTAIN_WAKE_MS;
    return o.storageSampleMs ?? POWER_STORAGE_SAMPLE_MS;
  }

  /** Start a conversion; read it ADC_SETTLE_MS later. */
  _tick(): void {
    const self = this;
    if (!this._running) return;
    if (this._chargerPresent) this._charger.startAdc();
    this._timer = this._t.setTimeout(function () {
      self._timer = -1;
      if (!self._running) return;
      self.sample();
      if (self._running) self._schedule();
    }, ADC_SETTLE_MS);
  }

  _schedule(): void {
    const self = this;
    if (this._timer >= 0) this._t.clearTimeout(this._timer);
    const cadence = this._cadence();
    this._setWatchdog(cadence <= WATCHDOG_MAX_CADENCE_MS ? WATCHDOG_S : 0);
    let wait = cadence - ADC_SETTLE_MS;
    if (wait < 0) wait = 0;
    this._timer = this._t.setTimeout(function () {
      self._timer = -1;
      self._tick();
    }, wait);
  }

  _setWatchdog(s: number): void {
    if (!this._chargerPresent || s === this._wWatchdog) return;
    if (this._charger.setWatchdog(s)) this._wWatchdog = s;
    else this._wWatchdog = -1;
  }

  /** Writes the whole charger configuration (at start, and after a watchdog reset). */
  _configure(keepEnable: boolean): void {
    if (!this._chargerPresent) return;
    const enable = keepEnable && this._wEnable === 1;
    const wd = this._wWatchdog > 0 ? this._wWatchdog : 0;
    const ichg = this.mode === ChargeMode.NORMAL ? this._ichg : this._ichgStorage;
    const ok = this._charger.configure({
      inputCurrentLimitMa: this._o.inputCurrentLimitMa ?? 2000,
      chargeCurrentMa: ichg,
      chargeVoltageMv: FULL_CHARGE_MV,
      prechargeCurrentMa: 128,
      terminationCurrentMa: 128,
      watchdogS: wd,
    });
    this._wCurrent = ok ? ichg : -1;
    this._wVoltage = ok ? FULL_CHARGE_MV : -1;
    this._wWatchdog = ok ? wd : -1;
    this._wHiz = ok ? 0 : -1; // configure() leaves high-impedance mode
    this._wEnable = -1;
    this._applyEnable(enable);
  }

  _applyEnable(on: boolean): void {
    const want = on ? 1 : 0;
    if (this._wEnable === want) return;
    const ok = this._charger.enableCharging(on);
    if (ok && on && this._wEnable !== 1) this._justEnabled = true;
    this._wEnable = ok ? want : -1;
  }

  _bandFor(t: number): number {
    const was = this._band;
    if (t < JEITA_COLD_DECIC) return BAND_COLD;
    if (was === BAND_COLD && t < JEITA_COLD_DECIC + JEITA_HYSTERESIS_DECIC) return BAND_COLD;
    if (t >= JEITA_HOT_DECIC) return BAND_HOT;
    if (was === BAND_HOT && t >= JEITA_HOT_DECIC - JEITA_HYSTERESIS_DECIC) return BAND_HOT;
    if (t < JEITA_COOL_DECIC) return BAND_COOL;
    if (t >= JEITA_WARM_DECIC) return BAND_WARM;
    return BAND_NORMAL;
  }

  /**
   * Charge counting since the previous sample (cycles, top-up progress) and the state-of-health
   * spans. `unloaded`: on input power with the cell carrying no load; `soc` -1 when unknown.
   */
  _count(now: number, ma: number, unloaded: boolean, soc: number): void {
    let mah = 0;
    if (this._lastMs >= 0 && now > this._lastMs) {
      const h = (now - this._lastMs) / 3600000;
      mah = this._flowMa < 0 ? ma * h : ((this._flowMa + ma) / 2) * h;
    }
    this._lastMs = now;
    this._chargedMah += mah;
    if (this._hold) this._topMah += mah;
    if (ma > 0) this._lastChargeMs = now;
    if (!unloaded) {
      // The cell carried a load: no span can be trusted across this.
      this._spanOn = false;
      this._prevRestSoc = -1;
      return;
    }
    if (this._spanOn) this._spanMah += mah;
    if (ma > 0) {
      if (!this._spanOn && this._prevRestSoc >= 0) {
        this._spanOn = true;
        this._spanSoc0 = this._prevRestSoc;
        this._spanMah = mah;
      }
      this._prevRestSoc = -1;
      return;
    }
    if (soc < 0) return;
    this._prevRestSoc = soc;
    if (this._spanOn && this._lastChargeMs >= 0 && now - this._lastChargeMs >= SOH_RELAX_MS) this._closeSpan(soc);
  }

  _closeSpan(soc: number): void {
    this._spanOn = false;
    const d = soc - this._spanSoc0;
    if (d < SOH_MIN_SPAN_PERMILLE || this._spanMah <= 0) return;
    this._sumMah += this._spanMah;
    this._sumSoc += d;
    if (this._sumSoc < SOH_ESTIMATE_SPAN_PERMILLE) return;
    const capacity = (this._sumMah * 1000) / this._sumSoc;
    const est = Math.round((capacity * 1000) / this._design);
    this._soh = this._soh > 0 ? Math.round((this._soh * 3 + est) / 4) : est;
    this._sumMah = 0;
    this._sumSoc = 0;
  }

  _alarm(kind: number, active: boolean): void {
    const bit = 1 << kind;
    const was = (this._alarms & bit) !== 0;
    if (was === active) return;
    this._alarms = active ? this._alarms | bit : this._alarms & ~bit;
    this._emit(kind, active);
  }

  _emit(kind: number, active: boolean): void {
    const m = this._m;
    this.alarmEvents++;
    this._o.onAlarm({
      kind: kind,
      active: active,
      batteryMv: m.batteryMv,
      stateOfChargePermille: m.stateOfChargePermille,
      temperatureDecic: m.temperatureDecic,
      chargerFaults: m.chargerFaults,
      chargeMode: this.mode,
    });
  }

  _alarmsFor(now: number, st: ChargerStatus | null, faults: number, noBattery: boolean, external: boolean, gaugeOk: boolean): void {
    const soc = this._m.stateOfChargePermille;
    // Without a pack, TS reads open (cold): that is the missing battery, not a temperature fault.
    let bits = alarmFaultBits(faults);
    if (noBattery) bits = bits & ~(CHARGER_FAULT_NTC_COLD | CHARGER_FAULT_NTC_HOT);
    // Charger faults: raised again when new bits appear while it is active.
    const faultBit = 1 << PowerAlarmKind.CHARGER_FAULT;
    if (bits !== 0 && (this._alarms & faultBit) !== 0 && (bits & ~this._faultBits) !== 0) this._emit(PowerAlarmKind.CHARGER_FAULT, true);
    else this._alarm(PowerAlarmKind.CHARGER_FAULT, bits !== 0);
    this._faultBits = bits;

    this._alarm(PowerAlarmKind.NO_BATTERY, noBattery);
    if (noBattery) this._alarm(PowerAlarmKind.TEMPERATURE, false);
    else if (st !== null) this._alarm(PowerAlarmKind.TEMPERATURE, this._band === BAND_COLD || this._band === BAND_HOT);
    // The gauge is powered by the cell: without one its silence is expected.
    this._alarm(PowerAlarmKind.GAUGE_FAULT, !noBattery && !gaugeOk);

    if (this._soh > 0 && this._soh < AGEING_SOH_PERMILLE) this._alarm(PowerAlarmKind.AGEING_CELL, true);
    else if (this._soh >= AGEING_CLEAR_PERMILLE) this._alarm(PowerAlarmKind.AGEING_CELL, false);

    const outBit = 1 << PowerAlarmKind.OUT_OF_STORAGE_WINDOW;
    let out = (this._alarms & outBit) !== 0;
    if (this.mode === ChargeMode.NORMAL || noBattery) {
      this._outSince = -1;
      out = false;
    } else if (gaugeOk) {
      if (soc < STORAGE_LOW_PERMILLE || soc > STORAGE_HIGH_PERMILLE) {
        if (this._outSince < 0) this._outSince = now;
        if (now - this._outSince >= (this._o.outOfWindowGraceMs ?? OUT_OF_WINDOW_GRACE_MS)) out = true;
      } else {
        this._outSince = -1;
        out = false;
      }
    }
    this._alarm(PowerAlarmKind.OUT_OF_STORAGE_WINDOW, out);

    // Low battery: only while running from the cell.
    let low = (this._alarms & (1 << PowerAlarmKind.LOW_BATTERY)) !== 0;
    if (noBattery || external) low = false;
    else if (gaugeOk) {
      if (soc <= LOW_BATTERY_PERMILLE) low = true;
      else if (soc >= LOW_BATTERY_CLEAR_PERMILLE) low = false;
    } else if (this._m.batteryMv > 0 && this._m.batteryMv <= LOW_BATTERY_MV) low = true;
    this._alarm(PowerAlarmKind.LOW_BATTERY, low);
  }

  /** Storage/maintain: start, follow and end top-ups, and the drain above the window. */
  _storage(st: ChargerStatus | null, gaugeOk: boolean, noBattery: boolean, external: boolean): void {
    const m = this._m;
    const soc = m.stateOfChargePermille;
    if (!gaugeOk) {
      // No gauge: hold a resting voltage of about 3.70-3.80 V (roughly 40-55 % of a LiCoO2/NMC cell).
      this._drain = false;
      const mv = m.batteryMv;
      if (this._hold && (mv >= 3800 || (st !== null && st.chargeState === ChargeState.DONE))) this._endTopUp();
      else if (!this._hold && mv > 0 && mv < 3700) this._hold = true;
      this._topTargetMah = 1e9;
      return;
    }
    // The gauge reads high under charge and low for hours after one: decide on relaxed readings.
    const relaxed = this._chargeMa <= 0 && (this._lastChargeMs < 0 || this._t.now() - this._lastChargeMs >= SOH_RELAX_MS);
    if (this._hold) {
      const done = st !== null && st.chargeState === ChargeState.DONE;
      if (this._topMah >= this._topTargetMah || done || soc >= STORAGE_CHARGE_CAP_PERMILLE) this._endTopUp();
      else if (this._topMah <= 0) this._topTargetMah = ((STORAGE_TARGET_PERMILLE - soc) * this._capacityMah(true)) / 1000;
    } else if (relaxed && !noBattery && (soc < STORAGE_RESUME_PERMILLE || (this._recheck && soc < STORAGE_TARGET_PERMILLE - STORAGE_RECHECK_PERMILLE))) {
      this._hold = true;
      this._drain = false;
      this._topMah = 0;
      this._topTargetMah = ((STORAGE_TARGET_PERMILLE - soc) * this._capacityMah(true)) / 1000;
    }
    if (relaxed) this._recheck = false;
    // Above the window: let the device's load run from the cell until it is back at the target.
    if (external && !noBattery && !this._hold && this._crit === 0 && this._o.drainAboveWindow !== false) {
      if (!this._drain && relaxed && soc > STORAGE_HIGH_PERMILLE) this._drain = true;
      else if (this._drain && soc <= STORAGE_TARGET_PERMILLE) this._drain = false;
    } else this._drain = false;
  }

  _endTopUp(): void {
    this._hold = false;
    this._recheck = true;
    this.topUps++;
    this.lastTopUpWallMs = this._o.clock.wallMs();
  }

  /** Decides whether the charger may charge, at what current and voltage, and writes what changed. */
  _control(st: ChargerStatus | null, gaugeOk: boolean, noBattery: boolean, external: boolean): void {
    if (!this._chargerPresent) return;
    let want = true;
    let base = this._ichg;
    if (this.mode !== ChargeMode.NORMAL) {
      this._storage(st, gaugeOk, noBattery, external);
      want = this._hold;
      base = this._ichgStorage;
    } else this._drain = false;
    const hiz = this._drain ? 1 : 0;
    if (hiz !== this._wHiz) this._wHiz = this._charger.setHighImpedance(this._drain) ? hiz : -1;
    const band = this._band;
    const allowed = band !== BAND_UNKNOWN && band !== BAND_COLD && band !== BAND_HOT;
    const enable = want && allowed && !noBattery && this._crit === 0;
    const current = band === BAND_COOL ? Math.round(base / 2) : base;
    const voltage = band === BAND_WARM ? WARM_CHARGE_MV : FULL_CHARGE_MV;
    // Disable before anything else when charging must stop; lower the limits before enabling.
    if (!enable) this._applyEnable(false);
    if (current !== this._wCurrent) this._wCurrent = this._charger.setChargeCurrent(current) ? current : -1;
    if (voltage !== this._wVoltage) this._wVoltage = this._charger.setChargeVoltage(voltage) ? voltage : -1;
    if (enable) this._applyEnable(true);
  }

  /** Critical battery: alarm, let the firmware seal its journal, then shut down. */
  _lowBattery(noBattery: boolean, external: boolean, gaugeOk: boolean): void {
    if (this._crit !== 0 || noBattery || external) return;
    const m = this._m;
    const critical =
      (gaugeOk && m.stateOfChargePermille <= CRITICAL_PERMILLE) || (m.batteryMv > 0 && m.batteryMv <= CRITICAL_MV);
    if (!critical) return;
    const self = this;
    this._crit = 1;
    if (this._chargerPresent) this._applyEnable(false);
    this._alarm(PowerAlarmKind.CRITICAL_BATTERY, true);
    let finished = false;
    const finish = function (): void {
      if (finished) return;
      finished = true;
      if (self._critTimer >= 0) self._t.clearTimeout(self._critTimer);
      self._critTimer = -1;
      self.stop();
      self._crit = 2;
      self._o.shutdown();
    };
    this._critTimer = this._t.setTimeout(function () {
      self._critTimer = -1;
      finish();
    }, this._o.criticalTimeoutMs ?? CRITICAL_TIMEOUT_MS);
    this._o.onCritical(finish);
  }
}
