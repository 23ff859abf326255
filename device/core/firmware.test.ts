// The firmware core on the Node target against a host speaking the protocol with protobufjs:
// hello, health, records with acknowledgement and resend, signatures, commands, reboots and every
// kind of bad input. Virtual time, so each step is deterministic.

import { test } from "node:test";
import assert from "node:assert/strict";
import { SimDevice } from "../../simulator/device/sim_device.ts";
import { VirtualClock } from "../../simulator/clock/timers.ts";
import { createMemoryLink } from "../../simulator/links/memory_link.ts";
import { HostPeer } from "../../test/helpers/host_peer.ts";
import { verifyP256 } from "../../test/helpers/ecdsa.ts";
import { crc16Xmodem } from "../../protocol/framing.ts";
import { signingBytes } from "../services/recorder.ts";
import { encodeAuditEvent, ErrorCode, RebootReason, RecordKind, Status, type Command } from "../../protocol/generated/device_codec.ts";
import { createCommissionKey } from "../../host/commission/keys.ts";
import { technicianRig, DAY_MS } from "../../host/commission/testing.ts";
import { authorize } from "../../host/commission/authorize.ts";

const NOW = 1795000000000;
const commission = createCommissionKey();
const tech = technicianRig(commission, { notBefore: NOW - DAY_MS });
/** A command that changes the device, signed by a technician with a commission token. */
function signed(cmd: Command, issuedMs: number): Command {
  return authorize(cmd, "VVD-000001", tech.token, tech.key, issuedMs);
}

function setup(opts: { flashPages?: number; flashPageSize?: number } = {}) {
  const clock = new VirtualClock();
  const link = createMemoryLink();
  const host = new HostPeer(link.host);
  const dev = new SimDevice({
    serial: "VVD-000001",
    role: "verification",
    hostLink: link.device,
    clock,
    wallMs: NOW,
    commissionKey: commission.publicKey,
    healthIntervalMs: 60000,
    linkResendMs: 3000,
    flashPages: opts.flashPages ?? 8,
    flashPageSize: opts.flashPageSize ?? 1024,
  });
  return { clock, link, host, dev };
}

function badCrcLine(payload: number[]): string {
  const body = new Uint8Array([0, payload.length, ...payload, 0, 0]);
  const crc = crc16Xmodem(body, 0, body.length - 2) ^ 0x0101;
  body[body.length - 2] = crc >> 8;
  body[body.length - 1] = crc & 255;
  return "!" + Buffer.from(body).toString("base64") + "\n";
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test("boot, hello exchange, health and the boot record; acknowledged records are not resent", () => {
  const { clock, host, dev } = setup();
  dev.powerOn();
  clock.advance(500);
  const hello = host.of("hello")[0] as { deviceId: string; role: number; publicKey: number[]; bootId: number };
  assert.equal(hello.deviceId, "VVD-000001");
  assert.equal(hello.role, 1);
  assert.equal(hello.publicKey.length, 64, "hello carries the P-256 public key");
  assert.equal(host.records().length, 0, "no records before the host says hello");

  host.send({ hello: { protocolVersion: 1, deviceId: "test-host", role: 3 } });
  clock.advance(10);
  assert.equal(host.of("hello").length, 2, "device answers the host hello");
  assert.equal(host.of("health").length, 1, "and reports health at once");
  const recs = host.records();
  assert.equal(recs.length, 1);
  assert.equal(recs[0].seq, 1);
  assert.equal(recs[0].kind, RecordKind.BOOT);

  host.send({ ack: { seq: 1 } });
  clock.advance(10000);
  assert.equal(host.records().length, 1, "acknowledged: no resend");
  assert.equal(dev.firmware?.journal.ackedSeq(), 1);

  clock.advance(60000);
  assert.ok(host.of("health").length >= 2, "health on schedule");
  const h = host.of("health").at(-1) as { uptimeS: number; clockMs: number; journalBacklog?: number };
  assert.ok(h.uptimeS >= 60);
  assert.ok(h.clockMs > 1795000000000);
});

/** A booted device in session with the host, its boot record acknowledged; its identity key. */
function inSession() {
  const rig = setup();
  const { clock, host, dev } = rig;
  dev.powerOn();
  clock.advance(500);
  host.send({ hello: { protocolVersion: 1, role: 3 } });
  clock.advance(10);
  host.send({ ack: { seq: 1 } });
  const key = new Uint8Array((host.of("hello")[0] as { publicKey: number[] }).publicKey);
  const fw = dev.firmware;
  assert.ok(fw);
  return { ...rig, key, fw };
}

test("signed records verify with the hello's key; unacknowledged records are resent after a timeout and after a reconnect", () => {
  const { clock, host, link, key, fw } = inSession();
  for (let i = 0; i < 3; i++) fw.record(RecordKind.AUDIT, encodeAuditEvent({ event: "test.event", actor: "device", detail: String(i) }));
  clock.advance(1000); // signing takes the chip tens of milliseconds each
  const recs = host.records().filter((r) => r.kind === RecordKind.AUDIT);
  assert.deepEqual(recs.map((r) => r.seq), [2, 3, 4]);
  for (const r of recs) {
    const sig = new Uint8Array(r.signature ?? []);
    assert.equal(sig.length, 64);
    const msg = signingBytes({ seq: r.seq, timeMs: r.timeMs, kind: r.kind, payload: new Uint8Array(r.payload ?? []), prevSeq: r.prevSeq });
    assert.ok(verifyP256(key, msg, sig), `record ${r.seq} signature`);
    const forged = msg.slice();
    forged[forged.length - 1] ^= 1;
    assert.equal(verifyP256(key, forged, sig), false);
  }

  // No ack: after the resend timeout the device sends 2..4 again.
  host.clear();
  clock.advance(3100);
  assert.deepEqual(host.records().map((r) => r.seq), [2, 3, 4]);

  // Ack up to 3, unplug, replug: only 4 comes again once the host says hello.
  host.send({ ack: { seq: 3 } });
  link.host.setConnected(false);
  link.host.setConnected(true);
  host.clear();
  clock.advance(10);
  assert.equal(host.records().length, 0, "nothing before hello");
  host.send({ hello: { protocolVersion: 1, role: 3 } });
  clock.advance(10);
  assert.deepEqual(host.records().map((r) => r.seq), [4]);
});

test("a reboot keeps the journal: unacknowledged records come again, sequence numbers go on", async () => {
  const { clock, host, dev } = setup();
  dev.powerOn();
  clock.advance(500);
  host.send({ hello: { protocolVersion: 1, role: 3 } });
  clock.advance(10);
  const firstBoot = (host.of("hello")[0] as { bootId: number }).bootId;
  host.send({ command: signed({ id: 77, reboot: { delayMs: 200 } }, NOW) });
  // Checking the token and the technician's signature takes two secure-element verifies.
  clock.advance(400);
  const ans = host.of("commandResult")[0] as { id: number; status?: number };
  assert.equal(ans.id, 77);
  assert.equal(ans.status ?? 0, Status.OK);
  clock.advance(300);
  await tick();
  assert.equal(dev.boots, 2);
  clock.advance(500);
  host.clear();
  host.send({ hello: { protocolVersion: 1, role: 3 } });
  clock.advance(10);
  const hello = host.of("hello")[0] as { bootId: number; journalNextSeq: number };
  assert.notEqual(hello.bootId, firstBoot);
  const recs = host.records();
  // boot 1 record (seq 1), the audit of the reboot command (seq 2), boot 2 record (seq 3)
  assert.deepEqual(recs.map((r) => r.seq), [1, 2, 3]);
  assert.deepEqual(recs.map((r) => r.kind), [RecordKind.BOOT, RecordKind.COMMAND, RecordKind.BOOT]);
  const h = host.of("health")[0] as { rebootReason: number };
  assert.equal(h.rebootReason, RebootReason.SOFTWARE);
});

test("bad input: garbage, bad CRC, undecodable and unknown messages, bad and replayed acks", () => {
  const { clock, host, dev } = setup();
  dev.powerOn();
  clock.advance(500);
  host.send({ hello: { protocolVersion: 1, role: 3 } });
  clock.advance(10);
  host.clear();

  host.sendRaw("noise \x00\xff between frames\n");
  host.sendRaw(badCrcLine([0x22, 0x02, 0x08, 0x01])); // an ack frame with its CRC wrong
  clock.advance(1100);
  host.sendRaw(badCrcLine([0x08, 0x63]));
  clock.advance(1100);
  // A frame with a valid CRC whose payload is not a protobuf Envelope (truncated varint).
  host.sendPayload(new Uint8Array([0x08]));
  clock.advance(1100);
  host.send({}); // an envelope with nothing in it
  clock.advance(1100);
  host.send({ health: { batteryMv: 1 } }); // a message the device does not accept
  clock.advance(1100);
  host.send({ ack: { seq: 999 } }); // never sent
  clock.advance(1100);
  const codes = (host.of("error") as { code: number }[]).map((e) => e.code);
  assert.deepEqual(codes, [
    ErrorCode.BAD_CRC,
    ErrorCode.BAD_CRC,
    ErrorCode.DECODE_FAILED,
    ErrorCode.UNKNOWN_MESSAGE,
    ErrorCode.UNEXPECTED_MESSAGE,
    ErrorCode.BAD_ACK,
  ]);
  assert.equal(dev.firmware?.journal.ackedSeq(), 0, "a bad ack changes nothing");
  host.send({ ack: { seq: 1 } });
  host.send({ ack: { seq: 1 } }); // replayed
  host.send({ ack: { seq: 0 } }); // out of order
  clock.advance(10);
  assert.equal(dev.firmware?.journal.ackedSeq(), 1);
  assert.equal(host.of("error").length, 6, "replayed and stale acks are harmless");
  const h = dev.firmware?.health();
  assert.ok((h?.errorCount ?? 0) >= 6, "errors are counted in health");
});

test("commands: info, diagnostics with a verdict per part, read log, set time; a repeated id is not run twice", () => {
  const { clock, host, dev } = setup();
  dev.powerOn();
  clock.advance(500);
  host.send({ hello: { protocolVersion: 1, role: 3 } });
  clock.advance(10);
  host.clear();
  host.send({ command: { id: 1, info: {} } });
  host.send({ command: { id: 2, diagnostics: {} } });
  host.send({ command: { id: 3, readLog: { maxLines: 5 } } });
  host.send({ command: signed({ id: 4, setTime: { unixMs: NOW + 3_600_000 } }, NOW + 1) });
  host.send({ command: { id: 5, setTime: { unixMs: 5 } } });
  host.send({ command: signed({ id: 6, setChargeMode: { mode: 2 } }, NOW + 3_600_000) });
  host.send({ command: { id: 7, setChargeMode: { mode: 3 } } });
  clock.advance(1500);
  const results = (host.of("commandResult") as { id: number }[]).sort((a, b) => a.id - b.id) as { id: number; status?: number; info?: { deviceId: string }; diagnostics?: { parts: { part: number; verdict: number }[] }; log?: { lines: string[] } }[];
  assert.deepEqual(results.map((r) => r.id), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(results[0].info?.deviceId, "VVD-000001");
  const parts = results[1].diagnostics?.parts ?? [];
  assert.equal(parts.length, 9);
  assert.equal(parts.find((p) => p.part === 1)?.verdict, 1, "secure element passes");
  assert.ok((results[2].log?.lines ?? []).some((l) => l.includes("booted")));
  assert.equal(results[3].status ?? 0, Status.OK);
  assert.ok(Math.abs(dev.wallMs() - (NOW + 3_600_000)) < 2000);
  assert.equal(results[4].status, Status.BAD_ARGUMENT);
  assert.equal(results[5].status ?? 0, Status.OK, "signed charge mode taken");
  assert.equal(dev.firmware?.power?.mode, 2);
  assert.equal(results[6].status, Status.DENIED, "a command that changes the device needs authority");

  // The same id again (the host lost the answer): same answer, not executed again.
  const executed = dev.firmware?.commands.executed;
  host.send({ command: signed({ id: 4, setTime: { unixMs: NOW + 3_600_000 } }, NOW + 1) });
  clock.advance(10);
  assert.equal(dev.firmware?.commands.executed, executed);
  assert.equal((host.of("commandResult").at(-1) as { id: number }).id, 4);
  // The clock change was journalled as a signed command record.
  const kinds = host.records().map((r) => r.kind);
  assert.equal(kinds.filter((k) => k === RecordKind.COMMAND).length, 2, "set time and charge mode");
});

test("a full journal refuses new records and loses none of the unacknowledged ones", () => {
  const { clock, host, dev } = setup({ flashPages: 4, flashPageSize: 256 });
  dev.powerOn();
  clock.advance(500);
  const fw = dev.firmware;
  assert.ok(fw);
  const results: number[] = [];
  for (let i = 0; i < 40; i++) fw.record(RecordKind.TEST, new Uint8Array(40).fill(i), (seq) => results.push(seq));
  clock.advance(100);
  const accepted = results.filter((s) => s > 0);
  assert.ok(accepted.length > 3 && accepted.length < 40, `accepted ${accepted.length}`);
  assert.ok(results.some((s) => s < 0), "later records refused");
  host.send({ hello: { protocolVersion: 1, role: 3 } });
  clock.advance(100);
  assert.ok(
    (host.of("error") as { code: number }[]).some((e) => e.code === ErrorCode.JOURNAL_FULL),
    "the host is told the journal is full",
  );
  // Everything accepted is delivered (window by window, as the host acknowledges).
  const seen = new Set<number>();
  for (let round = 0; round < 20; round++) {
    for (const r of host.records()) seen.add(r.seq);
    const max = Math.max(0, ...seen);
    host.send({ ack: { seq: max } });
    clock.advance(50);
  }
  for (const s of [1, ...accepted]) assert.ok(seen.has(s), `record ${s} delivered`);
  // Once acknowledged, space comes back.
  let after = 0;
  fw.record(RecordKind.TEST, new Uint8Array(40), (seq) => (after = seq));
  clock.advance(10);
  assert.ok(after > 0, "accepted again after acknowledgement");
});

test("a signing attempt that fails (the chip not answering for a moment) is tried again before the record is refused", () => {
  const { clock, host, dev, key, fw } = inSession();
  const got: number[] = [];
  // Off the bus for one attempt: back before the second.
  dev.bus.setConnected(0x60, false);
  fw.record(RecordKind.AUDIT, encodeAuditEvent({ event: "test.event", actor: "device", detail: "once" }), (s) => got.push(s));
  clock.advance(5);
  dev.bus.setConnected(0x60, true);
  clock.advance(1000);
  assert.deepEqual(got, [2]);
  const rec = host.records().find((r) => r.seq === 2);
  assert.ok(rec?.signature);
  const msg = signingBytes({ seq: rec.seq, timeMs: rec.timeMs, kind: rec.kind, payload: new Uint8Array(rec.payload ?? []), prevSeq: rec.prevSeq });
  assert.ok(verifyP256(key, msg, new Uint8Array(rec.signature)), "the retried signature verifies");
  assert.ok(host.consoles.some((l) => l.includes("signing failed") && l.includes("trying again")));

  // Gone for good: refused after three attempts, and said so.
  dev.bus.setConnected(0x60, false);
  fw.record(RecordKind.AUDIT, encodeAuditEvent({ event: "test.event", actor: "device", detail: "never" }), (s) => got.push(s));
  clock.advance(2000);
  assert.deepEqual(got, [2, -100]);
  assert.ok(host.consoles.some((l) => l.includes("signing failed 3 times")));
});
