// The link service: the device's side of the protocol on one byte link (USB serial or BLE UART).
// Frames in and out, the hello exchange, journal records sent with a window of records in flight
// and resent on timeout or reconnect, acknowledgements, and an Error for anything malformed.
// Engine subset.
//
// The hello exchange: on connect (and so after every boot) the device greets (Hello, answer
// false) and repeats its greeting with back-off until a host says hello; a host Hello starts the
// session and the device answers it (Hello, answer true), which tells the host the exchange is
// over. Either hello may be lost to a noisy line: the device's greetings and the host's own
// resends (host/session/device_session.ts) carry the exchange through.

import type { ByteLink, Timers } from "../platform/platform.ts";
import { encodeFrame, FrameDecoder } from "../../protocol/framing.ts";
import {
  encodeEnvelope,
  decodeEnvelope,
  ErrorCode,
  type Envelope,
  type Command,
  type Hello,
  type TimeSync,
} from "../../protocol/generated/device_codec.ts";
import { isCodecError } from "../../protocol/codec_runtime.ts";

/** What the link needs from the journal (device/services/journal.ts). */
export interface RecordSource {
  /** The encoded Record for `seq`, or null when it is gone (compacted) or torn. */
  read(seq: number): Uint8Array | null;
  /** Highest sequence number the host has acknowledged. */
  ackedSeq(): number;
  /** The sequence number the next record will take. */
  nextSeq(): number;
  /** Marks everything up to seq acknowledged; returns a negative code for a never-sent seq. */
  ack(seq: number): number;
}

export interface LinkHandlers {
  /** The device's Hello (filled in by the firmware at each use: journal position changes). */
  hello(): Hello;
  onCommand(cmd: Command): void;
  onTimeSync(t: TimeSync): void;
  /** The host said hello: a session starts (a new host, or the same one after a reconnect). */
  onHostHello(h: Hello): void;
  /** Any protocol error on this link (counted in telemetry). */
  onError(code: number, detail: string): void;
}

export interface LinkOptions {
  link: ByteLink;
  timers: Timers;
  records: RecordSource;
  handlers: LinkHandlers;
  /** Records sent and not yet acknowledged, at most. */
  window?: number;
  /** Resend everything unacknowledged after this long without progress. */
  resendMs?: number;
}

export const LINK_WINDOW = 8;
export const LINK_RESEND_MS = 3000;
/** Greetings back off to at most this interval while no host answers. */
export const GREET_MAX_MS = 30000;
/** A burst of framing errors is reported at most this often. */
const ERROR_REPORT_MS = 1000;

export class LinkService {
  _o: LinkOptions;
  _decoder: FrameDecoder;
  _window: number;
  _resendMs: number;
  /** A host has said hello on this connection: records may flow. */
  _session: boolean;
  /** Next sequence number to send (everything below it up to acked is in flight). */
  _sendNext: number;
  _timer: number;
  _connected: boolean;
  _greetTimer: number;
  _greetMs: number;
  _lastErrorReport: number;
  _suppressedErrors: number;
  framesIn: number;
  framesOut: number;
  resends: number;

  constructor(options: LinkOptions) {
    this._o = options;
    this._window = options.window ?? LINK_WINDOW;
    this._resendMs = options.resendMs ?? LINK_RESEND_MS;
    this._session = false;
    this._sendNext = 0;
    this._timer = -1;
    this._connected = false;
    this._greetTimer = -1;
    this._greetMs = this._resendMs;
    this._lastErrorReport = -1e9;
    this._suppressedErrors = 0;
    this.framesIn = 0;
    this.framesOut = 0;
    this.resends = 0;
    const self = this;
    this._decoder = new FrameDecoder({
      onFrame: function (p: Uint8Array) {
        self._frame(p);
      },
      onConsole: function () {
        // A host sends no console text; stray lines are ignored.
      },
      onError: function (code: number, detail: string) {
        self._protocolError(code, detail, 0);
      },
    });
    options.link.onData(function (data: Uint8Array) {
      self._decoder.pushBytes(data);
    });
    options.link.onConnection(function (connected: boolean) {
      self._connection(connected);
    });
  }

  inSession(): boolean {
    return this._session;
  }

  send(env: Envelope): void {
    const frame = encodeFrame(encodeEnvelope(env));
    if (frame.length === 0) {
      this._o.handlers.onError(ErrorCode.FRAME_TOO_LARGE, "outgoing message too large");
      return;
    }
    this.framesOut++;
    this._o.link.write(frame);
  }

  /** Sends the device's Hello: an answer to a host Hello, or a greeting. */
  sendHello(answer?: boolean): void {
    const h = this._o.handlers.hello();
    h.answer = answer === true;
    this.send({ hello: h });
  }

  /** Greets now and again with back-off while connected and no host has said hello. */
  _greet(): void {
    const self = this;
    this._stopGreeting();
    if (!this._connected || this._session) return;
    this.sendHello(false);
    this._greetTimer = this._o.timers.setTimeout(function () {
      self._greetTimer = -1;
      self._greetMs = self._greetMs * 2 > GREET_MAX_MS ? GREET_MAX_MS : self._greetMs * 2;
      self._greet();
    }, this._greetMs);
  }

  _stopGreeting(): void {
    if (this._greetTimer >= 0) {
      this._o.timers.clearTimeout(this._greetTimer);
      this._greetTimer = -1;
    }
  }

  /** Console text for the device log: a plain line, never mistaken for a frame. */
  sendConsole(text: string): void {
    let s = "";
    for (let i = 0; i < text.length && i < 200; i++) {
      const c = text.charCodeAt(i);
      s += c === 10 || c === 13 ? " " : text.charAt(i);
    }
    const first = s.charCodeAt(0);
    if (first === 33 || first === 42) s = " " + s;
    const out = new Uint8Array(s.length + 1);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      out[i] = c < 256 ? c : 63;
    }
    out[s.length] = 10;
    this._o.link.write(out);
  }

  /** A new record was journalled: send it now if the window allows. */
  pump(): void {
    if (!this._session) return;
    const records = this._o.records;
    const acked = records.ackedSeq();
    const next = records.nextSeq();
    if (this._sendNext <= acked) this._sendNext = acked + 1;
    let sent = false;
    while (this._sendNext < next && this._sendNext - acked <= this._window) {
      const bytes = records.read(this._sendNext);
      if (bytes !== null) {
        this._sendRecordBytes(bytes);
        sent = true;
      }
      this._sendNext++;
    }
    if (sent || this._sendNext > acked + 1) this._armResend();
  }

  _sendRecordBytes(record: Uint8Array): void {
    // The journal holds each record already encoded: wrap it as Envelope field 3 by hand,
    // so a resend costs no decode and re-encode.
    const n = record.length;
    let lenBytes = 1;
    for (let v = n >>> 7; v > 0; v = v >>> 7) lenBytes++;
    const env = new Uint8Array(1 + lenBytes + n);
    env[0] = 26; // field 3, length-delimited
    let p = 1;
    let v = n;
    while (v > 127) {
      env[p++] = (v & 127) | 128;
      v = v >>> 7;
    }
    env[p++] = v;
    env.set(record, p);
    const frame = encodeFrame(env);
    this.framesOut++;
    this._o.link.write(frame);
  }

  _armResend(): void {
    const self = this;
    if (this._timer >= 0) this._o.timers.clearTimeout(this._timer);
    this._timer = this._o.timers.setTimeout(function () {
      self._timer = -1;
      self._resend();
    }, this._resendMs);
  }

  _resend(): void {
    const records = this._o.records;
    if (!this._session || records.ackedSeq() + 1 >= records.nextSeq()) return;
    this.resends++;
    this._sendNext = records.ackedSeq() + 1;
    this.pump();
  }

  _connection(connected: boolean): void {
    this._decoder.reset();
    this._session = false;
    this._connected = connected;
    if (this._timer >= 0) {
      this._o.timers.clearTimeout(this._timer);
      this._timer = -1;
    }
    // A host that connects gets our greeting at once; it answers with its own hello to start a
    // session. Until one does, the greeting is repeated (the line may have eaten either).
    this._greetMs = this._resendMs;
    if (connected) this._greet();
    else this._stopGreeting();
  }

  _protocolError(code: number, detail: string, commandId: number): void {
    this._o.handlers.onError(code, detail);
    const now = this._o.timers.now();
    if (commandId === 0 && now - this._lastErrorReport < ERROR_REPORT_MS) {
      this._suppressedErrors++;
      return;
    }
    this._lastErrorReport = now;
    let text = detail;
    if (this._suppressedErrors > 0) text += " (+" + this._suppressedErrors + " more)";
    this._suppressedErrors = 0;
    this.send({ error: { code: code, detail: text, commandId: commandId } });
  }

  _frame(payload: Uint8Array): void {
    this.framesIn++;
    let env: Envelope;
    try {
      env = decodeEnvelope(payload);
    } catch (e) {
      if (!isCodecError(e)) throw e;
      this._protocolError(ErrorCode.DECODE_FAILED, e.message + " at byte " + e.offset, 0);
      return;
    }
    const h = this._o.handlers;
    if (env.hello !== undefined) {
      this._session = true;
      this._stopGreeting();
      this._sendNext = this._o.records.ackedSeq() + 1;
      h.onHostHello(env.hello);
      this.sendHello(true);
      this.pump();
    } else if (env.ack !== undefined) {
      this._ack(env.ack.seq ?? 0);
    } else if (env.command !== undefined) {
      h.onCommand(env.command);
    } else if (env.timeSync !== undefined) {
      h.onTimeSync(env.timeSync);
    } else if (env.error !== undefined) {
      h.onError(env.error.code ?? 0, "host reported: " + (env.error.detail ?? ""));
    } else if (
      env.health !== undefined ||
      env.record !== undefined ||
      env.commandResult !== undefined
    ) {
      this._protocolError(ErrorCode.UNEXPECTED_MESSAGE, "a device does not accept this message", 0);
    } else {
      this._protocolError(ErrorCode.UNKNOWN_MESSAGE, "no known message in the envelope", 0);
    }
  }

  _ack(seq: number): void {
    const records = this._o.records;
    if (seq <= records.ackedSeq()) return; // replayed or out of order: harmless
    if (records.ack(seq) < 0) {
      this._protocolError(ErrorCode.BAD_ACK, "ack " + seq + " but next record is " + records.nextSeq(), 0);
      return;
    }
    if (this._timer >= 0) {
      this._o.timers.clearTimeout(this._timer);
      this._timer = -1;
    }
    this.pump();
  }
}
