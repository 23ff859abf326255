// Power service against the real drivers, the BQ25895 and MAX17048 chip models and the battery
// model, on a virtual clock (bench/power_rig.ts wires them; nothing is mocked).

import { test } from "node:test";
import assert from "node:assert/strict";
import { PowerRig, DAY_MS, HOUR_MS } from "../../bench/power_rig.ts";
import { BQ_REG } from "../../simulator/models/bq25895.ts";
import { MAX17048_DEFAULT_ADDRESS } from "../../simulator/models/max17048.ts";
import {
  BQ2589X_DEFAULT_ADDRESS,
  CHARGER_FAULT_BATTERY_OVP,
  CHARGER_FAULT_INPUT,
  CHARGER_FAULT_NTC_COLD,
  CHARGER_FAULT_NTC_HOT,
  CHARGER_FAULT_SAFETY_TIMER,
  CHARGER_FAULT_THERMAL,
  CHARGER_FAULT_WATCHDOG,
} from "../drivers/charger_bq2589x.ts";
import {
  ChargeMode,
  ChargeState,
  PowerAlarmKind,
  Verdict,
  type Health,
} from "../../protocol/generated/device_codec.ts";
import {
  FULL_CHARGE_MV,
  POWER_MAINTAIN_WAKE_MS,
  RESTART_POLL_MS,
  WARM_CHARGE_MV,
  type PowerMetrics,
} from "./power.ts";

const MIN_MS = 60000;

function chgConfig(rig: PowerRig): boolean {
  return (rig.chargerModel.register(BQ_REG.SYS_CTRL) & 0x10) !== 0;
}
function ichgMa(rig: PowerRig): number {
  return 64 * (rig.chargerModel.register(BQ_REG.ICHG) & 0x7f);
}
function vregMv(rig: PowerRig): number {
  return 3840 + 16 * (rig.chargerModel.register(BQ_REG.VREG) >> 2);
}
function watchdogS(rig: PowerRig): number {
  return [0, 40, 80, 160][(rig.chargerModel.register(BQ_REG.TIMER) >> 4) & 3];
}
function hiz(rig: PowerRig): boolean {
  return (rig.chargerModel.register(BQ_REG.INPUT) & 0x80) !== 0;
}
function active(rig: PowerRig, kind: number): boolean {
  return (rig.service.powerAlarms() & (1 << kind)) !== 0;
}
/** Each alarm kind alternates raised, cleared, raised...: never raised twice in a row. */
function assertAlternating(rig: PowerRig, kind: number): void {
  const seq = rig.alarmsOf(kind).map((a) => a.active === true);
  for (let i = 0; i < seq.length; i++) assert.equal(seq[i], i % 2 === 0, `alarm ${kind} event ${i} out of order: ${seq}`);
}

test("normal mode charges to full, the charger terminates (DONE), the watchdog is kicked", () => {
  const rig = new PowerRig({ socPercent: 20, temperatureC: 25, mode: ChargeMode.NORMAL });
  rig.advance(10 * MIN_MS);
  const m = rig.service.metrics();
  assert.equal(m.chargeState, ChargeState.FAST_CHARGE);
  assert.ok(m.currentMa > 1300 && m.currentMa <= 1500, `fast charge current ${m.currentMa}`);
  assert.equal(ichgMa(rig), 1472); // 0.5 C of 3000 mAh, 64 mA steps
  assert.equal(vregMv(rig), FULL_CHARGE_MV);
  assert.equal(watchdogS(rig), 160);
  rig.advance(4 * HOUR_MS);
  assert.equal(rig.service.metrics().chargeState, ChargeState.DONE);
  assert.ok(rig.battery.socPercent > 99, `cell at ${rig.battery.socPercent} %`);
  assert.equal(rig.chargerModel.chargeCurrentMa, 0);
  assert.ok(chgConfig(rig), "charging stays allowed: the charger itself stops and restarts");
  // The watchdog never expired: the charger stayed in host mode with our settings.
  assert.ok(rig.chargerModel.inHostMode);
  assert.equal(rig.alarms.length, 0, JSON.stringify(rig.alarms));
  // Charge counted from the current ADC: about 80 % of 3000 mAh went in.
  const mah = rig.service.chargedMah();
  assert.ok(Math.abs(mah - 0.8 * 3000) < 150, `counted ${mah} mAh`);
  // Health gets the battery fields.
  const h: Health = {};
  rig.service.fillHealth(h);
  assert.equal(h.chargeState, ChargeState.DONE);
  assert.equal(h.chargeMode, ChargeMode.NORMAL);
  assert.ok((h.stateOfChargePermille ?? 0) >= 930, `soc ${h.stateOfChargePermille}`);
  assert.ok((h.batteryMv ?? 0) > 4100);
  assert.ok(Math.abs((h.temperatureDecic ?? 0) - 250) <= 10);
  assert.equal(h.powerAlarms, 0);
  assert.equal(h.chargerFaults, 0);
});

test("a watchdog expiry is reported and the configuration written again", () => {
  const rig = new PowerRig({ socPercent: 50, temperatureC: 25, mode: ChargeMode.NORMAL });
  rig.advance(2 * MIN_MS);
  assert.equal(ichgMa(rig), 1472);
  rig.service.stop();
  rig.advance(5 * MIN_MS); // nobody kicks: the chip falls back to its defaults (2048 mA)
  assert.equal(rig.chargerModel.inHostMode, false);
  assert.equal(ichgMa(rig), 2048);
  const m = rig.service.sample();
  assert.ok((m.chargerFaults & CHARGER_FAULT_WATCHDOG) !== 0);
  assert.ok(active(rig, PowerAlarmKind.CHARGER_FAULT));
  assert.equal(ichgMa(rig), 1472, "settings written again");
  assert.ok(rig.chargerModel.inHostMode);
  rig.service.start();
  rig.advance(5 * MIN_MS);
  assert.ok(!active(rig, PowerAlarmKind.CHARGER_FAULT), "cleared once the chip reports no fault");
  assertAlternating(rig, PowerAlarmKind.CHARGER_FAULT);
});

test("storage mode from 90 %: never charges, self-discharge brings the cell into the window", () => {
  const rig = new PowerRig({
    socPercent: 90,
    temperatureC: 25,
    mode: ChargeMode.STORAGE,
    service: { drainAboveWindow: false },
  });
  let charged = false;
  let samples = 0;
  rig.onSample = (m) => {
    samples++;
    if (m.chargeEnabled || m.currentMa > 0) charged = true;
  };
  rig.advance(3 * DAY_MS);
  assert.equal(watchdogS(rig), 0, "long sleeps: the charger watchdog is off, settings persist");
  assert.ok(samples >= 71 && samples <= 73, `hourly samples: ${samples}`);
  assert.ok(!active(rig, PowerAlarmKind.OUT_OF_STORAGE_WINDOW), "within the 72 h grace");
  rig.advance(2 * DAY_MS);
  assert.ok(active(rig, PowerAlarmKind.OUT_OF_STORAGE_WINDOW), "above the window after the grace period");
  let days = 5;
  while (rig.battery.socPercent > 59 && days < 600) {
    rig.advance(10 * DAY_MS);
    days += 10;
  }
  assert.ok(days < 600);
  rig.advance(10 * DAY_MS);
  assert.ok(!charged, "a cell above the window is never charged");
  assert.ok(rig.battery.socPercent >= 40 && rig.battery.socPercent <= 60, `${rig.battery.socPercent}`);
  assert.ok(!active(rig, PowerAlarmKind.OUT_OF_STORAGE_WINDOW), "cleared back in the window");
  assertAlternating(rig, PowerAlarmKind.OUT_OF_STORAGE_WINDOW);
  assert.equal(rig.alarmsOf(PowerAlarmKind.OUT_OF_STORAGE_WINDOW).length, 2);
});

test("storage mode from 90 % with a load: the input is cut so that the load drains the cell to the target", () => {
  const rig = new PowerRig({ socPercent: 90, temperatureC: 25, mode: ChargeMode.STORAGE, systemLoadMa: 20 });
  rig.advance(2 * HOUR_MS);
  assert.ok(hiz(rig), "input in high impedance above the window");
  assert.ok(rig.service.metrics().draining);
  let days = 0;
  while (hiz(rig) && days < 200) {
    rig.advance(DAY_MS);
    days++;
  }
  assert.ok(days < 200, "the drain ends");
  const soc = rig.battery.socPercent;
  assert.ok(soc > 45 && soc < 56, `drained to ${soc} %`);
  // With the input back, the load runs from VBUS: the cell only self-discharges.
  rig.advance(30 * DAY_MS);
  assert.ok(rig.battery.socPercent > soc - 4, `${rig.battery.socPercent}`);
  assert.ok(!hiz(rig));
});

test("storage mode from 10 %: charges into the window, then holds 40-60 % over 6 months", () => {
  const rig = new PowerRig({ socPercent: 10, temperatureC: 30, mode: ChargeMode.STORAGE });
  rig.advance(DAY_MS);
  assert.ok(rig.battery.socPercent >= 45 && rig.battery.socPercent <= 58, `after a day: ${rig.battery.socPercent}`);
  assert.ok(!chgConfig(rig), "charging disabled once in the window");
  assert.ok(rig.service.topUps >= 1);
  let min = 100;
  let max = 0;
  let chargingSamples = 0;
  rig.onSample = (m, truth) => {
    if (truth < min) min = truth;
    if (truth > max) max = truth;
    if (m.currentMa > 0) chargingSamples++;
  };
  for (let d = 0; d < 183; d++) {
    rig.advance(DAY_MS);
    const t = rig.battery.socPercent;
    if (t < min) min = t;
    if (t > max) max = t;
  }
  assert.ok(min >= 40 && max <= 60, `held between ${min} and ${max}`);
  assert.ok(rig.service.topUps >= 2, `self-discharge at 30 C needs top-ups: ${rig.service.topUps}`);
  assert.ok(chargingSamples < 60, `top-ups are short: ${chargingSamples} charging samples`);
  assert.equal(rig.alarmsOf(PowerAlarmKind.OUT_OF_STORAGE_WINDOW).length, 0);
  assert.ok(!active(rig, PowerAlarmKind.LOW_BATTERY), "on the rack: no low-battery warning");
});

test("maintain mode: wakes every 24 h and tops up on schedule", () => {
  const rig = new PowerRig({ socPercent: 20, temperatureC: 25, mode: ChargeMode.MAINTAIN });
  const wakes: number[] = [];
  rig.onSample = (m: PowerMetrics) => {
    if (!m.toppingUp) wakes.push(m.atMs);
  };
  rig.advance(6 * HOUR_MS);
  assert.ok(rig.battery.socPercent >= 45 && rig.battery.socPercent <= 58, `topped up to ${rig.battery.socPercent}`);
  assert.ok(!chgConfig(rig));
  wakes.length = 0;
  rig.advance(10 * DAY_MS);
  assert.ok(wakes.length >= 9 && wakes.length <= 11, `daily wakes: ${wakes.length}`);
  for (let i = 1; i < wakes.length; i++) assert.equal(wakes[i] - wakes[i - 1], POWER_MAINTAIN_WAKE_MS);
  // The cell drops below the window between two wakes (a long unplugged spell, say): nothing
  // happens until the next scheduled wake, which tops it up.
  rig.battery.socPercent = 35;
  const next = wakes[wakes.length - 1] + POWER_MAINTAIN_WAKE_MS;
  rig.advance(next - rig.clock.now() - MIN_MS);
  assert.ok(!chgConfig(rig), "asleep until the scheduled wake");
  assert.ok(rig.battery.socPercent < 36);
  rig.advance(6 * HOUR_MS);
  assert.ok(rig.battery.socPercent >= 45 && rig.battery.socPercent <= 58, `topped up to ${rig.battery.socPercent}`);
  assert.ok(!chgConfig(rig));
  assert.ok(rig.service.topUps >= 2);
});

test("unattended in normal mode without input: LOW_BATTERY, then CRITICAL -> onCritical -> shutdown", () => {
  const rig = new PowerRig({
    socPercent: 35,
    temperatureC: 25,
    vbus: false,
    systemLoadMa: 0.1,
    mode: ChargeMode.NORMAL,
    service: { sampleMs: HOUR_MS },
  });
  let lowAt = -1;
  let critAt = -1;
  let days = 0;
  while (rig.events.indexOf("shutdown") < 0 && days < 800) {
    rig.advance(DAY_MS);
    days++;
    if (lowAt < 0 && active(rig, PowerAlarmKind.LOW_BATTERY)) lowAt = days;
    if (critAt < 0 && active(rig, PowerAlarmKind.CRITICAL_BATTERY)) critAt = days;
  }
  assert.ok(days > 200 && days < 800, `${days} days to shutdown`);
  assert.ok(lowAt > 0 && critAt > lowAt, `low on day ${lowAt}, critical on day ${critAt}`);
  assert.deepEqual(rig.events, ["critical", "sealed", "shutdown"]);
  const kinds = rig.alarms.map((a) => a.kind);
  assert.ok(kinds.indexOf(PowerAlarmKind.LOW_BATTERY) < kinds.indexOf(PowerAlarmKind.CRITICAL_BATTERY));
  const crit = rig.alarmsOf(PowerAlarmKind.CRITICAL_BATTERY);
  assert.equal(crit.length, 1);
  assert.ok((crit[0].stateOfChargePermille ?? 0) <= 50);
  assert.ok(rig.battery.socPercent > 1, `the cell is shut down before it is at risk: ${rig.battery.socPercent} %`);
  // Nothing more happens after the shutdown.
  const n = rig.service.samples;
  rig.advance(10 * DAY_MS);
  assert.equal(rig.service.samples, n);
  assert.equal(rig.events.length, 3);
});

test("critical battery: shutdown after the timeout when the firmware never calls done", () => {
  const rig = new PowerRig({
    socPercent: 4,
    temperatureC: 25,
    vbus: false,
    sealMs: -1,
    service: { criticalTimeoutMs: 7000 },
  });
  rig.advance(1100);
  assert.deepEqual(rig.events, ["critical"]);
  assert.ok(active(rig, PowerAlarmKind.CRITICAL_BATTERY));
  rig.advance(6000);
  assert.deepEqual(rig.events, ["critical"]);
  rig.advance(1000);
  assert.deepEqual(rig.events, ["critical", "shutdown"]);
});

test("critical battery by voltage under load (3.3 V)", () => {
  // A cold, loaded cell sags: 3.3 V at the terminals long before the gauge says 5 %.
  const rig = new PowerRig({ socPercent: 12, temperatureC: 0, vbus: false, systemLoadMa: 1500 });
  rig.advance(30 * MIN_MS);
  assert.ok(rig.events.indexOf("shutdown") >= 0);
  const crit = rig.alarmsOf(PowerAlarmKind.CRITICAL_BATTERY)[0];
  assert.ok((crit.batteryMv ?? 0) <= 3300, `at ${crit.batteryMv} mV`);
  assert.ok((crit.stateOfChargePermille ?? 0) > 50, `at ${crit.stateOfChargePermille} permille`);
});

test("discharge rate and current while draining come from the gauge's CRATE", () => {
  const rig = new PowerRig({ socPercent: 80, temperatureC: 25, vbus: false, systemLoadMa: 300 });
  rig.advance(HOUR_MS);
  const m = rig.service.metrics();
  // 300 mA from 3000 mAh: -10 %/h.
  assert.ok(m.dischargePermillePerHour < -70 && m.dischargePermillePerHour > -130, `${m.dischargePermillePerHour}`);
  assert.ok(m.currentMa < -200 && m.currentMa > -400, `${m.currentMa}`);
  assert.ok(!m.externalPower);
});

interface JeitaCase {
  t: number;
  enabled: boolean;
  ichg: number;
  vreg: number;
  alarm: boolean;
}

test("JEITA windows at the boundaries (as the TS ADC reads them)", () => {
  // The TS ADC has 0.465 % steps: -1 C reads -0.5 C, 0 C reads 0.5 C, 10 C reads 10.3 C, 44 C
  // reads 43.9 C, 45 C reads 45.2 C.
  const cases: JeitaCase[] = [
    { t: -1, enabled: false, ichg: 1472, vreg: FULL_CHARGE_MV, alarm: true },
    { t: 0, enabled: true, ichg: 704, vreg: FULL_CHARGE_MV, alarm: false },
    { t: 1, enabled: true, ichg: 704, vreg: FULL_CHARGE_MV, alarm: false },
    { t: 9, enabled: true, ichg: 704, vreg: FULL_CHARGE_MV, alarm: false },
    { t: 10, enabled: true, ichg: 1472, vreg: FULL_CHARGE_MV, alarm: false },
    { t: 11, enabled: true, ichg: 1472, vreg: FULL_CHARGE_MV, alarm: false },
    { t: 44, enabled: true, ichg: 1472, vreg: 4096, alarm: false },
    { t: 45, enabled: false, ichg: 1472, vreg: 4096, alarm: true },
    { t: 46, enabled: false, ichg: 1472, vreg: 4096, alarm: true },
  ];
  for (const c of cases) {
    const rig = new PowerRig({ socPercent: 50, temperatureC: c.t, mode: ChargeMode.NORMAL });
    rig.advance(2 * MIN_MS);
    const m = rig.service.metrics();
    const where = `at ${c.t} C (read ${m.temperatureDecic / 10} C)`;
    assert.equal(chgConfig(rig), c.enabled, `CHG_CONFIG ${where}`);
    assert.equal(active(rig, PowerAlarmKind.TEMPERATURE), c.alarm, `TEMPERATURE alarm ${where}`);
    if (c.enabled) {
      assert.equal(ichgMa(rig), c.ichg, `ICHG ${where}`);
      assert.equal(vregMv(rig), c.vreg, `VREG ${where}`);
      assert.ok(rig.chargerModel.chargeCurrentMa <= c.ichg + 1, `current ${where}`);
    } else {
      assert.equal(rig.chargerModel.chargeCurrentMa, 0, `no current ${where}`);
    }
  }
  // Current actually flowing: full at 11 C, reduced at 9 C (the chip's own JEITA cuts further, to
  // 20 % of ICHG), full with 4.1 V at 44 C.
  const at = (t: number): number => {
    const rig = new PowerRig({ socPercent: 20, temperatureC: t });
    rig.advance(2 * MIN_MS);
    return rig.chargerModel.chargeCurrentMa;
  };
  assert.ok(at(11) > 1400);
  assert.ok(at(9) > 0 && at(9) <= 704 / 2);
  assert.ok(at(44) > 1400);
  assert.equal(WARM_CHARGE_MV, 4100); // written as 4096 (16 mV steps, rounded down)
});

test("temperature hysteresis: leaving the hot band takes 1 C", () => {
  const rig = new PowerRig({ socPercent: 50, temperatureC: 46 });
  rig.advance(2 * MIN_MS);
  assert.ok(!chgConfig(rig));
  rig.battery.temperatureC = 44.5; // reads 44.5: still within 1 C of 45
  rig.advance(MIN_MS);
  assert.ok(!chgConfig(rig));
  assert.ok(active(rig, PowerAlarmKind.TEMPERATURE));
  rig.battery.temperatureC = 42;
  rig.advance(MIN_MS);
  assert.ok(chgConfig(rig));
  assert.equal(vregMv(rig), 4096);
  assert.ok(!active(rig, PowerAlarmKind.TEMPERATURE));
  assertAlternating(rig, PowerAlarmKind.TEMPERATURE);
});

test("charger faults become CHARGER_FAULT alarms carrying the fault bits", () => {
  const cases: { fault: "input" | "thermal" | "battery-ovp" | "safety-timer" | "ntc-open" | "ntc-short"; bit: number }[] = [
    { fault: "input", bit: CHARGER_FAULT_INPUT },
    { fault: "thermal", bit: CHARGER_FAULT_THERMAL },
    { fault: "battery-ovp", bit: CHARGER_FAULT_BATTERY_OVP },
    { fault: "safety-timer", bit: CHARGER_FAULT_SAFETY_TIMER },
    { fault: "ntc-open", bit: CHARGER_FAULT_NTC_COLD },
    { fault: "ntc-short", bit: CHARGER_FAULT_NTC_HOT },
  ];
  for (const c of cases) {
    const rig = new PowerRig({ socPercent: 50, temperatureC: 25 });
    rig.advance(2 * MIN_MS);
    assert.equal(rig.alarms.length, 0, c.fault);
    rig.chargerModel.injectFault(c.fault, true);
    rig.advance(MIN_MS);
    const raised = rig.alarmsOf(PowerAlarmKind.CHARGER_FAULT);
    assert.equal(raised.length, 1, `${c.fault}: ${JSON.stringify(rig.alarms)}`);
    assert.equal(raised[0].active, true);
    assert.ok(((raised[0].chargerFaults ?? 0) & c.bit) !== 0, `${c.fault}: bits ${raised[0].chargerFaults}`);
    assert.ok((rig.service.metrics().chargerFaults & c.bit) !== 0);
    const h: Health = {};
    rig.service.fillHealth(h);
    assert.ok(((h.powerAlarms ?? 0) & (1 << PowerAlarmKind.CHARGER_FAULT)) !== 0);
    assert.ok(((h.chargerFaults ?? 0) & c.bit) !== 0);
    rig.advance(5 * MIN_MS);
    assert.equal(rig.alarmsOf(PowerAlarmKind.CHARGER_FAULT).length, 1, `${c.fault}: raised once, not at every sample`);
    if (c.fault === "ntc-open" || c.fault === "ntc-short") {
      assert.ok(active(rig, PowerAlarmKind.TEMPERATURE), `${c.fault}: the service stops charging too`);
      assert.ok(!chgConfig(rig));
    }
    rig.chargerModel.injectFault(c.fault, false);
    if (c.fault === "safety-timer") rig.service.setMode(ChargeMode.STORAGE); // a new charge cycle clears it
    rig.advance(5 * MIN_MS);
    assert.ok(!active(rig, PowerAlarmKind.CHARGER_FAULT), `${c.fault}: cleared`);
    assertAlternating(rig, PowerAlarmKind.CHARGER_FAULT);
  }
});

test("a new fault while CHARGER_FAULT is active is reported too", () => {
  const rig = new PowerRig({ socPercent: 50, temperatureC: 25 });
  rig.advance(2 * MIN_MS);
  rig.chargerModel.injectFault("battery-ovp", true);
  rig.advance(MIN_MS);
  rig.chargerModel.injectFault("input", true);
  rig.advance(MIN_MS);
  const raised = rig.alarmsOf(PowerAlarmKind.CHARGER_FAULT);
  assert.equal(raised.length, 2);
  assert.ok(raised.every((a) => a.active === true));
  assert.ok(((raised[1].chargerFaults ?? 0) & CHARGER_FAULT_INPUT) !== 0);
});

test("a missing battery gives NO_BATTERY (and neither a gauge nor a temperature fault)", () => {
  const rig = new PowerRig({ socPercent: 50, temperatureC: 25, present: false });
  rig.advance(2 * MIN_MS);
  const m = rig.service.metrics();
  assert.ok(active(rig, PowerAlarmKind.NO_BATTERY));
  assert.equal(m.chargeState, ChargeState.NO_BATTERY);
  assert.equal(m.batteryMv, 0);
  assert.ok(!active(rig, PowerAlarmKind.GAUGE_FAULT));
  assert.ok(!active(rig, PowerAlarmKind.TEMPERATURE));
  assert.ok(!active(rig, PowerAlarmKind.CHARGER_FAULT));
  assert.ok(!chgConfig(rig));
  assert.equal(rig.alarms.length, 1);
  // Fitted again: cleared, charging resumes.
  rig.chargerModel.injectFault("no-battery", false);
  rig.advance(2 * MIN_MS);
  assert.ok(!active(rig, PowerAlarmKind.NO_BATTERY));
  assert.ok(chgConfig(rig));
  assert.ok(rig.chargerModel.chargeCurrentMa > 1000);
  // Pulled while running.
  rig.chargerModel.injectFault("no-battery", true);
  rig.advance(2 * MIN_MS);
  assert.ok(active(rig, PowerAlarmKind.NO_BATTERY));
  assertAlternating(rig, PowerAlarmKind.NO_BATTERY);
  assert.equal(rig.alarmsOf(PowerAlarmKind.GAUGE_FAULT).length, 0);
});

test("a gauge that stops answering gives GAUGE_FAULT; charging control carries on", () => {
  const rig = new PowerRig({ socPercent: 50, temperatureC: 25 });
  rig.advance(2 * MIN_MS);
  rig.simBus.setConnected(MAX17048_DEFAULT_ADDRESS, false);
  rig.advance(MIN_MS);
  assert.ok(active(rig, PowerAlarmKind.GAUGE_FAULT));
  assert.ok(!rig.service.metrics().gaugeOk);
  assert.ok(rig.service.metrics().batteryMv > 3500, "voltage from the charger's ADC");
  assert.ok(!active(rig, PowerAlarmKind.NO_BATTERY));
  rig.advance(10 * MIN_MS);
  assert.equal(rig.alarmsOf(PowerAlarmKind.GAUGE_FAULT).length, 1);
  // One NACK is retried, not reported.
  rig.simBus.setConnected(MAX17048_DEFAULT_ADDRESS, true);
  rig.advance(MIN_MS);
  assert.ok(!active(rig, PowerAlarmKind.GAUGE_FAULT));
  rig.simBus.nackNext(MAX17048_DEFAULT_ADDRESS, 1);
  rig.advance(MIN_MS);
  assert.ok(!active(rig, PowerAlarmKind.GAUGE_FAULT));
  assertAlternating(rig, PowerAlarmKind.GAUGE_FAULT);
  assert.equal(rig.alarmsOf(PowerAlarmKind.GAUGE_FAULT).length, 2);
});

test("a charger that stops answering is a CHARGER_FAULT", () => {
  const rig = new PowerRig({ socPercent: 50, temperatureC: 25 });
  rig.advance(2 * MIN_MS);
  rig.simBus.setConnected(BQ2589X_DEFAULT_ADDRESS, false);
  rig.advance(MIN_MS);
  assert.ok(active(rig, PowerAlarmKind.CHARGER_FAULT));
  assert.ok(!rig.service.metrics().chargerOk);
  rig.simBus.setConnected(BQ2589X_DEFAULT_ADDRESS, true);
  rig.advance(MIN_MS);
  assert.ok(!active(rig, PowerAlarmKind.CHARGER_FAULT));
});

test("selfTest: PASS when both chips answer, ABSENT when one does not", () => {
  const rig = new PowerRig({ socPercent: 50, temperatureC: 25 });
  assert.deepEqual(rig.service.selfTest(), { charger: Verdict.PASS, gauge: Verdict.PASS });
  rig.simBus.setConnected(MAX17048_DEFAULT_ADDRESS, false);
  assert.deepEqual(rig.service.selfTest(), { charger: Verdict.PASS, gauge: Verdict.ABSENT });
  rig.simBus.setConnected(BQ2589X_DEFAULT_ADDRESS, false);
  assert.deepEqual(rig.service.selfTest(), { charger: Verdict.ABSENT, gauge: Verdict.ABSENT });
});

test("setMode validates the ChargeMode value", () => {
  const rig = new PowerRig({ socPercent: 50, temperatureC: 25, mode: ChargeMode.NORMAL });
  rig.advance(2 * MIN_MS);
  const garbage: unknown[] = [0, 4, -1, 1.5, NaN, Infinity, "2", null, undefined, {}, [2], true];
  for (const g of garbage) {
    assert.equal(rig.service.setMode(g as number), false, `accepted ${String(g)}`);
    assert.equal(rig.service.mode, ChargeMode.NORMAL);
  }
  assert.equal(watchdogS(rig), 160);
  assert.equal(rig.service.setMode(ChargeMode.STORAGE), true);
  assert.equal(rig.service.mode, ChargeMode.STORAGE);
  assert.equal(watchdogS(rig), 0, "hourly wakes: watchdog off");
  assert.ok(!chgConfig(rig), "50 % is inside the window: no charging");
  const h: Health = {};
  rig.service.fillHealth(h);
  assert.equal(h.chargeMode, ChargeMode.STORAGE);
  assert.equal(rig.service.setMode(ChargeMode.MAINTAIN), true);
  assert.equal(rig.service.setMode(ChargeMode.NORMAL), true);
  assert.ok(chgConfig(rig));
  // A constructor with garbage falls back to NORMAL.
  const r2 = new PowerRig({ socPercent: 50, temperatureC: 25, mode: 99 });
  assert.equal(r2.service.mode, ChargeMode.NORMAL);
});

test("state of health from coulomb counting a top-up; AGEING_CELL below 80 %", () => {
  const fresh = new PowerRig({ socPercent: 10, temperatureC: 25, mode: ChargeMode.STORAGE });
  fresh.advance(2 * DAY_MS);
  const soh = fresh.service.stateOfHealthPermille();
  assert.ok(Math.abs(soh - fresh.battery.stateOfHealth * 1000) <= 60, `estimated ${soh}, truth ${fresh.battery.stateOfHealth}`);
  assert.ok(!active(fresh, PowerAlarmKind.AGEING_CELL));
  const aged = new PowerRig({ socPercent: 10, temperatureC: 25, cycles: 650, mode: ChargeMode.STORAGE });
  aged.advance(2 * DAY_MS);
  const est = aged.service.stateOfHealthPermille();
  assert.ok(aged.battery.stateOfHealth < 0.76);
  assert.ok(Math.abs(est - aged.battery.stateOfHealth * 1000) <= 60, `estimated ${est}, truth ${aged.battery.stateOfHealth}`);
  assert.ok(active(aged, PowerAlarmKind.AGEING_CELL));
  assert.ok(aged.battery.socPercent >= 40 && aged.battery.socPercent <= 60, `aged cell at ${aged.battery.socPercent}`);
  const h: Health = {};
  aged.service.fillHealth(h);
  assert.equal(h.stateOfHealthPermille, est);
});

test("cycle count from charge throughput", () => {
  const rig = new PowerRig({ socPercent: 5, temperatureC: 25, service: { cycleCount: 7 } });
  assert.equal(rig.service.cycleCount(), 7);
  rig.advance(4 * HOUR_MS); // ~2850 mAh in
  assert.equal(rig.service.cycleCount(), 7);
  // Use it off the charger down to ~20 %, then charge again: > 3000 mAh in total.
  rig.chargerModel.setVbus(false);
  rig.chargerModel.systemLoadMa = 1500;
  rig.advance(96 * MIN_MS);
  rig.chargerModel.systemLoadMa = 0;
  rig.chargerModel.setVbus(true);
  rig.advance(4 * HOUR_MS);
  assert.equal(rig.service.cycleCount(), 8);
  assert.equal(rig.service.metrics().cycleCount, 8);
  // The cell's own throughput counts charge and discharge (1500 mA for 96 min out).
  const charged = rig.battery.throughput - 1500 * 1.6;
  assert.ok(Math.abs(rig.service.chargedMah() - charged) < 0.03 * charged, `${rig.service.chargedMah()} of ${charged} mAh`);
});

test("a charger absent at start is a CHARGER_FAULT; it is configured when it answers", () => {
  const rig = new PowerRig({ socPercent: 50, temperatureC: 25, noStart: true });
  rig.simBus.setConnected(BQ2589X_DEFAULT_ADDRESS, false);
  rig.service.start();
  rig.advance(2 * MIN_MS);
  assert.ok(active(rig, PowerAlarmKind.CHARGER_FAULT));
  assert.equal(rig.service.metrics().chargeState, ChargeState.UNKNOWN);
  assert.ok(rig.service.metrics().gaugeOk, "the gauge still reports");
  rig.simBus.setConnected(BQ2589X_DEFAULT_ADDRESS, true);
  rig.advance(2 * MIN_MS);
  assert.ok(!active(rig, PowerAlarmKind.CHARGER_FAULT));
  assert.equal(ichgMa(rig), 1472);
  assert.ok(chgConfig(rig));
  assert.equal(rig.service.metrics().chargeState, ChargeState.FAST_CHARGE);
});

test("stop() gives the input back when the drain had cut it", () => {
  const rig = new PowerRig({ socPercent: 80, temperatureC: 25, mode: ChargeMode.STORAGE, systemLoadMa: 5 });
  rig.advance(2 * HOUR_MS);
  assert.ok(hiz(rig));
  rig.service.stop();
  assert.ok(!hiz(rig));
  const n = rig.service.samples;
  rig.advance(DAY_MS);
  assert.equal(rig.service.samples, n, "no samples after stop");
});

test("after a low-battery shutdown: no restart on a flat cell without input power; input power or a charged cell allows it", () => {
  const flat = new PowerRig({ socPercent: 3, temperatureC: 25, vbus: false, noStart: true });
  assert.equal(flat.service.restartAllowed(), false);
  let resumed = 0;
  assert.equal(flat.service.holdAfterShutdown(() => resumed++), true, "held");
  flat.advance(10 * RESTART_POLL_MS);
  assert.equal(resumed, 0, "still flat, still no input power");
  flat.chargerModel.setVbus(true);
  flat.advance(RESTART_POLL_MS);
  assert.equal(resumed, 1, "input power: resumed once");
  flat.advance(10 * RESTART_POLL_MS);
  assert.equal(resumed, 1, "and only once");
  assert.equal(flat.service.restartAllowed(), true);
  assert.equal(flat.service.holdAfterShutdown(() => resumed++), false, "no hold on input power");

  // A bad adapter is no input power.
  const bad = new PowerRig({ socPercent: 3, temperatureC: 25, vbus: true, noStart: true });
  bad.chargerModel.injectFault("input");
  assert.equal(bad.service.restartAllowed(), false);

  // A cell at the restart threshold (a charged pack fitted) may start without input power; just
  // above the critical level may not.
  assert.equal(new PowerRig({ socPercent: 12, temperatureC: 25, vbus: false, noStart: true }).service.restartAllowed(), true);
  assert.equal(new PowerRig({ socPercent: 7, temperatureC: 25, vbus: false, noStart: true }).service.restartAllowed(), false);
});
