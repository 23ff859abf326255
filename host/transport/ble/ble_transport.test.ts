// The BLE transport over the real noble (built by @abandonware/noble/with-bindings.js) whose
// bindings are the simulator's radio (simulator/ble/sim_bindings.ts), with a real SimDevice running
// the firmware behind each simulated peripheral. Real timers throughout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import withBindings from "@abandonware/noble/with-bindings.js";
import { BleTransport, NUS_RX_UUID, NUS_SERVICE_UUID, NUS_TX_UUID } from "./ble_transport.ts";
import type { NobleLike } from "./noble_like.ts";
import type { HostLink } from "../../link/host_link.ts";
import {
  NUS_RX,
  NUS_SERVICE,
  NUS_TX,
  SimBleBindings,
  type AdapterState,
  type SimPeripheral,
} from "../../../simulator/ble/sim_bindings.ts";
import { SimDevice } from "../../../simulator/device/sim_device.ts";
import type { ByteLink } from "../../../device/platform/platform.ts";
import { encodeFrame, FrameDecoder } from "../../../protocol/framing.ts";
import { Envelope } from "../../../protocol/node/schema.ts";
import { RecordKind, Role } from "../../../protocol/generated/device_codec.ts";
import { waitFor } from "../../../test/helpers/wait.ts";

// Taken before any test runs: the noble files that importing this file (and the transport) loaded.
const nobleFilesAtImport = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes("@abandonware/noble"));

const SERIAL = "VVD-000123";
const ID = "c0ffee000001";

type Env = Record<string, Record<string, unknown> | undefined>;

/** The host's side of one HostLink: frames decoded from the notifications. */
class Peer {
  readonly received: Env[] = [];
  readonly frameErrors: string[] = [];
  closedWith: string | null = null;

  constructor(readonly link: HostLink) {
    const decoder = new FrameDecoder({
      onFrame: (p) => this.received.push(Envelope.toObject(Envelope.decode(p), { longs: Number, bytes: Array, defaults: false }) as Env),
      onConsole: () => undefined,
      onError: (code, detail) => this.frameErrors.push(`${code}: ${detail}`),
    });
    link.onBytes((c) => decoder.pushBytes(c));
    link.onClose((r) => (this.closedWith = r));
  }

  of(kind: string): Record<string, unknown>[] {
    return this.received.filter((e) => e[kind] !== undefined).map((e) => e[kind] as Record<string, unknown>);
  }
}

function frame(env: Record<string, unknown>): Uint8Array {
  const err = Envelope.verify(env);
  if (err) throw new Error(err);
  return encodeFrame(Envelope.encode(Envelope.fromObject(env)).finish());
}

/** Records what reaches the device through its link. */
function tap(link: ByteLink, sink: Uint8Array[]): ByteLink {
  return {
    write: (d) => link.write(d),
    onData: (cb) => link.onData((d) => (sink.push(d.slice()), cb(d))),
    onConnection: (cb) => link.onConnection(cb),
  };
}

interface Rig {
  bindings: SimBleBindings;
  peripheral: SimPeripheral<SimDevice>;
  transport: BleTransport;
  peers: Peer[];
  errors: string[];
  /** Bytes the device received, in order. */
  deviceGot(): Buffer;
  close(): Promise<void>;
}

async function rig(o: { mtu?: number; state?: AdapterState } = {}): Promise<Rig> {
  const bindings = new SimBleBindings({ state: o.state });
  const sink: Uint8Array[] = [];
  const peripheral = bindings.addPeripheral({
    id: ID,
    address: "c0:ff:ee:00:00:01",
    localName: SERIAL,
    mtu: o.mtu,
    device: (hostLink) => new SimDevice({ serial: SERIAL, role: "verification", hostLink: tap(hostLink, sink) }),
  });
  await new Promise<void>((resolve) => peripheral.device.powerOn(undefined, resolve));
  const transport = new BleTransport({ noble: withBindings(bindings) as NobleLike, scanIntervalMs: 100, timeoutMs: 2000 });
  const peers: Peer[] = [];
  const errors: string[] = [];
  transport.onLink((l) => peers.push(new Peer(l)));
  transport.onError((e) => errors.push(e.message));
  await transport.start();
  return {
    bindings,
    peripheral,
    transport,
    peers,
    errors,
    deviceGot: () => Buffer.concat(sink),
    close: async () => {
      await transport.close();
      peripheral.device.powerOff();
    },
  };
}

const last = (r: Rig): Peer => {
  const p = r.peers.at(-1);
  assert.ok(p, "a link");
  return p;
};

test("importing the transport does not load the real noble (its HCI bindings)", () => {
  const real = nobleFilesAtImport.filter((f) => /resolve-bindings|hci-socket|noble\/index\.js$/.test(f));
  assert.deepEqual(real, [], "only with-bindings and lib/noble are loaded");
  assert.ok(nobleFilesAtImport.some((f) => f.endsWith("with-bindings.js")));
});

test("the transport's UUIDs are the simulator's Nordic UART Service", () => {
  assert.deepEqual([NUS_SERVICE_UUID, NUS_RX_UUID, NUS_TX_UUID], [NUS_SERVICE, NUS_RX, NUS_TX]);
});

test("MTU 23: finds the device, gets its Hello, the host Hello in chunks of at most 20 bytes, the BOOT record", async () => {
  const r = await rig();
  try {
    assert.deepEqual(r.transport.state(), { available: true });
    await waitFor("a link", () => r.peers.length === 1);
    const peer = last(r);
    assert.equal(peer.link.kind, "ble");
    assert.equal(peer.link.address, ID);
    await waitFor("the device's Hello", () => peer.of("hello").length === 1);
    const hello = peer.of("hello")[0] as { deviceId: string; role: number; publicKey: number[] };
    assert.equal(hello.deviceId, SERIAL);
    assert.equal(hello.role, Role.VERIFICATION);
    assert.equal(hello.publicKey.length, 64);
    assert.ok(r.peripheral.stats.notifications > 1 && r.peripheral.stats.maxNotification <= 20, "notifications of at most MTU - 3");

    // Two writes at once: queued one behind the other, never interleaved.
    const hostHello = frame({ hello: { protocolVersion: 1, deviceId: "test-host", role: Role.HOST } });
    const info = frame({ command: { id: 7, info: {} } });
    assert.ok(hostHello.length > 20);
    await Promise.all([peer.link.write(hostHello), peer.link.write(info)]);
    const s = r.peripheral.stats;
    assert.ok(s.maxWrite <= 20, `largest write ${s.maxWrite} bytes`);
    assert.equal(s.writes, Math.ceil(hostHello.length / 20) + Math.ceil(info.length / 20));
    assert.equal(s.rejectedWrites, 0);
    assert.deepEqual(r.deviceGot(), Buffer.concat([hostHello, info]), "the device received both frames intact, in order");

    await waitFor("the BOOT record", () => peer.of("record").length >= 1);
    const rec = peer.of("record")[0] as { seq: number; kind: number };
    assert.equal(rec.seq, 1);
    assert.equal(rec.kind, RecordKind.BOOT);
    await waitFor("the info result", () => peer.of("commandResult").length === 1);
    assert.equal((peer.of("commandResult")[0] as { id: number }).id, 7);
    assert.equal(peer.of("hello").length, 2, "the device answered the host's Hello");
    assert.deepEqual(peer.frameErrors, []);
    assert.deepEqual(r.bindings.errors, []);
    assert.deepEqual(r.errors, []);
  } finally {
    await r.close();
  }
});

test("MTU 185: writes in chunks of at most 182 bytes and the device gets the frame intact", async () => {
  const r = await rig({ mtu: 185 });
  try {
    await waitFor("a link", () => r.peers.length === 1);
    const peer = last(r);
    await waitFor("the device's Hello", () => peer.of("hello").length === 1);
    assert.ok(r.peripheral.stats.maxNotification > 20 && r.peripheral.stats.maxNotification <= 182);
    const big = frame({ hello: { protocolVersion: 1, deviceId: "technician-laptop/" + "x".repeat(300), role: Role.HOST } });
    assert.ok(big.length > 2 * 182);
    await peer.link.write(big);
    const s = r.peripheral.stats;
    assert.equal(s.maxWrite, 182);
    assert.equal(s.writes, Math.ceil(big.length / 182));
    assert.deepEqual(r.deviceGot(), Buffer.from(big));
    await waitFor("the BOOT record", () => peer.of("record").length >= 1);
    assert.equal((peer.of("record")[0] as { kind: number }).kind, RecordKind.BOOT);
  } finally {
    await r.close();
  }
});

test("radio loss: onClose fires, the transport reconnects when the device is seen again", async () => {
  const r = await rig();
  try {
    await waitFor("a link", () => r.peers.length === 1);
    const first = last(r);
    await waitFor("Hello", () => first.of("hello").length === 1);

    r.bindings.dropConnection(ID);
    await waitFor("onClose", () => first.closedWith !== null);
    assert.match(first.closedWith ?? "", /radio link lost/);
    await assert.rejects(first.link.write(Uint8Array.of(1, 2, 3)), /closed/);
    await waitFor("a second link", () => r.peers.length === 2);
    const second = last(r);
    await waitFor("a new Hello", () => second.of("hello").length === 1);
    assert.equal(second.link.address, ID);

    // Out of range: no link until it is back.
    r.bindings.setInRange(ID, false);
    await waitFor("onClose", () => second.closedWith !== null);
    await new Promise((res) => setTimeout(res, 400));
    assert.equal(r.peers.length, 2, "nothing to connect to while out of range");
    r.bindings.setInRange(ID, true);
    await waitFor("a third link", () => r.peers.length === 3);
    await waitFor("Hello again", () => last(r).of("hello").length === 1);
    assert.equal(r.peripheral.stats.connections, 3);
    assert.deepEqual(r.errors, []);
  } finally {
    await r.close();
  }
});

test("closing a link disconnects the device", async () => {
  const r = await rig();
  try {
    await waitFor("a link", () => r.peers.length === 1);
    const peer = last(r);
    await waitFor("Hello", () => peer.of("hello").length === 1);
    await peer.link.close();
    assert.equal(peer.closedWith, "closed by host");
    assert.equal(r.peripheral.connected, false);
    await r.transport.close();
    assert.equal(r.peripheral.connected, false);
  } finally {
    await r.close();
  }
});

test("no adapter (state unsupported): unavailable with a reason, no crash; powered on later, it scans", async () => {
  const r = await rig({ state: "unsupported" });
  try {
    const s = r.transport.state();
    assert.equal(s.available, false);
    assert.match(s.reason ?? "", /no Bluetooth adapter/);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(r.peers.length, 0);
    r.bindings.setAdapterState("poweredOn");
    await waitFor("a link", () => r.peers.length === 1);
    assert.deepEqual(r.transport.state(), { available: true });
  } finally {
    await r.close();
  }
});

test("without an injected noble, loading the real one here reports the missing adapter", async (ctx) => {
  const t = new BleTransport({ timeoutMs: 2000 });
  assert.deepEqual(t.state(), { available: false, reason: "not started" });
  await t.start();
  const s = t.state();
  if (s.available) {
    ctx.skip("this machine has a Bluetooth adapter");
  } else {
    // On this kind of machine the import throws EAFNOSUPPORT (no Bluetooth sockets).
    assert.match(s.reason ?? "", /^no Bluetooth adapter \(EAFNOSUPPORT/);
  }
  await t.close();
});
