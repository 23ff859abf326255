// The counting rules, the ballot-log entries, the serial set, the canonical result and the voucher
// text, without I/O.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  ArtifactKind,
  decodeStationResult,
  encodeElectionDefinition,
  encodeStationResult,
} from "../../../protocol/generated/device_codec.ts";
import { CHOICE_BLANK, CHOICE_INVALID, parseElection, type Election } from "./election.ts";
import {
  LOG_BALLOT,
  LOG_CLOSE,
  LOG_ELECTION,
  LOG_JOURNALLED,
  LOG_OPEN,
  LOG_PRINTED,
  LOG_REJECT,
  LOG_RESULT,
  LOG_VERIFIED,
  SerialSet,
  Tally,
  buildResult,
  choicesFit,
  decodeLogEntry,
  encodeLogEntry,
  judgeBallot,
  logEntry,
  serialHash,
} from "./tally.ts";
import { buildVoucher, formatUtc, row, shortDigest, voucherText } from "./voucher.ts";

function election(): Election {
  const d = {
    electionId: "GE-2025",
    stationId: "ST-1",
    contests: [
      { id: "parliament", name: "Parliament", options: ["List A", "List B", "List C"] },
      { id: "council", name: "Council", options: ["Ann", "Bob", "Cid", "Dee", "Eve", "Fay", "Gus", "Hal", "Ivy"], maxMarks: 2 },
    ],
  };
  const p = parseElection(
    { kind: ArtifactKind.ELECTION_DEFINITION, stationId: "ST-1", electionId: "GE-2025", body: encodeElectionDefinition(d) },
    "ST-1",
  );
  assert.equal(p.error, null);
  return p.election!;
}

const m = (...bytes: number[]) => Uint8Array.from(bytes);

test("judging: one mark, blank (unlisted or empty mask), over-vote, multi-mark", () => {
  const e = election();
  assert.deepEqual(judgeBallot(e, [0, 1], [m(0x02), m(0x01, 0x01)]).choices, [1, 0, 8]);
  assert.deepEqual(judgeBallot(e, [], []).choices, [CHOICE_BLANK, CHOICE_BLANK, CHOICE_BLANK]);
  assert.deepEqual(judgeBallot(e, [0], [m(0x00)]).choices, [CHOICE_BLANK, CHOICE_BLANK, CHOICE_BLANK]);
  assert.deepEqual(judgeBallot(e, [0, 1], [m(0x03), m(0x04)]).choices, [CHOICE_INVALID, 2, CHOICE_BLANK], "over-vote only spoils its contest");
  assert.deepEqual(judgeBallot(e, [1], [m(0x07)]).choices, [CHOICE_BLANK, CHOICE_INVALID, CHOICE_INVALID]);
});

test("judging refuses marks that do not fit the definition", () => {
  const e = election();
  assert.match(judgeBallot(e, [2], [m(1)]).error!, /unknown contest index 2/);
  assert.match(judgeBallot(e, [0, 0], [m(1), m(1)]).error!, /listed twice/);
  assert.match(judgeBallot(e, [0], [m(0x08)]).error!, /mark on option 3 of 3/);
  assert.match(judgeBallot(e, [1], [m(0, 0x02)]).error!, /mark on option 9 of 9/);
  assert.match(judgeBallot(e, [0, 1, 1], [m(1), m(1), m(1)]).error!, /too many contests/);
});

test("choicesFit accepts what judging makes and refuses damaged effects", () => {
  const e = election();
  assert.equal(choicesFit(e, [1, 0, 8]), true);
  assert.equal(choicesFit(e, [-2, -2, -2]), true);
  assert.equal(choicesFit(e, [1, 8, 0]), false, "not ascending");
  assert.equal(choicesFit(e, [1, -1, 3]), false, "index after padding");
  assert.equal(choicesFit(e, [3, -1, -1]), false, "no option 3");
  assert.equal(choicesFit(e, [1, -2, 3]), false, "half invalid");
  assert.equal(choicesFit(e, [1, 0]), false, "short");
});

test("the tally counts votes, blanks and invalid per contest", () => {
  const e = election();
  const t = new Tally(e);
  t.apply(e, [1, 0, 8]);
  t.apply(e, [-1, -2, -2]);
  t.apply(e, [1, 2, -1]);
  assert.equal(t.counted, 3);
  assert.deepEqual(t.contestResults(e), [
    { contestId: "parliament", votes: [0, 2, 0], blank: 1, invalid: 0 },
    { contestId: "council", votes: [1, 0, 1, 0, 0, 0, 0, 0, 1], blank: 0, invalid: 1 },
  ]);
});

test("the result encodes canonically: same tally, same bytes, whatever the order of the ballots", () => {
  const e = election();
  const ballots = [
    [1, 0, 8],
    [-1, -2, -2],
    [2, 3, 4],
    [0, -1, -1],
  ];
  const facts = { electionSha256: new Uint8Array(32).fill(9), openedMs: 1762840800000, closedMs: 1762876800000, verifiedVoters: 0, verifiedVotersKnown: false };
  const a = new Tally(e);
  const b = new Tally(e);
  for (const c of ballots) a.apply(e, c);
  for (const c of [...ballots].reverse()) b.apply(e, c);
  const ea = encodeStationResult(buildResult(e, a, facts));
  const eb = encodeStationResult(buildResult(e, b, facts));
  assert.deepEqual(ea, eb);
  const r = decodeStationResult(ea);
  assert.equal(r.ballotsCounted, 4);
  assert.equal(r.verifiedVotersKnown, false);
  a.rejected++;
  assert.notDeepEqual(encodeStationResult(buildResult(e, a, facts)), ea, "a rejection changes the bytes");
});

test("ballot-log entries round-trip, and damaged ones are refused", () => {
  const entries = [
    Object.assign(logEntry(LOG_ELECTION), { sha: new Uint8Array(32).fill(3), text: "GE-2025" }),
    Object.assign(logEntry(LOG_OPEN), { timeMs: 1762840800123 }),
    Object.assign(logEntry(LOG_BALLOT), { scanSeq: 65534, ordinal: 70000, seq: 123456, text: "SN-000123", choices: [1, -1, -2, 127] }),
    Object.assign(logEntry(LOG_JOURNALLED), { ordinal: 70000, seq: 4000000000 }),
    Object.assign(logEntry(LOG_REJECT), { scanSeq: 5, reason: 4, text: "DUP" }),
    Object.assign(logEntry(LOG_VERIFIED), { seq: 431 }),
    Object.assign(logEntry(LOG_CLOSE), { timeMs: 1762876800999, seq: 77 }),
    Object.assign(logEntry(LOG_RESULT), { seq: 78 }),
    Object.assign(logEntry(LOG_PRINTED), { seq: 2 }),
  ];
  for (const en of entries) {
    const bytes = encodeLogEntry(en);
    assert.deepEqual(decodeLogEntry(bytes), en, String.fromCharCode(en.type));
    assert.equal(decodeLogEntry(bytes.subarray(0, bytes.length - 1)), null, "truncated " + String.fromCharCode(en.type));
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    assert.equal(decodeLogEntry(longer), null, "too long " + String.fromCharCode(en.type));
  }
  assert.equal(decodeLogEntry(m(0x99, 1, 2)), null);
  assert.equal(decodeLogEntry(new Uint8Array(0)), null);
});

test("the serial set finds counted serials, confirms hash matches, and is bounded", () => {
  const s = new SerialSet(200);
  const serials: string[] = [];
  for (let i = 0; i < 150; i++) {
    serials.push("SN-" + i);
    assert.equal(s.add(serialHash("SN-" + i), 1000 + i), true);
  }
  const byLog = (serial: string) => (logSeq: number) => serials[logSeq - 1000] === serial;
  for (let i = 0; i < 150; i += 7) assert.equal(s.find(serialHash("SN-" + i), byLog("SN-" + i)), true);
  assert.equal(s.find(serialHash("SN-999"), byLog("SN-999")), false);
  // Two serials with the same hash: both kept, each confirmed by its own log entry.
  const h = serialHash("SN-3");
  serials.push("COLLIDER");
  assert.equal(s.add(h, 1150), true);
  assert.equal(s.find(h, byLog("COLLIDER")), true);
  assert.equal(s.find(h, byLog("SN-3")), true);
  assert.equal(s.find(h, byLog("NOT-THERE")), false, "a hash match alone is not a duplicate");
  const small = new SerialSet(2);
  assert.equal(small.add(1, 1), true);
  assert.equal(small.add(2, 2), true);
  assert.equal(small.add(3, 3), false);
  assert.equal(small.full(), true);
});

test("formatUtc and row", () => {
  assert.equal(formatUtc(1762876805000), "2025-11-11 16:00:05 UTC");
  assert.equal(formatUtc(951782400000), "2000-02-29 00:00:00 UTC");
  assert.equal(formatUtc(0), "not set");
  assert.equal(row("Blank", "12", 16), "Blank         12");
  assert.equal(row("A very long label indeed", "7", 10), "A very l 7");
});

test("the voucher lists station, election, counts, totals, times, record and digest", () => {
  const e = election();
  const t = new Tally(e);
  t.apply(e, [1, 0, 8]);
  t.apply(e, [-1, -2, -2]);
  t.rejected = 2;
  const result = buildResult(e, t, {
    electionSha256: new Uint8Array(32),
    openedMs: 1762840800000,
    closedMs: 1762876800000,
    verifiedVoters: 3,
    verifiedVotersKnown: true,
  });
  const digest = new Uint8Array(createHash("sha256").update(encodeStationResult(result)).digest());
  const text = voucherText(buildVoucher({ election: e, result, seq: 57, digest, deviceId: "RAD-1", copy: 0, columns: 32 }));
  const all = text.join("\n");
  assert.ok(text.includes(row("Station", "ST-1", 32)));
  assert.ok(text.includes(row("Election", "GE-2025", 32)));
  assert.ok(text.includes(row("2 List B", "1", 32)));
  assert.ok(text.includes(row("9 Ivy", "1", 32)));
  assert.ok(text.includes(row("Blank", "1", 32)));
  assert.ok(text.includes(row("Invalid", "1", 32)));
  assert.ok(text.includes(row("Ballots counted", "2", 32)));
  assert.ok(text.includes(row("Ballots rejected", "2", 32)));
  assert.ok(text.includes(row("Verified voters", "3", 32)));
  assert.ok(text.includes("Closed 2025-11-11 16:00:00 UTC"));
  assert.ok(text.includes(row("Record", "#57", 32)));
  assert.ok(text.includes(row("Digest", shortDigest(digest), 32)));
  assert.equal(shortDigest(digest), createHash("sha256").update(encodeStationResult(result)).digest("hex").slice(0, 8));
  assert.ok(!all.includes("COPY"));
  const copy = voucherText(buildVoucher({ election: e, result, seq: 57, digest, deviceId: "RAD-1", copy: 1, columns: 32 }));
  assert.ok(copy.includes("COPY 1"));
});
