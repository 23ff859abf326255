// A lithium-ion cell (LiCoO2 / NMC class, one cell, 4.2 V full) for the simulator (Node side). The
// charger model (bq25895.ts) drives it, the fuel gauge model (max17048.ts) reads its terminal
// voltage, and fleet benchmarks age it over months of virtual time.
//
// What it models, and the numbers used (typical values for consumer 18650 / pouch cells):
// - Open-circuit voltage over state of charge: a table with the usual shape, 3.0 V at 0 % (the
//   conventional "empty" point), a steep knee up to about 3.6 V at 10 %, the 3.7-3.9 V plateau and
//   4.2 V at 100 %. Below 0 % the cell can be over-discharged down to -5 % (2.5 V, where a pack's
//   protection circuit cuts it off): a charger pre-charges a cell there.
// - One DC resistance (ohmic plus polarisation, steady state): 0.30 ohm·Ah divided by the
//   capacity (100 mOhm for a 3 Ah cell) at 25 °C when new; it rises at cold (Arrhenius-like,
//   x3 at 0 °C), with capacity fade (x1.5 at 80 % health) and below 10 % charge (x2 at 0 %).
// - Self-discharge: 2.5 %/month at 25 °C and 50 % charge (a little more when full), doubling
//   about every 10 °C (activation energy 50 kJ/mol): about 9 %/month at 45 °C.
// - Capacity fade: calendar ageing ~ k·sqrt(t), k growing with temperature (same Arrhenius law)
//   and with the state of charge it is stored at (2.5x faster full than half full): 2.5 % a year
//   at 25 °C half full, 6 % full, 16 % full at 40 °C. Cycle ageing: 0.04 % per full-equivalent
//   cycle at room temperature (20 % after 500 cycles), more when cycled cold or hot. A changing
//   temperature or charge is handled with the equivalent-time method, so any step size works.
// - Full-equivalent cycles: charge plus discharge throughput divided by twice the design
//   capacity.
// - Charge acceptance (CC/CV): held at a charge voltage, the cell takes (Vreg - OCV) / R, so the
//   current tapers in the constant-voltage phase.
// - `present`: a removed battery carries no current (it still ages on the shelf).
//
// Cost: step() is O(1) for any dt (closed-form solution of the self-discharge ODE with a constant
// current), which is what lets a benchmark run 1,000 devices over 90 days. Only charging under
// voltage regulation (stepCcCv) subdivides, because the current depends on the state.

export interface BatteryOptions {
  /** Design (nominal) capacity when new, mAh. */
  capacityMah: number;
  /** Initial state of charge, % (-5..100; 0 % is the 3.0 V empty point). */
  socPercent: number;
  temperatureC: number;
  /** Calendar age already behind the cell: fade as if stored at 25 °C, half charged. */
  ageDays?: number;
  /** Full-equivalent cycles already behind the cell (fade at room temperature). */
  cycles?: number;
  /** false: battery removed. Default true. */
  present?: boolean;
  /** DC resistance at 25 °C when new, mOhm. Default 300 / capacity in Ah. */
  internalResistanceMohm?: number;
  /** Self-discharge at 25 °C and 50 % charge, % of capacity per month. Default 2.5. */
  selfDischargePctPerMonth?: number;
}

export interface CcCvOptions {
  /** Stop once the current has tapered below this in the constant-voltage phase. */
  terminationMa?: number;
  /** Stop once the terminal voltage under the charge current reaches this (pre-charge end). */
  stopAtTerminalMv?: number;
}

export interface CcCvResult {
  /** Seconds actually spent (less than asked when a stop condition was met). */
  seconds: number;
  /** The charge current at the end, mA. */
  currentMa: number;
  /** Average current over `seconds`, mA. */
  averageMa: number;
  /** The current tapered below `terminationMa`. */
  terminated: boolean;
  /** The terminal voltage reached `stopAtTerminalMv`. */
  reachedVoltage: boolean;
}

/** OCV table: from -5 % to 100 % in 5 % steps, mV. */
const OCV_STEP_PCT = 5;
const OCV_FIRST_PCT = -5;
const OCV_MV = [
  2500, 3000, 3480, 3590, 3650, 3690, 3715, 3740, 3760, 3780, 3800, 3822, 3848, 3876, 3908, 3944, 3982, 4020, 4060,
  4102, 4150, 4200,
];

export const BATTERY_MIN_SOC_PERCENT = -5;
const SOC_MIN = BATTERY_MIN_SOC_PERCENT / 100;
const SOC_MAX = 1;
const SECONDS_PER_DAY = 86400;
const SECONDS_PER_MONTH = 30.4375 * SECONDS_PER_DAY;
const T_REF_K = 298.15;
/** Activation energy over R for self-discharge and calendar ageing (50 kJ/mol). */
const EA_AGEING_K = 50000 / 8.314;
/** The same for the resistance (about 29 kJ/mol: x3 at 0 °C, x0.5 at 45 °C). */
const EA_RESISTANCE_K = 3500;
/** Calendar fade coefficient: 2.5 % after 365 days at 25 °C, 50 % charge. */
const CAL_K_REF = 0.025 / Math.sqrt(365);
/** Cycle fade per full-equivalent cycle at room temperature. */
const CYCLE_FADE = 0.0004;
/** Capacity never fades below this fraction (the model's floor). */
const MIN_HEALTH = 0.05;

function kelvin(c: number): number {
  return c + 273.15;
}

/** Arrhenius factor relative to 25 °C. */
function arrhenius(eaK: number, tempC: number): number {
  return Math.exp(eaK * (1 / T_REF_K - 1 / kelvin(tempC)));
}

/** OCV (mV) of a state of charge given as a fraction, from a table at uniform steps. */
export function ocvFromTable(table: readonly number[], firstPct: number, stepPct: number, soc: number): number {
  const pos = (soc * 100 - firstPct) / stepPct;
  const last = table.length - 1;
  if (pos <= 0) {
    // Below the table: extend the first segment's slope.
    return table[0]! + (table[1]! - table[0]!) * pos;
  }
  if (pos >= last) return table[last]! + (table[last]! - table[last - 1]!) * (pos - last);
  const i = Math.floor(pos);
  const f = pos - i;
  return table[i]! + (table[i + 1]! - table[i]!) * f;
}

/** The inverse: state of charge (fraction) of an OCV, by linear interpolation in the same table. */
export function socFromTable(table: readonly number[], firstPct: number, stepPct: number, mv: number): number {
  const last = table.length - 1;
  let pos: number;
  if (mv <= table[0]!) pos = (mv - table[0]!) / (table[1]! - table[0]!);
  else if (mv >= table[last]!) pos = last + (mv - table[last]!) / (table[last]! - table[last - 1]!);
  else {
    let i = 0;
    while (i < last - 1 && mv >= table[i + 1]!) i++;
    pos = i + (mv - table[i]!) / (table[i + 1]! - table[i]!);
  }
  return (firstPct + pos * stepPct) / 100;
}

function finite(name: string, v: number): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new RangeError(`${name} must be a finite number, got ${v}`);
  return v;
}

export class BatteryModel {
  readonly designCapacityMah: number;
  /** Cell temperature, °C (set by the simulation: ambient, warehouse climate). */
  temperatureC: number;
  /** false: the battery is removed (no current; it still ages). */
  present: boolean;

  private soc: number;
  private readonly r0Mohm: number;
  private readonly selfDischargeBase: number;
  private calendarFade = 0;
  private cycleFade = 0;
  private fec = 0;
  private throughputMah = 0;
  private elapsedS = 0;
  private lastCurrentMa = 0;
  // Temperature factors, recomputed only when the temperature changes (the fleet hot path).
  private factorsForC = NaN;
  private ageingFactor = 1;
  private resistanceFactor = 1;

  constructor(options: BatteryOptions) {
    this.designCapacityMah = finite("capacityMah", options.capacityMah);
    if (this.designCapacityMah <= 0) throw new RangeError("capacityMah must be > 0");
    const soc = finite("socPercent", options.socPercent) / 100;
    if (soc < SOC_MIN || soc > SOC_MAX) throw new RangeError(`socPercent must be ${BATTERY_MIN_SOC_PERCENT}..100`);
    this.soc = soc;
    this.temperatureC = finite("temperatureC", options.temperatureC);
    this.present = options.present ?? true;
    this.r0Mohm = finite(
      "internalResistanceMohm",
      options.internalResistanceMohm ?? 300 / (this.designCapacityMah / 1000),
    );
    this.selfDischargeBase = finite("selfDischargePctPerMonth", options.selfDischargePctPerMonth ?? 2.5) / 100;
    const ageDays = finite("ageDays", options.ageDays ?? 0);
    const cycles = finite("cycles", options.cycles ?? 0);
    if (ageDays < 0 || cycles < 0) throw new RangeError("ageDays and cycles must be >= 0");
    this.calendarFade = CAL_K_REF * Math.sqrt(ageDays);
    this.fec = cycles;
    this.cycleFade = cycles * CYCLE_FADE;
  }

  // ---- state ----

  /** The true state of charge, % of the present (faded) capacity. Below 0 when over-discharged. */
  get socPercent(): number {
    return this.soc * 100;
  }

  set socPercent(v: number) {
    const s = finite("socPercent", v) / 100;
    if (s < SOC_MIN || s > SOC_MAX) throw new RangeError(`socPercent must be ${BATTERY_MIN_SOC_PERCENT}..100`);
    this.soc = s;
  }

  /** Present capacity (faded), mAh. */
  get capacityMah(): number {
    return this.designCapacityMah * this.stateOfHealth;
  }

  /** Present capacity over design capacity, 0..1. */
  get stateOfHealth(): number {
    const h = 1 - this.calendarFade - this.cycleFade;
    return h < MIN_HEALTH ? MIN_HEALTH : h;
  }

  /** Full-equivalent cycles: (charge + discharge throughput) / (2 x design capacity). */
  get cycles(): number {
    return this.fec;
  }

  /** Charge and discharge throughput since construction, mAh. */
  get throughput(): number {
    return this.throughputMah;
  }

  /** The current of the last step, mA (+ charging, - discharging). */
  get currentMa(): number {
    return this.lastCurrentMa;
  }

  /** Simulated seconds since construction. */
  get elapsedSeconds(): number {
    return this.elapsedS;
  }

  /** Charge held, mAh (negative when over-discharged). */
  get chargeMah(): number {
    return this.soc * this.capacityMah;
  }

  /** DC resistance now, mOhm (temperature, ageing, low charge). */
  resistanceMohm(): number {
    const fT = this.factors().resistanceFactor;
    const ageing = 1 + 2.5 * (1 - this.stateOfHealth);
    const low = this.soc < 0.1 ? 1 + (0.1 - this.soc) / 0.1 : 1;
    return this.r0Mohm * fT * ageing * low;
  }

  /** Open-circuit voltage, mV. */
  ocvMv(): number {
    return ocvFromTable(OCV_MV, OCV_FIRST_PCT, OCV_STEP_PCT, this.soc);
  }

  /**
   * Terminal voltage while `currentMa` flows (+ charging), mV; the last step's current when
   * omitted. 0 when the battery is removed.
   */
  terminalMv(currentMa?: number): number {
    if (!this.present) return 0;
    const i = currentMa ?? this.lastCurrentMa;
    return this.ocvMv() + (i * this.resistanceMohm()) / 1000;
  }

  /** The current the cell takes when its terminals are held at `vregMv`, mA (0 when above it). */
  chargeAcceptanceMa(vregMv: number): number {
    if (!this.present) return 0;
    const i = ((vregMv - this.ocvMv()) * 1000) / this.resistanceMohm();
    return i > 0 ? i : 0;
  }

  /** Self-discharge right now, % of capacity per month. */
  selfDischargePctPerMonth(): number {
    return this.selfDischargeRate() * (0.75 + 0.5 * this.soc) * SECONDS_PER_MONTH * 100;
  }

  // ---- time ----

  /**
   * Advances `dtSeconds` with a constant current (mA, + into the cell). O(1) for any dt: the charge
   * follows the exact solution of d(soc)/dt = I/C - a·(0.75 + 0.5·soc) (load plus self-discharge);
   * the load stops at the protection cut-off (-5 %) and charging at 100 %.
   */
  step(dtSeconds: number, currentMa: number): void {
    const dt = finite("dtSeconds", dtSeconds);
    if (dt < 0) throw new RangeError("dtSeconds must be >= 0");
    let i = finite("currentMa", currentMa);
    if (!this.present) i = 0;
    this.lastCurrentMa = i;
    if (dt === 0) return;
    const a = this.selfDischargeRate();
    const b = 0.5 * a;
    const c = i / (this.capacityMah * 3600); // soc per second from the current (1 mAh = 3600 mA·s)
    const d = c - 0.75 * a;
    const soc0 = this.soc;
    // soc(t) = soc0 + (d - b·soc0)·k(t), k(t) = (1 - exp(-b·t)) / b  (-> t when b -> 0)
    const slope0 = d - b * soc0;
    let soc1 = soc0 + slope0 * kOf(b, dt);
    let active = dt;
    if (soc1 < SOC_MIN || soc1 > SOC_MAX) {
      const bound = soc1 < SOC_MIN ? SOC_MIN : SOC_MAX;
      const t = timeTo(b, slope0, bound - soc0);
      if (i !== 0 && t >= 0 && t < dt) active = t;
      soc1 = bound;
      // At the bound the current stops (protection cut-off, or full): no current afterwards.
      if (i !== 0 && t >= 0 && t < dt) this.lastCurrentMa = 0;
    }
    this.soc = soc1;
    this.age(dt, (soc0 + soc1) / 2, Math.abs(i) * active / 3600);
  }

  /**
   * Charges for up to `dtSeconds` with the terminals regulated at `vregMv` and the current limited
   * to `maxCurrentMa` (constant current, then constant voltage with a tapering current), stopping
   * early on the conditions of `options`. Subdivides internally so that the charge moves at most
   * 0.25 % and the OCV at most 1 mV per sub-step.
   */
  stepCcCv(dtSeconds: number, maxCurrentMa: number, vregMv: number, options?: CcCvOptions): CcCvResult {
    const dt = finite("dtSeconds", dtSeconds);
    if (dt < 0) throw new RangeError("dtSeconds must be >= 0");
    finite("maxCurrentMa", maxCurrentMa);
    finite("vregMv", vregMv);
    const term = options?.terminationMa ?? 0;
    const stopMv = options?.stopAtTerminalMv;
    let t = 0;
    let charge = 0;
    let current = 0;
    let terminated = false;
    let reached = false;
    while (t < dt) {
      const accept = this.chargeAcceptanceMa(vregMv);
      const cv = accept < maxCurrentMa;
      current = cv ? accept : maxCurrentMa;
      if (current < 0) current = 0;
      if (stopMv !== undefined && this.present && this.terminalMv(current) >= stopMv) {
        reached = true;
        break;
      }
      if (term > 0 && cv && current < term) {
        terminated = true;
        break;
      }
      if (current <= 0 || !this.present || this.soc >= SOC_MAX) {
        this.step(dt - t, 0);
        t = dt;
        current = 0;
        break;
      }
      const capMah = this.capacityMah;
      // Limit the charge change: 0.25 %, and 1 mV of OCV (the current follows the OCV in CV).
      let dSoc = 0.0025;
      const slopeMvPerUnit = this.ocvSlope();
      if (slopeMvPerUnit > 0 && 1 / slopeMvPerUnit < dSoc) dSoc = 1 / slopeMvPerUnit;
      let h = (dSoc * capMah * 3600) / current;
      if (h < 0.001) h = 0.001;
      if (h > dt - t) h = dt - t;
      this.step(h, current);
      charge += current * h;
      t += h;
    }
    this.lastCurrentMa = current;
    return {
      seconds: t,
      currentMa: current,
      averageMa: t > 0 ? charge / t : 0,
      terminated,
      reachedVoltage: reached,
    };
  }

  // ---- internals ----

  /** Self-discharge coefficient a (fraction of capacity per second at 50 % charge). */
  private selfDischargeRate(): number {
    return (this.selfDischargeBase / SECONDS_PER_MONTH) * this.factors().ageingFactor;
  }

  private factors(): this {
    if (this.temperatureC !== this.factorsForC) {
      this.factorsForC = this.temperatureC;
      this.ageingFactor = arrhenius(EA_AGEING_K, this.temperatureC);
      let fR = 1 / arrhenius(EA_RESISTANCE_K, this.temperatureC);
      if (fR < 0.35) fR = 0.35;
      if (fR > 20) fR = 20;
      this.resistanceFactor = fR;
    }
    return this;
  }

  /** dOCV/dsoc around the present charge, mV per unit of soc. */
  private ocvSlope(): number {
    const pos = (this.soc * 100 - OCV_FIRST_PCT) / OCV_STEP_PCT;
    let i = Math.floor(pos);
    if (i < 0) i = 0;
    if (i > OCV_MV.length - 2) i = OCV_MV.length - 2;
    return ((OCV_MV[i + 1]! - OCV_MV[i]!) * 100) / OCV_STEP_PCT;
  }

  private age(dt: number, socAvg: number, throughputMah: number): void {
    this.elapsedS += dt;
    const days = dt / SECONDS_PER_DAY;
    // Calendar fade, equivalent-time method: loss = k·sqrt(t_eq).
    const s = socAvg < 0 ? 0 : socAvg;
    const k = CAL_K_REF * this.factors().ageingFactor * (0.5 + 2 * s * s);
    if (k > 0) {
      const eq = (this.calendarFade / k) * (this.calendarFade / k) + days;
      this.calendarFade = k * Math.sqrt(eq);
    }
    if (throughputMah > 0) {
      this.throughputMah += throughputMah;
      const cycles = throughputMah / (2 * this.designCapacityMah);
      this.fec += cycles;
      const t = this.temperatureC;
      const stress = t < 15 ? 1 + 0.08 * (15 - t) : Math.sqrt(this.factors().ageingFactor);
      this.cycleFade += cycles * CYCLE_FADE * (stress > 1 ? stress : 1);
    }
  }
}

/** k(t) = (1 - exp(-b·t)) / b, which tends to t as b -> 0. */
function kOf(b: number, t: number): number {
  const x = b * t;
  return x < 1e-9 ? t : -Math.expm1(-x) / b;
}

/** Time for soc to move by `delta` when d(soc)/dt = slope0 - b·(soc - soc0); -1 if never. */
function timeTo(b: number, slope0: number, delta: number): number {
  if (slope0 === 0) return -1;
  const kNeeded = delta / slope0;
  if (kNeeded < 0) return -1;
  const x = b * kNeeded;
  if (x < 1e-9) return kNeeded;
  if (x >= 1) return -1;
  return -Math.log1p(-x) / b;
}
