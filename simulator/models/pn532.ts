// A model of an NXP PN532 ISO/IEC 14443 reader on I2C (Node side), so that the card reader driver
// (device/drivers/pn532.ts) is tested against the chip's frames, not against a mock of itself.
// Cards are separate models (CardModel): place() puts one in the field, place(null) takes it away.
//
// What it follows (PN532 User Manual UM0701-02; see the driver's header for the frame format):
// - Host frames: 00 00 FF LEN LCS D4 cmd params DCS 00. A frame with a bad LCS, DCS or postamble
//   is dropped without an ACK (the host times out and sends it again). A good frame is ACKed
//   (00 00 FF 00 FF 00) and executed; an unknown command, or a TFI other than D4, is answered
//   with the error frame 00 00 FF 01 FF 7F 81 00. The host's ACK frame aborts the command in
//   progress; its NACK frame makes the PN532 send its last answer again.
// - Reads: every read starts with the status byte, 0x01 when a frame is waiting and its time has
//   come, else 0x00; the frame follows. A read long enough to cover the whole frame consumes it;
//   a shorter one (a status poll) does not.
// - Timing (on the simulation clock `now`): the ACK is ready `ackDelayMs` after the frame; the
//   answer `commandMs` after that, `activationMs` per card search attempt for InListPassiveTarget,
//   and for InDataExchange `exchangeMs` plus the bytes at 106 kbit/s.
// - Commands: GetFirmwareVersion (32 01 06 07), SAMConfiguration (mode 1..4; RF commands before it
//   get the error frame: the chip starts in LowVbat mode, a stricter reading than the chip's),
//   RFConfiguration (item 5 retries kept, others accepted), InListPassiveTarget (MaxTg 1..2,
//   BrTy 0 only; a card in the field is activated, with RATS when its SAK has bit 5; no card:
//   NbTg 0 after MxRtyPassiveActivation + 1 attempts, never when that is 0xFF), InDataExchange
//   (status 0x01 when the card is gone or silent, 0x27 without an active target, MI set and the
//   answer cut at 252 bytes when longer), InRelease.
//
// Faults: removeCardAfter(n) (the card leaves the field before the (n+1)th exchange),
// corruptNextResponse("lcs" | "dcs", count) (answers handed out damaged; the kept copy stays
// good, so a NACK gets a good one unless count covers it too), silentNext() (ACK, never an
// answer), errorFrameNext(). No reader: SimI2cBus.setConnected(address, false).

import type { SimI2cDevice } from "./i2c_bus.ts";

export const PN532_I2C_ADDRESS = 0x24;

/** A card in the field of the reader (ISO/IEC 14443 type A). */
export interface CardModel {
  /** NFCID1: 4, 7 or 10 bytes. */
  readonly uid: Uint8Array;
  /** SENS_RES (ATQA), 16 bits, first byte sent in the high half. */
  readonly atqa: number;
  /** SEL_RES (SAK); bit 5 (0x20) = ISO/IEC 14443-4 compliant. */
  readonly sak: number;
  /** The ATS (TL first) answered to RATS, for an ISO/IEC 14443-4 card. */
  readonly ats: Uint8Array | null;
  /** One command APDU in, its response APDU out; null = the card does not answer. */
  transceive(apdu: Uint8Array): Uint8Array | null;
  /** The card was (re)activated: volatile state (selected application, file) is reset. */
  reset?(): void;
}

/** A MIFARE Classic-like card: type A, no ISO/IEC 14443-4, so no APDUs. */
export class MifareClassicCardModel implements CardModel {
  readonly uid: Uint8Array;
  readonly atqa = 0x0004;
  readonly sak = 0x08;
  readonly ats = null;
  constructor(uid?: Uint8Array) {
    this.uid = new Uint8Array(uid ?? [0xde, 0xad, 0xbe, 0xef]);
  }
  transceive(): Uint8Array | null {
    return null;
  }
}

export interface Pn532ModelOptions {
  /** Milliseconds on the simulation's clock (the same clock as the firmware's timers). */
  now: () => number;
  ackDelayMs?: number;
  commandMs?: number;
  activationMs?: number;
  exchangeMs?: number;
  /** GetFirmwareVersion answer (IC, Ver, Rev, Support). Default 32 01 06 07. */
  firmware?: Uint8Array;
}

export interface Pn532Stats {
  frames: number;
  badFrames: number;
  acks: number;
  nacks: number;
  aborts: number;
  errorFrames: number;
  byCommand: { [cmd: number]: number };
  exchanges: number;
}

interface Out {
  frame: Uint8Array;
  readyAt: number;
  /** An answer (kept for NACK) rather than an ACK. */
  answer: boolean;
}

const ERROR_FRAME = Uint8Array.of(0x00, 0x00, 0xff, 0x01, 0xff, 0x7f, 0x81, 0x00);
const ACK = Uint8Array.of(0x00, 0x00, 0xff, 0x00, 0xff, 0x00);

/** A PN532-to-host frame: 00 00 FF LEN LCS D5 data DCS 00 (data starts with the answer code). */
export function pn532AnswerFrame(data: Uint8Array): Uint8Array {
  const len = data.length + 1;
  if (len > 255) throw new RangeError("answer too long for a normal frame");
  const out = new Uint8Array(len + 7);
  out.set([0x00, 0x00, 0xff, len, (0x100 - len) & 0xff, 0xd5], 0);
  out.set(data, 6);
  let sum = 0xd5;
  for (const b of data) sum += b;
  out[6 + data.length] = (0x100 - (sum & 0xff)) & 0xff;
  out[7 + data.length] = 0x00;
  return out;
}

export class Pn532Model implements SimI2cDevice {
  readonly stats: Pn532Stats = {
    frames: 0,
    badFrames: 0,
    acks: 0,
    nacks: 0,
    aborts: 0,
    errorFrames: 0,
    byCommand: {},
    exchanges: 0,
  };

  private readonly now: () => number;
  private readonly ackDelayMs: number;
  private readonly commandMs: number;
  private readonly activationMs: number;
  private readonly exchangeMs: number;
  private readonly firmware: Uint8Array;

  private card: CardModel | null = null;
  private active = false;
  private samDone = false;
  private retries = { atr: 0xff, psl: 0x01, passive: 0xff };
  private out: Out | null = null;
  /** The answer that follows the ACK (null while none is due). */
  private next: Out | null = null;
  private last: Uint8Array | null = null;
  private removeAfter = -1;
  private corrupt: { what: "lcs" | "dcs"; count: number } | null = null;
  private silent = false;
  private errorNext = false;

  constructor(options: Pn532ModelOptions) {
    this.now = options.now;
    this.ackDelayMs = options.ackDelayMs ?? 1;
    this.commandMs = options.commandMs ?? 2;
    this.activationMs = options.activationMs ?? 5;
    this.exchangeMs = options.exchangeMs ?? 4;
    this.firmware = new Uint8Array(options.firmware ?? [0x32, 0x01, 0x06, 0x07]);
  }

  // ---- host side ----

  /** Puts a card in the field (or takes the current one away with null). */
  place(card: CardModel | null): void {
    this.card = card;
    this.active = false;
  }

  get cardInField(): CardModel | null {
    return this.card;
  }

  /** The card leaves the field just before the (n+1)th InDataExchange from now. */
  removeCardAfter(n: number): void {
    this.removeAfter = n;
  }

  corruptNextResponse(what: "lcs" | "dcs", count?: number): void {
    this.corrupt = { what, count: count ?? 1 };
  }

  /** The next command is ACKed and never answered. */
  silentNext(): void {
    this.silent = true;
  }

  /** The next command is ACKed and answered with the error frame. */
  errorFrameNext(): void {
    this.errorNext = true;
  }

  // ---- the I2C side ----

  write(data: Uint8Array): boolean {
    const now = this.now();
    let i = 0;
    while (i + 1 < data.length && data[i] === 0x00 && data[i + 1] === 0x00) i++;
    if (i + 3 >= data.length || data[i] !== 0x00 || data[i + 1] !== 0xff) {
      this.stats.badFrames++;
      return true; // ACKed on the bus, ignored by the PN532
    }
    const len = data[i + 2]!;
    const lcs = data[i + 3]!;
    if (len === 0x00 && lcs === 0xff) {
      // The host's ACK: abort whatever runs.
      this.stats.aborts++;
      this.out = null;
      this.next = null;
      return true;
    }
    if (len === 0xff && lcs === 0x00) {
      this.stats.nacks++;
      if (this.last) this.out = { frame: this.handOut(this.last), readyAt: now, answer: true };
      return true;
    }
    const at = i + 4;
    if (((len + lcs) & 0xff) !== 0 || len === 0 || at + len + 2 > data.length) {
      this.stats.badFrames++;
      return true;
    }
    let sum = 0;
    for (let k = 0; k < len; k++) sum += data[at + k]!;
    if (((sum + data[at + len]!) & 0xff) !== 0 || data[at + len + 1] !== 0x00) {
      this.stats.badFrames++;
      return true;
    }
    this.stats.frames++;
    const body = data.slice(at, at + len);
    // A new command replaces whatever was pending.
    this.stats.acks++;
    this.out = { frame: ACK, readyAt: now + this.ackDelayMs, answer: false };
    this.next = null;
    if (this.silent) {
      this.silent = false;
      return true;
    }
    if (this.errorNext || body[0] !== 0xd4 || body.length < 2) {
      this.errorNext = false;
      this.queueAnswer(ERROR_FRAME, this.commandMs);
      this.stats.errorFrames++;
      return true;
    }
    const cmd = body[1]!;
    this.stats.byCommand[cmd] = (this.stats.byCommand[cmd] ?? 0) + 1;
    this.execute(cmd, body.subarray(2));
    return true;
  }

  read(length: number): Uint8Array | null {
    const now = this.now();
    if (this.out === null && this.next !== null) {
      this.out = this.next;
      this.next = null;
    }
    const result = new Uint8Array(length);
    const o = this.out;
    if (o === null || now < o.readyAt) return result; // status 0x00: not ready
    result[0] = 0x01;
    result.set(o.frame.subarray(0, Math.max(0, Math.min(o.frame.length, length - 1))), 1);
    if (length >= 1 + o.frame.length) {
      this.out = this.next;
      this.next = null;
    }
    return result;
  }

  // ---- internals ----

  private handOut(frame: Uint8Array): Uint8Array {
    const c = this.corrupt;
    if (!c || c.count <= 0) return frame;
    c.count--;
    if (c.count === 0) this.corrupt = null;
    const copy = new Uint8Array(frame);
    if (c.what === "lcs") copy[4]! ^= 0x01;
    else copy[copy.length - 2]! ^= 0x01;
    return copy;
  }

  private queueAnswer(frame: Uint8Array, ms: number): void {
    this.last = frame;
    const readyAt = this.now() + this.ackDelayMs + ms;
    this.next = { frame: this.handOut(frame), readyAt, answer: true };
  }

  private answer(cmd: number, data: number[] | Uint8Array, ms?: number): void {
    const body = new Uint8Array(1 + data.length);
    body[0] = cmd + 1;
    body.set(data, 1);
    this.queueAnswer(pn532AnswerFrame(body), ms ?? this.commandMs);
  }

  private syntaxError(): void {
    this.stats.errorFrames++;
    this.queueAnswer(ERROR_FRAME, this.commandMs);
  }

  private execute(cmd: number, p: Uint8Array): void {
    switch (cmd) {
      case 0x02: // GetFirmwareVersion
        this.answer(cmd, this.firmware);
        return;
      case 0x14: // SAMConfiguration
        if (p.length < 1 || p[0]! < 1 || p[0]! > 4) {
          this.syntaxError();
          return;
        }
        this.samDone = true;
        this.answer(cmd, []);
        return;
      case 0x32: // RFConfiguration
        if (p.length < 1) {
          this.syntaxError();
          return;
        }
        if (p[0] === 0x05) {
          if (p.length !== 4) {
            this.syntaxError();
            return;
          }
          this.retries = { atr: p[1]!, psl: p[2]!, passive: p[3]! };
        }
        this.answer(cmd, []);
        return;
      case 0x4a: // InListPassiveTarget
        this.listPassive(cmd, p);
        return;
      case 0x40: // InDataExchange
        this.exchange(cmd, p);
        return;
      case 0x52: // InRelease
        if (p.length !== 1) {
          this.syntaxError();
          return;
        }
        if (p[0] !== 0 && !(p[0] === 1 && this.active)) {
          this.answer(cmd, [0x27]);
          return;
        }
        this.active = false;
        this.answer(cmd, [0x00]);
        return;
      default:
        this.syntaxError();
    }
  }

  private listPassive(cmd: number, p: Uint8Array): void {
    if (!this.samDone || p.length < 2 || p[0]! < 1 || p[0]! > 2 || p[1] !== 0x00) {
      this.syntaxError();
      return;
    }
    this.active = false;
    const card = this.card;
    if (!card) {
      if (this.retries.passive === 0xff) return; // searches until aborted
      this.answer(cmd, [0x00], (this.retries.passive + 1) * this.activationMs);
      return;
    }
    if (card.reset) card.reset();
    this.active = true;
    const d: number[] = [0x01, 0x01, (card.atqa >> 8) & 0xff, card.atqa & 0xff, card.sak, card.uid.length, ...card.uid];
    if ((card.sak & 0x20) !== 0 && card.ats) d.push(...card.ats);
    this.answer(cmd, d, this.activationMs);
  }

  private exchange(cmd: number, p: Uint8Array): void {
    if (!this.samDone || p.length < 1) {
      this.syntaxError();
      return;
    }
    this.stats.exchanges++;
    if (this.removeAfter === 0) {
      this.card = null;
      this.active = false;
    }
    if (this.removeAfter >= 0) this.removeAfter--;
    if (!this.active || p[0] !== 0x01) {
      // A target that was never activated: not acceptable in context; one that left: timeout.
      this.answer(cmd, [this.card ? 0x27 : 0x01], this.card ? this.commandMs : 50);
      return;
    }
    const card = this.card;
    const resp = card && (card.sak & 0x20) !== 0 ? card.transceive(p.slice(1)) : null;
    if (resp === null) {
      // No answer from the field: the PN532's own timeout (FWT with retries).
      this.active = false;
      this.answer(cmd, [0x01], 50);
      return;
    }
    const bitsMs = ((p.length - 1 + resp.length) * 10) / 106;
    if (resp.length > 252) {
      this.answer(cmd, [0x40, ...resp.subarray(0, 252)], this.exchangeMs + bitsMs);
      return;
    }
    this.answer(cmd, [0x00, ...resp], this.exchangeMs + bitsMs);
  }
}
