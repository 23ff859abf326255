// The tally service end to end on real parts: the scanner and printer drivers against their
// models over simulated UARTs, the secure element driver against the ATECC608 model (SHA-256 and
// the RESULT signature), the real Journal and Recorder on SimFlash, the ballot log on the data
// flash's role region, all on one virtual clock. Power cuts are injected at every flash write.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { VirtualClock, type SimTimers } from "../../../simulator/clock/timers.ts";
import { PowerCut, SimFlash } from "../../../simulator/models/flash.ts";
import { SimI2cBus } from "../../../simulator/models/i2c_bus.ts";
import { Atecc608Model } from "../../../simulator/models/atecc608.ts";
import { BallotScannerModel, ballotBody, scannerFrame, type SimBallot } from "../../../simulator/models/ballot_scanner.ts";
import { ThermalPrinterModel } from "../../../simulator/models/thermal_printer.ts";
import { verifyP256 } from "../../../test/helpers/ecdsa.ts";
import { SecureElement } from "../../drivers/secure_element.ts";
import {
  BallotScanner,
  NAK_BAD_FRAME,
  NAK_DUPLICATE,
  NAK_MALFORMED,
  NAK_NOT_OPEN,
  NAK_TOO_LARGE,
} from "../../drivers/ballot_scanner.ts";
import { EscPosPrinter, PRINTER_ERR_PAPER_OUT, type PrinterError } from "../../drivers/escpos_printer.ts";
import { Journal } from "../journal.ts";
import { Recorder, lastRecordSeq, signingBytes } from "../recorder.ts";
import { dataRegions } from "../../platform/flash_partition.ts";
import type { ByteLink } from "../../platform/platform.ts";
import { createNodePlatform } from "../../targets/node/node_platform.ts";
import {
  ArtifactKind,
  PollsState,
  RecordKind,
  decodeBallotEffect,
  decodeRecord,
  decodeStationResult,
  encodeElectionDefinition,
  type ElectionDefinition,
  type Record as JournalRecord,
  type SignedArtifact,
  type StationResult,
} from "../../../protocol/generated/device_codec.ts";
import { TallyService } from "./service.ts";
import { LOG_BALLOT, decodeLogEntry } from "./tally.ts";
import { row } from "./voucher.ts";

const STATION = "ST-0042";
const T0 = Date.UTC(2025, 10, 11, 4, 0, 0);
const OPTIONS = [
  ["List A", "List B", "List C"],
  ["Ann", "Bob", "Cid", "Dee", "Eve", "Fay", "Gus", "Hal", "Ivy"],
];
const MAX_MARKS = [1, 2];

function definition(over: Partial<ElectionDefinition> = {}): ElectionDefinition {
  return {
    electionId: "GE-2025",
    name: "General election",
    stationId: STATION,
    contests: [
      { id: "parliament", name: "Parliament", options: OPTIONS[0] },
      { id: "council", name: "Council", options: OPTIONS[1], maxMarks: 2 },
    ],
    registerSize: 450,
    ...over,
  };
}

function artifact(d: ElectionDefinition = definition()): SignedArtifact {
  return {
    kind: ArtifactKind.ELECTION_DEFINITION,
    stationId: d.stationId,
    electionId: d.electionId,
    version: 1,
    issuedMs: T0 - 86400000,
    body: encodeElectionDefinition(d),
    signature: new Uint8Array(64).fill(1),
  };
}

const nullLink: ByteLink = { write() {}, onData() {}, onConnection() {} };

interface Boot {
  timers: SimTimers;
  journal: Journal;
  se: SecureElement;
  recorder: Recorder;
  scanner: BallotScanner;
  printer: EscPosPrinter;
  tally: TallyService;
}

class Rig {
  readonly clock = new VirtualClock();
  /** Timers of the models and the wires: they outlive a reboot of the firmware. */
  readonly line = this.clock.timers();
  readonly journalFlash = new SimFlash({ pageSize: 1024, pageCount: 16, seed: 11 });
  readonly dataFlash = new SimFlash({ pageSize: 256, pageCount: 64, seed: 12 });
  readonly bus = new SimI2cBus();
  readonly seModel: Atecc608Model;
  readonly scanner: BallotScannerModel;
  readonly printer: ThermalPrinterModel;
  readonly logs: string[] = [];
  readonly vouchers: (PrinterError | null)[] = [];
  publicKey: Uint8Array = new Uint8Array(0);
  boot!: Boot;
  boots = 0;
  private wallBase = T0;

  constructor(readonly opts: { paperLines?: number; printRetryMs?: number; maxBallots?: number } = {}) {
    this.seModel = new Atecc608Model({ now: () => this.clock.now() });
    this.bus.attach(0x60, this.seModel);
    this.scanner = new BallotScannerModel({ timers: this.line, resendMs: 300, busyRetryMs: 100 });
    this.printer = new ThermalPrinterModel({ timers: this.line, paperLines: opts.paperLines });
    this.bootUp();
    this.publicKey = this.call<Uint8Array>((cb) => this.boot.se.genKey(0, cb));
  }

  bootUp(): void {
    this.boots++;
    const timers = this.clock.timers();
    const wall = {
      wallMs: () => this.wallBase + this.clock.now(),
      setWallMs: (ms: number) => {
        this.wallBase = ms - this.clock.now();
      },
    };
    const journal = new Journal({ flash: this.journalFlash });
    assert.equal(journal.open().code, 0);
    const se = new SecureElement({ bus: this.bus, timers });
    const recorder = new Recorder({
      journal,
      clock: wall,
      signer: (m, cb) => se.signMessage(0, m, cb),
      onAppended: () => {},
      prevSeq: lastRecordSeq(journal),
    });
    const platform = createNodePlatform({
      identity: { serial: "RAD-000007", hardwareModel: "pollkit-rad-sim", role: 2 },
      timers,
      clock: wall,
      hostLink: nullLink,
      i2c: this.bus,
      flash: this.journalFlash,
      dataFlash: this.dataFlash,
      uarts: { printer: this.printer.uart, scanner: this.scanner.uart },
      resetCause: 1,
      onReboot: () => {},
      onLog: (l) => this.logs.push(l),
    });
    const scanner = new BallotScanner({ uart: platform.uarts.scanner!, timers });
    const printer = new EscPosPrinter({ uart: platform.uarts.printer!, timers });
    const tally = new TallyService({
      platform,
      record: (kind, payload, cb) => recorder.record(kind, payload, cb),
      journal,
      sha256: (d, cb) => se.sha256(d, cb),
      scanner,
      printer,
      roleLog: dataRegions(platform.dataFlash!).roleLog,
      stationId: () => STATION,
      maxBallots: this.opts.maxBallots,
      printRetryMs: this.opts.printRetryMs ?? 0,
      onVoucher: (err) => this.vouchers.push(err),
    });
    this.boot = { timers, journal, se, recorder, scanner, printer, tally };
  }

  /** Power is back (or a clean reboot): the firmware starts again from flash. */
  reboot(): void {
    this.boot.timers.cancelAll();
    this.boot.scanner.close();
    this.boot.printer.close();
    this.journalFlash.disarmPowerCut();
    this.dataFlash.disarmPowerCut();
    this.journalFlash.restorePower();
    this.dataFlash.restorePower();
    this.seModel.powerCycle();
    this.bootUp();
  }

  get tally(): TallyService {
    return this.boot.tally;
  }

  /** Runs the clock; true when a power cut struck (the firmware is dead until reboot()). */
  run(ms: number): boolean {
    try {
      this.clock.advance(ms);
      return false;
    } catch (e) {
      if (e instanceof PowerCut) return true;
      throw e;
    }
  }

  runUntil(done: () => boolean, maxMs = 60000): boolean {
    for (let t = 0; t < maxMs && !done(); t += 10) {
      if (this.run(10)) return true;
    }
    assert.ok(done(), "condition reached in " + maxMs + " ms");
    return false;
  }

  call<T>(start: (cb: (err: { message: string } | null, v?: T) => void) => void): T {
    let out: { err: { message: string } | null; v?: T } | null = null;
    start((err, v) => {
      out = { err, v };
    });
    this.runUntil(() => out !== null);
    assert.equal(out!.err, null);
    return out!.v as T;
  }

  load(a: SignedArtifact = artifact()): string | null {
    let res: string | null | undefined;
    const sync = this.tally.loadElection(a, (err) => {
      res = err;
    });
    if (sync !== null) return sync;
    this.runUntil(() => res !== undefined);
    return res ?? null;
  }

  open(): void {
    assert.equal(this.tally.openPolls(), null);
  }

  /** Feeds ballots and runs until the scanner has an answer for each. */
  feed(ballots: SimBallot[]): void {
    this.scanner.feed(ballots);
    this.settle();
  }

  settle(): void {
    this.runUntil(() => this.scanner.idle());
    this.run(50);
  }

  close(): { result: StationResult | null; err: string | null } {
    let out: { result: StationResult | null; err: string | null } | null = null;
    this.tally.closePolls((result, err) => {
      out = { result, err };
    });
    this.runUntil(() => out !== null);
    return out!;
  }

  /** Every record of the firmware journal (nothing is acknowledged in these tests). */
  records(): { seq: number; r: JournalRecord }[] {
    const out: { seq: number; r: JournalRecord }[] = [];
    this.boot.journal.forEachUnacked(0, (seq, data) => {
      out.push({ seq, r: decodeRecord(data) });
    });
    return out;
  }

  ballotRecords(): { ordinal: number; serial: string; choices: number[] }[] {
    return this.records()
      .filter((x) => x.r.kind === RecordKind.BALLOT)
      .map((x) => {
        const b = decodeBallotEffect(x.r.payload!);
        return { ordinal: b.ordinal!, serial: b.serial!, choices: b.choices! };
      });
  }

  /** The 'B' entries of the ballot log, read from flash by a fresh Journal. */
  logBallots(): { ordinal: number; serial: string; choices: number[] }[] {
    const j = new Journal({ flash: dataRegions(this.dataFlash).roleLog });
    j.open();
    const out: { ordinal: number; serial: string; choices: number[] }[] = [];
    j.forEachUnacked(0, (_seq, data) => {
      const e = decodeLogEntry(data);
      if (e !== null && e.type === LOG_BALLOT) out.push({ ordinal: e.ordinal, serial: e.text, choices: e.choices });
    });
    return out;
  }
}

/** A varied ballot: single marks, blanks (unlisted and empty), over-votes, two-mark votes. */
function ballot(i: number): SimBallot {
  const p = i % 7 === 6 ? [] : i % 11 === 10 ? [0, 1] : [i % 3];
  const c = i % 4 === 3 ? [] : i % 5 === 4 ? [1, 2, 3] : i % 2 === 0 ? [i % 9] : [i % 9, (i + 4) % 9];
  if (i % 13 === 12) return { serial: "SN-" + String(i).padStart(5, "0"), marks: [p] }; // council not listed
  return { serial: "SN-" + String(i).padStart(5, "0"), marks: [p, c] };
}

/** The tally the rules give, computed here independently of the firmware. */
function expected(ballots: SimBallot[]): { counted: number; contests: { votes: number[]; blank: number; invalid: number }[] } {
  const contests = OPTIONS.map((o) => ({ votes: o.map(() => 0), blank: 0, invalid: 0 }));
  const seen = new Set<string>();
  let counted = 0;
  for (const b of ballots) {
    if (seen.has(b.serial)) continue;
    seen.add(b.serial);
    counted++;
    for (let c = 0; c < OPTIONS.length; c++) {
      const k = (b.contests ?? b.marks.map((_, i) => i)).indexOf(c);
      const marks = k < 0 ? [] : b.marks[k];
      if (marks.length === 0) contests[c].blank++;
      else if (marks.length > MAX_MARKS[c]) contests[c].invalid++;
      else for (const o of marks) contests[c].votes[o]++;
    }
  }
  return { counted, contests };
}

function assertTally(r: StationResult, want: ReturnType<typeof expected>, what = ""): void {
  assert.equal(r.ballotsCounted ?? 0, want.counted, what + " ballots counted");
  assert.deepEqual(
    (r.contests ?? []).map((c) => ({ votes: c.votes, blank: c.blank ?? 0, invalid: c.invalid ?? 0 })),
    want.contests,
    what + " contests",
  );
}

/** Every counted ballot has exactly one BALLOT record, and the records agree with the ballot log. */
function assertAgreement(rig: Rig, counted: number, what = ""): void {
  const recs = rig.ballotRecords();
  const log = rig.logBallots();
  assert.deepEqual(
    recs.map((b) => b.ordinal),
    Array.from({ length: counted }, (_, i) => i + 1),
    what + " one BALLOT record per ordinal, in order",
  );
  assert.deepEqual(recs, log, what + " journal records and ballot log agree");
  assert.equal(new Set(log.map((b) => b.serial)).size, counted, what + " no serial twice");
}

// ------------------------------------------------------------------------------------------

test("a run of ballots gives the exact tally; over-votes are invalid, unmarked contests blank", () => {
  const rig = new Rig();
  assert.equal(rig.tally.state(), PollsState.NOT_LOADED);
  assert.equal(rig.load(), null);
  assert.equal(rig.tally.state(), PollsState.READY);
  rig.open();
  assert.equal(rig.tally.state(), PollsState.OPEN);
  const ballots = Array.from({ length: 40 }, (_, i) => ballot(i));
  rig.feed(ballots);
  assert.equal(rig.scanner.acked, 40);
  assert.equal(rig.scanner.rejected, 0);
  assert.deepEqual(
    rig.scanner.accepted.map((a) => a.ordinal),
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  const want = expected(ballots);
  assert.ok(want.contests[0].invalid > 0 && want.contests[0].blank > 0 && want.contests[1].invalid > 0 && want.contests[1].blank > 0, "the run exercises every rule");
  assertTally(rig.tally.snapshot()!, want, "running");
  const closed = rig.close();
  assert.equal(closed.err, null);
  assert.equal(rig.tally.state(), PollsState.CLOSED);
  const r = closed.result!;
  assertTally(r, want, "result");
  assert.equal(r.stationId, STATION);
  assert.equal(r.electionId, "GE-2025");
  assert.deepEqual(r.electionSha256, new Uint8Array(createHash("sha256").update(artifact().body!).digest()));
  assert.equal(r.openedMs, T0 + (r.openedMs! - T0));
  assert.ok(r.closedMs! > r.openedMs!);
  assert.equal(r.ballotsRejected ?? 0, 0);
  assert.equal(r.verifiedVotersKnown ?? false, false);
  assertAgreement(rig, 40);
  // The RESULT record: one, signed by the device key over the record, its payload the result.
  const results = rig.records().filter((x) => x.r.kind === RecordKind.RESULT);
  assert.equal(results.length, 1);
  assert.equal(results[0].seq, rig.tally.resultSeq());
  assert.deepEqual(decodeStationResult(results[0].r.payload!), r);
  assert.deepEqual(results[0].r.payload, rig.tally.resultPayload());
  assert.equal(verifyP256(rig.publicKey, signingBytes(results[0].r), results[0].r.signature!), true, "signature verifies");
});

test("a duplicate serial is rejected: NAK, diverted, counted as rejected, not journalled", () => {
  const rig = new Rig();
  rig.load();
  rig.open();
  rig.feed([ballot(1), ballot(2), { serial: ballot(1).serial, marks: [[2], [5]] }, ballot(3)]);
  assert.equal(rig.scanner.acked, 3);
  assert.deepEqual(rig.scanner.diverted, [{ serial: ballot(1).serial, seq: 3, reason: NAK_DUPLICATE }]);
  const snap = rig.tally.snapshot()!;
  assert.equal(snap.ballotsCounted, 3);
  assert.equal(snap.ballotsRejected, 1);
  assertTally(snap, expected([ballot(1), ballot(2), ballot(3)]));
  assertAgreement(rig, 3);
});

test("ballots before the polls open and after they close are refused", () => {
  const rig = new Rig();
  rig.feed([ballot(1)]);
  assert.deepEqual(rig.scanner.diverted.map((d) => d.reason), [NAK_NOT_OPEN], "no election loaded");
  rig.load();
  rig.feed([ballot(2)]);
  assert.deepEqual(rig.scanner.diverted.map((d) => d.reason), [NAK_NOT_OPEN, NAK_NOT_OPEN], "loaded, not open");
  assert.equal(rig.tally.counts().rejected, 1, "a ballot outside open polls counts as rejected once an election is loaded");
  rig.open();
  rig.feed([ballot(2), ballot(3)]);
  assert.equal(rig.scanner.acked, 2, "the returned ballot counts once the polls are open");
  const closed = rig.close();
  rig.feed([ballot(4)]);
  assert.equal(rig.scanner.diverted.length, 3);
  assert.equal(rig.scanner.diverted[2].reason, NAK_NOT_OPEN);
  assert.equal(closed.result!.ballotsCounted, 2);
  assert.equal(closed.result!.ballotsRejected, 1);
  assert.deepEqual(rig.tally.result(), closed.result, "a ballot after close changes nothing");
  assertAgreement(rig, 2);
});

test("a lost ACK: the scanner's resend is recognised and answered, the ballot counted once", () => {
  const rig = new Rig();
  rig.load();
  rig.open();
  rig.scanner.dropReplies(1);
  rig.feed([ballot(1), ballot(2)]);
  assert.ok(rig.scanner.resends >= 1);
  assert.deepEqual(
    rig.scanner.accepted.map((a) => [a.serial, a.ordinal]),
    [
      [ballot(1).serial, 1],
      [ballot(2).serial, 2],
    ],
  );
  assert.equal(rig.scanner.rejected, 0, "the resend is not taken for a duplicate");
  assertAgreement(rig, 2);
});

test("malformed scanner frames are refused with a NAK and nothing is counted", () => {
  const rig = new Rig();
  rig.load();
  rig.open();
  const good = scannerFrame(ballotBody(100, ballot(1)));
  const badCrc = good.slice();
  badCrc[good.length - 1] ^= 0x01;
  const oversized = Uint8Array.of(0x02, 0x04, 0x00, 0x42, 0x00, 0x65);
  const sends: [string, Uint8Array, number][] = [
    ["bad CRC", badCrc, NAK_BAD_FRAME],
    ["truncated", good.subarray(0, 9), NAK_BAD_FRAME],
    ["oversized", oversized, NAK_TOO_LARGE],
    ["unknown contest index", scannerFrame(ballotBody(101, { serial: "U-1", marks: [[0]], contests: [5] })), NAK_MALFORMED],
    ["more contests than the election", scannerFrame(ballotBody(102, { serial: "U-2", marks: [[0], [1], [2]] })), NAK_MALFORMED],
    ["17 contests", scannerFrame(ballotBody(103, { serial: "U-3", marks: Array.from({ length: 17 }, () => [0]) })), NAK_MALFORMED],
    ["mark on no option", scannerFrame(ballotBody(104, { serial: "U-4", marks: [[3]] })), NAK_MALFORMED],
    ["contest listed twice", scannerFrame(ballotBody(105, { serial: "U-5", marks: [[0], [1]], contests: [1, 1] })), NAK_MALFORMED],
  ];
  for (const [what, bytes, reason] of sends) {
    const before = rig.scanner.replies.length;
    rig.scanner.sendRaw(bytes);
    rig.run(200);
    const got = rig.scanner.replies.slice(before);
    assert.equal(got.length, 1, what + ": one answer");
    assert.equal(got[0].type, "nak", what);
    assert.equal(got[0].reason, reason, what);
  }
  assert.deepEqual(rig.tally.counts(), { counted: 0, rejected: 0 });
  assert.equal(rig.ballotRecords().length, 0);
  assert.equal(rig.logBallots().length, 0);
  rig.feed([ballot(1)]);
  assert.equal(rig.scanner.acked, 1, "a good ballot after all that is counted");
});

test("election definitions for another station, or malformed, are refused; the state stays NOT_LOADED", () => {
  const rig = new Rig();
  assert.match(rig.load(artifact(definition({ stationId: "ST-0099" })))!, /station ST-0099/);
  const bad = artifact();
  bad.body = bad.body!.subarray(0, 5);
  assert.match(rig.load(bad)!, /does not decode/);
  assert.match(rig.load(artifact(definition({ contests: [] })))!, /no contests/);
  assert.match(rig.load({ ...artifact(), kind: ArtifactKind.FIRMWARE })!, /not an election definition/);
  assert.equal(rig.tally.state(), PollsState.NOT_LOADED);
  assert.match(rig.tally.openPolls()!, /no election/);
  assert.equal(rig.load(), null);
});

test("another election is refused while ballots are held; clear() is refused while open, then allows it", () => {
  const rig = new Rig();
  rig.load();
  const other = artifact(definition({ electionId: "BY-2026" }));
  assert.equal(rig.load(other), null, "before anything is counted, a new definition replaces the old");
  assert.equal(rig.tally.election()!.id, "BY-2026");
  rig.open();
  rig.feed([ballot(1)]);
  assert.match(rig.load(artifact())!, /in progress/);
  assert.match(rig.tally.clear()!, /close the polls/);
  rig.close();
  rig.reboot();
  assert.match(rig.load(artifact())!, /holds ballots of election BY-2026/);
  assert.equal(rig.load(other), null);
  assert.equal(rig.tally.state(), PollsState.CLOSED);
  rig.run(2000); // the result's digest is computed again after the reboot
  assert.equal(rig.tally.clear(), null);
  assert.equal(rig.tally.state(), PollsState.NOT_LOADED);
  rig.reboot();
  assert.equal(rig.load(artifact()), null, "the clear survived a reboot");
  assert.equal(rig.tally.state(), PollsState.READY);
  assert.equal(rig.tally.counts().counted, 0);
});

test("a reboot rebuilds the tally, the serial set, the polls state and the verified-voter count", () => {
  const rig = new Rig();
  rig.load();
  rig.open();
  assert.equal(rig.tally.setVerifiedVoters(17), null);
  const ballots = Array.from({ length: 12 }, (_, i) => ballot(i));
  rig.feed(ballots);
  const before = rig.tally.snapshot()!;
  rig.reboot();
  assert.equal(rig.tally.state(), PollsState.NOT_LOADED);
  rig.scanner.feed([ballot(20)]);
  rig.run(1000);
  assert.equal(rig.scanner.rejected, 0, "ballots wait (BUSY) while the election is not yet loaded");
  assert.equal(rig.scanner.acked, 12);
  assert.equal(rig.load(), null);
  assert.equal(rig.tally.state(), PollsState.OPEN);
  rig.settle();
  assert.equal(rig.scanner.acked, 13, "the waiting ballot went in after the load");
  rig.feed([ballot(3)]);
  assert.deepEqual(rig.scanner.diverted.map((d) => [d.serial, d.reason]), [[ballot(3).serial, NAK_DUPLICATE]], "duplicates are still caught");
  const closed = rig.close().result!;
  assertTally(closed, expected([...ballots, ballot(20)]));
  assert.equal(closed.openedMs, before.openedMs);
  assert.equal(closed.verifiedVoters, 17);
  assert.equal(closed.verifiedVotersKnown, true);
  assert.equal(rig.tally.logErrors, 0);
  assertAgreement(rig, 13);
});

test("the scanner's PING is answered with the polls state and the count", () => {
  const rig = new Rig();
  rig.load();
  rig.open();
  rig.feed([ballot(1), ballot(2)]);
  rig.scanner.ping(0x4242);
  rig.run(100);
  const s = rig.scanner.replies.filter((r) => r.type === "status");
  assert.deepEqual(s.map((r) => [r.seq, r.state, r.counted]), [[0x4242, PollsState.OPEN, 2]]);
});

test("the voucher carries the counts, the record number and the digest of the signed result", () => {
  const rig = new Rig();
  rig.load();
  rig.open();
  const ballots = Array.from({ length: 9 }, (_, i) => ballot(i));
  rig.feed(ballots);
  const r = rig.close().result!;
  rig.runUntil(() => rig.vouchers.length > 0);
  assert.equal(rig.vouchers[0], null);
  const receipts = rig.printer.cutReceipts();
  assert.equal(receipts.length, 1);
  const lines = receipts[0].lines.map((l) => l.text);
  const payload = rig.tally.resultPayload()!;
  const digest = createHash("sha256").update(payload).digest("hex").slice(0, 8);
  assert.equal(rig.tally.resultDigest(), digest);
  assert.ok(lines.includes(row("Digest", digest, 32)), "digest printed");
  assert.ok(lines.includes(row("Record", "#" + rig.tally.resultSeq(), 32)), "record number printed");
  assert.ok(lines.includes(row("Station", STATION, 32)));
  assert.ok(lines.includes(row("Ballots counted", String(r.ballotsCounted), 32)));
  const want = expected(ballots);
  for (let c = 0; c < OPTIONS.length; c++) {
    for (let o = 0; o < OPTIONS[c].length; o++) {
      assert.ok(lines.includes(row(o + 1 + " " + OPTIONS[c][o], String(want.contests[c].votes[o]), 32)), `contest ${c} option ${o}`);
    }
  }
  assert.ok(lines.includes(row("Invalid", String(want.contests[0].invalid), 32)));
  assert.ok(receipts[0].lines.some((l) => l.text === "STATION RESULT" && l.bold && l.width === 2));
  assert.equal(rig.tally.voucherStatus().printed, 1);
});

test("a printer out of paper does not hold the result back; the voucher is printed on request", () => {
  const rig = new Rig({ paperLines: 0 });
  rig.load();
  rig.open();
  rig.feed([ballot(1), ballot(2)]);
  const closed = rig.close();
  assert.equal(closed.err, null, "the result is journalled");
  assert.ok(rig.tally.resultSeq() > 0);
  rig.runUntil(() => rig.vouchers.length > 0);
  assert.equal(rig.vouchers[0]!.code, PRINTER_ERR_PAPER_OUT);
  assert.equal(rig.tally.voucherStatus().printed, 0);
  assert.equal(rig.tally.voucherStatus().error!.code, PRINTER_ERR_PAPER_OUT);
  assert.equal(rig.records().filter((x) => x.r.kind === RecordKind.RESULT).length, 1, "in the journal, ready to transmit");
  rig.printer.loadPaper();
  const err = rig.call<void>((cb) => rig.tally.printVoucher((e) => cb(e)));
  assert.equal(err, undefined);
  assert.equal(rig.printer.cutReceipts().length, 1);
  assert.ok(!rig.printer.text(0).some((l) => l.includes("COPY")), "the first complete voucher is the original");
  rig.call<void>((cb) => rig.tally.printVoucher((e) => cb(e)));
  assert.ok(rig.printer.text(1).some((l) => l.includes("COPY 1")), "a reprint says it is a copy");
});

test("paper running out mid-voucher: the voucher is retried automatically once paper is loaded", () => {
  const rig = new Rig({ paperLines: 6, printRetryMs: 5000 });
  rig.load();
  rig.open();
  rig.feed([ballot(1)]);
  assert.equal(rig.close().err, null);
  rig.runUntil(() => rig.vouchers.length > 0);
  assert.equal(rig.vouchers[0]!.code, PRINTER_ERR_PAPER_OUT);
  assert.equal(rig.printer.cutReceipts().length, 0, "the torn voucher was not cut");
  rig.printer.loadPaper();
  rig.runUntil(() => rig.vouchers.length > 1, 20000);
  assert.equal(rig.vouchers[1], null);
  assert.equal(rig.printer.cutReceipts().length, 1);
});

// ------------------------------------------------------------------------------------------
// Power cuts at every flash write.

const RUN = Array.from({ length: 8 }, (_, i) => ballot(i));

/** Counts the flash steps (programmed bytes, erases) of each ballot of RUN, without cuts. */
function stepsPerBallot(): { journal: number; data: number }[] {
  const rig = new Rig();
  rig.load();
  rig.open();
  const out: { journal: number; data: number }[] = [];
  for (const b of RUN) {
    const j0 = rig.journalFlash.steps;
    const d0 = rig.dataFlash.steps;
    rig.feed([b]);
    out.push({ journal: rig.journalFlash.steps - j0, data: rig.dataFlash.steps - d0 });
  }
  return out;
}

function ballotCutScenario(victim: number, flash: "journal" | "data", step: number): void {
  const what = `ballot ${victim}, ${flash} flash, step ${step}`;
  const rig = new Rig();
  rig.load();
  rig.open();
  rig.feed(RUN.slice(0, victim));
  (flash === "journal" ? rig.journalFlash : rig.dataFlash).armPowerCut(step);
  rig.scanner.feed([RUN[victim]]);
  let cut = false;
  for (let t = 0; t < 5000 && !cut && !rig.scanner.idle(); t += 10) cut = rig.run(10);
  assert.ok(cut, what + ": the cut struck");
  rig.run(30); // the wires drain; the firmware is dead
  rig.reboot();
  assert.equal(rig.load(), null, what);
  rig.feed(RUN.slice(victim + 1));
  rig.settle();
  assert.equal(rig.tally.logErrors, 0, what);
  assertTally(rig.tally.snapshot()!, expected(RUN), what);
  assertAgreement(rig, RUN.length, what);
  assert.deepEqual(
    rig.scanner.accepted.map((a) => a.serial),
    RUN.map((b) => b.serial),
    what + ": the scanner got an ACK for every ballot, once",
  );
  assert.equal(rig.scanner.rejected, 0, what + ": no ballot diverted");
}

test("a power cut at every flash write of a ballot: after reboot none lost, none counted twice", () => {
  const steps = stepsPerBallot();
  // The first ballot, and every ballot whose log entries start a new page (more steps).
  const victims = [0, ...steps.map((s, i) => (s.data > steps[0].data ? i : -1)).filter((i) => i > 0)];
  assert.ok(victims.length >= 2, "the run crosses a ballot-log page");
  let scenarios = 0;
  for (const v of victims) {
    for (let k = 0; k < steps[v].journal; k++, scenarios++) ballotCutScenario(v, "journal", k);
    for (let k = 0; k < steps[v].data; k++, scenarios++) ballotCutScenario(v, "data", k);
  }
  assert.ok(scenarios > 100, scenarios + " cut points");
});

test("a power cut at every flash write of closing: one RESULT record, the same bytes, a voucher", () => {
  const ref = new Rig();
  ref.load();
  ref.open();
  ref.feed(RUN);
  const j0 = ref.journalFlash.steps;
  const d0 = ref.dataFlash.steps;
  const refResult = ref.close();
  ref.runUntil(() => ref.vouchers.length > 0);
  const refPayload = ref.tally.resultPayload()!;
  const jSteps = ref.journalFlash.steps - j0;
  const dSteps = ref.dataFlash.steps - d0;
  assert.ok(jSteps > 100 && dSteps > 40);
  const points: ["journal" | "data", number][] = [];
  for (let k = 0; k < jSteps; k++) points.push(["journal", k]);
  for (let k = 0; k < dSteps; k++) points.push(["data", k]);
  for (const [flash, step] of points) {
    const what = `close, ${flash} flash, step ${step}`;
    const rig = new Rig();
    rig.load();
    rig.open();
    rig.feed(RUN);
    (flash === "journal" ? rig.journalFlash : rig.dataFlash).armPowerCut(step);
    let done = false;
    let cut = false;
    try {
      rig.tally.closePolls(() => {
        done = true;
      });
    } catch (e) {
      if (!(e instanceof PowerCut)) throw e;
      cut = true; // the close entry itself was cut
    }
    for (let t = 0; t < 20000 && !cut && !(done && rig.vouchers.length > 0); t += 10) cut = rig.run(10);
    assert.ok(cut, what + ": the cut struck");
    rig.reboot();
    assert.equal(rig.load(), null, what);
    if (rig.tally.state() === PollsState.OPEN) {
      // The close itself was lost: the staff close again.
      assert.equal(rig.close().err, null, what);
    } else {
      assert.equal(rig.tally.state(), PollsState.CLOSED, what);
      rig.runUntil(() => rig.tally.resultSeq() > 0 && rig.tally.resultDigest() !== "", 20000);
      assert.deepEqual(rig.tally.resultPayload(), refPayload, what + ": the result rebuilt from the log has the same bytes");
    }
    rig.runUntil(() => rig.tally.voucherStatus().printed > 0, 20000);
    const results = rig.records().filter((x) => x.r.kind === RecordKind.RESULT);
    assert.equal(results.length, 1, what + ": exactly one RESULT record");
    assert.equal(results[0].seq, rig.tally.resultSeq(), what);
    assert.deepEqual(results[0].r.payload, rig.tally.resultPayload(), what);
    assertTally(decodeStationResult(results[0].r.payload!), expected(RUN), what);
    assert.ok(rig.printer.cutReceipts().length >= 1, what + ": a voucher was printed");
  }
  assert.deepEqual(refResult.result, decodeStationResult(refPayload));
});
