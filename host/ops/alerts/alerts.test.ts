import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DeviceState, HealthSample, RegisteredDevice } from "../store/store.ts";
import {
  alertText,
  computeAlerts,
  DEFAULT_ALERT_OPTIONS,
  deviceAlerts,
  deviceStatus,
  estimateClockSkew,
  POWER_ALARM,
  risingBacklog,
  type PowerAlarmState,
} from "./alerts.ts";
import { PowerAlarmBook } from "./power_alarms.ts";
import { DeviceLogWatch, newLines } from "./device_logs.ts";
import { makeRecord, payload, RecordKind, testDevice } from "../testing/signed.ts";

const NOW = 1_800_000_000_000;
const MIN = 60_000;

function sample(deviceId: string, receivedMs: number, h: Record<string, number>): HealthSample {
  return { deviceId, receivedMs, site: "WH-1", health: { stateOfChargePermille: 800, chargeState: 1, chargeMode: 1, freeStorageBytes: 60_000, ...h } };
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

const HOUR = 3_600_000;

/**
 * A sample the device sent at `sentMs` (true time) with its clock `skewMs` off, `bootMs` being
 * when it booted (true time), received by the console at `receivedMs` (later when an agent held it).
 */
function sent(sentMs: number, receivedMs: number, opts: { bootMs: number; skewMs?: number; h?: Record<string, number> }): HealthSample {
  return sample("A", receivedMs, { uptimeS: Math.floor((sentMs - opts.bootMs) / 1000), clockMs: sentMs + (opts.skewMs ?? 0), ...opts.h });
}
function stateOf(latest: HealthSample): DeviceState {
  return { deviceId: latest.deviceId, online: true, lastSeenMs: latest.receivedMs, lastHealth: latest, firmwareVersion: "1", records: 0, chainTop: 0 };
}
const clockAlerts = (latest: HealthSample, history?: HealthSample[], options = {}) =>
  deviceAlerts("A", stateOf(latest), NOW, options, history ? () => history : undefined).filter((a) => a.kind === "clock-skew");

describe("clock-skew", () => {
  const bootMs = NOW - 10 * HOUR;

  it("a clock ahead is raised from the latest sample, with the skew in both languages", () => {
    const [a, ...rest] = clockAlerts(sent(NOW, NOW, { bootMs, skewMs: 3 * HOUR }));
    assert.equal(rest.length, 0);
    assert.equal(a.id, "A:clock-skew");
    assert.equal(a.severity, "warning");
    assert.equal(a.messageKey, "alert.clockAhead");
    assert.equal(a.sinceMs, NOW);
    assert.equal(alertText("en", a), "clock 3 h 0 min ahead; set it with pollkit time sync");
    assert.equal(alertText("ar", a), "ساعة الجهاز متقدمة بمقدار 3 ساعة 0 دقيقة؛ اضبطها بالأمر pollkit time sync");
    assert.match(alertText("en", clockAlerts(sent(NOW, NOW, { bootMs, skewMs: 3 * 24 * HOUR + 5 * HOUR }))[0]), /^clock 3 d 5 h ahead/);
  });

  it("within 2 minutes is no alert; the threshold is an alert option", () => {
    assert.deepEqual(clockAlerts(sent(NOW, NOW, { bootMs, skewMs: 119_000 })), []);
    assert.deepEqual(clockAlerts(sent(NOW, NOW, { bootMs, skewMs: -119_000 })), []);
    const [a] = clockAlerts(sent(NOW, NOW, { bootMs, skewMs: 90_000 }), undefined, { clockSkewMs: 60_000 });
    assert.equal(alertText("en", a), "clock 2 min ahead; set it with pollkit time sync");
    assert.equal(DEFAULT_ALERT_OPTIONS.clockSkewMs, 120_000);
  });

  it("a clock behind is raised when recent samples show the latest came as it was sent", () => {
    const live = [2, 1, 0].map((k) => sent(NOW - k * MIN, NOW - k * MIN + 40, { bootMs, skewMs: -3 * HOUR }));
    const [a] = clockAlerts(live[2], live);
    assert.equal(a.messageKey, "alert.clockBehind");
    assert.equal(a.params.skewMs, -3 * HOUR - 40, "exact but for the least delay (40 ms), which nothing shows");
    assert.equal(alertText("en", a), "clock 3 h 0 min behind; set it with pollkit time sync");
    assert.match(alertText("ar", a), /^ساعة الجهاز متأخرة بمقدار 3 ساعة 0 دقيقة/);
    // Without history the console cannot tell a clock behind from a sample held on the way.
    assert.deepEqual(clockAlerts(live[2]), []);
    assert.deepEqual(clockAlerts(live[2], [live[2]]), [], "one sample alone shows nothing about its delay");
  });

  it("a sample an agent held in its outbox for hours does not raise a false skew", () => {
    // Live until three hours ago; then the agent lost the network and kept the device's samples,
    // delivering them all at once now. The device was unplugged an hour into the partition, so even
    // the latest sample is two hours old. Its clock is right.
    const before = [3, 2].map((k) => sent(NOW - 3 * HOUR - k * MIN, NOW - 3 * HOUR - k * MIN + 30, { bootMs }));
    const held = [60, 40, 20, 0].map((k, i) => sent(NOW - 2 * HOUR - k * MIN, NOW + i, { bootMs }));
    const latest = held[held.length - 1];
    assert.ok(latest.health.clockMs - latest.receivedMs < -HOUR, "against its receipt alone the clock reads hours behind");
    assert.deepEqual(clockAlerts(latest, [...before, ...held]), [], "the live samples before the partition date it");
    assert.deepEqual(clockAlerts(latest, held), [], "only held samples (released together): not judged");
    const est = estimateClockSkew(latest, [...before, ...held], DEFAULT_ALERT_OPTIONS.clockDelayToleranceMs);
    assert.ok(Math.abs(est.skewMs) < 1000 && est.live, `estimate ${est.skewMs} ms`);
    // The same held samples from a device whose clock is 3 h behind: the live ones show that.
    const behind = (s: HealthSample): HealthSample => ({ ...s, health: { ...s.health, clockMs: s.health.clockMs - 3 * HOUR } });
    const [a] = clockAlerts(behind(latest), [...before, ...held].map(behind));
    assert.equal(alertText("en", a), "clock 3 h 0 min behind; set it with pollkit time sync");
  });

  it("a held sample of a clock ahead still shows at least the advance it had when sent", () => {
    const before = [2, 1].map((k) => sent(NOW - 3 * HOUR - k * MIN, NOW - 3 * HOUR - k * MIN, { bootMs, skewMs: 5 * HOUR }));
    const held = sent(NOW - 2 * HOUR, NOW, { bootMs, skewMs: 5 * HOUR });
    assert.equal(alertText("en", clockAlerts(held)[0]), "clock 3 h 0 min ahead; set it with pollkit time sync", "alone: a lower bound");
    assert.equal(alertText("en", clockAlerts(held, [...before, held])[0]), "clock 5 h 0 min ahead; set it with pollkit time sync", "dated by the live samples");
  });

  it("samples of an earlier boot do not date the latest one", () => {
    const oldBoot = NOW - 30 * HOUR;
    const earlier = [3, 2].map((k) => sent(NOW - k * MIN - 10 * MIN, NOW - k * MIN - 10 * MIN, { bootMs: oldBoot }));
    const newBoot = NOW - 5 * MIN;
    const latest = sent(NOW, NOW, { bootMs: newBoot });
    const est = estimateClockSkew(latest, [...earlier, latest], 10_000);
    assert.ok(Math.abs(est.skewMs) < 1000, `estimate ${est.skewMs} ms`);
    assert.equal(est.live, false, "one sample of this boot");
  });

  it("clears when a later sample is within the threshold (after pollkit time sync)", () => {
    const skewed = [2, 1].map((k) => sent(NOW - k * MIN, NOW - k * MIN, { bootMs, skewMs: 3 * HOUR }));
    assert.equal(clockAlerts(skewed[1], skewed).length, 1);
    const synced = sent(NOW, NOW + 25, { bootMs });
    assert.deepEqual(clockAlerts(synced, [...skewed, synced]), []);
  });

  it("never set: clock_ms 0 on a device up long enough for a time sync", () => {
    const [a] = clockAlerts(sample("A", NOW, { uptimeS: 11 * 60, clockMs: 0 }));
    assert.equal(a.messageKey, "alert.clockNeverSet");
    assert.equal(alertText("en", a), "clock never set, 11 min after boot; set it with pollkit time sync");
    assert.equal(alertText("ar", a), "لم تُضبط ساعة الجهاز بعد 11 دقيقة من الإقلاع؛ اضبطها بالأمر pollkit time sync");
    assert.deepEqual(clockAlerts(sample("A", NOW, { uptimeS: 9 * 60, clockMs: 0 })), [], "just booted: its host has not set it yet");
    assert.equal(clockAlerts(sample("A", NOW, { uptimeS: 9 * 60, clockMs: 0 }), undefined, { clockSetWithinMs: 5 * MIN }).length, 1, "configurable");
    assert.deepEqual(clockAlerts(sample("A", NOW, { uptimeS: 11 * 60, clockMs: NOW })), [], "set");
  });
});

describe("journal-full", () => {
  const full = { freeStorageBytes: 300, journalBacklog: 170, errorCount: 1 };

  it("raised (critical) when the latest sample shows records waiting and no room", () => {
    const [a, ...rest] = deviceAlerts("A", state("A", NOW, full), NOW).filter((x) => x.kind === "journal-full");
    assert.equal(rest.length, 0);
    assert.equal(a.severity, "critical");
    assert.equal(a.id, "A:journal-full");
    assert.equal(alertText("en", a), "journal full: 300 bytes free, 170 records waiting for a host; new records are refused until it uploads them to an agent");
    assert.match(alertText("ar", a), /^السجل ممتلئ: 300 بايت متاحة و170 سجل بانتظار المضيف/);
    assert.deepEqual(kinds("A", state("A", NOW, { freeStorageBytes: 0, journalBacklog: 0 })), [], "no journal data (not open): a flash fault, not a full journal");
    assert.deepEqual(kinds("A", state("A", NOW, { freeStorageBytes: 600, journalBacklog: 170 })), ["journal-backlog"]);
    assert.deepEqual(kinds("A", state("A", NOW, { freeStorageBytes: 600, journalBacklog: 4 }), () => []), []);
  });

  it("raised by a 'journal full' log line until a sample received after it shows room again", () => {
    const lineMs = NOW - 2 * MIN;
    const ev = { journalFullMs: lineMs };
    const kindsWith = (h: Record<string, number>, receivedMs: number): string[] =>
      deviceAlerts("A", stateOf(sample("A", receivedMs, h)), NOW, {}, undefined, undefined, ev).map((a) => a.kind).sort();
    // The sample that came with the line already drained a page (free storage is back) but the backlog is high.
    const a = deviceAlerts("A", stateOf(sample("A", lineMs, { freeStorageBytes: 1800, journalBacklog: 150 })), NOW, {}, undefined, undefined, ev).find((x) => x.kind === "journal-full");
    assert.ok(a);
    assert.equal(a.sinceMs, lineMs);
    assert.equal(alertText("en", a), "journal full: 1800 bytes free, 150 records waiting for a host; new records are refused until it uploads them to an agent");
    assert.deepEqual(kindsWith({ freeStorageBytes: 9000, journalBacklog: 3 }, lineMs), ["journal-full"], "received with the line: not after it");
    assert.deepEqual(kindsWith({ freeStorageBytes: 9000, journalBacklog: 101 }, NOW), ["journal-backlog", "journal-full"], "backlog not drained yet");
    assert.deepEqual(kindsWith({ freeStorageBytes: 9000, journalBacklog: 3 }, NOW), [], "room again");
    // A device heard only through its log.
    const b = deviceAlerts("A", undefined, NOW, {}, undefined, undefined, ev).find((x) => x.kind === "journal-full");
    assert.equal(b && alertText("en", b), "journal full: ? bytes free, ? records waiting for a host; new records are refused until it uploads them to an agent");
  });

  it("the log watch takes only new lines, dates them, and forgets them once a sample shows room", () => {
    assert.deepEqual(newLines([], ["a", "b"]), ["a", "b"]);
    assert.deepEqual(newLines(["a", "b"], ["a", "b"]), []);
    assert.deepEqual(newLines(["a", "b"], ["a", "b", "c"]), ["c"]);
    assert.deepEqual(newLines(["a", "b", "c"], ["c", "d"]), ["d"], "the tail dropped its oldest lines");
    assert.deepEqual(newLines(["x", "y"], ["c", "d"]), ["c", "d"], "more new lines than the tail keeps");
    assert.deepEqual(newLines(["j", "j"], ["j", "j", "k", "j", "j"]), [], "an exact repeat hides new copies (the fewest new lines)");

    const w = new DeviceLogWatch();
    const opts = DEFAULT_ALERT_OPTIONS;
    const tail = ["booted VVD-1 fw 1.4.2 reason 1", "polls opened"];
    assert.equal(w.observe("A", tail, NOW - 10 * MIN), false);
    assert.equal(w.evidence("A"), undefined);
    const line = "journal full: record of kind 7 refused";
    assert.equal(w.observe("A", [...tail, line], NOW - 5 * MIN), true);
    assert.deepEqual(w.evidence("A"), { journalFullMs: NOW - 5 * MIN });
    assert.equal(w.observe("A", [...tail, line], NOW - 4 * MIN), false, "the same line seen again");
    assert.equal(w.noteHealth(sample("A", NOW - 5 * MIN, { freeStorageBytes: 9000, journalBacklog: 0 }), opts), false, "not after the line");
    assert.equal(w.noteHealth(sample("A", NOW - 3 * MIN, { freeStorageBytes: 9000, journalBacklog: 140 }), opts), false, "backlog still high");
    assert.equal(w.noteHealth(sample("A", NOW - 2 * MIN, { freeStorageBytes: 9000, journalBacklog: 0 }), opts), true);
    assert.equal(w.evidence("A"), undefined);
    assert.equal(w.observe("A", [...tail, line, "polls closed: 12 ballots counted"], NOW - MIN), false, "an old line stays old");
    assert.equal(w.observe("A", [...tail, line, "polls closed: 12 ballots counted", line], NOW), true, "a new refusal");
    assert.deepEqual(w.evidence("A"), { journalFullMs: NOW });
  });
});
