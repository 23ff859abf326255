// The signed-results export and `pollkit verify-result`: a good export verifies on its own (JSON
// and NDJSON, with and without a registry); a tampered record, a record signed by another device,
// a key swapped in the file, a station changed and malformed files are reported and exit 1.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { CliContext } from "../../cli/context.ts";
import { CliError } from "../../cli/messages.ts";
import { verifyResultCommand, verifyResultTexts } from "../../cli/commands/verify_result.ts";
import { readRecord } from "../ingest/record_wire.ts";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { makeRecord, payload, RecordKind, testDevice, type TestDevice } from "../testing/signed.ts";
import { StationViews } from "../views/stations.ts";
import { SignedFileError, signedResultsFile, signedResultsNdjson, verifySignedResults, type SignedResultsFile } from "./signed_results.ts";

const root = new URL("../../../", import.meta.url).pathname;
const CLOSE = Date.UTC(2026, 3, 12, 15);

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "host/cli/bin.ts", ...args], { cwd: root, env: { ...process.env, LANG: "en_US.UTF-8", LC_ALL: "" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function ctx(json = false): CliContext & { out: string[]; notes: string[] } {
  const out: string[] = [];
  const notes: string[] = [];
  return {
    agentUrl: "http://127.0.0.1:1",
    json,
    tty: false,
    now: () => CLOSE,
    client: () => {
      throw new Error("no agent needed");
    },
    print: (t) => void out.push(t),
    printJson: (v) => void out.push(JSON.stringify(v)),
    note: (t) => void notes.push(t),
    out,
    notes,
  };
}

describe("signed results export and verify-result", () => {
  const dir = mkdtempSync(join(tmpdir(), "signed-results-"));
  const store = new SqliteOpsStore(":memory:");
  const rad: Record<string, TestDevice> = {
    S1: testDevice("RAD-1", { role: "result", governorate: "G", office: "O", stationId: "S1" }),
    S2: testDevice("RAD-2", { role: "result", governorate: "G", office: "O", stationId: "S2" }),
  };
  store.upsertDevices([rad.S1.entry, rad.S2.entry]);
  for (const [station, d] of Object.entries(rad)) {
    const bytes = makeRecord(d, RecordKind.RESULT, payload.result({ electionId: "E1", stationId: station, closedMs: CLOSE, ballotsCounted: 5, contests: [{ contestId: "c1", votes: [3, 2] }], verifiedVoters: 5, verifiedVotersKnown: true }), CLOSE + 1000);
    store.putRecords([{ deviceId: d.deviceId, seq: 1, prevSeq: 0, timeMs: CLOSE + 1000, kind: RecordKind.RESULT, bytes, receivedMs: CLOSE + 2000, site: "" }]);
  }
  const views = new StationViews(store);
  views.reload();
  const good = signedResultsFile(views.resultRecords(), (id) => store.device(id)?.publicKeyHex ?? "", CLOSE + 3000);
  const registryPath = join(dir, "registry.json");
  writeFileSync(registryPath, JSON.stringify(store.devices()));
  const write = (name: string, f: SignedResultsFile | string): string => {
    const p = join(dir, name);
    writeFileSync(p, typeof f === "string" ? f : JSON.stringify(f));
    return p;
  };
  const edit = (i: number, change: (e: SignedResultsFile["results"][number]) => void): SignedResultsFile => {
    const f = structuredClone(good);
    change(f.results[i]);
    return f;
  };
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a good export verifies: JSON and NDJSON, with and without the registry", () => {
    assert.equal(good.results.length, 2);
    for (const text of [JSON.stringify(good), signedResultsNdjson(good)]) {
      const out = verifySignedResults(text, store.devices());
      assert.deepEqual(out.map((o) => [o.stationId, o.ok, o.keyChecked]), [["S1", true, true], ["S2", true, true]]);
      assert.equal(out[0].result?.ballotsCounted, 5);
      assert.deepEqual(verifySignedResults(text).map((o) => [o.ok, o.keyChecked]), [[true, false], [true, false]]);
    }
  });

  it("a tampered record fails (only that one)", () => {
    const f = edit(0, (e) => {
      const b = Buffer.from(e.record, "base64");
      const rec = readRecord(b);
      const at = rec.payload.byteOffset - b.byteOffset + rec.payload.length - 1;
      b[at] ^= 1; // a vote count changed
      e.record = b.toString("base64");
    });
    const out = verifySignedResults(JSON.stringify(f));
    assert.deepEqual(out.map((o) => o.ok), [false, true]);
    assert.deepEqual(out[0].problems.map((p) => p.code), ["bad-signature"]);
    assert.match(out[0].problems[0].detail, /altered or signed by another device/);
  });

  it("a record signed by another device fails; swapping the key in the file is caught by the registry", () => {
    const forger = testDevice("X", { role: "result" });
    const forged = makeRecord(forger, RecordKind.RESULT, payload.result({ electionId: "E1", stationId: "S1", ballotsCounted: 5, contests: [{ contestId: "c1", votes: [0, 5] }] }), CLOSE);
    const f = edit(0, (e) => (e.record = Buffer.from(forged).toString("base64")));
    assert.deepEqual(verifySignedResults(JSON.stringify(f))[0].problems.map((p) => p.code), ["bad-signature"]);
    const swapped = structuredClone(f);
    swapped.results[0].publicKeyHex = forger.publicKeyHex;
    assert.equal(verifySignedResults(JSON.stringify(swapped))[0].ok, true, "without a registry the file's key is taken at its word");
    const withReg = verifySignedResults(JSON.stringify(swapped), store.devices())[0];
    assert.deepEqual(withReg.problems.map((p) => p.code), ["wrong-key", "bad-signature"]);
    const unknown = verifySignedResults(JSON.stringify(edit(1, (e) => (e.deviceId = "RAD-9"))), store.devices())[1];
    assert.deepEqual(unknown.problems.map((p) => p.code), ["unknown-device"]);
  });

  it("the station in the file must be the one signed", () => {
    const out = verifySignedResults(JSON.stringify(edit(1, (e) => (e.stationId = "S1"))));
    assert.deepEqual(out[1].problems.map((p) => [p.code, p.detail]), [["station-mismatch", 'the signed result is for station "S2", the file says "S1"']]);
  });

  it("malformed files and entries get clear errors", () => {
    const fileErr = (text: string, re: RegExp): void => assert.throws(() => verifySignedResults(text), (e: unknown) => e instanceof SignedFileError && re.test(e.message));
    fileErr("", /the file is empty/);
    fileErr("not json at all", /not JSON or NDJSON/);
    fileErr(JSON.stringify({ format: "something-else", version: 1, results: [] }), /not a signed-results export/);
    fileErr(JSON.stringify({ ...good, version: 9 }), /unsupported export version 9/);
    fileErr(JSON.stringify({ ...good, results: [] }), /holds no results/);
    fileErr(signedResultsNdjson(good).replace(/\n(\{"stationId":"S2")/, "\n{oops$1"), /line 3 is not JSON/);
    const codes = (f: SignedResultsFile, i = 0): string[] => verifySignedResults(JSON.stringify(f))[i].problems.map((p) => `${p.code}: ${p.detail}`);
    assert.deepEqual(codes(edit(0, (e) => (e.record = "%%%"))), ["malformed-entry: record is not base64"]);
    assert.deepEqual(codes(edit(0, (e) => delete (e as Partial<typeof e>).record)), ["malformed-entry: record is missing or not a string"]);
    assert.deepEqual(codes(edit(0, (e) => (e.publicKeyHex = "abc"))), ["malformed-entry: publicKeyHex is not a P-256 public key (64 bytes X || Y in hex)"]);
    assert.match(codes(edit(0, (e) => (e.record = Buffer.from([0x0a, 0x05, 0x01]).toString("base64"))))[0], /^malformed-record: the record does not parse: field 1 has wire type 2/);
    const audit = makeRecord(rad.S1, RecordKind.AUDIT, new Uint8Array([0x0a, 0x01, 0x61]), CLOSE);
    assert.deepEqual(codes(edit(0, (e) => (e.record = Buffer.from(audit).toString("base64")))), ["not-a-result: the record is of kind 2, not RESULT (9)"]);
    const unsigned = readRecord(Buffer.from(good.results[0].record, "base64")).signingBytes;
    assert.deepEqual(codes(edit(0, (e) => (e.record = Buffer.from(unsigned).toString("base64")))), ["unsigned: the record carries no signature"]);
    const notResult = makeRecord(rad.S1, RecordKind.RESULT, new Uint8Array([0x08]), CLOSE);
    assert.match(codes(edit(0, (e) => (e.record = Buffer.from(notResult).toString("base64"))))[0], /^bad-payload: StationResult does not decode/);
  });

  it("the command prints each result and exits 0 when all verify, 1 otherwise", async () => {
    const c = ctx();
    assert.equal(await verifyResultCommand(c, write("good.json", good), { registry: registryPath }), 0);
    assert.match(c.out[0], /^✔ VERIFIED {2}#1 {2}station S1 {2}device RAD-1 {2}record 1 {2}signed 2026-04-12 15:00 UTC$/);
    assert.match(c.out.join("\n"), /contest c1: #1 3, #2 2; blank 0, invalid 0/);
    assert.equal(c.out[c.out.length - 1], "All 2 results verify.");
    assert.match(c.notes[0], /Keys checked against the registry/);
    const bad = ctx();
    const tampered = edit(1, (e) => (e.record = Buffer.from(makeRecord(testDevice("Y", { role: "result" }), RecordKind.RESULT, payload.result({ stationId: "S2" }), CLOSE)).toString("base64")));
    assert.equal(await verifyResultCommand(bad, write("bad.json", tampered)), 1);
    assert.match(bad.out.join("\n"), /✘ FAILED {2}#2 .*\n {2}- TAMPERED OR WRONG DEVICE: the signature does not verify against RAD-2's given key/);
    assert.equal(bad.out[bad.out.length - 1], "1 of 2 results do NOT verify.");
    assert.match(bad.notes[0], /give --registry <file>/);
    const j = ctx(true);
    assert.equal(await verifyResultCommand(j, write("bad2.json", tampered)), 1);
    const parsed = JSON.parse(j.out[0]) as { verified: number; failed: number; results: Array<{ ok: boolean; problems: Array<{ code: string }> }> };
    assert.deepEqual([parsed.verified, parsed.failed, parsed.results[1].problems[0].code], [1, 1, "bad-signature"]);
    await assert.rejects(verifyResultCommand(ctx(), write("junk.json", "{\"hello\": 1}")), (e: unknown) => e instanceof CliError && e.exitCode === 1 && /is not a signed-results export/.test(e.message));
    await assert.rejects(verifyResultCommand(ctx(), join(dir, "missing.json")), (e: unknown) => e instanceof CliError && /Cannot read/.test(e.message));
  });

  it("runs as `pollkit verify-result` on its own (no agent, no database), in English and Arabic", async () => {
    const ok = await run(["verify-result", write("cli-good.json", good), "--registry", registryPath]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /All 2 results verify\./);
    const tampered = edit(0, (e) => (e.stationId = "S9"));
    const bad = await run(["verify-result", write("cli-bad.json", tampered)]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /station mismatch: the signed result is for station "S1", the file says "S9"/);
    const junk = await run(["verify-result", write("cli-junk.txt", "hello")]);
    assert.equal(junk.code, 1);
    assert.match(junk.stderr, /pollkit: .*cli-junk\.txt is not a signed-results export: not JSON or NDJSON/);
    const ar = await run(["--lang", "ar", "verify-result", write("cli-bad-ar.json", tampered)]);
    assert.equal(ar.code, 1);
    assert.match(ar.stdout, /فشل التحقق/);
    assert.match(ar.stdout, /عدم تطابق المركز: النتيجة الموقّعة للمركز S1 والملف يذكر S9/);
  });

  it("every message of the command exists in English and Arabic", () => {
    for (const [key, text] of verifyResultTexts()) {
      assert.ok(text.en.trim() && text.ar.trim(), key);
      assert.match(text.ar, /[\u0600-\u06FF]/, `${key}: Arabic text expected`);
      assert.doesNotMatch(text.ar, /[\u0660-\u0669\u200E\u200F]/, `${key}: Western digits, no direction marks`);
    }
  });
});
