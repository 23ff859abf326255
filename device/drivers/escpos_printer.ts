// Driver for a serial thermal receipt printer speaking ESC/POS (58 mm class, 32 columns of font A).
// Engine subset.
//
// Commands sent (ESC/POS, as documented by the printer makers):
//   ESC @        1B 40        initialise (modes back to default, buffer cleared)
//   ESC a n      1B 61 n      justification: 0 left, 1 centre, 2 right
//   ESC E n      1B 45 n      emphasis (bold) off / on (bit 0)
//   GS ! n       1D 21 n      character size: bits 4-6 width - 1, bits 0-2 height - 1
//   LF           0A           print the line buffer and feed one line
//   ESC d n      1B 64 n      print and feed n lines
//   GS V 66 n    1D 56 42 n   feed n lines and cut (partial cut)
//   DLE EOT n    10 04 n      real-time status (answered at once, even when offline):
//                             n=1 printer: bit 3 offline;
//                             n=2 offline cause: bit 2 cover open, bit 5 stopped by paper end,
//                                 bit 6 error;
//                             n=4 roll paper sensor: bits 2-3 near end, bits 5-6 paper end;
//                             every answer has bits 1 and 4 set and bits 0 and 7 clear.
//   GS r 1       1D 72 01     paper sensor status, answered once the data before it is
//                             processed: bits 0-1 near end, bits 2-3 paper end; bits 4 and 7
//                             clear. A printer stopped by a paper end does not answer it.
//
// print(): checks the real-time status first (offline, cover open, paper out refuse the job),
// sends the job, then GS r 1 as a completion probe: an answer means every byte before it was
// processed; no answer in time means the printer stopped (the real-time status says why), so the
// voucher may be incomplete and the caller prints it again when the fault is cleared.

import type { Timers, Uart } from "../platform/platform.ts";

export const PRINTER_ERR_NO_ANSWER = 1;
export const PRINTER_ERR_PAPER_OUT = 2;
export const PRINTER_ERR_COVER_OPEN = 3;
export const PRINTER_ERR_OFFLINE = 4;
export const PRINTER_ERR_BUSY = 5;
export const PRINTER_ERR_BAD_RESPONSE = 6;
export const PRINTER_ERR_CLOSED = 7;

export const ALIGN_LEFT = 0;
export const ALIGN_CENTER = 1;
export const ALIGN_RIGHT = 2;

export interface PrinterError {
  code: number;
  message: string;
}

export interface PrinterStatus {
  online: boolean;
  coverOpen: boolean;
  /** Printing stopped by a paper end, or the roll sensor sees no paper. */
  paperOut: boolean;
  paperNearEnd: boolean;
  /** The printer reports an error (cutter, head) besides the above. */
  error: boolean;
}

/** One printed line. Text is printed as ASCII; other characters become "?". */
export interface PrintLine {
  text: string;
  align: number;
  bold: boolean;
  /** Double width and height (half as many columns). */
  big: boolean;
}

export interface EscPosPrinterOptions {
  uart: Uart;
  timers: Timers;
  /** Columns of font A at normal size (32 on 58 mm paper, 48 on 80 mm). */
  columns?: number;
  /** Time for a real-time status answer (ms). */
  statusTimeoutMs?: number;
  /** Time for the completion probe after a job (ms). */
  jobTimeoutMs?: number;
}

const DLE = 0x10;
const EOT = 0x04;
const ESC = 0x1b;
const GS = 0x1d;
const LF = 0x0a;

function isRealtimeAnswer(b: number): boolean {
  return (b & 0x93) === 0x12;
}

/** ASCII bytes of a line: printable characters kept, others "?", cut to `max` characters. */
export function lineBytes(text: string, max: number): Uint8Array {
  const n = text.length < max ? text.length : max;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    out[i] = c >= 0x20 && c <= 0x7e ? c : 0x3f;
  }
  return out;
}

/** The ESC/POS bytes of a job: init, the lines with their modes, feed and cut. */
export function encodeJob(lines: PrintLine[], columns: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  function add(b: Uint8Array): void {
    parts.push(b);
    total += b.length;
  }
  function cmd(a: number, b: number, c: number): void {
    const x = new Uint8Array(3);
    x[0] = a;
    x[1] = b;
    x[2] = c;
    add(x);
  }
  const init = new Uint8Array(2);
  init[0] = ESC;
  init[1] = 0x40;
  add(init);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    cmd(ESC, 0x61, l.align === ALIGN_CENTER || l.align === ALIGN_RIGHT ? l.align : ALIGN_LEFT);
    cmd(ESC, 0x45, l.bold ? 1 : 0);
    cmd(GS, 0x21, l.big ? 0x11 : 0x00);
    add(lineBytes(l.text, l.big ? columns >> 1 : columns));
    const lf = new Uint8Array(1);
    lf[0] = LF;
    add(lf);
  }
  cmd(ESC, 0x61, ALIGN_LEFT);
  cmd(ESC, 0x45, 0);
  cmd(GS, 0x21, 0);
  cmd(ESC, 0x64, 2);
  const cut = new Uint8Array(4);
  cut[0] = GS;
  cut[1] = 0x56;
  cut[2] = 66;
  cut[3] = 3;
  add(cut);
  const out = new Uint8Array(total);
  let p = 0;
  for (let i = 0; i < parts.length; i++) {
    out.set(parts[i], p);
    p += parts[i].length;
  }
  return out;
}

export class EscPosPrinter {
  columns: number;
  /** Bytes received that answered no query. */
  strayBytes: number;
  _uart: Uart;
  _timers: Timers;
  _statusMs: number;
  _jobMs: number;
  _busy: boolean;
  _closed: boolean;
  _waiting: ((b: number) => void) | null;
  _timer: number;

  constructor(options: EscPosPrinterOptions) {
    const self = this;
    this._uart = options.uart;
    this._timers = options.timers;
    this.columns = options.columns ?? 32;
    this._statusMs = options.statusTimeoutMs ?? 300;
    this._jobMs = options.jobTimeoutMs ?? 8000;
    this._busy = false;
    this._closed = false;
    this._waiting = null;
    this._timer = -1;
    this.strayBytes = 0;
    this._uart.onData(function (data: Uint8Array) {
      for (let i = 0; i < data.length; i++) self._byte(data[i]);
    });
  }

  /** True while a status query or a job is in progress. */
  busy(): boolean {
    return this._busy;
  }

  /** Reads the real-time status (DLE EOT 1, 2, 4). */
  status(cb: (err: PrinterError | null, st?: PrinterStatus) => void): void {
    const self = this;
    if (!this._start(cb)) return;
    this._status(function (err, st) {
      self._busy = false;
      cb(err, st);
    });
  }

  /** Prints the lines as one voucher and cuts it; cb(null) once the printer has processed it all. */
  print(lines: PrintLine[], cb: (err: PrinterError | null) => void): void {
    const self = this;
    if (!this._start(cb)) return;
    function done(err: PrinterError | null): void {
      self._busy = false;
      cb(err);
    }
    this._status(function (err, st) {
      if (err !== null || st === undefined) {
        done(err);
        return;
      }
      const fault = self._fault(st);
      if (fault !== null) {
        done(fault);
        return;
      }
      self._uart.write(encodeJob(lines, self.columns));
      const probe = new Uint8Array(3);
      probe[0] = GS;
      probe[1] = 0x72;
      probe[2] = 1;
      self._query(probe, self._jobMs, function (b: number) {
        if (b >= 0 && (b & 0x90) === 0) {
          if ((b & 0x0c) !== 0) done({ code: PRINTER_ERR_PAPER_OUT, message: "paper ran out at the end of the voucher" });
          else done(null);
          return;
        }
        if (b >= 0) {
          done({ code: PRINTER_ERR_BAD_RESPONSE, message: "unexpected answer 0x" + b.toString(16) + " to GS r" });
          return;
        }
        // No answer: the printer stopped. Ask why.
        self._status(function (err2, st2) {
          if (err2 !== null || st2 === undefined) done({ code: PRINTER_ERR_NO_ANSWER, message: "printer stopped answering during the voucher" });
          else done(self._fault(st2) ?? { code: PRINTER_ERR_NO_ANSWER, message: "voucher not confirmed by the printer" });
        });
      });
    });
  }

  close(): void {
    this._closed = true;
    this._cancelWait();
  }

  _start(cb: (err: PrinterError) => void): boolean {
    if (this._closed) {
      cb({ code: PRINTER_ERR_CLOSED, message: "printer driver closed" });
      return false;
    }
    if (this._busy) {
      cb({ code: PRINTER_ERR_BUSY, message: "printer busy" });
      return false;
    }
    this._busy = true;
    return true;
  }

  _fault(st: PrinterStatus): PrinterError | null {
    if (st.coverOpen) return { code: PRINTER_ERR_COVER_OPEN, message: "printer cover open" };
    if (st.paperOut) return { code: PRINTER_ERR_PAPER_OUT, message: "printer out of paper" };
    if (!st.online || st.error) return { code: PRINTER_ERR_OFFLINE, message: "printer offline" };
    return null;
  }

  _status(cb: (err: PrinterError | null, st?: PrinterStatus) => void): void {
    const self = this;
    const answers: number[] = [];
    const which = [1, 2, 4];
    function next(): void {
      if (answers.length === which.length) {
        const paper = answers[2];
        cb(null, {
          online: (answers[0] & 0x08) === 0,
          coverOpen: (answers[1] & 0x04) !== 0,
          paperOut: (answers[1] & 0x20) !== 0 || (paper & 0x60) !== 0,
          paperNearEnd: (paper & 0x0c) !== 0,
          error: (answers[1] & 0x40) !== 0,
        });
        return;
      }
      const q = new Uint8Array(3);
      q[0] = DLE;
      q[1] = EOT;
      q[2] = which[answers.length];
      self._query(q, self._statusMs, function (b: number) {
        if (b < 0) cb({ code: PRINTER_ERR_NO_ANSWER, message: "printer does not answer" });
        else if (!isRealtimeAnswer(b)) cb({ code: PRINTER_ERR_BAD_RESPONSE, message: "bad status byte 0x" + b.toString(16) });
        else {
          answers.push(b);
          next();
        }
      });
    }
    next();
  }

  /** Sends a query and waits for one byte; cb(-1) on timeout. */
  _query(bytes: Uint8Array, timeoutMs: number, cb: (b: number) => void): void {
    const self = this;
    this._waiting = cb;
    this._timer = this._timers.setTimeout(function () {
      self._timer = -1;
      const w = self._waiting;
      self._waiting = null;
      if (w !== null) w(-1);
    }, timeoutMs);
    this._uart.write(bytes);
  }

  _cancelWait(): void {
    if (this._timer >= 0) this._timers.clearTimeout(this._timer);
    this._timer = -1;
    this._waiting = null;
  }

  _byte(b: number): void {
    const w = this._waiting;
    if (w === null) {
      this.strayBytes++;
      return;
    }
    this._cancelWait();
    w(b);
  }
}
