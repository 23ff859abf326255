// A model of a serial ESC/POS thermal receipt printer (Node side): it parses the byte stream the
// way such a printer does, renders what it prints as text lines with their modes, cuts receipts,
// and answers the status commands, so the firmware's printer driver (device/drivers/
// escpos_printer.ts) is tested against the command set, not against a mock of itself.
//
// What it follows (ESC/POS as documented by Epson, Bixolon, Citizen for their receipt printers):
// - Real-time commands DLE EOT n (10 04 n) are answered as soon as they arrive, even offline:
//     n=1 printer status: 0x12 | 0x08 when offline;
//     n=2 offline cause: 0x12 | 0x04 cover open | 0x20 stopped by paper end | 0x40 error;
//     n=3 error status: 0x12 (no error modelled);
//     n=4 roll paper sensor: 0x12 | 0x0C near end | 0x60 paper end.
// - GS r 1 / 49 (1D 72 n) is answered in stream order, once what came before it is printed:
//   0x03 near end | 0x0C paper end. GS r 2 / 50 (drawer) answers 0x00. A printer stopped by a
//   paper end or an open cover is offline and does not execute it (no answer).
// - ESC @ initialise; ESC a n justification (0/48 left, 1/49 centre, 2/50 right); ESC E n
//   emphasis (bit 0); ESC ! n print mode (bit 3 emphasis, bit 4 double height, bit 5 double
//   width); GS ! n size (bits 4-6 width - 1, bits 0-2 height - 1); ESC d n print and feed n lines;
//   LF prints the line; CR is ignored (auto line feed off); GS V m (0/48 full, 1/49 partial cut)
//   and GS V m n (65/66: feed n lines, then cut) cut the receipt. A line longer than the columns
//   at its width wraps, as a printer does.
// - Offline (cover open, or paper ran out): print data is discarded (a simplification of a
//   printer whose receive buffer fills); real-time commands are still answered.
// - Anything else starting with ESC or GS is recorded in `unknown` (the driver should send none).

import type { Uart } from "../../device/platform/platform.ts";
import { UartPair, type UartPairOptions } from "./uart_pair.ts";

export interface PrintedLine {
  text: string;
  align: "left" | "center" | "right";
  bold: boolean;
  /** Character width and height multipliers (1..8). */
  width: number;
  height: number;
}

export interface Receipt {
  lines: PrintedLine[];
  /** False while the receipt is still on the printer (not cut yet). */
  cut: boolean;
}

export interface ThermalPrinterOptions extends UartPairOptions {
  /** Columns of font A at width 1 (32 on 58 mm paper). */
  columns?: number;
  /** Paper left, in printed lines (a double-height line takes 2); Infinity by default. */
  paperLines?: number;
  /** The near-end sensor trips when fewer lines than this are left. */
  nearEndLines?: number;
}

const DLE = 0x10;
const EOT = 0x04;
const ESC = 0x1b;
const GS = 0x1d;

export class ThermalPrinterModel {
  readonly pair: UartPair;
  /** The firmware's end of the serial line. */
  readonly uart: Uart;
  readonly columns: number;
  receipts: Receipt[] = [];
  /** Unknown command bytes seen, as "ESC 0x.." / "GS 0x..". */
  unknown: string[] = [];
  /** Print bytes discarded while offline. */
  discarded = 0;
  coverOpen = false;
  paperLines: number;
  nearEndLines: number;
  /** True once the paper ran out; stays until loadPaper(). */
  paperEndStop = false;

  private pending: number[] = [];
  private line = "";
  private align: PrintedLine["align"] = "left";
  private bold = false;
  private width = 1;
  private height = 1;

  constructor(options: ThermalPrinterOptions) {
    this.pair = new UartPair(options);
    this.uart = this.pair.device;
    this.columns = options.columns ?? 32;
    this.paperLines = options.paperLines ?? Infinity;
    this.nearEndLines = options.nearEndLines ?? 0;
    this.pair.chip.onData((d) => this.receive(d));
  }

  get online(): boolean {
    return !this.coverOpen && !this.paperEndStop && this.paperLines > 0;
  }

  get paperOut(): boolean {
    return this.paperLines <= 0;
  }

  setCoverOpen(open: boolean): void {
    this.coverOpen = open;
  }

  /** Loads a roll: `lines` of paper (Infinity by default); clears the paper-end stop. */
  loadPaper(lines = Infinity): void {
    this.paperLines = lines;
    this.paperEndStop = false;
  }

  /** The receipt being printed or last cut, as plain text lines (alignment applied). */
  text(index = this.receipts.length - 1): string[] {
    const r = this.receipts[index];
    if (!r) return [];
    return r.lines.map((l) => {
      const cols = Math.floor(this.columns / l.width);
      const pad = Math.max(0, cols - l.text.length);
      if (l.align === "center") return " ".repeat(Math.floor(pad / 2)) + l.text;
      if (l.align === "right") return " ".repeat(pad) + l.text;
      return l.text;
    });
  }

  /** Receipts that were cut (complete). */
  cutReceipts(): Receipt[] {
    return this.receipts.filter((r) => r.cut);
  }

  private respond(b: number): void {
    this.pair.chip.write(Uint8Array.of(b));
  }

  private receive(data: Uint8Array): void {
    for (const b of data) {
      this.pending.push(b);
      this.parse();
    }
  }

  /** Consumes complete commands from `pending`. */
  private parse(): void {
    for (;;) {
      const p = this.pending;
      if (p.length === 0) return;
      const b = p[0];
      if (b === DLE) {
        if (p.length < 2) return;
        if (p[1] !== EOT) {
          this.unknown.push("DLE 0x" + p[1].toString(16));
          p.splice(0, 2);
          continue;
        }
        if (p.length < 3) return;
        this.realtimeStatus(p[2]);
        p.splice(0, 3);
        continue;
      }
      if (b === ESC) {
        if (p.length < 2) return;
        const c = p[1];
        if (c === 0x40) {
          p.splice(0, 2);
          this.ifOnline(() => this.init());
          continue;
        }
        if (c === 0x61 || c === 0x45 || c === 0x21 || c === 0x64) {
          if (p.length < 3) return;
          const n = p[2];
          p.splice(0, 3);
          this.ifOnline(() => {
            if (c === 0x61) this.align = n === 1 || n === 49 ? "center" : n === 2 || n === 50 ? "right" : "left";
            else if (c === 0x45) this.bold = (n & 1) === 1;
            else if (c === 0x21) {
              this.bold = (n & 0x08) !== 0;
              this.height = n & 0x10 ? 2 : 1;
              this.width = n & 0x20 ? 2 : 1;
            } else {
              // Print and feed n lines: a line in the buffer takes the first of them.
              const printed = this.line.length > 0;
              this.printLine();
              for (let i = printed ? 1 : 0; i < n; i++) this.feed(1);
            }
          });
          continue;
        }
        this.unknown.push("ESC 0x" + c.toString(16));
        p.splice(0, 2);
        continue;
      }
      if (b === GS) {
        if (p.length < 2) return;
        const c = p[1];
        if (c === 0x21 || c === 0x72) {
          if (p.length < 3) return;
          const n = p[2];
          p.splice(0, 3);
          if (c === 0x21) {
            this.ifOnline(() => {
              this.width = ((n >> 4) & 7) + 1;
              this.height = (n & 7) + 1;
            });
          } else if (this.online) {
            // Executed in stream order, only while online.
            if (n === 1 || n === 49) this.respond((this.nearEnd() ? 0x03 : 0) | (this.paperOut ? 0x0c : 0));
            else if (n === 2 || n === 50) this.respond(0x00);
          }
          continue;
        }
        if (c === 0x56) {
          if (p.length < 3) return;
          const m = p[2];
          if (m === 65 || m === 66) {
            if (p.length < 4) return;
            const n = p[3];
            p.splice(0, 4);
            this.ifOnline(() => {
              this.printLine();
              for (let i = 0; i < n; i++) this.feed(1);
              this.cut();
            });
          } else {
            p.splice(0, 3);
            this.ifOnline(() => {
              this.printLine();
              this.cut();
            });
          }
          continue;
        }
        this.unknown.push("GS 0x" + c.toString(16));
        p.splice(0, 2);
        continue;
      }
      p.shift();
      if (!this.online) {
        this.discarded++;
        continue;
      }
      if (b === 0x0a) this.printLine(true);
      else if (b === 0x0d) continue;
      else if (b >= 0x20 && b <= 0x7e) this.addChar(String.fromCharCode(b));
      else this.addChar("?");
    }
  }

  private ifOnline(f: () => void): void {
    if (this.online) f();
    else this.discarded++;
  }

  private nearEnd(): boolean {
    return this.paperLines < this.nearEndLines;
  }

  private realtimeStatus(n: number): void {
    let v = 0x12;
    if (n === 1) {
      if (!this.online) v |= 0x08;
    } else if (n === 2) {
      if (this.coverOpen) v |= 0x04;
      if (this.paperEndStop) v |= 0x20;
    } else if (n === 4) {
      if (this.nearEnd()) v |= 0x0c;
      if (this.paperOut) v |= 0x60;
    } else if (n !== 3) {
      this.unknown.push("DLE EOT " + n);
      return;
    }
    this.respond(v);
  }

  private init(): void {
    this.line = "";
    this.align = "left";
    this.bold = false;
    this.width = 1;
    this.height = 1;
  }

  private current(): Receipt {
    let r = this.receipts[this.receipts.length - 1];
    if (!r || r.cut) {
      r = { lines: [], cut: false };
      this.receipts.push(r);
    }
    return r;
  }

  private addChar(ch: string): void {
    const cols = Math.floor(this.columns / this.width);
    if (this.line.length >= cols) this.printLine(); // wraps
    this.line += ch;
  }

  /** Prints the line buffer (an empty LF feeds a blank line). */
  private printLine(always = false): void {
    if (this.line.length === 0 && !always) return;
    if (!this.consume(this.height)) return;
    this.current().lines.push({ text: this.line, align: this.align, bold: this.bold, width: this.width, height: this.height });
    this.line = "";
  }

  private feed(n: number): void {
    if (this.consume(n)) this.current().lines.push({ text: "", align: "left", bold: false, width: 1, height: n });
  }

  /** Uses `n` lines of paper; false (and the printer stops) when the paper ran out. */
  private consume(n: number): boolean {
    if (this.paperLines < n) {
      this.paperLines = 0;
      this.paperEndStop = true;
      this.line = "";
      return false;
    }
    this.paperLines -= n;
    return true;
  }

  private cut(): void {
    this.current().cut = true;
  }
}
