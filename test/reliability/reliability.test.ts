// The reliability suite, shortened for CI (the same scenarios as `npm run test:reliability`, with
// the "short" profiles: tens of devices, a few faults of each kind, well under 90 s in all). Each
// scenario asserts by counting and prints its counts as one JSON line.

import { test } from "node:test";
import assert from "node:assert/strict";
import { runWarehouse, WAREHOUSE } from "./warehouse.ts";
import { runAgentKill } from "./agent_kill.ts";
import { runElectionDay } from "./election_day.ts";

const print = (counts: object): void => console.log(JSON.stringify(counts));

test("warehouse under the fault catalogue: every record stored once, every fault reported", { timeout: 150_000 }, async () => {
  const c = await runWarehouse("short");
  print(c);
  assert.equal(c.lost, 0, `lost: ${c.lostSample.join(", ")}`);
  assert.equal(c.unexpected, 0);
  assert.equal(c.duplicatedStored, 0);
  assert.equal(c.chainBreaks, 0);
  assert.equal(c.quarantined, 0, JSON.stringify(c.quarantineReasons));
  assert.ok(c.journalled > c.devices * 10, `${c.journalled} records journalled`);
  // Every kind of fault planned was injected and did something, and each one that did was reported.
  for (const [id, n] of Object.entries(WAREHOUSE.short.deviceFaults)) {
    assert.equal(c.faults[id]?.injected, n, id);
    assert.ok((c.faults[id]?.exercised ?? 0) > 0, `${id} never did anything`);
  }
  assert.equal(c.faults["broker-restart"]?.reported, 1);
  assert.equal(c.faults["network-partition"]?.reported, 1);
  assert.equal(c.faultsReported, c.faultsExercised, c.unreported.join(" | "));
  assert.deepEqual(c.problems, []);
});

test("agent SIGKILLed mid-stream and restarted: every record stored once, every kill reported", { timeout: 120_000 }, async () => {
  const c = await runAgentKill("short");
  print(c);
  assert.equal(c.lost, 0);
  assert.equal(c.duplicatedStored, 0);
  assert.equal(c.quarantined, 0);
  assert.equal(c.killsReported, c.kills);
  assert.ok(c.journalled > c.devices * 20, `${c.journalled} records journalled`);
  assert.deepEqual(c.problems, []);
});

test("election day under faults: the console's result and turnout are what was cast", { timeout: 120_000 }, async () => {
  const c = await runElectionDay("short");
  print(c);
  assert.equal(c.console.result?.ballotsCounted, c.ballotsCast);
  assert.deepEqual(c.console.result?.contests, c.deviceResult.contests);
  assert.equal(c.console.turnout?.verified, c.verified);
  assert.equal(c.console.reconciliation, "match");
  assert.equal(c.ballotRecordsAtConsole, c.ballotsCast);
  assert.equal(c.lost, 0);
  assert.equal(c.quarantined, 0);
  assert.equal(c.faultsReported, c.faultsExercised, c.unreported.join(" | "));
  assert.deepEqual(c.problems, []);
});
