// From the device to the operations dashboard with real parts: a simulated device on a pseudo-
// terminal, the host agent, the embedded broker, the operations console (ingest, SQLite store,
// dashboard) and Debian chromium. A record reaches the console within a second; a forged one is
// quarantined and never counted.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { chromium } from "playwright-core";
import { runDevice } from "../../simulator/cli/device_runner.ts";
import { startEmbeddedBroker } from "../../host/broker/embedded.ts";
import { startAgent, parseAgentConfig } from "../../host/agent/agent.ts";
import { startOps, parseOpsConfig } from "../../host/ops/ops.ts";
import { registryEntry } from "../../host/ops/registry/registry.ts";
import { encodeAuditEvent, RecordKind } from "../../protocol/generated/device_codec.ts";
import { type as pbType } from "../../protocol/node/schema.ts";

const CHROMIUM = "/usr/bin/chromium";
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, ms: number, probe: () => Promise<T | null> | T | null): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

test("device to dashboard: within a second, forged records never", { timeout: 90000, skip: !existsSync(CHROMIUM) && "Debian chromium not installed" }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-ops-e2e-"));
  const broker = await startEmbeddedBroker({ port: 0 });
  const dev = await runDevice({ serial: "VVD-OPS-001", role: "verification", link: join(dir, "d.tty"), healthIntervalMs: 1000 });
  const fw = dev.device.firmware;
  assert.ok(fw);
  const registry = join(dir, "registry.json");
  writeFileSync(registry, JSON.stringify([registryEntry("VVD-OPS-001", fw.publicKey, { role: "verification", governorate: "Baghdad", office: "Karkh", stationId: "ST-0001", site: "site-1" })]));
  const ops = await startOps(parseOpsConfig({ mqtt: { url: broker.url }, store: { path: "ops.db" }, registry, web: { port: 0 }, reports: { everyMs: 60000 }, healthIntervalMs: 1000 }, dir));
  const agent = await startAgent(parseAgentConfig({ site: "site-1", agentId: "agent-ops-e2e", serial: { paths: [dev.hostPath], scanIntervalMs: 100 }, outbox: { path: join(dir, "outbox.db") }, mqtt: { url: broker.url }, control: { port: 0 } }, dir));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const records = async (): Promise<number> => {
      const res = await fetch(`${ops.url}/api/fleet`);
      const body = (await res.json()) as { rows: { deviceId: string; records: number }[] };
      return body.rows.find((r) => r.deviceId === "VVD-OPS-001")?.records ?? 0;
    };
    await until("the boot record at the console", 15000, async () => ((await records()) >= 1 ? true : null));

    const page = await browser.newPage();
    await page.goto(ops.url);
    await page.waitForSelector('#fleet-body tr[data-device="VVD-OPS-001"]');

    // A signed audit record made on the device now: at the console within a second.
    const updatesBefore = Number((await page.evaluate(() => (globalThis as unknown as { document: { body: { dataset: { updates?: string } } } }).document.body.dataset.updates)) ?? "0");
    const before = await records();
    // Timed from the moment it is in the journal (signing on the secure element takes ~250 ms
    // before that, as on the real chip).
    let t0 = 0;
    fw.record(RecordKind.AUDIT, encodeAuditEvent({ event: "test.e2e", actor: "device", detail: "x" }), () => (t0 = performance.now()));
    await until("the new record at the console", 5000, async () => ((await records()) > before ? true : null));
    const latency = performance.now() - t0;
    console.log(`journalled on the device -> counted at the operations console: ${latency.toFixed(0)} ms`);
    assert.ok(latency < 1000, `record reached the console in ${latency.toFixed(0)} ms`);

    // The open page updates by itself: the server's "changed" event (server-sent events) makes it
    // reload the fleet page in place, without a reload of the page (body[data-updates] counts it).
    await page.waitForFunction(
      (before) => {
        const d = (globalThis as unknown as { document: { body: { dataset: { updates?: string } } } }).document;
        return Number(d.body.dataset.updates ?? "0") > before;
      },
      updatesBefore,
      { timeout: 5000 },
    );
    assert.ok(await page.locator('#fleet-body tr[data-device="VVD-OPS-001"]').count(), "the device's row is still there");

    // A forged record (a valid one with its payload changed) sent straight to the broker.
    const RecordT = pbType("Record");
    const real = RecordT.toObject(RecordT.decode(fw.journal.read(fw.journal.nextSeq() - 1) ?? new Uint8Array()), { longs: Number }) as Record<string, unknown>;
    const forged = RecordT.encode(RecordT.fromObject({ ...real, seq: 9999, prevSeq: 9998, payload: new Uint8Array([1, 2, 3]) })).finish();
    const pub = await mqtt.connectAsync(broker.url);
    await pub.publishAsync("pollkit/v1/site-1/VVD-OPS-001/record", Buffer.from(forged), { qos: 1 });
    await pub.endAsync();
    const q = await until("quarantine", 5000, async () => {
      const res = await fetch(`${ops.url}/api/quarantine`);
      const body = (await res.json()) as { counts: Record<string, number> };
      return (body.counts["bad-signature"] ?? 0) > 0 ? body : null;
    });
    assert.ok(q.counts["bad-signature"] >= 1);
    assert.equal(ops.store.recordBytes("VVD-OPS-001", 9999), null, "the forged record is not in the data");
    await page.close();
  } finally {
    await browser.close();
    await agent.stop();
    await ops.stop();
    await dev.stop();
    await broker.close();
  }
});
