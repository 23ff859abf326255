// The maintenance status report lists the batteries needing attention (low, out of the storage
// window, ageing, charger faults, PowerAlarm records) with their state of health and cycles.

import assert from "node:assert/strict";
import { test } from "node:test";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { buildSnapshot } from "../web/model.ts";
import { makeRecord, payload, RecordKind, testDevice } from "../testing/signed.ts";
import { alarmNames, MAINTENANCE_CSV_HEADER, maintenanceCsv, maintenanceHtml, maintenanceReport } from "./maintenance.ts";

const NOW = Date.UTC(2026, 0, 10, 8);

test("batteries needing attention: low, out of window, ageing, charger faults, PowerAlarm records", () => {
  const store = new SqliteOpsStore(":memory:");
  const ids = ["OK", "LOW", "WINDOW", "AGEING", "CHARGER", "ALARMREC"];
  const devs = ids.map((id) => testDevice(id, { role: "verification", site: "WH-1", governorate: "G", office: "O", stationId: "" }));
  store.upsertDevices(devs.map((d) => d.entry));
  const h = (over: Record<string, number>): Record<string, number> => ({
    batteryMv: 3800, stateOfChargePermille: 500, chargeState: 1, chargeMode: 2, stateOfHealthPermille: 950, cycleCount: 40, powerAlarms: 0, ...over,
  });
  const health: Record<string, Record<string, number>> = {
    OK: h({}),
    LOW: h({ chargeMode: 1, stateOfChargePermille: 150, powerAlarms: 1 << 1 }),
    WINDOW: h({ chargeMode: 3, stateOfChargePermille: 720, powerAlarms: 1 << 3 }),
    AGEING: h({ stateOfHealthPermille: 710, cycleCount: 820, powerAlarms: 1 << 7 }),
    CHARGER: h({ chargerFaults: 0x08, powerAlarms: 1 << 4 }),
    ALARMREC: { batteryMv: 3800, stateOfChargePermille: 500, chargeState: 1, chargeMode: 2 },
  };
  store.putHealth(ids.map((id) => ({ deviceId: id, receivedMs: NOW - 60_000, site: "WH-1", health: health[id] })));
  for (const id of ids) store.setOnline(id, true, NOW - 60_000);
  // An older-firmware device (no power fields in its health) raised an ageing-cell alarm record.
  const d = devs[5];
  const bytes = makeRecord(d, RecordKind.POWER_ALARM, payload.powerAlarm({ kind: 7, active: true, stateOfChargePermille: 500 }), NOW - 120_000);
  store.putRecords([{ deviceId: d.deviceId, seq: 1, prevSeq: 0, timeMs: NOW - 120_000, kind: RecordKind.POWER_ALARM, bytes, receivedMs: NOW - 110_000, site: "WH-1" }]);

  const report = maintenanceReport(buildSnapshot(store, NOW, { healthIntervalMs: 60_000 }), "WH-1");
  const byDevice = (list: Array<{ deviceId: string; kind: string }>): string[] => list.map((a) => `${a.deviceId}:${a.kind}`).sort();
  assert.deepEqual(byDevice(report.batteries), ["AGEING:ageing-cell", "ALARMREC:ageing-cell", "CHARGER:charger-fault", "LOW:battery-low", "WINDOW:storage-window"]);
  assert.deepEqual(byDevice(report.faults), ["CHARGER:charger-fault"]);
  const csv = maintenanceCsv(report).split("\r\n");
  assert.equal(csv[0], MAINTENANCE_CSV_HEADER.join(","));
  const col = (name: string): number => MAINTENANCE_CSV_HEADER.indexOf(name as (typeof MAINTENANCE_CSV_HEADER)[number]);
  const ageing = csv.find((l) => l.startsWith("WH-1,AGEING,"))?.split(",") ?? [];
  assert.equal(ageing[col("soh_percent")], "71");
  assert.equal(ageing[col("cycle_count")], "820");
  assert.equal(ageing[col("power_alarms")], "ageing-cell");
  assert.equal(ageing[col("charge_mode")], "storage");
  assert.equal(csv.find((l) => l.startsWith("WH-1,ALARMREC,"))?.split(",")[col("power_alarms")], "ageing-cell", "raised records count in the alarm column");
  assert.equal(alarmNames((1 << 3) | (1 << 4)), "out-of-storage-window charger-fault");
  const html = maintenanceHtml(report, "ar");
  assert.match(html, /dir="rtl"/);
  assert.match(html, /خلية متقادمة: صحة البطارية 71 %/);
  assert.match(html, /وضع الشحن صيانة لكن نسبة الشحن 72 %/);
  store.close();
});

test("faults: a full journal and a wrong clock are listed with the charger and part faults", () => {
  const store = new SqliteOpsStore(":memory:");
  const devs = ["FULL", "SKEWED", "FINE"].map((id) => testDevice(id, { role: "result", site: "WH-2", governorate: "G", office: "O", stationId: "" }));
  store.upsertDevices(devs.map((d) => d.entry));
  const base = { batteryMv: 3900, stateOfChargePermille: 800, chargeState: 1, chargeMode: 1, uptimeS: 7200, clockMs: NOW - 60_000, freeStorageBytes: 40_000 };
  store.putHealth([
    { deviceId: "FULL", receivedMs: NOW - 60_000, site: "WH-2", health: { ...base, freeStorageBytes: 0, journalBacklog: 240 } },
    { deviceId: "SKEWED", receivedMs: NOW - 60_000, site: "WH-2", health: { ...base, clockMs: NOW - 60_000 + 3 * 3_600_000 } },
    { deviceId: "FINE", receivedMs: NOW - 60_000, site: "WH-2", health: base },
  ]);
  const report = maintenanceReport(buildSnapshot(store, NOW, { healthIntervalMs: 60_000 }), "WH-2");
  assert.deepEqual(report.faults.map((a) => `${a.deviceId}:${a.kind}`), ["FULL:journal-full", "SKEWED:clock-skew"], "critical first");
  const csv = maintenanceCsv(report);
  assert.match(csv, /WH-2,FULL,.*journal-backlog journal-full|WH-2,FULL,.*journal-full journal-backlog/);
  const en = maintenanceHtml(report, "en");
  assert.match(en, /journal full: 0 bytes free, 240 records waiting for a host/);
  assert.match(en, /clock 3 h 0 min ahead; set it with pollkit time sync/);
  assert.match(maintenanceHtml(report, "ar"), /ساعة الجهاز متقدمة بمقدار 3 ساعة 0 دقيقة/);
  store.close();
});
