// readCard against the real reader driver, the PN532 model and the card models, on a virtual
// clock: voter and supervisor cards, foreign cards, removed, truncated, oversized and malformed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../../simulator/clock/timers.ts";
import { SimI2cBus } from "../../simulator/models/i2c_bus.ts";
import { MifareClassicCardModel, Pn532Model, type CardModel } from "../../simulator/models/pn532.ts";
import { Iso7816CardModel, VoterCardModel, encodeCardInfo } from "../../simulator/models/voter_card.ts";
import { Pn532, type Pn532Error } from "./pn532.ts";
import {
  readCard,
  readCardWith,
  decodeCardInfo,
  decodeUtf8Text,
  fcpFileSize,
  CARD_ERR_BAD_DATA,
  CARD_ERR_NO_CARD,
  CARD_ERR_NOT_COMMISSION,
  CARD_ERR_NOT_ISO_DEP,
  CARD_ERR_READER,
  CARD_ERR_REMOVED,
  CARD_TEMPLATE_MAX,
  VOTER_CARD_AID,
  type CardData,
  type CardError,
  type ReadCardOptions,
} from "./voter_card.ts";

interface Rig {
  clock: VirtualClock;
  bus: SimI2cBus;
  model: Pn532Model;
  pn: Pn532;
}

function rig(card: CardModel | null): Rig {
  const clock = new VirtualClock();
  const bus = new SimI2cBus();
  const model = new Pn532Model({ now: () => clock.now() });
  bus.attach(0x24, model);
  const pn = new Pn532({ bus, timers: clock.timers() });
  let ok: Pn532Error | null | undefined;
  pn.init((err) => {
    ok = err;
  });
  clock.advance(100);
  assert.equal(ok, null);
  model.place(card);
  return { clock, bus, model, pn };
}

function read(r: Rig, options?: ReadCardOptions): { err: CardError | null; card?: CardData; at: number } {
  let got: { err: CardError | null; card?: CardData; at: number } | null = null;
  const t0 = r.clock.now();
  const cb = (err: CardError | null, card?: CardData): void => {
    assert.equal(got, null, "callback ran twice");
    got = { err, card, at: r.clock.now() - t0 };
  };
  if (options) readCardWith(r.pn, options, cb);
  else readCard(r.pn, cb);
  for (let i = 0; got === null && i < 5000; i++) r.clock.advance(1);
  assert.ok(got, "readCard never called back");
  r.clock.advance(50);
  return got;
}

/** A stand-in for a compact card template: n minutiae of 3 opaque bytes. */
function template(n: number): Uint8Array {
  const t = new Uint8Array(n * 3);
  for (let i = 0; i < t.length; i++) t[i] = (i * 37 + 11) & 0xff;
  return t;
}

function readBinaries(card: Iso7816CardModel): { offset: number; le: number }[] {
  return card.log.filter((a) => a[1] === 0xb0).map((a) => ({ offset: (a[2]! << 8) | a[3]!, le: a[4]! }));
}

test("a voter card: kind, id, uid and the template read in pieces of at most 250 bytes", () => {
  const t = template(200); // 600 bytes
  const card = new VoterCardModel({ kind: "voter", id: "VTR-2025-000123", template: t });
  const r = rig(card);
  const res = read(r);
  assert.equal(res.err, null);
  assert.deepEqual(res.card, { uid: card.uid, kind: "voter", id: "VTR-2025-000123", template: t });
  assert.deepEqual(readBinaries(card).slice(1), [
    { offset: 0, le: 250 },
    { offset: 250, le: 250 },
    { offset: 500, le: 100 },
  ]);
  assert.equal(r.model.stats.byCommand[0x52], 1, "released after reading");
  assert.equal(r.pn.target, null);
  // Smaller pieces on request.
  const again = read(r, { chunkBytes: 64 });
  assert.deepEqual(again.card?.template, t);
  const second = readBinaries(card).slice(4 + 1); // after the first read's 4 and this read's card info
  assert.equal(second.length, 10, "600 bytes in pieces of 64: 9 full reads and one of 24");
  assert.deepEqual(second[9], { offset: 576, le: 24 });
});

test("a supervisor card: no template, EF.TEMPLATE not read", () => {
  const card = new VoterCardModel({ kind: "supervisor", id: "SUP-7", template: template(10) });
  const r = rig(card);
  const res = read(r);
  assert.equal(res.err, null);
  assert.equal(res.card?.kind, "supervisor");
  assert.equal(res.card?.id, "SUP-7");
  assert.equal(res.card?.template, null);
  assert.ok(!card.log.some((a) => a[1] === 0xa4 && a[5] === 0x01 && a[6] === 0x02), "EF 0102 never selected");
});

test("ids in UTF-8 (Arabic, Kurdish) come back as text", () => {
  for (const id of ["ناخب-٠٠١٢٣", "دەنگدەر-42", "𝒱-1"]) {
    const r = rig(new VoterCardModel({ kind: "voter", id, template: template(12) }));
    const res = read(r);
    assert.equal(res.err, null, id);
    assert.equal(res.card?.id, id);
  }
});

test("a card of another application is refused with a clear error", () => {
  // A payment card answers 6A82 to the commission's AID.
  const visa = new Iso7816CardModel({ aid: Uint8Array.of(0xa0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10), files: {} });
  const r = rig(visa);
  const res = read(r);
  assert.equal(res.err?.code, CARD_ERR_NOT_COMMISSION);
  assert.match(res.err!.message, /not a commission card: application F0504F4C4C4B495401 not on the card \(SW 6A82\)/);
  assert.equal(r.model.stats.byCommand[0x52], 1, "released");
  // A commission card read with another commission's AID: the same.
  const card = new VoterCardModel({ kind: "voter", id: "V1", template: template(5) });
  const r2 = rig(card);
  assert.equal(read(r2, { aid: Uint8Array.of(0xa0, 0x00, 0x00, 0x09, 0x99, 0x01) }).err?.code, CARD_ERR_NOT_COMMISSION);
  // And a card issued under a registered RID is read when that AID is configured.
  const rid = Uint8Array.of(0xa0, 0x00, 0x00, 0x09, 0x99, 0x01);
  const r3 = rig(new VoterCardModel({ kind: "voter", id: "V2", template: template(5), aid: rid }));
  assert.equal(read(r3).err?.code, CARD_ERR_NOT_COMMISSION);
  assert.equal(read(r3, { aid: rid }).card?.id, "V2");
});

test("no card, a MIFARE Classic card, no reader", () => {
  const r = rig(null);
  const none = read(r);
  assert.equal(none.err?.code, CARD_ERR_NO_CARD);
  r.model.place(new MifareClassicCardModel());
  assert.equal(read(r).err?.code, CARD_ERR_NOT_ISO_DEP);
  r.bus.setConnected(0x24, false);
  const res = read(r);
  assert.equal(res.err?.code, CARD_ERR_READER);
  assert.match(res.err!.message, /card detection: .*0x24/);
});

test("a card removed in the middle of the template gives CARD_ERR_REMOVED", () => {
  const card = new VoterCardModel({ kind: "voter", id: "V-9", template: template(200) });
  const r = rig(card);
  // SELECT app, SELECT info, READ info, SELECT template, READ 0: gone before READ 250.
  r.model.removeCardAfter(5);
  const res = read(r);
  assert.equal(res.err?.code, CARD_ERR_REMOVED);
  assert.match(res.err!.message, /READ BINARY EF.TEMPLATE: the card was removed/);
  // The card stops answering without leaving (broken antenna): the same for the reader.
  const mute = new VoterCardModel({ kind: "voter", id: "V-10", template: template(20) });
  const r2 = rig(mute);
  mute.mute = true;
  assert.equal(read(r2).err?.code, CARD_ERR_REMOVED);
});

test("truncated files are refused", () => {
  // The FCP says 300 bytes; the file holds 150 (6282 on the read).
  const r = rig(new VoterCardModel({ kind: "voter", id: "V-1", template: template(50), declaredSize: { template: 300 } }));
  const res = read(r);
  assert.equal(res.err?.code, CARD_ERR_BAD_DATA);
  assert.match(res.err!.message, /EF.TEMPLATE is truncated: the card declares 300 bytes and returned 150/);
  // Past the end (6B00) on the second piece.
  const r2 = rig(new VoterCardModel({ kind: "voter", id: "V-1", template: template(80), declaredSize: { template: 480 } }));
  const res2 = read(r2);
  assert.equal(res2.err?.code, CARD_ERR_BAD_DATA);
  assert.match(res2.err!.message, /truncated/);
  // Card info shorter than announced.
  const r3 = rig(new VoterCardModel({ kind: "voter", id: "V-1", template: template(5), declaredSize: { info: 40 } }));
  assert.match(read(r3).err!.message, /EF.CARD_INFO is truncated/);
});

test("oversized files are refused before they are read", () => {
  const card = new VoterCardModel({ kind: "voter", id: "V-1", template: template(300) }); // 900 bytes
  const r = rig(card);
  const res = read(r);
  assert.equal(res.err?.code, CARD_ERR_BAD_DATA);
  assert.match(res.err!.message, new RegExp(`EF.TEMPLATE is 900 bytes, over the limit of ${CARD_TEMPLATE_MAX}`));
  assert.equal(readBinaries(card).length, 1, "only the card info was read");
  // A lower limit by option.
  const r2 = rig(new VoterCardModel({ kind: "voter", id: "V-1", template: template(40) }));
  assert.equal(read(r2, { maxTemplateBytes: 60 }).err?.code, CARD_ERR_BAD_DATA);
  // Card info over 128 bytes.
  const big = new VoterCardModel({ kind: "voter", id: "V-1", template: template(5), info: new Uint8Array(200) });
  assert.match(read(rig(big)).err!.message, /EF.CARD_INFO is 200 bytes, over the limit of 128/);
});

test("malformed cards: template not whole minutiae, missing files, bad card info", () => {
  const odd = rig(new VoterCardModel({ kind: "voter", id: "V-1", template: new Uint8Array(31) }));
  assert.match(read(odd).err!.message, /31 bytes, not whole 3-byte minutiae/);
  const noTemplate = rig(new VoterCardModel({ kind: "voter", id: "V-1", template: null }));
  const nt = read(noTemplate);
  assert.equal(nt.err?.code, CARD_ERR_BAD_DATA);
  assert.match(nt.err!.message, /voter card without a template file/);
  const noInfo = rig(new Iso7816CardModel({ aid: VOTER_CARD_AID, files: { 0x0102: template(3) } }));
  assert.match(read(noInfo).err!.message, /without a card-info file/);
  const badKind = rig(new VoterCardModel({ kind: "voter", id: "x", info: Uint8Array.of(0x80, 0x01, 0x07, 0x81, 0x01, 0x41) }));
  const bk = read(badKind);
  assert.equal(bk.err?.code, CARD_ERR_BAD_DATA);
  assert.match(bk.err!.message, /unknown card kind 7/);
});

test("decodeCardInfo: every malformation has its message", () => {
  assert.deepEqual(decodeCardInfo(encodeCardInfo("voter", "V-1")), { kind: "voter", id: "V-1", error: null });
  assert.deepEqual(decodeCardInfo(encodeCardInfo("supervisor", "S")), { kind: "supervisor", id: "S", error: null });
  // Unknown tags and padding are skipped; order does not matter.
  const mixed = Uint8Array.of(0x00, 0x85, 0x02, 0xaa, 0xbb, 0x81, 0x02, 0x49, 0x44, 0xff, 0x80, 0x01, 0x02);
  assert.deepEqual(decodeCardInfo(mixed), { kind: "supervisor", id: "ID", error: null });
  const cases: [number[], RegExp][] = [
    [[0x81, 0x01, 0x41], /no kind/],
    [[0x80, 0x01, 0x01], /no id/],
    [[0x80, 0x01, 0x01, 0x80, 0x01, 0x01, 0x81, 0x01, 0x41], /kind given twice/],
    [[0x80, 0x02, 0x01, 0x01, 0x81, 0x01, 0x41], /kind must be one byte/],
    [[0x80, 0x01, 0x01, 0x81, 0x01, 0x41, 0x81, 0x01, 0x42], /id given twice/],
    [[0x80, 0x01, 0x01, 0x81, 0x00], /id must be 1..64 bytes/],
    [[0x80, 0x01, 0x01, 0x81, 0x41, ...new Array<number>(65).fill(0x41)], /id must be 1..64 bytes/],
    [[0x80, 0x01, 0x01, 0x81, 0x02, 0xc0, 0x80], /not UTF-8 text/],
    [[0x80, 0x01, 0x01, 0x81, 0x05, 0x41], /runs past the end/],
    [[0x80, 0x01, 0x01, 0x81], /truncated length/],
    [[0x80, 0x01, 0x01, 0x81, 0x82, 0x00, 0x01], /length form 82/],
    [[0x9f, 0x1f, 0x01, 0x00], /multi-byte tag/],
  ];
  for (const [bytes, re] of cases) {
    const info = decodeCardInfo(Uint8Array.from(bytes));
    assert.equal(info.kind, "", bytes.join(","));
    assert.match(info.error ?? "", re, bytes.join(","));
  }
});

test("decodeUtf8Text: strict UTF-8, no control characters", () => {
  const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "utf8"));
  for (const s of ["A-1", "ناخب", "😀x", "é"]) assert.equal(decodeUtf8Text(enc(s)), s);
  const bad: number[][] = [
    [0xc0, 0x80], // overlong NUL
    [0xe0, 0x80, 0x80], // overlong
    [0xed, 0xa0, 0x80], // surrogate
    [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
    [0xe2, 0x82], // truncated
    [0x80], // stray continuation
    [0x41, 0x0a], // control character
    [0x7f],
    [0xc2, 0x85], // C1 control
    [0xff],
  ];
  for (const b of bad) assert.equal(decodeUtf8Text(Uint8Array.from(b)), null, b.join(","));
});

test("fcpFileSize: tag 80, else 81, malformed gives -1", () => {
  assert.equal(fcpFileSize(Uint8Array.of(0x62, 0x04, 0x80, 0x02, 0x01, 0x2c)), 300);
  assert.equal(fcpFileSize(Uint8Array.of(0x62, 0x03, 0x81, 0x01, 0x20)), 32);
  assert.equal(fcpFileSize(Uint8Array.of(0x62, 0x07, 0x81, 0x01, 0x20, 0x80, 0x02, 0x00, 0x10)), 16);
  assert.equal(fcpFileSize(Uint8Array.of(0x62, 0x03, 0x82, 0x01, 0x01)), -1);
  assert.equal(fcpFileSize(Uint8Array.of(0x6f, 0x04, 0x80, 0x02, 0x01, 0x2c)), -1);
  assert.equal(fcpFileSize(Uint8Array.of(0x62, 0x09, 0x80, 0x02, 0x01)), -1);
  assert.equal(fcpFileSize(new Uint8Array(0)), -1);
});
