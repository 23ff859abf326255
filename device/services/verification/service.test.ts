// The verification service at the table, with real parts (see rig.test.ts): genuine voters,
// impostors, every capture failure, wrong station, double voting across a reboot, the supervisor
// exemption and its cap, polls opened and closed by the supervisor, hourly turnout and the signed
// report, a full journal, and privacy: no voter id or template byte in any record, screen or log.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  PollsState,
  RecordKind,
  RejectReason,
  decodeAuditEvent,
  decodeTurnoutCounts,
  decodeVerificationEvent,
  type Record as JournalRecord,
  type TurnoutCounts,
} from "../../../protocol/generated/device_codec.ts";
import { signingBytes } from "../recorder.ts";
import { verifyP256 } from "../../../test/helpers/ecdsa.ts";
import { renderScreen, LANGUAGES } from "../../../simulator/ui/screens.ts";
import { VoterCardModel } from "../../../simulator/models/voter_card.ts";
import { Rig, makeVoters, registerArtifact, supervisorCard, voterCard, STATION, T0, SUPERVISOR_ID, type TestVoter } from "./rig.test.ts";

const VOTERS = makeVoters(12);
const HOUR = 3600000;

function events(rig: Rig, kind: number) {
  return rig.recordsOf(kind).map((r) => decodeVerificationEvent(r.payload ?? new Uint8Array(0)));
}

function turnout(r: JournalRecord): TurnoutCounts {
  return decodeTurnoutCounts(r.payload ?? new Uint8Array(0));
}

function byReason(t: TurnoutCounts): { [reason: number]: number } {
  const out: { [reason: number]: number } = {};
  for (const r of t.rejectedByReason ?? []) out[r.reason ?? 0] = r.count ?? 0;
  return out;
}

function keysSince(rig: Rig, from: number): string[] {
  return rig.screens.slice(from).map((s) => s.key);
}

function openRig(voters: TestVoter[] = VOTERS.slice(0, 8), opts: Parameters<typeof registerArtifact>[1] = {}): Rig {
  const rig = new Rig();
  rig.boot();
  rig.run(1000);
  rig.loadAndOpen(registerArtifact(voters, opts));
  return rig;
}

function signatureOk(rig: Rig, r: JournalRecord): boolean {
  const key = rig.se.publicKey(0)!;
  const msg = signingBytes({ seq: r.seq, timeMs: r.timeMs, kind: r.kind, payload: r.payload ?? new Uint8Array(0), prevSeq: r.prevSeq });
  return verifyP256(key, msg, r.signature ?? new Uint8Array(0));
}

test("a genuine voter is verified: signed record on flash before the verdict, counted once", () => {
  const rig = new Rig();
  rig.boot();
  rig.run(1000);
  assert.equal(rig.screen().key, "polls.not_loaded");
  assert.equal(rig.svc.state(), PollsState.NOT_LOADED);
  assert.equal(rig.svc.loadRegister(registerArtifact(VOTERS.slice(0, 8))), null);
  rig.run(500);
  assert.equal(rig.svc.state(), PollsState.READY);
  assert.deepEqual(rig.screen(), { key: "polls.ready", params: { voters: 8 } });
  assert.equal(rig.svc.stationId(), STATION);
  assert.equal(rig.svc.openPolls("host"), null);
  rig.run(500);
  assert.equal(rig.svc.state(), PollsState.OPEN);
  assert.equal(rig.screen().key, "verify.present_card");

  const v = VOTERS[0];
  const from = rig.screens.length;
  rig.place(voterCard(v));
  rig.run(1500);
  assert.deepEqual(rig.screen(), { key: "verify.present_finger", params: { attempt: 1, max: 3 } });
  // The verdict must not show before the record is in the journal.
  let shownWithRecord: boolean | null = null;
  const show = rig.svc.flow._d.show;
  rig.svc.flow._d = {
    show: (s) => {
      if (s.key === "verify.verified") shownWithRecord = rig.recordsOf(RecordKind.VOTER_VERIFIED).length === 1;
      show(s);
    },
  };
  rig.finger(v.live);
  rig.run(3000);
  assert.deepEqual(rig.screen(), { key: "verify.verified", params: { verified: 1 } });
  assert.equal(shownWithRecord, true, "the record was on flash when the verdict showed");
  assert.deepEqual(keysSince(rig, from), ["verify.reading_card", "verify.present_finger", "verify.recording", "verify.verified"]);
  const recs = rig.recordsOf(RecordKind.VOTER_VERIFIED);
  assert.equal(recs.length, 1);
  assert.ok(signatureOk(rig, recs[0]), "signed by the device key");
  const e = decodeVerificationEvent(recs[0].payload!);
  assert.equal(e.stationId, STATION);
  assert.equal(e.verified, 1);
  assert.equal(e.exempted ?? 0, 0);
  assert.equal(e.attempts, 1);
  const c = rig.svc.counts();
  assert.equal(c.verified, 1);
  assert.equal(c.exempted ?? 0, 0);
  assert.equal(c.rejected ?? 0, 0);
  assert.equal(c.registerSize, 8);
  // Card taken away: back to waiting for the next voter.
  rig.place(null);
  rig.run(5000);
  assert.deepEqual(rig.screen(), { key: "verify.present_card", params: { verified: 1, exempted: 0 } });
});

test("an impostor is rejected after three attempts, each failure shown; the real voter can still vote", () => {
  const rig = openRig();
  const v = VOTERS[1];
  const from = rig.screens.length;
  const key = rig.voter(voterCard(v), [v.impostor, v.impostor, v.impostor]);
  assert.equal(key, "verify.rejected.finger_mismatch");
  const shown = rig.screens.slice(from).filter((s) => s.key.startsWith("verify.fail") || s.key === "verify.present_finger");
  assert.deepEqual(shown, [
    { key: "verify.present_finger", params: { attempt: 1, max: 3 } },
    { key: "verify.fail.no_match", params: { attempt: 1, max: 3 } },
    { key: "verify.present_finger", params: { attempt: 2, max: 3 } },
    { key: "verify.fail.no_match", params: { attempt: 2, max: 3 } },
    { key: "verify.present_finger", params: { attempt: 3, max: 3 } },
  ]);
  assert.equal(rig.recordsOf(RecordKind.VOTER_VERIFIED).length, 0);
  const rej = events(rig, RecordKind.VERIFICATION_REJECTED);
  assert.equal(rej.length, 1);
  assert.equal(rej[0].reason, RejectReason.FINGER_MISMATCH);
  assert.equal(rej[0].attempts, 3);
  assert.equal(rig.svc.counts().rejected, 1);
  // A mistake on the second attempt, then the right finger.
  assert.equal(rig.voter(voterCard(v), [v.impostor, v.live]), "verify.verified");
  assert.equal(events(rig, RecordKind.VOTER_VERIFIED)[0].attempts, 2);
});

test("capture failures show their reason; three without a usable image reject CAPTURE_FAILED", () => {
  const rig = openRig();
  const v = VOTERS[2];
  let from = rig.screens.length;
  rig.place(voterCard(v));
  rig.run(1500); // nobody touches the sensor: the module gives up after 5 s
  rig.run(6000);
  rig.fault("poor-image");
  rig.run(3000);
  rig.fault("timeout"); // the module hangs: the driver gives up after its own timeout
  rig.run(12000);
  const failures = rig.screens.slice(from).filter((s) => s.key.startsWith("verify.fail") || s.key.startsWith("verify.rejected"));
  assert.deepEqual(failures, [
    { key: "verify.fail.no_finger", params: { attempt: 1, max: 3 } },
    { key: "verify.fail.poor_image", params: { attempt: 2, max: 3 } },
    { key: "verify.rejected.capture_failed", params: {} },
  ]);
  const rej = events(rig, RecordKind.VERIFICATION_REJECTED);
  assert.equal(rej.length, 1);
  assert.equal(rej[0].reason, RejectReason.CAPTURE_FAILED);
  assert.equal(rej[0].attempts, 3);
  rig.place(null);
  rig.run(6000);
  // A hung module on the first attempt is shown as a timeout; the voter goes on.
  from = rig.screens.length;
  rig.place(voterCard(v));
  rig.run(1500);
  rig.fault("timeout");
  rig.finger(v.live);
  rig.run(16000);
  assert.deepEqual(
    rig.screens.slice(from).filter((s) => s.key.startsWith("verify.fail")),
    [{ key: "verify.fail.timeout", params: { attempt: 1, max: 3 } }],
  );
  assert.ok(keysSince(rig, from).includes("verify.verified"));
  assert.equal(events(rig, RecordKind.VOTER_VERIFIED)[0].attempts, 2);
});

test("a finger that matches the register but not the card is a CARD_MISMATCH", () => {
  const rig = openRig();
  const v = VOTERS[3];
  const forged = new VoterCardModel({ kind: "voter", id: v.id, template: VOTERS[4].card });
  assert.equal(rig.voter(forged, [v.live, v.live, v.live]), "verify.rejected.card_mismatch");
  assert.equal(events(rig, RecordKind.VERIFICATION_REJECTED)[0].reason, RejectReason.CARD_MISMATCH);
  const noTemplate = new VoterCardModel({ kind: "voter", id: v.id, template: new Uint8Array([1, 2]) });
  assert.equal(rig.voter(noTemplate, []), "verify.rejected.card_unreadable");
  assert.equal(rig.svc.counts().verified ?? 0, 0);
});

test("a voter of another station is NOT_IN_REGISTER; a supervisor card alone is no voter", () => {
  const rig = openRig(VOTERS.slice(0, 6));
  assert.equal(rig.voter(voterCard(VOTERS[9]), []), "verify.rejected.not_in_register");
  const rej = events(rig, RecordKind.VERIFICATION_REJECTED);
  assert.equal(rej[0].reason, RejectReason.NOT_IN_REGISTER);
  assert.equal(rej[0].attempts ?? 0, 0);
  assert.equal(rig.voter(supervisorCard(), []), "verify.supervisor_card");
  assert.equal(rig.recordsOf(RecordKind.VERIFICATION_REJECTED).length, 1, "no record for the supervisor card");
  // A card of another application.
  assert.equal(rig.voter(new VoterCardModel({ kind: "voter", id: "X", aid: new Uint8Array([0xa0, 0, 0, 0, 3]) }), []), "verify.rejected.card_unreadable");
});

test("a second attempt to vote after a reboot is ALREADY_VOTED; counts survive the reboot", () => {
  const rig = openRig();
  const v = VOTERS[0];
  assert.equal(rig.voter(voterCard(v), [v.live]), "verify.verified");
  assert.equal(rig.voter(voterCard(VOTERS[1]), [VOTERS[1].impostor, VOTERS[1].impostor, VOTERS[1].impostor]), "verify.rejected.finger_mismatch");
  rig.reboot();
  rig.run(1000);
  assert.equal(rig.svc.state(), PollsState.OPEN);
  assert.equal(rig.screen().key, "verify.present_card");
  const c = rig.svc.counts();
  assert.equal(c.verified, 1);
  assert.deepEqual(byReason(c), { [RejectReason.FINGER_MISMATCH]: 1 });
  assert.equal(rig.voter(voterCard(v), []), "verify.rejected.already_voted");
  assert.equal(rig.svc.counts().verified, 1);
  assert.equal(byReason(rig.svc.counts())[RejectReason.ALREADY_VOTED], 1);
  assert.equal(rig.recordsOf(RecordKind.VOTER_VERIFIED).length, 1);
  // Presented again and left on the reader: rejected once, not again and again.
  rig.place(voterCard(v));
  rig.run(8000);
  assert.equal(rig.recordsOf(RecordKind.VERIFICATION_REJECTED).length, 3);
  rig.run(20000);
  assert.equal(rig.recordsOf(RecordKind.VERIFICATION_REJECTED).length, 3);
  rig.place(null);
  rig.run(1000);
});

test("cards are refused until the polls open; the supervisor opens them with card and button", () => {
  const rig = new Rig();
  rig.boot();
  rig.run(1000);
  assert.equal(rig.svc.loadRegister(registerArtifact(VOTERS.slice(0, 5))), null);
  rig.run(500);
  assert.equal(rig.voter(voterCard(VOTERS[0]), []), "polls.not_open");
  assert.equal(rig.recordsOf(RecordKind.VERIFICATION_REJECTED).length, 0);
  rig.press("supervisor");
  rig.run(500);
  assert.equal(rig.screen().key, "supervisor.present_card");
  rig.place(voterCard(VOTERS[1]));
  rig.run(1000);
  assert.equal(rig.screen().key, "supervisor.denied");
  rig.place(null);
  rig.run(5000);
  assert.equal(rig.svc.state(), PollsState.READY);
  rig.press("supervisor");
  rig.run(500);
  rig.place(supervisorCard("SUP-NOT-OURS"));
  rig.run(1000);
  assert.equal(rig.screen().key, "supervisor.denied");
  rig.place(null);
  rig.run(5000);
  rig.press("supervisor");
  rig.run(300);
  rig.place(supervisorCard());
  rig.run(1000);
  assert.deepEqual(rig.screen(), { key: "supervisor.confirm_open", params: { voters: 5 } });
  rig.press("ok");
  rig.run(500);
  assert.equal(rig.svc.state(), PollsState.OPEN);
  const audit = rig.recordsOf(RecordKind.AUDIT).map((r) => decodeAuditEvent(r.payload!));
  assert.ok(audit.some((a) => a.event === "polls.opened" && a.actor === "supervisor"));
  rig.place(null);
  rig.run(1000);
  assert.equal(rig.screen().key, "verify.present_card");
  // No waiting forever for a supervisor: the prompt times out.
  rig.press("supervisor");
  rig.run(31000);
  assert.equal(rig.screen().key, "verify.present_card");
  assert.equal(rig.svc.loadRegister(registerArtifact(VOTERS.slice(0, 3))), "polls have been opened: clear the election first");
});

test("exemption: supervisor card after the voter's card and the button; other cards refused; the cap holds", () => {
  // 20 voters at 100 per mille: 2 exemptions.
  const voters = makeVoters(20);
  const rig = openRig(voters, { capPermille: 100 });
  const exempt = (v: TestVoter, card: VoterCardModel): string => {
    rig.place(voterCard(v));
    rig.run(1500);
    assert.equal(rig.screen().key, "verify.present_finger");
    rig.press("supervisor");
    rig.run(500);
    const s = rig.screen();
    if (s.key !== "exempt.present_supervisor_card") {
      rig.place(null);
      rig.run(5000);
      return s.key;
    }
    rig.place(null); // the voter's card leaves, the supervisor's comes
    rig.run(600);
    rig.place(card);
    rig.run(1500);
    const key = rig.screen().key;
    rig.place(null);
    rig.run(5000);
    return key;
  };
  assert.equal(exempt(voters[0], voterCard(voters[5])), "verify.rejected.exemption_denied");
  assert.equal(exempt(voters[0], supervisorCard("SUP-ELSEWHERE")), "verify.rejected.exemption_denied");
  assert.equal(exempt(voters[0], supervisorCard()), "verify.exempted");
  assert.deepEqual(rig.screens.filter((s) => s.key === "verify.exempted").at(-1), { key: "verify.exempted", params: { exempted: 1, cap: 2 } });
  assert.equal(exempt(voters[1], supervisorCard()), "verify.exempted");
  assert.equal(exempt(voters[2], supervisorCard()), "verify.rejected.exemption_cap");
  const ex = rig.recordsOf(RecordKind.VOTER_EXEMPTED);
  assert.equal(ex.length, 2);
  for (const r of ex) assert.ok(signatureOk(rig, r));
  const evs = ex.map((r) => decodeVerificationEvent(r.payload!));
  assert.deepEqual(
    evs.map((e) => [e.actor, e.verified, e.exempted]),
    [
      ["supervisor", 1, 1],
      ["supervisor", 2, 2],
    ],
  );
  const rej = events(rig, RecordKind.VERIFICATION_REJECTED).map((e) => e.reason);
  assert.deepEqual(rej, [RejectReason.EXEMPTION_DENIED, RejectReason.EXEMPTION_DENIED, RejectReason.EXEMPTION_CAP]);
  // An exempted voter has voted.
  assert.equal(rig.voter(voterCard(voters[0]), []), "verify.rejected.already_voted");
  // The cap survives a reboot; biometric verification still works.
  rig.reboot();
  rig.run(1000);
  assert.equal(rig.svc.counts().exempted, 2);
  assert.equal(exempt(voters[3], supervisorCard()), "verify.rejected.exemption_cap");
  assert.equal(rig.voter(voterCard(voters[3]), [voters[3].live]), "verify.verified");
  assert.equal(rig.svc.counts().verified, 3, "verified counts every voter marked, exempted ones included");
  // Cancel during the supervisor wait.
  rig.place(voterCard(voters[4]));
  rig.run(1500);
  rig.press("supervisor");
  rig.run(300);
  assert.equal(rig.screen().key, "verify.rejected.exemption_cap");
});

test("hourly turnout records at each wall-clock hour, a signed final report at close, exact after reboots", () => {
  const rig = openRig(); // opened at 06:40
  const v = VOTERS;
  assert.equal(rig.voter(voterCard(v[0]), [v[0].live]), "verify.verified");
  rig.run(HOUR / 3); // past 07:00
  let hourly = rig.recordsOf(RecordKind.TURNOUT_HOURLY);
  assert.equal(hourly.length, 1);
  assert.ok(signatureOk(rig, hourly[0]));
  let t = turnout(hourly[0]);
  assert.equal(t.periodEndMs, Date.UTC(2027, 3, 11, 7));
  assert.equal(t.verified, 1);
  assert.equal(t.registerSize, 8);
  assert.equal(t.stationId, STATION);
  assert.equal(t.final ?? false, false);
  assert.equal(rig.voter(voterCard(v[1]), [v[1].live]), "verify.verified");
  assert.equal(rig.voter(voterCard(v[2]), [v[2].impostor, v[2].impostor, v[2].impostor]), "verify.rejected.finger_mismatch");
  assert.equal(rig.voter(voterCard(v[1]), []), "verify.rejected.already_voted");
  rig.run(HOUR); // past 08:00
  hourly = rig.recordsOf(RecordKind.TURNOUT_HOURLY);
  assert.equal(hourly.length, 2);
  t = turnout(hourly[1]);
  assert.equal(t.periodEndMs, Date.UTC(2027, 3, 11, 8));
  assert.equal(t.verified, 2);
  assert.equal(t.rejected, 2);
  assert.deepEqual(byReason(t), { [RejectReason.FINGER_MISMATCH]: 1, [RejectReason.ALREADY_VOTED]: 1 });
  // Reboot at 08:2x: no second 08:00 record, the 09:00 one carries the same counts.
  rig.reboot();
  rig.run(HOUR);
  hourly = rig.recordsOf(RecordKind.TURNOUT_HOURLY);
  assert.deepEqual(hourly.map((r) => turnout(r).periodEndMs), [7, 8, 9].map((h) => Date.UTC(2027, 3, 11, h)));
  assert.equal(turnout(hourly[2]).verified, 2);
  assert.equal(turnout(hourly[2]).rejected, 2);
  // Off for two and a half hours: one record for the last hour passed, none for the hours missed.
  rig.powerCut();
  rig.clock.advance(2.5 * HOUR);
  rig.boot();
  rig.run(5000);
  hourly = rig.recordsOf(RecordKind.TURNOUT_HOURLY);
  assert.equal(hourly.length, 4);
  assert.equal(turnout(hourly[3]).periodEndMs, Date.UTC(2027, 3, 11, 11));
  // The supervisor closes the polls.
  rig.press("supervisor");
  rig.run(300);
  rig.place(supervisorCard());
  rig.run(1000);
  assert.deepEqual(rig.screen(), { key: "supervisor.confirm_close", params: { verified: 2, exempted: 0 } });
  rig.press("ok");
  rig.run(1000);
  assert.equal(rig.svc.state(), PollsState.CLOSED);
  assert.deepEqual(rig.screen(), { key: "polls.closed", params: { verified: 2, exempted: 0, rejected: 2 } });
  const reports = rig.recordsOf(RecordKind.TURNOUT_REPORT);
  assert.equal(reports.length, 1);
  assert.ok(signatureOk(rig, reports[0]));
  const rep = turnout(reports[0]);
  assert.equal(rep.final, true);
  assert.equal(rep.verified, 2);
  assert.equal(rep.exempted ?? 0, 0);
  assert.equal(rep.rejected, 2);
  assert.equal(rep.registerSize, 8);
  assert.equal(rep.electionId, "GE-2027");
  assert.ok(Math.abs((rep.periodEndMs ?? 0) - rig.wallMs()) < 5000);
  // Closed: cards refused, no more hourly records, also after a reboot.
  rig.place(null);
  rig.run(1000);
  assert.equal(rig.voter(voterCard(v[3]), []), "polls.not_open");
  rig.reboot();
  rig.run(2 * HOUR);
  assert.equal(rig.svc.state(), PollsState.CLOSED);
  assert.equal(rig.recordsOf(RecordKind.TURNOUT_HOURLY).length, 4);
  assert.equal(rig.recordsOf(RecordKind.TURNOUT_REPORT).length, 1);
  assert.deepEqual(rig.svc.counts().verified, 2);
  let closeErr: string | null = null;
  rig.svc.closePolls((e) => (closeErr = e));
  assert.equal(closeErr, "polls are not open");
  // Clearing the election (technician command): back to no register.
  rig.svc.clear();
  rig.run(500);
  assert.equal(rig.svc.state(), PollsState.NOT_LOADED);
  assert.equal(rig.screen().key, "polls.not_loaded");
  assert.equal(rig.svc.counts().verified ?? 0, 0);
  assert.equal(rig.svc.loadRegister(registerArtifact(VOTERS.slice(0, 4))), null);
  assert.equal(rig.svc.state(), PollsState.READY);
});

test("closing the polls cancels a voter in capture; one being recorded finishes first", () => {
  const rig = openRig();
  rig.place(voterCard(VOTERS[0]));
  rig.run(1500);
  assert.equal(rig.screen().key, "verify.present_finger");
  let report = null as TurnoutCounts | null;
  rig.svc.closePolls((err, r) => {
    assert.equal(err, null);
    report = r;
  }, "host");
  rig.run(2000);
  assert.equal(rig.svc.state(), PollsState.CLOSED);
  assert.ok(report);
  assert.equal(report!.rejected, 1);
  assert.deepEqual(byReason(report!), { [RejectReason.CANCELLED]: 1 });
  assert.equal(events(rig, RecordKind.VERIFICATION_REJECTED)[0].reason, RejectReason.CANCELLED);
});

test("a full journal: the voter is not marked, an error shows, counts unchanged", () => {
  const rig = new Rig({ journalPages: 2, pageSize: 1024 });
  rig.boot();
  rig.run(1000);
  rig.loadAndOpen(registerArtifact(VOTERS.slice(0, 4)));
  // Fill the firmware journal (nothing acknowledged).
  let seq = 1;
  while (seq > 0) {
    rig.recorder.record(RecordKind.TEST, new Uint8Array(100), (s) => (seq = s));
    rig.run(50);
  }
  const v = VOTERS[0];
  assert.equal(rig.voter(voterCard(v), [v.live]), "verify.error.not_recorded");
  assert.equal(rig.svc.counts().verified ?? 0, 0);
  assert.equal(rig.svc.log.isVoted(rig.svc.register.find(rig.svc.flow._h.key(v.id))), false);
  rig.reboot();
  rig.run(1000);
  assert.equal(rig.svc.counts().verified ?? 0, 0, "an aborted mark stays aborted");
  // Room again (the host acknowledged everything): the voter can be verified.
  rig.journal.ack(rig.journal.nextSeq() - 1);
  rig.journal.compact();
  assert.equal(rig.voter(voterCard(v), [v.live]), "verify.verified");
  assert.equal(rig.svc.counts().verified, 1);
});

test("privacy: no voter id or template bytes in any record, screen, log line or the firmware journal", () => {
  const voters = makeVoters(10);
  const rig = openRig(voters, { capPermille: 200 });
  rig.voter(voterCard(voters[0]), [voters[0].live]);
  rig.voter(voterCard(voters[1]), [voters[1].impostor, voters[1].impostor, voters[1].impostor]);
  rig.voter(voterCard(voters[0]), []);
  rig.voter(voterCard(VOTERS[11]), []);
  rig.place(voterCard(voters[2]));
  rig.run(1500);
  rig.press("supervisor");
  rig.run(300);
  rig.place(supervisorCard());
  rig.run(1500);
  rig.place(null);
  rig.run(5000);
  rig.run(HOUR / 2);
  rig.reboot();
  rig.run(1000);
  let closed = false;
  rig.svc.closePolls(() => (closed = true));
  rig.run(2000);
  assert.ok(closed);
  for (const kind of [RecordKind.VOTER_VERIFIED, RecordKind.VOTER_EXEMPTED, RecordKind.VERIFICATION_REJECTED, RecordKind.TURNOUT_HOURLY, RecordKind.TURNOUT_REPORT]) {
    assert.ok(rig.recordsOf(kind).length > 0, `kind ${kind} exercised`);
  }
  const secrets: Buffer[] = [];
  const everyone = [...voters, VOTERS[11]];
  for (const v of everyone) {
    secrets.push(Buffer.from(v.id, "utf8"));
    // Any 8-byte run of the minutiae (past the 28-byte record and view headers) or of the card template.
    for (let at = 30; at + 8 <= v.register.length; at += 4) secrets.push(Buffer.from(v.register.subarray(at, at + 8)));
    for (let at = 0; at + 8 <= v.card.length; at += 6) secrets.push(Buffer.from(v.card.subarray(at, at + 8)));
  }
  secrets.push(Buffer.from(SUPERVISOR_ID));
  const leaks = (what: string, data: Uint8Array): void => {
    const b = Buffer.from(data);
    for (const s of secrets) assert.equal(b.indexOf(s), -1, `${what} carries voter data`);
  };
  for (const r of rig.records()) leaks(`record ${r.seq} (kind ${r.kind})`, r.payload ?? new Uint8Array(0));
  for (const s of rig.screens) {
    leaks(`screen ${s.key}`, Buffer.from(JSON.stringify(s)));
    for (const lang of LANGUAGES) leaks(`screen ${s.key} in ${lang}`, Buffer.from(renderScreen(s, lang)));
  }
  for (const line of rig.logs) leaks(`log line "${line}"`, Buffer.from(line));
  // The whole firmware journal area (what the host receives) and the station log hold no id;
  // no voter id anywhere in flash.
  const flash = Buffer.from(rig.chip.snapshot().data);
  for (const v of everyone) assert.equal(flash.indexOf(Buffer.from(v.id)), -1, "voter id in flash");
  const journalArea = flash.subarray(0, 8 * 4096);
  leaks("firmware journal flash", journalArea);
  assert.equal(rig.svc.stationId(), STATION);
});

test("wall clock unset: no hourly records until it is set", () => {
  const rig = new Rig();
  const realWall = rig.wallMs.bind(rig);
  let set = false;
  rig.wallMs = () => (set ? realWall() : 0);
  rig.boot();
  rig.run(500);
  rig.loadAndOpen(registerArtifact(VOTERS.slice(0, 3)));
  rig.run(2 * HOUR);
  assert.equal(rig.recordsOf(RecordKind.TURNOUT_HOURLY).length, 0);
  set = true;
  rig.run(HOUR);
  assert.ok(rig.recordsOf(RecordKind.TURNOUT_HOURLY).length >= 1);
  void T0;
});

test("cancel during capture is a CANCELLED rejection; the voter may come back", () => {
  const rig = openRig();
  const v = VOTERS[5];
  rig.place(voterCard(v));
  rig.run(1500);
  assert.equal(rig.screen().key, "verify.present_finger");
  rig.press("cancel");
  rig.run(300);
  assert.equal(rig.screen().key, "verify.rejected.cancelled");
  assert.equal(events(rig, RecordKind.VERIFICATION_REJECTED)[0].reason, RejectReason.CANCELLED);
  rig.place(null);
  rig.run(5000);
  assert.equal(rig.voter(voterCard(v), [v.live]), "verify.verified");
});

test("a register load cut by a power loss leaves no register; a bad one through the service changes nothing", () => {
  const rig = new Rig();
  rig.boot();
  rig.run(500);
  const a = registerArtifact(VOTERS.slice(0, 6));
  rig.chip.armPowerCut(3000, 99);
  assert.throws(() => rig.svc.loadRegister(a));
  rig.reboot();
  rig.run(1000);
  assert.equal(rig.svc.state(), PollsState.NOT_LOADED);
  assert.equal(rig.screen().key, "polls.not_loaded");
  // No register: no card can be acted on, so the reader is not searched and the card goes unseen.
  assert.equal(rig.voter(voterCard(VOTERS[0]), []), "polls.not_loaded");
  assert.equal(rig.svc.loadRegister(a), null);
  assert.equal(rig.svc.state(), PollsState.READY);
  const err = rig.svc.loadRegister({ ...a, body: a.body!.subarray(0, 40) });
  assert.match(err ?? "", /does not decode|template refused/);
  assert.equal(rig.svc.state(), PollsState.READY, "the loaded register stays");
  assert.equal(rig.svc.register.count, 6);
  rig.run(500);
  const audit = rig.recordsOf(RecordKind.AUDIT).map((r) => decodeAuditEvent(r.payload!));
  assert.equal(audit.filter((e) => e.event === "register.loaded").length, 1);
});

test("a card reader or fingerprint module that does not answer is reported and retried", () => {
  const rig = new Rig();
  rig.bus.setConnected(0x24, false);
  rig.fp.setConnected(false);
  rig.boot();
  rig.run(3000);
  assert.equal(rig.svc.peripheralFaults(), (1 << 6) | (1 << 5), "CARD_READER and FINGERPRINT bits");
  assert.ok(rig.logs.some((l) => l.includes("card reader does not answer")));
  rig.bus.setConnected(0x24, true);
  rig.fp.setConnected(true);
  rig.run(6000);
  assert.equal(rig.svc.peripheralFaults(), 0);
  rig.loadAndOpen(registerArtifact(VOTERS.slice(0, 3)));
  assert.equal(rig.voter(voterCard(VOTERS[0]), [VOTERS[0].live]), "verify.verified");
});
