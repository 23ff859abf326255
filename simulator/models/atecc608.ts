// A model of a Microchip ATECC608-class secure element at the I2C packet level (Node side), so that
// the firmware driver (device/drivers/secure_element.ts) is tested against the chip's protocol
// and not against a mock of itself.
//
// What it follows (facts from the ATECC508A/608A/608B documentation and CryptoAuthLib):
// - Power states sleep / idle / awake. Asleep or idle, the chip ignores I2C and wakes only when
//   SDA is held low for tWLO (60 us). Over plain I2C that is a write to the general-call address
//   0x00 at 100 kHz, which the SimI2cBus delivers as `sdaLowPulse()` (the bus NACKs it, as a real
//   bus does). The chip is then unavailable for tWHI (1.5 ms) and holds the 4-byte wake response
//   04 11 33 43 in its output buffer. A wake pulse while awake is ignored.
// - The watchdog: tWATCHDOG (about 1.3 s) after a wake the chip goes to sleep by itself, losing
//   its volatile state (TempKey, SHA context). Idle keeps the volatile state and stops the
//   watchdog; the next wake restarts it.
// - Word address (first byte of every write): 0x00 reset (rewinds the output buffer, so the host
//   can read a response again), 0x01 sleep, 0x02 idle, 0x03 command.
// - Command packet: count, opcode, param1, param2 (16-bit little-endian), data, CRC-16 (poly
//   0x8005, data bits fed LSB first, register initial value 0, over count..data, appended low
//   byte first). Count covers itself through the CRC (7 + data length).
// - Response: count, data, CRC. Status responses are 4 bytes: 0x00 success, 0x01 checkmac/verify
//   miscompare, 0x03 parse error, 0x05 ECC fault, 0x0F execution error, 0x11 after wake,
//   0xFF CRC or other communication error.
// - While a command executes the chip NACKs every transaction. The model keeps it busy for the
//   command's maximum execution time (ATECC608 at clock divider M0, the CryptoAuthLib table).
//
// Commands modelled: Random, Nonce (pass-through 32 bytes; random with a 20-byte NumIn), GenKey
// (private key create, public key of a slot), Sign (external message in TempKey), Verify
// (external public key, message in TempKey), Counter (read, increment), SHA (start, update,
// end), Info (revision). Other valid modes answer with an execution error ("not modelled"),
// invalid ones with a parse error. No configuration zone: the slots that may hold a private key
// are an option of the model (slots 0-7 by default); the chip is treated as locked.
// Modelling choices that are stricter than a real ATECC608: SHA update takes exactly 64 bytes
// (the 508A rule), any non-SHA command discards an open SHA context, and the digest of SHA end
// goes to the output buffer only.

import { createECDH, createHash, randomBytes as nodeRandomBytes, type Hash } from "node:crypto";
import { p256 } from "@noble/curves/nist";
import { invert } from "@noble/curves/abstract/modular";
import type { SimI2cDevice } from "./i2c_bus.ts";

export const ATECC_DEFAULT_ADDRESS = 0x60;

export const ATECC_OPCODE = {
  COUNTER: 0x24,
  GENKEY: 0x40,
  INFO: 0x30,
  NONCE: 0x16,
  RANDOM: 0x1b,
  SHA: 0x47,
  SIGN: 0x41,
  VERIFY: 0x45,
} as const;

export const ATECC_STATUS = {
  SUCCESS: 0x00,
  MISCOMPARE: 0x01,
  PARSE_ERROR: 0x03,
  ECC_FAULT: 0x05,
  EXECUTION_ERROR: 0x0f,
  AFTER_WAKE: 0x11,
  COMM_ERROR: 0xff,
} as const;

/** Maximum execution times (ms) of the ATECC608 at clock divider M0 (CryptoAuthLib calib_execution.c). */
export const ATECC608_EXEC_MS: Readonly<Record<number, number>> = {
  [ATECC_OPCODE.COUNTER]: 25,
  [ATECC_OPCODE.GENKEY]: 115,
  [ATECC_OPCODE.INFO]: 5,
  [ATECC_OPCODE.NONCE]: 20,
  [ATECC_OPCODE.RANDOM]: 23,
  [ATECC_OPCODE.SHA]: 36,
  [ATECC_OPCODE.SIGN]: 115,
  [ATECC_OPCODE.VERIFY]: 105,
};

export const ATECC_COUNTER_MAX = 2097151;
/** Info(Revision): ATECC608A answers 00 00 60 02, ATECC608B 00 00 60 03, ATECC508A 00 00 50 00. */
export const ATECC608A_REVISION = Uint8Array.of(0x00, 0x00, 0x60, 0x02);
export const ATECC_WAKE_RESPONSE = Uint8Array.of(0x04, 0x11, 0x33, 0x43);

/** tWHI: after the wake pulse the chip needs 1.5 ms before it talks I2C. */
export const ATECC_WAKE_DELAY_MS = 1.5;
/** tWATCHDOG with the default (short) ChipMode watchdog: about 1.3 s. */
export const ATECC_WATCHDOG_MS = 1300;

/** The CRC-16 of the ATECC command and response packets, computed bit by bit as in atCRC. */
export function ateccCrc(data: Uint8Array, length: number): number {
  let crc = 0;
  for (let i = 0; i < length; i++) {
    const b = data[i]!;
    for (let mask = 0x01; mask <= 0x80; mask <<= 1) {
      const dataBit = (b & mask) !== 0 ? 1 : 0;
      const crcBit = (crc >> 15) & 1;
      crc = (crc << 1) & 0xffff;
      if (dataBit !== crcBit) crc ^= 0x8005;
    }
  }
  return crc;
}

/** Builds a response packet (count, data, CRC). */
export function ateccPacket(payload: Uint8Array): Uint8Array {
  const count = payload.length + 3;
  const out = new Uint8Array(count);
  out[0] = count;
  out.set(payload, 1);
  const crc = ateccCrc(out, count - 2);
  out[count - 2] = crc & 0xff;
  out[count - 1] = crc >> 8;
  return out;
}

/** The persistent part of the chip (what survives power loss), JSON-safe. */
export interface Atecc608State {
  format: "atecc608-sim";
  version: 1;
  /** Private keys by slot number, hex. */
  keys: { [slot: string]: string };
  counters: [number, number];
}

export interface Atecc608Options {
  /** Milliseconds on the simulation's clock (the same clock as the firmware's timers). */
  now: () => number;
  address?: number;
  revision?: Uint8Array;
  /** Slots whose configuration allows GenKey to create a private key. Default 0-7. */
  privateKeySlots?: number[];
  watchdogMs?: number;
  wakeDelayMs?: number;
  /** Overrides of the execution time per opcode (ms), e.g. to model a slower clock divider. */
  execMs?: { [opcode: number]: number };
  /** Random source (defaults to node:crypto). Deterministic sources make keys reproducible. */
  randomBytes?: (length: number) => Uint8Array;
  state?: Atecc608State;
}

export type AteccPower = "sleep" | "idle" | "awake";

export interface Atecc608Stats {
  wakes: number;
  watchdogSleeps: number;
  commands: number;
  commErrors: number;
  corruptedReads: number;
  byOpcode: { [opcode: number]: number };
}

interface Outcome {
  payload: Uint8Array;
  ms: number;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

export class Atecc608Model implements SimI2cDevice {
  readonly address: number;
  /** Fault injection: every command answers with an execution error while this is set. */
  failing = false;
  readonly stats: Atecc608Stats = {
    wakes: 0,
    watchdogSleeps: 0,
    commands: 0,
    commErrors: 0,
    corruptedReads: 0,
    byOpcode: {},
  };

  private readonly now: () => number;
  private readonly revision: Uint8Array;
  private readonly privateKeySlots: number[];
  private readonly watchdogMs: number;
  private readonly wakeDelayMs: number;
  private readonly execMs: { [opcode: number]: number };
  private readonly random: (length: number) => Uint8Array;

  private power: AteccPower = "sleep";
  private wokeAt = 0;
  private readyAt = 0;
  private out: Uint8Array | null = null;
  private outPos = 0;
  private tempKey: Uint8Array | null = null;
  private sha: Hash | null = null;
  private corruptPending = 0;
  private keys: (Uint8Array | null)[] = [];
  private counters: [number, number] = [0, 0];

  constructor(options: Atecc608Options) {
    this.now = options.now;
    this.address = options.address ?? ATECC_DEFAULT_ADDRESS;
    this.revision = new Uint8Array(options.revision ?? ATECC608A_REVISION);
    this.privateKeySlots = options.privateKeySlots ?? [0, 1, 2, 3, 4, 5, 6, 7];
    this.watchdogMs = options.watchdogMs ?? ATECC_WATCHDOG_MS;
    this.wakeDelayMs = options.wakeDelayMs ?? ATECC_WAKE_DELAY_MS;
    this.execMs = { ...ATECC608_EXEC_MS, ...(options.execMs ?? {}) };
    this.random = options.randomBytes ?? ((n) => new Uint8Array(nodeRandomBytes(n)));
    for (let i = 0; i < 16; i++) this.keys.push(null);
    if (options.state) this.importState(options.state);
  }

  // ---- state and fault injection (host side) ----

  get powerState(): AteccPower {
    this.tick();
    return this.power;
  }

  /** Flip one bit of the next `count` responses as they cross the bus (the stored copy stays good). */
  corruptNextResponse(count?: number): void {
    this.corruptPending += count ?? 1;
  }

  /** Power loss: volatile state gone, the chip asleep. */
  powerCycle(): void {
    this.enterSleep();
  }

  exportState(): Atecc608State {
    const keys: { [slot: string]: string } = {};
    this.keys.forEach((k, slot) => {
      if (k) keys[String(slot)] = hex(k);
    });
    return { format: "atecc608-sim", version: 1, keys, counters: [this.counters[0], this.counters[1]] };
  }

  importState(state: Atecc608State): void {
    if (!state || state.format !== "atecc608-sim" || state.version !== 1) {
      throw new Error("importState: not an atecc608-sim version 1 state");
    }
    const keys: (Uint8Array | null)[] = [];
    for (let i = 0; i < 16; i++) keys.push(null);
    for (const slotText of Object.keys(state.keys)) {
      const slot = Number(slotText);
      const text = state.keys[slotText]!;
      if (!Number.isInteger(slot) || slot < 0 || slot > 15 || !/^[0-9a-f]{64}$/.test(text)) {
        throw new Error(`importState: bad key entry for slot ${slotText}`);
      }
      const key = new Uint8Array(Buffer.from(text, "hex"));
      p256.getPublicKey(key); // throws on a scalar outside [1, n-1]
      keys[slot] = key;
    }
    const c = state.counters;
    if (!Array.isArray(c) || c.length !== 2 || !c.every((v) => Number.isInteger(v) && v >= 0 && v <= ATECC_COUNTER_MAX)) {
      throw new Error("importState: counters must be two integers 0..2097151");
    }
    this.keys = keys;
    this.counters = [c[0], c[1]];
  }

  /** The public key (X||Y, 64 bytes) of a slot, as provisioning would record it. */
  publicKey(slot: number): Uint8Array | null {
    const key = this.keys[slot];
    return key ? basePointTimes(key).subarray(1) : null;
  }

  // ---- the I2C side ----

  sdaLowPulse(): void {
    this.tick();
    if (this.power === "awake") return; // ignored while awake
    const now = this.now();
    this.power = "awake";
    this.wokeAt = now;
    this.readyAt = now + this.wakeDelayMs;
    this.out = new Uint8Array(ATECC_WAKE_RESPONSE);
    this.outPos = 0;
    this.stats.wakes++;
  }

  write(data: Uint8Array): boolean {
    if (!this.available()) return false;
    if (data.length === 0) return true;
    switch (data[0]) {
      case 0x00:
        this.outPos = 0;
        return true;
      case 0x01:
        this.enterSleep();
        return true;
      case 0x02:
        this.power = "idle";
        this.out = null;
        return true;
      case 0x03:
        this.command(data.subarray(1));
        return true;
      default:
        return false;
    }
  }

  read(length: number): Uint8Array | null {
    if (!this.available() || !this.out) return null;
    const out = this.out;
    const result = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      const at = this.outPos + i;
      result[i] = at < out.length ? out[at]! : 0xff;
    }
    if (this.corruptPending > 0) {
      // Corrupt the first byte after the count that this read carries.
      const first = Math.max(1, this.outPos);
      const index = first - this.outPos;
      if (index < length && first < out.length) {
        result[index]! ^= 0x01;
        this.corruptPending--;
        this.stats.corruptedReads++;
      }
    }
    this.outPos += length;
    return result;
  }

  // ---- internals ----

  private tick(): void {
    if (this.power === "awake" && this.now() - this.wokeAt >= this.watchdogMs) {
      this.enterSleep();
      this.stats.watchdogSleeps++;
    }
  }

  private available(): boolean {
    this.tick();
    return this.power === "awake" && this.now() >= this.readyAt;
  }

  private enterSleep(): void {
    this.power = "sleep";
    this.out = null;
    this.outPos = 0;
    this.tempKey = null;
    this.sha = null;
  }

  private respond(outcome: Outcome): void {
    this.out = ateccPacket(outcome.payload);
    this.outPos = 0;
    this.readyAt = this.now() + outcome.ms;
  }

  private command(packet: Uint8Array): void {
    this.stats.commands++;
    const count = packet.length > 0 ? packet[0]! : 0;
    if (count < 7 || count !== packet.length) {
      this.stats.commErrors++;
      this.respond({ payload: Uint8Array.of(ATECC_STATUS.COMM_ERROR), ms: 0 });
      return;
    }
    const crc = ateccCrc(packet, count - 2);
    if (packet[count - 2] !== (crc & 0xff) || packet[count - 1] !== crc >> 8) {
      this.stats.commErrors++;
      this.respond({ payload: Uint8Array.of(ATECC_STATUS.COMM_ERROR), ms: 0 });
      return;
    }
    const opcode = packet[1]!;
    const p1 = packet[2]!;
    const p2 = packet[3]! | (packet[4]! << 8);
    const data = packet.slice(5, count - 2);
    this.stats.byOpcode[opcode] = (this.stats.byOpcode[opcode] ?? 0) + 1;
    if (opcode !== ATECC_OPCODE.SHA) this.sha = null;
    if (this.failing) {
      this.respond(this.status(ATECC_STATUS.EXECUTION_ERROR));
      return;
    }
    this.respond(this.execute(opcode, p1, p2, data));
  }

  private status(code: number, ms?: number): Outcome {
    return { payload: Uint8Array.of(code), ms: ms ?? 0 };
  }

  private done(opcode: number, payload: Uint8Array): Outcome {
    return { payload, ms: this.execMs[opcode] ?? 0 };
  }

  private parse(): Outcome {
    return this.status(ATECC_STATUS.PARSE_ERROR);
  }

  private exec(): Outcome {
    return this.status(ATECC_STATUS.EXECUTION_ERROR);
  }

  private execute(opcode: number, p1: number, p2: number, data: Uint8Array): Outcome {
    switch (opcode) {
      case ATECC_OPCODE.RANDOM:
        if (p1 > 1 || p2 !== 0 || data.length !== 0) return this.parse();
        return this.done(opcode, this.random(32));
      case ATECC_OPCODE.NONCE:
        return this.nonce(p1, p2, data);
      case ATECC_OPCODE.GENKEY:
        return this.genKey(p1, p2, data);
      case ATECC_OPCODE.SIGN:
        return this.sign(p1, p2, data);
      case ATECC_OPCODE.VERIFY:
        return this.verify(p1, p2, data);
      case ATECC_OPCODE.COUNTER:
        return this.counter(p1, p2, data);
      case ATECC_OPCODE.SHA:
        return this.shaCommand(p1, p2, data);
      case ATECC_OPCODE.INFO:
        if (p1 > 3) return this.parse();
        if (p1 !== 0) return this.exec(); // KeyValid, State, GPIO: not modelled
        if (p2 !== 0 || data.length !== 0) return this.parse();
        return this.done(opcode, new Uint8Array(this.revision));
      default:
        return this.parse();
    }
  }

  private nonce(p1: number, p2: number, data: Uint8Array): Outcome {
    const calc = p1 & 0x03;
    if ((p1 & ~0xe3) !== 0 || calc === 0x02 || p2 !== 0) return this.parse();
    if ((p1 & 0xe0) !== 0) return this.exec(); // 64-byte input, other targets: not modelled
    if (calc === 0x03) {
      if (data.length !== 32) return this.parse();
      this.tempKey = new Uint8Array(data);
      return this.done(ATECC_OPCODE.NONCE, Uint8Array.of(ATECC_STATUS.SUCCESS));
    }
    if (data.length !== 20) return this.parse();
    const randOut = this.random(32);
    this.tempKey = new Uint8Array(
      createHash("sha256")
        .update(randOut)
        .update(data)
        .update(Uint8Array.of(ATECC_OPCODE.NONCE, p1, 0x00))
        .digest(),
    );
    return this.done(ATECC_OPCODE.NONCE, randOut);
  }

  private genKey(p1: number, p2: number, data: Uint8Array): Outcome {
    if ((p1 & ~0x1c) !== 0 || p2 > 15) return this.parse();
    if (p1 !== 0x04 && p1 !== 0x00) return this.exec(); // digest modes: not modelled
    if (data.length !== 0) return this.parse();
    if (p1 === 0x04) {
      if (this.privateKeySlots.indexOf(p2) < 0) return this.exec();
      this.keys[p2] = p256.utils.randomSecretKey(this.random(48));
    }
    const pub = this.publicKey(p2);
    if (!pub) return this.exec();
    return this.done(ATECC_OPCODE.GENKEY, pub);
  }

  private sign(p1: number, p2: number, data: Uint8Array): Outcome {
    if ((p1 & ~0xe1) !== 0 || p2 > 15 || data.length !== 0) return this.parse();
    if (p1 !== 0x80 && p1 !== 0xc0) return this.exec(); // internal, Message Digest Buffer: not modelled
    const key = this.keys[p2];
    if (!key || !this.tempKey) return this.exec();
    return this.done(ATECC_OPCODE.SIGN, signDigest(this.tempKey, key, this.random));
  }

  private verify(p1: number, p2: number, data: Uint8Array): Outcome {
    const mode = p1 & 0x07;
    if ((p1 & ~0xa7) !== 0 || mode === 4 || mode === 5 || mode === 6) return this.parse();
    if (mode !== 0x02 || (p1 & 0xa0) !== 0) return this.exec(); // stored, validate, MAC: not modelled
    if (p2 !== 0x0004 || data.length !== 128) return this.parse(); // P-256 only
    if (!this.tempKey) return this.exec();
    const sig = data.subarray(0, 64);
    const pub = new Uint8Array(65);
    pub[0] = 0x04;
    pub.set(data.subarray(64), 1);
    let valid = false;
    try {
      valid = p256.verify(sig, this.tempKey, pub, { prehash: false, lowS: false });
    } catch {
      valid = false; // a public key off the curve or an r, s out of range never verifies
    }
    return this.done(ATECC_OPCODE.VERIFY, Uint8Array.of(valid ? ATECC_STATUS.SUCCESS : ATECC_STATUS.MISCOMPARE));
  }

  private counter(p1: number, p2: number, data: Uint8Array): Outcome {
    if (p1 > 1 || p2 > 1 || data.length !== 0) return this.parse();
    if (p1 === 1) {
      if (this.counters[p2]! >= ATECC_COUNTER_MAX) return this.exec();
      this.counters[p2]!++;
    }
    const v = this.counters[p2]!;
    return this.done(ATECC_OPCODE.COUNTER, Uint8Array.of(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff));
  }

  private shaCommand(p1: number, p2: number, data: Uint8Array): Outcome {
    const mode = p1 & 0x07;
    if ((p1 & 0x38) !== 0) return this.parse();
    switch (mode) {
      case 0x00:
        if (data.length !== 0) return this.parse();
        this.sha = createHash("sha256");
        return this.done(ATECC_OPCODE.SHA, Uint8Array.of(ATECC_STATUS.SUCCESS));
      case 0x01:
        if (data.length !== 64 || p2 !== 64) return this.parse();
        if (!this.sha) return this.exec();
        this.sha.update(data);
        return this.done(ATECC_OPCODE.SHA, Uint8Array.of(ATECC_STATUS.SUCCESS));
      case 0x02: {
        if (data.length > 64 || p2 !== data.length) return this.parse();
        if (!this.sha) return this.exec();
        const digest = new Uint8Array(this.sha.update(data).digest());
        this.sha = null;
        return this.done(ATECC_OPCODE.SHA, digest);
      }
      default:
        return this.exec(); // public, HMAC, context read/write: not modelled
    }
  }
}

// ---- ECDSA on the chip's random nonce ----
// The chip signs the 32-byte digest in TempKey as it is (no hashing) with a random nonce k, as an
// ATECC608 does. The point multiplication k·G is OpenSSL's (Node's ECDH on prime256v1): about 200 µs
// a signature with the BigInt arithmetic around it, against about 800 µs for pure-JS signing.

const N = p256.CURVE.n;

function toBig(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt("0x" + Buffer.from(b).toString("hex"));
}

function to32(x: bigint): Uint8Array {
  return new Uint8Array(Buffer.from(x.toString(16).padStart(64, "0"), "hex"));
}

/** The uncompressed point d·G (0x04 || X || Y). */
function basePointTimes(d: Uint8Array): Uint8Array {
  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(d);
  return new Uint8Array(ecdh.getPublicKey());
}

/** r || s of ECDSA P-256 over a 32-byte digest, with a nonce from the chip's random source. */
export function signDigest(digest: Uint8Array, key: Uint8Array, random: (length: number) => Uint8Array): Uint8Array {
  const d = toBig(key);
  const e = toBig(digest) % N;
  for (;;) {
    const k = (toBig(random(48)) % (N - 1n)) + 1n;
    const r = toBig(basePointTimes(to32(k)).subarray(1, 33)) % N;
    if (r === 0n) continue;
    const s = (invert(k, N) * ((e + r * d) % N)) % N;
    if (s === 0n) continue;
    const out = new Uint8Array(64);
    out.set(to32(r), 0);
    out.set(to32(s), 32);
    return out;
  }
}
