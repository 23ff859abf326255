// A model of a TI BQ2589x-class (BQ25895) I2C switch-mode charger at the register level (Node
// side), so that the firmware driver (device/drivers/charger_bq2589x.ts) is tested against the
// chip's register map and behaviour, not against a mock of itself. It drives a BatteryModel.
//
// What it follows (BQ25895 datasheet SLUSC88, BQ25890/BQ25892 SLUSC86 for the JEITA profile):
// - I2C address 0x6A; registers REG00..REG14, single and multi-byte read/write with an
//   auto-incrementing pointer. A write to an address above REG14 is NACKed; a read above REG14
//   returns 0xFF. REG0C (faults) does not support multi-read: this model returns 0xFF for it in a
//   burst and leaves its latch alone (stricter than the chip, whose behaviour there is undefined).
// - REG0C latches: a fault is reported by the first read after it happened even if it has gone
//   since, and a second read reports the present condition. NTC_FAULT always reports the TS pin as
//   it is now.
// - Power: the chip runs from VBUS or the battery, whichever is there; with neither it is off
//   (NACK) and comes back through power-on reset: registers at default, default mode (watchdog
//   expired, so the first REG0C read shows WATCHDOG_FAULT).
// - Host mode and default mode: any write with data moves the chip to host mode and starts the
//   I2C watchdog (REG07 WATCHDOG, 40 s by default); WD_RST (REG03 bit 6, self-clearing) restarts
//   it. On expiry: WATCHDOG_FAULT, back to default mode, every register at default except IINLIM,
//   VINDPM, VINDPM_OS, SYS_MIN, ICO/HVDCP/MAXC/AUTO_DPDM and the BATFET bits. In default mode the
//   chip charges on its own with the default parameters (2048 mA, 4.208 V, 12 h timer).
// - Input: on VBUS attach with AUTO_DPDM_EN the source type is detected (VBUS_STAT) and IINLIM
//   is set from it (SDP 500 mA, CDP 1.5 A, DCP 3.25 A, MaxCharge 1.5 A, unknown 500 mA,
//   non-standard 2 A). The converter supplies the system first; what the input limit (IINLIM,
//   and what the source can give) leaves goes to the battery (IDPM_STAT / VDPM_STAT when
//   limiting); with a load beyond it the battery supplements. EN_HIZ stops the converter.
// - Charging (CHG_CONFIG, ICHG > 0, battery present, no TS or timer fault): pre-charge at
//   IPRECHG below BATLOWV (REG06 bit 1: 3.0 V / 2.8 V), fast charge at ICHG (constant current,
//   then constant voltage at VREG with the current tapering), termination when the current falls
//   below ITERM (EN_TERM, not while in DPM or thermal regulation) -> done, BATFET off; recharge when
//   the battery falls VRECHG (100 / 200 mV) below VREG. CHRG_STAT 00 / 01 / 10 / 11.
// - Safety timer (EN_TIMER, CHG_TIMER 5/8/12/20 h; 4 h while below BATLOWV), counting at half
//   rate in DPM or thermal regulation when TMR2X_EN: on expiry CHRG_FAULT = 11 and charging stops
//   until a new cycle (CHG_CONFIG toggled, VBUS re-attached, REG_RST, EN_TIMER cleared).
// - TS pin: a 10 kOhm B=3435 NTC in the battery pack, RT1 = 5.24 kOhm to REGN, RT2 = 30.31 kOhm to
//   ground (the datasheet's 0-60 °C divider). JEITA profile (TS_PROFILE = 1, the default here,
//   as on BQ25890/92): above VT1 73.25 % (below 0 °C) cold, charge suspended; VT2 68.25 % (10 °C)
//   cool, ICHG cut to 20 % (JEITA_ISET = 1, default) or 50 %; below VT3 44.75 % (45 °C) warm, VREG
//   lowered by 200 mV (JEITA_VSET = 0, default); below VT5 34.375 % (60 °C) hot, suspended.
//   NTC_FAULT 000 / 010 warm / 011 cool / 101 cold / 110 hot. The hot/cold profile (TS_PROFILE =
//   0, the plain BQ25895) charges between LTF 73.25 % and TCO 44.75 %, starts only above HTF
//   48.25 %, and reports 001 cold / 010 hot. A removed pack leaves TS at RT2/(RT1+RT2) = 85 %.
// - Battery over-voltage: above 104 % of VREG charging stops and BAT_FAULT is set, until below
//   102 %.
// - Junction temperature = battery (enclosure) temperature + 30 °C/W x losses (92 % efficiency):
//   above TREG the charge current is reduced (THERM_STAT). Regulation keeps it below the 160 °C
//   shutdown, so thermal shutdown (CHRG_FAULT = 10, converter off) comes from fault injection.
// - ADC (REG0E-REG12): one-shot (CONV_START, stays set for tCONV = 8 ms of simulated time, then
//   clears and the result is in the registers) or continuous (CONV_RATE, every step). Until a
//   conversion completes the registers keep the previous result (zero after reset).
//
// Fault injection: bad adapter (input fault), thermal shutdown, battery over-voltage, NTC open or
// short, missing battery, boost fault, safety-timer expiry. Every register write the host made
// is kept in `writes` for tests; `register()` peeks without side effects.
//
// Time only moves through step(dt). step() costs O(1) per state change while not charging
// (a battery in "done" is re-checked every 6 h for recharge); while charging the battery
// subdivides (see BatteryModel.stepCcCv).

import type { SimI2cDevice } from "./i2c_bus.ts";
import type { BatteryModel } from "./battery.ts";

export const BQ25895_DEFAULT_ADDRESS = 0x6a;

export const BQ_REG = {
  INPUT: 0x00,
  BOOST_TEMP: 0x01,
  ADC_CTRL: 0x02,
  SYS_CTRL: 0x03,
  ICHG: 0x04,
  PRE_TERM: 0x05,
  VREG: 0x06,
  TIMER: 0x07,
  IRCOMP: 0x08,
  MISC: 0x09,
  BOOST: 0x0a,
  STATUS: 0x0b,
  FAULT: 0x0c,
  VINDPM: 0x0d,
  BATV: 0x0e,
  SYSV: 0x0f,
  TSPCT: 0x10,
  VBUSV: 0x11,
  ICHGR: 0x12,
  IDPM: 0x13,
  ID: 0x14,
} as const;

const LAST_REG = 0x14;

/** Part numbers in REG14 PN[2:0]. */
export const BQ_PART = { BQ25890: 0b000, BQ25892: 0b010, BQ25895: 0b111 } as const;

/** Power-on defaults (BQ25895). REG14 is built from the part number and TS profile. */
const DEFAULTS = [0x48, 0x06, 0x3d, 0x1a, 0x20, 0x13, 0x5e, 0x9d, 0x03, 0x44, 0x93, 0, 0, 0x12];
/** Bits each register returns to default on watchdog expiry. */
const WATCHDOG_RESET_MASK = [0xc0, 0xe0, 0xe2, 0xf1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xd3, 0xff, 0, 0, 0];

export type VbusSource = "sdp" | "cdp" | "dcp" | "maxcharge" | "unknown" | "nonstandard";

const SOURCE_CODE: Record<VbusSource, number> = { sdp: 1, cdp: 2, dcp: 3, maxcharge: 4, unknown: 5, nonstandard: 6 };
/** IINLIM set by input source detection, mA. */
const SOURCE_IINLIM: Record<VbusSource, number> = {
  sdp: 500,
  cdp: 1500,
  dcp: 3250,
  maxcharge: 1500,
  unknown: 500,
  nonstandard: 2000,
};
/** What each kind of source can deliver before its voltage collapses (VINDPM), mA. */
const SOURCE_MAX_MA: Record<VbusSource, number> = {
  sdp: 500,
  cdp: 1500,
  dcp: 2400,
  maxcharge: 2000,
  unknown: 500,
  nonstandard: 2000,
};

export type Bq25895Fault =
  | "input"
  | "thermal"
  | "battery-ovp"
  | "ntc-open"
  | "ntc-short"
  | "no-battery"
  | "boost"
  | "safety-timer";

export type TsProfile = "jeita" | "hot-cold";

export interface Bq25895Options {
  battery: BatteryModel;
  /** An input source attached at start. Default false. */
  vbus?: boolean;
  /** VBUS voltage, mV. Default 5000. */
  vbusMv?: number;
  /** The kind of source D+/D- detection finds. Default "dcp" (a wall charger or charging rack). */
  source?: VbusSource;
  /** Default "jeita". */
  tsProfile?: TsProfile;
  /** REG14 PN[2:0]. Default BQ25895 (0b111). */
  partNumber?: number;
  /** System load, mA (what the device draws). Default 0. */
  systemLoadMa?: number;
}

// CHRG_STAT values.
export const BQ_CHRG_NOT_CHARGING = 0;
export const BQ_CHRG_PRE_CHARGE = 1;
export const BQ_CHRG_FAST_CHARGE = 2;
export const BQ_CHRG_DONE = 3;

// CHRG_FAULT values.
const CHRG_FAULT_INPUT = 1;
const CHRG_FAULT_THERMAL = 2;
const CHRG_FAULT_TIMER = 3;

// TS zones.
const ZONE_NORMAL = 0;
const ZONE_COLD = 1;
const ZONE_COOL = 2;
const ZONE_WARM = 3;
const ZONE_HOT = 4;

/** TS thresholds, % of REGN. */
const VT1 = 73.25;
const VT2 = 68.25;
const VT3 = 44.75;
const VT5 = 34.375;
const V_HTF = 48.25;

const RT1_KOHM = 5.24;
const RT2_KOHM = 30.31;
const NTC_R25_KOHM = 10;
const NTC_B = 3435;

const ADC_CONV_S = 0.008;
const DONE_CHUNK_S = 6 * 3600;
const EFFICIENCY = 0.92;
const THETA_JA = 30; // °C/W
const VBAT_SHORT_MV = 2000;

/** TS voltage, % of REGN, for a pack NTC at `tempC` in the RT1/RT2 divider. */
export function bqTsPercentAt(tempC: number): number {
  const t = tempC + 273.15;
  const rntc = NTC_R25_KOHM * Math.exp(NTC_B * (1 / t - 1 / 298.15));
  const rp = (RT2_KOHM * rntc) / (RT2_KOHM + rntc);
  return (100 * rp) / (RT1_KOHM + rp);
}

/** TS with the pack (and its NTC) removed. */
export const BQ_TS_OPEN_PERCENT = (100 * RT2_KOHM) / (RT1_KOHM + RT2_KOHM);

export interface RegisterWrite {
  reg: number;
  value: number;
}

export class Bq25895Model implements SimI2cDevice {
  readonly battery: BatteryModel;
  /** System load, mA. The simulation sets it from what the device is doing. */
  systemLoadMa: number;
  /** Every register write the host made (raw byte as written), oldest first. */
  readonly writes: RegisterWrite[] = [];

  private readonly partNumber: number;
  private readonly tsProfile: TsProfile;
  private readonly regs = new Uint8Array(LAST_REG + 1);
  /** ADC result registers REG0E..REG12 (bit 7 of REG0E and REG11 are computed live). */
  private readonly adc = new Uint8Array(5);
  private pointer = 0;

  private powered = false;
  private hostMode = false;
  private wdElapsed = 0;
  private phase = BQ_CHRG_NOT_CHARGING;
  private safetyElapsed = 0;
  private timerFault = false;
  private latchBits = 0; // WATCHDOG_FAULT, BOOST_FAULT, BAT_FAULT
  private latchChrg = 0; // first CHRG_FAULT code since the last read
  private batOvp = false;
  private chargeMa = 0;
  private dpm = false;
  private vdpm = false;
  private thermalReg = false;
  private tjC = 25;
  private adcPending = false;
  private adcElapsed = 0;
  private tsForC = NaN;
  private tsCached = 0;

  private vbus: boolean;
  private vbusMv: number;
  private source: VbusSource;

  private inputFault = false;
  private thermalShutdown = false;
  private forcedOvp = false;
  private ntcOpen = false;
  private ntcShort = false;

  constructor(options: Bq25895Options) {
    this.battery = options.battery;
    this.vbus = options.vbus ?? false;
    this.vbusMv = options.vbusMv ?? 5000;
    this.source = options.source ?? "dcp";
    this.tsProfile = options.tsProfile ?? "jeita";
    this.partNumber = options.partNumber ?? BQ_PART.BQ25895;
    this.systemLoadMa = options.systemLoadMa ?? 0;
    this.updatePower();
  }

  // ---- host side: state, stimuli, fault injection ----

  /** Attaches or removes the input source (an adapter, a USB port, a charging rack). */
  setVbus(on: boolean, options?: { mv?: number; source?: VbusSource }): void {
    if (options?.mv !== undefined) this.vbusMv = options.mv;
    if (options?.source !== undefined) this.source = options.source;
    if (on === this.vbus) return;
    this.vbus = on;
    const wasPowered = this.powered;
    this.updatePower();
    if (!this.powered) return;
    if (on) {
      if (wasPowered) this.attach();
    } else {
      this.phase = BQ_CHRG_NOT_CHARGING;
      this.chargeMa = 0;
      this.dpm = false;
      this.vdpm = false;
    }
    this.evaluate();
  }

  get vbusPresent(): boolean {
    return this.vbus;
  }

  /** Turns an injected fault on (default) or off. */
  injectFault(fault: Bq25895Fault, active?: boolean): void {
    const on = active ?? true;
    switch (fault) {
      case "input":
        this.inputFault = on;
        if (on && this.vbus) this.latchChrgFault(CHRG_FAULT_INPUT);
        break;
      case "thermal":
        this.thermalShutdown = on;
        if (on) this.latchChrgFault(CHRG_FAULT_THERMAL);
        break;
      case "battery-ovp":
        this.forcedOvp = on;
        break;
      case "ntc-open":
        this.ntcOpen = on;
        break;
      case "ntc-short":
        this.ntcShort = on;
        break;
      case "no-battery":
        this.battery.present = !on;
        this.updatePower();
        break;
      case "boost":
        if (on) this.latchBits |= 0x40;
        break;
      case "safety-timer":
        if (on) this.expireSafetyTimer();
        else this.timerFault = false;
        break;
    }
    this.evaluate();
  }

  /** CHRG_STAT now (BQ_CHRG_*). */
  get chargeStatus(): number {
    return this.powered ? this.phase : BQ_CHRG_NOT_CHARGING;
  }

  /** The current into the battery from the charger, mA. */
  get chargeCurrentMa(): number {
    return this.chargeMa;
  }

  get inHostMode(): boolean {
    return this.hostMode;
  }

  get isPowered(): boolean {
    return this.powered;
  }

  /** Junction temperature estimate, °C. */
  get junctionC(): number {
    return this.tjC;
  }

  /** The TS pin, % of REGN, as the chip sees it now. */
  tsPercent(): number {
    if (this.ntcShort) return 0;
    if (this.ntcOpen || !this.battery.present) return BQ_TS_OPEN_PERCENT;
    const t = this.battery.temperatureC;
    if (t !== this.tsForC) {
      this.tsForC = t;
      this.tsCached = bqTsPercentAt(t);
    }
    return this.tsCached;
  }

  /** A register as the host would read it, without side effects (REG0C is not cleared). */
  register(reg: number): number {
    if (!this.powered || reg < 0 || reg > LAST_REG) return 0xff;
    if (reg === BQ_REG.FAULT) return this.faultValue();
    return this.readReg(reg);
  }

  // ---- time ----

  step(dtSeconds: number): void {
    if (typeof dtSeconds !== "number" || !Number.isFinite(dtSeconds) || dtSeconds < 0) {
      throw new RangeError(`dtSeconds must be a finite number >= 0, got ${dtSeconds}`);
    }
    this.updatePower();
    if (!this.powered) {
      this.battery.step(dtSeconds, 0);
      this.chargeMa = 0;
      return;
    }
    let remaining = dtSeconds;
    let idle = 0;
    while (remaining > 0) {
      let h = remaining;
      const period = this.watchdogPeriod();
      if (period > 0) h = Math.min(h, Math.max(0, period - this.wdElapsed));
      let used = h > 0 ? this.segment(h) : 0;
      if (used <= 0) {
        // A state change without time passing (termination at once, a phase change).
        if (++idle > 8) {
          this.battery.step(h, 0);
          used = h;
        }
      } else {
        idle = 0;
      }
      if (period > 0) {
        this.wdElapsed += used;
        if (this.wdElapsed >= period - 1e-9) this.expireWatchdog();
      }
      remaining -= used;
      if (remaining < 1e-9) remaining = 0;
    }
    this.evaluate();
    this.updateAdc(dtSeconds);
  }

  // ---- I2C ----

  write(data: Uint8Array): boolean {
    this.updatePower();
    if (!this.powered) return false;
    if (data.length === 0) return true;
    const reg = data[0]!;
    if (reg > LAST_REG) return false;
    this.pointer = reg;
    if (data.length === 1) return true;
    if (!this.hostMode) {
      this.hostMode = true;
      this.wdElapsed = 0;
    }
    for (let i = 1; i < data.length; i++) {
      const addr = reg + i - 1;
      if (addr > LAST_REG) return false;
      if (addr === BQ_REG.FAULT && data.length > 2) continue;
      this.writeReg(addr, data[i]!);
    }
    this.pointer = Math.min(LAST_REG, reg + data.length - 1);
    this.evaluate();
    return true;
  }

  read(length: number): Uint8Array | null {
    this.updatePower();
    if (!this.powered) return null;
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      const addr = this.pointer + i;
      if (addr > LAST_REG) out[i] = 0xff;
      else if (addr === BQ_REG.FAULT) {
        if (length === 1) {
          out[i] = this.faultValue();
          this.latchBits = 0;
          this.latchChrg = 0;
        } else {
          out[i] = 0xff; // no multi-read of REG0C (see the header)
        }
      } else out[i] = this.readReg(addr);
    }
    this.pointer = Math.min(LAST_REG, this.pointer + length);
    return out;
  }

  // ---- registers ----

  private reg14Default(): number {
    return ((this.partNumber & 7) << 3) | (this.tsProfile === "jeita" ? 0x04 : 0) | 0x01;
  }

  private readReg(addr: number): number {
    switch (addr) {
      case BQ_REG.STATUS:
        return this.statusValue();
      case BQ_REG.BATV:
        return (this.thermalReg ? 0x80 : 0) | this.adc[0]!;
      case BQ_REG.SYSV:
        return this.adc[1]!;
      case BQ_REG.TSPCT:
        return this.adc[2]!;
      case BQ_REG.VBUSV:
        return (this.vbusGood() ? 0x80 : 0) | this.adc[3]!;
      case BQ_REG.ICHGR:
        return this.adc[4]!;
      case BQ_REG.IDPM:
        return (this.vdpm ? 0x80 : 0) | (this.dpm ? 0x40 : 0) | (this.regs[BQ_REG.INPUT]! & 0x3f);
      case BQ_REG.ID:
        return this.reg14Default();
      default:
        return this.regs[addr]!;
    }
  }

  private writeReg(addr: number, value: number): void {
    this.writes.push({ reg: addr, value });
    const old = this.regs[addr]!;
    switch (addr) {
      case BQ_REG.STATUS:
      case BQ_REG.FAULT:
      case BQ_REG.BATV:
      case BQ_REG.SYSV:
      case BQ_REG.TSPCT:
      case BQ_REG.VBUSV:
      case BQ_REG.ICHGR:
      case BQ_REG.IDPM:
        return; // read-only
      case BQ_REG.ID:
        if ((value & 0x80) !== 0) this.registerReset();
        return;
      case BQ_REG.ADC_CTRL: {
        let v = value;
        if ((old & 0x40) !== 0 && (v & 0x40) !== 0) v = (v & 0x7f) | (old & 0x80); // CONV_START read-only
        else if ((v & 0x80) !== 0) {
          this.adcPending = true;
          this.adcElapsed = 0;
        }
        if ((old & 0x20) !== (v & 0x20) && (this.regs[BQ_REG.SYS_CTRL]! & 0x20) !== 0) v = (v & ~0x20) | (old & 0x20);
        this.regs[addr] = v;
        return;
      }
      case BQ_REG.SYS_CTRL: {
        if ((value & 0x40) !== 0) this.wdElapsed = 0; // WD_RST
        this.regs[addr] = value & ~0x40;
        const was = (old & 0x10) !== 0;
        const now = (value & 0x10) !== 0;
        if (!was && now) this.newCycle();
        return;
      }
      case BQ_REG.ICHG:
        this.regs[addr] = (value & 0x7f) > 0x4f ? (value & 0x80) | 0x4f : value;
        return;
      case BQ_REG.VREG:
        this.regs[addr] = value >> 2 > 0x30 ? (0x30 << 2) | (value & 0x03) : value;
        return;
      case BQ_REG.TIMER:
        this.regs[addr] = value;
        if ((old & 0x30) !== (value & 0x30)) this.wdElapsed = 0;
        if ((old & 0x08) !== 0 && (value & 0x08) === 0) {
          this.timerFault = false;
          this.safetyElapsed = 0;
        }
        return;
      case BQ_REG.VINDPM: {
        const force = (value & 0x80) !== 0;
        let code = value & 0x7f;
        if (force && code < 13) code = 13;
        this.regs[addr] = force ? 0x80 | code : (old & 0x7f) | 0;
        return;
      }
      default:
        this.regs[addr] = value;
    }
  }

  private registerReset(): void {
    for (let r = 0; r < DEFAULTS.length; r++) this.regs[r] = DEFAULTS[r]!;
    this.safetyElapsed = 0;
    this.timerFault = false;
    this.adcPending = false;
  }

  private statusValue(): number {
    const present = this.vbus && !this.inputFault;
    const vbusStat = present ? SOURCE_CODE[this.source] : 0;
    const vbat = this.battery.present ? this.battery.ocvMv() : 0;
    const sysMin = this.sysMinMv();
    return (
      (vbusStat << 5) |
      (this.phase << 3) |
      (present ? 0x04 : 0) |
      0x02 | // SDP_STAT: reads 1 unless a USB100 host is detected
      (vbat < sysMin ? 0x01 : 0)
    );
  }

  private faultValue(): number {
    let chrg = 0;
    if (this.vbus && this.inputFault) chrg = CHRG_FAULT_INPUT;
    else if (this.thermalShutdown) chrg = CHRG_FAULT_THERMAL;
    else if (this.timerFault) chrg = CHRG_FAULT_TIMER;
    if (this.latchChrg !== 0) chrg = this.latchChrg;
    const bat = this.batOvp || this.forcedOvp ? 0x08 : 0;
    return this.latchBits | bat | (chrg << 4) | this.ntcCode();
  }

  private ntcCode(): number {
    if (!this.vbus) return 0; // TS is biased from REGN, which needs VBUS
    const z = this.zone();
    if (this.tsProfile === "jeita") {
      switch (z) {
        case ZONE_WARM:
          return 0b010;
        case ZONE_COOL:
          return 0b011;
        case ZONE_COLD:
          return 0b101;
        case ZONE_HOT:
          return 0b110;
        default:
          return 0;
      }
    }
    if (z === ZONE_COLD) return 0b001;
    if (z === ZONE_HOT) return 0b010;
    return 0;
  }

  private zone(): number {
    const ts = this.tsPercent();
    if (this.tsProfile === "jeita") {
      if (ts > VT1) return ZONE_COLD;
      if (ts > VT2) return ZONE_COOL;
      if (ts < VT5) return ZONE_HOT;
      if (ts < VT3) return ZONE_WARM;
      return ZONE_NORMAL;
    }
    if (ts > VT1) return ZONE_COLD;
    if (ts < VT3) return ZONE_HOT;
    return ZONE_NORMAL;
  }

  // ---- decoded settings ----

  private iinlimMa(): number {
    return 100 + 50 * (this.regs[BQ_REG.INPUT]! & 0x3f);
  }

  private ichgMa(): number {
    return 64 * (this.regs[BQ_REG.ICHG]! & 0x7f);
  }

  private iprechgMa(): number {
    return 64 + 64 * (this.regs[BQ_REG.PRE_TERM]! >> 4);
  }

  private itermMa(): number {
    return 64 + 64 * (this.regs[BQ_REG.PRE_TERM]! & 0x0f);
  }

  private vregMv(): number {
    return 3840 + 16 * (this.regs[BQ_REG.VREG]! >> 2);
  }

  /** The charge voltage in force: VREG, less 200 mV when warm (JEITA_VSET = 0). */
  private regulationMv(): number {
    const warm = this.tsProfile === "jeita" && this.zone() === ZONE_WARM;
    return warm && (this.regs[BQ_REG.MISC]! & 0x10) === 0 ? this.vregMv() - 200 : this.vregMv();
  }

  private batlowvMv(): number {
    return (this.regs[BQ_REG.VREG]! & 0x02) !== 0 ? 3000 : 2800;
  }

  private vrechgMv(): number {
    return (this.regs[BQ_REG.VREG]! & 0x01) !== 0 ? 200 : 100;
  }

  private sysMinMv(): number {
    return 3000 + 100 * ((this.regs[BQ_REG.SYS_CTRL]! >> 1) & 7);
  }

  private chargeTimerS(): number {
    const hours = [5, 8, 12, 20][(this.regs[BQ_REG.TIMER]! >> 1) & 3]!;
    return hours * 3600;
  }

  private watchdogPeriod(): number {
    if (!this.hostMode) return 0;
    return [0, 40, 80, 160][(this.regs[BQ_REG.TIMER]! >> 4) & 3]!;
  }

  private tregC(): number {
    return [60, 80, 100, 120][this.regs[BQ_REG.IRCOMP]! & 3]!;
  }

  private vbusGood(): boolean {
    return this.vbus && !this.inputFault;
  }

  private converterOn(): boolean {
    return this.vbusGood() && (this.regs[BQ_REG.INPUT]! & 0x80) === 0 && !this.thermalShutdown;
  }

  private canCharge(): boolean {
    if (!this.converterOn() || !this.battery.present) return false;
    if ((this.regs[BQ_REG.SYS_CTRL]! & 0x10) === 0 || this.ichgMa() === 0) return false;
    if (this.timerFault || this.batOvp || this.forcedOvp) return false;
    const z = this.zone();
    return z !== ZONE_COLD && z !== ZONE_HOT;
  }

  // ---- behaviour ----

  private updatePower(): void {
    const on = this.vbus || this.battery.present;
    if (on && !this.powered) {
      this.powered = true;
      this.powerOnReset();
    } else if (!on && this.powered) {
      this.powered = false;
      this.phase = BQ_CHRG_NOT_CHARGING;
      this.chargeMa = 0;
    }
  }

  private powerOnReset(): void {
    for (let r = 0; r < DEFAULTS.length; r++) this.regs[r] = DEFAULTS[r]!;
    for (let r = DEFAULTS.length; r <= LAST_REG; r++) this.regs[r] = 0;
    this.adc.fill(0);
    this.pointer = 0;
    this.hostMode = false;
    this.wdElapsed = 0;
    this.phase = BQ_CHRG_NOT_CHARGING;
    this.safetyElapsed = 0;
    this.timerFault = false;
    this.latchBits = 0x80; // starts in default mode, watchdog expired
    this.latchChrg = 0;
    this.batOvp = false;
    this.chargeMa = 0;
    this.dpm = false;
    this.vdpm = false;
    this.thermalReg = false;
    this.adcPending = false;
    if (this.vbus) this.attach();
    this.evaluate();
  }

  /** VBUS attached: source detection and a new charge cycle. */
  private attach(): void {
    if ((this.regs[BQ_REG.ADC_CTRL]! & 0x01) !== 0) {
      const code = Math.round((SOURCE_IINLIM[this.source] - 100) / 50);
      this.regs[BQ_REG.INPUT] = (this.regs[BQ_REG.INPUT]! & 0xc0) | code;
    }
    if (this.inputFault) this.latchChrgFault(CHRG_FAULT_INPUT);
    this.newCycle();
  }

  private newCycle(): void {
    this.safetyElapsed = 0;
    this.timerFault = false;
    this.phase = BQ_CHRG_NOT_CHARGING;
  }

  private latchChrgFault(code: number): void {
    if (this.latchChrg === 0) this.latchChrg = code;
  }

  private expireSafetyTimer(): void {
    this.timerFault = true;
    this.latchChrgFault(CHRG_FAULT_TIMER);
    this.phase = BQ_CHRG_NOT_CHARGING;
    this.chargeMa = 0;
  }

  private expireWatchdog(): void {
    const chgWas = (this.regs[BQ_REG.SYS_CTRL]! & 0x10) !== 0;
    for (let r = 0; r < DEFAULTS.length; r++) {
      const m = WATCHDOG_RESET_MASK[r]!;
      this.regs[r] = (this.regs[r]! & ~m) | (DEFAULTS[r]! & m);
    }
    this.hostMode = false;
    this.wdElapsed = 0;
    this.latchBits |= 0x80;
    this.adcPending = false;
    if (!chgWas && (this.regs[BQ_REG.SYS_CTRL]! & 0x10) !== 0) this.newCycle();
    this.evaluate();
  }

  /** Updates the charge phase and the BATOVP condition for the present state (no time passes). */
  private evaluate(): void {
    if (!this.powered) return;
    const vreg = this.vregMv();
    if (this.battery.present) {
      const v = this.battery.ocvMv();
      if (!this.batOvp && v > vreg * 1.04) {
        this.batOvp = true;
        this.latchBits |= 0x08;
      } else if (this.batOvp && v < vreg * 1.02) {
        this.batOvp = false;
      }
    } else {
      this.batOvp = false;
    }
    if (this.forcedOvp) this.latchBits |= 0x08;
    if (this.thermalShutdown) this.latchChrgFault(CHRG_FAULT_THERMAL);
    if (!this.canCharge()) {
      this.phase = BQ_CHRG_NOT_CHARGING;
      this.chargeMa = 0;
      return;
    }
    if (this.phase === BQ_CHRG_NOT_CHARGING) {
      // Starting a cycle: the hot/cold profile needs TS above HTF to start.
      if (this.tsProfile === "hot-cold" && this.tsPercent() < V_HTF) return;
      this.phase = this.battery.ocvMv() < this.batlowvMv() ? BQ_CHRG_PRE_CHARGE : BQ_CHRG_FAST_CHARGE;
    }
  }

  /** Runs up to `h` seconds in the present state; returns the seconds used. */
  private segment(h: number): number {
    this.evaluate();
    const battery = this.battery;
    const load = this.systemLoadMa > 0 ? this.systemLoadMa : 0;
    if (!this.converterOn()) {
      this.chargeMa = 0;
      this.dpm = false;
      this.vdpm = false;
      this.thermalReg = false;
      this.tjC = battery.temperatureC;
      battery.step(h, -load);
      return h;
    }
    const vbat = battery.present ? battery.ocvMv() : this.sysMinMv();
    const vsys = Math.max(vbat, this.sysMinMv() + 150);
    const sourceMa = Math.min(this.iinlimMa(), SOURCE_MAX_MA[this.source]);
    this.vdpm = SOURCE_MAX_MA[this.source] < this.iinlimMa();
    const available = (sourceMa * (this.vbusMv / 1000) * EFFICIENCY) / (vsys / 1000);
    const room = available - load;
    if (this.phase === BQ_CHRG_PRE_CHARGE || this.phase === BQ_CHRG_FAST_CHARGE) {
      const pre = this.phase === BQ_CHRG_PRE_CHARGE;
      const z = this.zone();
      let imax = pre ? this.iprechgMa() : this.ichgMa();
      if (!pre && z === ZONE_COOL) imax = (imax * ((this.regs[BQ_REG.TIMER]! & 0x01) !== 0 ? 20 : 50)) / 100;
      this.dpm = room < imax;
      if (this.dpm) imax = room > 0 ? room : 0;
      // Thermal regulation: junction = ambient + theta x losses.
      const lossPerMa = ((1 / EFFICIENCY - 1) * vbat) / 1e6; // W per mA
      const tamb = battery.temperatureC;
      this.tjC = tamb + THETA_JA * lossPerMa * (imax + load);
      this.thermalReg = false;
      if (this.tjC > this.tregC()) {
        this.thermalReg = true;
        const ith = (this.tregC() - tamb) / (THETA_JA * lossPerMa) - load;
        imax = Math.max(0, Math.min(imax, ith));
        this.tjC = this.tregC();
      }
      const vreg = this.regulationMv();
      const halfRate = (this.dpm || this.thermalReg) && (this.regs[BQ_REG.MISC]! & 0x40) !== 0;
      const rate = halfRate ? 0.5 : 1;
      const timerOn = (this.regs[BQ_REG.TIMER]! & 0x08) !== 0;
      const limit = pre ? Math.min(4 * 3600, this.chargeTimerS()) : this.chargeTimerS();
      let hc = h;
      if (timerOn) hc = Math.min(hc, Math.max(0, (limit - this.safetyElapsed) / rate));
      let used: number;
      if (imax <= 0) {
        // The input cannot even carry the load: the battery supplements.
        battery.step(hc, room < 0 ? room : 0);
        this.chargeMa = 0;
        used = hc;
      } else {
        const termOn = (this.regs[BQ_REG.TIMER]! & 0x80) !== 0 && !this.dpm && !this.thermalReg;
        const r = battery.stepCcCv(hc, imax, vreg, {
          terminationMa: termOn ? this.itermMa() : undefined,
          stopAtTerminalMv: pre ? this.batlowvMv() : undefined,
        });
        this.chargeMa = r.currentMa;
        used = r.seconds;
        if (r.reachedVoltage) this.phase = BQ_CHRG_FAST_CHARGE;
        if (r.terminated) {
          this.phase = BQ_CHRG_DONE;
          this.chargeMa = 0;
        }
      }
      if (timerOn) {
        this.safetyElapsed += used * rate;
        if (this.safetyElapsed >= limit - 1e-6 && this.phase !== BQ_CHRG_DONE) this.expireSafetyTimer();
      }
      return used;
    }
    // Not charging, or done: the input carries the system, the battery rests (or supplements).
    this.chargeMa = 0;
    this.dpm = room < 0;
    this.thermalReg = false;
    this.tjC = battery.temperatureC;
    const chunk = this.phase === BQ_CHRG_DONE ? Math.min(h, DONE_CHUNK_S) : h;
    battery.step(chunk, room < 0 ? room : 0);
    if (this.phase === BQ_CHRG_DONE && battery.present && battery.ocvMv() < this.regulationMv() - this.vrechgMv()) {
      this.phase = battery.ocvMv() < this.batlowvMv() ? BQ_CHRG_PRE_CHARGE : BQ_CHRG_FAST_CHARGE;
      this.safetyElapsed = 0;
    }
    return chunk;
  }

  private updateAdc(dt: number): void {
    const continuous = (this.regs[BQ_REG.ADC_CTRL]! & 0x40) !== 0;
    if (this.adcPending) {
      this.adcElapsed += dt;
      if (this.adcElapsed >= ADC_CONV_S) {
        this.adcPending = false;
        this.regs[BQ_REG.ADC_CTRL] = this.regs[BQ_REG.ADC_CTRL]! & 0x7f;
        this.convert();
      }
    } else if (continuous && dt > 0) {
      this.convert();
    }
  }

  private convert(): void {
    const battery = this.battery;
    const sysMin = this.sysMinMv();
    let vbat: number;
    if (battery.present) vbat = battery.terminalMv(this.chargeMa > 0 ? this.chargeMa : battery.currentMa);
    else vbat = this.converterOn() ? sysMin + 150 : 0;
    const vsys = this.converterOn() ? Math.max(vbat, sysMin + 150) : vbat;
    this.adc[0] = code(vbat, 2304, 20);
    this.adc[1] = code(vsys, 2304, 20);
    this.adc[2] = code(this.tsPercent(), 21, 0.465);
    this.adc[3] = this.vbus ? code(this.vbusMv, 2600, 100) : 0;
    this.adc[4] = vbat > VBAT_SHORT_MV ? code(this.chargeMa, 0, 50) : 0;
  }
}

function code(value: number, offset: number, lsb: number): number {
  const c = Math.round((value - offset) / lsb);
  return c < 0 ? 0 : c > 127 ? 127 : c;
}
