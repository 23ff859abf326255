// Driver for a UART fingerprint module of the Suprema UniFinger family (SFM3000/4000/5000/6000
// class), which scans a finger, extracts its minutiae and hands them to the host MCU as an
// ISO/IEC 19794-2 record.
// FIRMWARE: engine subset (see ENGINES.md): callbacks, plain objects, typed arrays, no exceptions
// out of the driver.
//
// The packet protocol (UniFinger "UF Protocol Manual", Suprema's public SFM documentation):
// - Every request and response is one 13-byte packet: start code 0x40, command (1 byte), param
//   (4 bytes, little-endian), size (4 bytes, LE), flag/error (1 byte), checksum (the sum of the 11
//   bytes from the start code to flag/error, modulo 256), end code 0x0A.
// - Binary data (a template) follows the packet whose size field gives its length, and is closed
//   by one more end code byte 0x0A. The basic protocol has no checksum over that data; the driver
//   checks the length against its limit, the closing 0x0A, and that the record is an ISO/IEC
//   19794-2 record ("FMR\0"); the record's own structure is the matcher's business (iso19794.ts).
// - Response flags: 0x61 SUCCESS, 0x62 SCAN_SUCCESS (an intermediate response: the image is
//   scanned and the result follows, sent while system parameter 0x75 "Send Scan Success" is on),
//   0x63 SCAN_FAIL, 0x69 NOT_FOUND, 0x6A NOT_MATCH, 0x6B TRY_AGAIN, 0x6C TIME_OUT (no finger
//   within the module's timeout), 0x6D MEM_FULL, 0x72 FINGER_LIMIT, 0x75 UNSUPPORTED, 0x80 BUSY,
//   0x81 CANCELED, 0x82 DATA_ERROR, 0xB0 FAKE_DETECTED.
// - Commands used: SR 0x03 read system parameter and SW 0x01 write system parameter (flag = the
//   parameter id, size = the value; the answer carries the value in size), ST 0x21 scan template
//   (scan, extract, and send the template: SCAN_SUCCESS, then SUCCESS with size = template length
//   and the template), CA 0x60 cancel, GW 0x37 write GPIO configuration (LED).
// - System parameters used: 0x6E firmware version (4 ASCII characters in size), 0x96 template
//   type (0x30 Suprema, 0x31 ISO 19794-2, 0x32 ANSI 378), 0x62 timeout (0x30 + seconds, 0x30 =
//   infinite; the module waits that long for a finger).
//
// Choices where the public documentation stops (documented here, followed by the simulator):
// - ST's failures: TIME_OUT means nobody put a finger on the sensor (FP_ERR_NO_FINGER);
//   SCAN_FAIL and TRY_AGAIN mean the image was too poor to extract (FP_ERR_POOR_IMAGE); BUSY is
//   FP_ERR_BUSY; CANCELED is FP_ERR_CANCELLED; anything else is FP_ERR_MODULE with the code.
// - LED: the SFM3000 class has no "set output level" command (OS 0x4D is SFM3500 only); its
//   GPIOs are outputs bound to module events. led(true) binds the LED GPIO (option `ledGpio`,
//   default 0) as an output to event 0x85 "match: wait for finger", active high (0x82): GW with
//   param = GPIO, flag = mode 2 (output), size = 8 bytes of data (event, level, interval, blink
//   period: four little-endian 16-bit words), then 0x0A. The LED then lights whenever the module
//   waits for a finger. led(false) disables the GPIO (mode 0, no data). The size field counts
//   bytes, following the general rule of the packet protocol.
// - CA while ST waits: the module ends ST with CANCELED, then answers CA with SUCCESS.
// - Parameters written by open() are not saved to the module's flash (no SF): open() writes them
//   again after every power-up.
//
// Reliability:
// - The receiver resynchronises on garbage: bytes before a start code are skipped; a 13-byte
//   candidate that fails is searched for the next start code, so a packet that follows line noise
//   is still found. A candidate whose checksum or end code (not both) is wrong is a damaged
//   packet: if no good answer follows within `graceMs`, the command fails with FP_ERR_PROTOCOL.
// - A data length of zero or above `maxTemplateBytes` is refused (FP_ERR_PROTOCOL) without
//   waiting for the data.
// - Packets for another command than the one in flight (a late answer) are ignored; their data
//   is skipped.
// - No answer in time: the driver sends CA as a probe. If the module answers CA, the command
//   failed with FP_ERR_TIMEOUT (the module is there but hung or slow); if not, FP_ERR_NO_MODULE
//   (unplugged, unpowered or wrong baud rate).
// Calls are queued: one command on the line at a time. Callbacks always run from a timer or from
// the UART receiver, never inside the call. `onHealth` hears the outcome of every command (the
// module answered, or not: no answer, damaged packets), so that a service can tell a module that
// stopped answering; a cancelled capture tells nothing.

import type { Timers, Uart } from "../platform/platform.ts";

export interface FpError {
  code: number;
  message: string;
}

export interface FingerprintModuleOptions {
  uart: Uart;
  timers: Timers;
  /** How long to wait for the answer to a command other than a scan (ms). Default 1000. */
  timeoutMs?: number;
  /** How long the module waits for a finger (s, 1..20); open() writes it. Default 10. */
  scanSeconds?: number;
  /** Time allowed from SCAN_SUCCESS to the template (extraction, ms). Default 2000. */
  extractMs?: number;
  /** Largest template accepted (bytes). Default 2048. */
  maxTemplateBytes?: number;
  /** After a damaged packet, how long a good answer may still come (ms). Default 50. */
  graceMs?: number;
  /** The module GPIO wired to the finger-guide LED (0..7). Default 0. */
  ledGpio?: number;
}

export interface FpPacket {
  cmd: number;
  param: number;
  size: number;
  flag: number;
  data: Uint8Array | null;
}

export interface FpStats {
  packets: number;
  /** Damaged packets (bad checksum or end code). */
  damaged: number;
  /** Bytes skipped while hunting for a start code. */
  garbage: number;
  /** Good packets that answered no command in flight. */
  stale: number;
  /** Packets refused for their data length. */
  oversize: number;
}

// Error codes reported to callbacks.
export const FP_ERR_NO_FINGER = 1; // no finger on the sensor within the module's timeout
export const FP_ERR_POOR_IMAGE = 2; // the image was too poor to extract minutiae
export const FP_ERR_TIMEOUT = 3; // the module is there (answers CA) but did not answer in time
export const FP_ERR_NO_MODULE = 4; // nothing answers: unplugged, unpowered, wrong baud rate
export const FP_ERR_PROTOCOL = 5; // damaged packet, bad length, unterminated or non-ISO data
export const FP_ERR_BUSY = 6; // the module reported BUSY
export const FP_ERR_CANCELLED = 7; // cancel() was called
export const FP_ERR_MODULE = 8; // any other error code from the module
export const FP_ERR_BAD_ARGUMENT = 9; // rejected by the driver before anything was sent
export const FP_ERR_CLOSED = 10; // close() was called

// Protocol constants.
export const UF_START = 0x40;
export const UF_END = 0x0a;
export const UF_PACKET_SIZE = 13;

export const UF_CMD_SW = 0x01; // write system parameter
export const UF_CMD_SF = 0x02; // save system parameters
export const UF_CMD_SR = 0x03; // read system parameter
export const UF_CMD_ST = 0x21; // scan template
export const UF_CMD_GW = 0x37; // write GPIO configuration
export const UF_CMD_CA = 0x60; // cancel

export const UF_RET_SUCCESS = 0x61;
export const UF_RET_SCAN_SUCCESS = 0x62;
export const UF_RET_SCAN_FAIL = 0x63;
export const UF_RET_NOT_FOUND = 0x69;
export const UF_RET_NOT_MATCH = 0x6a;
export const UF_RET_TRY_AGAIN = 0x6b;
export const UF_RET_TIME_OUT = 0x6c;
export const UF_RET_MEM_FULL = 0x6d;
export const UF_RET_FINGER_LIMIT = 0x72;
export const UF_RET_UNSUPPORTED = 0x75;
export const UF_RET_BUSY = 0x80;
export const UF_RET_CANCELED = 0x81;
export const UF_RET_DATA_ERROR = 0x82;
export const UF_RET_FAKE_DETECTED = 0xb0;

export const UF_PARAM_TIMEOUT = 0x62;
export const UF_PARAM_TEMPLATE_SIZE = 0x64;
export const UF_PARAM_FIRMWARE_VERSION = 0x6e;
export const UF_PARAM_SEND_SCAN_SUCCESS = 0x75;
export const UF_PARAM_TEMPLATE_TYPE = 0x96;

export const UF_TEMPLATE_SUPREMA = 0x30;
export const UF_TEMPLATE_ISO = 0x31;
export const UF_TEMPLATE_ANSI = 0x32;

export const UF_GPIO_DISABLE = 0;
export const UF_GPIO_OUTPUT = 2;
export const UF_GPIO_OUT_MATCH_WAIT_FINGER = 0x85;
export const UF_GPIO_OUT_ACTIVE_HIGH = 0x82;

/** Worst-case line speed assumed for the time a template takes to arrive (bit/s). */
const SLOWEST_BAUD = 9600;

const ST_HEADER = 0;
const ST_DATA = 1;
const ST_END = 2;

function fpError(code: number, message: string): FpError {
  return { code: code, message: message };
}

function hex2(n: number): string {
  const s = n.toString(16);
  return s.length < 2 ? "0x0" + s : "0x" + s;
}

function readLe32(b: Uint8Array, at: number): number {
  return b[at] + b[at + 1] * 0x100 + b[at + 2] * 0x10000 + b[at + 3] * 0x1000000;
}

function writeLe32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

/** The UniFinger checksum: sum of the first 11 bytes of a packet, modulo 256. */
export function ufChecksum(packet: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum += packet[i];
  return sum & 0xff;
}

/**
 * A request: the 13-byte packet, then, when `data` is given, the data and a closing 0x0A.
 * `size` is written as given (for SW it is the value, for data it should be data.length).
 */
export function ufRequest(cmd: number, param: number, size: number, flag: number, data: Uint8Array | null): Uint8Array {
  const n = data === null ? UF_PACKET_SIZE : UF_PACKET_SIZE + data.length + 1;
  const out = new Uint8Array(n);
  out[0] = UF_START;
  out[1] = cmd & 0xff;
  writeLe32(out, 2, param);
  writeLe32(out, 6, size);
  out[10] = flag & 0xff;
  out[11] = ufChecksum(out);
  out[12] = UF_END;
  if (data !== null) {
    out.set(data, UF_PACKET_SIZE);
    out[n - 1] = UF_END;
  }
  return out;
}

/** Whether a response with this command and flag is followed by `size` bytes of data. */
export function ufCarriesData(cmd: number, flag: number): boolean {
  return cmd === UF_CMD_ST && flag === UF_RET_SUCCESS;
}

function cmdName(cmd: number): string {
  switch (cmd) {
    case UF_CMD_SW:
      return "SW";
    case UF_CMD_SF:
      return "SF";
    case UF_CMD_SR:
      return "SR";
    case UF_CMD_ST:
      return "ST";
    case UF_CMD_GW:
      return "GW";
    case UF_CMD_CA:
      return "CA";
    default:
      return "command " + hex2(cmd);
  }
}

/** The FpError for an error flag in the answer to `cmd`. */
export function ufFlagError(cmd: number, flag: number): FpError {
  const what = cmdName(cmd) + ": ";
  switch (flag) {
    case UF_RET_TIME_OUT:
      return fpError(FP_ERR_NO_FINGER, what + "no finger on the sensor before the module's timeout (TIME_OUT)");
    case UF_RET_SCAN_FAIL:
      return fpError(FP_ERR_POOR_IMAGE, what + "the finger could not be scanned (SCAN_FAIL)");
    case UF_RET_TRY_AGAIN:
      return fpError(FP_ERR_POOR_IMAGE, what + "image too poor to extract minutiae (TRY_AGAIN)");
    case UF_RET_BUSY:
      return fpError(FP_ERR_BUSY, what + "the module is busy (BUSY)");
    case UF_RET_CANCELED:
      return fpError(FP_ERR_CANCELLED, what + "cancelled (CANCELED)");
    case UF_RET_NOT_FOUND:
      return fpError(FP_ERR_MODULE, what + "not found (NOT_FOUND)");
    case UF_RET_UNSUPPORTED:
      return fpError(FP_ERR_MODULE, what + "not supported by this module (UNSUPPORTED)");
    case UF_RET_FAKE_DETECTED:
      return fpError(FP_ERR_MODULE, what + "fake finger detected (FAKE_DETECTED)");
    case UF_RET_DATA_ERROR:
      return fpError(FP_ERR_MODULE, what + "the module refused the data (DATA_ERROR)");
    default:
      return fpError(FP_ERR_MODULE, what + "module error " + hex2(flag));
  }
}

type PacketCallback = (err: FpError | null, pkt: FpPacket | null) => void;

interface FpJob {
  capture: boolean;
  run: (done: () => void) => void;
  fail: (err: FpError) => void;
}

export class FingerprintModule {
  /** The firmware version the module reported in open() (4 characters), "" before. */
  firmwareVersion = "";
  readonly stats: FpStats = { packets: 0, damaged: 0, garbage: 0, stale: 0, oversize: 0 };
  /**
   * Called at the end of every command, before its caller's callback: null when the module
   * answered (an error flag is an answer), else why not (FP_ERR_NO_MODULE, FP_ERR_TIMEOUT,
   * FP_ERR_PROTOCOL). One listener.
   */
  onHealth: ((why: string | null) => void) | null = null;

  private _uart: Uart;
  private _timers: Timers;
  private _timeoutMs: number;
  private _scanSeconds: number;
  private _extractMs: number;
  private _maxTemplate: number;
  private _graceMs: number;
  private _ledGpio: number;

  private _queue: FpJob[] = [];
  private _current: FpJob | null = null;
  private _running = false;
  private _closed = false;

  // Receiver.
  private _hdr = new Uint8Array(UF_PACKET_SIZE);
  private _hdrLen = 0;
  private _state = ST_HEADER;
  private _pkt: FpPacket | null = null;
  private _dataLen = 0;

  // The command in flight.
  private _waitCmd = -1;
  private _waitCb: PacketCallback | null = null;
  private _damage = "";
  private _timer = 0;
  private _timerActive = false;
  private _timerKind = 0; // 0 no answer, 1 damaged packet
  private _cancelling = false;

  constructor(options: FingerprintModuleOptions) {
    this._uart = options.uart;
    this._timers = options.timers;
    this._timeoutMs = typeof options.timeoutMs === "number" ? options.timeoutMs : 1000;
    const s = typeof options.scanSeconds === "number" ? Math.floor(options.scanSeconds) : 10;
    this._scanSeconds = s < 1 ? 1 : s > 20 ? 20 : s;
    this._extractMs = typeof options.extractMs === "number" ? options.extractMs : 2000;
    this._maxTemplate = typeof options.maxTemplateBytes === "number" ? options.maxTemplateBytes : 2048;
    this._graceMs = typeof options.graceMs === "number" ? options.graceMs : 50;
    this._ledGpio = typeof options.ledGpio === "number" ? options.ledGpio : 0;
    this._uart.onData((data: Uint8Array) => {
      if (!this._closed) this._receive(data);
    });
  }

  // ---------------------------------------------------------------- public API

  /**
   * Checks that the module answers (reads its firmware version) and configures it: ISO/IEC
   * 19794-2 templates, the finger timeout.
   */
  open(cb: (err: FpError | null) => void): void {
    this._enqueue(
      false,
      (done) => {
        this._command(UF_CMD_SR, 0, 0, UF_PARAM_FIRMWARE_VERSION, null, this._timeoutMs, (err, pkt) => {
          if (err) {
            done();
            cb(err);
            return;
          }
          const p = pkt as FpPacket;
          if (p.flag !== UF_RET_SUCCESS) {
            done();
            cb(ufFlagError(UF_CMD_SR, p.flag));
            return;
          }
          let v = "";
          for (let i = 0; i < 4; i++) {
            const c = Math.floor(p.size / Math.pow(256, i)) & 0xff;
            if (c >= 0x20 && c < 0x7f) v += String.fromCharCode(c);
          }
          this.firmwareVersion = v;
          this._writeParam(UF_PARAM_TEMPLATE_TYPE, UF_TEMPLATE_ISO, (err2) => {
            if (err2) {
              done();
              cb(err2);
              return;
            }
            this._writeParam(UF_PARAM_TIMEOUT, 0x30 + this._scanSeconds, (err3) => {
              done();
              cb(err3);
            });
          });
        });
      },
      cb,
    );
  }

  /**
   * Waits for a finger (up to the scan timeout), scans it and returns the module's ISO/IEC
   * 19794-2 record, byte for byte as the module sent it.
   */
  capture(cb: (err: FpError | null, iso?: Uint8Array) => void): void {
    const timeout = this._scanSeconds * 1000 + this._extractMs + this._timeoutMs;
    this._enqueue(
      true,
      (done) => {
        this._command(UF_CMD_ST, 0, 0, 0, null, timeout, (err, pkt) => {
          done();
          if (err) {
            cb(err);
            return;
          }
          const p = pkt as FpPacket;
          if (p.flag !== UF_RET_SUCCESS) {
            cb(ufFlagError(UF_CMD_ST, p.flag));
            return;
          }
          const d = p.data;
          if (d === null || d.length < 4 || d[0] !== 0x46 || d[1] !== 0x4d || d[2] !== 0x52 || d[3] !== 0x00) {
            cb(fpError(FP_ERR_PROTOCOL, "ST: the module sent a template that is not an ISO/IEC 19794-2 record (no FMR header)"));
            return;
          }
          cb(null, d);
        });
      },
      cb,
    );
  }

  /** Arms (true) or disarms (false) the finger-guide LED: lit while the module waits for a finger. */
  led(on: boolean, cb: (err: FpError | null) => void): void {
    if (this._ledGpio < 0 || this._ledGpio > 7 || Math.floor(this._ledGpio) !== this._ledGpio) {
      this._reject(cb, "led: ledGpio must be 0..7");
      return;
    }
    let data: Uint8Array | null = null;
    if (on) {
      data = new Uint8Array(8);
      data[0] = UF_GPIO_OUT_MATCH_WAIT_FINGER;
      data[2] = UF_GPIO_OUT_ACTIVE_HIGH;
    }
    const mode = on ? UF_GPIO_OUTPUT : UF_GPIO_DISABLE;
    const size = data === null ? 0 : data.length;
    this._enqueue(
      false,
      (done) => {
        this._command(UF_CMD_GW, this._ledGpio, size, mode, data, this._timeoutMs, (err, pkt) => {
          done();
          if (err) cb(err);
          else if ((pkt as FpPacket).flag !== UF_RET_SUCCESS) cb(ufFlagError(UF_CMD_GW, (pkt as FpPacket).flag));
          else cb(null);
        });
      },
      cb,
    );
  }

  /** Reads a system parameter (SR): the value the module reports. */
  readParameter(id: number, cb: (err: FpError | null, value?: number) => void): void {
    if (typeof id !== "number" || id < 0 || id > 255 || Math.floor(id) !== id) {
      this._reject(cb, "readParameter: id must be a byte");
      return;
    }
    this._enqueue(
      false,
      (done) => {
        this._command(UF_CMD_SR, 0, 0, id, null, this._timeoutMs, (err, pkt) => {
          done();
          if (err) cb(err);
          else if ((pkt as FpPacket).flag !== UF_RET_SUCCESS) cb(ufFlagError(UF_CMD_SR, (pkt as FpPacket).flag));
          else cb(null, (pkt as FpPacket).size);
        });
      },
      cb,
    );
  }

  /** Writes a system parameter (SW) in the module's RAM. */
  writeParameter(id: number, value: number, cb: (err: FpError | null) => void): void {
    if (typeof id !== "number" || id < 0 || id > 255 || Math.floor(id) !== id || typeof value !== "number" || value < 0) {
      this._reject(cb, "writeParameter: id must be a byte and value a non-negative number");
      return;
    }
    this._enqueue(
      false,
      (done) => {
        this._writeParam(id, value, (err) => {
          done();
          cb(err);
        });
      },
      cb,
    );
  }

  /** Stops a capture: the one in flight (CA to the module) or queued. Its callback gets FP_ERR_CANCELLED. */
  cancel(): void {
    if (this._closed) return;
    // Queued captures: failed from one timer (no closure per loop turn: Espruino shares a loop's
    // bindings between closures).
    const dropped: FpJob[] = [];
    const kept: FpJob[] = [];
    for (let i = 0; i < this._queue.length; i++) {
      if (this._queue[i].capture) dropped.push(this._queue[i]);
      else kept.push(this._queue[i]);
    }
    if (dropped.length > 0) {
      this._queue = kept;
      this._timers.setTimeout(() => {
        for (let i = 0; i < dropped.length; i++) dropped[i].fail(fpError(FP_ERR_CANCELLED, "capture cancelled"));
      }, 0);
    }
    if (this._current === null || !this._current.capture || this._waitCmd !== UF_CMD_ST || this._cancelling) return;
    // Wait for CA's answer instead of ST's; ST's CANCELED (or late result) becomes a stale packet.
    this._cancelling = true;
    this._waitCmd = UF_CMD_CA;
    this._uart.write(ufRequest(UF_CMD_CA, 0, 0, 0, null));
    this._arm(this._timeoutMs, 0);
  }

  /** Stops the driver: pending calls fail with FP_ERR_CLOSED; received bytes are ignored. */
  close(): void {
    if (this._closed) return;
    this._closed = true;
    this._disarm();
    const pending = this._queue;
    if (this._current !== null) pending.unshift(this._current);
    this._current = null;
    this._queue = [];
    this._running = false;
    this._waitCb = null;
    this._waitCmd = -1;
    this._timers.setTimeout(() => {
      const err = fpError(FP_ERR_CLOSED, "fingerprint driver closed");
      for (let i = 0; i < pending.length; i++) pending[i].fail(err);
    }, 0);
  }

  // ---------------------------------------------------------------- commands

  private _writeParam(id: number, value: number, cb: (err: FpError | null) => void): void {
    this._command(UF_CMD_SW, 0, value, id, null, this._timeoutMs, (err, pkt) => {
      if (err) cb(err);
      else if ((pkt as FpPacket).flag !== UF_RET_SUCCESS) {
        const e = ufFlagError(UF_CMD_SW, (pkt as FpPacket).flag);
        cb(fpError(e.code, e.message + " (parameter " + hex2(id) + ")"));
      } else cb(null);
    });
  }

  /**
   * Sends one request and waits for the packet that answers it (same command byte, intermediate
   * SCAN_SUCCESS skipped). Errors here are transport errors only; the flag is the caller's.
   */
  private _command(
    cmd: number,
    param: number,
    size: number,
    flag: number,
    data: Uint8Array | null,
    timeoutMs: number,
    cb: PacketCallback,
  ): void {
    this._waitCmd = cmd;
    this._damage = "";
    this._cancelling = false;
    this._waitCb = (err, pkt) => {
      if (this._cancelling) {
        // cancel() switched the wait to CA's answer: whatever came (or not), the capture is over.
        this._cancelling = false;
        cb(fpError(FP_ERR_CANCELLED, "capture cancelled"), null);
        return;
      }
      if (err && err.code === -1) {
        // No answer in time: probe with CA to tell a hung module from a missing one.
        this._probe(cmd, timeoutMs, cb);
        return;
      }
      this._health(err);
      cb(err, pkt);
    };
    this._uart.write(ufRequest(cmd, param, size, flag, data));
    this._arm(timeoutMs, 0);
  }

  private _probe(cmd: number, timeoutMs: number, cb: PacketCallback): void {
    if (cmd === UF_CMD_CA) {
      const e = fpError(FP_ERR_NO_MODULE, "fingerprint module does not answer (CA)");
      this._health(e);
      cb(e, null);
      return;
    }
    this._waitCmd = UF_CMD_CA;
    this._damage = "";
    this._waitCb = (err) => {
      const e =
        err && err.code === -1
          ? fpError(FP_ERR_NO_MODULE, "fingerprint module does not answer (" + cmdName(cmd) + ", then CA)")
          : fpError(FP_ERR_TIMEOUT, "fingerprint module did not answer " + cmdName(cmd) + " within " + timeoutMs + " ms (it answers CA)");
      this._health(e);
      cb(e, null);
    };
    this._uart.write(ufRequest(UF_CMD_CA, 0, 0, 0, null));
    this._arm(this._timeoutMs, 0);
  }

  private _health(err: FpError | null): void {
    const h = this.onHealth;
    if (h !== null) h(err === null ? null : err.message);
  }

  private _finish(err: FpError | null, pkt: FpPacket | null): void {
    const cb = this._waitCb;
    if (cb === null) return;
    this._disarm();
    this._waitCb = null;
    this._waitCmd = -1;
    cb(err, pkt);
  }

  private _arm(ms: number, kind: number): void {
    this._disarm();
    this._timerKind = kind;
    this._timerActive = true;
    this._timer = this._timers.setTimeout(() => {
      this._timerActive = false;
      if (this._closed || this._waitCb === null) return;
      // Whatever was half received is lost: the next packet starts from a clean receiver.
      this._state = ST_HEADER;
      this._pkt = null;
      this._hdrLen = 0;
      if (this._timerKind === 1) this._finish(fpError(FP_ERR_PROTOCOL, this._damage), null);
      else this._finish(fpError(-1, "no answer"), null);
    }, ms);
  }

  private _disarm(): void {
    if (this._timerActive) this._timers.clearTimeout(this._timer);
    this._timerActive = false;
  }

  // ---------------------------------------------------------------- receiver

  private _receive(data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const b = data[i];
      if (this._state === ST_DATA) {
        const p = this._pkt as FpPacket;
        (p.data as Uint8Array)[this._dataLen++] = b;
        if (this._dataLen === p.size) this._state = ST_END;
        continue;
      }
      if (this._state === ST_END) {
        this._state = ST_HEADER;
        const p = this._pkt as FpPacket;
        this._pkt = null;
        if (b === UF_END) {
          this._deliver(p);
          continue;
        }
        if (p.cmd === this._waitCmd) {
          this._damaged(cmdName(p.cmd) + ": data not closed by 0x0A (" + p.size + " bytes announced)");
        } else {
          this.stats.damaged++;
        }
        // The byte may start the next packet: fall through to the header hunt.
      }
      if (this._hdrLen === 0 && b !== UF_START) {
        this.stats.garbage++;
        continue;
      }
      this._hdr[this._hdrLen++] = b;
      if (this._hdrLen === UF_PACKET_SIZE) this._header();
    }
  }

  private _header(): void {
    const h = this._hdr;
    const endOk = h[12] === UF_END;
    const sumOk = h[11] === ufChecksum(h);
    if (endOk && sumOk) {
      this._hdrLen = 0;
      const p: FpPacket = { cmd: h[1], param: readLe32(h, 2), size: readLe32(h, 6), flag: h[10], data: null };
      if (!ufCarriesData(p.cmd, p.flag)) {
        this._deliver(p);
        return;
      }
      if (p.size === 0 || p.size > this._maxTemplate) {
        this.stats.oversize++;
        if (this._waitCb !== null && p.cmd === this._waitCmd) {
          this._finish(
            fpError(FP_ERR_PROTOCOL, cmdName(p.cmd) + ": data length " + p.size + " refused (limit " + this._maxTemplate + ")"),
            null,
          );
        }
        return;
      }
      p.data = new Uint8Array(p.size);
      this._pkt = p;
      this._dataLen = 0;
      this._state = ST_DATA;
      if (this._waitCb !== null && p.cmd === this._waitCmd) {
        this._arm(this._timeoutMs + Math.ceil((p.size * 10 * 1000) / SLOWEST_BAUD), 0);
      }
      return;
    }
    if (endOk || sumOk) {
      this._damaged("damaged packet from the module (" + (endOk ? "bad checksum" : "bad end code") + ")");
    }
    // Resynchronise: the next start code inside the candidate may begin the real packet.
    let k = 1;
    while (k < UF_PACKET_SIZE && h[k] !== UF_START) k++;
    this.stats.garbage += k;
    for (let j = k; j < UF_PACKET_SIZE; j++) h[j - k] = h[j];
    this._hdrLen = UF_PACKET_SIZE - k;
  }

  private _damaged(why: string): void {
    this.stats.damaged++;
    if (this._waitCb === null) return;
    if (this._damage === "") this._damage = why;
    // A good answer may still follow (the damaged candidate was noise); wait a little for it.
    this._arm(this._graceMs, 1);
  }

  private _deliver(p: FpPacket): void {
    this.stats.packets++;
    if (this._waitCb === null || p.cmd !== this._waitCmd) {
      this.stats.stale++;
      return;
    }
    if (p.cmd === UF_CMD_ST && p.flag === UF_RET_SCAN_SUCCESS) {
      // Scanned; extraction and the template follow.
      this._damage = "";
      this._arm(this._extractMs + this._timeoutMs, 0);
      return;
    }
    this._finish(null, p);
  }

  // ---------------------------------------------------------------- queue

  private _enqueue(capture: boolean, run: (done: () => void) => void, fail: (err: FpError) => void): void {
    if (this._closed) {
      this._timers.setTimeout(() => {
        fail(fpError(FP_ERR_CLOSED, "fingerprint driver closed"));
      }, 0);
      return;
    }
    this._queue.push({ capture: capture, run: run, fail: fail });
    if (!this._running) {
      this._running = true;
      this._timers.setTimeout(() => {
        this._pump();
      }, 0);
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
      this._timers.setTimeout(() => {
        this._pump();
      }, 0);
    });
  }

  private _reject(cb: (err: FpError) => void, message: string): void {
    this._timers.setTimeout(() => {
      cb(fpError(FP_ERR_BAD_ARGUMENT, message));
    }, 0);
  }
}
