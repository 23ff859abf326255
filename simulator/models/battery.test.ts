// The lithium-ion cell model: OCV curve, resistance, self-discharge, capacity fade, CC/CV charge
// acceptance, cycle counting, removal, and that one big step equals many small ones.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BatteryModel, ocvFromTable, socFromTable } from "./battery.ts";

const DAY = 86400;
const MONTH = 30.4375 * DAY;

function cell(soc: number, t: number, extra?: { ageDays?: number; cycles?: number; selfDischargePctPerMonth?: number }) {
  return new BatteryModel({ capacityMah: 3000, socPercent: soc, temperatureC: t, ...extra });
}

test("OCV: 3.0 V empty, 4.2 V full, rising monotonically with the usual plateau", () => {
  const b = cell(0, 25);
  assert.equal(Math.round(b.ocvMv()), 3000);
  b.socPercent = 100;
  assert.equal(Math.round(b.ocvMv()), 4200);
  let last = 0;
  for (let s = -5; s <= 100; s += 1) {
    b.socPercent = s;
    const v = b.ocvMv();
    assert.ok(v > last, `OCV rises at ${s} %`);
    last = v;
  }
  b.socPercent = 30;
  const v30 = b.ocvMv();
  b.socPercent = 60;
  assert.ok(b.ocvMv() - v30 < 180, "the 30-60 % plateau spans less than 180 mV");
  // The table inverse agrees with the table.
  const table = [3000, 3500, 4000];
  for (const soc of [0, 0.25, 0.5, 0.9, 1]) {
    assert.ok(Math.abs(socFromTable(table, 0, 50, ocvFromTable(table, 0, 50, soc)) - soc) < 1e-9);
  }
});

test("terminal voltage: drops under load, rises on charge; resistance rises at cold, with age, when empty", () => {
  const b = cell(50, 25);
  const r = b.resistanceMohm();
  assert.ok(r > 80 && r < 120, `about 100 mOhm for 3 Ah new at 25 °C: ${r}`);
  assert.ok(Math.abs(b.terminalMv(-1000) - (b.ocvMv() - r)) < 1e-9);
  assert.ok(b.terminalMv(500) > b.ocvMv());
  b.temperatureC = 0;
  assert.ok(b.resistanceMohm() > 2 * r, "x2 or more at 0 °C");
  b.temperatureC = 45;
  assert.ok(b.resistanceMohm() < r, "lower when warm");
  assert.ok(cell(50, 25, { cycles: 500 }).resistanceMohm() > 1.3 * r, "aged");
  assert.ok(cell(2, 25).resistanceMohm() > 1.5 * r, "nearly empty");
});

test("self-discharge is about 2-3 % a month at 25 °C and faster at 45 °C", () => {
  const room = cell(50, 25);
  room.step(MONTH, 0);
  const lossRoom = 50 - room.socPercent;
  assert.ok(lossRoom >= 2 && lossRoom <= 3, `25 °C: ${lossRoom} %/month`);
  const hot = cell(50, 45);
  hot.step(MONTH, 0);
  const lossHot = 50 - hot.socPercent;
  assert.ok(lossHot > 2.5 * lossRoom, `45 °C: ${lossHot} %/month`);
  const cold = cell(50, 5);
  cold.step(MONTH, 0);
  assert.ok(50 - cold.socPercent < lossRoom / 2, "slower at 5 °C");
});

test("capacity fade is faster when stored full and when hot", () => {
  const year = 365 * DAY;
  const opts = { selfDischargePctPerMonth: 0 }; // hold the storage charge constant
  const half25 = cell(50, 25, opts);
  const full25 = cell(100, 25, opts);
  const full45 = cell(100, 45, opts);
  for (const b of [half25, full25, full45]) b.step(year, 0);
  const fade = (b: BatteryModel) => 1 - b.stateOfHealth;
  assert.ok(fade(half25) > 0.015 && fade(half25) < 0.04, `half full, 25 °C: ${fade(half25)}`);
  assert.ok(fade(full25) > 1.8 * fade(half25), `full ${fade(full25)} vs half ${fade(half25)}`);
  assert.ok(fade(full45) > 2.5 * fade(full25), `45 °C ${fade(full45)} vs 25 °C ${fade(full25)}`);
  assert.ok(Math.abs(full25.capacityMah - 3000 * full25.stateOfHealth) < 1e-9);
  // Options for an already aged cell.
  assert.ok(cell(50, 25, { ageDays: 365 }).stateOfHealth < 0.98);
  assert.ok(Math.abs(cell(50, 25, { cycles: 250 }).stateOfHealth - 0.9) < 0.005);
});

test("CC/CV charge: constant current, then a tapering current, terminating full", () => {
  const b = cell(10, 25);
  const currents: number[] = [];
  let seconds = 0;
  let terminated = false;
  let maxMv = 0;
  while (!terminated && seconds < 6 * 3600) {
    const r = b.stepCcCv(300, 1500, 4200, { terminationMa: 150 });
    seconds += r.seconds;
    terminated = r.terminated;
    currents.push(r.currentMa);
    maxMv = Math.max(maxMv, b.terminalMv(r.currentMa));
  }
  assert.ok(terminated, "terminated");
  assert.ok(b.socPercent > 98, `full: ${b.socPercent}`);
  assert.ok(seconds > 2 * 3600 && seconds < 4 * 3600, `0.5 C charge from 10 %: ${seconds / 3600} h`);
  assert.equal(currents[0], 1500, "starts at the current limit");
  const firstCv = currents.findIndex((i) => i < 1500);
  assert.ok(firstCv > 0 && b.socPercent > 98);
  for (let i = firstCv + 1; i < currents.length; i++) assert.ok(currents[i]! <= currents[i - 1]! + 1e-9, "tapers");
  assert.ok(maxMv <= 4201, `never above the charge voltage: ${maxMv}`);
  // A stop voltage ends a pre-charge.
  const low = cell(-4, 25);
  const r = low.stepCcCv(4 * 3600, 128, 4200, { stopAtTerminalMv: 3000 });
  assert.ok(r.reachedVoltage && r.seconds < 4 * 3600);
  assert.ok(Math.abs(low.terminalMv(128) - 3000) < 5);
});

test("full-equivalent cycles count charge and discharge throughput", () => {
  const b = cell(100, 25, { selfDischargePctPerMonth: 0 });
  b.step(10 * 3600, -300); // 3000 mAh out: to 0 %
  assert.ok(Math.abs(b.socPercent) < 0.5, `empty: ${b.socPercent}`);
  while (!b.stepCcCv(3600, 1500, 4200, { terminationMa: 60 }).terminated);
  assert.ok(b.cycles > 0.95 && b.cycles < 1.05, `one cycle: ${b.cycles}`);
  assert.ok(b.throughput > 5800 && b.throughput < 6100);
  // The load stops at the protection cut-off; charging stops at full.
  b.step(100 * 3600, -1000);
  assert.equal(b.socPercent, -5);
  assert.equal(b.currentMa, 0);
  b.step(100 * 3600, 1000);
  assert.equal(b.socPercent, 100);
});

test("a removed battery carries no current but still ages", () => {
  const b = new BatteryModel({ capacityMah: 2000, socPercent: 60, temperatureC: 25, present: false });
  b.step(DAY, -500);
  assert.equal(b.currentMa, 0);
  assert.ok(b.socPercent < 60 && b.socPercent > 59.8, "self-discharge only");
  assert.equal(b.terminalMv(), 0);
  assert.equal(b.chargeAcceptanceMa(4200), 0);
  b.present = true;
  assert.ok(b.terminalMv() > 3800);
});

test("one big step equals many small ones", () => {
  // Storage with a small drain (50 uA): one 90-day step against hourly steps.
  const big = cell(60, 30);
  const small = cell(60, 30);
  big.step(90 * DAY, -0.05);
  for (let i = 0; i < 90 * 24; i++) small.step(3600, -0.05);
  assert.ok(big.socPercent < 52 && big.socPercent > 40, `drained: ${big.socPercent}`);
  assert.ok(Math.abs(big.socPercent - small.socPercent) < 0.05, `${big.socPercent} vs ${small.socPercent}`);
  assert.ok(Math.abs(big.stateOfHealth - small.stateOfHealth) < 0.002, `${big.stateOfHealth} vs ${small.stateOfHealth}`);
  assert.ok(Math.abs(big.cycles - small.cycles) < 1e-6);
  assert.equal(big.elapsedSeconds, small.elapsedSeconds);
  // A charge in one call against one-minute calls.
  const c1 = cell(20, 25);
  const c2 = cell(20, 25);
  c1.stepCcCv(2 * 3600, 1500, 4200);
  for (let i = 0; i < 120; i++) c2.stepCcCv(60, 1500, 4200);
  assert.ok(Math.abs(c1.socPercent - c2.socPercent) < 0.3, `${c1.socPercent} vs ${c2.socPercent}`);
});

test("cheap enough for a fleet: 1,000 cells x 90 daily steps", () => {
  const cells: BatteryModel[] = [];
  for (let i = 0; i < 1000; i++) cells.push(cell(40 + (i % 20), 20 + (i % 15)));
  const t0 = process.hrtime.bigint();
  for (let d = 0; d < 90; d++) for (const b of cells) b.step(DAY, -0.05);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < 2000, `${ms} ms`);
  assert.ok(cells.every((b) => b.socPercent < 60 && b.socPercent > 5));
});

test("bad arguments are refused", () => {
  assert.throws(() => new BatteryModel({ capacityMah: 0, socPercent: 50, temperatureC: 25 }), RangeError);
  assert.throws(() => new BatteryModel({ capacityMah: 1000, socPercent: 101, temperatureC: 25 }), RangeError);
  assert.throws(() => new BatteryModel({ capacityMah: 1000, socPercent: 50, temperatureC: NaN }), RangeError);
  const b = cell(50, 25);
  assert.throws(() => b.step(-1, 0), RangeError);
  assert.throws(() => b.step(1, Infinity), RangeError);
  assert.throws(() => (b.socPercent = -6), RangeError);
  assert.throws(() => b.stepCcCv(NaN, 100, 4200), RangeError);
});
