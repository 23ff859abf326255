// The MAX1704x fuel gauge driver against the MAX17048 chip model over the simulated I2C bus, with a
// battery model under the chip: every register path, the SOC estimate against the battery's truth
// across a discharge, CRATE, alerts, quick-start, hibernate, reset, and a chip that does not answer.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  GAUGE_ALERT_HD,
  GAUGE_ALERT_RI,
  GAUGE_ALERT_VH,
  GAUGE_ALERT_VL,
  Max1704x,
  MAX1704X_DEFAULT_ADDRESS,
  MAX1704X_HIBRT_AUTO,
} from "./fuel_gauge_max1704x.ts";
import { SimI2cBus } from "../../simulator/models/i2c_bus.ts";
import { BatteryModel, type BatteryOptions } from "../../simulator/models/battery.ts";
import { Max17048Model, MAX_REG, MAX_STATUS } from "../../simulator/models/max17048.ts";

interface Rig {
  bus: SimI2cBus;
  battery: BatteryModel;
  chip: Max17048Model;
  drv: Max1704x;
}

function rig(battery?: Partial<BatteryOptions>): Rig {
  const bus = new SimI2cBus();
  const b = new BatteryModel({ capacityMah: 3000, socPercent: 80, temperatureC: 25, ...battery });
  const chip = new Max17048Model({ battery: b });
  bus.attach(MAX1704X_DEFAULT_ADDRESS, chip);
  return { bus, battery: b, chip, drv: new Max1704x({ bus }) };
}

/** Battery and gauge advance together: the load drains the cell, the gauge samples it. */
function run(r: Rig, seconds: number, currentMa: number, dt: number): void {
  for (let t = 0; t < seconds; t += dt) {
    r.battery.step(dt, currentMa);
    r.chip.step(dt);
  }
}

test("probe: a MAX17048 answers with VERSION 0x001X; nothing or a NACK does not", () => {
  const r = rig();
  assert.equal(r.drv.probe(), true);
  assert.equal(r.drv.version, 0x0012);
  assert.equal(new Max1704x({ bus: new SimI2cBus() }).probe(), false);
  const other = new SimI2cBus();
  other.attach(MAX1704X_DEFAULT_ADDRESS, new Max17048Model({ battery: r.battery, version: 0x0003 }));
  assert.equal(new Max1704x({ bus: other }).probe(), false, "a MAX17043 VERSION");
  r.bus.nackNext(MAX1704X_DEFAULT_ADDRESS, 1);
  assert.equal(r.drv.read(), null);
  assert.ok(r.drv.read());
});

test("a removed battery unpowers the gauge; putting it back resets it (RI)", () => {
  const r = rig();
  assert.ok(r.drv.clearAlert());
  assert.equal(r.drv.read()?.alertFlags, 0);
  r.battery.present = false;
  assert.equal(r.drv.probe(), false);
  assert.equal(r.drv.read(), null);
  assert.equal(r.drv.quickStart(), false);
  assert.equal(r.drv.setAlertThreshold(10), false);
  assert.equal(r.drv.clearAlert(), false);
  assert.equal(r.drv.hibernate(true), false);
  assert.equal(r.drv.setRcomp(0x80), false);
  r.battery.present = true;
  const g = r.drv.read();
  assert.ok(g && (g.alertFlags & GAUGE_ALERT_RI) !== 0, "reset indicator after power-up");
});

test("read: VCELL, SOC, CRATE and flags decode the registers", () => {
  const r = rig({ socPercent: 60 });
  r.battery.step(1, -200);
  r.chip.step(1);
  const g = r.drv.read();
  assert.ok(g);
  const vcell = r.chip.register(MAX_REG.VCELL);
  assert.equal(g.voltageMv, Math.round(vcell * 0.078125));
  assert.ok(Math.abs(g.voltageMv - r.battery.terminalMv()) <= 1, `${g.voltageMv} vs ${r.battery.terminalMv()}`);
  assert.equal(g.socPermille, Math.round((r.chip.register(MAX_REG.SOC) * 10) / 256));
  assert.ok(Math.abs(g.socPermille - 600) < 50, `quick-started near 60 %: ${g.socPermille}`);
  assert.equal(g.alertFlags & GAUGE_ALERT_RI, GAUGE_ALERT_RI);
  assert.equal(g.hibernating, false);
});

test("SOC stays within a few % of the truth across a discharge and a charge", () => {
  const r = rig({ socPercent: 100 });
  run(r, 3600, -150, 60);
  let worst = 0;
  while (r.battery.socPercent > 5) {
    run(r, 1800, -150, 60);
    const g = r.drv.read();
    assert.ok(g);
    const err = g.socPermille / 10 - r.battery.socPercent;
    if (Math.abs(err) > Math.abs(worst)) worst = err;
  }
  assert.ok(Math.abs(worst) < 3, `worst error over the discharge: ${worst} %`);
  assert.ok(worst !== 0, "an estimate, not a copy of the truth");
  // Charging back at 1 A (the current tapers near full in reality; here a plain 1 A to 90 %).
  worst = 0;
  while (r.battery.socPercent < 90) {
    run(r, 600, 1000, 30);
    const g = r.drv.read();
    assert.ok(g);
    if (r.battery.socPercent > 20) worst = Math.max(worst, Math.abs(g.socPermille / 10 - r.battery.socPercent));
  }
  assert.ok(worst < 5, `worst error while charging: ${worst} %`);
});

test("CRATE: negative while discharging, positive while charging, about the true rate", () => {
  const r = rig({ socPercent: 70 });
  run(r, 2 * 3600, -300, 30);
  let g = r.drv.read();
  assert.ok(g);
  // 300 mA of 3000 mAh = -10 %/h = -100 permille/h.
  assert.ok(g.cratePermillePerHour < -70 && g.cratePermillePerHour > -130, `discharge ${g.cratePermillePerHour}`);
  run(r, 2 * 3600, 600, 30);
  g = r.drv.read();
  assert.ok(g && g.cratePermillePerHour > 140 && g.cratePermillePerHour < 260, `charge ${g?.cratePermillePerHour}`);
  run(r, 3600, 0, 60);
  g = r.drv.read();
  assert.ok(g && Math.abs(g.cratePermillePerHour) < 10, `resting ${g?.cratePermillePerHour}`);
});

test("low-SOC alert: threshold register, HD flag and ALRT when crossed, clearAlert releases it", () => {
  const r = rig({ socPercent: 30 });
  assert.equal(r.drv.setAlertThreshold(20), true);
  assert.equal(r.chip.register(MAX_REG.CONFIG) & 0x1f, 12, "ATHD = 32 - 20");
  assert.equal(r.drv.setAlertThreshold(0), false);
  assert.equal(r.drv.setAlertThreshold(33), false);
  assert.equal(r.drv.setAlertThreshold(2.5), false);
  assert.ok(r.drv.clearAlert());
  let g = r.drv.read();
  assert.ok(g && !g.alert && g.alertFlags === 0);
  assert.equal(r.chip.alertAsserted, false);
  run(r, 2 * 3600, -300, 60);
  g = r.drv.read();
  assert.ok(g && g.socPermille < 200, `below 20 %: ${g?.socPermille}`);
  assert.equal(g.alert, true);
  assert.equal(g.alertFlags & GAUGE_ALERT_HD, GAUGE_ALERT_HD);
  assert.equal(r.chip.alertAsserted, true);
  assert.ok(r.drv.clearAlert());
  g = r.drv.read();
  assert.ok(g && !g.alert && g.alertFlags === 0);
  assert.equal(r.chip.register(MAX_REG.STATUS) & 0x3f00, 0);
  // Further down it does not fire again: it fires when the SOC crosses the threshold.
  run(r, 1800, -300, 60);
  assert.equal(r.drv.read()?.alert, false);
});

test("voltage alerts: VALRT register, VL and VH flags", () => {
  const r = rig({ socPercent: 50 });
  assert.equal(r.drv.setVoltageAlerts(3500, 4100), true);
  assert.equal(r.chip.register(MAX_REG.VALRT), (175 << 8) | 205);
  assert.equal(r.drv.setVoltageAlerts(4000, 3000), false);
  assert.equal(r.drv.setVoltageAlerts(-20, 3000), false);
  assert.ok(r.drv.clearAlert());
  r.battery.socPercent = 2;
  run(r, 1, 0, 1);
  let g = r.drv.read();
  assert.ok(g && (g.alertFlags & GAUGE_ALERT_VL) !== 0 && g.alert);
  assert.ok(r.drv.clearAlert());
  r.battery.socPercent = 99;
  run(r, 1, 0, 1);
  g = r.drv.read();
  assert.ok(g && (g.alertFlags & GAUGE_ALERT_VH) !== 0 && g.alert);
});

test("quick-start re-seeds the SOC from the present voltage", () => {
  const r = rig({ socPercent: 80 });
  assert.ok(r.drv.clearAlert());
  // The truth jumps (as if the gauge had been misled), the estimate only follows slowly.
  r.battery.socPercent = 40;
  run(r, 10, 0, 1);
  let g = r.drv.read();
  assert.ok(g && g.socPermille > 600, `still lagging: ${g?.socPermille}`);
  assert.equal(r.drv.quickStart(), true);
  assert.ok(r.chip.writes.some((w) => w.reg === MAX_REG.MODE && (w.value & 0x4000) !== 0), "MODE.Quick-Start written");
  assert.equal(r.chip.register(MAX_REG.MODE) & 0x4000, 0, "the bit clears itself");
  g = r.drv.read();
  assert.ok(g && Math.abs(g.socPermille - 400) < 20, `re-seeded at rest: ${g?.socPermille}`);
});

test("hibernate: HIBRT, MODE.HibStat, samples every 45 s; automatic thresholds", () => {
  const r = rig({ socPercent: 60 });
  assert.equal(r.drv.hibernate(true), true);
  assert.equal(r.chip.register(MAX_REG.HIBRT), 0xffff);
  assert.equal(r.drv.read()?.hibernating, true);
  run(r, 45, 0, 1);
  const v0 = r.drv.read()?.voltageMv ?? 0;
  r.battery.socPercent = 30; // the voltage drops by ~90 mV
  run(r, 20, 0, 1);
  assert.equal(r.drv.read()?.voltageMv, v0, "no sample yet");
  run(r, 30, 0, 1);
  assert.ok((r.drv.read()?.voltageMv ?? v0) < v0 - 50, "sampled within 45 s");
  assert.equal(r.drv.hibernate(false), true);
  assert.equal(r.chip.register(MAX_REG.HIBRT), MAX1704X_HIBRT_AUTO);
  assert.equal(r.drv.setHibernateThresholds(0), true);
  assert.equal(r.drv.read()?.hibernating, false, "HIBRT 0: never hibernate");
  assert.equal(r.drv.setHibernateThresholds(0x10000), false);
  // Automatic: a resting cell (|CRATE| under 10 %/h) hibernates after 6 minutes. (After the jump
  // above the estimate is still moving fast: quick-start settles it.)
  assert.ok(r.drv.quickStart());
  assert.ok(r.drv.hibernate(false));
  run(r, 300, 0, 1);
  assert.equal(r.drv.read()?.hibernating, false);
  run(r, 120, 0, 1);
  assert.equal(r.drv.read()?.hibernating, true);
});

test("RCOMP, sleep, ID and the reset command", () => {
  const r = rig();
  assert.equal(r.drv.setRcomp(0xa0), true);
  assert.equal(r.chip.register(MAX_REG.CONFIG) >> 8, 0xa0);
  assert.equal(r.drv.setRcomp(256), false);
  assert.equal(r.drv.setRcomp(-1), false);
  assert.equal(r.drv.readId(), 0);
  // Sleep: no conversions.
  assert.equal(r.drv.sleep(true), true);
  assert.equal(r.chip.register(MAX_REG.MODE) & 0x2000, 0x2000);
  assert.equal(r.chip.register(MAX_REG.CONFIG) & 0x80, 0x80);
  const v0 = r.drv.read()?.voltageMv;
  r.battery.socPercent = 20;
  run(r, 60, 0, 1);
  assert.equal(r.drv.read()?.voltageMv, v0);
  assert.equal(r.drv.sleep(false), true);
  run(r, 1, 0, 1);
  assert.notEqual(r.drv.read()?.voltageMv, v0);
  // Reset: the chip does not ACK the command, the driver checks RI instead; defaults are back.
  assert.ok(r.drv.clearAlert());
  const nacks = r.bus.countersFor(MAX1704X_DEFAULT_ADDRESS).nacks;
  assert.equal(r.drv.reset(), true);
  assert.equal(r.bus.countersFor(MAX1704X_DEFAULT_ADDRESS).nacks, nacks + 1);
  assert.equal(r.chip.register(MAX_REG.CONFIG), 0x971c);
  assert.equal(r.chip.register(MAX_REG.STATUS) & MAX_STATUS.RI, MAX_STATUS.RI);
});

test("register writes land on the chip as 16-bit big-endian words", () => {
  const r = rig();
  assert.ok(r.drv.setRcomp(0x80));
  assert.ok(r.drv.setAlertThreshold(10));
  const config = r.chip.writes.filter((w) => w.reg === MAX_REG.CONFIG).map((w) => w.value);
  assert.deepEqual(config, [0x801c, 0x8016]);
  // A corrupted write is caught by the read-back.
  let armed = true;
  r.bus.onTransaction = (t) => {
    if (armed && t.kind === "read") {
      armed = false;
      r.bus.corruptNextWrite(MAX1704X_DEFAULT_ADDRESS);
    }
  };
  assert.equal(r.drv.setRcomp(0x90), false);
  r.bus.onTransaction = null;
  assert.equal(r.drv.setRcomp(0x90), true);
});
