// The PN532 driver against the PN532 model on the simulated I2C bus, with ISO 7816-4 card models
// in its field, on a virtual clock shared by the driver's timers and the chip's now().
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../../simulator/clock/timers.ts";
import { SimI2cBus } from "../../simulator/models/i2c_bus.ts";
import { MifareClassicCardModel, Pn532Model, pn532AnswerFrame, type Pn532ModelOptions } from "../../simulator/models/pn532.ts";
import { Iso7816CardModel, VoterCardModel } from "../../simulator/models/voter_card.ts";
import {
  Pn532,
  pn532Frame,
  pn532ParseFrame,
  PN_ERR_BAD_ARGUMENT,
  PN_ERR_CARD_GONE,
  PN_ERR_CLOSED,
  PN_ERR_FIRMWARE,
  PN_ERR_NO_READER,
  PN_ERR_NO_TARGET,
  PN_ERR_NOT_ISO_DEP,
  PN_ERR_PROTOCOL,
  PN_ERR_SYNTAX,
  PN_ERR_TIMEOUT,
  type Pn532Error,
  type Pn532Options,
} from "./pn532.ts";
import { VOTER_CARD_AID } from "./voter_card.ts";

interface Rig {
  clock: VirtualClock;
  bus: SimI2cBus;
  model: Pn532Model;
  pn: Pn532;
}

function rig(modelOpts?: Partial<Pn532ModelOptions>, driverOpts?: Partial<Pn532Options>): Rig {
  const clock = new VirtualClock();
  const bus = new SimI2cBus();
  const model = new Pn532Model({ now: () => clock.now(), ...modelOpts });
  bus.attach(0x24, model);
  const pn = new Pn532({ bus, timers: clock.timers(), ...driverOpts });
  return { clock, bus, model, pn };
}

function run<A extends unknown[]>(clock: VirtualClock, start: (cb: (...args: A) => void) => void, maxMs = 10_000): { args: A; at: number } {
  let got: { args: A; at: number } | null = null;
  const t0 = clock.now();
  start((...args: A) => {
    assert.equal(got, null, "callback ran twice");
    got = { args, at: clock.now() - t0 };
  });
  for (let waited = 0; got === null && waited < maxMs; waited += 1) clock.advance(1);
  assert.ok(got, "callback never ran");
  clock.advance(20);
  return got;
}

function init(r: Rig): void {
  const res = run(r.clock, (cb: (err: Pn532Error | null) => void) => r.pn.init(cb));
  assert.equal(res.args[0], null);
}

function detect(r: Rig): { err: Pn532Error | null; uid: Uint8Array | null; at: number } {
  const res = run(r.clock, (cb: (err: Pn532Error | null, uid: Uint8Array | null) => void) => r.pn.detect(cb));
  return { err: res.args[0], uid: res.args[1], at: res.at };
}

function apdu(r: Rig, cmd: Uint8Array): { err: Pn532Error | null; resp?: Uint8Array } {
  const res = run(r.clock, (cb: (err: Pn532Error | null, resp?: Uint8Array) => void) => r.pn.apdu(cmd, cb));
  return { err: res.args[0], resp: res.args[1] };
}

const SELECT_AID = Uint8Array.of(0x00, 0xa4, 0x04, 0x0c, VOTER_CARD_AID.length, ...VOTER_CARD_AID);

function voter(): VoterCardModel {
  return new VoterCardModel({ kind: "voter", id: "V-000123", template: new Uint8Array(90).fill(0x5a) });
}

test("frames: the manual's GetFirmwareVersion frame and answer", () => {
  assert.deepEqual([...pn532Frame(0x02, null)], [0x00, 0x00, 0xff, 0x02, 0xfe, 0xd4, 0x02, 0x2a, 0x00]);
  const answer = Uint8Array.of(0x00, 0x00, 0xff, 0x06, 0xfa, 0xd5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xe8, 0x00);
  assert.deepEqual([...pn532AnswerFrame(Uint8Array.of(0x03, 0x32, 0x01, 0x06, 0x07))], [...answer]);
  const rx = new Uint8Array(1 + answer.length);
  rx[0] = 0x01;
  rx.set(answer, 1);
  const p = pn532ParseFrame(rx, rx.length);
  assert.equal(p.kind, 0);
  assert.equal(p.len, 6);
  const badDcs = new Uint8Array(rx);
  badDcs[12] ^= 1;
  assert.match(pn532ParseFrame(badDcs, rx.length).why, /DCS/);
  const badLcs = new Uint8Array(rx);
  badLcs[5] ^= 1;
  assert.match(pn532ParseFrame(badLcs, rx.length).why, /LCS/);
  const err = Uint8Array.of(0x01, 0x00, 0x00, 0xff, 0x01, 0xff, 0x7f, 0x81, 0x00);
  assert.equal(pn532ParseFrame(err, err.length).kind, 2);
});

test("init: firmware version, SAM configuration, retries", () => {
  const r = rig();
  init(r);
  assert.deepEqual(r.pn.firmware, { ic: 0x32, ver: 0x01, rev: 0x06, support: 0x07 });
  assert.equal(r.model.stats.byCommand[0x02], 1);
  assert.equal(r.model.stats.byCommand[0x14], 1);
  assert.equal(r.model.stats.byCommand[0x32], 1);
  assert.equal(r.model.stats.badFrames, 0);
});

test("no reader (NACK) gives PN_ERR_NO_READER", () => {
  const r = rig();
  r.bus.setConnected(0x24, false);
  const res = run(r.clock, (cb: (err: Pn532Error | null) => void) => r.pn.init(cb));
  assert.equal(res.args[0]?.code, PN_ERR_NO_READER);
  assert.match(res.args[0]!.message, /0x24/);
  assert.ok(res.at < 20);
  // Nothing attached at another address either.
  const lone = new Pn532({ bus: r.bus, timers: r.clock.timers(), address: 0x25 });
  const res2 = run(r.clock, (cb: (err: Pn532Error | null) => void) => lone.init(cb));
  assert.equal(res2.args[0]?.code, PN_ERR_NO_READER);
  // The reader vanishes after the command was ACKed: reads NACK.
  const r3 = rig();
  init(r3);
  r3.model.silentNext();
  let got: Pn532Error | null | undefined;
  r3.pn.detect((err) => {
    got = err;
  });
  r3.clock.advance(10);
  r3.bus.setConnected(0x24, false);
  r3.clock.advance(50);
  assert.equal(got?.code, PN_ERR_NO_READER);
});

test("not a PN532: PN_ERR_FIRMWARE", () => {
  const r = rig({ firmware: Uint8Array.of(0x31, 0x01, 0x00, 0x07) });
  const res = run(r.clock, (cb: (err: Pn532Error | null) => void) => r.pn.init(cb));
  assert.equal(res.args[0]?.code, PN_ERR_FIRMWARE);
});

test("detect: no card gives null after the retries, a card its UID and ATS", () => {
  const r = rig({}, { detectRetries: 3 });
  init(r);
  const none = detect(r);
  assert.equal(none.err, null);
  assert.equal(none.uid, null);
  assert.ok(none.at >= 20 && none.at < 40, `no card after (3 + 1) x 5 ms, took ${none.at}`);
  const card = voter();
  r.model.place(card);
  const found = detect(r);
  assert.equal(found.err, null);
  assert.deepEqual(found.uid, card.uid);
  assert.equal(r.pn.target?.isoDep, true);
  assert.deepEqual(r.pn.target?.ats, card.ats);
  assert.equal(r.pn.target?.atqa, 0x0044);
  assert.equal(r.pn.target?.sak, 0x20);
});

test("APDU round trip, then release", () => {
  const r = rig();
  init(r);
  const card = voter();
  r.model.place(card);
  detect(r);
  const a = apdu(r, SELECT_AID);
  assert.equal(a.err, null);
  assert.deepEqual([...a.resp!], [0x90, 0x00]);
  assert.deepEqual(card.log[0], SELECT_AID);
  const b = apdu(r, Uint8Array.of(0x00, 0xa4, 0x02, 0x04, 0x02, 0x01, 0x01, 0x00));
  assert.equal(b.err, null);
  assert.deepEqual([...b.resp!.subarray(-2)], [0x90, 0x00]);
  assert.equal(b.resp![0], 0x62, "FCP");
  const rel = run(r.clock, (cb: (err: Pn532Error | null) => void) => r.pn.release(cb));
  assert.equal(rel.args[0], null);
  assert.equal(r.pn.target, null);
  assert.equal(apdu(r, SELECT_AID).err?.code, PN_ERR_NO_TARGET);
});

test("a card removed mid-read gives PN_ERR_CARD_GONE", () => {
  const r = rig();
  init(r);
  r.model.place(voter());
  detect(r);
  r.model.removeCardAfter(1);
  assert.equal(apdu(r, SELECT_AID).err, null);
  const gone = apdu(r, SELECT_AID);
  assert.equal(gone.err?.code, PN_ERR_CARD_GONE);
  assert.equal(r.pn.target, null);
  assert.equal(detect(r).uid, null);
  // Taken away with place(null) between detect and the APDU: the same.
  r.model.place(voter());
  detect(r);
  r.model.place(null);
  assert.equal(apdu(r, SELECT_AID).err?.code, PN_ERR_CARD_GONE);
});

test("a damaged answer (bad LCS or DCS) is asked for again with NACK", () => {
  for (const what of ["lcs", "dcs"] as const) {
    const r = rig();
    init(r);
    r.model.corruptNextResponse(what);
    const res = run(r.clock, (cb: (err: Pn532Error | null) => void) => r.pn.init(cb));
    assert.equal(res.args[0], null, what);
    assert.equal(r.pn.stats.nacks, 1);
    assert.equal(r.model.stats.nacks, 1);
    // Damaged every time: the driver gives up after two NACKs.
    r.model.corruptNextResponse(what, 3);
    const bad = run(r.clock, (cb: (err: Pn532Error | null) => void) => r.pn.init(cb));
    assert.equal(bad.args[0]?.code, PN_ERR_PROTOCOL);
    assert.match(bad.args[0]!.message, new RegExp(`bad ${what.toUpperCase()}`));
  }
});

test("a damaged host frame is dropped by the PN532 and sent again", () => {
  const r = rig();
  init(r);
  r.bus.corruptNextWrite(0x24); // flips a bit of the postamble
  r.model.place(voter());
  const d = detect(r);
  assert.equal(d.err, null);
  assert.ok(d.uid);
  assert.equal(r.model.stats.badFrames, 1);
  assert.equal(r.pn.stats.resends, 1);
});

test("the error frame gives PN_ERR_SYNTAX; RF commands before SAMConfiguration too", () => {
  const r = rig();
  init(r);
  r.model.errorFrameNext();
  assert.equal(detect(r).err?.code, PN_ERR_SYNTAX);
  assert.equal(detect(r).err, null, "usable afterwards");
  const fresh = rig();
  assert.equal(detect(fresh).err?.code, PN_ERR_SYNTAX);
});

test("no answer: the driver aborts with ACK and reports PN_ERR_TIMEOUT", () => {
  const r = rig({}, { timeoutMs: 200 });
  init(r);
  r.model.silentNext();
  const d = detect(r);
  assert.equal(d.err?.code, PN_ERR_TIMEOUT);
  assert.ok(d.at >= 200 && d.at < 220);
  assert.equal(r.model.stats.aborts, 1);
  r.model.place(voter());
  assert.ok(detect(r).uid, "usable afterwards");
});

test("MIFARE Classic: found, but no APDUs", () => {
  const r = rig();
  init(r);
  const card = new MifareClassicCardModel();
  r.model.place(card);
  const d = detect(r);
  assert.deepEqual(d.uid, card.uid);
  assert.equal(r.pn.target?.isoDep, false);
  assert.equal(r.pn.target?.ats, null);
  assert.equal(apdu(r, SELECT_AID).err?.code, PN_ERR_NOT_ISO_DEP);
});

test("a chained answer (longer than a frame) is refused", () => {
  const r = rig();
  init(r);
  const big = new Uint8Array(400).fill(7);
  r.model.place(new Iso7816CardModel({ aid: Uint8Array.of(0xf0, 1, 2, 3, 4), files: { 0x0001: big } }));
  detect(r);
  assert.equal(apdu(r, Uint8Array.of(0x00, 0xa4, 0x04, 0x0c, 0x05, 0xf0, 1, 2, 3, 4)).err, null);
  assert.equal(apdu(r, Uint8Array.of(0x00, 0xa4, 0x02, 0x0c, 0x02, 0x00, 0x01)).err, null);
  const ok = apdu(r, Uint8Array.of(0x00, 0xb0, 0x00, 0x00, 250));
  assert.equal(ok.err, null);
  assert.equal(ok.resp!.length, 252);
  const chained = apdu(r, Uint8Array.of(0x00, 0xb0, 0x00, 0x00, 0x00)); // Le 256: 258 bytes
  assert.equal(chained.err?.code, PN_ERR_PROTOCOL);
  assert.match(chained.err!.message, /MI/);
});

test("bad arguments and close()", () => {
  const r = rig();
  init(r);
  assert.equal(apdu(r, new Uint8Array(253)).err?.code, PN_ERR_BAD_ARGUMENT);
  assert.equal(apdu(r, new Uint8Array(3)).err?.code, PN_ERR_BAD_ARGUMENT);
  const errs: (Pn532Error | null)[] = [];
  r.pn.detect((err) => errs.push(err));
  r.pn.detect((err) => errs.push(err));
  r.pn.close();
  r.clock.advance(10);
  assert.deepEqual(
    errs.map((e) => e?.code),
    [PN_ERR_CLOSED, PN_ERR_CLOSED],
  );
  r.pn.init((err) => errs.push(err));
  r.clock.advance(10);
  assert.equal(errs[2]?.code, PN_ERR_CLOSED);
});
