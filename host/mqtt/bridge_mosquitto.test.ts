// The MQTT bridge against Mosquitto, a separate broker process: the tests shared with aedes, a
// broker outage mid-drain, TLS, and the reconnect backoff.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connect } from "mqtt";
import { startMosquitto, type Mosquitto } from "../../test/helpers/mosquitto.ts";
import { MqttBridge } from "./bridge.ts";
import { commonSuite, deferrer, dir, newOutbox, records, Subscriber, uniq, waitUntil } from "./testing/harness.ts";

describe("MqttBridge with Mosquitto", () => {
  let mosq: Mosquitto;
  before(async () => {
    mosq = await startMosquitto();
  });
  after(() => mosq.stop());
  commonSuite("mosquitto", () => mosq);

  test("mosquitto: broker stopped mid-drain and restarted on the same port: nothing lost", async (t) => {
    const defer = deferrer(t);
    // Persistence, so that the subscriber's session and the messages queued for it survive the
    // broker restart (otherwise the subscriber, not the bridge, would lose what arrives before it
    // has resubscribed); max_queued_messages 0: no limit on what is queued for the subscriber
    // while it reconnects (the default, 1000, would drop records for it if the bridge were back
    // first).
    const broker = await startMosquitto({ persistence: true, extraConfig: ["max_queued_messages 0"] });
    defer(() => broker.stop());
    const site = uniq("site");
    const devices = ["VVD-000011", "VVD-000012", "RAD-000013"];
    const outbox = newOutbox();
    defer(() => outbox.close());
    outbox.put(records(devices, 1, 1000));
    const sub = await Subscriber.open(broker.url, site, { clientId: uniq("sub-outage-"), clean: false });
    defer(() => sub.close());
    const maxInFlight = 64;
    const bridge = new MqttBridge({ url: broker.url, site, agentId: "agent-o", outbox, maxInFlight, reconnectMinMs: 200, reconnectMaxMs: 1000 });
    defer(() => bridge.close());
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
  });

  test("mosquitto over TLS: CA as a path or as PEM text; an unknown CA is refused", async (t) => {
    const defer = deferrer(t);
    const tls = join(dir(), uniq("tls-"));
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
    defer(() => broker.stop());
    const url = `mqtts://127.0.0.1:${broker.port}`;
    const site = uniq("site");
    const outbox = newOutbox();
    defer(() => outbox.close());
    outbox.put(records(["VVD-000031"], 1, 50));
    const caPem = readFileSync(join(tls, "ca.crt"), "utf8");
    const sub = connect(url, { ca: caPem, reconnectPeriod: 0 });
    defer(() => sub.end(true));
    let got = 0;
    sub.on("message", (topic) => topic.endsWith("/record") && got++);
    await new Promise<void>((resolve, reject) => {
      sub.once("error", reject);
      sub.once("connect", () => sub.subscribe(`pollkit/v1/${site}/#`, { qos: 1 }, (e) => (e ? reject(e) : resolve())));
    });
    const bridge = new MqttBridge({ url, site, agentId: "agent-tls", outbox, ca: join(tls, "ca.crt") });
    defer(() => bridge.close());
    const strangerOutbox = newOutbox();
    defer(() => strangerOutbox.close());
    const stranger = new MqttBridge({ url, site, agentId: "agent-stranger", outbox: strangerOutbox, reconnectMinMs: 5000 });
    defer(() => stranger.close());
    bridge.start();
    await waitUntil("50 records over TLS", () => got === 50 && outbox.count() === 0);
    stranger.start(); // the system CAs do not know our test CA
    await waitUntil("a certificate error", () => stranger.stats().lastError !== null, 5000);
    assert.match(stranger.stats().lastError ?? "", /certificate/i);
    assert.equal(stranger.stats().connects, 0);
    assert.throws(() => new MqttBridge({ url, site, agentId: "x", outbox, ca: join(tls, "missing.crt") }), /cannot read the ca file .*missing\.crt/);
  });

  test("mosquitto: backoff while the broker is down: few attempts in 3 s", async (t) => {
    const defer = deferrer(t);
    const broker = await startMosquitto();
    defer(() => broker.stop());
    const outbox = newOutbox();
    defer(() => outbox.close());
    const bridge = new MqttBridge({ url: broker.url, site: uniq("site"), agentId: "agent-b", outbox });
    defer(() => bridge.close());
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
  });
});
