// The BQ2589x charger driver against the BQ25895 chip model over the simulated I2C bus, with a
// battery model behind the chip: every register path, status and fault decoding, the fault latch,
// the I2C watchdog, the ADC against the battery's truth, and a chip that does not answer.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Bq2589x,
  BQ2589X_DEFAULT_ADDRESS,
  CHARGER_FAULT_BATTERY_OVP,
  CHARGER_FAULT_BOOST,
  CHARGER_FAULT_INPUT,
  CHARGER_FAULT_NTC_COLD,
  CHARGER_FAULT_NTC_COOL,
  CHARGER_FAULT_NTC_HOT,
  CHARGER_FAULT_NTC_WARM,
  CHARGER_FAULT_SAFETY_TIMER,
  CHARGER_FAULT_THERMAL,
  CHARGER_FAULT_WATCHDOG,
  deciCToTsPercent,
  tsPercentToDeciC,
  type ChargerConfig,
} from "./charger_bq2589x.ts";
import { ChargeState } from "../../protocol/generated/device_codec.ts";
import { SimI2cBus } from "../../simulator/models/i2c_bus.ts";
import { BatteryModel, type BatteryOptions } from "../../simulator/models/battery.ts";
import {
  Bq25895Model,
  BQ_REG,
  BQ_TS_OPEN_PERCENT,
  type Bq25895Options,
} from "../../simulator/models/bq25895.ts";

interface Rig {
  bus: SimI2cBus;
  battery: BatteryModel;
  chip: Bq25895Model;
  drv: Bq2589x;
}

function rig(battery?: Partial<BatteryOptions>, chip?: Partial<Bq25895Options>): Rig {
  const bus = new SimI2cBus();
  const b = new BatteryModel({ capacityMah: 3000, socPercent: 50, temperatureC: 25, ...battery });
  const c = new Bq25895Model({ battery: b, ...chip });
  bus.attach(BQ2589X_DEFAULT_ADDRESS, c);
  const drv = new Bq2589x({ bus });
  return { bus, battery: b, chip: c, drv };
}

const CONFIG: ChargerConfig = {
  inputCurrentLimitMa: 2000,
  chargeCurrentMa: 1024,
  chargeVoltageMv: 4208,
  prechargeCurrentMa: 128,
  terminationCurrentMa: 128,
  watchdogS: 0,
};

/** readStatus twice: the first read returns what was latched, the second the present state. */
function present(drv: Bq2589x) {
  drv.readStatus();
  const s = drv.readStatus();
  assert.ok(s);
  return s;
}

test("probe finds a BQ25895 (JEITA profile by default) and reads its TS profile", () => {
  const r = rig();
  assert.equal(r.drv.probe(), true);
  assert.equal(r.drv.partNumber, 7);
  assert.equal(r.drv.jeita, true);
  const hc = rig({}, { tsProfile: "hot-cold" });
  assert.equal(hc.drv.probe(), true);
  assert.equal(hc.drv.jeita, false);
  const other = rig({}, { partNumber: 0b101 });
  assert.equal(other.drv.probe(), false, "a part number that is not a BQ2589x");
  assert.equal(new Bq2589x({ bus: new SimI2cBus() }).probe(), false, "no chip at 0x6A");
});

test("a missing or NACKing chip: probe false, readStatus null, setters false", () => {
  const drv = new Bq2589x({ bus: new SimI2cBus() });
  assert.equal(drv.readStatus(), null);
  assert.equal(drv.setChargeCurrent(512), false);
  assert.equal(drv.enableCharging(true), false);
  assert.equal(drv.kickWatchdog(), false);
  assert.equal(drv.startAdc(), false);
  assert.equal(drv.configure(CONFIG), false);
  const r = rig();
  assert.equal(r.drv.probe(), true);
  r.bus.nackNext(BQ2589X_DEFAULT_ADDRESS, 1);
  assert.equal(r.drv.readStatus(), null);
  r.bus.setConnected(BQ2589X_DEFAULT_ADDRESS, false);
  assert.equal(r.drv.readStatus(), null);
  assert.equal(r.drv.setChargeVoltage(4100), false);
  r.bus.setConnected(BQ2589X_DEFAULT_ADDRESS, true);
  assert.ok(r.drv.readStatus());
  // No input and no battery: the chip is unpowered and NACKs.
  const dead = rig({ present: false });
  assert.equal(dead.drv.probe(), false);
  assert.equal(dead.drv.readStatus(), null);
});

test("each setter writes its field and reads back from the chip's registers", () => {
  const { chip, drv } = rig();
  assert.equal(drv.setChargeCurrent(1000), true);
  assert.equal(chip.register(BQ_REG.ICHG) & 0x7f, 15, "1000 mA rounds down to 960 mA (15 x 64)");
  assert.equal(drv.setChargeCurrent(0), true);
  assert.equal(chip.register(BQ_REG.ICHG), 0);
  assert.equal(drv.setChargeCurrent(5056), true);
  assert.equal(chip.register(BQ_REG.ICHG), 0x4f);
  for (const bad of [-1, 5057, NaN, Infinity]) assert.equal(drv.setChargeCurrent(bad), false, `ICHG ${bad}`);

  assert.equal(drv.setChargeVoltage(4208), true);
  assert.equal(chip.register(BQ_REG.VREG), (23 << 2) | 0x02, "VREG 4208 mV, BATLOWV 3.0 V kept");
  assert.equal(drv.setChargeVoltage(4100), true);
  assert.equal(chip.register(BQ_REG.VREG) >> 2, 16, "4100 mV rounds down to 4096 mV");
  for (const bad of [3839, 4609]) assert.equal(drv.setChargeVoltage(bad), false);

  assert.equal(drv.setInputCurrentLimit(1500), true);
  assert.equal(chip.register(BQ_REG.INPUT), 0x40 | 28, "IINLIM 1500 mA, EN_ILIM kept");
  for (const bad of [99, 3251]) assert.equal(drv.setInputCurrentLimit(bad), false);

  assert.equal(drv.setPrechargeCurrent(256), true);
  assert.equal(chip.register(BQ_REG.PRE_TERM) >> 4, 3);
  assert.equal(drv.setTerminationCurrent(64), true);
  assert.equal(chip.register(BQ_REG.PRE_TERM), 0x30);
  assert.equal(drv.setTerminationCurrent(1100), false);

  assert.equal(drv.setWatchdog(160), true);
  assert.equal((chip.register(BQ_REG.TIMER) >> 4) & 3, 3);
  assert.equal(drv.setWatchdog(0), true);
  assert.equal((chip.register(BQ_REG.TIMER) >> 4) & 3, 0);
  assert.equal(drv.setWatchdog(30), false);

  assert.equal(drv.enableCharging(false), true);
  assert.equal(chip.register(BQ_REG.SYS_CTRL) & 0x10, 0);
  assert.equal(drv.enableCharging(true), true);
  assert.equal(chip.register(BQ_REG.SYS_CTRL) & 0x10, 0x10);

  assert.equal(drv.setHighImpedance(true), true);
  assert.equal(chip.register(BQ_REG.INPUT) & 0x80, 0x80);
  assert.equal(drv.setAdcContinuous(true), true);
  assert.equal(chip.register(BQ_REG.ADC_CTRL) & 0x40, 0x40);
  assert.equal(drv.startAdc(), false, "no one-shot while converting continuously");

  // The model saw each write as a register write.
  const regs = new Set(chip.writes.map((w) => w.reg));
  for (const reg of [BQ_REG.INPUT, BQ_REG.ADC_CTRL, BQ_REG.SYS_CTRL, BQ_REG.ICHG, BQ_REG.PRE_TERM, BQ_REG.VREG, BQ_REG.TIMER]) {
    assert.ok(regs.has(reg), `a write to REG${reg.toString(16)}`);
  }
});

test("configure writes every field, verifies it, and rejects bad values without writing", () => {
  const { bus, chip, drv } = rig({}, { vbus: true });
  assert.equal(drv.configure({ ...CONFIG, watchdogS: 80 }), true);
  assert.equal(chip.register(BQ_REG.INPUT) & 0xbf, 38, "IINLIM 2000 mA, HIZ off");
  assert.equal(chip.register(BQ_REG.ICHG) & 0x7f, 16);
  assert.equal(chip.register(BQ_REG.PRE_TERM), 0x11);
  assert.equal(chip.register(BQ_REG.VREG) >> 2, 23);
  assert.equal((chip.register(BQ_REG.TIMER) >> 4) & 3, 2);
  assert.ok(chip.writes.some((w) => w.reg === BQ_REG.SYS_CTRL && (w.value & 0x40) !== 0), "WD_RST written");
  assert.equal(chip.register(BQ_REG.SYS_CTRL) & 0x40, 0, "WD_RST clears itself");

  const before = chip.writes.length;
  for (const bad of [
    { ...CONFIG, chargeVoltageMv: 5000 },
    { ...CONFIG, inputCurrentLimitMa: 50 },
    { ...CONFIG, prechargeCurrentMa: 0 },
    { ...CONFIG, terminationCurrentMa: 2048 },
    { ...CONFIG, chargeCurrentMa: -64 },
    { ...CONFIG, watchdogS: 60 },
  ]) {
    assert.equal(drv.configure(bad), false, JSON.stringify(bad));
  }
  assert.equal(chip.writes.length, before, "nothing written for a rejected configuration");

  // A data write corrupted on the bus (after configure's first read) is caught by the read-back.
  let armed = true;
  bus.onTransaction = (t) => {
    if (armed && t.kind === "read") {
      armed = false;
      bus.corruptNextWrite(BQ2589X_DEFAULT_ADDRESS);
    }
  };
  assert.equal(drv.configure({ ...CONFIG, chargeCurrentMa: 512 }), false);
  bus.onTransaction = null;
  assert.equal(drv.configure({ ...CONFIG, chargeCurrentMa: 512 }), true);
});

test("charge states: not charging, pre-charge, fast charge, done, disabled", () => {
  const off = rig();
  assert.equal(off.drv.probe(), true);
  let s = present(off.drv);
  assert.equal(s.vbusPresent, false);
  assert.equal(s.powerGood, false);
  assert.equal(s.chargeState, ChargeState.NOT_CHARGING);

  const low = rig({ socPercent: -3 }, { vbus: true });
  assert.ok(low.drv.configure(CONFIG));
  low.chip.step(1);
  s = present(low.drv);
  assert.equal(s.vbusPresent, true);
  assert.equal(s.powerGood, true);
  assert.equal(s.chargeState, ChargeState.PRE_CHARGE, "below BATLOWV 3.0 V");
  assert.ok(Math.abs(low.chip.chargeCurrentMa - 128) < 1, "pre-charge current");
  low.chip.step(3600);
  assert.equal(present(low.drv).chargeState, ChargeState.FAST_CHARGE);
  assert.ok(Math.abs(low.chip.chargeCurrentMa - 1024) < 1, "fast charge at ICHG");

  // Through constant voltage to termination.
  low.chip.step(5 * 3600);
  s = present(low.drv);
  assert.equal(s.chargeState, ChargeState.DONE);
  assert.ok(low.battery.socPercent > 97, `full: ${low.battery.socPercent}`);
  assert.equal(low.chip.chargeCurrentMa, 0);

  assert.ok(low.drv.enableCharging(false));
  assert.equal(present(low.drv).chargeState, ChargeState.NOT_CHARGING);
  // Re-enabling starts a new cycle, which terminates at once on a full battery.
  assert.ok(low.drv.enableCharging(true));
  low.chip.step(10);
  assert.equal(present(low.drv).chargeState, ChargeState.DONE);
});

test("a done battery recharges when it falls VRECHG below VREG", () => {
  const { chip, battery, drv } = rig({ socPercent: 99 }, { vbus: true });
  assert.ok(drv.configure(CONFIG));
  chip.step(3600);
  assert.equal(present(drv).chargeState, ChargeState.DONE);
  battery.socPercent = 88; // self-discharge, in short
  chip.step(60);
  assert.equal(present(drv).chargeState, ChargeState.FAST_CHARGE);
});

test("faults are latched until read, then show the present condition", () => {
  const { bus, chip, drv } = rig({}, { vbus: true });
  assert.ok(drv.probe());
  // Power-on: the chip starts in default mode with the watchdog expired.
  assert.ok(((drv.readStatus()?.faults ?? 0) & CHARGER_FAULT_WATCHDOG) !== 0);
  assert.equal(drv.readStatus()?.faults, 0);
  assert.ok(drv.configure(CONFIG));

  chip.injectFault("input");
  chip.step(1);
  chip.injectFault("input", false);
  chip.step(1);
  let s = drv.readStatus();
  assert.ok(s && (s.faults & CHARGER_FAULT_INPUT) !== 0, "latched input fault");
  s = drv.readStatus();
  assert.ok(s && (s.faults & CHARGER_FAULT_INPUT) === 0, "cleared by the read");

  chip.injectFault("input");
  s = present(drv);
  assert.ok((s.faults & CHARGER_FAULT_INPUT) !== 0, "a present fault stays");
  assert.equal(s.powerGood, false);
  assert.equal(s.vbusPresent, true);
  assert.equal(s.chargeState, ChargeState.NOT_CHARGING);
  chip.injectFault("input", false);
  present(drv);

  chip.injectFault("thermal");
  chip.injectFault("thermal", false);
  assert.ok(((drv.readStatus()?.faults ?? 0) & CHARGER_FAULT_THERMAL) !== 0);
  assert.equal(drv.readStatus()?.faults, 0);

  chip.injectFault("battery-ovp");
  s = present(drv);
  assert.ok((s.faults & CHARGER_FAULT_BATTERY_OVP) !== 0);
  assert.equal(s.chargeState, ChargeState.NOT_CHARGING);
  chip.injectFault("battery-ovp", false);
  drv.readStatus();

  chip.injectFault("boost");
  assert.ok(((drv.readStatus()?.faults ?? 0) & CHARGER_FAULT_BOOST) !== 0);
  assert.equal(drv.readStatus()?.faults, 0);

  // REG0C cannot be read in a burst: the chip model answers 0xFF there and keeps its latch.
  chip.injectFault("boost");
  bus.write(BQ2589X_DEFAULT_ADDRESS, Uint8Array.of(BQ_REG.STATUS));
  const burst = bus.read(BQ2589X_DEFAULT_ADDRESS, 2);
  assert.equal(burst?.[1], 0xff);
  assert.ok(((drv.readStatus()?.faults ?? 0) & CHARGER_FAULT_BOOST) !== 0, "still latched after the burst");
});

test("battery over-voltage when VREG is set below the battery (e.g. storage voltage on a full cell)", () => {
  const { chip, drv } = rig({ socPercent: 100 }, { vbus: true });
  assert.ok(drv.configure(CONFIG));
  present(drv);
  assert.ok(drv.setChargeVoltage(3840)); // 4.2 V > 104 % of 3.84 V
  const s = drv.readStatus();
  assert.ok(s && (s.faults & CHARGER_FAULT_BATTERY_OVP) !== 0);
  assert.equal(s?.chargeState, ChargeState.NOT_CHARGING);
  chip.step(60);
  assert.equal(chip.chargeCurrentMa, 0);
});

test("the safety timer stops a charge that takes too long", () => {
  // A huge cell at 512 mA never finishes within the default 12 h timer.
  const { chip, drv } = rig({ capacityMah: 100000, socPercent: 20 }, { vbus: true });
  assert.ok(drv.configure({ ...CONFIG, chargeCurrentMa: 512 }));
  present(drv);
  chip.step(11.9 * 3600);
  assert.equal(present(drv).chargeState, ChargeState.FAST_CHARGE);
  chip.step(0.2 * 3600);
  let s = drv.readStatus();
  assert.ok(s && (s.faults & CHARGER_FAULT_SAFETY_TIMER) !== 0);
  assert.equal(s.chargeState, ChargeState.NOT_CHARGING);
  s = drv.readStatus();
  assert.ok(s && (s.faults & CHARGER_FAULT_SAFETY_TIMER) !== 0, "present while the cycle is stopped");
  // Toggling CHG_CONFIG starts a new cycle.
  assert.ok(drv.enableCharging(false));
  assert.ok(drv.enableCharging(true));
  chip.step(1);
  s = present(drv);
  assert.equal(s.faults & CHARGER_FAULT_SAFETY_TIMER, 0);
  assert.equal(s.chargeState, ChargeState.FAST_CHARGE);
});

test("JEITA zones from the battery temperature: cold and hot stop, cool cuts the current, warm the voltage", () => {
  const { chip, battery, drv } = rig({ socPercent: 40 }, { vbus: true });
  assert.ok(drv.configure({ ...CONFIG, chargeCurrentMa: 1024 }));
  present(drv);
  const cases: [number, number, number][] = [
    [-5, CHARGER_FAULT_NTC_COLD, ChargeState.NOT_CHARGING],
    [5, CHARGER_FAULT_NTC_COOL, ChargeState.FAST_CHARGE],
    [25, 0, ChargeState.FAST_CHARGE],
    [50, CHARGER_FAULT_NTC_WARM, ChargeState.FAST_CHARGE],
    [65, CHARGER_FAULT_NTC_HOT, ChargeState.NOT_CHARGING],
  ];
  for (const [t, fault, state] of cases) {
    battery.temperatureC = t;
    chip.step(1);
    const s = present(drv);
    assert.equal(s.faults, fault, `faults at ${t} °C`);
    assert.equal(s.chargeState, state, `state at ${t} °C`);
    if (t === 5) assert.ok(Math.abs(chip.chargeCurrentMa - 1024 * 0.2) < 1, "cool: 20 % of ICHG");
    if (t === 25) assert.ok(Math.abs(chip.chargeCurrentMa - 1024) < 1);
  }
  // Warm: the cell stops at VREG - 200 mV instead of VREG.
  battery.temperatureC = 50;
  battery.socPercent = 70;
  chip.step(4 * 3600);
  assert.equal(present(drv).chargeState, ChargeState.DONE);
  assert.ok(battery.ocvMv() < 4208 - 150 && battery.ocvMv() > 4208 - 260, `warm full at ${battery.ocvMv()} mV`);

  // Hot/cold profile (plain BQ25895): cold and hot only.
  const hc = rig({ socPercent: 40, temperatureC: 50 }, { vbus: true, tsProfile: "hot-cold" });
  assert.ok(hc.drv.probe());
  hc.chip.step(1);
  let s = present(hc.drv);
  assert.equal(s.faults, CHARGER_FAULT_NTC_HOT, "above 45 °C is hot for this profile");
  hc.battery.temperatureC = -5;
  hc.chip.step(1);
  s = present(hc.drv);
  assert.equal(s.faults, CHARGER_FAULT_NTC_COLD);
  hc.battery.temperatureC = 5;
  hc.chip.step(1);
  assert.equal(present(hc.drv).faults, 0);
});

test("NTC open (or pack removed) reads cold; NTC short reads hot", () => {
  const { chip, drv } = rig({}, { vbus: true });
  assert.ok(drv.configure(CONFIG));
  chip.injectFault("ntc-open");
  chip.step(1);
  assert.equal(present(drv).faults, CHARGER_FAULT_NTC_COLD);
  chip.injectFault("ntc-open", false);
  chip.injectFault("ntc-short");
  chip.step(1);
  assert.equal(present(drv).faults, CHARGER_FAULT_NTC_HOT);
  chip.injectFault("ntc-short", false);
  chip.step(1);
  assert.equal(present(drv).faults, 0);
  // Missing battery with the input there: TS at the open-pack level, the ADC at its ceiling.
  chip.injectFault("no-battery");
  assert.ok(drv.startAdc());
  chip.step(0.1);
  const s = present(drv);
  assert.equal(s.faults, CHARGER_FAULT_NTC_COLD);
  assert.equal(s.chargeState, ChargeState.NOT_CHARGING);
  assert.ok(BQ_TS_OPEN_PERCENT > 80 && s.tsPercent > 79.9, `TS ${s.tsPercent}`);
  // And without the input the chip loses power.
  chip.setVbus(false);
  assert.equal(drv.readStatus(), null);
});

test("I2C watchdog: kicks keep host mode; expiry resets the charge registers and reports it", () => {
  const { chip, drv } = rig({ socPercent: 40 }, { vbus: true });
  assert.ok(drv.configure({ ...CONFIG, chargeCurrentMa: 512, watchdogS: 40 }));
  drv.readStatus(); // the power-on WATCHDOG_FAULT
  assert.ok(drv.setInputCurrentLimit(3000));
  for (let i = 0; i < 5; i++) {
    chip.step(30);
    assert.ok(drv.kickWatchdog());
  }
  assert.equal(chip.inHostMode, true);
  assert.equal(drv.readStatus()?.faults, 0);
  chip.step(41);
  assert.equal(chip.inHostMode, false);
  const s = drv.readStatus();
  assert.ok(s && (s.faults & CHARGER_FAULT_WATCHDOG) !== 0);
  assert.equal(drv.readStatus()?.faults, 0, "reported once");
  assert.equal(chip.register(BQ_REG.ICHG), 0x20, "ICHG back to 2048 mA");
  assert.equal(chip.register(BQ_REG.VREG), 0x5e, "VREG back to 4.208 V");
  assert.equal((chip.register(BQ_REG.TIMER) >> 4) & 3, 1, "WATCHDOG back to 40 s");
  assert.equal(chip.register(BQ_REG.INPUT) & 0x3f, 58, "IINLIM survives the watchdog");
  // Default mode keeps charging, at the default current.
  chip.step(1);
  assert.ok(Math.abs(chip.chargeCurrentMa - 2048) < 1);
  // With the watchdog off nothing expires.
  assert.ok(drv.configure({ ...CONFIG, watchdogS: 0 }));
  chip.step(3600);
  assert.equal(chip.inHostMode, true);
  assert.equal(drv.readStatus()?.faults, 0);
});

test("ADC: one-shot conversion matches the battery, the input and the charge current", () => {
  const { chip, battery, drv } = rig({ socPercent: 40, temperatureC: 30 }, { vbus: true, vbusMv: 5100 });
  assert.ok(drv.configure({ ...CONFIG, chargeCurrentMa: 1024 }));
  chip.step(60);
  let s = present(drv);
  assert.equal(s.batteryMv, 2304, "no conversion yet: reset values");
  assert.ok(drv.startAdc());
  assert.equal(chip.register(BQ_REG.ADC_CTRL) & 0x80, 0x80, "CONV_START set while converting");
  s = present(drv);
  assert.equal(s.batteryMv, 2304, "the result is not there before tCONV");
  chip.step(0.01);
  assert.equal(chip.register(BQ_REG.ADC_CTRL) & 0x80, 0, "CONV_START cleared when done");
  s = present(drv);
  const vbat = battery.terminalMv(chip.chargeCurrentMa);
  assert.ok(Math.abs(s.batteryMv - vbat) <= 10, `BATV ${s.batteryMv} vs ${vbat}`);
  assert.ok(Math.abs(s.systemMv - Math.max(vbat, 3650)) <= 10, `SYSV ${s.systemMv}`);
  assert.ok(Math.abs(s.vbusMv - 5100) <= 50, `VBUS ${s.vbusMv}`);
  assert.ok(Math.abs(s.chargeCurrentMa - chip.chargeCurrentMa) <= 25, `ICHGR ${s.chargeCurrentMa}`);
  assert.ok(Math.abs(s.tsPercent - deciCToTsPercent(300)) <= 0.25, `TS ${s.tsPercent}`);
  assert.ok(Math.abs(tsPercentToDeciC(s.tsPercent) - 300) <= 10, "TS back to about 30 °C");
  assert.equal(s.thermalRegulation, false);
  // Without the input: VBUS reads 0, no charge current.
  chip.setVbus(false);
  assert.ok(drv.startAdc());
  chip.step(0.01);
  s = present(drv);
  assert.equal(s.vbusPresent, false);
  assert.equal(s.vbusMv, 0);
  assert.equal(s.chargeCurrentMa, 0);
  assert.ok(Math.abs(s.batteryMv - battery.terminalMv()) <= 10);
});

test("continuous ADC conversion updates on every step", () => {
  const { chip, battery, drv } = rig({ socPercent: 80 });
  assert.ok(drv.probe());
  assert.ok(drv.setWatchdog(0)); // else the watchdog resets CONV_RATE 40 s after this write
  assert.ok(drv.setAdcContinuous(true));
  chip.systemLoadMa = 200;
  chip.step(1);
  const a = present(drv).batteryMv;
  assert.ok(Math.abs(a - battery.terminalMv()) <= 10, "battery under load");
  chip.step(3 * 3600);
  const b = present(drv).batteryMv;
  assert.ok(b < a - 20, `the voltage falls as the load drains it: ${a} -> ${b}`);
});

test("input current limit: the system load comes first, the rest charges (DPM)", () => {
  const { chip, drv } = rig({ socPercent: 30 }, { vbus: true, source: "sdp" });
  assert.ok(drv.configure({ ...CONFIG, inputCurrentLimitMa: 500, chargeCurrentMa: 2048 }));
  chip.systemLoadMa = 150;
  chip.step(1);
  const i = chip.chargeCurrentMa;
  assert.ok(i > 200 && i < 500, `charge limited by 500 mA of input: ${i}`);
  assert.ok((chip.register(BQ_REG.IDPM) & 0x40) !== 0, "IDPM_STAT");
  // Source detection on attach sets IINLIM from the source type.
  chip.setVbus(false);
  chip.setVbus(true, { source: "cdp" });
  assert.equal(100 + 50 * (chip.register(BQ_REG.INPUT) & 0x3f), 1500);
  assert.equal(chip.register(BQ_REG.STATUS) >> 5, 2, "VBUS_STAT CDP");
});

test("TS conversion: the datasheet thresholds land on the JEITA temperatures", () => {
  assert.ok(Math.abs(tsPercentToDeciC(73.25) - 0) <= 20, "VT1 about 0 °C");
  assert.ok(Math.abs(tsPercentToDeciC(68.25) - 100) <= 20, "VT2 about 10 °C");
  assert.ok(Math.abs(tsPercentToDeciC(44.75) - 450) <= 20, "VT3 about 45 °C");
  assert.ok(Math.abs(tsPercentToDeciC(34.375) - 600) <= 20, "VT5 about 60 °C");
  for (const d of [-200, 0, 250, 450, 600, 800]) {
    assert.ok(Math.abs(tsPercentToDeciC(deciCToTsPercent(d)) - d) <= 1, `round trip ${d}`);
  }
  assert.equal(tsPercentToDeciC(BQ_TS_OPEN_PERCENT + 0.5), -400, "open thermistor");
  assert.equal(tsPercentToDeciC(0), 1250, "shorted thermistor");
  assert.equal(tsPercentToDeciC(NaN), 1250);
});

test("one long step of the chip equals many short ones (charge, termination, rest)", () => {
  const a = rig({ socPercent: 20 }, { vbus: true });
  const b = rig({ socPercent: 20 }, { vbus: true });
  for (const r of [a, b]) {
    assert.ok(r.drv.configure(CONFIG));
    r.chip.systemLoadMa = 100;
  }
  a.chip.step(8 * 3600);
  for (let i = 0; i < 8 * 60; i++) b.chip.step(60);
  assert.equal(a.chip.chargeStatus, b.chip.chargeStatus);
  assert.equal(present(a.drv).chargeState, ChargeState.DONE);
  assert.ok(Math.abs(a.battery.socPercent - b.battery.socPercent) < 0.5, `${a.battery.socPercent} vs ${b.battery.socPercent}`);
  assert.ok(Math.abs(a.battery.cycles - b.battery.cycles) < 0.01);
  // Unplugged, the load drains the battery through the chip.
  a.chip.setVbus(false);
  const before = a.battery.socPercent;
  a.chip.step(3 * 3600);
  assert.ok(Math.abs(before - a.battery.socPercent - 10) < 0.5, `300 mAh of 3000: ${before - a.battery.socPercent} %`);
});
