// A device's online/offline status, from the host agent's bridge through the embedded broker to the
// console, ends as the device's latest state and in the order it changed: when the console resumes
// its persistent session while new statuses are published, across broker restarts, for the retained
// copy, and when a broker delivers an older status after a newer one. Real parts: the embedded broker
// on disk, the agent's outbox and MqttBridge, the console's Ingest and SQLite store.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectAsync } from "mqtt";
import { startEmbeddedBroker, type EmbeddedBroker } from "../../broker/embedded.ts";
import { Outbox } from "../../outbox/outbox.ts";
import { MqttBridge } from "../../mqtt/bridge.ts";
import { testDevice } from "../testing/signed.ts";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { Ingest, type DeviceEvent } from "./ingest.ts";
import { waitFor as until } from "../../../test/helpers/wait.ts";

const SITE = "site-o";
const CONSOLE = "console-order-test";

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-status-order-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The console's store with `ids` registered. */
function consoleStore(ids: string[]): SqliteOpsStore {
  const store = new SqliteOpsStore(":memory:");
  store.upsertDevices(ids.map((id) => testDevice(id, { role: "verification", site: SITE }).entry));
  return store;
}

function online(store: SqliteOpsStore, deviceId: string): boolean | undefined {
  return store.deviceStates().find((s) => s.deviceId === deviceId)?.online;
}

/** An agent's bridge with its outbox, connected. */
async function agentBridge(t: TestContext, dir: string, url: string): Promise<{ bridge: MqttBridge; outbox: Outbox }> {
  const outbox = new Outbox({ path: join(dir, "outbox.db") });
  const bridge = new MqttBridge({ url, site: SITE, agentId: "agent-o", outbox, reconnectMinMs: 50, reconnectMaxMs: 200, stableMs: 1000 });
  bridge.on("problem", () => undefined);
  bridge.start();
  t.after(async () => {
    await bridge.close();
    outbox.close();
  });
  await until("the bridge connected", () => bridge.connected);
  return { bridge, outbox };
}

/** The console (persistent session) started; its device events for `deviceId` go to `events`. */
async function startConsole(t: TestContext, url: string, store: SqliteOpsStore, deviceId: string, events: DeviceEvent[]): Promise<Ingest> {
  const ingest = new Ingest({ url, store, clientId: CONSOLE, poolSize: 1 });
  ingest.on("device", (e) => {
    if (e.deviceId === deviceId) events.push(e);
  });
  ingest.on("problem", () => undefined);
  t.after(() => ingest.close());
  await ingest.start();
  return ingest;
}

/** Counts the device statuses under `prefix` that `broker` has taken (stored, queued, passed on). */
function countStatuses(broker: EmbeddedBroker, prefix: string): { n: number; last: string } {
  const seen = { n: 0, last: "" };
  broker.aedes.on("publish", (packet) => {
    if (packet.topic.startsWith(prefix) && packet.topic.endsWith("/status")) {
      seen.n++;
      seen.last = packet.payload.toString();
    }
  });
  return seen;
}

/** The states of `events` with repeats of one state in a row folded: ["offline", "online"]. */
function changes(events: DeviceEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    const s = e.online ? "online" : "offline";
    if (out[out.length - 1] !== s) out.push(s);
  }
  return out;
}

test("a status queued while the console was away reaches it before one published as it comes back", async (t) => {
  const dir = tempDir(t);
  const broker = await startEmbeddedBroker({ dataDir: join(dir, "broker") });
  t.after(() => broker.close());
  const device = "VVD-O0001";
  const store = consoleStore([device]);
  t.after(() => store.close());
  const { bridge, outbox } = await agentBridge(t, dir, broker.url);

  const first: DeviceEvent[] = [];
  const away = await startConsole(t, broker.url, store, device, first);
  bridge.setDeviceStatus(device, true);
  await until("the device online at the console", () => online(store, device) === true);
  await away.close();

  // While the console is away, the broker queues for it: 2,000 log lines the agent forwards, then
  // the device's "offline" (its cable pulled).
  const lines = Array.from({ length: 2000 }, (_, i) => ({ deviceId: device, channel: "log", seq: null, payload: Buffer.from(`line ${i}`), receivedMs: Date.now() }));
  outbox.put(lines);
  bridge.notify();
  await until("the log lines at the broker", () => outbox.stats().pending === 0);
  const taken = countStatuses(broker, `pollkit/v1/${SITE}/${device}/`);
  const unplugged = Date.now();
  bridge.setDeviceStatus(device, false);
  await until("the offline status at the broker", () => taken.n === 1);

  // The cable goes back in as the console reconnects (its queue still to be sent).
  let replugged = 0;
  broker.aedes.on("client", (client) => {
    if (client.id === CONSOLE && replugged === 0) {
      replugged = Date.now();
      bridge.setDeviceStatus(device, true);
    }
  });
  const events: DeviceEvent[] = [];
  const back = await startConsole(t, broker.url, store, device, events);
  await until(
    () => `the console to receive the queue and the new status (events ${JSON.stringify(changes(events))}, received ${back.stats().received})`,
    () => back.stats().received >= lines.length + 2 && events.some((e) => e.online && e.atMs >= replugged),
  );
  await back.drain();
  // (A retained copy sent on the console's subscription may come too.)
  await new Promise((r) => setTimeout(r, 300));
  await back.drain();

  assert.ok(replugged > 0, "the status was published as the console reconnected");
  assert.deepEqual(changes(events), ["offline", "online"], `the console saw the unplug, then the device back: ${JSON.stringify(events.map((e) => [e.online, e.atMs]))}`);
  assert.ok(events[0].atMs >= unplugged && events[0].atMs < replugged, "the offline is the unplug's");
  assert.equal(online(store, device), true, "the console shows the device online");
});

test("statuses queued for the console over broker restarts reach it in the order they were published", async (t) => {
  const dir = tempDir(t);
  const dataDir = join(dir, "broker");
  let broker: EmbeddedBroker = await startEmbeddedBroker({ dataDir });
  const port = broker.port;
  t.after(() => broker.close());
  const device = "VVD-O0002";
  const store = consoleStore([device]);
  t.after(() => store.close());
  const { bridge } = await agentBridge(t, dir, broker.url);
  const setup: DeviceEvent[] = [];
  const first = await startConsole(t, broker.url, store, device, setup);
  await first.close();

  // Each round, with the console away: a status into the broker, a restart, the opposite status
  // into the new broker. A later broker's queue must not go out before an earlier one's.
  const prefix = `pollkit/v1/${SITE}/${device}/`;
  const published: boolean[] = [];
  let state = false;
  let taken = countStatuses(broker, prefix);
  for (let round = 0; round < 6; round++) {
    const before = taken.n;
    bridge.setDeviceStatus(device, state);
    published.push(state);
    await until("the status at the broker", () => taken.n > before && taken.last.includes(state ? '"online"' : '"offline"'));
    const connects = bridge.stats().connects;
    await broker.close();
    broker = await startEmbeddedBroker({ port, dataDir });
    taken = countStatuses(broker, prefix);
    await until("the bridge back on the new broker, its statuses republished", () => bridge.stats().connects > connects && taken.n > 0);
    state = !state;
  }
  const lastAt = Date.now();
  bridge.setDeviceStatus(device, state);
  published.push(state);

  const events: DeviceEvent[] = [];
  const back = await startConsole(t, broker.url, store, device, events);
  await until(
    () => `the last status at the console (${JSON.stringify(events.map((e) => e.online))})`,
    () => events.some((e) => e.online === state && e.atMs >= lastAt),
  );
  await new Promise((r) => setTimeout(r, 300));
  await back.drain();

  // Each status went out once per broker it passed through (republished after each reconnect):
  // folded, the changes are the ones published, in order.
  const folded = published.filter((s, i) => i === 0 || published[i - 1] !== s).map((s) => (s ? "online" : "offline"));
  assert.deepEqual(changes(events), folded, `events at the console: ${JSON.stringify(events.map((e) => [e.online, e.atMs]))}`);
  assert.equal(online(store, device), state);
});

test("the broker keeps each device's newest status as the retained one", async (t) => {
  const dir = tempDir(t);
  const broker = await startEmbeddedBroker({ dataDir: join(dir, "broker") });
  t.after(() => broker.close());
  const { bridge } = await agentBridge(t, dir, broker.url);
  const taken = countStatuses(broker, `pollkit/v1/${SITE}/VVD-R`);
  // Set at once, several statuses of a device reach the broker in one read of its socket.
  const devices = Array.from({ length: 1000 }, (_, i) => `VVD-R${String(i).padStart(4, "0")}`);
  for (let k = 0; k < 3; k++) {
    for (const d of devices) {
      bridge.setDeviceStatus(d, false);
      bridge.setDeviceStatus(d, true);
    }
  }
  await until(() => `the statuses at the broker (${taken.n})`, () => taken.n === devices.length * 6);

  const reader = await connectAsync(broker.url, { protocolVersion: 4, clean: true, reconnectPeriod: 0 });
  t.after(() => reader.endAsync(true));
  const retained = new Map<string, string>();
  reader.on("message", (topic, payload, packet) => {
    const id = topic.split("/")[3];
    if (packet.retain && devices.includes(id)) retained.set(id, (JSON.parse(payload.toString()) as { state: string }).state);
  });
  await reader.subscribeAsync(`pollkit/v1/${SITE}/+/status`, { qos: 1 });
  await until(() => `every retained status (${retained.size})`, () => retained.size === devices.length);
  const stale = devices.filter((d) => retained.get(d) !== "online");
  assert.deepEqual(stale, [], "retained statuses older than the device's last");
});

test("the console keeps a device's newest status, whatever order the statuses come in", async (t) => {
  const broker = await startEmbeddedBroker();
  t.after(() => broker.close());
  const device = "VVD-O0003";
  const store = consoleStore([device]);
  t.after(() => store.close());
  const events: DeviceEvent[] = [];
  const ingest = new Ingest({ url: broker.url, store, poolSize: 1 });
  ingest.on("device", (e) => events.push(e));
  t.after(() => ingest.close());
  await ingest.start();
  // As a broker may deliver them: a newer status, then an older one (a retained copy sent on a
  // re-subscription, a redelivery), then a newer one again.
  const pub = await connectAsync(broker.url, { protocolVersion: 4, clean: true, reconnectPeriod: 0 });
  t.after(() => pub.endAsync(true));
  const topic = `pollkit/v1/${SITE}/${device}/status`;
  const send = async (state: string, at: number): Promise<void> => {
    await pub.publishAsync(topic, JSON.stringify({ state, at }), { qos: 1, retain: true });
  };
  await send("online", 1_795_000_002_000);
  await send("offline", 1_795_000_001_000);
  await until("two statuses received", () => ingest.stats().received >= 2);
  await ingest.drain();
  assert.equal(online(store, device), true, "an older offline does not undo a newer online");
  await send("offline", 1_795_000_003_000);
  await until("three statuses received", () => ingest.stats().received >= 3);
  await ingest.drain();
  assert.deepEqual(
    events.map((e) => [e.online, e.atMs]),
    [
      [true, 1_795_000_002_000],
      [false, 1_795_000_003_000],
    ],
  );
  assert.equal(online(store, device), false);
  assert.equal(ingest.stats().staleStatuses, 1);
});
