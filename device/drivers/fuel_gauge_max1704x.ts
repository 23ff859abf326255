// Driver for a Maxim MAX1704x-class ModelGauge fuel gauge (MAX17048 one cell, MAX17049 two cells)
// on the I2C bus. FIRMWARE: engine subset (see ENGINES.md): synchronous I2C through the
// platform's I2cBus, plain objects, no exceptions out of the driver; false / null when the chip
// does not answer (NACK) or a written value does not read back.
//
// Registers (MAX17048/MAX17049 datasheet 19-6171): 16 bits, big-endian, at even addresses; a read
// sets the address with a write and then reads any number of bytes (the address increments).
//   0x02 VCELL   78.125 uV/cell per LSB          0x04 SOC     1/256 % per LSB
//   0x06 MODE    Quick-Start (14), EnSleep (13), HibStat (12, read only)
//   0x08 VERSION 0x001X                          0x0A HIBRT   ActThr (15:8, 1.25 mV) HibThr (7:0,
//                                                             0.208 %/h): 0x0000 never hibernate,
//                                                             0xFFFF always
//   0x0C CONFIG  RCOMP (15:8, default 0x97), SLEEP (7), ALSC (6), ALRT (5), ATHD (4:0): the low-SOC
//                alert fires at 32 - ATHD % (1..32 %)
//   0x14 VALRT   MIN (15:8), MAX (7:0), 20 mV per LSB
//   0x16 CRATE   0.208 %/h per LSB, two's complement (positive while charging)
//   0x18 VRESET/ID  VRESET (15:9, 40 mV), Dis (8), ID (7:0)
//   0x1A STATUS  EnVr (14), SC (13) 1 % change, HD (12) low SOC, VR (11) reset voltage, VL (10)
//                below VALRT.MIN, VH (9) above VALRT.MAX, RI (8) reset indicator (not configured)
//   0xFE CMD     0x5400 = power-on reset (the chip does not ACK it)
// read() takes VCELL..STATUS in one 26-byte burst.

import type { I2cBus } from "../platform/platform.ts";

export const MAX1704X_DEFAULT_ADDRESS = 0x36;

// GaugeReading.alertFlags: the STATUS register's flag bits (its high byte).
export const GAUGE_ALERT_RI = 0x01; // reset indicator: the chip was reset and is not configured
export const GAUGE_ALERT_VH = 0x02; // voltage above VALRT.MAX
export const GAUGE_ALERT_VL = 0x04; // voltage below VALRT.MIN
export const GAUGE_ALERT_VR = 0x08; // voltage dipped below VRESET
export const GAUGE_ALERT_HD = 0x10; // state of charge crossed the low threshold (ATHD)
export const GAUGE_ALERT_SC = 0x20; // state of charge changed by 1 % (CONFIG.ALSC)

export interface GaugeReading {
  voltageMv: number;
  /** 0..1000. */
  socPermille: number;
  /** Signed: positive while charging. */
  cratePermillePerHour: number;
  /** CONFIG.ALRT: the ALRT pin is asserted. */
  alert: boolean;
  /** GAUGE_ALERT_* bits. */
  alertFlags: number;
  /** MODE.HibStat. */
  hibernating: boolean;
}

export interface Max1704xOptions {
  bus: I2cBus;
  /** 7-bit I2C address, 0x36 by default. */
  address?: number;
}

const REG_VCELL = 0x02;
const REG_MODE = 0x06;
const REG_VERSION = 0x08;
const REG_HIBRT = 0x0a;
const REG_CONFIG = 0x0c;
const REG_VALRT = 0x14;
const REG_VRESET_ID = 0x18;
const REG_STATUS = 0x1a;
const REG_CMD = 0xfe;

const MODE_QUICK_START = 0x4000;
const MODE_EN_SLEEP = 0x2000;
const MODE_HIB_STAT = 0x1000;
const CONFIG_SLEEP = 0x0080;
const CONFIG_ALRT = 0x0020;
const STATUS_FLAGS = 0x3f00;
const STATUS_RI = 0x0100;

/** HIBRT written by hibernate(false): the chip's own defaults (160 mV, 10 %/h). */
export const MAX1704X_HIBRT_AUTO = 0x8030;
export const MAX1704X_HIBRT_ALWAYS = 0xffff;
export const MAX1704X_HIBRT_NEVER = 0x0000;

function isInt(v: number, min: number, max: number): boolean {
  return typeof v === "number" && Math.floor(v) === v && v >= min && v <= max;
}

export class Max1704x {
  readonly address: number;
  /** VERSION found by probe(), -1 before. */
  version: number;

  private _bus: I2cBus;
  private _one: Uint8Array;
  private _three: Uint8Array;

  constructor(options: Max1704xOptions) {
    this._bus = options.bus;
    this.address = options.address ?? MAX1704X_DEFAULT_ADDRESS;
    this.version = -1;
    this._one = new Uint8Array(1);
    this._three = new Uint8Array(3);
  }

  /** Whether a MAX17048/49 answers at the address (VERSION 0x001X). */
  probe(): boolean {
    const v = this.readRegister(REG_VERSION);
    if (v < 0 || (v & 0xfff0) !== 0x0010) return false;
    this.version = v;
    return true;
  }

  /** Voltage, state of charge, rate and alerts; null when the chip does not answer. */
  read(): GaugeReading | null {
    const r = this._read(REG_VCELL, 26);
    if (r === null) return null;
    const vcell = (r[0] << 8) | r[1];
    const soc = (r[2] << 8) | r[3];
    const mode = (r[4] << 8) | r[5];
    const config = (r[10] << 8) | r[11];
    let crate = (r[20] << 8) | r[21];
    if (crate >= 0x8000) crate -= 0x10000;
    const status = (r[24] << 8) | r[25];
    let permille = Math.round((soc * 10) / 256);
    if (permille > 1000) permille = 1000;
    return {
      voltageMv: Math.round((vcell * 5) / 64),
      socPermille: permille,
      cratePermillePerHour: Math.round(crate * 2.08),
      alert: (config & CONFIG_ALRT) !== 0,
      alertFlags: (status & STATUS_FLAGS) >> 8,
      hibernating: (mode & MODE_HIB_STAT) !== 0,
    };
  }

  /** Restarts the SOC estimate from the present voltage (only right with a relaxed cell). */
  quickStart(): boolean {
    const mode = this.readRegister(REG_MODE);
    if (mode < 0) return false;
    return this._write(REG_MODE, (mode & MODE_EN_SLEEP) | MODE_QUICK_START);
  }

  /** Low state-of-charge alert at `pct` % (1..32): STATUS.HD and the ALRT pin when crossed. */
  setAlertThreshold(pct: number): boolean {
    if (!isInt(pct, 1, 32)) return false;
    return this._update(REG_CONFIG, 0x001f, 32 - pct);
  }

  /** Clears the STATUS alert flags (RI included), then CONFIG.ALRT (releases the ALRT pin). */
  clearAlert(): boolean {
    const status = this.readRegister(REG_STATUS);
    if (status < 0) return false;
    if (!this._write(REG_STATUS, status & ~STATUS_FLAGS & 0xffff)) return false;
    return this._update(REG_CONFIG, CONFIG_ALRT, 0);
  }

  /**
   * true: hibernate now and stay there (HIBRT 0xFFFF: a sample every 45 s, the lowest current);
   * false: back to the chip's automatic thresholds (HIBRT 0x8030).
   */
  hibernate(on: boolean): boolean {
    return this.setHibernateThresholds(on ? MAX1704X_HIBRT_ALWAYS : MAX1704X_HIBRT_AUTO);
  }

  /** Raw HIBRT: 0x0000 never hibernate, 0xFFFF always, else ActThr << 8 | HibThr. */
  setHibernateThresholds(hibrt: number): boolean {
    if (!isInt(hibrt, 0, 0xffff)) return false;
    return this._update(REG_HIBRT, 0xffff, hibrt);
  }

  /** RCOMP (0..255), the model's temperature compensation (0x97 at 20 °C by default). */
  setRcomp(v: number): boolean {
    if (!isInt(v, 0, 255)) return false;
    return this._update(REG_CONFIG, 0xff00, v << 8);
  }

  /** STATUS.VL / VH alerts outside [minMv, maxMv] (0..5100 mV, 20 mV steps, rounded down). */
  setVoltageAlerts(minMv: number, maxMv: number): boolean {
    if (!isInt(minMv, 0, 5100) || !isInt(maxMv, 0, 5100) || minMv > maxMv) return false;
    return this._update(REG_VALRT, 0xffff, (Math.floor(minMv / 20) << 8) | Math.floor(maxMv / 20));
  }

  /** Sleep (no conversions, the lowest current) or wake. */
  sleep(on: boolean): boolean {
    if (!this._update(REG_MODE, MODE_EN_SLEEP, on ? MODE_EN_SLEEP : 0)) return false;
    return this._update(REG_CONFIG, CONFIG_SLEEP, on ? CONFIG_SLEEP : 0);
  }

  /** Power-on reset of the chip; true once it reports RI (reset indicator). */
  reset(): boolean {
    this._three[0] = REG_CMD;
    this._three[1] = 0x54;
    this._three[2] = 0x00;
    this._bus.write(this.address, this._three); // not acknowledged by the chip
    const status = this.readRegister(REG_STATUS);
    return status >= 0 && (status & STATUS_RI) !== 0;
  }

  /** The factory ID byte (VRESET/ID low byte), -1 when the chip does not answer. */
  readId(): number {
    const v = this.readRegister(REG_VRESET_ID);
    return v < 0 ? -1 : v & 0xff;
  }

  /** A 16-bit register, or -1 when the chip does not answer. */
  readRegister(reg: number): number {
    const r = this._read(reg, 2);
    return r === null ? -1 : (r[0] << 8) | r[1];
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
    this._three[0] = reg;
    this._three[1] = (value >> 8) & 0xff;
    this._three[2] = value & 0xff;
    return this._bus.write(this.address, this._three);
  }

  /**
   * Read-modify-write of the bits in `mask`, then a read-back check of the whole register (MODE:
   * EnSleep only, its other bits are commands or status).
   */
  private _update(reg: number, mask: number, value: number): boolean {
    const old = this.readRegister(reg);
    if (old < 0) return false;
    const v = ((old & ~mask) | (value & mask)) & 0xffff;
    if (!this._write(reg, v)) return false;
    const back = this.readRegister(reg);
    const verify = reg === REG_MODE ? MODE_EN_SLEEP : 0xffff;
    return back >= 0 && (back & verify) === (v & verify);
  }
}
