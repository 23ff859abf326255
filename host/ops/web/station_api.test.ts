// The station views over HTTP: every JSON endpoint and CSV export against the real server and a
// real SQLite store, importing a definition over HTTP (token required), and the live "changed"
// event naming the stations a new record changed.

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { after, before, describe, it } from "node:test";
import { FIXTURE_ELECTION, seedElection, seedFleet, type ElectionFixture } from "../../../test/browser/fixture.ts";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { makeRecord, payload, RecordKind } from "../testing/signed.ts";
import { verifySignedResults } from "../export/signed_results.ts";
import { startOpsWeb, type OpsWeb } from "./server.ts";
import { allMessages } from "./i18n.ts";

const NOW = Date.UTC(2026, 3, 13, 2);
const TOKEN = "secret-token-0123456789";

describe("station API", () => {
  const store = new SqliteOpsStore(":memory:");
  const ingest = new EventEmitter();
  let web: OpsWeb;
  let el: ElectionFixture;
  const get = async <T>(path: string): Promise<T> => {
    const r = await fetch(web.url + path);
    assert.equal(r.status, 200, `${path}: ${r.status}`);
    return (await r.json()) as T;
  };

  before(async () => {
    const fleet = seedFleet(store, 120, NOW);
    el = seedElection(store, fleet, 30, NOW - 7 * 3_600_000);
    web = await startOpsWeb({ store, ingest, port: 0, now: () => NOW, eventIntervalMs: 20, importToken: TOKEN });
  });
  after(async () => {
    await web.close();
    store.close();
  });

  it("turnout, results and reconciliation pages with filters and totals", async () => {
    const t = await get<{ total: number; rows: Array<{ stationId: string }>; totals: { level: string; reporting: number }; reasons: string[] }>("/api/turnout?limit=5");
    assert.equal(t.total, 30);
    assert.equal(t.rows.length, 5);
    assert.deepEqual([t.totals.level, t.totals.reporting], ["total", 30]);
    assert.ok(t.reasons.includes("finger-mismatch"));
    const basra = await get<{ total: number; rows: Array<{ governorate: string }>; totals: { level: string; governorate: string } }>("/api/turnout?governorate=Basra");
    assert.ok(basra.total > 0 && basra.rows.every((r) => r.governorate === "Basra"));
    assert.deepEqual([basra.totals.level, basra.totals.governorate], ["governorate", "Basra"]);
    const r = await get<{ total: number; definitions: number; rows: Array<{ stationId: string; flags: string[] }> }>("/api/results?flagged=1");
    assert.equal(r.definitions, 0);
    assert.deepEqual(r.rows.map((x) => x.stationId), el.conflicts);
    const c = await get<{ counts: Record<string, number>; rows: Array<{ stationId: string; status: string }> }>("/api/reconciliation?status=mismatch");
    assert.deepEqual(c.rows.map((x) => x.stationId), el.mismatched);
    assert.deepEqual(c.counts, { match: 30 - el.mismatched.length - el.missingResult.length, mismatch: el.mismatched.length, "missing-result": el.missingResult.length, "missing-turnout": 0, open: 0 });
    const totals = await get<{ rows: Array<{ level: string }> }>("/api/results/totals");
    assert.equal(totals.rows[totals.rows.length - 1].level, "total");
  });

  it("one station, and 404 for an unknown one", async () => {
    const s = await get<{ result: { flags: string[] }; versions: unknown[]; hourly: unknown[]; close: { source: string } }>(`/api/stations/${el.conflicts[0]}`);
    assert.deepEqual(s.result.flags, ["conflict"]);
    assert.equal(s.versions.length, 2);
    assert.equal(s.hourly.length, 5);
    assert.equal(s.close.source, "turnout-report");
    const r = await fetch(`${web.url}/api/stations/NOPE`);
    assert.equal(r.status, 404);
    assert.deepEqual(await r.json(), { error: "unknown-station", stationId: "NOPE" });
  });

  it("result overdue in /api/alerts from the turnout report's close, with the station's place", async () => {
    const a = await get<{ alerts: Array<{ stationId?: string; kind: string; governorate: string }> }>("/api/alerts?kind=result-overdue");
    assert.deepEqual(a.alerts.map((x) => x.stationId).sort(), [...el.missingResult].sort());
    assert.ok(a.alerts.every((x) => x.governorate !== ""));
    const csv = await (await fetch(`${web.url}/api/export/alerts.csv?kind=result-overdue`)).text();
    assert.match(csv, /no result 7 h after close/);
  });

  it("imports a definition over HTTP only with the token; option names and the close time follow", async () => {
    const body = JSON.stringify({ ...FIXTURE_ELECTION, polls_close_ms: NOW - 5 * 3_600_000 });
    assert.equal((await fetch(`${web.url}/api/elections`, { method: "POST", body })).status, 401);
    const bad = await fetch(`${web.url}/api/elections`, { method: "POST", body: "{\"contests\": 1}", headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { message: string }).message, /upload: contests must be an array/);
    const ok = await fetch(`${web.url}/api/elections?name=ge.json`, { method: "POST", body, headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    const list = await get<{ definitions: Array<{ electionId: string; source: string }> }>("/api/elections");
    assert.deepEqual(list.definitions.map((d) => [d.electionId, d.source]), [["GE-2026", "ge.json"]]);
    const r = await get<{ definitions: number; rows: Array<{ contests: Array<{ name: string; options: Array<{ name: string }> }> }> }>("/api/results?limit=1");
    assert.equal(r.definitions, 1);
    assert.deepEqual(r.rows[0].contests[0].options.map((o) => o.name), ["List A", "List B", "List C"]);
    // The definition closes polls 5 h ago: nothing is overdue any more (all stations now use it).
    const a = await get<{ total: number }>("/api/alerts?kind=result-overdue");
    assert.equal(a.total, 0);
  });

  it("CSV exports and the signed export", async () => {
    const turnout = await (await fetch(`${web.url}/api/export/turnout.csv`)).text();
    assert.equal(turnout.trim().split("\r\n").length, 31);
    const recon = await fetch(`${web.url}/api/export/reconciliation.csv?flagged=1`);
    assert.match(recon.headers.get("content-disposition") ?? "", /reconciliation\.csv/);
    assert.equal((await recon.text()).trim().split("\r\n").length, 1 + el.mismatched.length + el.missingResult.length + el.conflicts.length);
    const results = await (await fetch(`${web.url}/api/export/results.csv?q=${el.stations[0]}`)).text();
    // 3 + 2 options, blank and invalid of each of the 2 contests.
    assert.equal(results.trim().split("\r\n").length, 1 + 5 + 4);
    const nd = await fetch(`${web.url}/api/export/results.signed.ndjson`);
    assert.match(nd.headers.get("content-type") ?? "", /ndjson/);
    const outcomes = verifySignedResults(await nd.text(), store.devices());
    assert.ok(outcomes.length > 0 && outcomes.every((o) => o.ok));
    assert.equal((await fetch(`${web.url}/api/export/nothing.csv`)).status, 404);
  });

  it("a new record tells open pages which stations changed", async () => {
    const station = el.missingResult[0];
    const rad = el.rad.get(station);
    assert.ok(rad);
    const changed = new Promise<{ stations: string[]; kinds: string[] }>((resolve) => web.events.once("changed", resolve));
    const bytes = makeRecord(rad, RecordKind.RESULT, payload.result({ electionId: "GE-2026", stationId: station, ballotsCounted: 0, contests: [] }), NOW);
    const rec = { deviceId: rad.deviceId, seq: rad.nextSeq - 1, prevSeq: 0, timeMs: NOW, kind: RecordKind.RESULT, bytes, receivedMs: NOW, site: "" };
    store.putRecords([rec]);
    ingest.emit("records", [rec]);
    const ev = await changed;
    assert.deepEqual(ev.stations, [station]);
    assert.ok(ev.kinds.includes("stations"));
    const c = await get<{ rows: Array<{ status: string }> }>(`/api/reconciliation?q=${station}`);
    assert.equal(c.rows[0].status, "mismatch", "0 ballots against the voters admitted");
  });

  it("every dashboard message exists in English and Arabic with the same placeholders", () => {
    const ph = (s: string): string[] => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const [key, text] of allMessages()) {
      assert.ok(text.en.trim() !== "" && text.ar.trim() !== "", key);
      assert.deepEqual(ph(text.ar), ph(text.en), `${key}: placeholders differ`);
      if (/[a-z]{3}/.test(text.en.replace(/\{\w+\}/g, ""))) assert.match(text.ar, /[\u0600-\u06FF]/, `${key}: Arabic text expected`);
    }
  });
});
