// clock-skew and journal-full through the real path: Health protobuf and log lines fed to the real
// Ingest (as the agent publishes them, without a broker), stored in SQLite, read by the web
// server's fleet model, and served by GET /api/alerts and the alerts CSV in English and Arabic.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { encodeHealth, type Health } from "../../../protocol/generated/device_codec.ts";
import { Ingest } from "../ingest/ingest.ts";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { testDevice } from "../testing/signed.ts";
import { startOpsWeb, type OpsWeb } from "../web/server.ts";

const T0 = Date.UTC(2026, 3, 13, 8);
const MIN = 60_000;
const HOUR = 3_600_000;
/** The device booted an hour before T0 (true time). */
const BOOT = T0 - HOUR;

interface ApiAlert {
  kind: string;
  severity: string;
  messageKey: string;
  params: Record<string, string | number>;
}

describe("clock-skew and journal-full through ingest", () => {
  const store = new SqliteOpsStore(":memory:");
  const dev = testDevice("VVD-000777", { role: "verification", governorate: "Basra", office: "Basra-1", stationId: "ST-1", site: "WH-9" });
  store.upsertDevices([dev.entry]);
  let now = T0;
  const ingest = new Ingest({ url: "mqtt://127.0.0.1:1", store, poolSize: 1, batchMs: 1, clock: () => now });
  let web: OpsWeb;
  const topic = (channel: string): string => `pollkit/v1/WH-9/${dev.deviceId}/${channel}`;

  /** A health sample the device sent at true time `sentMs` with its clock at `clockMs`, received now. */
  const health = async (sentMs: number, fields: Partial<Health> & { clockMs: number }): Promise<void> => {
    const h: Health = { batteryMv: 3900, stateOfChargePermille: 800, chargeState: 1, chargeMode: 1, uptimeS: Math.floor((sentMs - BOOT) / 1000), freeStorageBytes: 60_000, journalBacklog: 0, ...fields };
    ingest.onMessage(topic("health"), Buffer.from(encodeHealth(h)));
    await ingest.drain();
  };
  const log = async (line: string): Promise<void> => {
    ingest.onMessage(topic("log"), Buffer.from(line, "latin1"));
    await ingest.drain();
  };
  const alerts = async (): Promise<ApiAlert[]> => {
    const r = await fetch(`${web.url}/api/alerts?device=${dev.deviceId}`);
    assert.equal(r.status, 200);
    return ((await r.json()) as { alerts: ApiAlert[] }).alerts;
  };
  const kinds = async (): Promise<string[]> => (await alerts()).map((a) => a.kind).sort();
  const csv = async (lang: string): Promise<string> => (await fetch(`${web.url}/api/export/alerts.csv?device=${dev.deviceId}&lang=${lang}`)).text();

  before(async () => {
    web = await startOpsWeb({ store, ingest, port: 0, now: () => now, eventIntervalMs: 0, refreshEveryMs: 3_600_000, alertOptions: { healthIntervalMs: MIN } });
  });
  after(async () => {
    await web.close();
    await ingest.close();
    store.close();
  });

  it("a clock 3 h ahead is a warning with the skew, in English and Arabic; a later right sample clears it", async () => {
    await health(now, { clockMs: now + 3 * HOUR });
    const [a] = await alerts();
    assert.deepEqual([a.kind, a.severity, a.messageKey, a.params.skewMs], ["clock-skew", "warning", "alert.clockAhead", 3 * HOUR]);
    assert.match(await csv("en"), /clock 3 h 0 min ahead; set it with pollkit time sync/);
    assert.match(await csv("ar"), /ساعة الجهاز متقدمة بمقدار 3 ساعة 0 دقيقة/);
    now += MIN;
    await health(now, { clockMs: now + 1500 }); // after pollkit time sync
    assert.deepEqual(await kinds(), []);
  });

  it("samples an agent held for hours do not raise a false skew; a clock really behind does", async () => {
    // The agent's network was down for three hours; it delivers the device's samples at once.
    const sentAt = now + MIN;
    now += 3 * HOUR;
    for (let k = 0; k < 3; k++) {
      await health(sentAt + k * MIN, { clockMs: sentAt + k * MIN });
      now += 1;
    }
    assert.deepEqual(await kinds(), [], "read against receipt, the held samples' clocks are 3 h behind");
    // Two live samples of a clock 3 h behind.
    for (let k = 0; k < 2; k++) {
      now += MIN;
      await health(now, { clockMs: now - 3 * HOUR });
    }
    const [a] = await alerts();
    assert.deepEqual([a.kind, a.messageKey], ["clock-skew", "alert.clockBehind"]);
    assert.match(await csv("en"), /clock 3 h 0 min behind/);
    now += MIN;
    await health(now, { clockMs: now });
  });

  it("a 'journal full' log line raises a critical journal-full until a later sample shows room", async () => {
    assert.deepEqual(await kinds(), []);
    now += MIN;
    await log("journal full: record of kind 7 refused");
    now += 2000;
    // The health report the refusal triggers: a page acknowledged since, the backlog still high.
    await health(now, { clockMs: now, freeStorageBytes: 1800, journalBacklog: 150, errorCount: 1 });
    const full = (await alerts()).find((a) => a.kind === "journal-full");
    assert.ok(full, "raised from the log line");
    assert.equal(full.severity, "critical");
    assert.match(await csv("en"), /journal full: 1800 bytes free, 150 records waiting for a host/);
    assert.match(await csv("ar"), /السجل ممتلئ: 1800 بايت متاحة/);
    now += MIN;
    await health(now, { clockMs: now, freeStorageBytes: 14_000, journalBacklog: 2, errorCount: 1 });
    assert.deepEqual(await kinds(), [], "backlog drained: room again");
    // No log line (the refusals happened while no host was there): the health alone shows it.
    now += MIN;
    await health(now, { clockMs: now, freeStorageBytes: 0, journalBacklog: 180, errorCount: 9 });
    assert.deepEqual(await kinds(), ["journal-backlog", "journal-full"]);
  });
});
