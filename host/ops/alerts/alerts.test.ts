import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DeviceState, HealthSample, RegisteredDevice } from "../store/store.ts";
import { alertText, computeAlerts, deviceAlerts, deviceStatus, POWER_ALARM, risingBacklog, type PowerAlarmState } from "./alerts.ts";
import { PowerAlarmBook } from "./power_alarms.ts";
import { makeRecord, payload, RecordKind, testDevice } from "../testing/signed.ts";

const NOW = 1_800_000_000_000;
const MIN = 60_000;

function sample(deviceId: string, receivedMs: number, h: Record<string, number>): HealthSample {
  return { deviceId, receivedMs, site: "WH-1", health: { stateOfChargePermille: 800, chargeState: 1, chargeMode: 1, ...h } };
}
function state(deviceId: string, lastSeenMs: number, h: Record<string, number> | null): DeviceState {
  return { deviceId, online: true, lastSeenMs, lastHealth: h ? sample(deviceId, lastSeenMs, h) : null, firmwareVersion: "1", records: 0, chainTop: 0 };
}
const kinds = (id: string, s: DeviceState | undefined, recent?: (id: string) => HealthSample[]): string[] =>
  deviceAlerts(id, s, NOW, {}, recent).map((a) => a.kind).sort();

describe("alerts", () => {
  it("a healthy device has none and is ready", () => {
    const s = state("A", NOW - MIN, {});
    assert.deepEqual(kinds("A", s), []);
    assert.equal(deviceStatus(s, NOW), "ready");
  });

  it("battery low below 20 %, critical below 10 %", () => {
    const [a] = deviceAlerts("A", state("A", NOW, { stateOfChargePermille: 195 }), NOW);
    assert.equal(a.kind, "battery-low");
    assert.equal(a.severity, "warning");
    assert.equal(a.id, "A:battery-low");
    assert.equal(a.sinceMs, NOW);
    assert.equal(alertText("en", a), "battery low: 19.5 % (below 20 %)");
    assert.match(alertText("ar", a), /البطارية منخفضة: 19.5 %/);
    assert.equal(deviceAlerts("A", state("A", NOW, { stateOfChargePermille: 50 }), NOW)[0].severity, "critical");
    assert.deepEqual(kinds("A", state("A", NOW, { stateOfChargePermille: 200 })), []);
    assert.deepEqual(kinds("A", state("A", NOW, { stateOfChargePermille: 0, chargeState: 5 })), [], "no battery: no battery alerts");
  });

  it("storage mode outside 40-60 %", () => {
    assert.deepEqual(kinds("A", state("A", NOW, { chargeMode: 2, stateOfChargePermille: 650 })), ["storage-window"]);
    assert.deepEqual(kinds("A", state("A", NOW, { chargeMode: 2, stateOfChargePermille: 390 })), ["storage-window"]);
    assert.deepEqual(kinds("A", state("A", NOW, { chargeMode: 2, stateOfChargePermille: 500 })), []);
    assert.deepEqual(kinds("A", state("A", NOW, { chargeMode: 1, stateOfChargePermille: 900 })), []);
  });

  it("silent after 3 health intervals (default 5 min), never seen", () => {
    assert.deepEqual(kinds("A", state("A", NOW - 15 * MIN, {})), []);
    const [a] = deviceAlerts("A", state("A", NOW - 16 * MIN, {}), NOW);
    assert.equal(a.kind, "silent");
    assert.equal(a.sinceMs, NOW - 16 * MIN + 15 * MIN);
    assert.equal(alertText("en", a), "silent for 16 min (expected a report every 5 min)");
    assert.deepEqual(kinds("A", undefined), ["silent"]);
    assert.equal(deviceAlerts("A", undefined, NOW)[0].messageKey, "alert.neverSeen");
    assert.deepEqual(kinds("A", state("A", NOW - 4 * MIN, {})), []);
    assert.equal(deviceAlerts("A", state("A", NOW - 4 * MIN, {}), NOW, { healthIntervalMs: MIN })[0].kind, "silent", "interval configurable");
    assert.equal(deviceStatus(state("A", NOW - 16 * MIN, { chargerFaults: 1 }), NOW), "silent");
  });

  it("charger and peripheral faults, in both languages", () => {
    const s = state("A", NOW, { chargerFaults: 0x30, peripheralFaults: (1 << 5) | (1 << 7) });
    assert.deepEqual(kinds("A", s), ["charger-fault", "peripheral-fault"]);
    const p = deviceAlerts("A", s, NOW).find((a) => a.kind === "peripheral-fault");
    assert.ok(p);
    assert.equal(alertText("en", p), "part failed: fingerprint sensor, printer");
    assert.equal(alertText("ar", p), "تعطّل مكوّن: مستشعر البصمة، الطابعة");
    assert.equal(alertText("en", deviceAlerts("A", s, NOW)[0]), "charger fault (code 0x30)");
    assert.equal(deviceStatus(s, NOW), "faulty");
  });

  it("journal backlog above the threshold, or rising across the last samples", () => {
    assert.deepEqual(kinds("A", state("A", NOW, { journalBacklog: 101 })), ["journal-backlog"]);
    const hist = [5, 9, 14].map((b, i) => sample("A", NOW - (2 - i) * MIN, { journalBacklog: b }));
    const s = state("A", NOW, { journalBacklog: 14 });
    const rising = deviceAlerts("A", s, NOW, {}, () => hist);
    assert.equal(rising.length, 1);
    assert.equal(rising[0].severity, "info");
    assert.equal(alertText("en", rising[0]), "journal backlog rising: 5 → 14 records");
    assert.equal(rising[0].sinceMs, NOW - 2 * MIN);
    const flat = [5, 5, 14].map((b, i) => sample("A", NOW - (2 - i) * MIN, { journalBacklog: b }));
    assert.deepEqual(kinds("A", s, () => flat), []);
    assert.deepEqual(kinds("A", s), [], "no history: no trend");
    assert.equal(risingBacklog(hist.slice(0, 1), hist[2], 3), null, "too few samples");
  });

  it("the fleet: registered and unregistered devices, most severe first", () => {
    const devices: RegisteredDevice[] = ["A", "B", "C"].map((id) => ({
      deviceId: id, publicKeyHex: "", role: "verification", governorate: "G", office: "O", stationId: "S", site: "W",
    }));
    const alerts = computeAlerts({
      devices,
      states: [state("A", NOW, { stateOfChargePermille: 150 }), state("B", NOW, { chargerFaults: 1 }), state("X", NOW, {})],
      nowMs: NOW,
    });
    assert.deepEqual(alerts.map((a) => a.id), ["B:charger-fault", "C:silent", "A:battery-low"]);
  });

  it("storage window in storage and maintain modes, or when the device raises OUT_OF_STORAGE_WINDOW", () => {
    assert.deepEqual(kinds("A", state("A", NOW, { chargeMode: 3, stateOfChargePermille: 300 })), ["storage-window"], "maintain mode");
    assert.deepEqual(kinds("A", state("A", NOW, { chargeMode: 3, stateOfChargePermille: 400 })), [], "40 % is inside");
    assert.deepEqual(kinds("A", state("A", NOW, { chargeMode: 2, stateOfChargePermille: 600 })), [], "60 % is inside");
    assert.deepEqual(kinds("A", state("A", NOW, { chargeMode: 2, stateOfChargePermille: 601 })), ["storage-window"]);
    const bit = deviceAlerts("A", state("A", NOW, { chargeMode: 1, stateOfChargePermille: 500, powerAlarms: 1 << POWER_ALARM.OUT_OF_STORAGE_WINDOW }), NOW);
    assert.deepEqual(bit.map((a) => a.kind), ["storage-window"], "the device's own alarm bit");
    const [a] = deviceAlerts("A", state("A", NOW, { chargeMode: 3, stateOfChargePermille: 300 }), NOW);
    assert.equal(alertText("en", a), "charge mode maintain but charge is 30 %, outside the storage window 40–60 %");
    assert.equal(alertText("ar", a), "وضع الشحن صيانة لكن نسبة الشحن 30 %، خارج نطاق التخزين 40–60 %");
  });

  it("ageing cell below 80 % state of health or with the AGEING_CELL bit; 0 means not reported", () => {
    const [a] = deviceAlerts("A", state("A", NOW, { stateOfHealthPermille: 799, cycleCount: 612 }), NOW);
    assert.equal(a.kind, "ageing-cell");
    assert.equal(a.severity, "warning");
    assert.equal(alertText("en", a), "ageing cell: state of health 79.9 % (replace below 80 %), 612 cycles");
    assert.match(alertText("ar", a), /خلية متقادمة: صحة البطارية 79.9 %/);
    assert.deepEqual(kinds("A", state("A", NOW, { stateOfHealthPermille: 800 })), [], "80 % is not below");
    assert.deepEqual(kinds("A", state("A", NOW, { stateOfHealthPermille: 0 })), [], "not reported");
    assert.deepEqual(kinds("A", state("A", NOW, { stateOfHealthPermille: 900, powerAlarms: 1 << POWER_ALARM.AGEING_CELL })), ["ageing-cell"]);
  });

  it("charger fault from the fault bits or the CHARGER_FAULT alarm; low and critical battery alarms; other alarm bits", () => {
    assert.deepEqual(kinds("A", state("A", NOW, { powerAlarms: 1 << POWER_ALARM.CHARGER_FAULT })), ["charger-fault"]);
    assert.equal(deviceStatus(state("A", NOW, { powerAlarms: 1 << POWER_ALARM.CHARGER_FAULT }), NOW), "faulty");
    const low = deviceAlerts("A", state("A", NOW, { stateOfChargePermille: 250, powerAlarms: 1 << POWER_ALARM.LOW_BATTERY }), NOW);
    assert.deepEqual(low.map((x) => [x.kind, x.severity]), [["battery-low", "warning"]]);
    const crit = deviceAlerts("A", state("A", NOW, { stateOfChargePermille: 250, powerAlarms: 1 << POWER_ALARM.CRITICAL_BATTERY }), NOW);
    assert.deepEqual(crit.map((x) => [x.kind, x.severity]), [["battery-low", "critical"]]);
    const others = (1 << POWER_ALARM.TEMPERATURE) | (1 << POWER_ALARM.NO_BATTERY) | (1 << POWER_ALARM.GAUGE_FAULT);
    assert.deepEqual(kinds("A", state("A", NOW, { powerAlarms: others, temperatureDecic: 468 })), ["battery-temperature", "gauge-fault", "no-battery"]);
    const t = deviceAlerts("A", state("A", NOW, { powerAlarms: 1 << POWER_ALARM.TEMPERATURE, temperatureDecic: 468 }), NOW)[0];
    assert.equal(alertText("en", t), "battery at 46.8 °C, outside the charging temperature window");
  });

  it("PowerAlarm journal records: raised until cleared, or until a later health sample reports its alarms without it", () => {
    const dev = testDevice("A", { role: "verification" });
    const book = new PowerAlarmBook();
    const rec = (kind: number, active: boolean, receivedMs: number, extra: Record<string, number> = {}) => {
      const bytes = makeRecord(dev, RecordKind.POWER_ALARM, payload.powerAlarm({ kind, active, stateOfChargePermille: 380, chargeMode: 2, chargerFaults: 0, ...extra }), receivedMs);
      return { deviceId: "A", seq: dev.nextSeq - 1, kind: RecordKind.POWER_ALARM, bytes, timeMs: receivedMs, receivedMs };
    };
    assert.deepEqual(book.apply([rec(POWER_ALARM.OUT_OF_STORAGE_WINDOW, true, NOW - 10 * MIN), rec(POWER_ALARM.CHARGER_FAULT, true, NOW - 9 * MIN, { chargerFaults: 0x20 })]), ["A"]);
    assert.equal(book.activeBits("A"), (1 << 3) | (1 << 4));
    // An old health sample (no power fields): the records stand.
    const old = state("A", NOW - 20 * MIN, { stateOfChargePermille: 500, chargeMode: 2 });
    old.lastSeenMs = NOW;
    const alerts = deviceAlerts("A", old, NOW, {}, undefined, book.of("A"));
    assert.deepEqual(alerts.map((a) => a.kind).sort(), ["charger-fault", "storage-window"]);
    assert.equal(alertText("en", alerts.find((a) => a.kind === "charger-fault")!), "charger fault (code 0x20)");
    assert.equal(alerts.find((a) => a.kind === "storage-window")?.params.soc, "38");
    // Cleared by a later record of the same kind (an older one arriving late changes nothing).
    book.apply([rec(POWER_ALARM.CHARGER_FAULT, false, NOW - 5 * MIN)]);
    const late = rec(POWER_ALARM.CHARGER_FAULT, true, NOW - 4 * MIN);
    book.apply([{ ...late, seq: 1 }]);
    assert.deepEqual(deviceAlerts("A", old, NOW, {}, undefined, book.of("A")).map((a) => a.kind), ["storage-window"]);
    // A newer health sample that reports its alarm bits (here: none) supersedes the record.
    const fresh = state("A", NOW, { stateOfChargePermille: 500, chargeMode: 2, stateOfHealthPermille: 950, powerAlarms: 0 });
    assert.deepEqual(deviceAlerts("A", fresh, NOW, {}, undefined, book.of("A")).map((a) => a.kind), []);
    // A PowerAlarm payload that does not decode is counted, not applied.
    const bad = { deviceId: "A", seq: 99, kind: RecordKind.POWER_ALARM, bytes: makeRecord(dev, RecordKind.POWER_ALARM, new Uint8Array([0x08]), NOW), timeMs: NOW, receivedMs: NOW };
    assert.deepEqual(book.apply([bad]), []);
    assert.equal(book.undecodable, 1);
  });

  it("a device never seen still shows its raised PowerAlarm records", () => {
    const alarms: PowerAlarmState[] = [{ kind: POWER_ALARM.AGEING_CELL, active: true, seq: 3, timeMs: NOW, receivedMs: NOW, batteryMv: 3700, socPermille: 500, temperatureDecic: 200, chargerFaults: 0, chargeMode: 2 }];
    assert.deepEqual(deviceAlerts("A", undefined, NOW, {}, undefined, alarms).map((a) => a.kind), ["silent", "ageing-cell"]);
  });
});
