// The card reader and the fingerprint module watched by the verification service (part_watch.ts),
// with the real drivers against the PN532 and fingerprint module models (rig.test.ts): no card
// search while no card can be acted on, a part that stops answering reported once and probed
// again on a back-off, the fault cleared when it answers again, and the self-test's verdicts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { PollsState, RecordKind, Verdict, type PartVerdict } from "../../../protocol/generated/device_codec.ts";
import { PN_CMD_GET_FIRMWARE_VERSION, PN_CMD_IN_LIST_PASSIVE_TARGET } from "../../drivers/pn532.ts";
import { Rig, makeVoters, registerArtifact, voterCard } from "./rig.test.ts";

const VOTERS = makeVoters(3);
const READER_BIT = 1 << 6; // Peripheral.CARD_READER
const FINGER_BIT = 1 << 5; // Peripheral.FINGERPRINT
const PN532 = 0x24;

function commands(rig: Rig, cmd: number): number {
  return rig.pn.stats.byCommand[cmd] ?? 0;
}

function logsWith(rig: Rig, text: string, from = 0): string[] {
  return rig.logs.slice(from).filter((l) => l.includes(text));
}

function openRig(): Rig {
  const rig = new Rig();
  rig.boot();
  rig.run(1000);
  rig.loadAndOpen(registerArtifact(VOTERS));
  return rig;
}

test("no register: no card search for a simulated minute, the reader still checked; a register starts the search", () => {
  const rig = new Rig();
  rig.boot();
  rig.run(1000);
  assert.equal(rig.svc.state(), PollsState.NOT_LOADED);
  assert.equal(commands(rig, PN_CMD_GET_FIRMWARE_VERSION), 1, "probed at boot");
  const search0 = commands(rig, PN_CMD_IN_LIST_PASSIVE_TARGET);
  const fw0 = commands(rig, PN_CMD_GET_FIRMWARE_VERSION);
  rig.place(voterCard(VOTERS[0]));
  rig.run(60000);
  assert.equal(commands(rig, PN_CMD_IN_LIST_PASSIVE_TARGET), search0, "no InListPassiveTarget in a minute without a register");
  const checks = commands(rig, PN_CMD_GET_FIRMWARE_VERSION) - fw0;
  assert.ok(checks >= 1 && checks <= 3, `the reader's health checked now and then (${checks} checks in a minute)`);
  assert.equal(rig.screen().key, "polls.not_loaded", "the card in the field went unseen");
  rig.place(null);

  // Its failure is still reported in this state, and its recovery.
  rig.bus.setConnected(PN532, false);
  rig.run(45000);
  assert.equal(rig.svc.peripheralFaults(), READER_BIT);
  rig.bus.setConnected(PN532, true);
  rig.run(70000);
  assert.equal(rig.svc.peripheralFaults(), 0);
  assert.equal(commands(rig, PN_CMD_IN_LIST_PASSIVE_TARGET), search0, "still no card search");

  // A register: a card can be acted on (refused until the polls open), so the search starts.
  assert.equal(rig.svc.loadRegister(registerArtifact(VOTERS)), null);
  rig.run(2000);
  assert.ok(commands(rig, PN_CMD_IN_LIST_PASSIVE_TARGET) - search0 >= 4, "searching for cards");
  assert.equal(rig.voter(voterCard(VOTERS[0]), []), "polls.not_open");
});

test("a card reader that stops answering while the polls are open: its bit, one log line, the error shown, re-probed with back-off", () => {
  const rig = openRig();
  assert.equal(rig.screen().key, "verify.present_card");
  const from = rig.logs.length;
  rig.bus.setConnected(PN532, false);
  rig.run(3000);
  assert.equal(rig.svc.peripheralFaults(), READER_BIT, "three failed searches in a row: a fault");
  assert.deepEqual(rig.screen(), { key: "device.error", params: { part: "reader" } });
  // Five minutes without the reader: re-probed on a back-off schedule (2 s doubling to a minute),
  // not polled every 250 ms; still one log line.
  const driver = rig.svc.flow._r;
  const cmds0 = driver.stats.commands;
  rig.run(5 * 60000);
  const probes = driver.stats.commands - cmds0;
  assert.ok(probes >= 6 && probes <= 10, `${probes} probes in five minutes`);
  assert.equal(logsWith(rig, "card reader does not answer", from).length, 1, "one line for the fault");
  assert.equal(rig.svc.peripheralFaults(), READER_BIT);

  rig.bus.setConnected(PN532, true);
  rig.run(61000);
  assert.equal(rig.svc.peripheralFaults(), 0, "answers again: the bit clears");
  assert.equal(logsWith(rig, "card reader answers again", from).length, 1);
  assert.equal(rig.screen().key, "verify.present_card", "the flow looks for cards again");
  assert.equal(rig.voter(voterCard(VOTERS[0]), [VOTERS[0].live]), "verify.verified");
});

test("one failed look at the reader is no fault: it takes three in a row", () => {
  const rig = openRig();
  const from = rig.logs.length;
  // One search NACKed through all of the driver's write tries.
  rig.bus.nackNext(PN532, 3);
  rig.run(2000);
  assert.equal(rig.svc.readerWatch._streak, 0, "the next search answered");
  assert.equal(rig.svc.peripheralFaults(), 0);
  assert.equal(logsWith(rig, "card reader", from).length, 0);
  // Three searches in a row (3 write tries each): a fault.
  rig.bus.nackNext(PN532, 9);
  rig.run(2000);
  assert.equal(rig.svc.peripheralFaults(), READER_BIT);
  rig.run(5000);
  assert.equal(rig.svc.peripheralFaults(), 0, "the first re-probe answers");
  assert.equal(rig.voter(voterCard(VOTERS[1]), [VOTERS[1].live]), "verify.verified");
});

test("a fingerprint module unplugged between voters: found by the periodic check, reported, set up again when it is back", () => {
  const rig = openRig();
  const from = rig.logs.length;
  rig.fp.setConnected(false);
  rig.run(60000);
  assert.equal(rig.svc.peripheralFaults(), FINGER_BIT, "the idle module is checked and found missing");
  assert.equal(logsWith(rig, "fingerprint module does not answer", from).length, 1);
  assert.equal(rig.screen().key, "verify.present_card", "the reader still takes cards");
  // Plugged in again: powered up with its stored settings (Suprema templates), so the re-probe
  // must set it up again for ISO/IEC 19794-2 templates, or no voter could be verified.
  rig.fp.setConnected(true);
  rig.run(70000);
  assert.equal(rig.svc.peripheralFaults(), 0);
  assert.equal(logsWith(rig, "fingerprint module answers again", from).length, 1);
  assert.equal(rig.voter(voterCard(VOTERS[2]), [VOTERS[2].live]), "verify.verified");
});

test("a fingerprint module lost during a voter's captures: a fault after failures in a row; a hung scan alone is none", () => {
  const rig = openRig();
  const from = rig.logs.length;
  // A hung scan (the module still answers CA and the probe that follows): not a fault.
  const v = VOTERS[0];
  rig.place(voterCard(v));
  rig.run(1500);
  rig.fault("timeout");
  rig.run(12000);
  assert.equal(rig.screen().key, "verify.present_finger", "second attempt");
  assert.equal(rig.svc.peripheralFaults(), 0);
  // Unplugged while the voter waits: the capture gets no answer, the probe right after it neither:
  // a fault at once, the device error shown, no further attempt and no rejection for the voter.
  const shown = rig.screens.length;
  rig.fp.setConnected(false);
  rig.run(30000);
  assert.deepEqual(rig.screen(), { key: "device.error", params: { part: "fingerprint" } });
  assert.ok(!rig.screens.slice(shown).some((x) => x.key === "verify.present_finger"), "no third attempt");
  assert.equal(rig.recordsOf(RecordKind.VERIFICATION_REJECTED).length, 0, "no rejection journalled");
  assert.equal(rig.svc.peripheralFaults(), FINGER_BIT);
  assert.equal(logsWith(rig, "fingerprint module does not answer", from).length, 1);
  rig.place(null);
  rig.fp.setConnected(true);
  rig.run(70000);
  assert.equal(rig.svc.peripheralFaults(), 0);
  assert.equal(logsWith(rig, "fingerprint module answers again", from).length, 1);
});

test("self-test: both parts probed now; a missing one fails and is reported at once", () => {
  const rig = new Rig();
  rig.boot();
  rig.run(3000);
  const got: PartVerdict[][] = [];
  rig.svc.selfTest([5, 6, 1], (v) => got.push(v));
  rig.run(100);
  assert.equal(got.length, 1, "answered once");
  const ok = got[0].slice().sort((a, b) => (a.part ?? 0) - (b.part ?? 0));
  assert.deepEqual(
    ok.map((v) => [v.part, v.verdict]),
    [
      [5, Verdict.PASS],
      [6, Verdict.PASS],
    ],
    "only its own parts",
  );
  assert.match(ok[1].detail ?? "", /PN532 firmware 1\.6/);
  assert.match(ok[0].detail ?? "", /firmware 1\.9A/);

  rig.bus.setConnected(PN532, false);
  rig.fp.setConnected(false);
  rig.svc.selfTest([6, 5], (v) => got.push(v));
  rig.run(5000);
  assert.equal(got.length, 2, "answered once");
  const bad = got[1].slice().sort((a, b) => (a.part ?? 0) - (b.part ?? 0));
  assert.deepEqual(
    bad.map((v) => [v.part, v.verdict]),
    [
      [5, Verdict.FAIL],
      [6, Verdict.FAIL],
    ],
  );
  assert.match(bad[0].detail ?? "", /does not answer/);
  assert.match(bad[1].detail ?? "", /no PN532 answers/);
  assert.equal(rig.svc.peripheralFaults(), READER_BIT | FINGER_BIT, "a failed self-test is a fault at once");
});
