// The station kit on its own, on a virtual clock: real prints give the verdicts they should, the
// artifacts it signs load through the firmware's transfer receiver (and a tampered one does not),
// both devices open and close their polls, the tally matches the ballots, and the privacy scan
// finds a voter id or template bytes when they are there (and nothing in a real VVD's output).

import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../clock/timers.ts";
import { PollsState, Status } from "../../protocol/generated/device_codec.ts";
import { encodeFrame } from "../../protocol/framing.ts";
import { StationDevice, buildStation, createCommission, scanForSecrets, tickingPacer } from "./station_kit.ts";

const commission = createCommission();
const station = buildStation({ commission, stationId: "ST-KIT-01", electionId: "GE-KIT", voters: 3 });

test("buildStation: real prints, signed artifacts, ballots and the expected tally", () => {
  assert.equal(station.voters.length, 3);
  const ids = new Set([...station.voters.map((v) => v.id), station.outsider.id]);
  assert.equal(ids.size, 4, "distinct voters, the outsider included");
  assert.ok(!station.register.voters?.some((v) => v.voterId === station.outsider.id), "the outsider is not on the register");
  for (const v of station.voters) {
    assert.notDeepEqual(v.live, v.registerIso);
    assert.equal(v.cardTemplate.length % 3, 0, "compact card format: 3 bytes per minutia");
  }
  const b1 = station.ballot([0, [1, 3]]);
  const b2 = station.ballot([null, [0, 1, 2]]);
  assert.notEqual(b1.serial, b2.serial);
  const t = station.expectedTally([b1, b2]);
  assert.deepEqual(t[0], { contestId: "parliament", votes: [1, 0, 0], blank: 1, invalid: 0 });
  assert.deepEqual(t[1], { contestId: "council", votes: [0, 1, 0, 1, 0], blank: 0, invalid: 1 });
  assert.throws(() => station.ballot([0]), /2 contests/);
});

test("scanForSecrets finds an id or template window in a frame and in console text", () => {
  const s = station.secrets();
  const v = station.voters[0];
  const leak = new Uint8Array(40);
  leak.set(v.registerIso.subarray(30, 50), 5);
  const chunks = [encodeFrame(leak), new Uint8Array(Buffer.from(`hello ${v.id}\n`))];
  const r = scanForSecrets(chunks, s);
  assert.equal(r.frames, 1);
  assert.ok(r.findings.some((f) => f.what === "template" && f.where === "frame"), JSON.stringify(r.findings));
  assert.ok(r.findings.some((f) => f.what === "voter-id" && f.where === "console"));
  assert.deepEqual(scanForSecrets([encodeFrame(new Uint8Array(64))], s).findings, []);
});

test("tickingPacer: virtual time follows real time at its speed, and a stalled host does not make it jump", async () => {
  const clock = new VirtualClock();
  const pacer = tickingPacer(clock, { speed: 2, tickMs: 5 });
  try {
    const r0 = performance.now();
    await pacer.sleep(200);
    const real = performance.now() - r0;
    assert.ok(clock.now() >= 200, `virtual ${clock.now()} ms`);
    assert.ok(real < 1000, `200 virtual ms at 2x took ${real.toFixed(0)} ms of real time`);
    const before = clock.now();
    const stallUntil = performance.now() + 300;
    while (performance.now() < stallUntil) {
      // the host is stuck for 300 ms
    }
    await new Promise((r) => setTimeout(r, 12));
    assert.ok(clock.now() - before <= 4 * 5 * 2 * 3, `after a 300 ms stall the clock moved ${clock.now() - before} ms`);
  } finally {
    pacer.stop();
  }
});

test("a VVD and a RAD driven through an election day on a virtual clock", async () => {
  const clock = new VirtualClock();
  const vvd = new StationDevice({ serial: "VVD-KIT-01", role: "verification", commissionKey: commission.publicKey, clock });
  const rad = new StationDevice({ serial: "RAD-KIT-01", role: "result", commissionKey: commission.publicKey, clock });
  await vvd.start();
  await rad.start();

  // A register with one byte of its signature flipped is refused; the real one loads.
  const bad = station.registerArtifact.slice();
  bad[bad.length - 3] ^= 1;
  const refused = await vvd.loadDirect("station-data", bad);
  assert.equal(refused.status, Status.DENIED, refused.message);
  assert.equal(vvd.pollsState(), PollsState.NOT_LOADED);
  const ok = await vvd.loadDirect("station-data", station.registerArtifact);
  assert.equal(ok.status ?? 0, Status.OK, ok.message);
  assert.equal(vvd.pollsState(), PollsState.READY);
  // A fresh RAD learns its station from the configuration, then takes the election.
  assert.equal((await rad.loadDirect("configuration", station.configurationArtifact)).status ?? 0, Status.OK);
  const el = await rad.loadDirect("election-definition", station.electionArtifact);
  assert.equal(el.status ?? 0, Status.OK, el.message);

  await vvd.openPollsVvd(station.supervisorCard);
  await rad.openPollsRad();
  const [a, b] = station.voters;
  assert.equal((await vvd.presentVoter(a.card, [a.live])).verdict, "verify.verified");
  const imp = await vvd.presentVoter(b.card, [b.impostor]);
  assert.equal(imp.verdict, "verify.rejected.finger_mismatch");
  assert.equal(imp.attempts, 3);
  assert.equal((await vvd.presentVoter(station.outsider.card, [station.outsider.live])).verdict, "verify.rejected.not_in_register");
  assert.equal((await vvd.presentVoter(a.card, [a.live])).verdict, "verify.rejected.already_voted");

  const ballot = station.ballot([2, [0, 4]]);
  const fed = await rad.feed([ballot, { ...ballot }]);
  assert.deepEqual(fed.accepted, [ballot.serial]);
  assert.equal(fed.diverted.length, 1, "the duplicate serial goes to the reject bin");

  const turnout = await vvd.closePollsVvd(station.supervisorCard);
  assert.equal(turnout.verified, 1);
  assert.equal(turnout.final, true);
  const result = await rad.closePollsRad();
  assert.equal(result.ballotsCounted, 1);
  assert.deepEqual(result.contests?.map((c) => c.votes), station.expectedTally([ballot]).map((c) => c.votes));
  assert.ok(rad.voucherText().length >= 1, "a voucher was printed");
  vvd.powerCut();
  rad.powerCut();
});
