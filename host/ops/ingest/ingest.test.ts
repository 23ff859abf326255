// Ingest against real brokers (embedded aedes and Mosquitto): records from real simulated devices
// (the firmware signs them with its secure element model) published as the agent does, plus
// forged, replayed, unknown and malformed messages.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { connect, type MqttClient } from "mqtt";
import { SimDevice } from "../../../simulator/device/sim_device.ts";
import { VirtualClock } from "../../../simulator/clock/timers.ts";
import { createMemoryLink } from "../../../simulator/links/memory_link.ts";
import { HostPeer } from "../../../test/helpers/host_peer.ts";
import { startMosquitto } from "../../../test/helpers/mosquitto.ts";
import { startEmbeddedBroker } from "../../broker/embedded.ts";
import { sliceField } from "../../session/device_session.ts";
import { type } from "../../../protocol/node/schema.ts";
import { encodeAuditEvent, RecordKind } from "../../../protocol/generated/device_codec.ts";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { registryEntry } from "../registry/registry.ts";
import { Ingest } from "./ingest.ts";
import { VerifyPool, type VerifyItem } from "./verify_pool.ts";
import { readRecord } from "./record_wire.ts";
import { waitFor as until } from "../../../test/helpers/wait.ts";

const RecordType = type("Record");

interface DeviceOutput {
  serial: string;
  publicKey: Uint8Array;
  hello: Uint8Array;
  health: Uint8Array;
  /** Record bytes by seq, as the device sent them. */
  records: Map<number, Uint8Array>;
}

/** Runs a simulated device until it has sent `audits` signed audit records (after its boot record). */
function runDevice(serial: string, audits: number): DeviceOutput {
  const clock = new VirtualClock();
  const link = createMemoryLink();
  const host = new HostPeer(link.host);
  const dev = new SimDevice({ serial, role: "verification", hostLink: link.device, clock, wallMs: 1795000000000, healthIntervalMs: 600000, linkResendMs: 600000 });
  dev.powerOn();
  clock.advance(500);
  host.send({ hello: { protocolVersion: 1, deviceId: "ops-test-host", role: 3 } });
  clock.advance(10);
  const fw = dev.firmware!;
  for (let i = 0; i < audits; i++) fw.record(RecordKind.AUDIT, encodeAuditEvent({ event: "test.event", actor: "device", detail: `${serial} ${i}` }));
  clock.advance(200 * audits + 1000);
  const out: DeviceOutput = { serial, publicKey: new Uint8Array(0), hello: new Uint8Array(0), health: new Uint8Array(0), records: new Map() };
  for (const raw of host.raw) {
    const hello = sliceField(raw, 1);
    const health = sliceField(raw, 2);
    const record = sliceField(raw, 3);
    if (hello && out.hello.length === 0) out.hello = hello.slice();
    if (health && out.health.length === 0) out.health = health.slice();
    if (record) out.records.set(readRecord(record).seq, record.slice());
  }
  out.publicKey = new Uint8Array((host.of("hello")[0] as { publicKey: number[] }).publicKey);
  dev.powerOff();
  assert.equal(out.records.size, audits + 1, `${serial}: boot record + ${audits} audits`);
  return out;
}

/** A test key (node:crypto) for cases a real device cannot produce on demand: two authentic records with one seq. */
function testKey(): { key: KeyObject; publicKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = publicKey.export({ format: "jwk" });
  const xy = Buffer.concat([Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]);
  return { key: createPrivateKey(privateKey.export({ format: "pem", type: "pkcs8" })), publicKey: new Uint8Array(xy) };
}

function signedRecord(key: KeyObject, seq: number, detail: string): Uint8Array {
  const body = { seq, timeMs: 1795000000000 + seq, kind: RecordKind.AUDIT, payload: encodeAuditEvent({ event: "e", actor: "device", detail }), prevSeq: seq - 1 };
  const unsigned = RecordType.encode(RecordType.fromObject(body)).finish();
  const signature = sign("sha256", unsigned, { key, dsaEncoding: "ieee-p1363" });
  return RecordType.encode(RecordType.fromObject({ ...body, signature })).finish();
}

const devA = runDevice("VVD-000101", 6);
const devB = runDevice("VVD-000102", 3);

async function publisher(url: string): Promise<MqttClient> {
  const c = connect(url, { protocolVersion: 4, clean: true, reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve());
    c.once("error", reject);
  });
  return c;
}

function flipPayloadBit(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const f = readRecord(out);
  const at = f.payload.byteOffset - out.byteOffset + f.payload.length - 1;
  out[at] ^= 0x01;
  return out;
}

function withoutSignature(bytes: Uint8Array): Uint8Array {
  return readRecord(bytes).signingBytes.slice();
}

async function scenario(url: string): Promise<void> {
  const store = new SqliteOpsStore(":memory:");
  const k = testKey();
  store.upsertDevices([
    registryEntry(devA.serial, devA.publicKey, { role: "verification", site: "site-a" }),
    registryEntry(devB.serial, devB.publicKey, { role: "verification", site: "site-a" }),
    registryEntry("KEY-1", k.publicKey, { role: "result", site: "site-a" }),
  ]);
  const ingest = new Ingest({ url, store, poolSize: 2, batchMs: 3 });
  const events = { records: 0, quarantine: 0, devices: [] as string[] };
  ingest.on("records", (b) => (events.records += b.length));
  ingest.on("quarantine", (q) => (events.quarantine += q.length));
  ingest.on("device", (d) => events.devices.push(`${d.deviceId}:${d.online}`));
  await ingest.start();
  const pub = await publisher(url);
  const topic = (device: string, channel: string): string => `pollkit/v1/site-a/${device}/${channel}`;
  let sent = 0;
  const send = async (t: string, payload: Uint8Array | string): Promise<void> => {
    sent++;
    await pub.publishAsync(t, Buffer.from(payload), { qos: 1 });
  };
  try {
    await send(topic(devA.serial, "hello"), devA.hello);
    await send(topic(devA.serial, "health"), devA.health);
    // Every authentic record twice (an agent resending after a lost PUBACK).
    for (const d of [devA, devB]) for (const bytes of d.records.values()) await send(topic(d.serial, "record"), bytes);
    for (const d of [devA, devB]) for (const bytes of d.records.values()) await send(topic(d.serial, "record"), bytes);
    await until("first pass", () => ingest.stats().received >= sent);
    await ingest.drain();

    // Forgeries and replays of stored seqs, and new seqs.
    const a2 = devA.records.get(2)!;
    await send(topic(devA.serial, "record"), flipPayloadBit(a2)); // stored seq, forged → bad-signature
    await send(topic(devA.serial, "record"), signedRecord(k.key, 9, "x")); // KEY-1's signature on A's topic → bad-signature
    await send(topic(devA.serial, "record"), devB.records.get(2)!); // B's signature on A's topic → bad-signature
    await send(topic(devA.serial, "record"), withoutSignature(devA.records.get(3)!)); // signed kind, signature stripped
    const boot = RecordType.decode(devA.records.get(1)!);
    const bootReplay = RecordType.encode(RecordType.fromObject({ ...RecordType.toObject(boot), timeMs: 1 })).finish();
    await send(topic(devA.serial, "record"), bootReplay); // unsigned kind, stored seq, other bytes → replay-conflict
    const key1First = signedRecord(k.key, 1, "first");
    await send(topic("KEY-1", "record"), key1First);
    await until("KEY-1 seq 1", () => store.recordBytes("KEY-1", 1) !== null);
    await send(topic("KEY-1", "record"), signedRecord(k.key, 1, "second")); // authentic, conflicting → replay-conflict
    await send(topic("VVD-999999", "record"), a2); // unknown device
    await send(topic("VVD-999999", "health"), devA.health); // unknown device
    await send(topic(devA.serial, "record"), new Uint8Array([0x0a, 0xff, 0xff])); // malformed
    await send(topic(devA.serial, "health"), new Uint8Array([0x08])); // malformed
    await send(topic(devA.serial, "status"), "not json"); // malformed
    await send(topic(devB.serial, "status"), JSON.stringify({ state: "offline", at: 1234 }));
    await until("second pass", () => ingest.stats().received >= sent);
    await ingest.drain();

    const stats = ingest.stats();
    const total = devA.records.size + devB.records.size;
    assert.equal(stats.stored, total + 1, "every authentic record once (plus KEY-1 seq 1)");
    assert.equal(stats.duplicates, total, "every second copy counted and dropped");
    assert.deepEqual(stats.quarantined, {
      "bad-signature": 3, // bit flipped, KEY-1's and B's signatures on A's topic
      "missing-signature": 1,
      "replay-conflict": 2,
      "unknown-device": 2,
      malformed: 3,
    });
    assert.deepEqual(store.quarantineCounts(), stats.quarantined);
    assert.equal(events.records, stats.stored);
    assert.equal(events.quarantine, stats.quarantinedTotal);

    // Records hold exactly the authentic bytes.
    for (const d of [devA, devB]) {
      const stored = store.records({ deviceId: d.serial });
      assert.deepEqual(stored.map((r) => r.seq), [...d.records.keys()].sort((x, y) => x - y));
      for (const r of stored) assert.deepEqual(Buffer.from(r.bytes), Buffer.from(d.records.get(r.seq)!), `${d.serial} seq ${r.seq}`);
    }
    assert.deepEqual(Buffer.from(store.recordBytes("KEY-1", 1)!), Buffer.from(key1First), "the first authentic copy stays");
    assert.equal(store.records({ deviceId: "VVD-999999" }).length, 0);
    assert.equal(store.records({}).length, total + 1);
    const malformed = store.quarantined({ reason: "malformed" });
    assert.match(malformed[0].detail, /Record does not decode: .*(index out of range|runs past)/);
    assert.match(store.quarantined({ reason: "replay-conflict" })[1].detail, /already stored with different bytes.*valid signature/);

    // Device state: hello, health, status.
    const states = new Map(store.deviceStates().map((s) => [s.deviceId, s]));
    assert.equal(states.get(devA.serial)!.online, true);
    assert.equal(states.get(devA.serial)!.firmwareVersion, "1.0.0");
    assert.equal(states.get(devA.serial)!.chainTop, devA.records.size);
    assert.equal(states.get(devA.serial)!.records, devA.records.size);
    assert.equal(states.get(devA.serial)!.lastHealth!.health.clockMs, 1795000000500, "the device's health sample");
    assert.equal(states.get(devB.serial)!.online, false);
    assert.equal(store.healthHistory(devA.serial, 0, 10).length, 1);
    assert.deepEqual(events.devices, [`${devA.serial}:true`, `${devB.serial}:false`]);
  } finally {
    await pub.endAsync();
    await ingest.close();
    store.close();
  }
}

test("through the embedded broker (aedes): authentic records stored once, everything else quarantined", async () => {
  const broker = await startEmbeddedBroker();
  try {
    await scenario(broker.url);
  } finally {
    await broker.close();
  }
});

test("through Mosquitto: the same", async () => {
  const m = await startMosquitto();
  try {
    await scenario(m.url);
  } finally {
    await m.stop();
  }
});

test("two consoles sharing a subscription ($share) through Mosquitto store each record once", async () => {
  const m = await startMosquitto();
  const store = new SqliteOpsStore(":memory:");
  store.upsertDevices([registryEntry(devA.serial, devA.publicKey, { role: "verification" })]);
  const pool = new VerifyPool({ size: 1 });
  const one = new Ingest({ url: m.url, store, pool, shared: "ops" });
  const two = new Ingest({ url: m.url, store, pool, shared: "ops" });
  try {
    assert.equal(one.topicFilter, "$share/ops/pollkit/v1/#");
    await one.start();
    await two.start();
    const pub = await publisher(m.url);
    for (const bytes of devA.records.values()) await pub.publishAsync(`pollkit/v1/s/${devA.serial}/record`, Buffer.from(bytes), { qos: 1 });
    await until("all delivered once", () => one.stats().received + two.stats().received >= devA.records.size);
    await one.drain();
    await two.drain();
    await pub.endAsync();
    assert.equal(one.stats().received + two.stats().received, devA.records.size, "each message to one console only");
    assert.equal(one.stats().stored + two.stats().stored, devA.records.size);
    assert.equal(store.records({}).length, devA.records.size);
  } finally {
    await one.close();
    await two.close();
    await pool.close();
    store.close();
    await m.stop();
  }
});

test("the verify pool verifies in workers and keeps order within and across batches", async () => {
  const pool = new VerifyPool({ size: 2, splitAbove: 4 });
  after(() => pool.close());
  const good: VerifyItem[] = [];
  for (const d of [devA, devB]) {
    for (const bytes of d.records.values()) {
      const f = readRecord(bytes);
      if (f.signature) good.push({ publicKeyHex: Buffer.from(d.publicKey).toString("hex"), data: f.signingBytes, signature: f.signature });
    }
  }
  assert.ok(good.length >= 9);
  const wrongKey = { ...good[0], publicKeyHex: good[good.length - 1].publicKeyHex };
  const flipped = { ...good[1], data: flipPayloadBit(good[1].data) };
  const shortSig = { ...good[2], signature: good[2].signature.subarray(0, 63) };
  const notAPoint = { ...good[3], publicKeyHex: "00".repeat(64) };
  // Several batches at once, mixed good and bad, each big enough to be split over both workers.
  const batches: { items: VerifyItem[]; expect: boolean[] }[] = [];
  for (let b = 0; b < 8; b++) {
    const items: VerifyItem[] = [];
    const expect: boolean[] = [];
    for (let i = 0; i < 40; i++) {
      const pick = (b * 7 + i) % 13;
      const bad = { 3: wrongKey, 5: flipped, 8: shortSig, 11: notAPoint }[pick];
      items.push(bad ?? good[pick % good.length]);
      expect.push(bad === undefined);
    }
    batches.push({ items, expect });
  }
  const before = pool.verified;
  const results = await Promise.all(batches.map((b) => pool.verify(b.items)));
  results.forEach((r, i) => assert.deepEqual(r, batches[i].expect, `batch ${i}`));
  assert.ok(pool.verified - before >= 8 * 36, "checked in the workers");
  assert.deepEqual(await pool.verify([]), []);
});

test("the store's 'certainly not stored' shortcut: duplicates and replays of stored records are still caught", async () => {
  const store = new SqliteOpsStore(":memory:");
  const pool = new VerifyPool({ size: 1 });
  after(() => pool.close());
  store.upsertDevices([registryEntry(devA.serial, devA.publicKey, { role: "verification", site: "s" })]);
  const seqs = [...devA.records.keys()].sort((a, b) => a - b);
  const first = devA.records.get(seqs[0])!;
  const second = devA.records.get(seqs[1])!;
  const third = devA.records.get(seqs[2])!;
  // Stored before ingest starts (a previous session), read from the database on first use.
  const f1 = readRecord(first);
  store.putRecords([{ deviceId: devA.serial, seq: f1.seq, prevSeq: f1.prevSeq, timeMs: f1.timeMs, kind: f1.kind, bytes: first, receivedMs: 1, site: "s" }]);
  assert.equal(store.mayHaveRecord(devA.serial, f1.seq), true);
  assert.equal(store.mayHaveRecord(devA.serial, f1.seq + 1), false);
  assert.equal(store.mayHaveRecord("NOT-THERE", 1), false);
  const ingest = new Ingest({ url: "mqtt://unused", store, pool, batchMs: 1 });
  const topic = `pollkit/v1/s/${devA.serial}/record`;
  ingest.onMessage(topic, Buffer.from(second));
  await ingest.drain();
  // Stored through the same store after ingest looked the device up: the shortcut is raised too.
  const f3 = readRecord(third);
  store.putRecords([{ deviceId: devA.serial, seq: f3.seq, prevSeq: f3.prevSeq, timeMs: f3.timeMs, kind: f3.kind, bytes: third, receivedMs: 2, site: "s" }]);
  assert.equal(store.mayHaveRecord(devA.serial, f3.seq), true);
  ingest.onMessage(topic, Buffer.from(first)); // exact duplicate of a record of a previous session
  ingest.onMessage(topic, Buffer.from(third)); // exact duplicate stored behind ingest's back
  ingest.onMessage(topic, Buffer.from(flipPayloadBit(third))); // forged copy of a stored seq
  await ingest.drain();
  const s = ingest.stats();
  assert.equal(s.stored, 1, "only the second record was new");
  assert.equal(s.duplicates, 2);
  assert.deepEqual(s.quarantined, { "bad-signature": 1 });
  assert.equal(s.verified, 2, "the duplicates were not verified");
  assert.deepEqual(Buffer.from(store.recordBytes(devA.serial, f3.seq)!), Buffer.from(third));
  await ingest.close();
  store.close();
});
