// Driver for an NXP PN532-class ISO/IEC 14443 reader on the I2C bus (7-bit address 0x24), as
// the card reader of the verification device: find a type A card, exchange APDUs with it.
// FIRMWARE: engine subset (see ENGINES.md): callbacks, plain objects, typed arrays, no exceptions
// out of the driver.
//
// Protocol (PN532 User Manual UM0701-02, sections 6.2 and 7):
// - Normal information frame: preamble 00, start code 00 FF, LEN (bytes of TFI + data), LCS
//   (LEN + LCS = 0 mod 256), TFI (D4 host to PN532, D5 PN532 to host), data (command code, then
//   parameters; the answer's code is the command's + 1), DCS (TFI + data + DCS = 0 mod 256),
//   postamble 00. ACK frame 00 00 FF 00 FF 00; NACK frame 00 00 FF FF 00 00 (the host asks for
//   the last answer again); error frame 00 00 FF 01 FF 7F 81 00 (syntax error in the host's
//   frame). Extended frames (LEN = FF FF) are not used and are refused.
// - Over I2C the host writes a frame as one transaction; every read transaction starts with a
//   status byte: 0x01 ready (the ACK or the answer follows), anything else not ready. The driver
//   polls that byte from a timer (the platform I2cBus is synchronous and the IRQ line is not
//   wired), then reads status + frame in one transaction sized for the largest normal frame.
// - A command is: write the frame (retried on NACK: a PN532 in power-down may miss the first
//   transaction), read the ACK (the frame is sent again if no ACK comes: a PN532 drops frames
//   whose LCS or DCS is wrong), wait for the answer, read it. A damaged answer (bad LCS, DCS,
//   TFI, code) is asked for again with NACK, twice at most. No answer in time: the driver sends
//   ACK, which aborts the command in the PN532, and reports PN_ERR_TIMEOUT.
// - Commands used: GetFirmwareVersion 0x02 (IC 0x32 for a PN532, Ver, Rev, Support);
//   SAMConfiguration 0x14 (mode 1 normal, timeout 0x14, IRQ used); RFConfiguration 0x32 item 5
//   (MxRtyATR, MxRtyPSL, MxRtyPassiveActivation: the last one finite so that a search without a
//   card ends with "0 targets" instead of running until aborted); InListPassiveTarget 0x4A
//   (MaxTg 1, BrTy 0x00 = 106 kbit/s type A; answer NbTg, then Tg, SENS_RES (2), SEL_RES,
//   NFCIDLength, NFCID1, and the ATS (its first byte TL is its length) when SEL_RES bit 5 says
//   ISO/IEC 14443-4); InDataExchange 0x40 (Tg, data; answer status, data: the PN532 runs the
//   ISO-DEP block protocol itself); InRelease 0x52.
// - InDataExchange status: bits 0-5 error code (0x00 ok, 0x01 timeout: the card did not answer,
//   0x29 released, 0x2A card exchanged, 0x2B card gone; others: RF and protocol errors), bit 6
//   MI (more information: chained answer, not used by this driver and refused), bit 7 NAD.
//   A normal frame caps the command APDU at 252 bytes and the answer at 252 bytes (SW included).
//
// Calls are queued: one command on the bus at a time. Callbacks always run from a timer, never
// inside the call. The APDU passed to apdu() is copied. `onHealth` hears the outcome of every
// command (answered, or the reader failed: no I2C acknowledge, no ACK or answer in time, damaged
// frames, the error frame), so that a service can tell a reader that stopped answering.

import type { I2cBus, Timers } from "../platform/platform.ts";

export interface Pn532Error {
  code: number;
  message: string;
}

export interface Pn532Options {
  bus: I2cBus;
  timers: Timers;
  /** 7-bit I2C address. Default 0x24. */
  address?: number;
  /** Interval between status polls (ms). Default 2. */
  pollIntervalMs?: number;
  /** How long to wait for the ACK frame before sending the command again (ms). Default 30. */
  ackTimeoutMs?: number;
  /** How long to wait for an answer (ms). Default 1000. */
  timeoutMs?: number;
  /** MxRtyPassiveActivation written by init(): retries of a card search (0..254). Default 2. */
  detectRetries?: number;
}

export interface Pn532Firmware {
  ic: number;
  ver: number;
  rev: number;
  support: number;
}

export interface Pn532Target {
  tg: number;
  uid: Uint8Array;
  /** SENS_RES (ATQA) as the PN532 reports it, first byte in the high half. */
  atqa: number;
  /** SEL_RES (SAK). */
  sak: number;
  /** The ATS (TL first), or null for a card without ISO/IEC 14443-4. */
  ats: Uint8Array | null;
  /** Whether the card speaks ISO/IEC 14443-4 (APDUs). */
  isoDep: boolean;
}

// Error codes reported to callbacks.
export const PN_ERR_NO_READER = 1; // the PN532 does not acknowledge its I2C address
export const PN_ERR_TIMEOUT = 2; // no ACK or no answer in time
export const PN_ERR_PROTOCOL = 3; // damaged or unexpected frames (after NACK retries)
export const PN_ERR_SYNTAX = 4; // the PN532 answered with its error frame
export const PN_ERR_NO_TARGET = 5; // apdu() without a card found by detect()
export const PN_ERR_CARD_GONE = 6; // the card stopped answering (removed, exchanged)
export const PN_ERR_CARD = 7; // another InDataExchange / InRelease error status
export const PN_ERR_NOT_ISO_DEP = 8; // the card does not speak ISO/IEC 14443-4
export const PN_ERR_BAD_ARGUMENT = 9; // rejected by the driver before anything was sent
export const PN_ERR_CLOSED = 10; // close() was called
export const PN_ERR_FIRMWARE = 11; // GetFirmwareVersion says this is not a PN532

export const PN532_DEFAULT_ADDRESS = 0x24;

export const PN_CMD_GET_FIRMWARE_VERSION = 0x02;
export const PN_CMD_SAM_CONFIGURATION = 0x14;
export const PN_CMD_RF_CONFIGURATION = 0x32;
export const PN_CMD_IN_DATA_EXCHANGE = 0x40;
export const PN_CMD_IN_LIST_PASSIVE_TARGET = 0x4a;
export const PN_CMD_IN_RELEASE = 0x52;

export const PN_TFI_HOST = 0xd4;
export const PN_TFI_PN532 = 0xd5;

/** Largest APDU (or answer) that fits a normal frame with InDataExchange. */
export const PN_MAX_APDU = 252;

const MAX_FRAME = 262; // 00 00 FF LEN LCS [255 bytes] DCS 00
const RX_SIZE = 1 + MAX_FRAME;
const WRITE_TRIES = 3;
const SEND_TRIES = 3;
const NACK_TRIES = 2;
const READ_NACKS = 3;

const ACK_FRAME = new Uint8Array([0x00, 0x00, 0xff, 0x00, 0xff, 0x00]);
const NACK_FRAME = new Uint8Array([0x00, 0x00, 0xff, 0xff, 0x00, 0x00]);

function pnError(code: number, message: string): Pn532Error {
  return { code: code, message: message };
}

function hex2(n: number): string {
  const s = n.toString(16);
  return s.length < 2 ? "0x0" + s : "0x" + s;
}

function cmdName(cmd: number): string {
  switch (cmd) {
    case PN_CMD_GET_FIRMWARE_VERSION:
      return "GetFirmwareVersion";
    case PN_CMD_SAM_CONFIGURATION:
      return "SAMConfiguration";
    case PN_CMD_RF_CONFIGURATION:
      return "RFConfiguration";
    case PN_CMD_IN_DATA_EXCHANGE:
      return "InDataExchange";
    case PN_CMD_IN_LIST_PASSIVE_TARGET:
      return "InListPassiveTarget";
    case PN_CMD_IN_RELEASE:
      return "InRelease";
    default:
      return "command " + hex2(cmd);
  }
}

/** A host-to-PN532 normal information frame for `cmd` with parameters `params`. */
export function pn532Frame(cmd: number, params: Uint8Array | null): Uint8Array {
  const n = params === null ? 0 : params.length;
  const len = 2 + n;
  const out = new Uint8Array(len + 7);
  out[0] = 0x00;
  out[1] = 0x00;
  out[2] = 0xff;
  out[3] = len;
  out[4] = (0x100 - len) & 0xff;
  out[5] = PN_TFI_HOST;
  out[6] = cmd;
  let sum = PN_TFI_HOST + cmd;
  for (let i = 0; i < n; i++) {
    const b = (params as Uint8Array)[i];
    out[7 + i] = b;
    sum += b;
  }
  out[7 + n] = (0x100 - (sum & 0xff)) & 0xff;
  out[8 + n] = 0x00;
  return out;
}

// Outcome of parsing a frame read from the PN532.
const FRAME_OK = 0;
const FRAME_BAD = 1; // damaged: ask again with NACK
const FRAME_ERROR = 2; // the PN532's error frame
const FRAME_ACK = 3;
const FRAME_EXTENDED = 4;

interface Parsed {
  kind: number;
  why: string;
  /** Offset of TFI in the buffer, and LEN. */
  at: number;
  len: number;
}

/** Parses the frame that follows the status byte in `rx` (rx[0] is the status byte). */
export function pn532ParseFrame(rx: Uint8Array, length: number): Parsed {
  let i = 1;
  // Preamble: one or more 0x00 before the start code 00 FF.
  while (i + 1 < length && rx[i] === 0x00 && rx[i + 1] === 0x00) i++;
  if (i + 3 >= length || rx[i] !== 0x00 || rx[i + 1] !== 0xff) {
    return { kind: FRAME_BAD, why: "no start code", at: 0, len: 0 };
  }
  const len = rx[i + 2];
  const lcs = rx[i + 3];
  if (len === 0x00 && lcs === 0xff) return { kind: FRAME_ACK, why: "ACK frame", at: 0, len: 0 };
  if (len === 0xff && lcs === 0xff) return { kind: FRAME_EXTENDED, why: "extended frame", at: 0, len: 0 };
  if (((len + lcs) & 0xff) !== 0) return { kind: FRAME_BAD, why: "bad LCS", at: 0, len: 0 };
  if (len === 0) return { kind: FRAME_BAD, why: "empty frame", at: 0, len: 0 };
  const at = i + 4;
  if (at + len + 1 > length) return { kind: FRAME_BAD, why: "frame longer than the read", at: 0, len: 0 };
  let sum = 0;
  for (let k = 0; k < len; k++) sum += rx[at + k];
  if (((sum + rx[at + len]) & 0xff) !== 0) return { kind: FRAME_BAD, why: "bad DCS", at: 0, len: 0 };
  if (len === 1 && rx[at] === 0x7f) return { kind: FRAME_ERROR, why: "error frame", at: at, len: len };
  return { kind: FRAME_OK, why: "", at: at, len: len };
}

type DataCallback = (err: Pn532Error | null, data: Uint8Array | null) => void;

interface PnJob {
  run: (done: () => void) => void;
  fail: (err: Pn532Error) => void;
}

export class Pn532 {
  /** What GetFirmwareVersion reported in init(), null before. */
  firmware: Pn532Firmware | null = null;
  /** The card found by the last detect(), null when none (or after release()). */
  target: Pn532Target | null = null;
  readonly stats = { commands: 0, resends: 0, nacks: 0, aborts: 0 };
  /**
   * Called at the end of every command, before its caller's callback: null when the PN532
   * answered, else why it did not (the reader's fault, never the card's). One listener.
   */
  onHealth: ((why: string | null) => void) | null = null;

  private _bus: I2cBus;
  private _timers: Timers;
  private _address: number;
  private _pollMs: number;
  private _ackTimeoutMs: number;
  private _timeoutMs: number;
  private _detectRetries: number;

  private _queue: PnJob[] = [];
  private _current: PnJob | null = null;
  private _running = false;
  private _closed = false;
  private _timer = 0;
  private _timerActive = false;

  private _rx = new Uint8Array(RX_SIZE);

  constructor(options: Pn532Options) {
    this._bus = options.bus;
    this._timers = options.timers;
    this._address = typeof options.address === "number" ? options.address : PN532_DEFAULT_ADDRESS;
    this._pollMs = typeof options.pollIntervalMs === "number" ? options.pollIntervalMs : 2;
    this._ackTimeoutMs = typeof options.ackTimeoutMs === "number" ? options.ackTimeoutMs : 30;
    this._timeoutMs = typeof options.timeoutMs === "number" ? options.timeoutMs : 1000;
    const r = typeof options.detectRetries === "number" ? Math.floor(options.detectRetries) : 2;
    this._detectRetries = r < 0 ? 0 : r > 254 ? 254 : r;
  }

  // ---------------------------------------------------------------- public API

  /** GetFirmwareVersion (is it a PN532?), SAMConfiguration (normal mode), RFConfiguration (retries). */
  init(cb: (err: Pn532Error | null) => void): void {
    this._enqueue((done) => {
      this._exchange(PN_CMD_GET_FIRMWARE_VERSION, null, this._timeoutMs, (err, data) => {
        if (err) {
          done();
          cb(err);
          return;
        }
        const d = data as Uint8Array;
        if (d.length !== 4 || d[0] !== 0x32) {
          done();
          cb(pnError(PN_ERR_FIRMWARE, "GetFirmwareVersion: not a PN532 (IC " + (d.length > 0 ? hex2(d[0]) : "missing") + ")"));
          return;
        }
        this.firmware = { ic: d[0], ver: d[1], rev: d[2], support: d[3] };
        this._exchange(PN_CMD_SAM_CONFIGURATION, new Uint8Array([0x01, 0x14, 0x01]), this._timeoutMs, (err2, d2) => {
          if (err2 || (d2 as Uint8Array).length !== 0) {
            done();
            cb(err2 ? err2 : pnError(PN_ERR_PROTOCOL, "SAMConfiguration: unexpected answer"));
            return;
          }
          const rf = new Uint8Array([0x05, 0xff, 0x01, this._detectRetries]);
          this._exchange(PN_CMD_RF_CONFIGURATION, rf, this._timeoutMs, (err3, d3) => {
            done();
            if (err3) cb(err3);
            else if ((d3 as Uint8Array).length !== 0) cb(pnError(PN_ERR_PROTOCOL, "RFConfiguration: unexpected answer"));
            else cb(null);
          });
        });
      });
    }, cb);
  }

  /** Looks for one ISO/IEC 14443 type A card: its UID, or null when there is none. */
  detect(cb: (err: Pn532Error | null, uid: Uint8Array | null) => void): void {
    this._enqueue(
      (done) => {
        this.target = null;
        this._exchange(PN_CMD_IN_LIST_PASSIVE_TARGET, new Uint8Array([0x01, 0x00]), this._timeoutMs, (err, data) => {
          done();
          if (err) {
            cb(err, null);
            return;
          }
          const d = data as Uint8Array;
          if (d.length === 1 && d[0] === 0) {
            cb(null, null);
            return;
          }
          const t = this._parseTarget(d);
          if (t === null) {
            cb(pnError(PN_ERR_PROTOCOL, "InListPassiveTarget: malformed target data"), null);
            return;
          }
          this.target = t;
          cb(null, t.uid);
        });
      },
      (err) => {
        cb(err, null);
      },
    );
  }

  /** Sends a command APDU to the detected card; the answer includes SW1 SW2. */
  apdu(cmd: Uint8Array, cb: (err: Pn532Error | null, resp?: Uint8Array) => void): void {
    if (!cmd || typeof cmd.length !== "number" || cmd.length < 4 || cmd.length > PN_MAX_APDU) {
      this._reject(cb, "apdu: a command APDU is 4.." + PN_MAX_APDU + " bytes");
      return;
    }
    const params = new Uint8Array(1 + cmd.length);
    params.set(cmd, 1);
    this._enqueue((done) => {
      const t = this.target;
      if (t === null) {
        done();
        cb(pnError(PN_ERR_NO_TARGET, "apdu: no card (detect() first)"));
        return;
      }
      if (!t.isoDep) {
        done();
        cb(pnError(PN_ERR_NOT_ISO_DEP, "apdu: the card does not support ISO/IEC 14443-4 (SAK " + hex2(t.sak) + ")"));
        return;
      }
      params[0] = t.tg;
      this._exchange(PN_CMD_IN_DATA_EXCHANGE, params, this._timeoutMs, (err, data) => {
        done();
        if (err) {
          cb(err);
          return;
        }
        const d = data as Uint8Array;
        if (d.length < 1) {
          cb(pnError(PN_ERR_PROTOCOL, "InDataExchange: answer without a status byte"));
          return;
        }
        const status = d[0];
        const code = status & 0x3f;
        if (code !== 0) {
          if (code === 0x01 || code === 0x29 || code === 0x2a || code === 0x2b) {
            this.target = null;
            cb(pnError(PN_ERR_CARD_GONE, "InDataExchange: the card stopped answering (status " + hex2(status) + ")"));
          } else {
            cb(pnError(PN_ERR_CARD, "InDataExchange: error status " + hex2(status)));
          }
          return;
        }
        if ((status & 0x40) !== 0) {
          cb(pnError(PN_ERR_PROTOCOL, "InDataExchange: chained answer (MI) not supported"));
          return;
        }
        if (d.length < 3) {
          cb(pnError(PN_ERR_PROTOCOL, "InDataExchange: answer shorter than a status word"));
          return;
        }
        cb(null, d.slice(1));
      });
    }, cb);
  }

  /** Releases the card (InRelease, all targets): the next detect() activates it afresh. */
  release(cb: (err: Pn532Error | null) => void): void {
    this._enqueue((done) => {
      this.target = null;
      this._exchange(PN_CMD_IN_RELEASE, new Uint8Array([0x00]), this._timeoutMs, (err, data) => {
        done();
        if (err) cb(err);
        else if ((data as Uint8Array).length !== 1) cb(pnError(PN_ERR_PROTOCOL, "InRelease: unexpected answer"));
        else if ((data as Uint8Array)[0] !== 0) cb(pnError(PN_ERR_CARD, "InRelease: error status " + hex2((data as Uint8Array)[0])));
        else cb(null);
      });
    }, cb);
  }

  /** Stops the driver: pending calls fail with PN_ERR_CLOSED. */
  close(): void {
    if (this._closed) return;
    this._closed = true;
    if (this._timerActive) this._timers.clearTimeout(this._timer);
    this._timerActive = false;
    const pending = this._queue;
    if (this._current !== null) pending.unshift(this._current);
    this._current = null;
    this._queue = [];
    this._running = false;
    this.target = null;
    this._timers.setTimeout(() => {
      const err = pnError(PN_ERR_CLOSED, "PN532 driver closed");
      for (let i = 0; i < pending.length; i++) pending[i].fail(err);
    }, 0);
  }

  // ---------------------------------------------------------------- target data

  private _parseTarget(d: Uint8Array): Pn532Target | null {
    // NbTg, Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1, [ATS]
    if (d.length < 6 || d[0] !== 1) return null;
    const idLen = d[5];
    if (idLen !== 4 && idLen !== 7 && idLen !== 10) return null;
    if (d.length < 6 + idLen) return null;
    const sak = d[4];
    const isoDep = (sak & 0x20) !== 0;
    let ats: Uint8Array | null = null;
    let end = 6 + idLen;
    if (isoDep) {
      if (d.length < end + 1) return null;
      const tl = d[end];
      if (tl < 1 || d.length < end + tl) return null;
      ats = d.slice(end, end + tl);
      end += tl;
    }
    if (end !== d.length) return null;
    return { tg: d[1], uid: d.slice(6, 6 + idLen), atqa: d[2] * 256 + d[3], sak: sak, ats: ats, isoDep: isoDep };
  }

  // ---------------------------------------------------------------- one command

  /**
   * Sends `cmd` with `params` and delivers the answer's data (after TFI and the answer code).
   */
  private _exchange(cmd: number, params: Uint8Array | null, timeoutMs: number, cb: DataCallback): void {
    this.stats.commands++;
    const frame = pn532Frame(cmd, params);
    const name = cmdName(cmd);
    let sends = 0;
    let nackTries = 0;
    let readNacks = 0;
    let deadline = 0;
    let lastWhy = "";

    const finish = (err: Pn532Error | null, data: Uint8Array | null): void => {
      const h = this.onHealth;
      if (h !== null) h(err === null ? null : err.message);
      cb(err, data);
    };

    const readAnswer = (): void => {
      const st = this._read(1);
      if (st === null) {
        if (++readNacks >= READ_NACKS) {
          finish(pnError(PN_ERR_NO_READER, name + ": the PN532 stopped acknowledging at 0x" + this._address.toString(16)), null);
          return;
        }
      } else {
        readNacks = 0;
        if (st[0] === 0x01) {
          const rx = this._read(RX_SIZE);
          if (rx === null) {
            finish(pnError(PN_ERR_NO_READER, name + ": the PN532 stopped acknowledging"), null);
            return;
          }
          const p = pn532ParseFrame(rx, RX_SIZE);
          if (p.kind === FRAME_OK) {
            if (rx[p.at] !== PN_TFI_PN532 || p.len < 2 || rx[p.at + 1] !== cmd + 1) {
              lastWhy = "unexpected answer (TFI " + hex2(rx[p.at]) + ", code " + hex2(p.len > 1 ? rx[p.at + 1] : 0) + ")";
            } else {
              finish(null, rx.slice(p.at + 2, p.at + p.len));
              return;
            }
          } else if (p.kind === FRAME_ERROR) {
            finish(pnError(PN_ERR_SYNTAX, name + ": the PN532 answered with its error frame (syntax error)"), null);
            return;
          } else if (p.kind === FRAME_EXTENDED) {
            finish(pnError(PN_ERR_PROTOCOL, name + ": extended frames are not supported"), null);
            return;
          } else {
            lastWhy = p.why;
          }
          // Damaged or unexpected: ask for the answer again.
          if (nackTries >= NACK_TRIES) {
            finish(pnError(PN_ERR_PROTOCOL, name + ": damaged answer (" + lastWhy + ") after " + NACK_TRIES + " NACKs"), null);
            return;
          }
          nackTries++;
          this.stats.nacks++;
          if (!this._write(NACK_FRAME)) {
            finish(pnError(PN_ERR_NO_READER, name + ": the PN532 stopped acknowledging"), null);
            return;
          }
        }
      }
      if (this._timers.now() >= deadline) {
        // Abort the command in the PN532 so that it listens again.
        this.stats.aborts++;
        this._write(ACK_FRAME);
        finish(pnError(PN_ERR_TIMEOUT, name + ": no answer within " + timeoutMs + " ms"), null);
        return;
      }
      this._after(this._pollMs, readAnswer);
    };

    let ackDeadline = 0;
    const readAck = (): void => {
      const st = this._read(1);
      if (st === null) {
        if (++readNacks >= READ_NACKS) {
          finish(pnError(PN_ERR_NO_READER, name + ": the PN532 stopped acknowledging at 0x" + this._address.toString(16)), null);
          return;
        }
      } else {
        readNacks = 0;
        if (st[0] === 0x01) {
          const rx = this._read(7);
          if (rx === null) {
            finish(pnError(PN_ERR_NO_READER, name + ": the PN532 stopped acknowledging"), null);
            return;
          }
          if (rx[1] === 0x00 && rx[2] === 0x00 && rx[3] === 0xff && rx[4] === 0x00 && rx[5] === 0xff && rx[6] === 0x00) {
            deadline = this._timers.now() + timeoutMs;
            this._after(this._pollMs, readAnswer);
            return;
          }
          // Not an ACK (damaged, or a stale frame): send the command again.
          lastWhy = "no valid ACK frame";
          send();
          return;
        }
      }
      if (this._timers.now() >= ackDeadline) {
        lastWhy = "no ACK within " + this._ackTimeoutMs + " ms";
        send();
        return;
      }
      this._after(this._pollMs, readAck);
    };

    let writeTries = 0;
    const send = (): void => {
      if (sends >= SEND_TRIES) {
        finish(pnError(PN_ERR_TIMEOUT, name + ": " + lastWhy + " (sent " + sends + " times)"), null);
        return;
      }
      if (sends > 0) this.stats.resends++;
      if (!this._write(frame)) {
        if (++writeTries >= WRITE_TRIES) {
          finish(pnError(PN_ERR_NO_READER, "no PN532 answers at I2C address 0x" + this._address.toString(16)), null);
          return;
        }
        this._after(this._pollMs, send);
        return;
      }
      writeTries = 0;
      sends++;
      readNacks = 0;
      ackDeadline = this._timers.now() + this._ackTimeoutMs;
      this._after(this._pollMs, readAck);
    };

    send();
  }

  // ---------------------------------------------------------------- bus access

  private _write(data: Uint8Array): boolean {
    try {
      return this._bus.write(this._address, data) === true;
    } catch (e) {
      return false; // some I2C implementations throw on NACK
    }
  }

  private _read(length: number): Uint8Array | null {
    try {
      const r = this._bus.read(this._address, length);
      if (!r || r.length < length) return null;
      if (length === RX_SIZE) {
        this._rx.set(r.subarray(0, RX_SIZE));
        return this._rx;
      }
      return r;
    } catch (e) {
      return null;
    }
  }

  // ---------------------------------------------------------------- queue

  private _after(ms: number, fn: () => void): void {
    this._timerActive = true;
    this._timer = this._timers.setTimeout(() => {
      this._timerActive = false;
      if (!this._closed) fn();
    }, ms);
  }

  private _enqueue(run: (done: () => void) => void, fail: (err: Pn532Error) => void): void {
    if (this._closed) {
      this._timers.setTimeout(() => {
        fail(pnError(PN_ERR_CLOSED, "PN532 driver closed"));
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

  private _reject(cb: (err: Pn532Error) => void, message: string): void {
    this._timers.setTimeout(() => {
      cb(pnError(PN_ERR_BAD_ARGUMENT, message));
    }, 0);
  }
}
