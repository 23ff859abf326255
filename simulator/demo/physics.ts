// Accelerated battery physics for the demo. The devices' firmware runs in real time (its link to
// the host agent, its timers and its power service's cadence are real), but the cells on the
// demo's charging racks and in the polling stations would take hours to move. On every tick of the
// story's clock (clock.ts) this brings each device's power plant up to the present (its own
// real-time stepping), then moves the cell on by the story time that passed beyond the real time,
// with the current the charger is driving
// now (constant current, then constant voltage: the cell takes less as it fills), or the device's
// load when it runs from the cell; the fuel gauge follows the same extra time. The charger chip
// itself is not stepped faster: its I2C watchdog and safety timer keep real time, as the firmware
// that kicks it does. Nor is the power service's own clock: it counts charge by its real time, so
// a device in storage or maintain mode (a top-up metered by that count) keeps real time. The demo
// also has each power service sample every half second (its 30 s
// cadence, compressed), so the Health a device reports next carries the new state of charge and
// any charger fault.

import type { SimDevice } from "../device/sim_device.ts";
import { BQ_CHRG_FAST_CHARGE, BQ_CHRG_PRE_CHARGE } from "../models/bq25895.ts";
import { ChargeMode } from "../../protocol/generated/device_codec.ts";

/** The charge voltage the power service programs in normal mode (4.208 V). */
const VREG_MV = 4208;

/** Moves one device's cell and gauge on by `seconds` of simulated time, at the present currents. */
export function advanceCell(sd: SimDevice, seconds: number): void {
  const plant = sd.power;
  if (plant === null || !(seconds > 0)) return;
  plant.sync();
  const charger = plant.charger;
  const battery = plant.battery;
  const st = charger.chargeStatus;
  const chargeMa = charger.chargeCurrentMa;
  if ((st === BQ_CHRG_FAST_CHARGE || st === BQ_CHRG_PRE_CHARGE) && chargeMa > 0) {
    let left = seconds;
    // stepCcCv may stop early (termination): rest for what remains.
    for (let i = 0; i < 8 && left > 1e-6; i++) left -= battery.stepCcCv(left, chargeMa, VREG_MV, { terminationMa: 64 }).seconds;
    if (left > 1e-6) battery.step(left, 0);
  } else if (!charger.vbusPresent || !charger.isPowered) {
    // On the cell: the device's own draw (0 when it is off).
    battery.step(seconds, -Math.max(0, charger.systemLoadMa));
  } else battery.step(seconds, 0);
  plant.gauge.step(seconds);
}

export class BatteryPhysics {
  /** Simulated seconds added on top of real time so far. */
  extraSeconds = 0;

  /** `devices`: the devices now (some may be off or mid-reboot). */
  constructor(private readonly devices: () => SimDevice[]) {}

  /**
   * The story's time moved `simSeconds` while `realSeconds` passed: the cells get the difference
   * on top of the real time their plants step by themselves.
   */
  onAdvance(simSeconds: number, realSeconds: number): void {
    const extra = simSeconds - realSeconds;
    if (extra > 0) this.advance(extra);
  }

  /** Moves every cell on by `seconds` of simulated time. */
  advance(seconds: number): void {
    this.extraSeconds += seconds;
    for (const sd of this.devices()) {
      // In storage and maintain modes the power service meters a top-up by counting the charge
      // over its own (real) time: a cell filled faster than that would overshoot the window.
      // Those cells keep real time.
      const mode = sd.firmware?.power?.mode;
      if (mode === ChargeMode.STORAGE || mode === ChargeMode.MAINTAIN) continue;
      advanceCell(sd, seconds);
    }
  }

  /** The power service of every running device samples now (its cadence, compressed). */
  sample(): void {
    for (const sd of this.devices()) {
      try {
        sd.firmware?.power?.sample();
      } catch {
        // A device mid-reboot: it samples at its next tick.
      }
    }
  }
}
