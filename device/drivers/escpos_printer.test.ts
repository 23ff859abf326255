// The ESC/POS printer driver against the thermal printer model over a simulated UART (virtual
// clock): status bits, what a voucher looks like on paper, and every fault the driver must see.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../../simulator/clock/timers.ts";
import { ThermalPrinterModel } from "../../simulator/models/thermal_printer.ts";
import {
  ALIGN_CENTER,
  ALIGN_LEFT,
  ALIGN_RIGHT,
  EscPosPrinter,
  PRINTER_ERR_BUSY,
  PRINTER_ERR_COVER_OPEN,
  PRINTER_ERR_NO_ANSWER,
  PRINTER_ERR_PAPER_OUT,
  encodeJob,
  type PrintLine,
  type PrinterError,
  type PrinterStatus,
} from "./escpos_printer.ts";

function rig(paperLines = Infinity) {
  const clock = new VirtualClock();
  const timers = clock.timers();
  const model = new ThermalPrinterModel({ timers, paperLines, nearEndLines: 5 });
  const printer = new EscPosPrinter({ uart: model.uart, timers });
  return { clock, model, printer };
}

function run<T>(clock: VirtualClock, start: (cb: (err: PrinterError | null, v?: T) => void) => void): { err: PrinterError | null; v?: T } {
  let out: { err: PrinterError | null; v?: T } | null = null;
  start((err, v) => {
    out = { err, v };
  });
  for (let i = 0; i < 2000 && out === null; i++) clock.advance(10);
  assert.ok(out !== null, "the driver answered");
  return out;
}

const LINES: PrintLine[] = [
  { text: "RESULT", align: ALIGN_CENTER, bold: true, big: true },
  { text: "left text", align: ALIGN_LEFT, bold: false, big: false },
  { text: "right", align: ALIGN_RIGHT, bold: true, big: false },
  { text: "Arabic \u0642\u0627\u0626\u0645\u0629", align: ALIGN_LEFT, bold: false, big: false },
];

test("status of a ready printer", () => {
  const r = rig();
  const s = run<PrinterStatus>(r.clock, (cb) => r.printer.status(cb));
  assert.equal(s.err, null);
  assert.deepEqual(s.v, { online: true, coverOpen: false, paperOut: false, paperNearEnd: false, error: false });
});

test("status reports an open cover, a paper end and a near end", () => {
  const r = rig(3);
  r.model.setCoverOpen(true);
  let s = run<PrinterStatus>(r.clock, (cb) => r.printer.status(cb));
  assert.equal(s.v!.coverOpen, true);
  assert.equal(s.v!.online, false);
  assert.equal(s.v!.paperNearEnd, true, "3 lines left, near end at 5");
  r.model.setCoverOpen(false);
  r.model.loadPaper(0);
  s = run<PrinterStatus>(r.clock, (cb) => r.printer.status(cb));
  assert.equal(s.v!.paperOut, true);
  assert.equal(s.v!.coverOpen, false);
});

test("a job prints its lines with their modes, ASCII only, and is cut", () => {
  const r = rig();
  const res = run<void>(r.clock, (cb) => r.printer.print(LINES, cb));
  assert.equal(res.err, null);
  const receipts = r.model.cutReceipts();
  assert.equal(receipts.length, 1);
  const printed = receipts[0].lines.filter((l) => l.text !== "");
  assert.deepEqual(
    printed.map((l) => [l.text, l.align, l.bold, l.width, l.height]),
    [
      ["RESULT", "center", true, 2, 2],
      ["left text", "left", false, 1, 1],
      ["right", "right", true, 1, 1],
      ["Arabic ?????", "left", false, 1, 1],
    ],
  );
  const text = r.model.text();
  assert.equal(text[0], " ".repeat(5) + "RESULT", "centred in 16 double-width columns");
  assert.equal(text[2], " ".repeat(27) + "right");
  assert.deepEqual(r.model.unknown, [], "the driver sends only commands the printer knows");
});

test("lines are cut to the columns (half for big text)", () => {
  const job = encodeJob([{ text: "x".repeat(40), align: ALIGN_LEFT, bold: false, big: false }], 32);
  const count = job.filter((b) => b === 0x78).length;
  assert.equal(count, 32);
  const big = encodeJob([{ text: "y".repeat(40), align: ALIGN_LEFT, bold: false, big: true }], 32);
  assert.equal(big.filter((b) => b === 0x79).length, 16);
});

test("cover open: the job is refused and nothing is printed", () => {
  const r = rig();
  r.model.setCoverOpen(true);
  const res = run<void>(r.clock, (cb) => r.printer.print(LINES, cb));
  assert.equal(res.err!.code, PRINTER_ERR_COVER_OPEN);
  assert.equal(r.model.receipts.length, 0);
});

test("no paper: the job is refused", () => {
  const r = rig(0);
  const res = run<void>(r.clock, (cb) => r.printer.print(LINES, cb));
  assert.equal(res.err!.code, PRINTER_ERR_PAPER_OUT);
  assert.equal(r.model.receipts.length, 0);
});

test("paper runs out in the middle of a job: PAPER_OUT, the receipt is not cut; after loading paper it prints", () => {
  const r = rig(3);
  const res = run<void>(r.clock, (cb) => r.printer.print(LINES, cb));
  assert.equal(res.err!.code, PRINTER_ERR_PAPER_OUT);
  assert.equal(r.model.cutReceipts().length, 0);
  assert.ok(r.model.discarded > 0, "the rest of the job was lost");
  r.model.loadPaper();
  const again = run<void>(r.clock, (cb) => r.printer.print(LINES, cb));
  assert.equal(again.err, null);
  assert.equal(r.model.cutReceipts().length, 1);
});

test("a printer that does not answer: NO_ANSWER", () => {
  const r = rig();
  r.model.pair.setConnected(false);
  const res = run<void>(r.clock, (cb) => r.printer.print(LINES, cb));
  assert.equal(res.err!.code, PRINTER_ERR_NO_ANSWER);
});

test("a second job while one is running: BUSY", () => {
  const r = rig();
  let first: PrinterError | null | undefined;
  r.printer.print(LINES, (err) => {
    first = err;
  });
  const second = run<void>(r.clock, (cb) => r.printer.print(LINES, cb));
  assert.equal(second.err!.code, PRINTER_ERR_BUSY);
  r.clock.advance(1000);
  assert.equal(first, null);
});
