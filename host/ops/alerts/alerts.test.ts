import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DeviceState, HealthSample, RegisteredDevice } from "../store/store.ts";
import { alertText, computeAlerts, deviceAlerts, deviceStatus, risingBacklog } from "./alerts.ts";

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
});
