// The host agent end to end over BLE: the agent in this process with the real BLE transport on
// the real noble (@abandonware/noble/with-bindings.js) over the simulator's radio, two SimDevices
// running the firmware behind simulated Nordic UART peripherals (ATT MTU 23 and 185), the
// embedded aedes broker, and a separate mqtt.js subscriber. Every journalled record of both
// devices must reach the subscriber exactly once, also across a radio link lost mid-stream.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import withBindings from "@abandonware/noble/with-bindings.js";
import { Agent, parseAgentConfig } from "../../host/agent/agent.ts";
import { BleTransport } from "../../host/transport/ble/ble_transport.ts";
import type { NobleLike } from "../../host/transport/ble/noble_like.ts";
import { startEmbeddedBroker } from "../../host/broker/embedded.ts";
import { SimBleBindings, type SimPeripheral } from "../../simulator/ble/sim_bindings.ts";
import { SimDevice } from "../../simulator/device/sim_device.ts";
import { type as pbType } from "../../protocol/node/schema.ts";
import { RecordKind } from "../../protocol/generated/device_codec.ts";
import { waitFor } from "../helpers/wait.ts";

const RecordT = pbType("Record");
const SITE = "ble-site";
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The operations side: a separate MQTT client counting each (device, seq) it receives. */
class Downstream {
  /** device -> seq -> times received */
  readonly seen = new Map<string, Map<number, number>>();
  /** device -> the status payloads received, in order */
  readonly status = new Map<string, string[]>();
  duplicates = 0;
  private client: mqtt.MqttClient | null = null;

  constructor(private readonly url: string) {}

  async connect(): Promise<void> {
    const client = mqtt.connect(this.url, { clientId: "ble-e2e-downstream", clean: true, reconnectPeriod: 200 });
    this.client = client;
    client.on("message", (topic, payload) => {
      const [, , site, device, channel] = topic.split("/");
      if (site !== SITE) return;
      if (channel === "status") {
        this.status.set(device, [...(this.status.get(device) ?? []), payload.toString("utf8")]);
        return;
      }
      if (channel !== "record") return;
      const rec = RecordT.toObject(RecordT.decode(payload), { longs: Number }) as { seq: number };
      const m = this.seen.get(device) ?? new Map<number, number>();
      this.seen.set(device, m);
      const n = m.get(rec.seq) ?? 0;
      if (n > 0) this.duplicates++;
      m.set(rec.seq, n + 1);
    });
    await new Promise<void>((resolve, reject) => {
      client.once("error", reject);
      client.once("connect", () => client.subscribe("pollkit/v1/#", { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    });
  }

  /** Seqs 1..lastSeq not received. */
  missing(deviceId: string, lastSeq: number): number[] {
    const m = this.seen.get(deviceId) ?? new Map<number, number>();
    const out: number[] = [];
    for (let s = 1; s <= lastSeq; s++) if (!m.has(s)) out.push(s);
    return out;
  }

  /** Seqs received more than once, or beyond what the device journalled. */
  extra(deviceId: string, lastSeq: number): number[] {
    const m = this.seen.get(deviceId) ?? new Map<number, number>();
    return [...m].filter(([seq, n]) => n > 1 || seq > lastSeq).map(([seq]) => seq);
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true);
  }
}

interface Dev {
  serial: string;
  peripheral: SimPeripheral<SimDevice>;
}

function lastSeq(d: Dev): number {
  const fw = d.peripheral.device.firmware;
  assert.ok(fw, `${d.serial} is running`);
  return fw.journal.nextSeq() - 1;
}

test("agent over BLE: two devices (MTU 23 and 185), every record downstream exactly once, also across a lost radio link", { timeout: 120000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-ble-e2e-"));
  // Undone in reverse order: the agent first, then the devices, the subscriber, the broker.
  const cleanup: (() => Promise<void> | void)[] = [];
  t.after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  const broker = await startEmbeddedBroker({ port: 0 });
  cleanup.push(() => broker.close());
  const down = new Downstream(broker.url);
  await down.connect();
  cleanup.push(() => down.close());

  const bindings = new SimBleBindings();
  const devs: Dev[] = [
    { serial: "VVD-BLE-023", id: "c0ffee000023", mtu: 23, role: "verification" as const },
    { serial: "RAD-BLE-185", id: "c0ffee000185", mtu: 185, role: "result" as const },
  ].map((o) => ({
    serial: o.serial,
    peripheral: bindings.addPeripheral({
      id: o.id,
      address: o.id.replace(/(..)(?!$)/g, "$1:"),
      localName: o.serial,
      mtu: o.mtu,
      device: (hostLink) => new SimDevice({ serial: o.serial, role: o.role, hostLink, healthIntervalMs: 1000 }),
    }),
  }));
  for (const d of devs) await new Promise<void>((resolve) => d.peripheral.device.powerOn(undefined, resolve));
  cleanup.push(() => {
    for (const d of devs) if (d.peripheral.device.firmware) d.peripheral.device.powerOff();
  });

  const agent = new Agent(
    parseAgentConfig(
      {
        site: SITE,
        agentId: "agent-ble-e2e",
        ble: { enabled: true },
        outbox: { path: "outbox.db" },
        mqtt: { url: broker.url },
        control: { port: 0 },
        timeSync: true,
      },
      dir,
    ),
  );
  cleanup.push(() => agent.stop());
  const ble = new BleTransport({ noble: withBindings(bindings) as NobleLike, scanIntervalMs: 200, timeoutMs: 3000 });
  const bleErrors: string[] = [];
  ble.onError((e) => bleErrors.push(e.message));
  agent.addSource("ble", ble);
  await ble.start();
  agent.start();

  // Both devices found, connected and past their hello, each on its own BLE link.
  const ready = (): boolean => devs.every((d) => agent.devices().some((s) => s.deviceId === d.serial && s.state === "ready"));
  await waitFor("both devices ready", ready);
  const listed = agent.devices();
  assert.deepEqual(
    listed.map((s) => [s.deviceId, s.transport, s.role]),
    [
      ["RAD-BLE-185", "ble", "result"],
      ["VVD-BLE-023", "ble", "verification"],
    ],
  );
  assert.deepEqual(
    listed.map((s) => s.address),
    ["c0ffee000185", "c0ffee000023"],
  );
  assert.deepEqual(agent.status().transports.ble, { available: true });

  // The devices journal records as fast as a busy polling station would, and faster.
  let producing = true;
  const payload = new Uint8Array(40).map((_, i) => i);
  const producers = devs.map((d) =>
    (async () => {
      while (producing) {
        d.peripheral.device.firmware?.record(RecordKind.TEST, payload);
        await sleep(25);
      }
    })(),
  );
  const [vvd, rad] = devs;
  try {
    await sleep(1200);

    // A command while records stream: the device's self-test, answered over BLE.
    for (const d of devs) {
      const session = agent.session(d.serial);
      assert.ok(session, `${d.serial} has a session`);
      const r = await session.command({ diagnostics: {} }, 5000);
      assert.equal(r.status, 0, `${d.serial}: ${r.message}`);
      const parts = r.diagnostics?.parts ?? [];
      assert.ok(parts.length > 0, `${d.serial} reported its parts`);
      for (const p of parts) assert.ok(p.verdict > 0, `${d.serial}: part ${p.part} has a verdict (${p.verdict})`);
    }
    await sleep(1200);

    // The radio link to the MTU 23 device is lost mid-stream (supervision timeout). The device
    // keeps journalling; the transport sees it advertise again and reconnects; the agent's new
    // session gets what was not acknowledged.
    const before = agent.session(vvd.serial);
    const connectionsBefore = vvd.peripheral.stats.connections;
    bindings.dropConnection("c0ffee000023");
    await waitFor("the lost link noticed", () => agent.session(vvd.serial) !== before);
    await sleep(600);
    await waitFor("the device back", () => {
      const s = agent.session(vvd.serial);
      return s !== null && s !== before && s.state === "ready";
    });
    assert.equal(vvd.peripheral.stats.connections, connectionsBefore + 1, "one reconnection");
    await sleep(1200);

    // And the MTU 185 one, twice in a row.
    for (let i = 0; i < 2; i++) {
      const prev = agent.session(rad.serial);
      bindings.dropConnection("c0ffee000185");
      await waitFor("the RAD back", () => {
        const s = agent.session(rad.serial);
        return s !== null && s !== prev && s.state === "ready";
      });
      await sleep(400);
    }
    await sleep(800);
  } finally {
    producing = false;
    await Promise.all(producers);
  }

  // Everything journalled drains: acknowledged by the agent, published, received once.
  const deadline = Date.now() + 30000;
  let pending = "";
  while (Date.now() < deadline) {
    pending = devs
      .map((d) => {
        const miss = down.missing(d.serial, lastSeq(d));
        return miss.length > 0 ? `${d.serial} missing ${miss.length} (first ${miss[0]}) of ${lastSeq(d)}` : "";
      })
      .filter((s) => s !== "")
      .join("; ");
    if (pending === "") break;
    await sleep(200);
  }
  assert.equal(pending, "", "every journalled record reached the subscriber");
  await sleep(300); // a late duplicate would arrive now
  for (const d of devs) {
    assert.ok(lastSeq(d) > 100, `${d.serial} journalled records throughout (${lastSeq(d)})`);
    assert.deepEqual(down.extra(d.serial, lastSeq(d)), [], `${d.serial}: no record twice, none invented`);
  }
  assert.equal(down.duplicates, 0);

  // Still listed on BLE after the reconnections; the outbox dropped the device's resends.
  assert.deepEqual(
    agent.devices().map((s) => [s.deviceId, s.transport, s.state]),
    [
      ["RAD-BLE-185", "ble", "ready"],
      ["VVD-BLE-023", "ble", "ready"],
    ],
  );
  const lastStatus = (d: Dev): unknown => JSON.parse(down.status.get(d.serial)?.at(-1) ?? "null") as unknown;
  for (const d of devs) assert.equal((lastStatus(d) as { state?: string } | null)?.state, "online", `${d.serial} online downstream`);

  // Writes were cut to each link's MTU; nothing was refused or lost on the radio.
  assert.ok(vvd.peripheral.stats.maxWrite <= 20, `MTU 23: largest write ${vvd.peripheral.stats.maxWrite}`);
  assert.ok(rad.peripheral.stats.maxWrite > 20 && rad.peripheral.stats.maxWrite <= 182, `MTU 185: largest write ${rad.peripheral.stats.maxWrite}`);
  assert.ok(vvd.peripheral.stats.maxNotification <= 20 && rad.peripheral.stats.maxNotification > 20);
  for (const d of devs) assert.equal(d.peripheral.stats.rejectedWrites, 0);
  // A write that races a dropped radio link is refused as "not connected" (a real stack does the
  // same); any other radio error is a failure.
  assert.deepEqual(bindings.errors.filter((e) => e.message !== "not connected"), []);
  assert.deepEqual(bleErrors, []);
  const totals = devs.map((d) => `${d.serial} ${lastSeq(d)}`).join(", ");
  const o = agent.outbox.stats();
  console.log(`ble e2e: records ${totals}; outbox sent ${o.sent}, resends dropped ${o.duplicatesDropped}`);
});
