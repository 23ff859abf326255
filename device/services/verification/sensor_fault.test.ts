// A voter at the table while the fingerprint module does not answer (flow.ts, S_SENSOR), with the
// real drivers against the fingerprint module and PN532 models (rig.test.ts): the device error at
// once instead of three captures against a dead module, nothing journalled for the voter, the
// supervisor's exemption still possible, and the voter verified normally once the module is back.

import { test } from "node:test";
import assert from "node:assert/strict";
import { PollsState, RecordKind, decodeVerificationEvent, type TurnoutCounts } from "../../../protocol/generated/device_codec.ts";
import type { Screen } from "../../platform/platform.ts";
import { Rig, makeVoters, registerArtifact, supervisorCard, voterCard } from "./rig.test.ts";

// 10 voters at 100 per mille: one exemption allowed.
const VOTERS = makeVoters(10);
const FINGER_BIT = 1 << 5; // Peripheral.FINGERPRINT
const SENSOR_ERROR: Screen = { key: "device.error", params: { part: "fingerprint" } };

function openRig(): Rig {
  const rig = new Rig();
  rig.boot();
  rig.run(1000);
  rig.loadAndOpen(registerArtifact(VOTERS, { capPermille: 100 }));
  return rig;
}

/** Unplugs the module and waits until the service reports it (the idle module's periodic check). */
function moduleDown(rig: Rig): void {
  rig.fp.setConnected(false);
  rig.run(60000);
  assert.equal(rig.svc.peripheralFaults(), FINGER_BIT, "the module's fault is known");
}

function moduleBack(rig: Rig): void {
  rig.fp.setConnected(true);
  rig.run(70000);
  assert.equal(rig.svc.peripheralFaults(), 0, "the module answers again");
}

/** Runs in 100 ms steps until `done` or `limitMs`; returns the time it took (limitMs + 1 when never). */
function runUntil(rig: Rig, done: () => boolean, limitMs: number): number {
  for (let t = 0; t <= limitMs; t += 100) {
    if (done()) return t;
    rig.run(100);
  }
  return limitMs + 1;
}

function shownSince(rig: Rig, from: number, key: string): Screen[] {
  return rig.screens.slice(from).filter((s) => s.key === key);
}

function voterRecords(rig: Rig): number {
  return (
    rig.recordsOf(RecordKind.VOTER_VERIFIED).length +
    rig.recordsOf(RecordKind.VOTER_EXEMPTED).length +
    rig.recordsOf(RecordKind.VERIFICATION_REJECTED).length
  );
}

test("module known faulted: the voter sees the sensor error within 2 s, nothing is journalled, and votes once it is back", () => {
  const rig = openRig();
  moduleDown(rig);
  const v = VOTERS[0];
  const from = rig.screens.length;
  rig.place(voterCard(v));
  const took = runUntil(rig, () => rig.screens.length > from && rig.screen().key === SENSOR_ERROR.key, 2000);
  assert.ok(took <= 2000, `the sensor error within 2 s of the card (took ${took} ms)`);
  assert.deepEqual(rig.screen(), SENSOR_ERROR);
  // The screen stays while the voter's card does (the supervisor may exempt): no capture is tried.
  rig.run(10000);
  assert.deepEqual(rig.screen(), SENSOR_ERROR);
  assert.equal(shownSince(rig, from, "verify.present_finger").length, 0, "no capture asked of a dead module");
  assert.equal(rig.screens.slice(from).filter((s) => s.key.startsWith("verify.rejected.")).length, 0, "no rejection shown");
  assert.equal(voterRecords(rig), 0, "no VOTER_VERIFIED and no rejection journalled");
  const c = rig.svc.counts();
  assert.equal(c.verified ?? 0, 0);
  assert.equal(c.rejected ?? 0, 0, "the station log counts no rejection either");
  // The card taken away: ready for the next voter at once.
  rig.place(null);
  rig.run(1000);
  assert.equal(rig.screen().key, "verify.present_card");

  // A second voter, then cancel: back to the idle screen, still nothing journalled.
  rig.place(voterCard(VOTERS[1]));
  rig.run(2000);
  assert.deepEqual(rig.screen(), SENSOR_ERROR);
  rig.press("cancel");
  rig.run(100);
  assert.equal(rig.screen().key, "verify.present_card");
  rig.place(null);
  rig.run(1000);
  assert.equal(voterRecords(rig), 0);

  // The module back: the same voters are verified normally (they were not marked as voted).
  moduleBack(rig);
  assert.equal(rig.voter(voterCard(v), [v.live]), "verify.verified");
  assert.equal(rig.voter(voterCard(VOTERS[1]), [VOTERS[1].live]), "verify.verified");
  const ev = rig.recordsOf(RecordKind.VOTER_VERIFIED).map((r) => decodeVerificationEvent(r.payload!));
  assert.deepEqual(
    ev.map((e) => [e.verified, e.attempts]),
    [
      [1, 1],
      [2, 1],
    ],
  );
  assert.equal(rig.recordsOf(RecordKind.VERIFICATION_REJECTED).length, 0);
});

test("module known faulted: the supervisor's exemption still works; the exempted voter has voted", () => {
  const rig = openRig();
  moduleDown(rig);
  const v = VOTERS[2];
  rig.place(voterCard(v));
  rig.run(1500);
  assert.deepEqual(rig.screen(), SENSOR_ERROR);
  rig.press("supervisor");
  rig.run(300);
  assert.deepEqual(rig.screen(), { key: "exempt.present_supervisor_card", params: { exempted: 0, cap: 1 } });
  rig.place(null); // the voter's card leaves, the supervisor's comes
  rig.run(600);
  rig.place(supervisorCard());
  rig.run(1500);
  assert.deepEqual(rig.screen(), { key: "verify.exempted", params: { exempted: 1, cap: 1 } });
  rig.place(null);
  rig.run(5000);
  const ex = rig.recordsOf(RecordKind.VOTER_EXEMPTED).map((r) => decodeVerificationEvent(r.payload!));
  assert.equal(ex.length, 1);
  assert.equal(ex[0].actor, "supervisor");
  assert.equal(ex[0].attempts ?? 0, 0, "no capture was tried");
  assert.equal(rig.recordsOf(RecordKind.VERIFICATION_REJECTED).length, 0);
  // The cap is reached: the next exemption is refused as usual (journalled EXEMPTION_CAP, the
  // exemption path's own verdict, not the finger's).
  rig.place(voterCard(VOTERS[3]));
  rig.run(1500);
  rig.press("supervisor");
  rig.run(300);
  assert.equal(rig.screen().key, "verify.rejected.exemption_cap");
  rig.place(null);
  rig.run(5000);

  moduleBack(rig);
  assert.equal(rig.voter(voterCard(v), []), "verify.rejected.already_voted", "the exempted voter has voted");
  assert.equal(rig.voter(voterCard(VOTERS[3]), [VOTERS[3].live]), "verify.verified");
});

test("module dies mid-capture: that attempt ends with the sensor error, no retries, no rejection; it comes back and the waiting voter goes on", () => {
  const rig = openRig();
  const v = VOTERS[4];
  const from = rig.screens.length;
  rig.place(voterCard(v));
  rig.run(1500);
  assert.deepEqual(rig.screen(), { key: "verify.present_finger", params: { attempt: 1, max: 3 } });
  rig.fp.setConnected(false);
  // The scan's timeout (5 s + extraction + 1 s), the CA probe, then one decisive probe: well
  // under the ~30 s of three attempts.
  const took = runUntil(rig, () => rig.screen().key === SENSOR_ERROR.key, 15000);
  assert.ok(took <= 12000, `the sensor error ${took} ms after the module died`);
  assert.deepEqual(rig.screen(), SENSOR_ERROR);
  assert.equal(rig.svc.peripheralFaults(), FINGER_BIT, "the probe's failure is a fault at once");
  assert.equal(shownSince(rig, from, "verify.present_finger").length, 1, "no second attempt against a dead module");
  assert.equal(shownSince(rig, from, "verify.fail.sensor").length, 0);
  assert.equal(voterRecords(rig), 0, "nothing journalled");

  // Plugged in again while the voter waits: the re-probe (2 s back-off) finds it and the captures
  // resume; the attempt the dead module swallowed is not counted.
  const mark = rig.screens.length;
  rig.fp.setConnected(true);
  const back = runUntil(rig, () => rig.screen().key === "verify.present_finger", 10000);
  assert.ok(back <= 10000, "the captures resume once the module answers");
  assert.equal(rig.svc.peripheralFaults(), 0);
  assert.deepEqual(rig.screen(), { key: "verify.present_finger", params: { attempt: 1, max: 3 } });
  rig.finger(v.live);
  rig.run(3000);
  assert.equal(rig.screen().key, "verify.verified");
  assert.equal(shownSince(rig, mark, "verify.present_finger").length, 1);
  rig.place(null);
  rig.run(5000);
  const ev = rig.recordsOf(RecordKind.VOTER_VERIFIED).map((r) => decodeVerificationEvent(r.payload!));
  assert.equal(ev.length, 1);
  assert.equal(ev[0].attempts, 1);
  assert.equal(rig.recordsOf(RecordKind.VERIFICATION_REJECTED).length, 0);
});

test("a voter held by the module fault when the polls close: let go, the report counts no rejection", () => {
  const rig = openRig();
  moduleDown(rig);
  rig.place(voterCard(VOTERS[5]));
  rig.run(1500);
  assert.deepEqual(rig.screen(), SENSOR_ERROR);
  let report: TurnoutCounts | null = null;
  rig.svc.closePolls((err, r) => {
    assert.equal(err, null);
    report = r;
  }, "host");
  rig.run(2000);
  assert.equal(rig.svc.state(), PollsState.CLOSED);
  assert.ok(report !== null);
  const rep = report as TurnoutCounts;
  assert.equal(rep.rejected ?? 0, 0);
  assert.equal(rep.verified ?? 0, 0);
  assert.equal(rig.screen().key, "polls.closed");
  assert.equal(voterRecords(rig), 0);
});
