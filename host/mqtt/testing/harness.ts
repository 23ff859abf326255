// Shared by the bridge tests: record items with real Record payloads, a separate subscriber that
// counts what arrives by (device, seq), and the tests that run against every broker.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { connect, type MqttClient } from "mqtt";
import { type } from "../../../protocol/node/schema.ts";
import { Outbox, type OutboxItem } from "../../outbox/outbox.ts";
import { MqttBridge } from "../bridge.ts";

const RecordT = type("Record");
let n = 0;
const tempDir = mkdtempSync(join(tmpdir(), "pollkit-bridge-"));
process.on("exit", () => rmSync(tempDir, { recursive: true, force: true }));

/** A temp directory for this test process, removed when it exits. */
export function dir(): string {
  return tempDir;
}

export const uniq = (p: string): string => `${p}${++n}`;

export function recordItem(deviceId: string, seq: number): OutboxItem {
  const body = Buffer.alloc(40);
  body.write(`${deviceId}#${seq}`);
  const msg = RecordT.fromObject({ seq, timeMs: 1_760_000_000_000 + seq, kind: 3, payload: body, signature: Buffer.alloc(64, 7) });
  return { deviceId, channel: "record", seq, payload: RecordT.encode(msg).finish(), receivedMs: Date.now() };
}

/** Records seq from..to for each device, interleaved across devices (as several links would). */
export function records(devices: string[], from: number, to: number): OutboxItem[] {
  const out: OutboxItem[] = [];
  for (let s = from; s <= to; s++) for (const d of devices) out.push(recordItem(d, s));
  return out;
}

export interface Status {
  state: string;
  at: number | null;
  reason?: string;
}

/** A separate client that subscribes to a site and counts records by (device, seq). */
export class Subscriber {
  readonly firsts = new Map<string, number[]>();
  private readonly counts = new Map<string, number>();
  total = 0;
  /** Repeats the broker sent as new messages (a row published twice by the bridge). */
  repeatsFromPublisher = 0;
  /** Repeats the broker redelivered to us with the DUP flag (its own QoS 1 retry to this client). */
  repeatsRedelivered = 0;
  readonly statuses = new Map<string, Status>();
  readonly logs: string[] = [];

  private constructor(readonly client: MqttClient) {}

  static async open(url: string, site: string, opts: { clientId?: string; clean?: boolean } = {}): Promise<Subscriber> {
    const client = connect(url, { clientId: opts.clientId, clean: opts.clean ?? true, reconnectPeriod: 100, protocolVersion: 4 });
    const sub = new Subscriber(client);
    client.on("error", () => undefined);
    client.on("message", (topic, payload, packet) => sub.onMessage(topic, payload, packet.dup));
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`subscriber: no connection to ${url} within 5 s`)), 5000);
        client.once("connect", () => {
          client.subscribe(`pollkit/v1/${site}/#`, { qos: 1 }, (err) => {
            clearTimeout(t);
            if (err) reject(err);
            else resolve();
          });
        });
      });
    } catch (e) {
      client.end(true);
      throw e;
    }
    return sub;
  }

  private onMessage(topic: string, payload: Buffer, dup: boolean): void {
    const parts = topic.split("/");
    const channel = parts[parts.length - 1];
    if (channel === "status") {
      this.statuses.set(parts.slice(3, -1).join("/"), JSON.parse(payload.toString("utf8")) as Status);
      return;
    }
    if (channel === "log") {
      this.logs.push(payload.toString("utf8"));
      return;
    }
    if (channel !== "record") return;
    const device = parts[3];
    const rec = RecordT.toObject(RecordT.decode(payload), { longs: Number }) as { seq: number; payload: Uint8Array };
    assert.equal(Buffer.from(rec.payload).toString("utf8").replace(/\0+$/, ""), `${device}#${rec.seq}`);
    const key = `${device}/${rec.seq}`;
    const c = this.counts.get(key) ?? 0;
    this.counts.set(key, c + 1);
    this.total++;
    if (c === 0) {
      const list = this.firsts.get(device) ?? [];
      list.push(rec.seq);
      this.firsts.set(device, list);
    } else if (dup) {
      this.repeatsRedelivered++;
    } else {
      this.repeatsFromPublisher++;
    }
  }

  get distinct(): number {
    return this.counts.size;
  }

  async waitFor(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (received ${this.total}, distinct ${this.distinct})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Every device got 1..last exactly in order of first arrival. */
  assertInOrder(devices: string[], last: number): void {
    for (const d of devices) {
      const got = this.firsts.get(d) ?? [];
      assert.equal(got.length, last, `${d}: ${got.length} distinct records, expected ${last}`);
      for (let i = 0; i < got.length; i++) {
        if (got[i] !== i + 1) assert.fail(`${d}: record #${i} is seq ${got[i]}, expected ${i + 1}`);
      }
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.client.end(true, {}, () => resolve()));
  }
}

export function newOutbox(): Outbox {
  return new Outbox({ path: join(dir(), `${uniq("outbox-")}.db`) });
}

export async function waitUntil(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Broker {
  url: string;
}

/**
 * Cleanups for one test, run after it in reverse order whether it passed or not, so that a failed
 * test leaves no client, bridge or server keeping the process alive.
 */
export function deferrer(t: TestContext): (fn: () => unknown) => void {
  const fns: (() => unknown)[] = [];
  t.after(async () => {
    for (const fn of fns.reverse()) {
      try {
        await fn();
      } catch {
        // keep cleaning up
      }
    }
  });
  return (fn) => {
    fns.push(fn);
  };
}

/** The tests that run against both brokers. */
export function commonSuite(name: string, brokerOf: () => Broker): void {
  test(`${name}: 2,000 records drain exactly once, in per-device order`, async (t: TestContext) => {
    const defer = deferrer(t);
    const site = uniq("site");
    const devices = ["VVD-000001", "VVD-000002", "RAD-000003", "VVD-000004"];
    const outbox = newOutbox();
    defer(() => outbox.close());
    outbox.put(records(devices, 1, 500));
    const sub = await Subscriber.open(brokerOf().url, site);
    defer(() => sub.close());
    const bridge = new MqttBridge({ url: brokerOf().url, site, agentId: "agent-1", outbox });
    defer(() => bridge.close());
    const t0 = performance.now();
    bridge.start();
    await sub.waitFor("2000 records", () => sub.distinct === 2000 && outbox.count() === 0 && bridge.stats().inFlight === 0, 15_000);
    const secs = (performance.now() - t0) / 1000;
    t.diagnostic(`${name}: 2000 records in ${secs.toFixed(2)} s = ${Math.round(2000 / secs)} records/s (maxInFlight (default), synchronous FULL)`);
    await new Promise((r) => setTimeout(r, 200)); // any late repeat would show now
    assert.equal(sub.total, 2000, "no record twice");
    sub.assertInOrder(devices, 500);
    const st = bridge.stats();
    assert.equal(st.published, 2000);
    assert.equal(st.publishes, 2000);
    assert.equal(st.connects, 1);
    assert.deepEqual(outbox.stats(), { pending: 0, sent: 2000, duplicatesDropped: 0 });
    // replays from the devices after sending are still dropped: nothing new goes out
    assert.equal(outbox.put(records(devices, 499, 500)), 0);
    assert.equal(sub.statuses.get(`_agent/agent-1`)?.state, "online");
  });

  test(`${name}: other channels, notify(), device status, close() publishes offline`, async (t: TestContext) => {
    const defer = deferrer(t);
    const site = uniq("site");
    const outbox = newOutbox();
    defer(() => outbox.close());
    const sub = await Subscriber.open(brokerOf().url, site);
    defer(() => sub.close());
    const bridge = new MqttBridge({ url: brokerOf().url, site, agentId: "agent-2", outbox, pollMs: 0 });
    defer(() => bridge.close());
    bridge.start();
    bridge.setDeviceStatus("VVD-000009", true);
    await sub.waitFor("agent online", () => sub.statuses.get("_agent/agent-2")?.state === "online");
    await sub.waitFor("device online", () => sub.statuses.get("VVD-000009")?.state === "online");
    outbox.put([
      { deviceId: "VVD-000009", channel: "log", seq: null, payload: Buffer.from("boot ok"), receivedMs: 1 },
      recordItem("VVD-000009", 1),
    ]);
    bridge.notify();
    await sub.waitFor("log and record", () => sub.logs.length === 1 && sub.distinct === 1);
    assert.deepEqual(sub.logs, ["boot ok"]);
    await bridge.close();
    await sub.waitFor("agent offline", () => sub.statuses.get("_agent/agent-2")?.state === "offline");
    assert.equal(sub.statuses.get("_agent/agent-2")?.reason, "closed");
    assert.equal(sub.statuses.get("VVD-000009")?.state, "offline");
    assert.equal(bridge.stats().connected, false);
  });

  test(`${name}: the retained agent status turns "offline" by the will when the bridge process is killed`, async (t: TestContext) => {
    const defer = deferrer(t);
    const site = uniq("site");
    const path = join(dir(), `${uniq("child-")}.db`);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", new URL("./bridge_child.ts", import.meta.url).pathname, brokerOf().url, site, "agent-k", path],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    defer(async () => {
      child.kill("SIGKILL");
      await exited;
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (s: string) => s.includes("connected") && resolve());
      child.once("exit", (code) => reject(new Error(`bridge child exited with ${code}`)));
    });
    // a subscriber arriving now gets the retained statuses
    const sub = await Subscriber.open(brokerOf().url, site);
    defer(() => sub.close());
    await sub.waitFor("retained online", () => sub.statuses.get("_agent/agent-k")?.state === "online");
    await sub.waitFor("device online", () => sub.statuses.get("VVD-CHILD")?.state === "online");
    child.kill("SIGKILL");
    await sub.waitFor("offline by will", () => sub.statuses.get("_agent/agent-k")?.state === "offline", 5000);
    assert.equal(sub.statuses.get("_agent/agent-k")?.reason, "connection lost");
    const late = await Subscriber.open(brokerOf().url, site);
    defer(() => late.close());
    await late.waitFor("retained offline", () => late.statuses.get("_agent/agent-k")?.state === "offline");
  });
}
