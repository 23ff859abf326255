// The serial transport with real parts: simulated devices on real pseudo-terminals (socat), found
// by glob and by path, opened with the real serialport bindings; the USB listing state as it is on
// this machine (no udevadm) and with an injected listing.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDevice } from "../../../simulator/cli/device_runner.ts";
import { encodeFrame, FrameDecoder } from "../../../protocol/framing.ts";
import { Envelope } from "../../../protocol/node/schema.ts";
import type { HostLink } from "../../link/host_link.ts";
import { SerialTransport, UDEVADM_MISSING, expandGlob, globSegmentRegExp } from "./serial_transport.ts";
import { waitFor } from "../../../test/helpers/wait.ts";

test("glob segments: * and ? in the last segment, dotfiles skipped, regex characters literal", () => {
  const re = globSegmentRegExp("*.tty");
  assert.ok(re.test("VVD-1.tty"));
  assert.ok(!re.test(".hidden.tty"));
  assert.ok(!re.test("VVD-1.ttyx"));
  assert.ok(globSegmentRegExp("dev?.t+y").test("dev1.t+y"));
  assert.ok(!globSegmentRegExp("dev?.t+y").test("dev12.t+y"));
  assert.ok(!globSegmentRegExp("a.b").test("aXb"), "a dot is a dot");
  assert.throws(() => expandGlob("/tmp/*/x.tty"), /last path segment/);
  assert.deepEqual(expandGlob("/nonexistent-dir-pollkit/*.tty"), []);
  assert.throws(() => new SerialTransport({ globs: ["/dev/*/ttyACM0"] }), /last path segment/);
});

test("USB listing on this machine: unavailable without udevadm, configured paths still used", async () => {
  const t = new SerialTransport({ paths: [] });
  try {
    await t.scanNow();
    const state = t.listingState();
    // Where udevadm exists the listing works, and there is nothing to assert about its absence.
    if (!state.available) assert.equal(state.reason, UDEVADM_MISSING);
  } finally {
    await t.close();
  }
  const missing = Object.assign(new Error("spawn udevadm ENOENT"), { code: "ENOENT" });
  const t2 = new SerialTransport({ vendorIds: ["2fe3"], listPorts: () => Promise.reject(missing) });
  await t2.scanNow();
  assert.deepEqual(t2.listingState(), { available: false, reason: UDEVADM_MISSING });
  await t2.close();
  const t3 = new SerialTransport({
    vendorIds: ["2FE3"],
    listPorts: async () => [
      { path: "/nonexistent/ttyACM7", vendorId: "2fe3", productId: "0100", manufacturer: undefined, serialNumber: undefined, pnpId: undefined, locationId: undefined },
    ],
  });
  await t3.scanNow();
  assert.deepEqual(t3.listingState(), { available: true });
  await t3.close();
});

test("glob discovery: every device link matching, junk ignored, lines in, frames out, replug reopens", { timeout: 30000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-serial-"));
  writeFileSync(join(dir, "junk.tty"), "not a device"); // matches the glob, is not a character device
  const a = await runDevice({ serial: "VVD-GLOB-A", role: "verification", link: join(dir, "a.tty"), healthIntervalMs: 60000 });
  const b = await runDevice({ serial: "RAD-GLOB-B", role: "result", link: join(dir, "b.tty"), healthIntervalMs: 60000 });
  const logs: string[] = [];
  const t = new SerialTransport({ globs: [join(dir, "*.tty")], scanIntervalMs: 100, log: (l) => logs.push(l) });
  const links: HostLink[] = [];
  const frames = new Map<string, Record<string, unknown>[]>();
  const closes: string[] = [];
  t.onLink((link) => {
    links.push(link);
    const dec = new FrameDecoder({
      onFrame: (p) => {
        const list = frames.get(link.address) ?? [];
        list.push(Envelope.toObject(Envelope.decode(p), { longs: Number }));
        frames.set(link.address, list);
      },
      onConsole: () => {},
      onError: () => {},
    });
    link.onLine((l) => dec.pushLine(l));
    link.onClose((r) => closes.push(`${link.address}: ${r}`));
  });
  // A second agent on the same ports: the exclusive lock keeps it out.
  const rivalLogs: string[] = [];
  const rival = new SerialTransport({ globs: [join(dir, "*.tty")], log: (l) => rivalLogs.push(l) });
  let rivalLinks = 0;
  rival.onLink(() => rivalLinks++);
  try {
    t.start();
    await waitFor("both devices opened", () => links.length === 2);
    assert.deepEqual(links.map((l) => l.address).sort(), [join(dir, "a.tty"), join(dir, "b.tty")]);
    assert.ok(links.every((l) => l.kind === "serial"));

    await rival.scanNow();
    assert.equal(rivalLinks, 0, "a locked port is not opened twice");
    assert.ok(rivalLogs.some((l) => /cannot open/.test(l)), rivalLogs.join("\n"));

    const hello = encodeFrame(Envelope.encode(Envelope.fromObject({ hello: { protocolVersion: 1, deviceId: "t", role: 3 } })).finish());
    const t0 = performance.now();
    await Promise.all(links.map((l) => l.write(hello)));
    const writeMs = performance.now() - t0;
    await waitFor("hellos back", () => links.every((l) => (frames.get(l.address) ?? []).some((f) => f.hello !== undefined)));
    const aLink = links.find((l) => l.address.endsWith("a.tty"))!;
    assert.equal((frames.get(aLink.address)!.find((f) => f.hello)!.hello as { deviceId: string }).deviceId, "VVD-GLOB-A");
    assert.ok(writeMs < 1000, `write with drain took ${writeMs} ms`);

    // Cable out: the link closes once, writes fail, and the path is reopened when it is back.
    await a.unplug();
    await waitFor("close reported", () => closes.length === 1);
    assert.match(closes[0]!, /a\.tty: disconnected/);
    await assert.rejects(aLink.write(hello), /closed/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(links.length, 2, "nothing reopened while the path is gone");
    await a.replug();
    await waitFor("reopened after replug", () => links.length === 3);
    assert.equal(links[2]!.address, join(dir, "a.tty"));
    assert.equal(closes.length, 1, "onClose called once");
  } finally {
    await rival.close();
    await t.close();
    await a.stop();
    await b.stop();
  }
  assert.ok(closes.length >= 3, "close() closed the remaining links");
});
