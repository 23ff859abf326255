// Power cuts at every flash step (every byte programmed, every page erased, on the one flash chip
// that holds both the firmware journal and the station log) of a verification, an exemption, a
// rejection and the close of the polls, and again during the repair at the next boot: afterwards
// the counts always equal the records in the journal, a voter counts exactly once, and a verdict
// that was shown is never lost.

import { test } from "node:test";
import assert from "node:assert/strict";
import { PollsState, RecordKind, decodeTurnoutCounts, decodeVerificationEvent } from "../../../protocol/generated/device_codec.ts";
import { PowerCut } from "../../../simulator/models/flash.ts";
import { StationLog } from "./turnout.ts";
import { Rig, makeVoters, registerArtifact, supervisorCard, voterCard, type TestVoter } from "./rig.test.ts";

const VOTERS = makeVoters(4);

/** The counts the device keeps equal what its journal says, record for record. */
function invariant(rig: Rig, what: string): void {
  const c = rig.svc.counts();
  const ver = rig.recordsOf(RecordKind.VOTER_VERIFIED).map((r) => decodeVerificationEvent(r.payload!));
  const ex = rig.recordsOf(RecordKind.VOTER_EXEMPTED).map((r) => decodeVerificationEvent(r.payload!));
  const rej = rig.recordsOf(RecordKind.VERIFICATION_REJECTED);
  assert.equal(c.verified ?? 0, ver.length + ex.length, `${what}: voters marked = their records`);
  assert.equal(c.exempted ?? 0, ex.length, `${what}: exemptions = their records`);
  assert.equal(c.rejected ?? 0, rej.length, `${what}: rejections = their records`);
  const ordinals = ver.concat(ex).map((e) => e.verified).sort();
  assert.deepEqual(ordinals, ordinals.map((_x, i) => i + 1), `${what}: each voter once, numbered 1..n`);
}

/** Boots after a cut; a cut armed for the boot's own repair may strike, then it boots again. */
function bootAfterCut(rig: Rig): void {
  rig.powerCut();
  for (;;) {
    try {
      rig.boot();
      break;
    } catch (e) {
      if (!(e instanceof PowerCut)) throw e;
      rig.powerCut();
    }
  }
}

function freshOpen(voters: TestVoter[], capPermille = 0): Rig {
  const rig = new Rig({ journalPages: 4, dataPages: 16 });
  rig.boot();
  rig.run(500);
  rig.loadAndOpen(registerArtifact(voters, { capPermille }));
  return rig;
}

/** Steps (bytes + erases) the scenario writes, measured on a run without a cut. */
function measure(prepare: (rig: Rig) => void, act: (rig: Rig) => void): number {
  const rig = freshOpen(VOTERS, 500);
  prepare(rig);
  const s0 = rig.chip.steps;
  act(rig);
  return rig.chip.steps - s0;
}

const genuine = (rig: Rig): void => {
  rig.place(voterCard(VOTERS[0]));
  rig.run(1500);
};
const finger = (rig: Rig): void => {
  rig.finger(VOTERS[0].live);
  const cut = rig.run(4000);
  if (cut) throw cut;
};

test("a power cut at every flash step of a verification: the voter counts exactly once", () => {
  const total = measure(genuine, finger);
  assert.ok(total > 100 && total < 2000, `a verification writes ${total} steps`);
  let before = 0;
  let after = 0;
  for (let k = 0; k < total; k++) {
    const rig = freshOpen(VOTERS, 500);
    genuine(rig);
    const from = rig.screens.length;
    rig.chip.armPowerCut(k, 1000 + k);
    rig.finger(VOTERS[0].live);
    const cut = rig.run(4000);
    assert.ok(cut, `step ${k}: the cut struck`);
    const shown = rig.screens.slice(from).some((s) => s.key === "verify.verified");
    bootAfterCut(rig);
    const from2 = rig.screens.length;
    rig.run(300);
    invariant(rig, `cut at step ${k}`);
    const c = rig.svc.counts().verified ?? 0;
    if (shown) assert.equal(c, 1, `step ${k}: a verdict shown is never lost`);
    if (c === 1) after++;
    else before++;
    // The card is still on the reader: the voter goes on (or is told they have voted).
    rig.finger(VOTERS[0].live);
    rig.run(5000);
    const verdicts = rig.screens.slice(from2).filter((s) => s.key === "verify.verified" || s.key.startsWith("verify.rejected"));
    assert.deepEqual(verdicts.map((s) => s.key), [c === 1 ? "verify.rejected.already_voted" : "verify.verified"], `step ${k}`);
    invariant(rig, `step ${k}, after the retry`);
    assert.equal(rig.svc.counts().verified, 1, `step ${k}: counted once`);
    let report: number | undefined;
    rig.svc.closePolls((err, r) => {
      assert.equal(err, null);
      report = r?.verified;
    });
    rig.run(1000);
    assert.equal(report, 1);
    assert.equal(decodeTurnoutCounts(rig.recordsOf(RecordKind.TURNOUT_REPORT)[0].payload!).verified, 1);
  }
  assert.ok(before > 0 && after > 0, `cuts landed before (${before}) and after (${after}) the commit point`);
});

test("a second cut during the repair at boot changes nothing", () => {
  const total = measure(genuine, finger);
  let repairs = 0;
  let cutRepairs = 0;
  for (let k = 0; k < total; k += 4) {
    const rig = freshOpen(VOTERS, 500);
    genuine(rig);
    rig.chip.armPowerCut(k, k + 7);
    rig.finger(VOTERS[0].live);
    assert.ok(rig.run(4000));
    rig.powerCut();
    // Only cuts that leave the mark open (intent written, commit not) need a repair at boot.
    const probe = new StationLog({ flash: rig.svc.log._f });
    probe.open(rig.svc.register.count);
    if (probe.pending() === null) continue;
    repairs++;
    const snap = rig.chip.snapshot();
    for (let j = 0; j < 14; j++) {
      const again = new Rig({ journalPages: 4, dataPages: 16, snapshot: snap });
      again.chip.armPowerCut(j, j + 11);
      let cut = false;
      try {
        again.boot();
      } catch (e) {
        if (!(e instanceof PowerCut)) throw e;
        cut = true;
      }
      again.chip.disarmPowerCut();
      if (cut) {
        cutRepairs++;
        bootAfterCut(again);
      }
      again.run(300);
      invariant(again, `cut at ${k}, then at ${j} of the repair`);
      assert.equal(again.svc.log.pending(), null, "settled");
    }
  }
  assert.ok(repairs > 10, `${repairs} open marks repaired`);
  assert.ok(cutRepairs > 0);
});

test("a power cut at every step of an exemption and of a rejection keeps counts equal to records", () => {
  const exemptPrepare = (rig: Rig): void => {
    rig.place(voterCard(VOTERS[1]));
    rig.run(1500);
    rig.press("supervisor");
    rig.run(300);
    rig.place(null);
    rig.run(300);
  };
  const exemptAct = (rig: Rig): void => {
    rig.place(supervisorCard());
    const cut = rig.run(3000);
    if (cut) throw cut;
  };
  const rejectPrepare = (rig: Rig): void => {
    rig.place(voterCard(VOTERS[2]));
    rig.run(1500);
    rig.finger(VOTERS[2].impostor);
    rig.finger(VOTERS[2].impostor);
    rig.run(5000);
  };
  const rejectAct = (rig: Rig): void => {
    rig.finger(VOTERS[2].impostor);
    const cut = rig.run(4000);
    if (cut) throw cut;
  };
  for (const [name, prep, act, kind] of [
    ["exemption", exemptPrepare, exemptAct, RecordKind.VOTER_EXEMPTED],
    ["rejection", rejectPrepare, rejectAct, RecordKind.VERIFICATION_REJECTED],
  ] as const) {
    const total = measure(prep, act);
    for (let k = 0; k < total; k += 2) {
      const rig = freshOpen(VOTERS, 500);
      prep(rig);
      rig.chip.armPowerCut(k, 77 + k);
      assert.throws(() => act(rig), PowerCut, `${name} step ${k}`);
      bootAfterCut(rig);
      rig.run(300);
      invariant(rig, `${name}, cut at step ${k}`);
      assert.ok(rig.recordsOf(kind).length <= 1);
    }
  }
});

test("a power cut at every step of closing the polls: closed with one report, or open with none", () => {
  const prepare = (rig: Rig): void => {
    rig.voter(voterCard(VOTERS[0]), [VOTERS[0].live]);
  };
  const act = (rig: Rig): void => {
    rig.svc.closePolls(() => {});
    const cut = rig.run(2000);
    if (cut) throw cut;
  };
  const total = measure(prepare, act);
  let closed = 0;
  let open = 0;
  for (let k = 0; k < total; k++) {
    const rig = freshOpen(VOTERS, 500);
    prepare(rig);
    rig.chip.armPowerCut(k, 5 + k);
    assert.throws(() => act(rig), PowerCut);
    bootAfterCut(rig);
    rig.run(300);
    const reports = rig.recordsOf(RecordKind.TURNOUT_REPORT).length;
    if (rig.svc.state() === PollsState.CLOSED) {
      closed++;
      assert.equal(reports, 1, `step ${k}: closed means reported`);
    } else {
      open++;
      assert.equal(rig.svc.state(), PollsState.OPEN);
      assert.equal(reports, 0, `step ${k}: open means no report`);
      let err: string | null = "not called";
      rig.svc.closePolls((e) => (err = e));
      rig.run(1000);
      assert.equal(err, null);
      assert.equal(rig.recordsOf(RecordKind.TURNOUT_REPORT).length, 1);
    }
    assert.equal(decodeTurnoutCounts(rig.recordsOf(RecordKind.TURNOUT_REPORT)[0].payload!).verified, 1);
  }
  assert.ok(closed > 0 && open > 0);
});
