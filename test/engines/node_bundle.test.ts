// The Node firmware bundle (artifacts/firmware/node) boots a simulated device on the chip models
// and speaks the protocol, like the TypeScript source does.

import { test } from "node:test";
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { buildTarget, TARGETS } from "../../device/build/build.ts";
import { SimDevice } from "../../simulator/device/sim_device.ts";
import { VirtualClock } from "../../simulator/clock/timers.ts";
import { createMemoryLink } from "../../simulator/links/memory_link.ts";
import { HostPeer } from "../helpers/host_peer.ts";
import type { Firmware } from "../../device/core/firmware.ts";

test("the built Node bundle passes the bundle check and runs a device", async () => {
  const target = TARGETS.find((t) => t.name === "node");
  assert.ok(target);
  const built = await buildTarget(target);
  assert.deepEqual(built.violations, []);
  const mod = (await import(pathToFileURL(built.file).href)) as { Firmware: typeof Firmware };
  const clock = new VirtualClock();
  const link = createMemoryLink();
  const host = new HostPeer(link.host);
  const dev = new SimDevice({ serial: "RAD-BUNDLE-1", role: "result", hostLink: link.device, clock, wallMs: 1795000000000, firmwareClass: mod.Firmware });
  dev.powerOn();
  clock.advance(600);
  assert.ok(dev.firmware instanceof mod.Firmware, "the device runs the bundle's firmware");
  host.send({ hello: { protocolVersion: 1, role: 3 } });
  clock.advance(20);
  const hello = host.of("hello")[0] as { deviceId: string; role: number; publicKey: number[] };
  assert.equal(hello.deviceId, "RAD-BUNDLE-1");
  assert.equal(hello.role, 2);
  assert.equal(hello.publicKey.length, 64);
  assert.deepEqual(host.records().map((r) => r.seq), [1]);
});
