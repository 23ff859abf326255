// Warehouse benchmark for the power service: 1,000 devices for 90 days on charging racks, half in
// STORAGE mode (hourly wakes), half in MAINTAIN mode (daily wakes), each with the real
// PowerService, the real BQ2589x and MAX1704x drivers, the BQ25895 / MAX17048 chip models and the
// battery model, on its own virtual clock (bench/power_rig.ts). Prints a summary, then one JSON
// line.
//
// Fleet (seeded, reproducible; `--devices N --days D --seed S` to change):
// - starting state of charge uniform 10-100 %; warehouse temperature per device uniform 15-35 C,
//   wandering by up to +-3 C from day to day; cells of mixed age: 0-3 years of calendar age and
//   0-400 cycles behind them (state of health about 80-100 %);
// - 3,000 mAh cells; the device asleep draws 0.1 mA (RTC, regulators, gauge, charger quiescent);
// - 98 % of the devices sit in a powered rack slot, 2 % are on a shelf without power (reported
//   apart: nothing can hold their charge).
//
// Measures:
// - socRmsErrorPct: the gauge's state of charge (what the service reads at each of its samples)
//   against the battery model's truth at that moment, RMS over all samples of all devices (also
//   split into resting samples and samples taken while a charge current flows);
// - outOfWindowDeviceDays: rack devices, days on which the true state of charge was outside
//   40-60 % at any service sample or end-of-day check, AFTER THE SETTLING ALLOWANCE: for each device,
//   the days before its true charge first entered 40-60 % are not counted (a device that starts
//   below the window is charged in on its first wake, a few hours; one that starts above only
//   comes down by self-discharge and the drain of its own 0.1 mA load, 3-6 % a month, so it may
//   not reach the window within 90 days). settlingDeviceDays and devicesNotSettled say how much
//   that allowance covers; those days are spent above the window, never below;
// - alerts: alarms raised (PowerAlarm with active = true), by kind;
// - wakes per device-day (the cost of the schedule), top-ups, state-of-health estimate error.

import os from "node:os";
import { PowerRig, DAY_MS } from "./power_rig.ts";
import { ChargeMode, PowerAlarmKind } from "../protocol/generated/device_codec.ts";

interface Args {
  devices: number;
  days: number;
  seed: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { devices: 1000, days: 90, seed: 2026 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`bad value for ${k}: ${argv[i + 1]}`);
    if (k === "--devices") a.devices = Math.floor(v);
    else if (k === "--days") a.days = Math.floor(v);
    else if (k === "--seed") a.seed = Math.floor(v);
    else throw new Error(`unknown option ${k} (--devices N --days D --seed S)`);
  }
  return a;
}

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LOW = 40;
const HIGH = 60;
const SLEEP_LOAD_MA = 0.1;
const OFF_RACK_SHARE = 0.02;

interface Group {
  devices: number;
  deviceDays: number;
  outOfWindowDeviceDays: number;
  settlingDeviceDays: number;
  /** Settling days of devices that started below / above the window. */
  settlingFromBelow: number;
  settlingFromAbove: number;
  maxSettlingDaysFromBelow: number;
  devicesNotSettled: number;
  samples: number;
  socSqSum: number;
  socSqRest: number;
  restSamples: number;
  socSqCharging: number;
  chargingSamples: number;
  topUps: number;
  alerts: number;
  alertsByKind: Record<string, number>;
  minTruthAfterSettling: number;
  maxTruthAfterSettling: number;
  sohSq: number;
  sohEstimated: number;
  shutdowns: number;
}

function newGroup(): Group {
  return {
    devices: 0,
    deviceDays: 0,
    outOfWindowDeviceDays: 0,
    settlingDeviceDays: 0,
    settlingFromBelow: 0,
    settlingFromAbove: 0,
    maxSettlingDaysFromBelow: 0,
    devicesNotSettled: 0,
    samples: 0,
    socSqSum: 0,
    socSqRest: 0,
    restSamples: 0,
    socSqCharging: 0,
    chargingSamples: 0,
    topUps: 0,
    alerts: 0,
    alertsByKind: {},
    minTruthAfterSettling: 100,
    maxTruthAfterSettling: 0,
    sohSq: 0,
    sohEstimated: 0,
    shutdowns: 0,
  };
}

const KIND_NAMES: Record<number, string> = {};
for (const [name, v] of Object.entries(PowerAlarmKind)) KIND_NAMES[v] = name;

function runDevice(mode: number, onRack: boolean, args: Args, rand: () => number, g: Group): void {
  const baseT = 15 + 20 * rand();
  const startSoc = 10 + 90 * rand();
  const rig = new PowerRig({
    socPercent: startSoc,
    temperatureC: baseT,
    ageDays: 3 * 365 * rand(),
    cycles: 400 * rand(),
    vbus: onRack,
    systemLoadMa: SLEEP_LOAD_MA,
    mode,
    direct: true,
  });
  g.devices++;
  let settled = false;
  let dayOut = false;
  let settlingDays = 0;
  const observe = (truth: number): void => {
    if (!settled && truth >= LOW && truth <= HIGH) settled = true;
    if (!settled) return;
    if (truth < LOW || truth > HIGH) dayOut = true;
    if (truth < g.minTruthAfterSettling) g.minTruthAfterSettling = truth;
    if (truth > g.maxTruthAfterSettling) g.maxTruthAfterSettling = truth;
  };
  rig.onSample = (m, truth) => {
    if (!m.gaugeOk) return;
    const err = m.stateOfChargePermille / 10 - truth;
    g.samples++;
    g.socSqSum += err * err;
    if (m.currentMa > 0) {
      g.chargingSamples++;
      g.socSqCharging += err * err;
    } else {
      g.restSamples++;
      g.socSqRest += err * err;
    }
    observe(truth);
  };
  observe(rig.battery.socPercent);
  for (let d = 0; d < args.days; d++) {
    // The warehouse climate wanders a little around each slot's own temperature.
    let t = rig.battery.temperatureC + (rand() - 0.5) * 1.5;
    if (t < baseT - 3) t = baseT - 3;
    if (t > baseT + 3) t = baseT + 3;
    rig.battery.temperatureC = Math.min(35, Math.max(15, t));
    const wasSettled = settled;
    dayOut = false;
    // Between two observations (service samples, the end of each day) the true charge moves one
    // way only (self-discharge, the drain, or a top-up sampled every 10 min at most), so
    // observing there catches every excursion out of the window.
    rig.advance(DAY_MS);
    observe(rig.battery.socPercent);
    g.deviceDays++;
    // A day that began before the cell entered the window is a settling day (its hours after the
    // entry are still checked: dayOut).
    if (!wasSettled) settlingDays++;
    if (dayOut) g.outOfWindowDeviceDays++;
  }
  g.settlingDeviceDays += settlingDays;
  if (startSoc < LOW) {
    g.settlingFromBelow += settlingDays;
    if (settlingDays > g.maxSettlingDaysFromBelow) g.maxSettlingDaysFromBelow = settlingDays;
  } else if (startSoc > HIGH) g.settlingFromAbove += settlingDays;
  if (!settled) g.devicesNotSettled++;
  g.topUps += rig.service.topUps;
  for (const a of rig.alarms) {
    if (a.active !== true) continue;
    g.alerts++;
    const name = KIND_NAMES[a.kind ?? 0] ?? String(a.kind);
    g.alertsByKind[name] = (g.alertsByKind[name] ?? 0) + 1;
  }
  const soh = rig.service.stateOfHealthPermille();
  if (soh > 0) {
    const e = soh / 10 - rig.battery.stateOfHealth * 100;
    g.sohSq += e * e;
    g.sohEstimated++;
  }
  if (rig.events.indexOf("shutdown") >= 0) g.shutdowns++;
}

function rms(sq: number, n: number): number {
  return n > 0 ? Math.round(Math.sqrt(sq / n) * 100) / 100 : 0;
}

function summary(g: Group, days: number, samplesAreWakes: boolean): Record<string, unknown> {
  return {
    devices: g.devices,
    deviceDays: g.deviceDays,
    outOfWindowDeviceDays: g.outOfWindowDeviceDays,
    settlingDeviceDays: g.settlingDeviceDays,
    settlingDeviceDaysFromBelow: g.settlingFromBelow,
    maxSettlingDaysFromBelow: g.maxSettlingDaysFromBelow,
    settlingDeviceDaysFromAbove: g.settlingFromAbove,
    devicesNotSettled: g.devicesNotSettled,
    truthRangeAfterSettlingPct: g.devices > 0 ? [Math.round(g.minTruthAfterSettling * 10) / 10, Math.round(g.maxTruthAfterSettling * 10) / 10] : [],
    socRmsErrorPct: rms(g.socSqSum, g.samples),
    socRmsErrorRestingPct: rms(g.socSqRest, g.restSamples),
    socRmsErrorChargingPct: rms(g.socSqCharging, g.chargingSamples),
    samples: g.samples,
    wakesPerDeviceDay: samplesAreWakes && g.deviceDays > 0 ? Math.round((g.samples / g.deviceDays) * 100) / 100 : undefined,
    topUps: g.topUps,
    alerts: g.alerts,
    alertsByKind: g.alertsByKind,
    sohEstimated: g.sohEstimated,
    sohRmsErrorPct: rms(g.sohSq, g.sohEstimated),
    shutdowns: g.shutdowns,
    days,
  };
}

function merge(a: Group, b: Group): Group {
  const out = newGroup();
  for (const g of [a, b]) {
    out.devices += g.devices;
    out.deviceDays += g.deviceDays;
    out.outOfWindowDeviceDays += g.outOfWindowDeviceDays;
    out.settlingDeviceDays += g.settlingDeviceDays;
    out.settlingFromBelow += g.settlingFromBelow;
    out.settlingFromAbove += g.settlingFromAbove;
    out.maxSettlingDaysFromBelow = Math.max(out.maxSettlingDaysFromBelow, g.maxSettlingDaysFromBelow);
    out.devicesNotSettled += g.devicesNotSettled;
    out.samples += g.samples;
    out.socSqSum += g.socSqSum;
    out.socSqRest += g.socSqRest;
    out.restSamples += g.restSamples;
    out.socSqCharging += g.socSqCharging;
    out.chargingSamples += g.chargingSamples;
    out.topUps += g.topUps;
    out.alerts += g.alerts;
    for (const [k, v] of Object.entries(g.alertsByKind)) out.alertsByKind[k] = (out.alertsByKind[k] ?? 0) + v;
    out.minTruthAfterSettling = Math.min(out.minTruthAfterSettling, g.minTruthAfterSettling);
    out.maxTruthAfterSettling = Math.max(out.maxTruthAfterSettling, g.maxTruthAfterSettling);
    out.sohSq += g.sohSq;
    out.sohEstimated += g.sohEstimated;
    out.shutdowns += g.shutdowns;
  }
  return out;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const rand = rng(args.seed);
  const t0 = performance.now();
  // Rack devices by mode, and the few off the rack.
  const storage = newGroup();
  const maintain = newGroup();
  const offRack = newGroup();
  for (let i = 0; i < args.devices; i++) {
    const mode = i % 2 === 0 ? ChargeMode.STORAGE : ChargeMode.MAINTAIN;
    const onRack = rand() >= OFF_RACK_SHARE;
    runDevice(mode, onRack, args, rand, onRack ? (mode === ChargeMode.STORAGE ? storage : maintain) : offRack);
  }
  const wallSeconds = Math.round((performance.now() - t0) / 10) / 100;
  const rack = merge(storage, maintain);
  const all = merge(rack, offRack);
  const out = {
    bench: "power",
    devices: args.devices,
    days: args.days,
    seed: args.seed,
    wallSeconds,
    node: process.version,
    cpus: os.cpus().length,
    socRmsErrorPct: rms(all.socSqSum, all.samples),
    socRmsErrorRestingPct: rms(all.socSqRest, all.restSamples),
    socRmsErrorChargingPct: rms(all.socSqCharging, all.chargingSamples),
    outOfWindowDeviceDays: rack.outOfWindowDeviceDays,
    settlingAllowance:
      "rack devices; per device, the days before its true state of charge first entered 40-60 % are excluded (settlingDeviceDays: from below the window at most maxSettlingDaysFromBelow days each, the rest is cells above the window coming down by self-discharge; devicesNotSettled never got there in the run)",
    settlingDeviceDays: rack.settlingDeviceDays,
    settlingDeviceDaysFromBelow: rack.settlingFromBelow,
    maxSettlingDaysFromBelow: rack.maxSettlingDaysFromBelow,
    settlingDeviceDaysFromAbove: rack.settlingFromAbove,
    devicesNotSettled: rack.devicesNotSettled,
    alerts: all.alerts,
    alertsByKind: all.alertsByKind,
    storage: summary(storage, args.days, true),
    maintain: summary(maintain, args.days, true),
    offRack: summary(offRack, args.days, true),
  };
  console.log(
    `power: ${args.devices} devices x ${args.days} days in ${wallSeconds} s; gauge RMS error ${out.socRmsErrorPct} % ` +
      `(resting ${out.socRmsErrorRestingPct}, charging ${out.socRmsErrorChargingPct}); rack device-days out of 40-60 % ` +
      `after settling: ${out.outOfWindowDeviceDays} (settling ${out.settlingDeviceDays} device-days: ${out.settlingDeviceDaysFromBelow} from below, ` +
      `at most ${out.maxSettlingDaysFromBelow} per device, ${out.settlingDeviceDaysFromAbove} from above; ${out.devicesNotSettled} devices still above the window at the end); alerts ${out.alerts}`,
  );
  console.log(JSON.stringify(out));
}

main();
