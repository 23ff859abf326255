// Election definitions: what is accepted, and every way a definition is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ArtifactKind,
  encodeElectionDefinition,
  type Contest,
  type ElectionDefinition,
  type SignedArtifact,
} from "../../../protocol/generated/device_codec.ts";
import { MAX_CONTESTS, MAX_OPTIONS, isSaneId, parseElection } from "./election.ts";

const STATION = "ST-0042";

function definition(over: Partial<ElectionDefinition> = {}): ElectionDefinition {
  return {
    electionId: "GE-2025",
    name: "General election",
    stationId: STATION,
    contests: [
      { id: "parliament", name: "Parliament", options: ["List A", "List B", "List C"] },
      { id: "council", name: "Council", options: ["Ann", "Bob", "Cid", "Dee"], maxMarks: 2 },
    ],
    pollsOpenMs: 1762840800000,
    pollsCloseMs: 1762876800000,
    registerSize: 450,
    ...over,
  };
}

function artifact(d: ElectionDefinition, over: Partial<SignedArtifact> = {}): SignedArtifact {
  return {
    kind: ArtifactKind.ELECTION_DEFINITION,
    stationId: d.stationId,
    electionId: d.electionId,
    version: 3,
    issuedMs: 1762000000000,
    body: encodeElectionDefinition(d),
    signature: new Uint8Array(64).fill(7),
    ...over,
  };
}

test("a good definition is accepted with its layout", () => {
  const d = definition();
  const a = artifact(d);
  const p = parseElection(a, STATION);
  assert.equal(p.error, null);
  const e = p.election!;
  assert.equal(e.id, "GE-2025");
  assert.equal(e.version, 3);
  assert.equal(e.registerSize, 450);
  assert.deepEqual(
    e.contests.map((c) => [c.id, c.options.length, c.maxMarks, c.slot, c.slots]),
    [
      ["parliament", 3, 1, 0, 1],
      ["council", 4, 2, 1, 2],
    ],
  );
  assert.equal(e.slots, 3);
  assert.deepEqual(e.body, a.body, "the body is kept as signed (its SHA-256 goes in the result)");
  a.body![0] ^= 0xff;
  assert.notDeepEqual(e.body, a.body, "a copy, not the caller's buffer");
});

test("refused: for another station, in the body or in the artifact", () => {
  assert.match(parseElection(artifact(definition()), "ST-0043").error!, /station ST-0042.*ST-0043/);
  const d = definition();
  assert.match(parseElection(artifact(d, { stationId: "ST-0001" }), STATION).error!, /signed for station ST-0001/);
  assert.match(parseElection(artifact(d, { electionId: "OTHER" }), STATION).error!, /differs/);
  assert.match(parseElection(artifact(d), "").error!, /no station id/);
});

test("refused: wrong artifact kind, empty, undecodable or oversized body", () => {
  const d = definition();
  assert.match(parseElection(artifact(d, { kind: ArtifactKind.STATION_REGISTER }), STATION).error!, /not an election definition/);
  assert.match(parseElection(artifact(d, { body: new Uint8Array(0) }), STATION).error!, /empty/);
  const body = encodeElectionDefinition(d);
  assert.match(parseElection(artifact(d, { body: body.subarray(0, body.length - 1) }), STATION).error!, /does not decode/);
  assert.match(parseElection(artifact(d, { body: Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0x0f) }), STATION).error!, /does not decode/);
  assert.match(parseElection(artifact(d, { body: new Uint8Array(40000) }), STATION).error!, /too large/);
});

test("refused: contests missing, too many, bad ids, duplicates, options, marks", () => {
  const bad = (contests: Contest[]) => parseElection(artifact(definition({ contests })), STATION).error;
  assert.match(bad([])!, /no contests/);
  const many = Array.from({ length: MAX_CONTESTS + 1 }, (_, i) => ({ id: "c" + i, options: ["x"] }));
  assert.match(bad(many)!, /too many contests/);
  assert.match(bad([{ id: "", options: ["x"] }])!, /bad id/);
  assert.match(bad([{ id: "a b", options: ["x"] }])!, /bad id/);
  assert.match(bad([{ id: "c", options: ["x"] }, { id: "c", options: ["y"] }])!, /used twice/);
  assert.match(bad([{ id: "c", options: [] }])!, /no options/);
  assert.match(bad([{ id: "c", options: Array.from({ length: MAX_OPTIONS + 1 }, (_, i) => "o" + i) }])!, /options \(at most/);
  assert.match(bad([{ id: "c", options: ["x", ""] }])!, /option 2 has a bad name/);
  assert.match(bad([{ id: "c", options: ["x", "bad\nname"] }])!, /option 2/);
  assert.match(bad([{ id: "c", options: ["x", "y"], maxMarks: 3 }])!, /max_marks 3/);
  const wide = Array.from({ length: 5 }, (_, i) => ({ id: "c" + i, options: Array.from({ length: 16 }, (_, k) => "o" + k), maxMarks: 16 }));
  assert.match(bad(wide)!, /marks in all/);
});

test("refused: bad election id, station id, polls times", () => {
  assert.match(parseElection(artifact(definition({ electionId: "" })), STATION).error!, /bad election id/);
  assert.match(parseElection(artifact(definition({ pollsCloseMs: 1000 })), STATION).error!, /close before/);
});

test("isSaneId", () => {
  assert.equal(isSaneId("GE-2025/r1:x_y.z"), true);
  assert.equal(isSaneId("x".repeat(65)), false);
  assert.equal(isSaneId("é"), false);
  assert.equal(isSaneId(42), false);
});
