// Turnout, results, reconciliation and result-overdue over records that went through the real
// ingest (signatures verified in its worker pool) into a real SQLite store, signed with real P-256
// keys as the devices sign them.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Ingest } from "../ingest/ingest.ts";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { parseElectionFile, storeElections } from "../election/election.ts";
import { feed, makeRecord, payload, RecordKind, testDevice, type TestDevice } from "../testing/signed.ts";
import { RESULT_DEADLINE_MS, StationViews } from "./stations.ts";
import { RejectReason } from "./payloads.ts";

const T0 = Date.UTC(2026, 3, 12, 4, 0); // polls open 07:00 local (UTC+3)
const HOUR = 3_600_000;
const CLOSE = T0 + 11 * HOUR;

describe("station views", () => {
  const store = new SqliteOpsStore(":memory:");
  const now = CLOSE + HOUR;
  const ingest = new Ingest({ url: "mqtt://unused.invalid", store, poolSize: 1, clock: () => now });
  const dev: Record<string, TestDevice> = {};
  const place: Record<string, [string, string]> = { S1: ["G1", "O1"], S2: ["G1", "O1"], S3: ["G1", "O2"], S4: ["G2", "O3"], S5: ["G2", "O3"] };
  for (const [st, [gov, office]] of Object.entries(place)) {
    dev[`V${st}`] = testDevice(`VVD-${st}`, { role: "verification", governorate: gov, office, stationId: st, site: `site-${st}` });
    dev[`R${st}`] = testDevice(`RAD-${st}`, { role: "result", governorate: gov, office, stationId: st, site: `site-${st}` });
  }
  const send = (d: TestDevice, kind: number, p: Uint8Array, t: number): Promise<void> => feed(ingest, [{ dev: d, bytes: makeRecord(d, kind, p, t) }]);
  const result = (station: string, ballots: number, votes: number[], blank: number, invalid: number, verifiedVoters?: number) =>
    payload.result({
      electionId: "E1",
      stationId: station,
      openedMs: T0,
      closedMs: CLOSE,
      ballotsCounted: ballots,
      contests: [{ contestId: "c1", votes, blank, invalid }],
      verifiedVoters: verifiedVoters ?? 0,
      verifiedVotersKnown: verifiedVoters !== undefined,
    });
  const views = new StationViews(store);

  before(async () => {
    store.upsertDevices(Object.values(dev).map((d) => d.entry));
    const v = dev.VS1;
    // S1: three verified by finger, one exempted (counted in `verified` too: every voter marked as
    // voted), a rejection, an hourly report, another rejection, the final report.
    await send(v, RecordKind.VOTER_VERIFIED, payload.verified({ stationId: "S1", verified: 1, attempts: 1 }), T0 + 10_000);
    await send(v, RecordKind.VOTER_VERIFIED, payload.verified({ stationId: "S1", verified: 2, attempts: 2 }), T0 + 20_000);
    await send(v, RecordKind.VERIFICATION_REJECTED, payload.verified({ stationId: "S1", verified: 2, reason: RejectReason.FINGER_MISMATCH, attempts: 3 }), T0 + 30_000);
    await send(v, RecordKind.TURNOUT_HOURLY, payload.turnout({ stationId: "S1", electionId: "E1", registerSize: 8, verified: 2, rejected: 1, rejectedByReason: [{ reason: RejectReason.FINGER_MISMATCH, count: 1 }], periodEndMs: T0 + HOUR }), T0 + HOUR);
    await send(v, RecordKind.VOTER_VERIFIED, payload.verified({ stationId: "S1", verified: 3, attempts: 1 }), T0 + HOUR + 10_000);
    await send(v, RecordKind.VOTER_EXEMPTED, payload.verified({ stationId: "S1", verified: 4, exempted: 1, actor: "supervisor" }), T0 + HOUR + 20_000);
    await send(v, RecordKind.VERIFICATION_REJECTED, payload.verified({ stationId: "S1", verified: 4, exempted: 1, reason: RejectReason.ALREADY_VOTED }), T0 + HOUR + 30_000);
  });

  after(async () => {
    await ingest.close();
    store.close();
  });

  it("turnout per station: live counts, rejections after the last hourly report, hourly series", () => {
    views.reload();
    const [row] = views.turnout({ q: "S1" });
    assert.equal(row.stationId, "S1");
    assert.deepEqual([row.governorate, row.office], ["G1", "O1"]);
    assert.equal(row.verified, 4);
    assert.equal(row.exempted, 1);
    assert.equal(row.admitted, 4);
    assert.equal(row.rejected, 2, "one in the hourly report, one after it");
    assert.deepEqual(row.rejectedByReason, { "finger-mismatch": 1, "already-voted": 1 });
    assert.equal(row.registerSize, 8);
    assert.equal(row.turnoutPercent, 50);
    assert.equal(row.final, false);
    const detail = views.stationDetail("S1");
    assert.ok(detail);
    assert.deepEqual(detail.hourly.map((h) => [h.periodEndMs, h.verified, h.rejected]), [[T0 + HOUR, 2, 1]]);
    assert.equal(views.reconciliation({ q: "S1" })[0].status, "open", "polls open: nothing to reconcile yet");
  });

  it("applies live ingest records like a reload (rows and totals kept by difference), and the final report closes the station's turnout", async () => {
    views.reload();
    views.resultTotal(); // totals computed now, then kept up to date by difference
    let changed: string[] = [];
    const onRecords = (records: Parameters<StationViews["apply"]>[0]): void => {
      changed = changed.concat(views.apply(records));
    };
    ingest.on("records", onRecords);
    await send(dev.VS1, RecordKind.TURNOUT_REPORT, payload.turnout({ stationId: "S1", electionId: "E1", registerSize: 8, verified: 4, exempted: 1, rejected: 2, rejectedByReason: [{ reason: RejectReason.FINGER_MISMATCH, count: 1 }, { reason: RejectReason.ALREADY_VOTED, count: 1 }], periodEndMs: CLOSE, final: true }), CLOSE + 5000);
    await send(dev.RS1, RecordKind.RESULT, result("S1", 4, [2, 1], 1, 0, 4), CLOSE + 60_000);
    await send(dev.VS2, RecordKind.TURNOUT_REPORT, payload.turnout({ stationId: "S2", electionId: "E1", registerSize: 20, verified: 10, periodEndMs: CLOSE, final: true }), CLOSE + 1000);
    await send(dev.RS2, RecordKind.RESULT, result("S2", 11, [6, 4], 0, 1), CLOSE + 2000);
    await send(dev.VS3, RecordKind.TURNOUT_REPORT, payload.turnout({ stationId: "S3", electionId: "E1", registerSize: 5, verified: 5, periodEndMs: CLOSE, final: true }), CLOSE + 1000);
    await send(dev.RS4, RecordKind.RESULT, result("S4", 7, [3, 3], 1, 0, 7), CLOSE + 3000);
    ingest.off("records", onRecords);
    assert.deepEqual([...new Set(changed)].sort(), ["S1", "S2", "S3", "S4"]);
    const live = { t: views.turnout(), r: views.results(), c: views.reconciliation(), tt: views.turnoutTotalsList(), rt: views.resultTotalsList() };
    const fresh = new StationViews(store);
    fresh.reload();
    assert.deepEqual({ t: fresh.turnout(), r: fresh.results(), c: fresh.reconciliation(), tt: fresh.turnoutTotalsList(), rt: fresh.resultTotalsList() }, live, "live updates equal a reload from the store");
    const s1 = live.t.find((r) => r.stationId === "S1");
    assert.equal(s1?.final, true);
    assert.equal(s1?.rejected, 2, "the final report's count; no rejection counted twice");
    assert.deepEqual(views.stationDetail("S1")?.hourly.map((h) => h.final), [false, true]);
  });

  it("results per station: counts per option, blank, invalid, ballots; option indexes without a definition", () => {
    const r = views.results({ q: "S1" })[0];
    assert.equal(r.deviceId, "RAD-S1");
    assert.equal(r.ballotsCounted, 4);
    assert.equal(r.verifiedVoters, 4);
    assert.deepEqual(r.contests, [{ contestId: "c1", name: "", options: [{ index: 0, name: "", votes: 2 }, { index: 1, name: "", votes: 1 }], blank: 1, invalid: 0 }]);
    assert.deepEqual(r.flags, []);
  });

  it("reconciliation: agree, disagree, result missing, turnout report missing", () => {
    const byId = new Map(views.reconciliation().map((r) => [r.stationId, r]));
    assert.equal(byId.get("S1")?.status, "match");
    assert.equal(byId.get("S1")?.flagged, false);
    assert.equal(byId.get("S2")?.status, "mismatch");
    assert.equal(byId.get("S2")?.difference, 1, "11 ballots for 10 voters admitted");
    assert.equal(byId.get("S2")?.flagged, true);
    assert.equal(byId.get("S3")?.status, "missing-result");
    assert.equal(byId.get("S4")?.status, "missing-turnout");
    assert.equal(byId.get("S4")?.difference, 0, "against the result device's copy of the verified count");
    assert.equal(byId.get("S5"), undefined, "no data, nothing to reconcile");
    assert.deepEqual(views.reconCounts(), { match: 1, mismatch: 1, "missing-result": 1, "missing-turnout": 1, open: 0 });
    assert.deepEqual(views.reconciliation({ flagged: true }).map((r) => r.stationId), ["S2", "S3", "S4"]);
  });

  it("a result device whose copy of the verified count differs from the VVD report is flagged", async () => {
    // S5: the VVD says 6 admitted; the RAD counted 6 ballots but was told 5 verified voters.
    await send(dev.VS5, RecordKind.TURNOUT_REPORT, payload.turnout({ stationId: "S5", verified: 6, periodEndMs: CLOSE, final: true }), CLOSE);
    await send(dev.RS5, RecordKind.RESULT, result("S5", 6, [6, 0], 0, 0, 5), CLOSE + 1);
    views.reload();
    const r = views.reconciliation({ q: "S5" })[0];
    assert.equal(r.status, "mismatch");
    assert.equal(r.difference, 0);
    assert.deepEqual(r.flags, ["paired-count-differs"]);
  });

  it("totals per office and governorate: turnout and votes summed per contest and option", () => {
    const t = views.turnoutTotalsList();
    assert.deepEqual(t.map((x) => `${x.level}:${x.governorate}/${x.office}`), ["governorate:G1/", "office:G1/O1", "office:G1/O2", "governorate:G2/", "office:G2/O3", "total:/"]);
    const o1 = views.turnoutTotal("G1", "O1");
    assert.equal(o1?.stations, 2);
    assert.equal(o1?.verified, 14, "exempted voters are in `verified`");
    assert.equal(o1?.admitted, 14);
    assert.equal(o1?.registerSize, 28);
    assert.equal(views.turnoutTotal("G1")?.verified, 19);
    assert.equal(views.turnoutTotal()?.verified, 25);
    const g1 = views.resultTotal("G1");
    assert.equal(g1?.reported, 2);
    assert.equal(g1?.stations, 3);
    assert.equal(g1?.ballotsCounted, 15);
    assert.deepEqual(g1?.contests[0].options.map((o) => o.votes), [8, 5]);
    assert.equal(g1?.contests[0].blank, 1);
    assert.equal(g1?.contests[0].invalid, 1);
    assert.equal(views.resultTotal()?.reported, 4);
  });

  it("a second, different signed result for a station is flagged, not counted over the first", async () => {
    const before = views.resultTotal("G2")?.contests[0].options.map((o) => o.votes);
    await send(dev.RS4, RecordKind.RESULT, result("S4", 7, [0, 6], 1, 0, 7), CLOSE + 4000);
    // The same result signed again (another record, same payload) is not a conflict.
    await send(dev.RS1, RecordKind.RESULT, result("S1", 4, [2, 1], 1, 0, 4), CLOSE + 61_000);
    views.reload();
    const s4 = views.results({ q: "S4" })[0];
    assert.deepEqual(s4.flags, ["conflict"]);
    assert.equal(s4.versions, 2);
    assert.deepEqual(s4.contests[0].options.map((o) => o.votes), [3, 3], "the first result stays");
    assert.deepEqual(views.resultTotal("G2")?.contests[0].options.map((o) => o.votes), before);
    assert.equal(views.resultTotal("G2")?.conflicts, 1);
    const versions = views.stationDetail("S4")?.versions ?? [];
    assert.deepEqual(versions.map((v) => [v.current, v.contests[0].options[1].votes]), [[true, 3], [false, 6]]);
    assert.deepEqual(views.reconciliation({ q: "S4" })[0].flags, ["result-conflict"]);
    const s1 = views.results({ q: "S1" })[0];
    assert.deepEqual(s1.flags, []);
    assert.equal(s1.versions, 1);
    assert.equal(views.resultRecords({ q: "S1" }).length, 2, "both records are kept for the signed export");
  });

  it("an inconsistent result (votes do not add up) and one from a device of another station are flagged", async () => {
    const extra = testDevice("RAD-X", { role: "result", governorate: "G2", office: "O3", stationId: "S5", site: "x" });
    store.upsertDevices([extra.entry]);
    ingest.reloadRegistry();
    await send(extra, RecordKind.RESULT, result("S6", 9, [3, 3], 0, 0), CLOSE + 5000);
    views.reload();
    assert.deepEqual(views.results({ q: "S6" })[0].flags, ["inconsistent", "station-mismatch"]);
  });

  it("option names from an imported election definition", () => {
    storeElections(
      store,
      parseElectionFile(
        Buffer.from(JSON.stringify({ election_id: "E1", name: "General", contests: [{ id: "c1", name: "Council", options: ["List A", "List B"] }], polls_close_ms: CLOSE })),
        "e1.json",
      ),
    );
    views.reloadElections();
    const r = views.results({ q: "S1" })[0];
    assert.equal(r.electionName, "General");
    assert.equal(r.contests[0].name, "Council");
    assert.deepEqual(r.contests[0].options.map((o) => o.name), ["List A", "List B"]);
    assert.deepEqual(views.resultTotal()?.contests[0].options.map((o) => o.name), ["List A", "List B"]);
  });

  it("a forged result never reaches the views", async () => {
    const intruder = testDevice("RAD-S3", { role: "result" });
    await feed(ingest, [{ dev: intruder, bytes: makeRecord(intruder, RecordKind.RESULT, result("S3", 5, [5, 0], 0, 0), CLOSE + 10) }]);
    views.reload();
    assert.equal(views.results({ q: "S3" }).length, 0);
    assert.ok((store.quarantineCounts()["bad-signature"] ?? 0) >= 1);
  });
});

describe("result overdue", () => {
  const store = new SqliteOpsStore(":memory:");
  const vvd = testDevice("VVD-1", { role: "verification", governorate: "G", office: "O", stationId: "S1" });
  const rad = testDevice("RAD-1", { role: "result", governorate: "G", office: "O", stationId: "S1" });
  const rad2 = testDevice("RAD-2", { role: "result", governorate: "G", office: "O", stationId: "S2" });
  store.upsertDevices([vvd.entry, rad.entry, rad2.entry]);
  const put = (d: TestDevice, kind: number, p: Uint8Array, t: number, received: number): void => {
    const bytes = makeRecord(d, kind, p, t);
    store.putRecords([{ deviceId: d.deviceId, seq: d.nextSeq - 1, prevSeq: d.prevSeq, timeMs: t, kind, bytes, receivedMs: received, site: "" }]);
  };
  after(() => store.close());

  it("from the VVD's turnout report when no definition is imported: raised at exactly close + 6 h", () => {
    put(vvd, RecordKind.TURNOUT_REPORT, payload.turnout({ stationId: "S1", electionId: "E1", verified: 3, periodEndMs: CLOSE, final: true }), CLOSE + 1000, CLOSE + 2000);
    const v = new StationViews(store);
    v.reload();
    assert.deepEqual(v.overdueAlerts(CLOSE + RESULT_DEADLINE_MS - 1), [], "one millisecond before the deadline");
    const [a] = v.overdueAlerts(CLOSE + RESULT_DEADLINE_MS);
    assert.ok(a, "at the deadline");
    assert.equal(a.kind, "result-overdue");
    assert.equal(a.severity, "critical");
    assert.equal(a.stationId, "S1");
    assert.equal(a.deviceId, "RAD-1");
    assert.equal(a.id, "station:S1:result-overdue");
    assert.equal(a.sinceMs, CLOSE + RESULT_DEADLINE_MS);
    assert.equal(a.params.source, "turnout-report");
    assert.equal(a.params.hours, "6");
    assert.equal(v.overdueAlerts(CLOSE + 7 * HOUR)[0].params.hours, "7");
  });

  it("from the definition's polls_close_ms once one is imported; a result that arrives clears it", () => {
    storeElections(
      store,
      parseElectionFile(
        Buffer.from(JSON.stringify([
          { electionId: "E1", stationId: "S1", contests: [{ id: "c1", options: ["a", "b"] }], pollsOpenMs: T0, pollsCloseMs: CLOSE + HOUR },
          { electionId: "E1", stationId: "S2", contests: [{ id: "c1", options: ["a", "b"] }], pollsOpenMs: T0, pollsCloseMs: CLOSE },
        ])),
        "defs.json",
      ),
    );
    const v = new StationViews(store);
    v.reload();
    const at = (ms: number): string[] => v.overdueAlerts(ms).map((a) => a.stationId ?? "").sort();
    assert.deepEqual(at(CLOSE + RESULT_DEADLINE_MS - 1), []);
    assert.deepEqual(at(CLOSE + RESULT_DEADLINE_MS), ["S2"], "S2 (no data at all) at its definition's close + 6 h");
    assert.deepEqual(at(CLOSE + HOUR + RESULT_DEADLINE_MS - 1), ["S2"], "S1's definition closes an hour later than its turnout report");
    assert.deepEqual(at(CLOSE + HOUR + RESULT_DEADLINE_MS), ["S1", "S2"]);
    assert.equal(v.overdueAlerts(CLOSE + HOUR + RESULT_DEADLINE_MS).find((a) => a.stationId === "S1")?.params.source, "definition");
    // S2's result arrives (late): the alert goes, the result is flagged late.
    put(rad2, RecordKind.RESULT, payload.result({ electionId: "E1", stationId: "S2", ballotsCounted: 1, contests: [{ contestId: "c1", votes: [1, 0] }] }), CLOSE + 60_000, CLOSE + RESULT_DEADLINE_MS + 1);
    v.reload();
    assert.deepEqual(at(CLOSE + 10 * HOUR), ["S1"]);
    assert.deepEqual(v.results({ q: "S2" })[0].flags, ["late"]);
    // A result of another election does not count as S1's.
    put(rad, RecordKind.RESULT, payload.result({ electionId: "E0", stationId: "S1", ballotsCounted: 1, contests: [{ contestId: "c1", votes: [1, 0] }] }), CLOSE + 60_000, CLOSE + 60_000);
    v.reload();
    assert.deepEqual(at(CLOSE + 10 * HOUR), ["S1"]);
  });
});
