// The station register image and the station log on a simulated NOR flash: SHA-256 against
// node:crypto, keys, look-ups over a register of hundreds of voters, every refusal of a bad
// register (nothing stored changes), a torn image write at every step, and the station log's
// intent protocol replayed after a power cut.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SimFlash, PowerCut } from "../../../simulator/models/flash.ts";
import { ArtifactKind, RejectReason, encodeStationRegister } from "../../../protocol/generated/device_codec.ts";
import { loadPrepared, serializePrepared, prepare } from "../../biometrics/matcher.ts";
import { parseTemplate } from "../../biometrics/iso19794.ts";
import { RegisterImage, cardKey, sha256, DEFAULT_EXEMPTION_CAP_PERMILLE } from "./register.ts";
import { StationLog, T_VERIFIED, T_REJECTED, T_EXEMPTED, LOG_BUSY } from "./turnout.ts";
import { ELECTION, STATION, SUPERVISOR_ID, iso, registerArtifact } from "./rig.test.ts";

test("sha256 agrees with node:crypto on every length around the block boundaries", () => {
  for (let n = 0; n < 200; n++) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + n) & 255;
    assert.deepEqual(Buffer.from(sha256(b)), createHash("sha256").update(b).digest(), `length ${n}`);
  }
  const big = new Uint8Array(100000).fill(0x61);
  assert.deepEqual(Buffer.from(sha256(big)), createHash("sha256").update(big).digest());
});

test("a card key is the first 8 bytes of SHA-256 of the UTF-8 id", () => {
  for (const id of ["IQ-1", "ناخب-٤٥", "dengder-ژمارە-7", ""]) {
    assert.deepEqual(Buffer.from(cardKey(id, null)), createHash("sha256").update(id, "utf8").digest().subarray(0, 8));
  }
});

/** Voters cycling over the 80 DB1 prints, with ids that are not in order. */
function manyVoters(n: number): { id: string; register: Uint8Array }[] {
  const out: { id: string; register: Uint8Array }[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ id: `V${(i * 7723) % 100003}-${i}`, register: iso("DB1_B", 101 + (i % 10), 1 + ((i >> 3) % 8)) });
  }
  return out;
}

function image(pages = 64, pageSize = 4096): { flash: SimFlash; reg: RegisterImage } {
  const flash = new SimFlash({ pageSize, pageCount: pages, seed: 3 });
  return { flash, reg: new RegisterImage({ flash }) };
}

/** Pages of `pageSize` a register image of these voters needs (header page included), measured. */
function pagesFor(voters: { id: string; register: Uint8Array }[], pageSize: number): number {
  const big = image(2048, 1024);
  assert.equal(big.reg.write(registerArtifact(voters), 100000, null), null);
  return Math.ceil(big.reg.imageBytes() / pageSize) + 1;
}

test("a register of 300 voters: every voter found with its own prepared template, strangers not found", () => {
  const voters = manyVoters(300);
  const { flash, reg } = image(pagesFor(voters, 4096), 4096);
  assert.equal(reg.write(registerArtifact(voters, { capPermille: 20, version: 9 }), 100000, null), null);
  // A fresh reader of the same flash (a reboot) finds the same register.
  const again = new RegisterImage({ flash });
  assert.equal(again.open(false), true, again.problem);
  assert.equal(again.count, 300);
  assert.equal(again.stationId, STATION);
  assert.equal(again.electionId, ELECTION);
  assert.equal(again.version, 9);
  assert.equal(again.capPermille, 20);
  assert.equal(again.exemptionCap(), 6);
  const seen = new Set<number>();
  for (const v of voters) {
    const i = again.find(cardKey(v.id, null));
    assert.ok(i >= 0, `voter ${v.id} found`);
    assert.ok(!seen.has(i), "distinct indexes");
    seen.add(i);
    const bytes = again.template(i);
    assert.ok(bytes, "template readable");
    const want = serializePrepared(prepare(parseTemplate(v.register).template!));
    assert.deepEqual(bytes, want, "the voter's own prepared template");
    assert.ok(loadPrepared(bytes!), "loads");
  }
  for (const stranger of ["V1-0", "nobody", "V0-1"]) assert.equal(again.find(cardKey(stranger, null)), -1);
  assert.equal(again.isSupervisor(cardKey(SUPERVISOR_ID, null)), true);
  assert.equal(again.isSupervisor(cardKey("SUP-OTHER", null)), false);
  // The image holds no voter id.
  const all = Buffer.from(flash.snapshot().data);
  for (const v of voters.slice(0, 50)) assert.equal(all.indexOf(Buffer.from(v.id)), -1, "no voter id in flash");
});

test("the exemption cap defaults to 50 per mille when the register leaves it 0", () => {
  const { reg } = image(pagesFor(manyVoters(40), 4096), 4096);
  assert.equal(reg.write(registerArtifact(manyVoters(40)), 1000, null), null);
  assert.equal(reg.capPermille, DEFAULT_EXEMPTION_CAP_PERMILLE);
  assert.equal(reg.exemptionCap(), 2);
});

test("a bad register is refused with a clear error and the stored one stays as it was", () => {
  const { flash, reg } = image(pagesFor(manyVoters(20), 4096), 4096);
  const good = registerArtifact(manyVoters(20));
  assert.equal(reg.write(good, 1000, null), null);
  const before = flash.snapshot().data;
  const tag = reg.tag;
  const t = iso("DB1_B", 101, 1);
  const cases: [string, ReturnType<typeof registerArtifact>, RegExp][] = [
    ["wrong kind", { ...good, kind: ArtifactKind.ELECTION_DEFINITION }, /not a station register/],
    ["truncated body", { ...good, body: good.body!.subarray(0, good.body!.length - 7) }, /does not decode|length/],
    ["garbage body", { ...good, body: new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) }, /does not decode/],
    ["no voters", registerArtifact([]), /no voters/],
    ["duplicate voter", registerArtifact([{ id: "A", register: t }, { id: "B", register: t }, { id: "A", register: t }]), /same id/],
    ["voter without id", registerArtifact([{ id: "", register: t }]), /no id/],
    ["truncated template", registerArtifact([{ id: "A", register: t.subarray(0, t.length - 3) }]), /voter #0: template refused/],
    ["empty template", registerArtifact([{ id: "A", register: new Uint8Array(0) }]), /voter #0: template refused/],
    ["another station's artifact", { ...good, stationId: "ST-9999-01" }, /artifact is for station ST-9999-01/],
    ["too many voters for the log", good, /room for 5 voters/],
  ];
  for (const [name, a, re] of cases) {
    const err = reg.write(a, name.endsWith("log") ? 5 : 1000, () => assert.fail(`${name}: flash touched`));
    assert.match(err ?? "", re, name);
    assert.deepEqual(flash.snapshot().data, before, `${name}: flash unchanged`);
  }
  const body = encodeStationRegister({ stationId: "", electionId: ELECTION, voters: [{ voterId: "A", template: t }] });
  assert.match(reg.write({ ...good, stationId: "", body }, 1000, null) ?? "", /names no station/);
  const tooBig = new RegisterImage({ flash: new SimFlash({ pageSize: 1024, pageCount: 3 }) });
  assert.match(tooBig.write(good, 1000, null) ?? "", /needs \d+ bytes of flash, 2048 available/);
  assert.ok(reg.open(false));
  assert.equal(reg.tag, tag);
  // Errors never name a voter.
  const err = reg.write(registerArtifact([{ id: "SECRET-VOTER-1", register: t.subarray(0, 20) }]), 1000, null);
  assert.ok(err && !err.includes("SECRET-VOTER-1"));
});

test("a register image write cut at any step reads as not loaded, or as the whole new register", () => {
  const voters = manyVoters(30);
  const a = registerArtifact(voters);
  const pages = pagesFor(voters, 1024);
  // Steps the whole write takes.
  const probe = image(pages, 1024);
  assert.equal(probe.reg.write(a, 1000, null), null);
  const total = probe.flash.steps;
  assert.ok(total > 1000);
  let notLoaded = 0;
  let loaded = 0;
  const stride = Math.max(1, Math.floor(total / 150));
  for (let k = 0; k < total; k += stride) {
    const { flash, reg } = image(pages, 1024);
    flash.armPowerCut(k, k + 1);
    assert.throws(() => reg.write(a, 1000, null), PowerCut);
    flash.restorePower();
    const after = new RegisterImage({ flash });
    if (after.open(false)) {
      loaded++;
      assert.equal(after.count, 30);
      for (const v of voters) assert.ok(after.template(after.find(cardKey(v.id, null))), "every record whole");
    } else {
      notLoaded++;
      assert.match(after.problem, /no register image|damaged|torn/);
      assert.equal(after.find(cardKey(voters[0].id, null)), -1);
    }
  }
  assert.ok(notLoaded > 0);
  // The last cuts land in the header: torn headers are caught by their CRC.
  for (let k = total - 40; k < total; k++) {
    const { flash, reg } = image(pages, 1024);
    flash.armPowerCut(k, k * 13 + 5);
    assert.throws(() => reg.write(a, 1000, null), PowerCut);
    flash.restorePower();
    const after = new RegisterImage({ flash });
    if (after.open(false)) loaded++;
    else assert.match(after.problem, /no register image|damaged|torn/);
  }
  // Rewriting over an old register: cut early, the old one is gone (header erased first).
  const { flash, reg } = image(pages, 1024);
  assert.equal(reg.write(registerArtifact(manyVoters(10)), 1000, null), null);
  flash.armPowerCut(1);
  assert.throws(() => reg.write(a, 1000, null), PowerCut);
  flash.restorePower();
  assert.equal(new RegisterImage({ flash }).open(false), false);
  void loaded;
});

test("a damaged template record is caught by its CRC; a damaged key table unloads the register", () => {
  const { flash, reg } = image(pagesFor(manyVoters(12), 1024), 1024);
  assert.equal(reg.write(registerArtifact(manyVoters(12)), 1000, null), null);
  // Flip a bit in the data area of page 2 (well inside the records).
  const snap = flash.snapshot();
  const at = 2 * 1024 + 500;
  snap.data[at] ^= 0x10;
  const bad = SimFlash.fromSnapshot(snap);
  const r2 = new RegisterImage({ flash: bad });
  assert.equal(r2.open(false), true, "the tables are intact");
  let broken = 0;
  for (let i = 0; i < r2.count; i++) if (r2.template(i) === null) broken++;
  assert.equal(broken, 1, "exactly the damaged record is refused");
  assert.equal(r2.open(true), false, "a full check finds it");
  const snap2 = flash.snapshot();
  snap2.data[1024 + 3] ^= 0x01; // a key
  const r3 = new RegisterImage({ flash: SimFlash.fromSnapshot(snap2) });
  assert.equal(r3.open(false), false);
  assert.match(r3.problem, /key table/);
});

test("station log: only committed intents count, replay after a reboot gives the same counts", () => {
  const flash = new SimFlash({ pageSize: 512, pageCount: 4 });
  const log = new StationLog({ flash });
  assert.ok(log.open(100));
  assert.ok(log.markOpen(0xdeadbeef, 490000) > 0);
  assert.ok(log.intent(T_VERIFIED, 7, 3) > 0);
  assert.equal(log.intent(T_VERIFIED, 8, 3), LOG_BUSY, "one intent at a time");
  log.settle(true);
  assert.ok(log.intent(T_REJECTED, RejectReason.ALREADY_VOTED, 5) > 0);
  log.settle(true);
  assert.ok(log.intent(T_EXEMPTED, 9, 6) > 0);
  log.settle(false); // the record was refused
  assert.ok(log.intent(T_EXEMPTED, 10, 7) > 0);
  log.settle(true);
  assert.ok(log.intent(T_VERIFIED, 11, 8) > 0); // power cut before its record
  const check = (l: StationLog): void => {
    assert.equal(l.verified, 2);
    assert.equal(l.exempted, 1);
    assert.equal(l.rejected[RejectReason.ALREADY_VOTED], 1);
    assert.equal(l.rejectedTotal(), 1);
    assert.ok(l.isVoted(7) && l.isVoted(10));
    assert.ok(!l.isVoted(9) && !l.isVoted(11) && !l.isVoted(8));
    assert.equal(l.opened, true);
    assert.equal(l.openTag, 0xdeadbeef);
    assert.equal(l.openHour, 490000);
  };
  const again = new StationLog({ flash });
  assert.ok(again.open(100));
  check(again);
  assert.deepEqual(again.pending(), { type: T_VERIFIED, arg: 11, seqHint: 8 });
  again.settle(false);
  const third = new StationLog({ flash });
  assert.ok(third.open(100));
  check(third);
  assert.equal(third.pending(), null);
});
