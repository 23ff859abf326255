// Device settings on a flash model: the charge mode survives reopening, page turnover and a power
// cut at every step of a write; damaged or foreign content falls back to normal with a reason.

import { test } from "node:test";
import assert from "node:assert/strict";
import { SimFlash, PowerCut } from "../../simulator/models/flash.ts";
import { DeviceSettings, encodeSettings } from "./settings.ts";
import { Journal } from "./journal.ts";
import { ChargeMode } from "../../protocol/generated/device_codec.ts";

const GEOMETRY = { pageSize: 256, pageCount: 2 };

function reopen(flash: SimFlash): { s: DeviceSettings; problem: string } {
  const s = new DeviceSettings({ flash });
  return { s, problem: s.open() };
}

test("a fresh flash reads as normal without a problem; a saved mode is read back after reopening", () => {
  const flash = new SimFlash(GEOMETRY);
  const a = reopen(flash);
  assert.equal(a.problem, "");
  assert.equal(a.s.chargeMode(), ChargeMode.NORMAL);
  assert.equal(a.s.setChargeMode(ChargeMode.STORAGE), null);
  const b = reopen(flash);
  assert.equal(b.problem, "");
  assert.equal(b.s.chargeMode(), ChargeMode.STORAGE);
  // Setting the mode in force again writes nothing.
  const steps = flash.steps;
  assert.equal(b.s.setChargeMode(ChargeMode.STORAGE), null);
  assert.equal(flash.steps, steps);
});

test("invalid modes are refused and change nothing on flash", () => {
  const flash = new SimFlash(GEOMETRY);
  const { s } = reopen(flash);
  assert.equal(s.setChargeMode(ChargeMode.MAINTAIN), null);
  const steps = flash.steps;
  for (const bad of [0, 4, 9, -1, 1.5]) assert.match(s.setChargeMode(bad) ?? "", /not a charge mode/);
  assert.equal(flash.steps, steps);
  assert.equal(reopen(flash).s.chargeMode(), ChargeMode.MAINTAIN);
});

test("hundreds of changes turn the pages over and the newest mode is always the one read back", () => {
  const flash = new SimFlash(GEOMETRY);
  const modes = [ChargeMode.STORAGE, ChargeMode.MAINTAIN, ChargeMode.NORMAL];
  for (let i = 0; i < 300; i++) {
    const { s } = reopen(flash);
    const m = modes[i % 3];
    assert.equal(s.setChargeMode(m), null, `change ${i}`);
    const back = reopen(flash);
    assert.equal(back.problem, "");
    assert.equal(back.s.chargeMode(), m, `change ${i}`);
  }
  assert.ok(flash.eraseCount(0) > 5 && flash.eraseCount(1) > 5, "both pages take turns");
});

test("a power cut at any step of a change leaves the old mode or the new one, and the next change works", () => {
  // The clean run: storage, then maintain, then normal, each from a fresh boot.
  const ops = [ChargeMode.STORAGE, ChargeMode.MAINTAIN, ChargeMode.NORMAL];
  const clean = new SimFlash(GEOMETRY);
  const ends: number[] = [];
  for (const m of ops) {
    reopen(clean).s.setChargeMode(m);
    ends.push(clean.steps);
  }
  const before = [ChargeMode.NORMAL, ...ops];
  let tornSeen = 0;
  for (let k = 0; k <= clean.steps; k++) {
    const flash = new SimFlash({ ...GEOMETRY, seed: 100 + k });
    flash.armPowerCut(k);
    try {
      for (const m of ops) reopen(flash).s.setChargeMode(m);
      flash.disarmPowerCut();
    } catch (e) {
      if (!(e instanceof PowerCut)) throw e;
      flash.restorePower();
    }
    const done = ends.filter((e) => e <= k).length;
    const { s, problem } = reopen(flash);
    const allowed = [before[done], before[Math.min(done + 1, ops.length)]];
    assert.ok(allowed.includes(s.chargeMode()), `cut at step ${k}: mode ${s.chargeMode()}, expected one of ${allowed.join("/")}`);
    if (problem !== "") {
      tornSeen++;
      assert.match(problem, /cut by power loss/, `cut at step ${k}`);
    }
    // The settings still work after the cut.
    assert.equal(s.setChargeMode(ChargeMode.STORAGE === s.chargeMode() ? ChargeMode.MAINTAIN : ChargeMode.STORAGE), null);
    const again = reopen(flash);
    assert.equal(again.problem, "");
    assert.notEqual(again.s.chargeMode(), ChargeMode.NORMAL);
  }
  assert.ok(tornSeen > 0, "some cuts tore a write");
});

test("damaged or foreign settings fall back to normal with the reason, and a new mode can be saved", () => {
  // Every byte of the record's entry flipped in turn: the CRC catches it.
  const clean = new SimFlash(GEOMETRY);
  reopen(clean).s.setChargeMode(ChargeMode.STORAGE);
  const image = clean.snapshot();
  const page0 = SimFlash.fromSnapshot(image).read(0, 0, GEOMETRY.pageSize);
  const damaged = (mutate: (page: Uint8Array) => void): SimFlash => {
    const flash = new SimFlash(GEOMETRY);
    const page = page0.slice();
    mutate(page);
    flash.program(0, 0, page);
    return flash;
  };
  // The entry: 8 bytes of head, 2 of payload, the CRC.
  for (let at = 24; at < 24 + 14; at++) {
    const flash = damaged((page) => (page[at] ^= 0x10));
    const { s, problem } = reopen(flash);
    assert.equal(s.chargeMode(), ChargeMode.NORMAL, `byte ${at}`);
    assert.notEqual(problem, "", `byte ${at}: a reason is given`);
    assert.equal(s.setChargeMode(ChargeMode.MAINTAIN), null);
    assert.equal(reopen(flash).s.chargeMode(), ChargeMode.MAINTAIN);
  }

  // Garbage after an intact record (a later write cut short): the record stands, with the reason.
  const tail = reopen(damaged((page) => (page[40] = 0x52)));
  assert.equal(tail.s.chargeMode(), ChargeMode.STORAGE);
  assert.match(tail.problem, /cut by power loss.*saved before it stays/);

  // A damaged page header: nothing readable on a flash that is not blank.
  const hdr = damaged((page) => (page[5] ^= 0xff));
  const h = reopen(hdr);
  assert.equal(h.s.chargeMode(), ChargeMode.NORMAL);
  assert.match(h.problem, /no readable record/);

  // A well-formed record of an unknown format, and one with a mode that does not exist.
  for (const [bytes, why] of [
    [new Uint8Array([7, 2]), /do not parse/],
    [encodeSettings(9), /9 is not a charge mode/],
    [new Uint8Array([1]), /do not parse/],
  ] as const) {
    const flash = new SimFlash(GEOMETRY);
    const j = new Journal({ flash });
    j.open();
    j.append(() => bytes);
    const r = reopen(flash);
    assert.equal(r.s.chargeMode(), ChargeMode.NORMAL);
    assert.match(r.problem, why);
  }

  // A later firmware's record with an extra field: the fields known are taken.
  const later = new SimFlash(GEOMETRY);
  const j = new Journal({ flash: later });
  j.open();
  j.append(() => new Uint8Array([1, ChargeMode.MAINTAIN, 42]));
  const r = reopen(later);
  assert.equal(r.problem, "");
  assert.equal(r.s.chargeMode(), ChargeMode.MAINTAIN);

  // A flash too small for a journal: normal, and changes are refused with the reason.
  const tiny = reopen(new SimFlash({ pageSize: 256, pageCount: 1 }));
  assert.match(tiny.problem, /cannot hold a journal/);
  assert.match(tiny.s.setChargeMode(ChargeMode.STORAGE) ?? "", /not usable/);
});
