// A model of a Maxim MAX17048 (MAX1704x-class, ModelGauge) fuel gauge at the register level
// (Node side), for the firmware driver (device/drivers/fuel_gauge_max1704x.ts). It reads a
// BatteryModel: the chip is powered from the cell it measures (VDD = cell), so a removed battery
// means no answer on I2C, and a battery put back means a power-on reset.
//
// Register map (MAX17048/MAX17049 datasheet 19-6171), 16-bit big-endian registers at even
// addresses, auto-incrementing byte pointer, 7-bit address 0x36:
//   0x02 VCELL  78.125 uV per LSB (one cell)           0x04 SOC     1/256 % per LSB
//   0x06 MODE   bit 14 Quick-Start, bit 13 EnSleep,     0x08 VERSION 0x001X
//               bit 12 HibStat (read only)
//   0x0A HIBRT  ActThr (15:8, 1.25 mV) HibThr (7:0, 0.208 %/h); 0x0000 never, 0xFFFF always
//   0x0C CONFIG RCOMP (15:8, 0x97), SLEEP (7), ALSC (6), ALRT (5), ATHD (4:0): alert at 32-ATHD %
//   0x14 VALRT  MIN (15:8), MAX (7:0), 20 mV per LSB    0x16 CRATE   0.208 %/h per LSB, signed
//   0x18 VRESET (15:9, 40 mV) Dis (8) / ID (7:0)        0x1A STATUS  EnVr (14), SC (13), HD (12),
//                                                                    VR (11), VL (10), VH (9), RI (8)
//   0xFE CMD    0x5400: power-on reset (the chip does not ACK that write)
// STATUS flags are cleared by writing 0 to them; any flag that becomes set also sets CONFIG.ALRT
// (the ALRT pin), which the host clears by writing 0.
//
// ModelGauge, as modelled: the chip knows no current. It samples VCELL (every 250 ms active, every
// 45 s in hibernate) and runs a model cell (its own OCV table, a few mV off the real cell's, and a
// series resistance scaled by RCOMP) as an observer: the current the model would carry,
// (VCELL - OCV(model SOC)) / R, moves the model SOC (solved exactly between samples, the VCELL
// target taken as a ramp, so a step of hours costs one sample). Under a steady load that cancels the IR drop
// when the model resistance matches the cell's; a cold cell (higher resistance) reads low unless
// the host raises RCOMP. CRATE is the filtered slope of the model SOC. So the reported SOC lags
// and carries a small error (about 1-3 % at room temperature), as on the real chip; it is never
// copied from the battery's truth. Quick-start
// re-seeds the SOC from the instantaneous VCELL (wrong if the cell is under load or not relaxed).
// Hibernate: entered after |CRATE| < HibThr for 6 minutes, left when the OCV estimate and VCELL
// differ by more than ActThr. Sleep (MODE.EnSleep and CONFIG.SLEEP): no conversions.
//
// Every register write the host made is kept in `writes`; `register()` peeks without side effects.

import type { SimI2cDevice } from "./i2c_bus.ts";
import { ocvFromTable, socFromTable, type BatteryModel } from "./battery.ts";

export const MAX17048_DEFAULT_ADDRESS = 0x36;

export const MAX_REG = {
  VCELL: 0x02,
  SOC: 0x04,
  MODE: 0x06,
  VERSION: 0x08,
  HIBRT: 0x0a,
  CONFIG: 0x0c,
  OCV: 0x0e,
  VALRT: 0x14,
  CRATE: 0x16,
  VRESET_ID: 0x18,
  STATUS: 0x1a,
  CMD: 0xfe,
} as const;

export const MAX_STATUS = {
  RI: 0x0100,
  VH: 0x0200,
  VL: 0x0400,
  VR: 0x0800,
  HD: 0x1000,
  SC: 0x2000,
  EN_VR: 0x4000,
} as const;

const MODE_QUICK_START = 0x4000;
const MODE_EN_SLEEP = 0x2000;
const MODE_HIB_STAT = 0x1000;
const CONFIG_SLEEP = 0x0080;
const CONFIG_ALSC = 0x0040;
const CONFIG_ALRT = 0x0020;
const STATUS_FLAGS = 0x3f00;
const POR_COMMAND = 0x5400;

const DEFAULT_HIBRT = 0x8030;
const DEFAULT_CONFIG = 0x971c;
const DEFAULT_VALRT = 0x00ff;
const DEFAULT_VRESET = 0x96; // 3.0 V, comparator enabled
const RCOMP0 = 0x97;

const VCELL_LSB_MV = 0.078125;
const CRATE_LSB = 0.208;
const ACTIVE_SAMPLE_S = 0.25;
const HIBERNATE_SAMPLE_S = 45;
const HIBERNATE_ENTRY_S = 360;
const CRATE_TAU_S = 60;

/** The gauge's own cell model (OCV at 0..100 % in 5 % steps, mV): a few mV off a real cell. */
const GAUGE_OCV_MV = [
  3010, 3470, 3585, 3655, 3695, 3720, 3743, 3762, 3784, 3803, 3826, 3851, 3880, 3911, 3946, 3984, 4023, 4062, 4104,
  4152, 4198,
];

export interface Max17048Options {
  battery: BatteryModel;
  /** VERSION register. Default 0x0012. */
  version?: number;
  /** Factory ID byte (VRESET/ID low byte). Default 0x00. */
  id?: number;
  /** The capacity the gauge's model was built for, mAh. Default: the battery's design capacity. */
  modelCapacityMah?: number;
  /** The resistance of the gauge's model at RCOMP = 0x97, mOhm. Default 300 / capacity in Ah. */
  modelResistanceMohm?: number;
}

export interface WordWrite {
  reg: number;
  value: number;
}

export class Max17048Model implements SimI2cDevice {
  readonly battery: BatteryModel;
  /** Every 16-bit register write the host made, oldest first. */
  readonly writes: WordWrite[] = [];

  private readonly version: number;
  private readonly id: number;
  private readonly modelCapacityMah: number;
  private readonly modelResistanceMohm: number;

  private powered = false;
  private pointer = 0;
  private mode = 0;
  private hibrt = DEFAULT_HIBRT;
  private config = DEFAULT_CONFIG;
  private valrt = DEFAULT_VALRT;
  private vreset = DEFAULT_VRESET;
  private status: number = MAX_STATUS.RI;
  private vcell = 0;
  private socEst = 0;
  private crateEst = 0;
  private ocvEst = 0;
  private lastTarget = 0;
  private hibernating = false;
  private lowRateS = 0;
  private sinceSample = 0;
  private lastSocInt = 0;

  constructor(options: Max17048Options) {
    this.battery = options.battery;
    this.version = options.version ?? 0x0012;
    this.id = (options.id ?? 0) & 0xff;
    this.modelCapacityMah = options.modelCapacityMah ?? options.battery.designCapacityMah;
    this.modelResistanceMohm = options.modelResistanceMohm ?? 300 / (options.battery.designCapacityMah / 1000);
    this.updatePower();
  }

  // ---- host side ----

  /** The gauge's SOC estimate, % (what the SOC register holds, before quantisation). */
  get socEstimatePercent(): number {
    return this.socEst;
  }

  get isHibernating(): boolean {
    return this.powered && this.hibernating;
  }

  get isPowered(): boolean {
    return this.powered;
  }

  /** The ALRT pin (active low on the chip): true while CONFIG.ALRT is set. */
  get alertAsserted(): boolean {
    return this.powered && (this.config & CONFIG_ALRT) !== 0;
  }

  /** A 16-bit register as the host would read it, without side effects. */
  register(reg: number): number {
    if (!this.powered) return 0xffff;
    return this.wordAt(reg & 0xfe);
  }

  /** Power-on reset, as after power loss or the POR command. */
  powerOnReset(): void {
    this.mode = 0;
    this.hibrt = DEFAULT_HIBRT;
    this.config = DEFAULT_CONFIG;
    this.valrt = DEFAULT_VALRT;
    this.vreset = DEFAULT_VRESET;
    this.status = MAX_STATUS.RI;
    this.pointer = 0;
    this.hibernating = false;
    this.lowRateS = 0;
    this.sinceSample = 0;
    this.crateEst = 0;
    this.quickStart();
  }

  // ---- time ----

  step(dtSeconds: number): void {
    if (typeof dtSeconds !== "number" || !Number.isFinite(dtSeconds) || dtSeconds < 0) {
      throw new RangeError(`dtSeconds must be a finite number >= 0, got ${dtSeconds}`);
    }
    this.updatePower();
    if (!this.powered || dtSeconds === 0) return;
    if ((this.mode & MODE_EN_SLEEP) !== 0 && (this.config & CONFIG_SLEEP) !== 0) return;
    this.sinceSample += dtSeconds;
    const period = this.hibernating ? HIBERNATE_SAMPLE_S : ACTIVE_SAMPLE_S;
    if (this.sinceSample + 1e-9 < period) return;
    const elapsed = this.sinceSample;
    this.sinceSample = 0;
    this.sample(elapsed);
  }

  // ---- I2C ----

  write(data: Uint8Array): boolean {
    this.updatePower();
    if (!this.powered) return false;
    if (data.length === 0) return true;
    this.pointer = data[0]!;
    let ack = true;
    for (let i = 1; i + 1 < data.length; i += 2) {
      const reg = (data[0]! + i - 1) & 0xff;
      const value = (data[i]! << 8) | data[i + 1]!;
      if (!this.writeWord(reg & 0xfe, value)) ack = false;
    }
    return ack;
  }

  read(length: number): Uint8Array | null {
    this.updatePower();
    if (!this.powered) return null;
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      const addr = (this.pointer + i) & 0xff;
      const w = this.wordAt(addr & 0xfe);
      out[i] = (addr & 1) === 0 ? w >> 8 : w & 0xff;
    }
    this.pointer = (this.pointer + length) & 0xff;
    return out;
  }

  // ---- internals ----

  private updatePower(): void {
    const on = this.battery.present;
    if (on && !this.powered) {
      this.powered = true;
      this.powerOnReset();
    } else if (!on && this.powered) {
      this.powered = false;
    }
  }

  private wordAt(reg: number): number {
    switch (reg) {
      case MAX_REG.VCELL:
        return this.vcell;
      case MAX_REG.SOC: {
        const v = Math.round(this.socEst * 256);
        return v < 0 ? 0 : v > 0xffff ? 0xffff : v;
      }
      case MAX_REG.MODE:
        return (this.mode & MODE_EN_SLEEP) | (this.hibernating ? MODE_HIB_STAT : 0);
      case MAX_REG.VERSION:
        return this.version;
      case MAX_REG.HIBRT:
        return this.hibrt;
      case MAX_REG.CONFIG:
        return this.config;
      case MAX_REG.VALRT:
        return this.valrt;
      case MAX_REG.CRATE: {
        let c = Math.round(this.crateEst / CRATE_LSB);
        if (c > 32767) c = 32767;
        if (c < -32768) c = -32768;
        return c & 0xffff;
      }
      case MAX_REG.VRESET_ID:
        return (this.vreset << 8) | this.id;
      case MAX_REG.STATUS:
        return this.status;
      default:
        return 0xffff; // OCV (locked), reserved, model table (locked), CMD
    }
  }

  private writeWord(reg: number, value: number): boolean {
    this.writes.push({ reg, value });
    switch (reg) {
      case MAX_REG.MODE:
        this.mode = value & MODE_EN_SLEEP;
        if ((value & MODE_QUICK_START) !== 0) this.quickStart();
        return true;
      case MAX_REG.HIBRT:
        this.hibrt = value;
        if (value === 0) this.hibernating = false;
        else if (value === 0xffff) this.hibernating = true;
        this.lowRateS = 0;
        return true;
      case MAX_REG.CONFIG:
        this.config = value;
        return true;
      case MAX_REG.VALRT:
        this.valrt = value;
        return true;
      case MAX_REG.VRESET_ID:
        this.vreset = value >> 8;
        return true;
      case MAX_REG.STATUS:
        // Flags clear by writing 0 (they cannot be set by the host); EnVr is a setting.
        this.status = (this.status & value & STATUS_FLAGS) | (value & MAX_STATUS.EN_VR);
        return true;
      case MAX_REG.CMD:
        if (value === POR_COMMAND) {
          this.powerOnReset();
          return false; // the chip does not acknowledge the reset command
        }
        return true;
      default:
        return true; // read-only or locked: ignored
    }
  }

  /** Takes a VCELL sample now and re-seeds the SOC from it (quick-start). */
  private quickStart(): void {
    this.vcell = this.measure();
    this.ocvEst = this.vcell * VCELL_LSB_MV;
    this.socEst = 100 * socFromTable(GAUGE_OCV_MV, 0, 5, this.ocvEst);
    this.lastTarget = this.socEst;
    this.crateEst = 0;
    this.lastSocInt = Math.floor(this.socEst);
    if (this.socEst < this.alertThreshold()) this.flag(MAX_STATUS.HD);
  }

  private measure(): number {
    const mv = this.battery.terminalMv();
    const raw = Math.round(mv / VCELL_LSB_MV);
    return raw < 0 ? 0 : raw > 0xffff ? 0xffff : raw;
  }

  private alertThreshold(): number {
    return 32 - (this.config & 0x1f);
  }

  private flag(bit: number): void {
    if ((this.status & bit) === 0) {
      this.status |= bit;
      this.config |= CONFIG_ALRT;
    }
  }

  private sample(elapsed: number): void {
    this.vcell = this.measure();
    const v = this.vcell * VCELL_LSB_MV;
    // ModelGauge as an observer: the model cell (its OCV table, a resistance scaled by RCOMP)
    // carries the current (VCELL - OCV(model SOC)) / R, which moves the model SOC. Locally linear,
    // that is a first-order lag towards the SOC whose OCV is VCELL, with time constant
    // R x C / (dOCV/dSOC): solved exactly, so a long step needs one sample.
    const rOhm = (this.modelResistanceMohm * (this.config >> 8)) / RCOMP0 / 1000;
    const slopeVPerUnit = modelSlopeMvPerPct(this.socEst) / 10;
    const tau = (rOhm * this.modelCapacityMah * 3.6) / slopeVPerUnit;
    // The target moves between samples: taken as a ramp from the last sample's, so that the
    // lag of a steady discharge cancels its IR offset whatever the sampling interval.
    const target = 100 * socFromTable(GAUGE_OCV_MV, 0, 5, v);
    const ramp = (target - this.lastTarget) / elapsed;
    const prev = this.socEst;
    this.socEst = target - ramp * tau + (prev - this.lastTarget + ramp * tau) * Math.exp(-elapsed / tau);
    this.lastTarget = target;
    this.ocvEst = ocvFromTable(GAUGE_OCV_MV, 0, 5, this.socEst / 100);
    const raw = ((this.socEst - prev) / elapsed) * 3600;
    this.crateEst = raw + (this.crateEst - raw) * Math.exp(-elapsed / CRATE_TAU_S);
    this.updateHibernate(elapsed, v);
    this.updateAlerts(prev, v);
  }

  private updateHibernate(elapsed: number, v: number): void {
    if (this.hibrt === 0) {
      this.hibernating = false;
      return;
    }
    if (this.hibrt === 0xffff) {
      this.hibernating = true;
      return;
    }
    const actMv = (this.hibrt >> 8) * 1.25;
    const hibRate = (this.hibrt & 0xff) * CRATE_LSB;
    if (this.hibernating) {
      if (Math.abs(this.ocvEst - v) > actMv) {
        this.hibernating = false;
        this.lowRateS = 0;
      }
    } else if (Math.abs(this.crateEst) < hibRate) {
      this.lowRateS += elapsed;
      if (this.lowRateS >= HIBERNATE_ENTRY_S) this.hibernating = true;
    } else {
      this.lowRateS = 0;
    }
  }

  private updateAlerts(prevSoc: number, v: number): void {
    const vmin = (this.valrt >> 8) * 20;
    const vmax = (this.valrt & 0xff) * 20;
    if (v < vmin) this.flag(MAX_STATUS.VL);
    if (v > vmax) this.flag(MAX_STATUS.VH);
    if ((this.status & MAX_STATUS.EN_VR) !== 0 && (this.vreset & 0x01) === 0 && v < (this.vreset >> 1) * 40) {
      this.flag(MAX_STATUS.VR);
    }
    const thr = this.alertThreshold();
    if (prevSoc >= thr && this.socEst < thr) this.flag(MAX_STATUS.HD);
    const socInt = Math.floor(this.socEst);
    if (socInt !== this.lastSocInt) {
      if ((this.config & CONFIG_ALSC) !== 0) this.flag(MAX_STATUS.SC);
      this.lastSocInt = socInt;
    }
  }
}

/** Slope of the gauge's model OCV around a SOC (%), mV per %. */
function modelSlopeMvPerPct(socPercent: number): number {
  let i = Math.floor(socPercent / 5);
  if (i < 0) i = 0;
  if (i > GAUGE_OCV_MV.length - 2) i = GAUGE_OCV_MV.length - 2;
  return (GAUGE_OCV_MV[i + 1]! - GAUGE_OCV_MV[i]!) / 5;
}
