// Importing election definitions: commission-signed artifacts (binary, base64, JSON) checked
// against the commission key, JSON definitions, directories, every malformed or forged input
// refused with a clear error and nothing stored, no rollback to an older version.

import assert from "node:assert/strict";
import { sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ArtifactKind, encodeElectionDefinition, encodeSignedArtifact, type ElectionDefinition } from "../../../protocol/generated/device_codec.ts";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { p256Key } from "../testing/signed.ts";
import { commissionKeyHex, ElectionImportError, ElectionIndex, importElection, parseElectionFile, storeElections, withoutField } from "./election.ts";

const commission = p256Key();
const other = p256Key();
const KEY = Buffer.from(commission.publicKey).toString("hex");

const def = (station: string, close: number): ElectionDefinition => ({
  electionId: "E1",
  name: "Election",
  stationId: station,
  contests: [{ id: "c1", name: "Council", options: ["A", "B", "C"], maxMarks: 1 }],
  pollsOpenMs: close > 11 * 3_600_000 ? close - 11 * 3_600_000 : 0,
  pollsCloseMs: close,
  registerSize: 500,
});

function artifact(d: ElectionDefinition, version: number, key = commission.key, tweak?: (a: Record<string, unknown>) => void): Uint8Array {
  const a: Record<string, unknown> = { kind: ArtifactKind.ELECTION_DEFINITION, stationId: d.stationId, electionId: d.electionId, version, issuedMs: 1, body: encodeElectionDefinition(d) };
  if (tweak) tweak(a);
  const unsigned = encodeSignedArtifact(a);
  const signature = new Uint8Array(sign("sha256", unsigned, { key, dsaEncoding: "ieee-p1363" }));
  return encodeSignedArtifact({ ...a, signature });
}

const err = (fn: () => unknown, re: RegExp): void => assert.throws(fn, (e: unknown) => e instanceof ElectionImportError && re.test(e.message));

describe("election definitions", () => {
  const dir = mkdtempSync(join(tmpdir(), "elections-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a signed artifact verifies against the commission key; its signature covers the artifact without field 7", () => {
    const bytes = artifact(def("S1", 1000), 2);
    const [e] = parseElectionFile(bytes, "s1.bin", { commissionKeyHex: KEY });
    assert.equal(e.electionId, "E1");
    assert.equal(e.stationId, "S1");
    assert.equal(e.signatureChecked, true);
    assert.equal(e.version, 2);
    assert.deepEqual(Buffer.from(e.artifact ?? []), Buffer.from(bytes));
    assert.equal(withoutField(bytes, 7).length, bytes.length - 66, "tag, length and 64 signature bytes removed");
    const [noKey] = parseElectionFile(bytes, "s1.bin");
    assert.equal(noKey.signatureChecked, false, "without a configured key: stored, marked unchecked");
    const [b64] = parseElectionFile(Buffer.from(Buffer.from(bytes).toString("base64").replace(/(.{60})/g, "$1\n")), "s1.b64", { commissionKeyHex: KEY });
    assert.equal(b64.sha256, e.sha256, "the base64 text form");
  });

  it("forged, wrongly signed, unsigned and mislabelled artifacts are refused", () => {
    const good = artifact(def("S1", 1000), 1);
    const tampered = good.slice();
    tampered[20] ^= 1;
    err(() => parseElectionFile(tampered, "t.bin", { commissionKeyHex: KEY }), /t\.bin: (the commission signature does not verify|the artifact's body is not|not a SignedArtifact)/);
    err(() => parseElectionFile(artifact(def("S1", 1000), 1, other.key), "o.bin", { commissionKeyHex: KEY }), /o\.bin: the commission signature does not verify \(tampered, or signed by another key\)/);
    const unsigned = encodeSignedArtifact({ kind: ArtifactKind.ELECTION_DEFINITION, stationId: "S1", electionId: "E1", body: encodeElectionDefinition(def("S1", 1000)) });
    err(() => parseElectionFile(unsigned, "u.bin", { commissionKeyHex: KEY }), /u\.bin: the artifact is not signed/);
    err(() => parseElectionFile(artifact(def("S1", 1000), 1, commission.key, (a) => (a.kind = ArtifactKind.STATION_REGISTER)), "k.bin"), /kind 2, not an election definition/);
    err(() => parseElectionFile(artifact(def("S1", 1000), 1, commission.key, (a) => (a.stationId = "S9")), "s.bin"), /artifact is for station "S9" but its definition for "S1"/);
    err(() => parseElectionFile(new Uint8Array([0x0a, 0xff]), "m.bin"), /m\.bin: not a SignedArtifact/);
    err(() => parseElectionFile(new Uint8Array(0), "e.bin"), /e\.bin: the file is empty/);
  });

  it("JSON: a definition (snake_case or camelCase), artifacts as objects or base64 strings, arrays; bad entries named", () => {
    const list = parseElectionFile(
      Buffer.from(
        JSON.stringify({
          definitions: [
            { election_id: "E1", station_id: "S1", contests: [{ id: "c1", options: ["A", "B"] }], polls_close_ms: 5000 },
            { electionId: "E1", stationId: "S2", contests: [{ id: "c1", options: ["A", "B"] }], pollsCloseMs: "6000" },
            Buffer.from(artifact(def("S3", 7000), 1)).toString("base64"),
            { kind: 3, station_id: "S4", election_id: "E1", version: 1, issued_ms: 1, body: Buffer.from(encodeElectionDefinition(def("S4", 8000))).toString("base64") },
          ],
        }),
      ),
      "defs.json",
    );
    assert.deepEqual(list.map((e) => [e.stationId, e.artifact === null]), [["S1", true], ["S2", true], ["S3", false], ["S4", false]]);
    const idx = new ElectionIndex(list);
    assert.equal(idx.forStation("S2")?.pollsCloseMs, 6000);
    assert.equal(idx.forStation("S3")?.registerSize, 500);
    assert.equal(idx.forStation("S9"), null);
    err(() => parseElectionFile(Buffer.from("[{\"electionId\":\"E1\",\"contests\":[]}]"), "x.json"), /x\.json entry 1: the definition has no contests/);
    err(() => parseElectionFile(Buffer.from('{"electionId":"E1","contests":[{"id":"c","options":"A"}]}'), "x.json"), /x\.json contest 1: options must be an array of names/);
    err(() => parseElectionFile(Buffer.from('{"contests":[{"id":"c","options":["A"]}]}'), "x.json"), /x\.json: election_id is missing/);
    err(() => parseElectionFile(Buffer.from('{"electionId":"E1","contests":[{"id":"c","options":["A"]},{"id":"c","options":["B"]}]}'), "x.json"), /contest id "c" appears twice/);
    err(() => parseElectionFile(Buffer.from('{"electionId":"E1","pollsOpenMs":9,"pollsCloseMs":5,"contests":[{"id":"c","options":["A"]}]}'), "x.json"), /polls_close_ms is not after polls_open_ms/);
    err(() => parseElectionFile(Buffer.from('{"electionId": "E1", '), "x.json"), /x\.json: JSON does not parse/);
    err(() => parseElectionFile(Buffer.from('[{"electionId":"E1","contests":[{"id":"c","options":["A"]}]},{"electionId":"E1","contests":[{"id":"c","options":["A"]}]}]'), "x.json"), /station "" is defined twice/);
    err(() => parseElectionFile(Buffer.from('{"electionId":"E1","pollsCloseMs":-5,"contests":[{"id":"c","options":["A"]}]}'), "x.json"), /pollsCloseMs must be a non-negative integer/);
  });

  it("imports a directory all or nothing, and refuses a rollback to an older signed version", () => {
    const store = new SqliteOpsStore(":memory:");
    const d = join(dir, "defs");
    mkdirSync(d);
    writeFileSync(join(d, "a.bin"), artifact(def("S1", 1000), 3));
    writeFileSync(join(d, "b.json"), JSON.stringify({ electionId: "E1", contests: [{ id: "c1", options: ["A", "B", "C"] }], pollsCloseMs: 2000 }));
    writeFileSync(join(d, "c.bin"), artifact(def("S2", 1000), 1, other.key));
    err(() => importElection(store, d, { commissionKeyHex: KEY }), /c\.bin: the commission signature does not verify/);
    assert.equal(store.elections().length, 0, "nothing stored");
    rmSync(join(d, "c.bin"));
    assert.equal(importElection(store, d, { commissionKeyHex: KEY }).length, 2);
    const idx = new ElectionIndex(store.elections());
    assert.equal(idx.forStation("S1")?.pollsCloseMs, 1000, "the station's own definition");
    assert.equal(idx.forStation("S7")?.pollsCloseMs, 2000, "the election-wide one for other stations");
    err(() => storeElections(store, parseElectionFile(artifact(def("S1", 500), 2), "old.bin", { commissionKeyHex: KEY })), /version 2 is older than the imported version 3 \(a\.bin\)/);
    storeElections(store, parseElectionFile(artifact(def("S1", 4000), 4), "new.bin", { commissionKeyHex: KEY }));
    assert.equal(new ElectionIndex(store.elections()).forStation("S1")?.pollsCloseMs, 4000);
    err(() => importElection(store, join(dir, "missing"), {}), /cannot read .*missing/);
    store.close();
  });

  it("commission keys are 64 bytes of hex (or 65 with 04 first)", () => {
    assert.equal(commissionKeyHex("04" + KEY.toUpperCase()), KEY);
    err(() => commissionKeyHex("abcd"), /must be a P-256 public key/);
  });
});
