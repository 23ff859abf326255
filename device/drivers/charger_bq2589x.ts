// Driver for a TI BQ2589x-class (BQ25890 / BQ25892 / BQ25895) I2C switch-mode charger.
// FIRMWARE: engine subset (see ENGINES.md): synchronous I2C through the platform's I2cBus, plain
// objects, no exceptions out of the driver. Every call returns false / null when the chip does not
// answer (NACK) or a written value does not read back.
//
// Register map used (BQ25895 datasheet SLUSC88; BQ25890 SLUSC86 for the JEITA bits):
//   REG00 EN_HIZ (7), EN_ILIM (6), IINLIM (5:0) = 100 mA + 50 mA x code (100..3250 mA)
//   REG02 CONV_START (7), CONV_RATE (6): ADC one-shot / continuous
//   REG03 WD_RST (6, self-clearing), CHG_CONFIG (4), SYS_MIN (3:1) = 3.0 V + 0.1 V x code
//   REG04 ICHG (6:0) = 64 mA x code (0..5056 mA; 0 disables charging)
//   REG05 IPRECHG (7:4), ITERM (3:0) = 64 mA + 64 mA x code (64..1024 mA)
//   REG06 VREG (7:2) = 3840 mV + 16 mV x code (3840..4608 mV), BATLOWV (1), VRECHG (0)
//   REG07 EN_TERM (7), WATCHDOG (5:4) off / 40 / 80 / 160 s, EN_TIMER (3), CHG_TIMER (2:1)
//   REG0B VBUS_STAT (7:5), CHRG_STAT (4:3) not charging / pre-charge / fast / done, PG_STAT (2),
//         VSYS_STAT (0)
//   REG0C WATCHDOG_FAULT (7), BOOST_FAULT (6), CHRG_FAULT (5:4) input / thermal shutdown / safety
//         timer, BAT_FAULT (3) battery over-voltage, NTC_FAULT (2:0). Latched: the first read after
//         a fault reports it, the next one the present state. It must be read alone (no burst).
//   REG0E THERM_STAT (7), BATV (6:0) = 2304 mV + 20 mV x code;  REG0F SYSV, same scale
//   REG10 TSPCT (6:0) = 21 % + 0.465 % x code (TS pin as a percentage of REGN)
//   REG11 VBUS_GD (7), VBUSV (6:0) = 2600 mV + 100 mV x code;  REG12 ICHGR (6:0) = 50 mA x code
//   REG14 REG_RST (7), PN (5:3) 000 BQ25890 / 010 BQ25892 / 111 BQ25895, TS_PROFILE (2), DEV_REV
// NTC_FAULT depends on TS_PROFILE (read at probe): JEITA (1): 010 warm, 011 cool, 101 cold, 110
// hot; hot/cold (0): 001 cold, 010 hot.
//
// The chip's I2C watchdog (40 s after power-up writes) puts every charge register back to its
// default unless kickWatchdog() runs in time or setWatchdog(0) disables it; WATCHDOG_FAULT in
// readStatus() says it happened (and is also reported once after power-on: the chip starts in
// default mode). ADC values are those of the last completed conversion: startAdc() starts a
// one-shot conversion (up to 1 s), whose result a later readStatus() sees.

import type { I2cBus } from "../platform/platform.ts";
import { ChargeState } from "../../protocol/generated/device_codec.ts";

export const BQ2589X_DEFAULT_ADDRESS = 0x6a;

// Fault bits of ChargerStatus.faults (also Health.charger_faults).
export const CHARGER_FAULT_WATCHDOG = 0x001;
export const CHARGER_FAULT_BOOST = 0x002;
export const CHARGER_FAULT_INPUT = 0x004;
export const CHARGER_FAULT_THERMAL = 0x008;
export const CHARGER_FAULT_SAFETY_TIMER = 0x010;
export const CHARGER_FAULT_BATTERY_OVP = 0x020;
export const CHARGER_FAULT_NTC_COLD = 0x040;
export const CHARGER_FAULT_NTC_HOT = 0x080;
export const CHARGER_FAULT_NTC_COOL = 0x100;
export const CHARGER_FAULT_NTC_WARM = 0x200;

// Part numbers (REG14 PN).
export const BQ2589X_PN_BQ25890 = 0;
export const BQ2589X_PN_BQ25892 = 2;
export const BQ2589X_PN_BQ25895 = 7;

export interface ChargerConfig {
  inputCurrentLimitMa: number;
  chargeCurrentMa: number;
  chargeVoltageMv: number;
  prechargeCurrentMa: number;
  terminationCurrentMa: number;
  /** I2C watchdog: 0 (off), 40, 80 or 160 s. */
  watchdogS: number;
}

export interface ChargerStatus {
  vbusPresent: boolean;
  powerGood: boolean;
  /** ChargeState of the codec: NOT_CHARGING, PRE_CHARGE, FAST_CHARGE, DONE. */
  chargeState: number;
  /** CHARGER_FAULT_* bits. */
  faults: number;
  thermalRegulation: boolean;
  batteryMv: number;
  systemMv: number;
  /** 0 when VBUS is not good. */
  vbusMv: number;
  chargeCurrentMa: number;
  /** TS pin as % of REGN (21..80). */
  tsPercent: number;
}

export interface Bq2589xOptions {
  bus: I2cBus;
  /** 7-bit I2C address, 0x6A by default. */
  address?: number;
}

const REG_INPUT = 0x00;
const REG_ADC = 0x02;
const REG_SYS = 0x03;
const REG_ICHG = 0x04;
const REG_PRE_TERM = 0x05;
const REG_VREG = 0x06;
const REG_TIMER = 0x07;
const REG_STATUS = 0x0b;
const REG_FAULT = 0x0c;
const REG_BATV = 0x0e;
const REG_ID = 0x14;

const BIT_WD_RST = 0x40;
const BIT_CHG_CONFIG = 0x10;
const BIT_CONV_START = 0x80;
const BIT_CONV_RATE = 0x40;
const BIT_EN_HIZ = 0x80;

// The TS divider of the datasheet (0-60 °C design): RT1 from REGN to TS, RT2 from TS to ground,
// the battery pack's 10 kOhm (25 °C) NTC with B = 3435 K in parallel with RT2.
const RT1_OHM = 5240;
const RT2_OHM = 30310;
const NTC_R25_OHM = 10000;
const NTC_B = 3435;
const T25_K = 298.15;
const MIN_DECIC = -400;
const MAX_DECIC = 1250;

/** Temperature (0.1 °C) from the TS pin voltage as % of REGN; clamped to -40..125 °C. */
export function tsPercentToDeciC(p: number): number {
  const f = p / 100;
  if (!(f > 0)) return MAX_DECIC; // shorted thermistor: as hot as it gets
  if (f >= 1) return MIN_DECIC;
  const rp = (f * RT1_OHM) / (1 - f); // RT2 parallel NTC
  if (rp >= RT2_OHM) return MIN_DECIC; // open thermistor (pack removed): as cold as it gets
  const rntc = 1 / (1 / rp - 1 / RT2_OHM);
  const tK = 1 / (1 / T25_K + Math.log(rntc / NTC_R25_OHM) / NTC_B);
  const d = Math.round((tK - 273.15) * 10);
  if (d < MIN_DECIC) return MIN_DECIC;
  if (d > MAX_DECIC) return MAX_DECIC;
  return d;
}

/** TS pin voltage as % of REGN for a battery temperature in 0.1 °C. */
export function deciCToTsPercent(d: number): number {
  const tK = d / 10 + 273.15;
  const rntc = NTC_R25_OHM * Math.exp(NTC_B * (1 / tK - 1 / T25_K));
  const rp = (RT2_OHM * rntc) / (RT2_OHM + rntc);
  return (100 * rp) / (RT1_OHM + rp);
}

function isNum(v: number): boolean {
  return typeof v === "number" && v === v && v !== Infinity && v !== -Infinity;
}

/** Register code for `value` in [min, max] with `step`, rounded down; -1 when out of range. */
function codeFor(value: number, min: number, max: number, step: number): number {
  if (!isNum(value) || value < min || value > max) return -1;
  return Math.floor((value - min) / step);
}

export class Bq2589x {
  readonly address: number;
  /** REG14 PN of the chip found by probe(), -1 before. */
  partNumber: number;
  /** TS_PROFILE: true = JEITA (warm/cool reported), false = hot/cold only. */
  jeita: boolean;

  private _bus: I2cBus;
  private _one: Uint8Array;
  private _two: Uint8Array;
  private _probed: boolean;

  constructor(options: Bq2589xOptions) {
    this._bus = options.bus;
    this.address = options.address ?? BQ2589X_DEFAULT_ADDRESS;
    this.partNumber = -1;
    this.jeita = true;
    this._one = new Uint8Array(1);
    this._two = new Uint8Array(2);
    this._probed = false;
  }

  /** Whether a BQ2589x answers at the address (REG14 part number); reads its TS profile. */
  probe(): boolean {
    const id = this._read(REG_ID, 1);
    if (id === null) return false;
    const pn = (id[0] >> 3) & 7;
    if (pn !== BQ2589X_PN_BQ25890 && pn !== BQ2589X_PN_BQ25892 && pn !== BQ2589X_PN_BQ25895) return false;
    if ((id[0] & 0x80) !== 0) return false; // REG_RST always reads 0
    this.partNumber = pn;
    this.jeita = (id[0] & 0x04) !== 0;
    this._probed = true;
    return true;
  }

  /**
   * Writes the whole charge configuration (input limit, charge current and voltage, pre-charge
   * and termination currents, watchdog), leaves high-impedance mode, resets the watchdog and
   * reads everything back. false when anything is out of range, NACKed or reads back wrong.
   */
  configure(c: ChargerConfig): boolean {
    if (c === null || typeof c !== "object") return false;
    const iin = codeFor(c.inputCurrentLimitMa, 100, 3250, 50);
    const ichg = codeFor(c.chargeCurrentMa, 0, 5056, 64);
    const vreg = codeFor(c.chargeVoltageMv, 3840, 4608, 16);
    const pre = codeFor(c.prechargeCurrentMa, 64, 1024, 64);
    const term = codeFor(c.terminationCurrentMa, 64, 1024, 64);
    const wd = Bq2589x.watchdogCode(c.watchdogS);
    if (iin < 0 || ichg < 0 || vreg < 0 || pre < 0 || term < 0 || wd < 0) return false;
    const regs = this._read(REG_INPUT, 8);
    if (regs === null) return false;
    const want = new Uint8Array(8);
    want.set(regs);
    want[REG_INPUT] = (regs[REG_INPUT] & 0x40) | iin; // EN_HIZ off, EN_ILIM kept
    want[REG_ICHG] = (regs[REG_ICHG] & 0x80) | ichg;
    want[REG_PRE_TERM] = (pre << 4) | term;
    want[REG_VREG] = (vreg << 2) | (regs[REG_VREG] & 0x03);
    want[REG_TIMER] = (regs[REG_TIMER] & 0xcf) | (wd << 4);
    if (!this._write(REG_INPUT, want[REG_INPUT])) return false;
    if (!this._write(REG_ICHG, want[REG_ICHG])) return false;
    if (!this._write(REG_PRE_TERM, want[REG_PRE_TERM])) return false;
    if (!this._write(REG_VREG, want[REG_VREG])) return false;
    if (!this._write(REG_TIMER, want[REG_TIMER])) return false;
    if (!this.kickWatchdog()) return false;
    const back = this._read(REG_INPUT, 8);
    if (back === null) return false;
    return (
      back[REG_INPUT] === want[REG_INPUT] &&
      back[REG_ICHG] === want[REG_ICHG] &&
      back[REG_PRE_TERM] === want[REG_PRE_TERM] &&
      back[REG_VREG] === want[REG_VREG] &&
      back[REG_TIMER] === want[REG_TIMER]
    );
  }

  /** Fast-charge current, 0..5056 mA in 64 mA steps (rounded down; 0 stops charging). */
  setChargeCurrent(mA: number): boolean {
    const c = codeFor(mA, 0, 5056, 64);
    return c >= 0 && this._update(REG_ICHG, 0x7f, c);
  }

  /** Charge voltage, 3840..4608 mV in 16 mV steps (rounded down). */
  setChargeVoltage(mV: number): boolean {
    const c = codeFor(mV, 3840, 4608, 16);
    return c >= 0 && this._update(REG_VREG, 0xfc, c << 2);
  }

  /** Input current limit, 100..3250 mA in 50 mA steps (rounded down). */
  setInputCurrentLimit(mA: number): boolean {
    const c = codeFor(mA, 100, 3250, 50);
    return c >= 0 && this._update(REG_INPUT, 0x3f, c);
  }

  /** Pre-charge current, 64..1024 mA in 64 mA steps (rounded down). */
  setPrechargeCurrent(mA: number): boolean {
    const c = codeFor(mA, 64, 1024, 64);
    return c >= 0 && this._update(REG_PRE_TERM, 0xf0, c << 4);
  }

  /** Termination current, 64..1024 mA in 64 mA steps (rounded down). */
  setTerminationCurrent(mA: number): boolean {
    const c = codeFor(mA, 64, 1024, 64);
    return c >= 0 && this._update(REG_PRE_TERM, 0x0f, c);
  }

  /** CHG_CONFIG: charging allowed or not (the system stays powered from the input either way). */
  enableCharging(on: boolean): boolean {
    return this._update(REG_SYS, BIT_CHG_CONFIG, on ? BIT_CHG_CONFIG : 0);
  }

  /** Restarts the chip's I2C watchdog (WD_RST). */
  kickWatchdog(): boolean {
    const r = this._read(REG_SYS, 1);
    if (r === null) return false;
    return this._write(REG_SYS, (r[0] | BIT_WD_RST) & 0xff);
  }

  /** I2C watchdog period: 0 (disabled), 40, 80 or 160 s. */
  setWatchdog(seconds: number): boolean {
    const c = Bq2589x.watchdogCode(seconds);
    return c >= 0 && this._update(REG_TIMER, 0x30, c << 4);
  }

  /** Starts a one-shot ADC conversion; false if continuous conversion is on (nothing to start). */
  startAdc(): boolean {
    const r = this._read(REG_ADC, 1);
    if (r === null || (r[0] & BIT_CONV_RATE) !== 0) return false;
    return this._write(REG_ADC, r[0] | BIT_CONV_START);
  }

  /** ADC continuous conversion (every second, costs REGN quiescent current) on or off. */
  setAdcContinuous(on: boolean): boolean {
    return this._update(REG_ADC, BIT_CONV_RATE, on ? BIT_CONV_RATE : 0);
  }

  /** High-impedance mode: the input is cut off, the battery carries the system. */
  setHighImpedance(on: boolean): boolean {
    return this._update(REG_INPUT, BIT_EN_HIZ, on ? BIT_EN_HIZ : 0);
  }

  /** Status, faults (latched since the last call) and the last ADC results; null: no answer. */
  readStatus(): ChargerStatus | null {
    if (!this._probed && !this.probe()) return null;
    const st = this._read(REG_STATUS, 1);
    if (st === null) return null;
    const s = st[0];
    const fr = this._read(REG_FAULT, 1);
    if (fr === null) return null;
    const f = fr[0];
    const adc = this._read(REG_BATV, 5);
    if (adc === null) return null;
    const vbusStat = (s >> 5) & 7;
    const vbusGood = (adc[3] & 0x80) !== 0;
    const chrgFault = (f >> 4) & 3;
    return {
      vbusPresent: vbusGood || (vbusStat !== 0 && vbusStat !== 7) || chrgFault === 1,
      powerGood: (s & 0x04) !== 0,
      chargeState: Bq2589x.chargeStateOf((s >> 3) & 3),
      faults: this.decodeFaults(f),
      thermalRegulation: (adc[0] & 0x80) !== 0,
      batteryMv: 2304 + 20 * (adc[0] & 0x7f),
      systemMv: 2304 + 20 * (adc[1] & 0x7f),
      vbusMv: vbusGood ? 2600 + 100 * (adc[3] & 0x7f) : 0,
      chargeCurrentMa: 50 * (adc[4] & 0x7f),
      tsPercent: Math.round((21 + 0.465 * (adc[2] & 0x7f)) * 1000) / 1000,
    };
  }

  /** REG0C bits to CHARGER_FAULT_* bits (using the TS profile found by probe()). */
  decodeFaults(f: number): number {
    let out = 0;
    if ((f & 0x80) !== 0) out |= CHARGER_FAULT_WATCHDOG;
    if ((f & 0x40) !== 0) out |= CHARGER_FAULT_BOOST;
    const chrg = (f >> 4) & 3;
    if (chrg === 1) out |= CHARGER_FAULT_INPUT;
    else if (chrg === 2) out |= CHARGER_FAULT_THERMAL;
    else if (chrg === 3) out |= CHARGER_FAULT_SAFETY_TIMER;
    if ((f & 0x08) !== 0) out |= CHARGER_FAULT_BATTERY_OVP;
    const ntc = f & 7;
    if (this.jeita) {
      if (ntc === 2) out |= CHARGER_FAULT_NTC_WARM;
      else if (ntc === 3) out |= CHARGER_FAULT_NTC_COOL;
      else if (ntc === 5) out |= CHARGER_FAULT_NTC_COLD;
      else if (ntc === 6) out |= CHARGER_FAULT_NTC_HOT;
    } else {
      if (ntc === 1 || ntc === 5) out |= CHARGER_FAULT_NTC_COLD;
      else if (ntc === 2 || ntc === 6) out |= CHARGER_FAULT_NTC_HOT;
    }
    return out;
  }

  /** One register's value, or -1 when the chip does not answer. */
  readRegister(reg: number): number {
    const r = this._read(reg, 1);
    return r === null ? -1 : r[0];
  }

  static chargeStateOf(chrgStat: number): number {
    switch (chrgStat) {
      case 1:
        return ChargeState.PRE_CHARGE;
      case 2:
        return ChargeState.FAST_CHARGE;
      case 3:
        return ChargeState.DONE;
      default:
        return ChargeState.NOT_CHARGING;
    }
  }

  static watchdogCode(seconds: number): number {
    switch (seconds) {
      case 0:
        return 0;
      case 40:
        return 1;
      case 80:
        return 2;
      case 160:
        return 3;
      default:
        return -1;
    }
  }

  // ---- I2C helpers ----

  private _read(reg: number, length: number): Uint8Array | null {
    this._one[0] = reg;
    if (!this._bus.write(this.address, this._one)) return null;
    const r = this._bus.read(this.address, length);
    if (r === null || r.length < length) return null;
    return r;
  }

  private _write(reg: number, value: number): boolean {
    this._two[0] = reg;
    this._two[1] = value & 0xff;
    return this._bus.write(this.address, this._two);
  }

  /**
   * Read-modify-write of the bits in `mask`, then a read-back check of the whole register (but
   * for the bits the chip clears by itself: CONV_START, WD_RST, REG_RST).
   */
  private _update(reg: number, mask: number, value: number): boolean {
    const r = this._read(reg, 1);
    if (r === null) return false;
    const v = ((r[0] & ~mask) | (value & mask)) & 0xff;
    if (!this._write(reg, v)) return false;
    const back = this._read(reg, 1);
    let verify = 0xff;
    if (reg === REG_ADC) verify = 0x7f;
    else if (reg === REG_SYS) verify = 0xbf;
    else if (reg === REG_ID) verify = 0x7f;
    return back !== null && (back[0] & verify) === (v & verify);
  }
}
