// The simulated radio under the real noble: what a central sees (advertising, GATT, MTU) and what
// a write larger than the MTU allows does (the peripheral discards it; the simulator reports it).
import { test } from "node:test";
import assert from "node:assert/strict";
import withBindings from "@abandonware/noble/with-bindings.js";
import type { NobleLike, NobleCharacteristic, NoblePeripheral, NobleService } from "../../host/transport/ble/noble_like.ts";
import { NUS_RX, NUS_SERVICE, NUS_TX, SimBleBindings } from "./sim_bindings.ts";

const cb =
  <T>(resolve: (v: T) => void, reject: (e: Error) => void) =>
  (e: Error | null | undefined, v: T): void =>
    e ? reject(e) : resolve(v);

test("a central finds the NUS peripheral, subscribes; oversized write commands are discarded and reported", async () => {
  const bindings = new SimBleBindings();
  const toDevice: Uint8Array[] = [];
  const connection: boolean[] = [];
  const periph = bindings.addPeripheral({
    id: "c0ffee000002",
    address: "c0:ff:ee:00:00:02",
    localName: "RAD-000001",
    rssi: -47,
    device: (link) => {
      link.onData((d) => toDevice.push(d));
      link.onConnection((c) => connection.push(c));
      return link;
    },
  });
  const noble = withBindings(bindings) as NobleLike;
  const p = await new Promise<NoblePeripheral>((resolve, reject) => {
    noble.on("discover", resolve);
    noble.on("stateChange", () => noble.startScanning([NUS_SERVICE], false, (e) => e && reject(e)));
  });
  noble.stopScanning();
  assert.equal(p.id, "c0ffee000002");
  assert.equal(p.rssi, -47);
  assert.equal(p.advertisement.localName, "RAD-000001");
  assert.deepEqual(p.advertisement.serviceUuids, [NUS_SERVICE]);

  await new Promise<void>((resolve, reject) => p.connect((e) => (e ? reject(e) : resolve())));
  const [svc] = await new Promise<NobleService[]>((res, rej) => p.discoverServices([NUS_SERVICE], cb(res, rej)));
  assert.equal(p.mtu, 23, "MTU from the 'onMtu' event");
  const chars = await new Promise<NobleCharacteristic[]>((res, rej) => svc.discoverCharacteristics([], cb(res, rej)));
  const rx = chars.find((c) => c.uuid === NUS_RX);
  const tx = chars.find((c) => c.uuid === NUS_TX);
  assert.ok(rx && tx);
  assert.deepEqual(tx.properties, ["notify"]);
  assert.deepEqual(connection, [], "connected but not subscribed: no host yet");
  const notes: Buffer[] = [];
  tx.on("data", (d) => notes.push(d));
  await new Promise<void>((resolve) => tx.subscribe(() => resolve()));
  assert.deepEqual(connection, [true]);

  periph.link.write(new Uint8Array(45).fill(7));
  await new Promise<void>((resolve) => rx.write(Buffer.alloc(20, 1), true, () => resolve()));
  await new Promise<void>((resolve) => rx.write(Buffer.alloc(21, 2), true, () => resolve()));
  assert.deepEqual(
    notes.map((n) => n.length),
    [20, 20, 5],
  );
  assert.deepEqual(toDevice.map((d) => d.length), [20], "the 21-byte write command never reached the device");
  assert.equal(periph.stats.rejectedWrites, 1);
  assert.match(bindings.errors[0]?.message ?? "", /21 bytes exceeds ATT_MTU - 3 = 20/);

  bindings.dropConnection("c0ffee000002");
  const reason = await new Promise<unknown>((resolve) => p.once("disconnect", resolve));
  assert.equal(reason, 0x08);
  assert.deepEqual(connection, [true, false]);
});
