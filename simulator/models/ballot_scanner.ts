// A model of the ballot scanner subsystem (Node side): the board that reads each ballot's serial
// barcode and marks, sends one BALLOT frame per ballot to the firmware over a UART and waits for
// the answer, resending on timeout (same SEQ, same bytes), retrying later on NAK_BUSY, and
// diverting the ballot into the reject bin on a refusal. The wire protocol is documented in
// device/drivers/ballot_scanner.ts; this model implements its side of it independently.

import type { Uart } from "../../device/platform/platform.ts";
import { UartPair, type UartPairOptions } from "./uart_pair.ts";

export const SCANNER_NAK = {
  BAD_FRAME: 1,
  TOO_LARGE: 2,
  MALFORMED: 3,
  DUPLICATE: 4,
  NOT_OPEN: 5,
  BUSY: 6,
  FULL: 7,
} as const;

/** One paper ballot as the scanner reads it. */
export interface SimBallot {
  serial: string;
  /** Marked option indexes, per listed contest. */
  marks: number[][];
  /** Contest indexes listed (default 0, 1, ... for each entry of `marks`). */
  contests?: number[];
}

export interface ScanReply {
  type: "ack" | "nak" | "status" | "unknown";
  seq: number;
  ordinal: number;
  reason: number;
  state: number;
  counted: number;
}

export interface BallotScannerModelOptions extends UartPairOptions {
  /** No answer within this time: the frame is sent again (ms). Default 300. */
  resendMs?: number;
  /** Wait after NAK_BUSY before sending again (ms). Default 200. */
  busyRetryMs?: number;
  /** Sends of one ballot before the scanner gives up on it. Default 50. */
  maxAttempts?: number;
  /** SEQ of the first ballot. Default 1. */
  firstSeq?: number;
}

/** CRC-16/XMODEM, bit by bit (independent of the firmware's table version). */
export function crc16XmodemBits(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc ^= bytes[i] << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** STX, LEN (big-endian), body, CRC-16/XMODEM over LEN and body (big-endian). */
export function scannerFrame(body: Uint8Array): Uint8Array {
  const f = new Uint8Array(body.length + 5);
  f[0] = 0x02;
  f[1] = body.length >> 8;
  f[2] = body.length & 0xff;
  f.set(body, 3);
  const crc = crc16XmodemBits(f, 1, 3 + body.length);
  f[3 + body.length] = crc >> 8;
  f[4 + body.length] = crc & 0xff;
  return f;
}

/** The body of a BALLOT frame. */
export function ballotBody(seq: number, b: SimBallot): Uint8Array {
  const out: number[] = [0x42, seq >> 8, seq & 0xff, b.serial.length];
  for (let i = 0; i < b.serial.length; i++) out.push(b.serial.charCodeAt(i) & 0xff);
  out.push(b.marks.length);
  for (let i = 0; i < b.marks.length; i++) {
    const opts = b.marks[i];
    const top = opts.length === 0 ? 0 : Math.max(...opts);
    const mask = new Uint8Array(Math.floor(top / 8) + 1);
    for (const o of opts) mask[o >> 3] |= 1 << (o & 7);
    out.push(b.contests ? b.contests[i] : i, mask.length, ...mask);
  }
  return Uint8Array.from(out);
}

interface InFlight {
  ballot: SimBallot;
  seq: number;
  frame: Uint8Array;
  attempts: number;
}

export class BallotScannerModel {
  readonly pair: UartPair;
  /** The firmware's end of the serial line. */
  readonly uart: Uart;
  /** Ballots the firmware acknowledged, in order. */
  accepted: { serial: string; seq: number; ordinal: number }[] = [];
  /** Ballots diverted to the reject bin, and why (NAK reason). */
  diverted: { serial: string; seq: number; reason: number }[] = [];
  /** Ballots given up after maxAttempts sends. */
  failed: string[] = [];
  /** Every well-formed answer received. */
  replies: ScanReply[] = [];
  /** Answer frames with a bad CRC or length. */
  badReplies = 0;
  resends = 0;
  timeouts = 0;

  private readonly timersRef: UartPairOptions["timers"];
  private readonly resendMs: number;
  private readonly busyRetryMs: number;
  private readonly maxAttempts: number;
  private nextSeq: number;
  private queue: SimBallot[] = [];
  private current: InFlight | null = null;
  private timer = -1;
  private dropCount = 0;
  private rx: number[] = [];

  constructor(options: BallotScannerModelOptions) {
    this.pair = new UartPair(options);
    this.uart = this.pair.device;
    this.timersRef = options.timers;
    this.resendMs = options.resendMs ?? 300;
    this.busyRetryMs = options.busyRetryMs ?? 200;
    this.maxAttempts = options.maxAttempts ?? 50;
    this.nextSeq = options.firstSeq ?? 1;
    this.pair.chip.onData((d) => this.receive(d));
  }

  get acked(): number {
    return this.accepted.length;
  }

  get rejected(): number {
    return this.diverted.length;
  }

  /** Nothing queued and nothing waiting for an answer. */
  idle(): boolean {
    return this.current === null && this.queue.length === 0;
  }

  /** Puts ballots in the feeder; they are read and sent one at a time. */
  feed(ballots: SimBallot | SimBallot[]): void {
    const list = Array.isArray(ballots) ? ballots : [ballots];
    this.queue.push(...list);
    if (this.current === null) this.sendNext();
  }

  /** The next `n` answer frames from the firmware are lost on the line. */
  dropReplies(n: number): void {
    this.dropCount += n;
  }

  /** Raw bytes on the line (fault injection: malformed frames); not tracked as a ballot. */
  sendRaw(bytes: Uint8Array): void {
    this.pair.chip.write(bytes);
  }

  /** Sends a PING; the STATUS answer lands in `replies`. */
  ping(seq = 0x7000): void {
    this.pair.chip.write(scannerFrame(Uint8Array.of(0x50, seq >> 8, seq & 0xff)));
  }

  private sendNext(): void {
    const b = this.queue.shift();
    if (b === undefined) {
      this.current = null;
      return;
    }
    const seq = this.nextSeq;
    this.nextSeq = seq >= 0xfffe ? 1 : seq + 1;
    this.current = { ballot: b, seq, frame: scannerFrame(ballotBody(seq, b)), attempts: 0 };
    this.transmit();
  }

  private transmit(): void {
    const c = this.current;
    if (c === null) return;
    if (c.attempts >= this.maxAttempts) {
      this.failed.push(c.ballot.serial);
      this.sendNext();
      return;
    }
    if (c.attempts > 0) this.resends++;
    c.attempts++;
    this.pair.chip.write(c.frame);
    this.arm(this.resendMs, () => {
      this.timeouts++;
      this.transmit();
    });
  }

  private arm(ms: number, f: () => void): void {
    if (this.timer >= 0) this.timersRef.clearTimeout(this.timer);
    this.timer = this.timersRef.setTimeout(() => {
      this.timer = -1;
      f();
    }, ms);
  }

  private disarm(): void {
    if (this.timer >= 0) this.timersRef.clearTimeout(this.timer);
    this.timer = -1;
  }

  private receive(data: Uint8Array): void {
    for (const b of data) {
      if (this.rx.length === 0 && b !== 0x02) continue;
      this.rx.push(b);
      if (this.rx.length < 3) continue;
      const len = (this.rx[1] << 8) | this.rx[2];
      if (len > 64) {
        this.badReplies++;
        this.rx = [];
        continue;
      }
      if (this.rx.length < len + 5) continue;
      const f = Uint8Array.from(this.rx);
      this.rx = [];
      const crc = (f[3 + len] << 8) | f[4 + len];
      if (len < 3 || crc !== crc16XmodemBits(f, 1, 3 + len)) {
        this.badReplies++;
        continue;
      }
      if (this.dropCount > 0) {
        this.dropCount--;
        continue;
      }
      this.answer(f.subarray(3, 3 + len));
    }
  }

  private answer(body: Uint8Array): void {
    const r: ScanReply = { type: "unknown", seq: (body[1] << 8) | body[2], ordinal: 0, reason: 0, state: 0, counted: 0 };
    const u32 = (at: number) => ((body[at] << 24) | (body[at + 1] << 16) | (body[at + 2] << 8) | body[at + 3]) >>> 0;
    if (body[0] === 0x06 && body.length === 7) {
      r.type = "ack";
      r.ordinal = u32(3);
    } else if (body[0] === 0x15 && body.length === 4) {
      r.type = "nak";
      r.reason = body[3];
    } else if (body[0] === 0x53 && body.length === 8) {
      r.type = "status";
      r.state = body[3];
      r.counted = u32(4);
    }
    this.replies.push(r);
    const c = this.current;
    if (c === null || (r.type !== "ack" && r.type !== "nak")) return;
    const forCurrent = r.seq === c.seq || (r.type === "nak" && r.seq === 0xffff);
    if (!forCurrent) return; // a late answer to an earlier send
    if (r.type === "ack") {
      this.disarm();
      this.accepted.push({ serial: c.ballot.serial, seq: c.seq, ordinal: r.ordinal });
      this.sendNext();
    } else if (r.reason === SCANNER_NAK.BAD_FRAME || r.seq === 0xffff) {
      // A frame the firmware could not read (damaged on the line): send it again.
      this.disarm();
      this.transmit();
    } else if (r.reason === SCANNER_NAK.BUSY) {
      this.arm(this.busyRetryMs, () => this.transmit());
    } else {
      this.disarm();
      this.diverted.push({ serial: c.ballot.serial, seq: c.seq, reason: r.reason });
      this.sendNext();
    }
  }
}
