// Device sessions with real parts: simulated devices running the real firmware on real
// pseudo-terminals (socat), opened by the real SerialTransport (serialport bindings), one
// DeviceSession per connection.
//
// The store here is a plain array (ArrayStore) so that a test can see and break it; the real
// Outbox (SQLite) is tested in its own suite (host/outbox) and end to end with the agent later.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDevice, type RunningDevice } from "../../simulator/cli/device_runner.ts";
import { SerialTransport } from "../transport/serial/serial_transport.ts";
import { encodeFrame } from "../../protocol/framing.ts";
import { Envelope, type } from "../../protocol/node/schema.ts";
import { encodeAuditEvent, ErrorCode, RecordKind, Verdict } from "../../protocol/generated/device_codec.ts";
import { verifyP256 } from "../../test/helpers/ecdsa.ts";
import { DeviceSession, sliceField, type SessionError } from "./device_session.ts";
import { ArrayStore } from "../../test/helpers/array_store.ts";
import { waitFor } from "../../test/helpers/wait.ts";

const RecordType = type("Record");

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Rig {
  devs: RunningDevice[];
  store: ArrayStore;
  transport: SerialTransport;
  /** Every session, in creation order, with its errors. */
  sessions: { session: DeviceSession; errors: SessionError[] }[];
  /** The newest session on a device's path. */
  current(dev: RunningDevice): { session: DeviceSession; errors: SessionError[] };
  stop(): Promise<void>;
}

async function rig(serials: string[], sessionOptions: { commandTimeoutMs?: number } = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-session-"));
  const devs = await Promise.all(
    serials.map((serial) =>
      runDevice({ serial, role: serial.startsWith("RAD") ? "result" : "verification", link: join(dir, `${serial}.tty`), healthIntervalMs: 1000 }),
    ),
  );
  const store = new ArrayStore();
  const transport = new SerialTransport({ paths: devs.map((d) => d.hostPath), scanIntervalMs: 100, staleLineMs: 300 });
  const sessions: Rig["sessions"] = [];
  transport.onLink((link) => {
    const session = new DeviceSession({ link, agentId: "test-agent", site: "test-site", store, frameTimeoutMs: 300, ...sessionOptions });
    const errors: SessionError[] = [];
    session.on("error", (e) => errors.push(e));
    sessions.push({ session, errors });
    session.start();
  });
  transport.start();
  const current = (dev: RunningDevice): Rig["sessions"][number] => {
    const list = sessions.filter((s) => s.session.link.address === dev.hostPath);
    if (list.length === 0) throw new Error(`no session on ${dev.hostPath}`);
    return list[list.length - 1]!;
  };
  await waitFor("every session ready", () => devs.every((d) => sessions.some((s) => s.session.link.address === d.hostPath && s.session.state === "ready")));
  return {
    devs,
    store,
    transport,
    sessions,
    current,
    async stop() {
      await transport.close();
      for (const d of devs) await d.stop();
    },
  };
}

function acked(dev: RunningDevice): number {
  return dev.device.firmware?.journal.ackedSeq() ?? -1;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

test("hello, boot record stored then acked, health, diagnostics, signed records stored byte for byte", { timeout: 30000 }, async () => {
  const r = await rig(["VVD-SES-01"]);
  const dev = r.devs[0]!;
  try {
    const { session, errors } = r.current(dev);
    const hello = session.deviceHello();
    assert.ok(hello);
    assert.equal(hello.deviceId, "VVD-SES-01");
    assert.equal(hello.publicKey.length, 64);
    assert.equal(hello.role, 1);
    assert.equal(hello.firmwareVersion, "1.0.0");

    await waitFor("boot record acked", () => acked(dev) >= 1);
    assert.equal(r.store.seqs("VVD-SES-01")[0], 1);
    assert.equal(r.store.count("VVD-SES-01", "hello"), 1);
    await waitFor("health", () => session.info().lastHealth !== null);
    await waitFor("health stored", () => r.store.count("VVD-SES-01", "health") >= 1);
    await waitFor("time sync answered", () => session.info().timeSync !== null);

    const diag = await session.command({ diagnostics: {} });
    assert.equal(diag.status, 0);
    assert.equal(diag.attempts, 1);
    const parts = diag.diagnostics?.parts ?? [];
    assert.ok(parts.length >= 3, JSON.stringify(diag));
    assert.equal(parts.find((p) => p.part === 1)?.verdict, Verdict.PASS, "secure element answers");
    const info = await session.command({ info: {} });
    assert.equal(info.info?.deviceId, "VVD-SES-01");
    await assert.rejects(session.command({ info: {}, diagnostics: {} }), /exactly one/);
    await assert.rejects(session.command({ frobnicate: {} }), /exactly one/);

    // Latency: record made on the device -> stored -> the device's journal sees the ack.
    const fw = dev.device.firmware!;
    const ackAt = new Map<number, number>();
    const storedAt = new Map<number, number>();
    const origAck = fw.journal.ack.bind(fw.journal);
    fw.journal.ack = (seq: number) => {
      ackAt.set(seq, performance.now());
      return origAck(seq);
    };
    session.on("record", (rec) => storedAt.set(rec.seq, performance.now()));
    const measure = async (kind: number, payload: () => Uint8Array, n: number): Promise<{ stored: number[]; acked: number[] }> => {
      const stored: number[] = [];
      const ackedMs: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        let seq = -1;
        fw.record(kind, payload(), (s) => (seq = s));
        await waitFor("record acked", () => seq > 0 && ackAt.has(seq));
        stored.push(storedAt.get(seq)! - t0);
        ackedMs.push(ackAt.get(seq)! - t0);
      }
      return { stored, acked: ackedMs };
    };
    const plain = await measure(RecordKind.TEST, () => new Uint8Array([7]), 20);
    const signed = await measure(RecordKind.AUDIT, () => encodeAuditEvent({ event: "test.latency", actor: "device", detail: "" }), 10);
    console.log(
      `latency (ms, median/max) unsigned: stored ${median(plain.stored).toFixed(1)}/${Math.max(...plain.stored).toFixed(1)}, ` +
        `acked ${median(plain.acked).toFixed(1)}/${Math.max(...plain.acked).toFixed(1)}; ` +
        `signed: stored ${median(signed.stored).toFixed(1)}/${Math.max(...signed.stored).toFixed(1)}, ` +
        `acked ${median(signed.acked).toFixed(1)}/${Math.max(...signed.acked).toFixed(1)}`,
    );

    // What is stored is exactly what the device journalled; the signed ones verify.
    const stored = r.store.records("VVD-SES-01");
    assert.equal(stored.length, 31);
    let verified = 0;
    for (const item of stored) {
      assert.deepEqual(item.payload, fw.journal.read(item.seq!) ?? item.payload, `record ${item.seq} byte for byte`);
      const rec = RecordType.toObject(RecordType.decode(item.payload), { longs: Number });
      if (rec.kind === RecordKind.AUDIT) {
        const unsigned = RecordType.encode(RecordType.fromObject({ ...rec, signature: undefined })).finish();
        assert.ok(verifyP256(hello.publicKey, unsigned, rec.signature as Uint8Array), `signature of record ${item.seq}`);
        verified++;
      }
    }
    assert.equal(verified, 10);
    const i = session.info();
    assert.equal(i.counters.reencodeMismatches, 0, "protobufjs round trip is byte-stable for this firmware's records");
    // The device greets on boot and the session answers every new boot with a hello, so a record
    // already in flight may come twice: received = stored + dropped duplicates.
    assert.equal(i.counters.records, 31 + i.counters.duplicates);
    assert.ok(i.counters.duplicates <= 8, "at most one link window resent");
    assert.equal(i.counters.recordsStored, 31);
    assert.equal(i.ackedSeq, 31);
    assert.equal(i.state, "ready");
    assert.equal(i.deviceId, "VVD-SES-01");
    assert.ok(i.counters.bytesIn > 0 && i.counters.bytesOut > 0);
    fw.log("console text from the test");
    await waitFor("console line", () => session.logLines().includes("console text from the test"));
    await waitFor("console line stored", () =>
      r.store.items.some((x) => x.channel === "log" && Buffer.from(x.payload).toString("latin1") === "console text from the test"),
    );
    assert.deepEqual(errors, []);
  } finally {
    await r.stop();
  }
});

test("protobufjs round trip: stable for canonical records, not for unknown fields (why the session slices)", () => {
  const u8 = (b: Uint8Array): Uint8Array => new Uint8Array(b);
  const canonical = RecordType.encode(RecordType.fromObject({ seq: 5, timeMs: 1700000000000, kind: 2, payload: [1, 2], signature: new Array(64).fill(9) })).finish();
  assert.deepEqual(u8(RecordType.encode(RecordType.decode(canonical)).finish()), u8(canonical));
  // A newer firmware adds field 15 (varint 1): protobufjs keeps no unknown fields, so it is lost.
  const newer = new Uint8Array([...canonical, 0x78, 0x01]);
  assert.deepEqual(u8(RecordType.encode(RecordType.decode(newer)).finish()), u8(canonical));
  // Fields out of order (allowed on the wire): re-encoding reorders them.
  const swapped = new Uint8Array([0x18, 0x02, 0x08, 0x05]);
  assert.deepEqual(u8(RecordType.encode(RecordType.decode(swapped)).finish()), new Uint8Array([0x08, 0x05, 0x18, 0x02]));
  // Slicing the envelope keeps the device's bytes whatever they are.
  const env = new Uint8Array([0x1a, newer.length, ...newer]);
  assert.deepEqual(u8(sliceField(env, 3)!), newer);
  assert.equal(sliceField(new Uint8Array([0x1a, 0x00, 0x1a, 0x00]), 3), null, "twice: no single slice");
});

test("cable out: records made meanwhile arrive once after the transport reopens the path", { timeout: 30000 }, async () => {
  const r = await rig(["VVD-SES-02"]);
  const dev = r.devs[0]!;
  try {
    await waitFor("boot record acked", () => acked(dev) >= 1);
    const first = r.current(dev).session;
    const closed: string[] = [];
    first.on("close", (reason) => closed.push(reason));

    await dev.unplug();
    await waitFor("session closed", () => first.state === "closed");
    assert.match(closed[0] ?? "", /disconnected/);
    await assert.rejects(first.command({ info: {} }), /closed/);
    const fw = dev.device.firmware!;
    for (let i = 0; i < 5; i++) fw.record(RecordKind.TEST, new Uint8Array([1, i]));
    await sleep(200);
    await dev.replug();
    await waitFor("a new session", () => r.current(dev).session !== first && r.current(dev).session.state === "ready");
    await waitFor("records made while unplugged acked", () => acked(dev) === 6, 8000);
    assert.deepEqual(r.store.seqs("VVD-SES-02"), [1, 2, 3, 4, 5, 6], "each record exactly once");
    const second = r.current(dev).session;
    assert.equal(second.info().counters.recordsStored, 5);
    assert.deepEqual(r.current(dev).errors, []);
  } finally {
    await r.stop();
  }
});

test("two devices: garbage, a bad CRC and a dangling half line on one leave the other undisturbed", { timeout: 30000 }, async () => {
  const r = await rig(["VVD-SES-03", "RAD-SES-04"]);
  const [quiet, noisy] = r.devs as [RunningDevice, RunningDevice];
  try {
    await waitFor("boot records acked", () => acked(quiet) >= 1 && acked(noisy) >= 1);
    const q = r.current(quiet);
    const n = r.current(noisy);
    const raw = (s: string | Uint8Array): void =>
      noisy.device.options.hostLink.write(typeof s === "string" ? new Uint8Array(Buffer.from(s, "latin1")) : s);

    raw("\x00\xff\xfe line noise \x13\x11 here\n");
    const bad = Buffer.from(encodeFrame(Envelope.encode(Envelope.fromObject({ health: { uptimeS: 42 } })).finish()));
    bad[6] = bad[6] === 65 ? 66 : 65; // another base64 letter: the CRC catches the changed bits
    raw(bad);
    raw("!AAAB"); // half a line, and then nothing: handed over after staleLineMs, reported
    await waitFor("bad CRC reported", () => n.errors.some((e) => e.code === ErrorCode.BAD_CRC));
    await waitFor("half line reported", () => n.errors.filter((e) => e.kind === "frame").length >= 2, 3000);
    assert.ok(n.session.logLines().some((l) => l.includes("line noise")), "garbage kept as device log");

    // The noisy one keeps working: a record is stored and acked, a command answered first time.
    noisy.device.firmware!.record(RecordKind.TEST, new Uint8Array([4]));
    quiet.device.firmware!.record(RecordKind.TEST, new Uint8Array([3]));
    await waitFor("both acked", () => acked(noisy) === 2 && acked(quiet) === 2);
    const [dq, dn] = await Promise.all([q.session.command({ diagnostics: {} }), n.session.command({ diagnostics: {} })]);
    assert.equal(dn.attempts, 1, "the half line did not swallow the answer");
    assert.equal(dq.attempts, 1);
    assert.ok(n.session.info().counters.frameErrors >= 2);
    assert.equal(n.session.state, "ready");
    assert.deepEqual(q.errors, [], "the quiet device's session saw none of it");
    assert.deepEqual(r.store.seqs("VVD-SES-03"), [1, 2]);
    assert.deepEqual(r.store.seqs("RAD-SES-04"), [1, 2]);
  } finally {
    await r.stop();
  }
});

test("a device that stops mid-frame: reported, commands time out (retried once), reboot resumes", { timeout: 30000 }, async () => {
  const r = await rig(["VVD-SES-05"], { commandTimeoutMs: 300 });
  const dev = r.devs[0]!;
  try {
    await waitFor("boot record acked", () => acked(dev) >= 1);
    const { session, errors } = r.current(dev);
    const bootId = session.deviceHello()!.bootId;
    // The firmware dies (power cut) halfway through sending a two-line frame.
    dev.device.powerOff();
    const frame = encodeFrame(new Uint8Array(200));
    const firstLine = frame.indexOf(10) + 1;
    dev.device.options.hostLink.write(frame.subarray(0, firstLine));
    await waitFor("cut frame reported", () => errors.some((e) => /cut short/.test(e.detail)), 3000);

    const t0 = performance.now();
    await assert.rejects(session.command({ info: {} }), /no answer \(sent 2 times/);
    assert.ok(performance.now() - t0 >= 550, "waited for both attempts");
    assert.equal(session.info().counters.commandRetries, 1);

    // A command pending when the session closes is rejected with the reason (the device is off:
    // this one will not be answered).
    const pending = session.command({ diagnostics: {} }, 10000);
    // Power back: a new boot greets; the session answers with its Hello, records flow again.
    const hellos: number[] = [];
    session.on("hello", (h) => hellos.push(h.bootId));
    dev.device.powerOn();
    await waitFor("new boot's hello", () => hellos.length === 1);
    assert.notEqual(hellos[0], bootId);
    await waitFor("second boot record acked", () => acked(dev) === 2);
    const reply = await session.command({ info: {} });
    assert.equal(reply.status, 0);
    assert.equal(reply.attempts, 1);
    await session.close();
    await assert.rejects(pending, /connection closed \(closed by host\) before diagnostics command/);
    assert.equal(session.state, "closed");
  } finally {
    await r.stop();
  }
});

test("a store that fails: no ack while it fails, the error reported, the resend stored once it works", { timeout: 60000 }, async () => {
  const r = await rig(["RAD-SES-06"]);
  const dev = r.devs[0]!;
  try {
    await waitFor("boot record acked", () => acked(dev) >= 1);
    const { session, errors } = r.current(dev);
    const acksBefore = session.info().counters.acksSent;
    r.store.failRecords = true;
    dev.device.firmware!.record(RecordKind.TEST, new Uint8Array([9]));
    await waitFor("store error reported", () => errors.some((e) => e.kind === "store"));
    assert.match(errors.find((e) => e.kind === "store")!.detail, /disk I\/O error.*nothing acknowledged/);
    await sleep(300);
    assert.equal(acked(dev), 1, "the device's journal did not move");
    assert.equal(session.info().counters.acksSent, acksBefore, "no Ack sent");
    assert.deepEqual(r.store.seqs("RAD-SES-06"), [1]);

    r.store.failRecords = false;
    // The device resends after 3 s (it may have journalled more by then, e.g. a power alarm).
    await waitFor("resent record stored and acked", () => acked(dev) >= 2, 20000);
    assert.deepEqual(r.store.seqs("RAD-SES-06").slice(0, 2), [1, 2]);
    assert.ok(session.info().counters.storeErrors >= 1);
    assert.equal(session.state, "ready");
  } finally {
    await r.stop();
  }
});
