// The fault tools themselves: line noise at the rates asked for, replayable from its seed; the
// TCP proxy forwards, refuses, blackholes and heals; the catalogue names how each fault shows.

import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { LineNoise } from "./line_noise.ts";
import { startTcpProxy } from "./tcp_proxy.ts";
import { FAULTS, injectFault, faultSpec } from "./catalogue.ts";

test("line noise flips bits, drops and doubles bytes at the rates asked, the same for the same seed", () => {
  const data = new Uint8Array(200_000).fill(0x55);
  const n = new LineNoise({ bitErrorRate: 1e-3, seed: 7 });
  const out = n.apply(data);
  assert.equal(out.length, data.length);
  let flipped = 0;
  for (let i = 0; i < out.length; i++) for (let b = out[i] ^ data[i]; b; b &= b - 1) flipped++;
  assert.equal(flipped, n.counters.bitsFlipped);
  // 1.6 M bits at 1e-3: about 1,600 flips (the per-byte draw caps one flip a byte).
  assert.ok(flipped > 1400 && flipped < 1800, `${flipped} bits flipped`);
  assert.deepEqual(new LineNoise({ bitErrorRate: 1e-3, seed: 7 }).apply(data), out, "replayable");
  assert.notDeepEqual(new LineNoise({ bitErrorRate: 1e-3, seed: 8 }).apply(data), out);

  const d = new LineNoise({ dropRate: 0.01, duplicateRate: 0.01, seed: 3 });
  const o2 = d.apply(data);
  assert.equal(o2.length, data.length - d.counters.bytesDropped + d.counters.bytesDuplicated);
  assert.ok(d.counters.bytesDropped > 1500 && d.counters.bytesDropped < 2500);
  assert.ok(d.counters.bytesDuplicated > 1500 && d.counters.bytesDuplicated < 2500);
  assert.equal(new LineNoise({}).apply(data), data, "no impairment: the same bytes");
});

test("the TCP proxy forwards, refuses and blackholes while partitioned, and heals", async () => {
  const echo = net.createServer((s) => s.on("data", (d) => s.write(d)));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  const proxy = await startTcpProxy({ targetPort: (echo.address() as net.AddressInfo).port });
  const roundTrip = (sock: net.Socket, text: string, ms: number): Promise<string | null> =>
    new Promise((resolve) => {
      const t = setTimeout(() => resolve(null), ms);
      sock.once("data", (d) => {
        clearTimeout(t);
        resolve(d.toString());
      });
      sock.write(text);
    });
  const connect = (): Promise<net.Socket> => new Promise((r) => {
    const s = net.connect(proxy.port, "127.0.0.1", () => r(s));
  });
  try {
    const s1 = await connect();
    assert.equal(await roundTrip(s1, "hello", 1000), "hello");
    proxy.partition("blackhole");
    assert.equal(await roundTrip(s1, "lost", 300), null, "blackholed: nothing comes back");
    assert.equal(s1.destroyed, false, "the connection stays open");
    proxy.heal();
    assert.equal(await roundTrip(s1, "again", 1000), "again");
    const closed = new Promise<void>((r) => s1.once("close", () => r()));
    proxy.partition("refuse");
    await closed;
    const s2 = net.connect(proxy.port, "127.0.0.1");
    await new Promise<void>((r) => s2.once("close", () => r()));
    proxy.heal();
    const s3 = await connect();
    assert.equal(await roundTrip(s3, "back", 1000), "back");
    s3.destroy();
  } finally {
    await proxy.close();
    echo.close();
  }
});

test("the catalogue: every fault says how it is reported; a harness that lacks an action says so", async () => {
  const ids = FAULTS.map((f) => f.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const f of FAULTS) assert.ok(f.reportedBy.length > 10 && f.what.length > 5, f.id);
  assert.throws(() => faultSpec("no-such" as never), /no fault/);
  const calls: string[] = [];
  const done = await injectFault({ unplug: (d, ms) => void calls.push(`${d}:${ms}`) }, "unplug-mid-transfer", { device: "VVD-1" }, () => 0.5);
  assert.equal(calls.length, 1);
  assert.match(calls[0], /^VVD-1:1250$/);
  assert.equal(done.id, "unplug-mid-transfer");
  await assert.rejects(injectFault({}, "broker-restart", {}, () => 0), /cannot inject "broker-restart"/);
});

test("the catalogue calls a harness's actions as its methods (this is the harness)", async () => {
  class Rig {
    readonly cut: string[] = [];
    powerCut(device: string, writes: number): void {
      this.cut.push(`${device}:${writes}`);
    }
  }
  const rig = new Rig();
  await injectFault(rig, "device-power-cut", { device: "RAD-1" }, () => 0.5);
  assert.deepEqual(rig.cut, ["RAD-1:11"]);
});
