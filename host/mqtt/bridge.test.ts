// The MQTT bridge against the embedded aedes broker (Mosquitto: bridge_mosquitto.test.ts), a proxy
// that loses PUBACKs, a listener that drops every connection. A separate mqtt.js subscriber counts
// what arrives by (device, seq), decoding each Record payload with protobufjs.
import assert from "node:assert/strict";
import { connect as netConnect, createServer, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { startEmbeddedBroker, type EmbeddedBroker } from "../broker/embedded.ts";
import { freePort } from "../../test/helpers/mosquitto.ts";
import { MqttBridge, type MqttBridgeOptions } from "./bridge.ts";
import { commonSuite, deferrer, newOutbox, records, Subscriber, uniq, waitUntil } from "./testing/harness.ts";

describe("MqttBridge with the embedded aedes broker", () => {
  let broker: EmbeddedBroker;
  before(async () => {
    broker = await startEmbeddedBroker();
  });
  after(() => broker.close());
  commonSuite("aedes", () => broker);
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
  const defer = deferrer(t);
  const broker = await startEmbeddedBroker();
  defer(() => broker.close());
  const proxy = await startProxy(broker.port);
  defer(() => proxy.close());
  const site = uniq("site");
  const devices = ["VVD-000021", "VVD-000022"];
  const outbox = newOutbox();
  defer(() => outbox.close());
  outbox.put(records(devices, 1, 1000));
  const sub = await Subscriber.open(broker.url, site); // directly at the broker
  defer(() => sub.close());
  const maxInFlight = 32;
  const bridge = new MqttBridge({ url: proxy.url, site, agentId: "agent-p", outbox, maxInFlight, reconnectMinMs: 100, reconnectMaxMs: 400 });
  defer(() => bridge.close());
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
});

test("backoff against a listener that accepts and drops every connection (counted at the socket)", async (t) => {
  const defer = deferrer(t);
  const port = await freePort();
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    s.on("error", () => undefined);
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  defer(() => new Promise<void>((r) => server.close(() => r())));
  const outbox = newOutbox();
  defer(() => outbox.close());
  const options: MqttBridgeOptions = { url: `mqtt://127.0.0.1:${port}`, site: "s", agentId: "agent-x", outbox };
  const bridge = new MqttBridge(options);
  defer(() => bridge.close());
  bridge.start();
  await new Promise((r) => setTimeout(r, 3000));
  t.diagnostic(`connections accepted in 3 s: ${accepted}`);
  assert.ok(accepted >= 2 && accepted <= 5, `${accepted} connections`);
  assert.equal(bridge.stats().connects, 0);
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
