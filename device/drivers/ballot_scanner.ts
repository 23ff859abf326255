// Driver for the ballot scanner subsystem: a separate board that reads each ballot (its serial
// barcode and the marks in every contest) and hands the firmware one record per ballot over a
// UART. The board diverts a ballot the firmware refuses into a separate bin. Engine subset.
//
// WIRE PROTOCOL (both directions; 115200 8N1 by default; multi-byte integers big-endian)
//
//   frame = STX 0x02 | LEN u16 | BODY (LEN bytes, 3..MAX_BODY) | CRC u16
//   CRC   = CRC-16/XMODEM (poly 0x1021, init 0, not reflected) over LEN and BODY.
//   BODY  = TYPE u8 | SEQ u16 | fields of the type
//
// Stop and wait: the scanner sends one ballot frame and waits for the firmware's answer to that
// SEQ before it sends the next ballot. SEQ counts ballots on the scanner (1..0xFFFE, wrapping to
// 1); a resend after a lost answer carries the SAME SEQ and bytes, so the firmware recognises it
// and repeats its answer instead of counting the ballot again. 0xFFFF means "unknown" (a NAK to a
// frame too damaged to read).
//
// Scanner -> firmware
//   0x42 'B' BALLOT  SEQ, serialLen u8 (1..32), serial (printable ASCII 0x21..0x7E, from the
//                    barcode), contests u8 (0..16), then per contest listed:
//                    index u8 (in definition order), maskLen u8 (1..16), mask[maskLen]
//                    (bit j of byte k set = option 8k+j marked). A contest not listed, or listed
//                    with no bit set, is unmarked. Nothing may follow the last contest.
//   0x50 'P' PING    SEQ (any value): asks for the polls state (e.g. for the scanner's lamp).
// Firmware -> scanner
//   0x06 ACK         SEQ, ordinal u32: the ballot is counted and durable (the ballot log and the
//                    firmware journal both hold it); ordinal = ballots counted so far.
//   0x15 NAK         SEQ, reason u8 (NAK_*): the ballot is not counted. A NAK with SEQ 0xFFFF
//                    answers a frame too damaged to read (NAK_BAD_FRAME, NAK_TOO_LARGE): the
//                    scanner resends its pending ballot. With the ballot's SEQ, the scanner
//                    retries later on NAK_BUSY and diverts the ballot on every other reason.
//   0x53 'S' STATUS  SEQ of the PING, polls state u8 (PollsState), ballots counted u32.
//
// Receiving: bytes outside a frame are line noise and are dropped. A frame that fails (bad CRC,
// length above MAX_BODY, or still incomplete when the line has been quiet for quietMs) is
// answered with NAK_BAD_FRAME / NAK_TOO_LARGE once the line is quiet (so the rest of a damaged
// frame is not read as new frames). A frame with a good CRC whose body breaks the rules above is
// answered NAK_MALFORMED with its SEQ. Whether the contest indexes and marks fit the election is
// the tally service's check (it also answers NAK_MALFORMED).

import type { Timers, Uart } from "../platform/platform.ts";
import { crc16Xmodem } from "../../protocol/framing.ts";

export const SCAN_STX = 0x02;
export const SCAN_MSG_BALLOT = 0x42;
export const SCAN_MSG_PING = 0x50;
export const SCAN_MSG_ACK = 0x06;
export const SCAN_MSG_NAK = 0x15;
export const SCAN_MSG_STATUS = 0x53;

/** CRC failure, or a frame cut short: resend. */
export const NAK_BAD_FRAME = 1;
/** LEN above MAX_BODY. */
export const NAK_TOO_LARGE = 2;
/** The body breaks the protocol, or its marks do not fit the election: divert. */
export const NAK_MALFORMED = 3;
/** The serial was already counted: divert. */
export const NAK_DUPLICATE = 4;
/** The polls are not open: divert (return the ballot). */
export const NAK_NOT_OPEN = 5;
/** The firmware cannot take a ballot now (journal busy or full, election loading): retry later. */
export const NAK_BUSY = 6;
/** The device's ballot storage is full: divert (count by hand). */
export const NAK_FULL = 7;

export const SCAN_SEQ_UNKNOWN = 0xffff;
export const SCAN_MAX_BODY = 320;
export const SCAN_MAX_SERIAL = 32;
export const SCAN_MAX_CONTESTS = 16;
export const SCAN_MAX_MASK = 16;
export const SCAN_DEFAULT_QUIET_MS = 30;

/** One ballot as the scanner read it. */
export interface ScannedBallot {
  seq: number;
  serial: string;
  /** Contest indexes, as listed in the frame. */
  contests: number[];
  /** Marks of each listed contest (same order as `contests`). */
  masks: Uint8Array[];
}

export interface BallotScannerOptions {
  uart: Uart;
  timers: Timers;
  /** Line quiet time that ends a damaged or incomplete frame (ms). */
  quietMs?: number;
}

/** A whole frame (STX, LEN, BODY, CRC) for a body. */
export function encodeScannerFrame(body: Uint8Array): Uint8Array {
  const n = body.length;
  const f = new Uint8Array(n + 5);
  f[0] = SCAN_STX;
  f[1] = (n >>> 8) & 0xff;
  f[2] = n & 0xff;
  f.set(body, 3);
  const crc = crc16Xmodem(f, 1, 3 + n);
  f[3 + n] = (crc >>> 8) & 0xff;
  f[4 + n] = crc & 0xff;
  return f;
}

/** The result of parsing a ballot body. */
export interface BallotParse {
  ballot: ScannedBallot | null;
  error: string | null;
}

/** Parses the body of a BALLOT frame (TYPE included), checking every protocol rule. */
export function parseBallotBody(b: Uint8Array): BallotParse {
  if (b.length < 5 || b[0] !== SCAN_MSG_BALLOT) return { ballot: null, error: "not a ballot body" };
  const seq = (b[1] << 8) | b[2];
  if (seq === 0 || seq === SCAN_SEQ_UNKNOWN) return { ballot: null, error: "bad sequence number " + seq };
  const sl = b[3];
  if (sl < 1 || sl > SCAN_MAX_SERIAL) return { ballot: null, error: "serial length " + sl };
  if (b.length < 5 + sl) return { ballot: null, error: "body ends inside the serial" };
  let serial = "";
  for (let i = 0; i < sl; i++) {
    const c = b[4 + i];
    if (c < 0x21 || c > 0x7e) return { ballot: null, error: "serial has a non-printable byte" };
    serial += String.fromCharCode(c);
  }
  let p = 4 + sl;
  const k = b[p++];
  if (k > SCAN_MAX_CONTESTS) return { ballot: null, error: "too many contests: " + k };
  const contests: number[] = [];
  const masks: Uint8Array[] = [];
  for (let i = 0; i < k; i++) {
    if (p + 2 > b.length) return { ballot: null, error: "body ends inside contest " + i };
    const idx = b[p];
    const ml = b[p + 1];
    p += 2;
    if (ml < 1 || ml > SCAN_MAX_MASK) return { ballot: null, error: "mark mask of " + ml + " bytes" };
    if (p + ml > b.length) return { ballot: null, error: "body ends inside the marks of contest " + idx };
    if (contests.indexOf(idx) >= 0) return { ballot: null, error: "contest " + idx + " listed twice" };
    contests.push(idx);
    masks.push(b.slice(p, p + ml));
    p += ml;
  }
  if (p !== b.length) return { ballot: null, error: (b.length - p) + " bytes after the last contest" };
  return { ballot: { seq: seq, serial: serial, contests: contests, masks: masks }, error: null };
}

// Receiver states.
const R_HUNT = 0;
const R_LEN_HI = 1;
const R_LEN_LO = 2;
const R_BODY = 3;
const R_CRC_HI = 4;
const R_CRC_LO = 5;
const R_DISCARD = 6;

export class BallotScanner {
  /** Good frames received. */
  frames: number;
  /** Frames refused (bad CRC, too large, truncated, malformed). */
  errors: number;
  /** Bytes dropped outside frames. */
  noise: number;
  _uart: Uart;
  _timers: Timers;
  _quiet: number;
  _st: number;
  _len: number;
  _buf: Uint8Array;
  _got: number;
  _crc: number;
  _nak: number;
  _timer: number;
  _closed: boolean;
  _ballotCb: ((b: ScannedBallot) => void) | null;
  _pingCb: ((seq: number) => void) | null;

  constructor(options: BallotScannerOptions) {
    const self = this;
    this._uart = options.uart;
    this._timers = options.timers;
    this._quiet = options.quietMs ?? SCAN_DEFAULT_QUIET_MS;
    this.frames = 0;
    this.errors = 0;
    this.noise = 0;
    this._st = R_HUNT;
    this._len = 0;
    this._buf = new Uint8Array(SCAN_MAX_BODY + 2);
    this._got = 0;
    this._crc = 0;
    this._nak = 0;
    this._timer = -1;
    this._closed = false;
    this._ballotCb = null;
    this._pingCb = null;
    this._uart.onData(function (data: Uint8Array) {
      self._receive(data);
    });
  }

  /** Installs the receiver of ballot frames (answer each with ack() or nak()). */
  onBallot(cb: (b: ScannedBallot) => void): void {
    this._ballotCb = cb;
  }

  /** Installs the receiver of PING frames (answer with status()). */
  onPing(cb: (seq: number) => void): void {
    this._pingCb = cb;
  }

  /** The ballot SEQ is counted and durable; `ordinal` = ballots counted so far. */
  ack(seq: number, ordinal: number): void {
    const b = new Uint8Array(7);
    b[0] = SCAN_MSG_ACK;
    b[1] = (seq >>> 8) & 0xff;
    b[2] = seq & 0xff;
    b[3] = (ordinal >>> 24) & 0xff;
    b[4] = (ordinal >>> 16) & 0xff;
    b[5] = (ordinal >>> 8) & 0xff;
    b[6] = ordinal & 0xff;
    this._send(b);
  }

  /** The ballot SEQ is not counted, for `reason` (NAK_*). */
  nak(seq: number, reason: number): void {
    const b = new Uint8Array(4);
    b[0] = SCAN_MSG_NAK;
    b[1] = (seq >>> 8) & 0xff;
    b[2] = seq & 0xff;
    b[3] = reason & 0xff;
    this._send(b);
  }

  /** Answer to a PING. */
  status(seq: number, pollsState: number, counted: number): void {
    const b = new Uint8Array(8);
    b[0] = SCAN_MSG_STATUS;
    b[1] = (seq >>> 8) & 0xff;
    b[2] = seq & 0xff;
    b[3] = pollsState & 0xff;
    b[4] = (counted >>> 24) & 0xff;
    b[5] = (counted >>> 16) & 0xff;
    b[6] = (counted >>> 8) & 0xff;
    b[7] = counted & 0xff;
    this._send(b);
  }

  /** Stops answering and drops what is in progress. */
  close(): void {
    this._closed = true;
    this._stopTimer();
    this._ballotCb = null;
    this._pingCb = null;
  }

  _send(body: Uint8Array): void {
    if (!this._closed) this._uart.write(encodeScannerFrame(body));
  }

  _stopTimer(): void {
    if (this._timer >= 0) this._timers.clearTimeout(this._timer);
    this._timer = -1;
  }

  /** (Re)starts the quiet timer while a frame is in progress or being discarded. */
  _armQuiet(): void {
    const self = this;
    this._stopTimer();
    this._timer = this._timers.setTimeout(function () {
      self._timer = -1;
      self._onQuiet();
    }, this._quiet);
  }

  _onQuiet(): void {
    if (this._st === R_DISCARD) {
      this._st = R_HUNT;
      this.nak(SCAN_SEQ_UNKNOWN, this._nak);
    } else if (this._st !== R_HUNT) {
      // The frame stopped short of its length: truncated.
      this._st = R_HUNT;
      this.errors++;
      this.nak(SCAN_SEQ_UNKNOWN, NAK_BAD_FRAME);
    }
  }

  /** Drops the rest of a failed frame; the NAK goes out when the line is quiet. */
  _fail(reason: number): void {
    this.errors++;
    this._st = R_DISCARD;
    this._nak = reason;
  }

  _receive(data: Uint8Array): void {
    if (this._closed) return;
    for (let i = 0; i < data.length; i++) {
      const c = data[i];
      const st = this._st;
      if (st === R_HUNT) {
        if (c === SCAN_STX) this._st = R_LEN_HI;
        else this.noise++;
      } else if (st === R_LEN_HI) {
        this._len = c << 8;
        this._st = R_LEN_LO;
      } else if (st === R_LEN_LO) {
        this._len = this._len | c;
        this._buf[0] = this._len >>> 8;
        this._buf[1] = this._len & 0xff;
        this._got = 0;
        if (this._len > SCAN_MAX_BODY) this._fail(NAK_TOO_LARGE);
        else if (this._len < 3) this._fail(NAK_BAD_FRAME);
        else this._st = R_BODY;
      } else if (st === R_BODY) {
        this._buf[2 + this._got++] = c;
        if (this._got === this._len) this._st = R_CRC_HI;
      } else if (st === R_CRC_HI) {
        this._crc = c << 8;
        this._st = R_CRC_LO;
      } else if (st === R_CRC_LO) {
        this._crc = this._crc | c;
        if (crc16Xmodem(this._buf, 0, 2 + this._len) !== this._crc) this._fail(NAK_BAD_FRAME);
        else {
          this._st = R_HUNT;
          this._frame(this._buf.slice(2, 2 + this._len));
          if (this._closed) return;
        }
      }
      // R_DISCARD: drop until the line is quiet.
    }
    if (this._st === R_HUNT) this._stopTimer();
    else this._armQuiet();
  }

  _frame(body: Uint8Array): void {
    const type = body[0];
    const seq = (body[1] << 8) | body[2];
    if (type === SCAN_MSG_BALLOT) {
      const r = parseBallotBody(body);
      if (r.ballot === null) {
        this.errors++;
        this.nak(seq, NAK_MALFORMED);
        return;
      }
      this.frames++;
      if (this._ballotCb !== null) this._ballotCb(r.ballot);
      else this.nak(seq, NAK_BUSY);
    } else if (type === SCAN_MSG_PING && body.length === 3) {
      this.frames++;
      if (this._pingCb !== null) this._pingCb(seq);
    } else {
      this.errors++;
      this.nak(seq, NAK_MALFORMED);
    }
  }
}
