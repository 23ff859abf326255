// The console's MQTT session against real brokers: what host agents publish while the console is
// stopped, killed between receiving and storing, failing to store, or while the broker restarts,
// reaches the store all the same. The agent side is the real one (SQLite outbox and MqttBridge: a
// row leaves the outbox on the broker's PUBACK); the console is the real one (startOps, or Ingest
// in a child process to be SIGKILLed). Counted by (device, seq).

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedBroker, type EmbeddedBroker } from "../../broker/embedded.ts";
import { startMosquitto } from "../../../test/helpers/mosquitto.ts";
import { Outbox } from "../../outbox/outbox.ts";
import { MqttBridge } from "../../mqtt/bridge.ts";
import { encodeAuditEvent } from "../../../protocol/generated/device_codec.ts";
import { makeRecord, RecordKind, testDevice, type TestDevice } from "../testing/signed.ts";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { OpsConfigError, parseOpsConfig, startOps, type RunningOps } from "../ops.ts";
import { Ingest } from "./ingest.ts";
import { waitFor as until } from "../../../test/helpers/wait.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const SITE = "site-s";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-ops-session-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Devices with real P-256 keys and the registry file that the console imports at start. */
function fleet(dir: string, n: number): { devices: TestDevice[]; registry: string } {
  const devices: TestDevice[] = [];
  for (let i = 1; i <= n; i++) devices.push(testDevice(`VVD-S${String(i).padStart(4, "0")}`, { role: "verification", site: SITE }));
  const registry = join(dir, "registry.json");
  writeFileSync(registry, JSON.stringify(devices.map((d) => d.entry)));
  return { devices, registry };
}

/** A host agent's MQTT side: its durable outbox and the bridge that drains it with QoS 1. */
class Agent {
  readonly outbox: Outbox;
  readonly bridge: MqttBridge;
  /** "device/seq" of every record put into the outbox. */
  readonly sent = new Set<string>();

  constructor(dir: string, url: string) {
    this.outbox = new Outbox({ path: join(dir, `outbox-${Math.random().toString(16).slice(2)}.db`) });
    this.bridge = new MqttBridge({ url, site: SITE, agentId: "agent-s", outbox: this.outbox, reconnectMinMs: 100, reconnectMaxMs: 300, stableMs: 1000 });
    this.bridge.on("problem", () => undefined);
    this.bridge.start();
  }

  /** Journals `n` signed audit records of each device into the outbox. */
  put(devices: TestDevice[], n: number): void {
    const items = [];
    for (let i = 0; i < n; i++) {
      for (const d of devices) {
        const seq = d.nextSeq;
        const bytes = makeRecord(d, RecordKind.AUDIT, encodeAuditEvent({ event: "session.test", actor: "device", detail: `${d.deviceId} ${seq}` }), 1_795_000_000_000 + seq);
        items.push({ deviceId: d.deviceId, channel: "record", seq, payload: bytes, receivedMs: Date.now() });
        this.sent.add(`${d.deviceId}/${seq}`);
      }
    }
    this.outbox.put(items);
    this.bridge.notify();
  }

  /** Every row acknowledged by the broker and removed from the outbox. */
  async delivered(ms = 15_000): Promise<void> {
    await until(() => `the outbox to empty (${this.outbox.count()} left)`, () => this.outbox.count() === 0, ms);
  }

  async close(): Promise<void> {
    await this.bridge.close();
    this.outbox.close();
  }
}

/** "device/seq" of every record in the console's store. */
function storedKeys(store: { records(filter: object): { deviceId: string; seq: number }[] }): Set<string> {
  return new Set(store.records({}).map((r) => `${r.deviceId}/${r.seq}`));
}

function missing(sent: Set<string>, stored: Set<string>): string[] {
  return [...sent].filter((k) => !stored.has(k));
}

function consoleConfig(dir: string, url: string, registry: string, extra: Record<string, unknown> = {}): ReturnType<typeof parseOpsConfig> {
  return parseOpsConfig({ mqtt: { url }, store: { path: "ops.db" }, registry, web: { port: 0 }, reports: { everyMs: 3_600_000 }, ...extra }, dir);
}

async function stopped(ops: RunningOps | null): Promise<void> {
  if (ops) await ops.stop();
}

test("the console's client id: stable for one config, distinct per console, named when asked", () => {
  const a1 = parseOpsConfig({ mqtt: { url: "mqtt://b:1883" }, store: { path: "ops.db" } }, "/srv/ops-a");
  const a2 = parseOpsConfig({ mqtt: { url: "mqtt://b:1883" }, store: { path: "ops.db" } }, "/srv/ops-a");
  const b = parseOpsConfig({ mqtt: { url: "mqtt://b:1883", shared: "ops" }, store: { path: "ops.db" } }, "/srv/ops-b");
  assert.match(a1.mqtt.clientId, /^pollkit-ops-[A-Za-z0-9-]+-[0-9a-f]{8}$/);
  assert.equal(a1.mqtt.clientId, a2.mqtt.clientId, "the same console keeps its id (and its session) across restarts");
  assert.notEqual(a1.mqtt.clientId, b.mqtt.clientId, "another console (another store) gets another id");
  const named = parseOpsConfig({ name: "ops-2", mqtt: { url: "mqtt://b:1883" }, store: { path: "ops.db" } }, "/srv/ops-a");
  assert.equal(named.mqtt.clientId, "pollkit-ops-ops-2");
  const explicit = parseOpsConfig({ name: "ops-2", mqtt: { url: "mqtt://b:1883", clientId: "ops-console-7" }, store: { path: "ops.db" } }, "/srv/ops-a");
  assert.equal(explicit.mqtt.clientId, "ops-console-7");
  assert.throws(() => parseOpsConfig({ name: "two words", mqtt: { url: "mqtt://b:1883" }, store: { path: "ops.db" } }, "/"), OpsConfigError);
  assert.throws(() => parseOpsConfig({ mqtt: { url: "mqtt://b:1883", clientId: "" }, store: { path: "ops.db" } }, "/"), /mqtt.clientId/);
});

test("aedes with a data directory: records published while the console is stopped, and across three broker restarts while it runs, are all stored", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const { devices, registry } = fleet(dir, 4);
  const dataDir = join(dir, "broker");
  let broker: EmbeddedBroker = await startEmbeddedBroker({ dataDir });
  t.after(() => broker.close());
  const port = broker.port;
  const config = consoleConfig(dir, broker.url, registry);
  let ops: RunningOps | null = await startOps(config);
  t.after(() => stopped(ops));
  const agent = new Agent(dir, broker.url);
  t.after(() => agent.close());

  // Console up.
  agent.put(devices, 10);
  await agent.delivered();

  // Console stopped: the broker acknowledges (the rows leave the outbox) and queues for it.
  await ops.stop();
  ops = null;
  agent.put(devices, 25);
  await agent.delivered();
  ops = await startOps(config);
  await until("the records published while the console was away", () => storedKeys(ops!.store).size === agent.sent.size);

  // The broker restarts three times while the agent keeps journalling and the console is connected;
  // no gate: the agent may be back before the console.
  let producing = true;
  const producer = (async () => {
    while (producing) {
      agent.put(devices, 2);
      await sleep(30);
    }
  })();
  for (let i = 0; i < 3; i++) {
    await sleep(700);
    await broker.close();
    await sleep(300);
    broker = await startEmbeddedBroker({ port, dataDir });
  }
  await sleep(700);
  producing = false;
  await producer;
  await agent.delivered(30_000);
  await until(() => `every record stored (${missing(agent.sent, storedKeys(ops!.store)).length} missing)`, () => storedKeys(ops!.store).size >= agent.sent.size, 30_000);
  const stored = storedKeys(ops.store);
  assert.deepEqual(missing(agent.sent, stored), [], "every record the broker acknowledged reached the console");
  assert.equal(stored.size, agent.sent.size, "and nothing else");
  assert.equal(ops.store.records({}).length, agent.sent.size, "each once");
  assert.ok(agent.sent.size > 4 * 35 + 40, `records were journalled during the restarts (${agent.sent.size})`);
  assert.deepEqual(ops.ingest.stats().quarantined, {}, "nothing quarantined");
});

test("aedes: a console killed between receiving and storing loses nothing (PUBACK only after the commit)", { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const { devices, registry } = fleet(dir, 2);
  const broker = await startEmbeddedBroker({ dataDir: join(dir, "broker") });
  t.after(() => broker.close());
  const storePath = join(dir, "ops.db");
  const clientId = "pollkit-ops-crash-test";
  const config = parseOpsConfig({ mqtt: { url: broker.url, clientId }, store: { path: storePath }, registry, web: { port: 0 }, reports: { everyMs: 3_600_000 } }, dir);
  // The console's first run: registry imported, persistent session made.
  const first = await startOps(config);
  await first.stop();

  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", join(ROOT, "host/ops/testing/ingest_child.ts"), JSON.stringify({ url: broker.url, storePath, clientId })], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const reap = (): void => void child.kill("SIGKILL");
  process.once("exit", reap);
  t.after(() => {
    reap();
    process.off("exit", reap);
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  await until(() => `the child console to subscribe (${out})`, () => out.includes("ready"), 30_000);

  const agent = new Agent(dir, broker.url);
  t.after(() => agent.close());
  agent.put(devices, 15);
  await agent.delivered();
  // 30 records and the agent's status.
  const received = (): number => Math.max(0, ...[...out.matchAll(/received (\d+)\n/g)].map((m) => Number(m[1])));
  await until("the child to receive all 30 records", () => received() >= 31);
  // Received, not committed (its batch timer is ten minutes): kill it there.
  await new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
  const check = new SqliteOpsStore(storePath);
  assert.equal(check.records({}).length, 0, "the killed console stored nothing");
  check.close();

  const ops = await startOps(config);
  t.after(() => ops.stop());
  await until("the redelivered records stored", () => storedKeys(ops.store).size === agent.sent.size);
  assert.deepEqual(missing(agent.sent, storedKeys(ops.store)), []);
});

test("a commit that fails is not acknowledged: the broker redelivers and the records are stored once the store works", { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const { devices } = fleet(dir, 2);
  const broker = await startEmbeddedBroker({ dataDir: join(dir, "broker") });
  t.after(() => broker.close());
  /** A real SQLite store whose disk is "full" for a while. */
  class FailingStore extends SqliteOpsStore {
    failing = true;
    failures = 0;
    override putRecords(...args: Parameters<SqliteOpsStore["putRecords"]>): ReturnType<SqliteOpsStore["putRecords"]> {
      if (this.failing) {
        this.failures++;
        throw new Error("SQLITE_FULL: database or disk is full");
      }
      return super.putRecords(...args);
    }
  }
  const store = new FailingStore(join(dir, "ops.db"));
  store.upsertDevices(devices.map((d) => d.entry));
  const ingest = new Ingest({ url: broker.url, store, clientId: "pollkit-ops-failing", poolSize: 1 });
  const problems: string[] = [];
  ingest.on("problem", (e) => problems.push(e.message));
  await ingest.start();
  t.after(async () => {
    await ingest.close();
    store.close();
  });
  const agent = new Agent(dir, broker.url);
  t.after(() => agent.close());
  agent.put(devices, 10);
  await agent.delivered();
  await until("a few failed commits (and redeliveries)", () => store.failures >= 3);
  assert.equal(store.records({}).length, 0);
  assert.ok(problems.some((p) => p.includes("SQLITE_FULL")), "the failure is reported");
  store.failing = false;
  await until("the redelivered records stored", () => storedKeys(store).size === agent.sent.size);
  assert.deepEqual(missing(agent.sent, storedKeys(store)), []);
});

test("Mosquitto with persistence: records published while the console is stopped, and while the broker restarts, are stored", { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const { devices, registry } = fleet(dir, 3);
  // As the README says to configure it: persistence true, persistence_location (the helper's temp
  // dir), no cap on the queue kept for a console that is away (the default keeps 1,000 messages and
  // drops the rest), a wider in-flight window, sessions of retired consoles expiring.
  const m = await startMosquitto({ persistence: true, extraConfig: ["max_queued_messages 0", "max_inflight_messages 1000", "persistent_client_expiration 30d"] });
  t.after(() => m.stop());
  const config = consoleConfig(dir, m.url, registry);
  let ops: RunningOps | null = await startOps(config);
  t.after(() => stopped(ops));
  const agent = new Agent(dir, m.url);
  t.after(() => agent.close());
  agent.put(devices, 10);
  await agent.delivered();
  await until("the first records stored", () => storedKeys(ops!.store).size === agent.sent.size);

  await ops.stop();
  ops = null;
  agent.put(devices, 400);
  await agent.delivered(30_000);
  // The broker restarts while the console is away: its session and queue come back from disk.
  await m.restart();
  agent.put(devices, 5);
  await agent.delivered();
  ops = await startOps(config);
  await until(() => `every record stored (${missing(agent.sent, storedKeys(ops!.store)).length} missing)`, () => storedKeys(ops!.store).size === agent.sent.size, 30_000);
  assert.deepEqual(missing(agent.sent, storedKeys(ops.store)), []);
  assert.equal(ops.store.records({}).length, 3 * 415);
});

test("Mosquitto, shared subscription: each console keeps its own session; what was queued for the stopped one reaches the store", { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const { devices, registry } = fleet(dir, 2);
  const m = await startMosquitto({ persistence: true, extraConfig: ["max_queued_messages 0"] });
  t.after(() => m.stop());
  // Two consoles sharing the stream and one SQLite file; distinct reports directories give them
  // distinct default client ids.
  const cfg = (n: number): ReturnType<typeof parseOpsConfig> =>
    parseOpsConfig({ mqtt: { url: m.url, shared: "ops" }, store: { path: "ops.db" }, registry, web: { port: 0 }, reports: { everyMs: 3_600_000, outDir: `reports-${n}` } }, dir);
  const c1 = cfg(1);
  const c2 = cfg(2);
  assert.notEqual(c1.mqtt.clientId, c2.mqtt.clientId);
  const one = await startOps(c1);
  t.after(() => one.stop());
  let two: RunningOps | null = await startOps(c2);
  t.after(() => stopped(two));
  await two.stop();
  two = null;
  const agent = new Agent(dir, m.url);
  t.after(() => agent.close());
  agent.put(devices, 50);
  await agent.delivered();
  await sleep(500);
  const whileAway = storedKeys(one.store).size;
  assert.ok(whileAway < agent.sent.size, `part of the stream was queued for the stopped console (${whileAway} of ${agent.sent.size} stored meanwhile)`);
  two = await startOps(c2);
  await until("every record stored", () => storedKeys(one.store).size === agent.sent.size);
  assert.deepEqual(missing(agent.sent, storedKeys(one.store)), []);
});
