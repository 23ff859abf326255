// A small fleet through real agents and the embedded broker: every device's boot record arrives
// once, health flows, and an unplugged device's records arrive after it is plugged back in.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { Fleet } from "./fleet.ts";
import { startEmbeddedBroker } from "../../host/broker/embedded.ts";
import { type as pbType } from "../../protocol/node/schema.ts";
import { RecordKind } from "../../protocol/generated/device_codec.ts";

const RecordT = pbType("Record");
const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await wait(50);
  }
}

test("a fleet of 12 devices on 3 agents delivers every record once through the broker", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-fleet-"));
  const broker = await startEmbeddedBroker({ port: 0 });
  const fleet = new Fleet({ devices: 12, agents: 3, brokerUrl: broker.url, dir, healthIntervalMs: 500 });
  const sub = mqtt.connect(broker.url, { clientId: "fleet-test" });
  const seen = new Map<string, number>();
  const health = new Set<string>();
  sub.on("message", (topic, payload) => {
    const [, , site, device, channel] = topic.split("/");
    if (channel === "record") {
      const r = RecordT.toObject(RecordT.decode(payload), { longs: Number }) as { seq: number; kind: number };
      const key = `${site}/${device}/${r.seq}/${r.kind}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    } else if (channel === "health") health.add(device);
  });
  await new Promise<void>((r) => sub.once("connect", () => sub.subscribe("pollkit/v1/#", { qos: 1 }, () => r())));
  try {
    fleet.start();
    const boots = (): number => [...seen.keys()].filter((k) => k.endsWith(`/${RecordKind.BOOT}`)).length;
    await until(() => boots() === 12 && health.size === 12, 10_000, `a boot record and health from every device (boots ${boots()} health ${health.size} ${[...seen.keys()].join(",")})`);
    // Unplug one device, make it journal while away, plug it back: its record arrives once.
    const d = fleet.devices[4];
    fleet.unplug(d);
    await wait(100);
    d.device.firmware?.record(RecordKind.TEST, new Uint8Array([1, 2, 3]));
    await wait(300);
    assert.equal([...seen.keys()].filter((k) => k.includes(`/${d.serial}/`) && k.endsWith(`/${RecordKind.TEST}`)).length, 0);
    fleet.plug(d);
    await until(() => [...seen.keys()].some((k) => k.includes(`/${d.serial}/`) && k.endsWith(`/${RecordKind.TEST}`)), 15_000, "the record made while unplugged");
    await wait(500);
    for (const [k, n] of seen) assert.equal(n, 1, `${k} delivered ${n} times`);
    // Each device published under its own agent's site.
    for (const fd of fleet.devices) assert.ok([...seen.keys()].some((k) => k.startsWith(`${fd.site}/${fd.serial}/`)), fd.serial);
  } finally {
    sub.end(true);
    await fleet.stop();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
