// The MQTT bridge against real brokers: the embedded aedes broker and Mosquitto (a separate
// process). A separate mqtt.js subscriber counts what arrives by (device, seq), decoding each
// Record payload with protobufjs.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import { connect, type MqttClient } from "mqtt";
import { type } from "../../protocol/node/schema.ts";
import { startEmbeddedBroker, type EmbeddedBroker } from "../broker/embedded.ts";
import { Outbox, type OutboxItem } from "../outbox/outbox.ts";
import { freePort, startMosquitto, type Mosquitto } from "../../test/helpers/mosquitto.ts";
import { MqttBridge, type MqttBridgeOptions } from "./bridge.ts";

const RecordT = type("Record");
const dir = mkdtempSync(join(tmpdir(), "pollkit-bridge-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const uniq = (p: string): string => `${p}${++n}`;

function recordItem(deviceId: string, seq: number): OutboxItem {
  const body = Buffer.alloc(40);
  body.write(`${deviceId}#${seq}`);
  const msg = RecordT.fromObject({ seq, timeMs: 1_760_000_000_000 + seq, kind: 3, payload: body, signature: Buffer.alloc(64, 7) });
  return { deviceId, channel: "record", seq, payload: RecordT.encode(msg).finish(), receivedMs: Date.now() };
}

/** Records seq from..to for each device, interleaved across devices (as several links would). */
function records(devices: string[], from: number, to: number): OutboxItem[] {
  const out: OutboxItem[] = [];
  for (let s = from; s <= to; s++) for (const d of devices) out.push(recordItem(d, s));
  return out;
}

interface Status {
  state: string;
  at: number | null;
  reason?: string;
}

/** A separate client that subscribes to a site and counts records by (device, seq). */
class Subscriber {
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
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => {
        client.subscribe(`pollkit/v1/${site}/#`, { qos: 1 }, (err) => (err ? reject(err) : resolve()));
      });
    });
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

function newOutbox(): Outbox {
  return new Outbox({ path: join(dir, `${uniq("outbox-")}.db`) });
}

async function waitUntil(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Broker {
  url: string;
}

/** The tests that run against both brokers. */
function commonSuite(name: string, brokerOf: () => Broker): void {
  test(`${name}: 2,000 records drain exactly once, in per-device order`, async (t: TestContext) => {
    const site = uniq("site");
    const devices = ["VVD-000001", "VVD-000002", "RAD-000003", "VVD-000004"];
    const outbox = newOutbox();
    outbox.put(records(devices, 1, 500));
    const sub = await Subscriber.open(brokerOf().url, site);
    const bridge = new MqttBridge({ url: brokerOf().url, site, agentId: "agent-1", outbox });
    try {
      const t0 = performance.now();
      bridge.start();
      await sub.waitFor("2000 records", () => sub.distinct === 2000 && outbox.count() === 0 && bridge.stats().inFlight === 0, 15_000);
      const secs = (performance.now() - t0) / 1000;
      t.diagnostic(`${name}: 2000 records in ${secs.toFixed(2)} s = ${Math.round(2000 / secs)} records/s (maxInFlight 64, synchronous FULL)`);
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
    } finally {
      await bridge.close();
      await sub.close();
      outbox.close();
    }
  });

  test(`${name}: other channels, notify(), device status, close() publishes offline`, async () => {
    const site = uniq("site");
    const outbox = newOutbox();
    const sub = await Subscriber.open(brokerOf().url, site);
    const bridge = new MqttBridge({ url: brokerOf().url, site, agentId: "agent-2", outbox, pollMs: 0 });
    try {
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
    } finally {
      await bridge.close();
      await sub.close();
      outbox.close();
    }
  });

  test(`${name}: the retained agent status turns "offline" by the will when the bridge process is killed`, async () => {
    const site = uniq("site");
    const path = join(dir, `${uniq("child-")}.db`);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", new URL("./testing/bridge_child.ts", import.meta.url).pathname, brokerOf().url, site, "agent-k", path],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (s: string) => s.includes("connected") && resolve());
        child.once("exit", (code) => reject(new Error(`bridge child exited with ${code}`)));
      });
      // a subscriber arriving now gets the retained statuses
      const sub = await Subscriber.open(brokerOf().url, site);
      try {
        await sub.waitFor("retained online", () => sub.statuses.get("_agent/agent-k")?.state === "online");
        await sub.waitFor("device online", () => sub.statuses.get("VVD-CHILD")?.state === "online");
        child.kill("SIGKILL");
        await sub.waitFor("offline by will", () => sub.statuses.get("_agent/agent-k")?.state === "offline", 5000);
        assert.equal(sub.statuses.get("_agent/agent-k")?.reason, "connection lost");
      } finally {
        await sub.close();
      }
      const late = await Subscriber.open(brokerOf().url, site);
      try {
        await late.waitFor("retained offline", () => late.statuses.get("_agent/agent-k")?.state === "offline");
      } finally {
        await late.close();
      }
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
  });
}

describe("MqttBridge with the embedded aedes broker", () => {
  let broker: EmbeddedBroker;
  before(async () => {
    broker = await startEmbeddedBroker();
  });
  after(() => broker.close());
  commonSuite("aedes", () => broker);
});

describe("MqttBridge with Mosquitto", () => {
  let mosq: Mosquitto;
  before(async () => {
    mosq = await startMosquitto();
  });
  after(() => mosq.stop());
  commonSuite("mosquitto", () => mosq);

  test("mosquitto: broker stopped mid-drain and restarted on the same port: nothing lost", async (t) => {
    // Persistence, so that the subscriber's session and the messages queued for it survive the
    // broker restart (otherwise the subscriber, not the bridge, would lose what arrives before it
    // has resubscribed).
    // (max_queued_messages 0: no limit on what is queued for the subscriber while it reconnects;
    // the default, 1000, would drop records for it if the bridge were back first.)
    const broker = await startMosquitto({ persistence: true, extraConfig: ["max_queued_messages 0"] });
    const site = uniq("site");
    const devices = ["VVD-000011", "VVD-000012", "RAD-000013"];
    const outbox = newOutbox();
    outbox.put(records(devices, 1, 1000));
    const sub = await Subscriber.open(broker.url, site, { clientId: uniq("sub-outage-"), clean: false });
    const maxInFlight = 64;
    const bridge = new MqttBridge({ url: broker.url, site, agentId: "agent-o", outbox, maxInFlight, reconnectMinMs: 200, reconnectMaxMs: 1000 });
    try {
      bridge.start();
      await sub.waitFor("a third of the records", () => sub.distinct >= 1000, 10_000);
      const inFlightAtStop = bridge.stats().inFlight;
      await broker.stop();
      await waitUntil("bridge notices", () => !bridge.connected, 5000);
      const sentBefore = outbox.stats().sent;
      // the devices keep sending while the broker is down
      assert.equal(outbox.put(records(devices, 1001, 1200)), 600);
      bridge.notify();
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(outbox.stats().sent, sentBefore, "nothing can be acknowledged while the broker is down");
      await broker.restart();
      await sub.waitFor("all 3600 records after the restart", () => sub.distinct === 3600 && outbox.count() === 0, 15_000);
      await new Promise((r) => setTimeout(r, 300));
      sub.assertInOrder(devices, 1200);
      const st = bridge.stats();
      t.diagnostic(
        `mosquitto outage: in flight at stop ${inFlightAtStop}, repeats published by the bridge ${sub.repeatsFromPublisher}, ` +
          `redelivered by the broker (DUP) ${sub.repeatsRedelivered}, PUBLISH packets ${st.publishes} for 3600 rows, ` +
          `connects ${st.connects}, attempts ${st.connectAttempts}`,
      );
      assert.ok(sub.repeatsFromPublisher <= maxInFlight, `${sub.repeatsFromPublisher} repeats > maxInFlight`);
      assert.ok(st.publishes - 3600 <= maxInFlight, "republished only what was in flight");
      assert.equal(st.published, 3600);
      assert.ok(st.connects >= 2);
      await sub.waitFor("agent online again", () => sub.statuses.get("_agent/agent-o")?.state === "online");
    } finally {
      await bridge.close();
      await sub.close();
      outbox.close();
      await broker.stop();
    }
  });

  test("mosquitto over TLS: CA as a path or as PEM text; an unknown CA is refused", async () => {
    const tls = join(dir, uniq("tls-"));
    mkdirSync(tls);
    const ossl = (...args: string[]): void => {
      execFileSync("openssl", args, { cwd: tls, stdio: "ignore" });
    };
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    ossl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=pollkit test CA");
    ossl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
    writeFileSync(join(tls, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext");
    const broker = await startMosquitto({
      extraConfig: [`cafile ${join(tls, "ca.crt")}`, `certfile ${join(tls, "server.crt")}`, `keyfile ${join(tls, "server.key")}`],
    });
    const url = `mqtts://127.0.0.1:${broker.port}`;
    const site = uniq("site");
    const outbox = newOutbox();
    outbox.put(records(["VVD-000031"], 1, 50));
    const caPem = readFileSync(join(tls, "ca.crt"), "utf8");
    const sub = connect(url, { ca: caPem, reconnectPeriod: 0 });
    let got = 0;
    sub.on("message", (topic) => topic.endsWith("/record") && got++);
    await new Promise<void>((resolve, reject) => {
      sub.once("error", reject);
      sub.once("connect", () => sub.subscribe(`pollkit/v1/${site}/#`, { qos: 1 }, (e) => (e ? reject(e) : resolve())));
    });
    const bridge = new MqttBridge({ url, site, agentId: "agent-tls", outbox, ca: join(tls, "ca.crt") });
    const stranger = new MqttBridge({ url, site, agentId: "agent-stranger", outbox: newOutbox(), reconnectMinMs: 5000 });
    try {
      bridge.start();
      await waitUntil("50 records over TLS", () => got === 50 && outbox.count() === 0);
      stranger.start(); // the system CAs do not know our test CA
      await waitUntil("a certificate error", () => stranger.stats().lastError !== null, 5000);
      assert.match(stranger.stats().lastError ?? "", /certificate/i);
      assert.equal(stranger.stats().connects, 0);
      assert.throws(() => new MqttBridge({ url, site, agentId: "x", outbox, ca: join(tls, "missing.crt") }), /cannot read the ca file .*missing\.crt/);
    } finally {
      await stranger.close();
      await bridge.close();
      sub.end(true);
      outbox.close();
      await broker.stop();
    }
  });

  test("mosquitto: backoff while the broker is down: few attempts in 3 s", async (t) => {
    const broker = await startMosquitto();
    const outbox = newOutbox();
    const bridge = new MqttBridge({ url: broker.url, site: uniq("site"), agentId: "agent-b", outbox });
    try {
      bridge.start();
      await waitUntil("connected", () => bridge.connected);
      await broker.stop();
      await waitUntil("disconnected", () => !bridge.connected, 5000);
      const a0 = bridge.stats().connectAttempts;
      await new Promise((r) => setTimeout(r, 3000));
      const attempts = bridge.stats().connectAttempts - a0;
      t.diagnostic(`attempts in 3 s with the broker down: ${attempts}; last error: ${bridge.stats().lastError}`);
      assert.ok(attempts >= 1 && attempts <= 5, `${attempts} attempts`);
      assert.match(bridge.stats().lastError ?? "", /ECONNREFUSED/);
      assert.ok((bridge.stats().retryInMs ?? -1) >= 0);
    } finally {
      await bridge.close();
      outbox.close();
      await broker.stop();
    }
  });
});

/** A TCP proxy to a broker that can swallow the broker's replies (PUBACKs) and cut connections. */
async function startProxy(targetPort: number): Promise<{ url: string; swallow: boolean; cut(): void; close(): Promise<void> }> {
  const pairs = new Set<[Socket, Socket]>();
  const state = {
    swallow: false,
    url: "",
    cut(): void {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    close: async (): Promise<void> => {
      state.cut();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = createServer((down) => {
    const up = netConnect(targetPort, "127.0.0.1");
    const pair: [Socket, Socket] = [down, up];
    pairs.add(pair);
    down.on("data", (d) => up.write(d));
    up.on("data", (d) => {
      if (!state.swallow) down.write(d);
    });
    const end = (): void => {
      down.destroy();
      up.destroy();
      pairs.delete(pair);
    };
    for (const s of pair) {
      s.on("error", end);
      s.on("close", end);
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  state.url = `mqtt://127.0.0.1:${a !== null && typeof a === "object" ? a.port : 0}`;
  return state;
}

test("aedes: PUBACKs lost with the connection: the rows in flight are published again, and only those", async (t) => {
  const broker = await startEmbeddedBroker();
  const proxy = await startProxy(broker.port);
  const site = uniq("site");
  const devices = ["VVD-000021", "VVD-000022"];
  const outbox = newOutbox();
  outbox.put(records(devices, 1, 1000));
  const sub = await Subscriber.open(broker.url, site); // directly at the broker
  const maxInFlight = 32;
  const bridge = new MqttBridge({ url: proxy.url, site, agentId: "agent-p", outbox, maxInFlight, reconnectMinMs: 100, reconnectMaxMs: 400 });
  try {
    bridge.start();
    await sub.waitFor("500 records", () => sub.distinct >= 500);
    proxy.swallow = true; // the broker gets the PUBLISHes, the bridge never sees their PUBACKs
    await waitUntil("a full window in flight", () => bridge.stats().inFlight === maxInFlight);
    // everything acknowledged plus the whole window has reached the subscriber
    await sub.waitFor("the window delivered downstream", () => sub.distinct === outbox.stats().sent + maxInFlight, 5000);
    assert.equal(bridge.stats().inFlight, maxInFlight);
    proxy.cut();
    proxy.swallow = false;
    await sub.waitFor("all 2000 records", () => sub.distinct === 2000 && outbox.count() === 0, 15_000);
    await new Promise((r) => setTimeout(r, 200));
    sub.assertInOrder(devices, 1000);
    const st = bridge.stats();
    const republished = st.publishes - 2000;
    t.diagnostic(`PUBACKs lost: ${republished} rows published again, ${sub.repeatsFromPublisher} repeats downstream (maxInFlight ${maxInFlight})`);
    assert.equal(republished, maxInFlight);
    assert.equal(sub.repeatsFromPublisher, republished, "every repeat downstream is a row whose PUBACK was lost");
    assert.ok(sub.repeatsFromPublisher <= maxInFlight);
    assert.equal(st.published, 2000);
    assert.equal(outbox.stats().sent, 2000);
    await sub.waitFor("agent online again after the will", () => sub.statuses.get("_agent/agent-p")?.state === "online");
  } finally {
    await bridge.close();
    await sub.close();
    outbox.close();
    await proxy.close();
    await broker.close();
  }
});

test("backoff against a listener that accepts and drops every connection (counted at the socket)", async (t) => {
  const port = await freePort();
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on("error", () => undefined);
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  const outbox = newOutbox();
  const options: MqttBridgeOptions = { url: `mqtt://127.0.0.1:${port}`, site: "s", agentId: "agent-x", outbox };
  const bridge = new MqttBridge(options);
  try {
    bridge.start();
    await new Promise((r) => setTimeout(r, 3000));
    t.diagnostic(`connections accepted in 3 s: ${accepted}`);
    assert.ok(accepted >= 2 && accepted <= 5, `${accepted} connections`);
    assert.equal(bridge.stats().connects, 0);
  } finally {
    await bridge.close();
    outbox.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test("bad options are refused with a clear error", () => {
  const outbox = newOutbox();
  try {
    assert.throws(() => new MqttBridge({ url: "mqtt://127.0.0.1:1", site: "a/b", agentId: "x", outbox }), /site "a\/b"/);
    assert.throws(() => new MqttBridge({ url: "mqtt://127.0.0.1:1", site: "s", agentId: "#", outbox }), /agentId/);
    assert.throws(() => new MqttBridge({ url: "mqtt://127.0.0.1:1", site: "s", agentId: "x", outbox, maxInFlight: 0 }), /maxInFlight/);
    const b = new MqttBridge({ url: "mqtt://127.0.0.1:1", site: "s", agentId: "x", outbox });
    assert.throws(() => b.setDeviceStatus("VVD/1", true), /deviceId/);
  } finally {
    outbox.close();
  }
});
