// The secure element driver against the ATECC608 model over the simulated I2C bus, on a fake
// clock: the driver's timers and the chip's now() read the same scheduler, so every test is
// deterministic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPublicKey, randomBytes, verify as nodeVerify } from "node:crypto";
import type { Timers } from "../platform/platform.ts";
import {
  SecureElement,
  atCrc16,
  seCheckCrc,
  seExecMs,
  SE_ERR_BAD_ARGUMENT,
  SE_ERR_CLOSED,
  SE_ERR_CRC,
  SE_ERR_EXECUTION,
  SE_ERR_NO_DEVICE,
  SE_ERR_PARSE,
  SE_OP_GENKEY,
  SE_OP_RANDOM,
  type SeCallback,
  type SeError,
} from "./secure_element.ts";
import { SimI2cBus, type I2cTransaction } from "../../simulator/models/i2c_bus.ts";
import {
  Atecc608Model,
  ATECC_COUNTER_MAX,
  ateccCrc,
  signDigest,
  type Atecc608Options,
} from "../../simulator/models/atecc608.ts";
import { p256 } from "@noble/curves/nist";
import { verifyP256 } from "../../test/helpers/ecdsa.ts";

// ---------------------------------------------------------------- fake timers

interface Pending {
  id: number;
  at: number;
  cb: () => void;
}

class FakeTimers implements Timers {
  private t = 0;
  private nextId = 1;
  private pending: Pending[] = [];

  now(): number {
    return this.t;
  }

  setTimeout(cb: () => void, ms: number): number {
    const id = this.nextId++;
    this.pending.push({ id, at: this.t + Math.max(0, ms), cb });
    return id;
  }

  clearTimeout(id: number): void {
    this.pending = this.pending.filter((p) => p.id !== id);
  }

  /** Runs the earliest timer (insertion order among equals); false when nothing is pending. */
  step(): boolean {
    if (this.pending.length === 0) return false;
    let best = 0;
    for (let i = 1; i < this.pending.length; i++) {
      if (this.pending[i]!.at < this.pending[best]!.at) best = i;
    }
    const p = this.pending.splice(best, 1)[0]!;
    this.t = Math.max(this.t, p.at);
    p.cb();
    return true;
  }

  /** Moves the clock forward, running the timers that fall due. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.pending.filter((p) => p.at <= end);
      if (due.length === 0) break;
      this.step();
    }
    this.t = end;
  }

  runUntil(done: () => boolean, limitMs = 600_000): void {
    const start = this.t;
    while (!done()) {
      if (!this.step()) throw new Error("fake timers: nothing pending and the callback never ran");
      if (this.t - start > limitMs) throw new Error("fake timers: time limit reached");
    }
  }

  get pendingCount(): number {
    return this.pending.length;
  }
}

// ---------------------------------------------------------------- fixtures

interface Rig {
  clock: FakeTimers;
  bus: SimI2cBus;
  chip: Atecc608Model;
  se: SecureElement;
  trace: (I2cTransaction & { at: number })[];
}

function rig(options?: Partial<Atecc608Options>, driverOptions?: { wakeBudgetMs?: number }): Rig {
  const clock = new FakeTimers();
  const bus = new SimI2cBus();
  const chip = new Atecc608Model({ now: () => clock.now(), ...options });
  bus.attach(0x60, chip);
  const trace: (I2cTransaction & { at: number })[] = [];
  bus.onTransaction = (t) => trace.push({ ...t, at: clock.now() });
  const se = new SecureElement({ bus, timers: clock, ...driverOptions });
  return { clock, bus, chip, se, trace };
}

interface Outcome<T> {
  err: SeError | null;
  result: T | undefined;
}

/** Starts a driver call and runs the fake clock until its callback has run. */
function call<T>(clock: FakeTimers, start: (cb: SeCallback<T>) => void): Outcome<T> {
  let out: Outcome<T> | null = null;
  let calls = 0;
  start((err, result) => {
    calls++;
    out = { err, result };
  });
  clock.runUntil(() => out !== null);
  assert.equal(calls, 1);
  return out!;
}

function ok<T>(clock: FakeTimers, start: (cb: SeCallback<T>) => void): T {
  const o = call(clock, start);
  assert.equal(o.err, null, o.err ? `unexpected error ${o.err.code}: ${o.err.message}` : "");
  return o.result as T;
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

function nodeVerifies(pub64: Uint8Array, message: Uint8Array, sig64: Uint8Array): boolean {
  const key = createPublicKey({
    key: {
      kty: "EC",
      crv: "P-256",
      x: Buffer.from(pub64.subarray(0, 32)).toString("base64url"),
      y: Buffer.from(pub64.subarray(32, 64)).toString("base64url"),
    },
    format: "jwk",
  });
  return nodeVerify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, sig64);
}

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function withCrc(body: Uint8Array): Uint8Array {
  const crc = atCrc16(body, 0, body.length);
  const out = new Uint8Array(body.length + 2);
  out.set(body);
  out[body.length] = crc & 0xff;
  out[body.length + 1] = crc >> 8;
  return out;
}

// ---------------------------------------------------------------- CRC and packets

test("atCrc16 reproduces published ATECC/ATSHA packets", () => {
  // Wake response (CryptoAuthLib hal_check_wake): 04 11 | 33 43.
  assert.deepEqual(withCrc(bytes(0x04, 0x11)), bytes(0x04, 0x11, 0x33, 0x43));
  // Info/DevRev command (CryptoAuthLib kit protocol discovery; Atmel SHA204 examples).
  assert.deepEqual(withCrc(bytes(0x07, 0x30, 0x00, 0x00, 0x00)), bytes(0x07, 0x30, 0x00, 0x00, 0x00, 0x03, 0x5d));
  // Atmel SHA204 example blocks: DevRev response, CheckMac miscompare, execution error, HMAC, DeriveKey, GenDig.
  assert.deepEqual(withCrc(bytes(0x07, 0x00, 0x00, 0x00, 0x01)), bytes(0x07, 0x00, 0x00, 0x00, 0x01, 0x00, 0x2e));
  assert.deepEqual(withCrc(bytes(0x04, 0x01)), bytes(0x04, 0x01, 0x00, 0xc3));
  assert.deepEqual(withCrc(bytes(0x04, 0x0f)), bytes(0x04, 0x0f, 0x23, 0x42));
  assert.deepEqual(withCrc(bytes(0x07, 0x11, 0x00, 0x00, 0x00)), bytes(0x07, 0x11, 0x00, 0x00, 0x00, 0x3f, 0x0d));
  assert.deepEqual(withCrc(bytes(0x07, 0x1c, 0x00, 0x00, 0x00)), bytes(0x07, 0x1c, 0x00, 0x00, 0x00, 0x0a, 0x4d));
  assert.deepEqual(withCrc(bytes(0x07, 0x15, 0x02, 0x00, 0x00)), bytes(0x07, 0x15, 0x02, 0x00, 0x00, 0x30, 0x08));
  assert.equal(seCheckCrc(bytes(0x04, 0x11, 0x33, 0x43)), true);
  assert.equal(seCheckCrc(bytes(0x04, 0x11, 0x33, 0x42)), false);
  // An offset inside a larger buffer.
  assert.equal(atCrc16(bytes(0xaa, 0x04, 0x11, 0xbb), 1, 2), 0x4333);
});

test("the driver's table CRC agrees with the model's bit-by-bit atCRC", () => {
  for (let i = 0; i < 500; i++) {
    const data = new Uint8Array(randomBytes(1 + (i % 140)));
    assert.equal(atCrc16(data, 0, data.length), ateccCrc(data, data.length));
  }
});

test("a GenKey packet built by hand: count, opcode, params, CRC; the chip answers 67 bytes", () => {
  // GenKey, mode 0x04 (create private key), KeyID 0x0000: count 7, CRC 83 87.
  const packet = withCrc(bytes(0x07, 0x40, 0x04, 0x00, 0x00));
  assert.deepEqual(packet, bytes(0x07, 0x40, 0x04, 0x00, 0x00, 0x83, 0x87));

  const { clock, bus, se, trace } = rig();
  // The driver puts exactly these bytes on the wire, after the command word address 0x03.
  ok<Uint8Array>(clock, (cb) => se.genKey(0, cb));
  const sent = trace.find((t) => t.kind === "write" && t.address === 0x60 && t.data![0] === 0x03);
  assert.deepEqual(sent!.data, bytes(0x03, ...packet));

  // And by hand over the bus: wake, command, wait, read count then the rest.
  clock.advance(10); // let the driver idle the chip
  assert.equal(bus.write(0x00, bytes(0x00)), false, "the general call is never acknowledged");
  clock.advance(1.5);
  assert.deepEqual(bus.read(0x60, 4), bytes(0x04, 0x11, 0x33, 0x43));
  // GenKey mode 0x00: the public key of slot 0 again.
  assert.equal(bus.write(0x60, bytes(0x03, ...withCrc(bytes(0x07, 0x40, 0x00, 0x00, 0x00)))), true);
  clock.advance(seExecMs(SE_OP_GENKEY));
  assert.equal(bus.write(0x60, bytes(0x00)), true);
  const count = bus.read(0x60, 1)!;
  assert.equal(count[0], 67);
  const rest = bus.read(0x60, 66)!;
  const response = new Uint8Array(67);
  response[0] = 67;
  response.set(rest, 1);
  assert.equal(seCheckCrc(response), true);
});

// ---------------------------------------------------------------- timing

test("the chip NACKs until tWHI and until the execution time has passed", () => {
  const { clock, bus, chip } = rig();
  assert.equal(bus.read(0x60, 4), null, "asleep: NACK");
  bus.write(0x00, bytes(0x00));
  assert.equal(chip.powerState, "awake");
  assert.equal(bus.read(0x60, 4), null, "inside tWHI: NACK");
  clock.advance(1.5);
  assert.deepEqual(bus.read(0x60, 4), bytes(0x04, 0x11, 0x33, 0x43));

  assert.equal(bus.write(0x60, bytes(0x03, ...withCrc(bytes(0x07, 0x1b, 0x00, 0x00, 0x00)))), true);
  assert.equal(bus.read(0x60, 1), null, "busy: NACK");
  clock.advance(22.9);
  assert.equal(bus.write(0x60, bytes(0x00)), false, "still busy at 22.9 ms");
  clock.advance(0.1);
  assert.equal(bus.write(0x60, bytes(0x00)), true, "Random takes 23 ms");
  const all = bus.read(0x60, 35)!;
  assert.equal(all[0], 35);
  assert.equal(seCheckCrc(all), true);
});

test("the driver waits the execution time before reading, and polls a slower chip", () => {
  {
    const { clock, se, trace } = rig();
    ok<Uint8Array>(clock, (cb) => se.genKey(0, cb));
    const cmdIndex = trace.findIndex((t) => t.kind === "write" && t.data![0] === 0x03);
    const cmd = trace[cmdIndex]!;
    const after = trace.slice(cmdIndex + 1);
    const firstRead = after.find((t) => t.address === 0x60)!;
    assert.equal(firstRead.at - cmd.at, seExecMs(SE_OP_GENKEY), "first access exactly after the max execution time");
    assert.equal(after.filter((t) => t.address === 0x60 && !t.ack).length, 0, "no NACK when the wait is right");
  }
  {
    // A chip at a slower clock divider: GenKey takes 300 ms. The driver polls and succeeds.
    const { clock, se, bus, trace } = rig({ execMs: { [SE_OP_GENKEY]: 300 } });
    const pub = ok<Uint8Array>(clock, (cb) => se.genKey(1, cb));
    assert.equal(pub.length, 64);
    assert.ok(bus.countersFor(0x60).nacks > 50, "polled while the chip was busy");
    const cmd = trace.find((t) => t.kind === "write" && t.data![0] === 0x03)!;
    const firstAck = trace.find((t) => t.at > cmd.at && t.kind === "read" && t.ack)!;
    assert.ok(firstAck.at - cmd.at >= 300 && firstAck.at - cmd.at <= 302);
  }
});

// ---------------------------------------------------------------- ECDSA

test("genKey, sign, verify: the chip and Node's crypto agree", () => {
  const { clock, se, chip } = rig();
  const pub = ok<Uint8Array>(clock, (cb) => se.genKey(0, cb));
  assert.equal(pub.length, 64);
  assert.deepEqual(ok<Uint8Array>(clock, (cb) => se.publicKey(0, cb)), pub);
  assert.deepEqual(chip.publicKey(0), pub);

  const message = new TextEncoder().encode("station 0417: 1203 voters verified");
  const digest = sha256(message);
  const sig = ok<Uint8Array>(clock, (cb) => se.sign(0, digest, cb));
  assert.equal(sig.length, 64);
  assert.equal(ok<boolean>(clock, (cb) => se.verify(pub, digest, sig, cb)), true);
  assert.equal(nodeVerifies(pub, message, sig), true, "standard ECDSA P-256 over SHA-256(message)");

  // signMessage: the hash is computed on the chip.
  const sig2 = ok<Uint8Array>(clock, (cb) => se.signMessage(0, message, cb));
  assert.equal(nodeVerifies(pub, message, sig2), true);
  assert.equal(ok<boolean>(clock, (cb) => se.verify(pub, digest, sig2, cb)), true);

  // Tampered message.
  const forged = new TextEncoder().encode("station 0417: 1204 voters verified");
  assert.equal(ok<boolean>(clock, (cb) => se.verify(pub, sha256(forged), sig, cb)), false);
  assert.equal(nodeVerifies(pub, forged, sig), false);
  // Tampered signature.
  const badSig = new Uint8Array(sig);
  badSig[40]! ^= 0x01;
  assert.equal(ok<boolean>(clock, (cb) => se.verify(pub, digest, badSig, cb)), false);
  assert.equal(nodeVerifies(pub, message, badSig), false);
  // Another key.
  const other = ok<Uint8Array>(clock, (cb) => se.genKey(1, cb));
  assert.equal(ok<boolean>(clock, (cb) => se.verify(other, digest, sig, cb)), false);
  assert.equal(nodeVerifies(other, message, sig), false);
  // A public key that is not on the curve never verifies.
  assert.equal(ok<boolean>(clock, (cb) => se.verify(new Uint8Array(64).fill(1), digest, sig, cb)), false);
});

test("sha256 on the chip equals Node's for every block boundary", () => {
  const { clock, se } = rig();
  for (const n of [0, 1, 55, 63, 64, 65, 127, 128, 200, 1000]) {
    const data = new Uint8Array(randomBytes(n));
    assert.deepEqual(ok<Uint8Array>(clock, (cb) => se.sha256(data, cb)), sha256(data), `length ${n}`);
  }
});

test("a long sequence idles and re-wakes before the chip's watchdog; TempKey and the SHA context survive idle", () => {
  const { clock, se, chip } = rig();
  const data = new Uint8Array(randomBytes(20_000)); // 313 SHA updates of up to 36 ms: about 11 s
  assert.deepEqual(ok<Uint8Array>(clock, (cb) => se.sha256(data, cb)), sha256(data));
  assert.equal(chip.stats.watchdogSleeps, 0);
  assert.ok(chip.stats.wakes > 10, `re-woken ${chip.stats.wakes} times`);

  // A chip with a very short watchdog: Nonce and Sign need a re-wake in between, through idle.
  const short = rig({ watchdogMs: 150 }, { wakeBudgetMs: 140 });
  const pub = ok<Uint8Array>(short.clock, (cb) => short.se.genKey(2, cb));
  const digest = sha256(bytes(1, 2, 3));
  const sig = ok<Uint8Array>(short.clock, (cb) => short.se.sign(2, digest, cb));
  assert.equal(nodeVerifies(pub, bytes(1, 2, 3), sig), true);
  assert.equal(short.chip.stats.watchdogSleeps, 0);
});

test("after the chip's watchdog or a power cycle the next call wakes it again", () => {
  const { clock, se, chip } = rig();
  ok<Uint8Array>(clock, (cb) => se.random(cb));
  clock.advance(50);
  assert.equal(chip.powerState, "idle", "idle after the queue drains");
  clock.advance(60_000);
  assert.equal(ok<Uint8Array>(clock, (cb) => se.random(cb)).length, 32);
  chip.powerCycle();
  assert.equal(ok<Uint8Array>(clock, (cb) => se.random(cb)).length, 32);
  // The chip is awake with an old response in its buffer (another driver left it so): the
  // wake pulse is ignored, the driver sees a stale packet, idles the chip and wakes it again.
  const { clock: c2, bus: b2, chip: chip2 } = rig();
  b2.write(0x00, bytes(0x00));
  c2.advance(2);
  b2.write(0x60, bytes(0x03, ...withCrc(bytes(0x07, 0x30, 0x00, 0x00, 0x00))));
  c2.advance(10);
  const fresh = new SecureElement({ bus: b2, timers: c2 });
  assert.deepEqual(ok<Uint8Array>(c2, (cb) => fresh.info(cb)), bytes(0x00, 0x00, 0x60, 0x02));
  assert.equal(chip2.stats.wakes, 2);
});

// ---------------------------------------------------------------- counter, random, info

test("counters are monotonic, stop at 2,097,151 and survive exportState/importState", () => {
  const { clock, se, chip } = rig();
  assert.equal(ok<number>(clock, (cb) => se.counterRead(0, cb)), 0);
  assert.equal(ok<number>(clock, (cb) => se.counterIncrement(0, cb)), 1);
  assert.equal(ok<number>(clock, (cb) => se.counterIncrement(0, cb)), 2);
  assert.equal(ok<number>(clock, (cb) => se.counterIncrement(1, cb)), 1);
  assert.equal(ok<number>(clock, (cb) => se.counterRead(0, cb)), 2);
  const pub = ok<Uint8Array>(clock, (cb) => se.genKey(3, cb));

  // A reboot of the simulator: the state goes through JSON into a new chip on a new bus.
  const saved = JSON.parse(JSON.stringify(chip.exportState()));
  const { clock: clock2, se: se2 } = rig({ state: saved });
  assert.equal(ok<number>(clock2, (cb) => se2.counterRead(0, cb)), 2);
  assert.equal(ok<number>(clock2, (cb) => se2.counterRead(1, cb)), 1);
  assert.equal(ok<number>(clock2, (cb) => se2.counterIncrement(0, cb)), 3);
  assert.deepEqual(ok<Uint8Array>(clock2, (cb) => se2.publicKey(3, cb)), pub, "the key stays in its slot");
  const digest = sha256(bytes(9));
  assert.equal(nodeVerifies(pub, bytes(9), ok<Uint8Array>(clock2, (cb) => se2.sign(3, digest, cb))), true);

  const { clock: c3, se: se3 } = rig({
    state: { format: "atecc608-sim", version: 1, keys: {}, counters: [ATECC_COUNTER_MAX - 1, 0] },
  });
  assert.equal(ok<number>(c3, (cb) => se3.counterIncrement(0, cb)), ATECC_COUNTER_MAX);
  const over = call<number>(c3, (cb) => se3.counterIncrement(0, cb));
  assert.equal(over.err!.code, SE_ERR_EXECUTION);
  assert.equal(ok<number>(c3, (cb) => se3.counterRead(0, cb)), ATECC_COUNTER_MAX);

  assert.throws(() => chip.importState({ format: "atecc608-sim", version: 1, keys: { "0": "zz" }, counters: [0, 0] }));
  assert.throws(() => chip.importState({ format: "atecc608-sim", version: 1, keys: {}, counters: [-1, 0] }));
});

test("random gives 32 bytes that differ between calls; info gives the revision", () => {
  const { clock, se } = rig();
  const a = ok<Uint8Array>(clock, (cb) => se.random(cb));
  const b = ok<Uint8Array>(clock, (cb) => se.random(cb));
  assert.equal(a.length, 32);
  assert.equal(b.length, 32);
  assert.notDeepEqual(a, b);
  assert.deepEqual(ok<Uint8Array>(clock, (cb) => se.info(cb)), bytes(0x00, 0x00, 0x60, 0x02));
  assert.equal(ok<boolean>(clock, (cb) => se.wake(cb)), true);
});

// ---------------------------------------------------------------- faults

test("a corrupted response fails its CRC and is read again; a non-idempotent command runs once", () => {
  const { clock, se, chip } = rig();
  chip.corruptNextResponse();
  assert.equal(ok<Uint8Array>(clock, (cb) => se.random(cb)).length, 32);
  assert.equal(chip.stats.corruptedReads, 1);
  assert.equal(chip.stats.byOpcode[SE_OP_RANDOM], 1, "re-read, not re-sent");

  chip.corruptNextResponse();
  assert.equal(ok<number>(clock, (cb) => se.counterIncrement(0, cb)), 1);
  assert.equal(ok<number>(clock, (cb) => se.counterRead(0, cb)), 1, "incremented exactly once");

  chip.corruptNextResponse(2);
  const o = call<Uint8Array>(clock, (cb) => se.random(cb));
  assert.equal(o.err!.code, SE_ERR_CRC);
  assert.match(o.err!.message, /CRC/);
  assert.equal(ok<Uint8Array>(clock, (cb) => se.random(cb)).length, 32, "recovers afterwards");
});

test("a command garbled on the way in (status 0xFF) is sent again", () => {
  const { clock, se, bus, chip } = rig();
  ok<boolean>(clock, (cb) => se.wake(cb));
  // The driver wakes the idle chip (a general call, then a read), so the next write to 0x60 is
  // the command packet: its last CRC byte gets a bit flipped.
  bus.corruptNextWrite(0x60);
  const pub = ok<Uint8Array>(clock, (cb) => se.genKey(4, cb));
  assert.equal(pub.length, 64);
  assert.equal(chip.stats.commErrors, 1);
  assert.equal(chip.stats.byOpcode[SE_OP_GENKEY], 1);
});

test("a missing or disconnected chip gives a clear error to the callback, never an exception", () => {
  const { clock, se, bus } = rig();
  bus.detach(0x60);
  const o = call<Uint8Array>(clock, (cb) => se.random(cb));
  assert.equal(o.err!.code, SE_ERR_NO_DEVICE);
  assert.match(o.err!.message, /0x60/);

  const r = rig();
  ok(r.clock, (cb) => r.se.genKey(0, cb));
  r.bus.setConnected(0x60, false);
  const s = call<Uint8Array>(r.clock, (cb) => r.se.sign(0, sha256(bytes(1)), cb));
  assert.equal(s.err!.code, SE_ERR_NO_DEVICE);
  r.bus.setConnected(0x60, true);
  assert.equal(ok<Uint8Array>(r.clock, (cb) => r.se.sign(0, sha256(bytes(1)), cb)).length, 64, "works again when reconnected");

  // A bus whose implementation throws on NACK is handled the same way.
  const throwing = new SecureElement({
    bus: {
      write: () => {
        throw new Error("I2C NACK");
      },
      read: () => {
        throw new Error("I2C NACK");
      },
    },
    timers: r.clock,
  });
  assert.equal(call<Uint8Array>(r.clock, (cb) => throwing.info(cb)).err!.code, SE_ERR_NO_DEVICE);
});

test("bad slots, ids and modes come back as parse or execution errors", () => {
  const { clock, se, chip } = rig();
  assert.equal(call<Uint8Array>(clock, (cb) => se.genKey(16, cb)).err!.code, SE_ERR_PARSE);
  assert.equal(call<number>(clock, (cb) => se.counterRead(2, cb)).err!.code, SE_ERR_PARSE);
  assert.equal(call<Uint8Array>(clock, (cb) => se.command(SE_OP_RANDOM, 0x05, 0, null, 32, cb)).err!.code, SE_ERR_PARSE);
  assert.equal(call<Uint8Array>(clock, (cb) => se.command(0x7e, 0, 0, null, 1, cb)).err!.code, SE_ERR_PARSE);
  assert.match(call<Uint8Array>(clock, (cb) => se.genKey(16, cb)).err!.message, /GenKey: parse error/);
  // Slot 9 is not configured for private keys; slot 5 is empty.
  assert.equal(call<Uint8Array>(clock, (cb) => se.genKey(9, cb)).err!.code, SE_ERR_EXECUTION);
  assert.equal(call<Uint8Array>(clock, (cb) => se.sign(5, sha256(bytes(1)), cb)).err!.code, SE_ERR_EXECUTION);
  assert.equal(call<Uint8Array>(clock, (cb) => se.publicKey(5, cb)).err!.code, SE_ERR_EXECUTION);
  // Checked by the driver before anything is sent.
  const sent = chip.stats.commands;
  assert.equal(call<Uint8Array>(clock, (cb) => se.sign(0, new Uint8Array(31), cb)).err!.code, SE_ERR_BAD_ARGUMENT);
  assert.equal(call<boolean>(clock, (cb) => se.verify(new Uint8Array(64), new Uint8Array(32), new Uint8Array(63), cb)).err!.code, SE_ERR_BAD_ARGUMENT);
  assert.equal(call<Uint8Array>(clock, (cb) => se.genKey(-1, cb)).err!.code, SE_ERR_BAD_ARGUMENT);
  assert.equal(chip.stats.commands, sent);
  // A failing chip.
  chip.failing = true;
  const f = call<Uint8Array>(clock, (cb) => se.random(cb));
  assert.equal(f.err!.code, SE_ERR_EXECUTION);
  chip.failing = false;
  assert.equal(ok<Uint8Array>(clock, (cb) => se.random(cb)).length, 32);
});

// ---------------------------------------------------------------- queue

test("concurrent callers are served one sequence at a time, in order", () => {
  const { clock, se, chip, trace } = rig();
  const order: string[] = [];
  let pub: Uint8Array | undefined;
  let sig: Uint8Array | undefined;
  const digest = sha256(bytes(7, 7, 7));
  se.genKey(0, (err, r) => {
    assert.equal(err, null);
    pub = r;
    order.push("genKey");
  });
  se.sign(0, digest, (err, r) => {
    assert.equal(err, null);
    sig = r;
    order.push("sign");
  });
  se.counterIncrement(1, (err, r) => {
    assert.equal(err, null);
    assert.equal(r, 1);
    order.push("counter");
  });
  se.random((err, r) => {
    assert.equal(err, null);
    assert.equal(r!.length, 32);
    order.push("random");
  });
  se.signMessage(0, bytes(7, 7, 7), (err, r) => {
    assert.equal(err, null);
    assert.equal(nodeVerifies(pub!, bytes(7, 7, 7), r!), true);
    order.push("signMessage");
  });
  assert.deepEqual(order, [], "callbacks never run inside the call");
  clock.runUntil(() => order.length === 5);
  assert.deepEqual(order, ["genKey", "sign", "counter", "random", "signMessage"]);
  assert.equal(nodeVerifies(pub!, bytes(7, 7, 7), sig!), true);
  assert.equal(chip.stats.wakes, 1, "one wake for the whole burst");
  clock.advance(10);
  assert.equal(chip.powerState, "idle");
  assert.equal(trace[trace.length - 1]!.data![0], 0x02, "idle word address last");

  se.sleep();
  clock.advance(10);
  assert.equal(chip.powerState, "sleep");
});

test("close() fails the pending calls with SE_ERR_CLOSED", () => {
  const { clock, se } = rig();
  const errs: number[] = [];
  se.random((err) => errs.push(err ? err.code : 0));
  se.genKey(0, (err) => errs.push(err ? err.code : 0));
  clock.advance(5); // the first call is in flight
  se.close();
  clock.runUntil(() => errs.length === 2);
  assert.deepEqual(errs, [SE_ERR_CLOSED, SE_ERR_CLOSED]);
  assert.equal(call<Uint8Array>(clock, (cb) => se.info(cb)).err!.code, SE_ERR_CLOSED);
  clock.advance(1000);
  assert.equal(clock.pendingCount, 0);
});

test("the chip model's signatures verify with OpenSSL and with an independent implementation, and differ per nonce", () => {
  const key = p256.utils.randomSecretKey();
  const pub = p256.getPublicKey(key, false);
  const message = new TextEncoder().encode("ballot 17 of station ST-1");
  const digest = new Uint8Array(createHash("sha256").update(message).digest());
  const a = signDigest(digest, key, (n) => new Uint8Array(createHash("sha512").update("a").digest()).subarray(0, n));
  const b = signDigest(digest, key, (n) => new Uint8Array(createHash("sha512").update("b").digest()).subarray(0, n));
  assert.notDeepEqual(a, b);
  for (const sig of [a, b]) {
    assert.ok(p256.verify(sig, digest, pub, { prehash: false, lowS: false }));
    assert.ok(verifyP256(pub.subarray(1), message, sig));
  }
  const forged = a.slice();
  forged[40] ^= 1;
  assert.equal(verifyP256(pub.subarray(1), message, forged), false);
});
