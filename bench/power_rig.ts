// One simulated device's power hardware on a virtual clock, for the power service's tests and the
// warehouse benchmark: a BatteryModel, a Bq25895Model and a Max17048Model on a SimI2cBus, the real
// drivers, and the real PowerService on VirtualClock timers. Nothing is mocked.
//
// Time: the chip models only move when stepped. The rig steps them lazily, up to the clock's
// present time, just before every I2C transaction of the firmware (and on advance()), so a
// service that sleeps an hour costs one model step, not 3,600. While the charger is charging, the
// models are stepped in CHARGING_STEP_S chunks (the gauge's filters and rate estimate need a
// realistic sampling of a moving voltage), for SETTLING_S after a charge in SETTLING_STEP_S chunks
// (the gauge's slow recovery after a charge depends on its 45 s hibernate sampling), otherwise in
// one step (the battery and charger models are exact for any step without charge, and the
// gauge's filter has long converged on a resting cell).

import { VirtualClock, type SimTimers } from "../simulator/clock/timers.ts";
import { SimI2cBus } from "../simulator/models/i2c_bus.ts";
import { BatteryModel } from "../simulator/models/battery.ts";
import { Bq25895Model, BQ25895_DEFAULT_ADDRESS, BQ_CHRG_FAST_CHARGE, BQ_CHRG_PRE_CHARGE } from "../simulator/models/bq25895.ts";
import { Max17048Model, MAX17048_DEFAULT_ADDRESS } from "../simulator/models/max17048.ts";
import { Bq2589x } from "../device/drivers/charger_bq2589x.ts";
import { Max1704x } from "../device/drivers/fuel_gauge_max1704x.ts";
import { PowerService, type PowerMetrics, type PowerOptions } from "../device/services/power.ts";
import type { I2cBus, WallClock } from "../device/platform/platform.ts";
import type { PowerAlarm } from "../protocol/generated/device_codec.ts";

/** Model step while charging (the gauge model gives the same answers for 0.25 s to 30 s steps). */
export const CHARGING_STEP_S = 30;
/** For this long after a charge the gauge is stepped at its hibernate sampling period. */
export const SETTLING_S = 6 * 3600;
export const SETTLING_STEP_S = 45;
export const HOUR_MS = 3600000;
export const DAY_MS = 24 * HOUR_MS;

export interface PowerRigOptions {
  socPercent: number;
  temperatureC: number;
  capacityMah?: number;
  ageDays?: number;
  cycles?: number;
  /** Battery fitted (default true). */
  present?: boolean;
  /** Input power attached at start (default true: on a charger or rack). */
  vbus?: boolean;
  /** What the device draws, mA (default 0: asleep, negligible next to self-discharge). */
  systemLoadMa?: number;
  mode?: number;
  /** Share an existing clock (default: a new one). */
  clock?: VirtualClock;
  /** Other service options (cadences, thresholds). */
  service?: Partial<PowerOptions>;
  /** Do not call start(). */
  noStart?: boolean;
  /** Firmware's answer to onCritical: call done after this many ms (default 5; < 0: never). */
  sealMs?: number;
  /**
   * Route the firmware's transactions straight to the two chip models (same ACK / NACK answers,
   * without SimI2cBus's copies, counters and fault injection): for the fleet benchmark.
   */
  direct?: boolean;
}

/** A wall clock that follows the virtual clock from a fixed epoch. */
function wallClockOn(timers: SimTimers, epochMs: number): WallClock {
  let offset = epochMs;
  return {
    wallMs: () => offset + timers.now(),
    setWallMs: (ms: number) => {
      offset = ms - timers.now();
    },
  };
}

export class PowerRig {
  readonly clock: VirtualClock;
  readonly timers: SimTimers;
  readonly simBus: SimI2cBus;
  /** The bus the firmware sees: syncs the models to the clock before each transaction. */
  readonly bus: I2cBus;
  readonly battery: BatteryModel;
  readonly chargerModel: Bq25895Model;
  readonly gaugeModel: Max17048Model;
  readonly charger: Bq2589x;
  readonly gauge: Max1704x;
  readonly service: PowerService;
  readonly alarms: PowerAlarm[] = [];
  /** "critical", "sealed", "shutdown" in the order they happened. */
  readonly events: string[] = [];
  /** Every sample's metrics with the model's truth at that moment. */
  onSample: ((m: PowerMetrics, truthSocPercent: number) => void) | null = null;
  private synced: number;
  private settleUntilS = 0;

  constructor(o: PowerRigOptions) {
    this.clock = o.clock ?? new VirtualClock();
    this.timers = this.clock.timers();
    this.synced = this.clock.now();
    this.battery = new BatteryModel({
      capacityMah: o.capacityMah ?? 3000,
      socPercent: o.socPercent,
      temperatureC: o.temperatureC,
      ageDays: o.ageDays,
      cycles: o.cycles,
      present: o.present ?? true,
    });
    this.chargerModel = new Bq25895Model({ battery: this.battery, vbus: o.vbus ?? true, systemLoadMa: o.systemLoadMa ?? 0 });
    this.gaugeModel = new Max17048Model({ battery: this.battery });
    this.simBus = new SimI2cBus();
    this.simBus.attach(BQ25895_DEFAULT_ADDRESS, this.chargerModel);
    this.simBus.attach(MAX17048_DEFAULT_ADDRESS, this.gaugeModel);
    const sim = this.simBus;
    const chargerModel = this.chargerModel;
    const gaugeModel = this.gaugeModel;
    const modelAt = (address: number): Bq25895Model | Max17048Model | null =>
      address === BQ25895_DEFAULT_ADDRESS ? chargerModel : address === MAX17048_DEFAULT_ADDRESS ? gaugeModel : null;
    this.bus = o.direct
      ? {
          write: (address: number, data: Uint8Array): boolean => {
            this.sync();
            const dev = modelAt(address);
            return dev !== null && dev.write(data);
          },
          read: (address: number, length: number): Uint8Array | null => {
            this.sync();
            const dev = modelAt(address);
            return dev === null ? null : dev.read(length);
          },
        }
      : {
          write: (address: number, data: Uint8Array): boolean => {
            this.sync();
            return sim.write(address, data);
          },
          read: (address: number, length: number): Uint8Array | null => {
            this.sync();
            return sim.read(address, length);
          },
        };
    this.charger = new Bq2589x({ bus: this.bus });
    this.gauge = new Max1704x({ bus: this.bus });
    const sealMs = o.sealMs ?? 5;
    const opts: PowerOptions = {
      charger: this.charger,
      gauge: this.gauge,
      timers: this.timers,
      clock: wallClockOn(this.timers, 1767225600000),
      mode: o.mode,
      designCapacityMah: o.capacityMah ?? 3000,
      onAlarm: (a: PowerAlarm) => {
        this.alarms.push(a);
      },
      onCritical: (done: () => void) => {
        this.events.push("critical");
        if (sealMs >= 0) {
          this.timers.setTimeout(() => {
            this.events.push("sealed");
            done();
          }, sealMs);
        }
      },
      shutdown: () => {
        this.events.push("shutdown");
      },
      onSample: (m: PowerMetrics) => {
        if (this.onSample !== null) this.onSample(m, this.battery.socPercent);
      },
    };
    if (o.service) Object.assign(opts, o.service);
    this.service = new PowerService(opts);
    if (!o.noStart) this.service.start();
  }

  /** Steps the chip models up to the clock's present time. */
  sync(): void {
    const now = this.clock.now();
    let t = this.synced / 1000;
    const end = now / 1000;
    this.synced = now;
    while (end - t > 1e-9) {
      const st = this.chargerModel.chargeStatus;
      const charging = st === BQ_CHRG_FAST_CHARGE || st === BQ_CHRG_PRE_CHARGE;
      let h = end - t;
      if (charging) h = Math.min(h, CHARGING_STEP_S);
      else if (t < this.settleUntilS) h = Math.min(h, SETTLING_STEP_S);
      this.chargerModel.step(h);
      this.gaugeModel.step(h);
      t += h;
      if (charging || this.chargerModel.chargeCurrentMa > 0) this.settleUntilS = t + SETTLING_S;
    }
  }

  /** Runs the device for `ms` of virtual time. */
  advance(ms: number): void {
    this.clock.advance(ms);
    this.sync();
  }

  /** Alarms of one kind, in order. */
  alarmsOf(kind: number): PowerAlarm[] {
    return this.alarms.filter((a) => a.kind === kind);
  }
}
