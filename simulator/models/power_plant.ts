// A device's power hardware: a lithium-ion cell, the BQ25895 charger and the MAX17048 gauge on
// the device's I2C bus. The chip models move only when stepped: the plant steps them lazily up to
// the clock's present time just before any transaction addressed to them, so a device asleep for
// an hour of virtual time costs one step. While charging it steps in short chunks (the gauge's
// filters need a moving voltage sampled realistically), and for a while after a charge at the
// gauge's hibernate sampling period.
// The plant also tells the device whether good input power is there, and when a charger is plugged
// in or out: a device shut down on a flat cell stays off until then (simulator/device/sim_device.ts).

import { BatteryModel, type BatteryOptions } from "./battery.ts";
import { Bq25895Model, BQ25895_DEFAULT_ADDRESS, BQ_CHRG_FAST_CHARGE, BQ_CHRG_PRE_CHARGE, BQ_REG } from "./bq25895.ts";
import { Max17048Model, MAX17048_DEFAULT_ADDRESS } from "./max17048.ts";
import type { SimI2cBus, SimI2cDevice } from "./i2c_bus.ts";

const CHARGING_STEP_S = 30;
const SETTLING_S = 6 * 3600;
const SETTLING_STEP_S = 45;
/** REG0B PG_STAT: the input source is good (VBUS present and no input fault). */
const PG_STAT = 0x04;

export interface PowerPlantOptions {
  battery?: Partial<BatteryOptions>;
  /** On a charger or a charging rack at start. Default true. */
  vbus?: boolean;
  /** What the device draws while running, mA. Default 120. */
  systemLoadMa?: number;
  /** Milliseconds on the device's clock (virtual or real). */
  now: () => number;
}

/** Forwards to a chip model after bringing the plant up to date. */
class Synced implements SimI2cDevice {
  constructor(
    private readonly inner: SimI2cDevice,
    private readonly sync: () => void,
  ) {}
  write(data: Uint8Array): boolean {
    this.sync();
    return this.inner.write(data);
  }
  read(length: number): Uint8Array | null {
    this.sync();
    return this.inner.read(length);
  }
}

export class PowerPlant {
  readonly battery: BatteryModel;
  readonly charger: Bq25895Model;
  readonly gauge: Max17048Model;
  private synced: number;
  private settleUntilS = 0;
  private readonly inputListeners: ((present: boolean) => void)[] = [];

  constructor(private readonly options: PowerPlantOptions) {
    const b = options.battery ?? {};
    this.battery = new BatteryModel({
      capacityMah: b.capacityMah ?? 3000,
      socPercent: b.socPercent ?? 80,
      temperatureC: b.temperatureC ?? 25,
      ageDays: b.ageDays,
      cycles: b.cycles,
      present: b.present,
      internalResistanceMohm: b.internalResistanceMohm,
      selfDischargePctPerMonth: b.selfDischargePctPerMonth,
    });
    this.charger = new Bq25895Model({ battery: this.battery, vbus: options.vbus ?? true, systemLoadMa: options.systemLoadMa ?? 120 });
    this.gauge = new Max17048Model({ battery: this.battery });
    this.synced = options.now();
  }

  /** Puts the charger and the gauge on the bus at their addresses. */
  attach(bus: SimI2cBus): void {
    const sync = (): void => this.sync();
    bus.attach(BQ25895_DEFAULT_ADDRESS, new Synced(this.charger, sync));
    bus.attach(MAX17048_DEFAULT_ADDRESS, new Synced(this.gauge, sync));
  }

  /** Steps the models up to the clock's present time. */
  sync(): void {
    const now = this.options.now();
    let t = this.synced / 1000;
    const end = now / 1000;
    if (end <= t) return;
    this.synced = now;
    while (end - t > 1e-9) {
      const st = this.charger.chargeStatus;
      const charging = st === BQ_CHRG_FAST_CHARGE || st === BQ_CHRG_PRE_CHARGE;
      let h = end - t;
      if (charging) h = Math.min(h, CHARGING_STEP_S);
      else if (t < this.settleUntilS) h = Math.min(h, SETTLING_STEP_S);
      this.charger.step(h);
      this.gauge.step(h);
      t += h;
      if (charging || this.charger.chargeCurrentMa > 0) this.settleUntilS = t + SETTLING_S;
    }
  }

  /** Plugs the device into (true) or out of (false) a charger. */
  setCharger(on: boolean): void {
    this.sync();
    const was = this.charger.vbusPresent;
    this.charger.setVbus(on);
    if (was !== on) for (const cb of this.inputListeners.slice()) cb(on);
  }

  /** Good input power: VBUS present and the charger's power-good status (no input fault). */
  inputGood(): boolean {
    this.sync();
    return this.charger.vbusPresent && (this.charger.register(BQ_REG.STATUS) & PG_STAT) !== 0;
  }

  /** Calls `cb` each time a charger is plugged in (true) or out (false). */
  onInputChange(cb: (present: boolean) => void): void {
    this.inputListeners.push(cb);
  }

  /** The device's own draw: running (mA) or powered off (0). */
  setLoad(mA: number): void {
    this.sync();
    this.charger.systemLoadMa = mA;
  }
}
