// The results bench (bench/results.ts) at CI size: 20 result devices with real firmware and chip
// models, provisioned with commission-signed definitions under a technician's authority, count
// their ballots, are plugged into real agents, and close their polls within a few seconds; every
// signed result must reach the operations console (embedded broker, signature verified, stored),
// none lost or quarantined, each with exactly the counts fed through its ballot scanner. Real time.

import { test } from "node:test";
import assert from "node:assert/strict";
import { runResultsBurst, type StationExpectation } from "../../bench/results.ts";

interface ApiResultRow {
  stationId: string;
  deviceId: string;
  ballotsCounted: number;
  contests: { contestId: string; name: string; options: { index: number; name: string; votes: number }[]; blank: number; invalid: number }[];
  flags: string[];
  versions: number;
  closedMs: number;
}

test("results burst: 20 stations close within seconds; every result at the console with the counts fed", { timeout: 120_000 }, async (t) => {
  const STATIONS = 20;
  let rows: ApiResultRow[] = [];
  let expected: StationExpectation[] = [];
  let total = -1;
  const report = await runResultsBurst({
    stations: STATIONS,
    agents: 3,
    spreadMs: 3000,
    ballotsPerStation: 6,
    healthIntervalMs: 5000,
    drainMs: 30_000,
    log: (l) => t.diagnostic(l),
    inspect: async ({ ops, expected: e }) => {
      expected = e;
      const res = await fetch(`${ops.url}/api/results?limit=1000`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { total: number; rows: ApiResultRow[] };
      total = body.total;
      rows = body.rows;
    },
  });
  t.diagnostic(JSON.stringify(report));

  assert.equal(report.stations, STATIONS);
  assert.equal(report.closed, STATIONS, "every station closed its polls");
  assert.equal(report.closeErrors, 0);
  assert.equal(report.lost, 0, "no result lost");
  assert.equal(report.recordsLost, 0, "no journal record lost");
  assert.equal(report.rejected, 0, `nothing quarantined: ${JSON.stringify(report.quarantineReasons)}`);
  assert.equal(report.resultsStored, STATIONS);
  assert.equal(report.wrongCounts, 0, report.wrongSample.join("; "));
  assert.ok(report.p50Ms > 0 && report.p99Ms >= report.p50Ms && report.maxMs >= report.p99Ms, `latencies ${report.p50Ms} / ${report.p99Ms} / ${report.maxMs}`);
  assert.ok(report.p99Ms < 5000, `p99 ${report.p99Ms} ms under 5 s`);

  // Independently of the bench's own check: the console's API, station by station.
  assert.equal(expected.length, STATIONS);
  assert.equal(total, STATIONS, "one result row per station");
  const byStation = new Map(rows.map((r) => [r.stationId, r]));
  for (const e of expected) {
    const r = byStation.get(e.stationId);
    assert.ok(r, `${e.stationId}'s result at the console`);
    assert.equal(r.deviceId, e.deviceId);
    assert.equal(r.ballotsCounted, e.ballots, `${e.stationId} ballots counted`);
    assert.equal(r.versions, 1);
    assert.deepEqual(r.flags, [], `${e.stationId} flags`);
    assert.ok(r.closedMs > 0);
    assert.deepEqual(
      r.contests.map((c) => ({ contestId: c.contestId, votes: c.options.map((o) => o.votes), blank: c.blank, invalid: c.invalid })),
      e.contests,
      `${e.stationId} counts`,
    );
    assert.deepEqual(r.contests[0].options.map((o) => o.name).slice(0, 2), ["List A", "List B"], "names from the signed definition");
    // The fed ballots add up: each contest's votes + blank + invalid is every ballot.
    for (const c of e.contests) assert.equal(c.votes.reduce((a, b) => a + b, 0) + c.blank + c.invalid, e.ballots);
  }
});
