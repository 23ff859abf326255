// Driver for a Microchip ATECC608-class secure element (also ATECC508A) on the I2C bus.
// FIRMWARE: engine subset (see ENGINES.md): callbacks, plain objects, typed arrays, no exceptions
// out of the driver.
//
// Protocol (ATECC508A/608A/608B datasheets, CryptoAuthLib):
// - Wake: a write to the general-call address 0x00 (SDA held low for more than tWLO = 60 us when
//   the bus runs at 100 kHz; nobody ACKs it, the result is ignored), then tWHI = 1.5 ms (this
//   driver waits 2 ms), then a 4-byte read must give 04 11 33 43 (04 07 .. .. = self-test failed).
// - Every write starts with a word address: 0x00 reset the output buffer pointer, 0x01 sleep,
//   0x02 idle, 0x03 command.
// - Command: 0x03, count, opcode, param1, param2 (LE), data, CRC-16 (LE) where count = 7 + data
//   length and the CRC covers count..data. The CRC is atCRC: polynomial 0x8005, register starting
//   at 0, data bits fed least significant first, no final XOR.
// - Response: count, data, CRC. A 4-byte response is a status: 0x00 ok, 0x01 miscompare, 0x03
//   parse error, 0x05 ECC fault, 0x07 self-test error, 0x08 health test error, 0x0F execution
//   error, 0x11 after wake, 0xEE watchdog about to expire, 0xFF bad CRC / communication error.
// - While executing, the chip NACKs. The driver waits the command's maximum execution time, then
//   reads (word address 0x00, count byte, rest), polling on NACK.
// - The chip's watchdog puts it to sleep about 1.3 s after a wake, losing TempKey. Idle keeps
//   TempKey and the SHA context and stops the watchdog; so a long sequence idles and re-wakes
//   before the budget (700 ms by default) runs out.
//
// Reliability: a response with a bad CRC is read again once (the chip keeps it: word address
// 0x00 rewinds the pointer), so a non-idempotent command (Counter increment) is never executed
// twice because of a read error. A command the chip reports as garbled (status 0xFF) or lost
// (0x11, 0xEE) was not executed and is sent again once.
//
// Calls are queued: one command sequence on the bus at a time; the chip is woken before a
// sequence and put in idle when the queue is empty. Idle is not the low-power state (no
// watchdog runs in idle, and it draws much more than sleep): call sleep() before long quiet
// periods such as storage mode. Every public sequence is self-contained, so sleeping between
// calls loses nothing. Callbacks always run from a timer, never
// inside the call. Buffers passed in must not change until their callback has run.

import type { I2cBus, Timers } from "../platform/platform.ts";

export interface SeError {
  code: number;
  message: string;
}

export type SeCallback<T> = (err: SeError | null, result?: T) => void;

export interface SecureElementOptions {
  bus: I2cBus;
  timers: Timers;
  /** 7-bit I2C address, 0x60 by default. */
  address?: number;
  /** Interval between reads while the chip is still busy (ms). Default 2. */
  pollIntervalMs?: number;
  /** How long to keep polling after the maximum execution time (ms). Default 1000. */
  pollTimeoutMs?: number;
  /** A command sequence re-wakes the chip when it would end later than this after a wake (ms). Default 700. */
  wakeBudgetMs?: number;
}

// Error codes reported to callbacks.
export const SE_ERR_NO_DEVICE = 1; // no acknowledge: chip missing, unpowered or bus broken
export const SE_ERR_WAKE = 2; // the chip answered the wake with something else than 04 11 33 43
export const SE_ERR_TIMEOUT = 3; // the chip stayed busy past the execution time and the poll timeout
export const SE_ERR_CRC = 4; // the response CRC was wrong twice
export const SE_ERR_BAD_RESPONSE = 5; // a response of an unexpected length
export const SE_ERR_COMM = 6; // the chip reported our packet as garbled (0xFF) twice
export const SE_ERR_PARSE = 7; // status 0x03: bad opcode, mode, slot or length
export const SE_ERR_EXECUTION = 8; // status 0x0F: the chip cannot execute it in its state or config
export const SE_ERR_ECC_FAULT = 9; // status 0x05
export const SE_ERR_SELFTEST = 10; // status 0x07 or self-test wake response
export const SE_ERR_HEALTH = 11; // status 0x08: random number generator health test
export const SE_ERR_MISCOMPARE = 12; // status 0x01 for a command other than Verify
export const SE_ERR_STATUS = 13; // any other status byte
export const SE_ERR_BAD_ARGUMENT = 14; // rejected by the driver before anything was sent
export const SE_ERR_CLOSED = 15; // close() was called

export const SE_OP_COUNTER = 0x24;
export const SE_OP_GENKEY = 0x40;
export const SE_OP_INFO = 0x30;
export const SE_OP_NONCE = 0x16;
export const SE_OP_RANDOM = 0x1b;
export const SE_OP_SHA = 0x47;
export const SE_OP_SIGN = 0x41;
export const SE_OP_VERIFY = 0x45;

export const SE_DEFAULT_ADDRESS = 0x60;
/** Time the driver waits after the wake pulse (tWHI is 1.5 ms). */
export const SE_WAKE_DELAY_MS = 2;

const WORD_RESET = 0x00;
const WORD_SLEEP = 0x01;
const WORD_IDLE = 0x02;
const WORD_COMMAND = 0x03;

const STATE_ASLEEP = 0;
const STATE_IDLE = 1;
const STATE_AWAKE = 2;

const MAX_DATA = 128; // Verify external: signature and public key
const RX_SIZE = 80;

/**
 * Maximum execution time (ms) of each command: the larger of the ATECC608 (clock divider M0)
 * and ATECC508A values of CryptoAuthLib's table. A slower chip is covered by polling.
 */
export function seExecMs(opcode: number): number {
  switch (opcode) {
    case SE_OP_COUNTER:
      return 25;
    case SE_OP_GENKEY:
      return 115;
    case SE_OP_INFO:
      return 5;
    case SE_OP_NONCE:
      return 29;
    case SE_OP_RANDOM:
      return 23;
    case SE_OP_SHA:
      return 36;
    case SE_OP_SIGN:
      return 115;
    case SE_OP_VERIFY:
      return 105;
    default:
      return 5;
  }
}

function opName(opcode: number): string {
  switch (opcode) {
    case SE_OP_COUNTER:
      return "Counter";
    case SE_OP_GENKEY:
      return "GenKey";
    case SE_OP_INFO:
      return "Info";
    case SE_OP_NONCE:
      return "Nonce";
    case SE_OP_RANDOM:
      return "Random";
    case SE_OP_SHA:
      return "SHA";
    case SE_OP_SIGN:
      return "Sign";
    case SE_OP_VERIFY:
      return "Verify";
    default:
      return "opcode 0x" + opcode.toString(16);
  }
}

function seError(code: number, message: string): SeError {
  return { code: code, message: message };
}

// CRC-16 of the ATECC packets, table driven: feeding a byte LSB first into the MSB-first
// register is the same as feeding the bit-reversed byte MSB first.
let crcTable: Uint16Array | null = null;
let revTable: Uint8Array | null = null;

function buildCrcTables(): void {
  const table = new Uint16Array(256);
  const rev = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 8;
    for (let b = 0; b < 8; b++) {
      r = (r & 0x8000) !== 0 ? ((r << 1) ^ 0x8005) & 0xffff : (r << 1) & 0xffff;
    }
    table[i] = r;
    let x = i;
    let y = 0;
    for (let b = 0; b < 8; b++) {
      y = (y << 1) | (x & 1);
      x = x >> 1;
    }
    rev[i] = y;
  }
  crcTable = table;
  revTable = rev;
}

/** atCRC over data[offset .. offset+length): returns the 16-bit CRC (sent low byte first). */
export function atCrc16(data: Uint8Array, offset: number, length: number): number {
  if (crcTable === null || revTable === null) buildCrcTables();
  const table = crcTable as Uint16Array;
  const rev = revTable as Uint8Array;
  let crc = 0;
  const end = offset + length;
  for (let i = offset; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ table[((crc >> 8) ^ rev[data[i]]) & 0xff];
  }
  return crc;
}

/** Whether a response packet (count first) carries a correct CRC. */
export function seCheckCrc(packet: Uint8Array): boolean {
  const count = packet[0];
  if (count < 4 || count > packet.length) return false;
  const crc = atCrc16(packet, 0, count - 2);
  return packet[count - 2] === (crc & 0xff) && packet[count - 1] === crc >> 8;
}

function isSlot(n: number): boolean {
  return typeof n === "number" && n >= 0 && n <= 0xffff && Math.floor(n) === n;
}

function hasLength(buf: Uint8Array, length: number): boolean {
  return buf !== null && typeof buf === "object" && buf.length === length;
}

function copyBytes(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  out.set(src);
  return out;
}

type CmdCallback = (err: SeError | null, data: Uint8Array | null, status: number) => void;

interface SeJob {
  run: (done: () => void) => void;
  fail: (err: SeError) => void;
}

export class SecureElement {
  private _bus: I2cBus;
  private _timers: Timers;
  private _address: number;
  private _pollIntervalMs: number;
  private _pollTimeoutMs: number;
  private _wakeBudgetMs: number;

  private _state = STATE_ASLEEP;
  private _wakeAt = 0;
  private _wakeTries = 0;
  private _wakeNext: ((err: SeError | null) => void) | null = null;

  private _queue: SeJob[] = [];
  private _current: SeJob | null = null;
  private _running = false;
  private _closed = false;
  private _timer = 0;
  private _timerActive = false;

  // The command in flight (one at a time).
  private _tx = new Uint8Array(1 + 7 + MAX_DATA);
  private _rx = new Uint8Array(RX_SIZE);
  private _one = new Uint8Array(1);
  private _op = 0;
  private _txLen = 0;
  private _respLen = 0;
  private _sendTries = 0;
  private _crcTries = 0;
  private _deadline = 0;
  private _cmdCb: CmdCallback | null = null;

  constructor(options: SecureElementOptions) {
    this._bus = options.bus;
    this._timers = options.timers;
    this._address = typeof options.address === "number" ? options.address : SE_DEFAULT_ADDRESS;
    this._pollIntervalMs = typeof options.pollIntervalMs === "number" ? options.pollIntervalMs : 2;
    this._pollTimeoutMs = typeof options.pollTimeoutMs === "number" ? options.pollTimeoutMs : 1000;
    this._wakeBudgetMs = typeof options.wakeBudgetMs === "number" ? options.wakeBudgetMs : 700;
  }

  // ---------------------------------------------------------------- public API

  /** Wakes the chip and checks its wake response (a presence test); it goes idle afterwards. */
  wake(cb: SeCallback<boolean>): void {
    this._enqueue((done) => {
      this._ensureAwake(0, (err) => {
        done();
        if (err) cb(err);
        else cb(null, true);
      });
    }, cb);
  }

  /** Puts the chip to sleep (lowest power; TempKey is cleared). */
  sleep(cb?: SeCallback<boolean>): void {
    const report = (err: SeError | null): void => {
      if (!cb) return;
      if (err) cb(err);
      else cb(null, true);
    };
    this._enqueue((done) => {
      const toSleep = (): void => {
        this._writeWord(WORD_SLEEP);
        this._state = STATE_ASLEEP;
        done();
        report(null);
      };
      if (this._state === STATE_AWAKE) {
        toSleep();
        return;
      }
      if (this._state === STATE_ASLEEP) {
        done();
        report(null);
        return;
      }
      // Idle: the chip listens only to a wake.
      this._wake((err) => {
        if (err) {
          done();
          report(err);
          return;
        }
        toSleep();
      });
    }, report);
  }

  /** 32 random bytes from the chip's generator. */
  random(cb: SeCallback<Uint8Array>): void {
    this._enqueue((done) => {
      this._cmd(SE_OP_RANDOM, 0x00, 0, null, null, 32, (err, data) => {
        done();
        if (err) cb(err);
        else cb(null, data as Uint8Array);
      });
    }, cb);
  }

  /** Creates a new P-256 private key in `slot`; the result is its public key X||Y (64 bytes). */
  genKey(slot: number, cb: SeCallback<Uint8Array>): void {
    this._genKey(0x04, slot, cb);
  }

  /** The public key X||Y (64 bytes) of the private key in `slot`. */
  publicKey(slot: number, cb: SeCallback<Uint8Array>): void {
    this._genKey(0x00, slot, cb);
  }

  /** SHA-256 computed on the chip (SHA start, 64-byte updates, end). */
  sha256(data: Uint8Array, cb: SeCallback<Uint8Array>): void {
    if (!data || typeof data.length !== "number") {
      this._reject(cb, "sha256: data must be a Uint8Array");
      return;
    }
    this._enqueue((done) => {
      this._sha(data, (err, digest) => {
        done();
        if (err) cb(err);
        else cb(null, digest as Uint8Array);
      });
    }, cb);
  }

  /** ECDSA P-256 signature r||s (64 bytes) of a 32-byte digest with the key in `slot`. */
  sign(slot: number, digest: Uint8Array, cb: SeCallback<Uint8Array>): void {
    if (!isSlot(slot) || !hasLength(digest, 32)) {
      this._reject(cb, "sign: needs a slot number and a 32-byte digest");
      return;
    }
    const d = copyBytes(digest);
    this._enqueue((done) => {
      this._sign(slot, d, (err, sig) => {
        done();
        if (err) cb(err);
        else cb(null, sig as Uint8Array);
      });
    }, cb);
  }

  /** SHA-256 of the message on the chip, then the signature of that digest (one sequence). */
  signMessage(slot: number, message: Uint8Array, cb: SeCallback<Uint8Array>): void {
    if (!isSlot(slot) || !message || typeof message.length !== "number") {
      this._reject(cb, "signMessage: needs a slot number and a Uint8Array");
      return;
    }
    this._enqueue((done) => {
      this._sha(message, (err, digest) => {
        if (err) {
          done();
          cb(err);
          return;
        }
        this._sign(slot, digest as Uint8Array, (err2, sig) => {
          done();
          if (err2) cb(err2);
          else cb(null, sig as Uint8Array);
        });
      });
    }, cb);
  }

  /** Checks an ECDSA P-256 signature r||s of a 32-byte digest against a public key X||Y. */
  verify(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array, cb: SeCallback<boolean>): void {
    if (!hasLength(publicKey, 64) || !hasLength(digest, 32) || !hasLength(signature, 64)) {
      this._reject(cb, "verify: needs a 64-byte public key, a 32-byte digest and a 64-byte signature");
      return;
    }
    const pub = copyBytes(publicKey);
    const d = copyBytes(digest);
    const sig = copyBytes(signature);
    this._enqueue((done) => {
      this._cmd(SE_OP_NONCE, 0x03, 0, d, null, 1, (err) => {
        if (err) {
          done();
          cb(err);
          return;
        }
        // Verify, external mode, key type P-256 (0x0004); data = signature then public key.
        this._cmd(SE_OP_VERIFY, 0x02, 0x0004, sig, pub, 1, (err2, data, status) => {
          done();
          if (err2) cb(err2);
          else cb(null, status === 0x00);
        });
      });
    }, cb);
  }

  /** Reads monotonic counter `id` (0 or 1). */
  counterRead(id: number, cb: SeCallback<number>): void {
    this._counter(0x00, id, cb);
  }

  /** Increments monotonic counter `id` (0 or 1); the result is the new value. */
  counterIncrement(id: number, cb: SeCallback<number>): void {
    this._counter(0x01, id, cb);
  }

  /** Info(Revision): 4 bytes, e.g. 00 00 60 02 for an ATECC608A. */
  info(cb: SeCallback<Uint8Array>): void {
    this._enqueue((done) => {
      this._cmd(SE_OP_INFO, 0x00, 0, null, null, 4, (err, data) => {
        done();
        if (err) cb(err);
        else cb(null, data as Uint8Array);
      });
    }, cb);
  }

  /**
   * A raw command: `responseLength` is the data length of a success response, or 1 for a
   * command answering with a status byte (then the result is that status: 0x00 or 0x01).
   */
  command(
    opcode: number,
    param1: number,
    param2: number,
    data: Uint8Array | null,
    responseLength: number,
    cb: SeCallback<Uint8Array>,
  ): void {
    if (!isSlot(param2) || param1 < 0 || param1 > 255 || (data !== null && data.length > MAX_DATA)) {
      this._reject(cb, "command: bad parameters");
      return;
    }
    const payload = data === null ? null : copyBytes(data);
    this._enqueue((done) => {
      this._cmd(opcode, param1, param2, payload, null, responseLength, (err, out, status) => {
        done();
        if (err) cb(err);
        else cb(null, out === null ? new Uint8Array([status]) : out);
      });
    }, cb);
  }

  /** Stops the driver: pending calls fail with SE_ERR_CLOSED; the chip is put to sleep if awake. */
  close(): void {
    if (this._closed) return;
    this._closed = true;
    if (this._timerActive) this._timers.clearTimeout(this._timer);
    this._timerActive = false;
    if (this._state === STATE_AWAKE) this._writeWord(WORD_SLEEP);
    this._state = STATE_ASLEEP;
    const pending = this._queue;
    if (this._current !== null) pending.unshift(this._current);
    this._current = null;
    this._queue = [];
    this._running = false;
    this._cmdCb = null;
    this._wakeNext = null;
    this._timers.setTimeout(() => {
      const err = seError(SE_ERR_CLOSED, "secure element driver closed");
      for (let i = 0; i < pending.length; i++) pending[i].fail(err);
    }, 0);
  }

  // ---------------------------------------------------------------- sequences

  private _genKey(mode: number, slot: number, cb: SeCallback<Uint8Array>): void {
    if (!isSlot(slot)) {
      this._reject(cb, "genKey/publicKey: slot must be an integer");
      return;
    }
    this._enqueue((done) => {
      this._cmd(SE_OP_GENKEY, mode, slot, null, null, 64, (err, data) => {
        done();
        if (err) cb(err);
        else cb(null, data as Uint8Array);
      });
    }, cb);
  }

  private _counter(mode: number, id: number, cb: SeCallback<number>): void {
    if (!isSlot(id)) {
      this._reject(cb, "counter: id must be an integer");
      return;
    }
    this._enqueue((done) => {
      this._cmd(SE_OP_COUNTER, mode, id, null, null, 4, (err, data) => {
        done();
        if (err) {
          cb(err);
          return;
        }
        const d = data as Uint8Array;
        cb(null, d[0] + d[1] * 0x100 + d[2] * 0x10000 + d[3] * 0x1000000);
      });
    }, cb);
  }

  private _sha(data: Uint8Array, cb: (err: SeError | null, digest?: Uint8Array) => void): void {
    let offset = 0;
    const step = (): void => {
      if (data.length - offset >= 64) {
        this._cmd(SE_OP_SHA, 0x01, 64, data.subarray(offset, offset + 64), null, 1, (err) => {
          if (err) {
            cb(err);
            return;
          }
          offset += 64;
          step();
        });
        return;
      }
      const rest = data.length - offset;
      this._cmd(SE_OP_SHA, 0x02, rest, data.subarray(offset), null, 32, (err, digest) => {
        if (err) cb(err);
        else cb(null, digest as Uint8Array);
      });
    };
    this._cmd(SE_OP_SHA, 0x00, 0, null, null, 1, (err) => {
      if (err) cb(err);
      else step();
    });
  }

  private _sign(slot: number, digest: Uint8Array, cb: (err: SeError | null, sig?: Uint8Array) => void): void {
    // Nonce pass-through loads the digest into TempKey; Sign external (0x80) signs TempKey.
    this._cmd(SE_OP_NONCE, 0x03, 0, digest, null, 1, (err) => {
      if (err) {
        cb(err);
        return;
      }
      this._cmd(SE_OP_SIGN, 0x80, slot, null, null, 64, (err2, sig) => {
        if (err2) cb(err2);
        else cb(null, sig as Uint8Array);
      });
    });
  }

  // ---------------------------------------------------------------- queue

  private _enqueue(run: (done: () => void) => void, fail: (err: SeError) => void): void {
    if (this._closed) {
      this._timers.setTimeout(() => {
        fail(seError(SE_ERR_CLOSED, "secure element driver closed"));
      }, 0);
      return;
    }
    this._queue.push({ run: run, fail: fail });
    if (!this._running) {
      this._running = true;
      this._after(0, () => {
        this._pump();
      });
    }
  }

  private _pump(): void {
    if (this._closed) return;
    const job = this._queue.shift();
    this._current = job ? job : null;
    if (!job) {
      this._running = false;
      if (this._state === STATE_AWAKE) {
        this._writeWord(WORD_IDLE);
        this._state = STATE_IDLE;
      }
      return;
    }
    let finished = false;
    job.run(() => {
      if (finished) return;
      finished = true;
      this._current = null;
      this._after(0, () => {
        this._pump();
      });
    });
  }

  private _reject(cb: (err: SeError) => void, message: string): void {
    this._timers.setTimeout(() => {
      cb(seError(SE_ERR_BAD_ARGUMENT, message));
    }, 0);
  }

  private _after(ms: number, fn: () => void): void {
    this._timerActive = true;
    this._timer = this._timers.setTimeout(() => {
      this._timerActive = false;
      if (!this._closed) fn();
    }, ms);
  }

  // ---------------------------------------------------------------- bus access

  private _write(address: number, data: Uint8Array): boolean {
    try {
      return this._bus.write(address, data) === true;
    } catch (e) {
      return false; // some I2C implementations throw on NACK
    }
  }

  private _read(length: number): Uint8Array | null {
    try {
      const r = this._bus.read(this._address, length);
      return r && r.length >= length ? r : null;
    } catch (e) {
      return null;
    }
  }

  private _writeWord(word: number): boolean {
    this._one[0] = word;
    return this._write(this._address, this._one);
  }

  // ---------------------------------------------------------------- wake

  /** Makes sure the chip is awake with enough watchdog time left for `opcode`. */
  private _ensureAwake(opcode: number, next: (err: SeError | null) => void): void {
    if (this._state === STATE_AWAKE) {
      const elapsed = this._timers.now() - this._wakeAt;
      if (elapsed + seExecMs(opcode) + 20 < this._wakeBudgetMs) {
        next(null);
        return;
      }
      // Idle keeps TempKey and the SHA context; the wake restarts the watchdog.
      this._writeWord(WORD_IDLE);
      this._state = STATE_IDLE;
    }
    this._wake(next);
  }

  private _wake(next: (err: SeError | null) => void): void {
    this._wakeTries = 0;
    this._wakeNext = next;
    this._wakePulse();
  }

  private _wakePulse(): void {
    this._wakeTries++;
    this._one[0] = 0x00;
    this._write(0x00, this._one); // general call: SDA low for tWLO; always NACKed
    this._wakeAt = this._timers.now();
    this._after(SE_WAKE_DELAY_MS, () => {
      this._wakeCheck();
    });
  }

  private _wakeCheck(): void {
    const r = this._read(4);
    let err: SeError | null = null;
    if (r !== null && r[0] === 0x04 && r[1] === 0x11 && r[2] === 0x33 && r[3] === 0x43) {
      this._state = STATE_AWAKE;
    } else if (r !== null && r[0] === 0x04 && r[1] === 0x07) {
      // Self-test failure. CryptoAuthLib compares with 04 07 C4 40, whose last two bytes are not
      // the atCRC of 04 07 (that is 40 C2): accept the status byte whatever the CRC bytes say.
      err = seError(SE_ERR_SELFTEST, "secure element failed its power-on self test");
    } else {
      if (r !== null) {
        // Already awake (our wake was ignored) with an old response in its buffer: idle it,
        // so that the next pulse really wakes it and it answers 04 11 33 43.
        this._writeWord(WORD_IDLE);
      }
      if (this._wakeTries < 3) {
        this._wakePulse();
        return;
      }
      this._state = STATE_ASLEEP;
      err =
        r === null
          ? seError(
              SE_ERR_NO_DEVICE,
              "secure element does not answer at I2C address 0x" + this._address.toString(16) + " after a wake",
            )
          : seError(SE_ERR_WAKE, "secure element gave no valid wake response");
    }
    const next = this._wakeNext;
    this._wakeNext = null;
    if (next) next(err);
  }

  // ---------------------------------------------------------------- one command

  /**
   * Sends one command and reads its response. `a` and `b` are the data (either may be null).
   * respLen: data length of a success response; 1 for a status response.
   */
  private _cmd(
    opcode: number,
    p1: number,
    p2: number,
    a: Uint8Array | null,
    b: Uint8Array | null,
    respLen: number,
    cb: CmdCallback,
  ): void {
    const lenA = a === null ? 0 : a.length;
    const lenB = b === null ? 0 : b.length;
    if (lenA + lenB > MAX_DATA) {
      cb(seError(SE_ERR_BAD_ARGUMENT, opName(opcode) + ": data too long"), null, 0);
      return;
    }
    const tx = this._tx;
    const count = 7 + lenA + lenB;
    tx[0] = WORD_COMMAND;
    tx[1] = count;
    tx[2] = opcode;
    tx[3] = p1;
    tx[4] = p2 & 0xff;
    tx[5] = (p2 >> 8) & 0xff;
    if (a !== null) tx.set(a, 6);
    if (b !== null) tx.set(b, 6 + lenA);
    const crc = atCrc16(tx, 1, count - 2);
    tx[count - 1] = crc & 0xff;
    tx[count] = crc >> 8;
    this._op = opcode;
    this._txLen = count + 1;
    this._respLen = respLen;
    this._sendTries = 0;
    this._cmdCb = cb;
    this._ensureAwake(opcode, (err) => {
      if (err) this._finish(err, null, 0);
      else this._send();
    });
  }

  private _send(): void {
    this._sendTries++;
    if (!this._write(this._address, this._tx.subarray(0, this._txLen))) {
      // Not acknowledged: the chip fell asleep (watchdog, brown-out) or is gone.
      this._state = STATE_ASLEEP;
      if (this._sendTries < 2) {
        this._wake((err) => {
          if (err) this._finish(err, null, 0);
          else this._send();
        });
        return;
      }
      this._finish(
        seError(SE_ERR_NO_DEVICE, "secure element did not acknowledge the " + opName(this._op) + " command"),
        null,
        0,
      );
      return;
    }
    const exec = seExecMs(this._op);
    this._crcTries = 0;
    this._deadline = this._timers.now() + exec + this._pollTimeoutMs;
    this._after(exec, () => {
      this._receive();
    });
  }

  private _poll(): void {
    if (this._timers.now() >= this._deadline) {
      this._finish(
        seError(SE_ERR_TIMEOUT, "secure element gave no response to " + opName(this._op) + " in time"),
        null,
        0,
      );
      return;
    }
    this._after(this._pollIntervalMs, () => {
      this._receive();
    });
  }

  private _receive(): void {
    // Word address 0x00 rewinds the output buffer (a busy chip NACKs it), then count, then the rest.
    if (!this._writeWord(WORD_RESET)) {
      this._poll();
      return;
    }
    const head = this._read(1);
    if (head === null) {
      this._poll();
      return;
    }
    const n = head[0];
    const rx = this._rx;
    let crcOk = false;
    if (n >= 4 && n <= RX_SIZE) {
      const rest = this._read(n - 1);
      if (rest === null) {
        this._poll();
        return;
      }
      rx[0] = n;
      rx.set(rest.subarray(0, n - 1), 1);
      crcOk = seCheckCrc(rx);
    }
    if (!crcOk) {
      if (this._crcTries < 1) {
        this._crcTries++;
        this._receive();
        return;
      }
      this._finish(
        seError(SE_ERR_CRC, "secure element response to " + opName(this._op) + " failed its CRC check twice"),
        null,
        0,
      );
      return;
    }
    if (n === 4) {
      this._status(rx[1]);
      return;
    }
    if (n !== this._respLen + 3) {
      this._finish(
        seError(SE_ERR_BAD_RESPONSE, opName(this._op) + ": response of " + (n - 3) + " bytes, expected " + this._respLen),
        null,
        0,
      );
      return;
    }
    const out = new Uint8Array(n - 3);
    out.set(rx.subarray(1, n - 2));
    this._finish(null, out, 0);
  }

  private _status(status: number): void {
    const name = opName(this._op);
    if (status === 0x00) {
      if (this._respLen === 1) this._finish(null, null, 0);
      else this._finish(seError(SE_ERR_BAD_RESPONSE, name + ": status only, expected data"), null, 0);
      return;
    }
    if (status === 0x01) {
      if (this._op === SE_OP_VERIFY) this._finish(null, null, 1);
      else this._finish(seError(SE_ERR_MISCOMPARE, name + ": miscompare"), null, 1);
      return;
    }
    if ((status === 0xff || status === 0x11 || status === 0xee) && this._sendTries < 2) {
      // The command was not executed: garbled on the way in (0xFF), lost in a reset (0x11), or
      // refused because the watchdog is about to expire (0xEE). Send it again once.
      if (status === 0x11) {
        this._state = STATE_AWAKE;
        this._wakeAt = this._timers.now();
      }
      if (status === 0xee) this._wakeAt = -this._wakeBudgetMs; // forces idle + wake
      this._ensureAwake(this._op, (err) => {
        if (err) this._finish(err, null, 0);
        else this._send();
      });
      return;
    }
    let code = SE_ERR_STATUS;
    let text = "status 0x" + status.toString(16);
    if (status === 0x03) {
      code = SE_ERR_PARSE;
      text = "parse error (bad opcode, mode, slot or length)";
    } else if (status === 0x0f) {
      code = SE_ERR_EXECUTION;
      text = "execution error (not allowed in this state or configuration)";
    } else if (status === 0x05) {
      code = SE_ERR_ECC_FAULT;
      text = "ECC fault";
    } else if (status === 0x07) {
      code = SE_ERR_SELFTEST;
      text = "self-test error";
    } else if (status === 0x08) {
      code = SE_ERR_HEALTH;
      text = "random number generator health test error";
    } else if (status === 0xff) {
      code = SE_ERR_COMM;
      text = "the chip received a garbled packet twice";
    }
    this._finish(seError(code, name + ": " + text), null, status);
  }

  private _finish(err: SeError | null, data: Uint8Array | null, status: number): void {
    const cb = this._cmdCb;
    this._cmdCb = null;
    if (cb) cb(err, data, status);
  }
}
