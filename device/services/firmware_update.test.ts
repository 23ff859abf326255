// Firmware application update over the transfer: a signed image staged in the free slot, a trial
// boot that confirms itself or is rolled back (too many boots, or no confirmation in time), a
// transfer resumed after an interruption, refusals, and power cuts in the state changes.

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { SimFlash, PowerCut } from "../../simulator/models/flash.ts";
import {
  DEFAULT_TRIAL_BOOTS,
  FW_BUILT_IN,
  FW_CONFIRMED,
  FW_NONE,
  FW_PENDING,
  FW_TRIAL,
  FirmwareUpdate,
  bootDecision,
  failTrial,
  readFirmwareState,
  slotBundle,
} from "./firmware_update.ts";
import { TransferReceiver, CountingSink, installArtifactSinks } from "./transfer.ts";
import { ArtifactKind, Status, TransferKind, type CommandResult } from "../../protocol/generated/device_codec.ts";
import { signArtifact } from "../../host/commission/artifacts.ts";
import { createCommissionKey } from "../../host/commission/keys.ts";
import { createHash } from "node:crypto";
import { deviceRig, type DeviceRig } from "../../host/commission/testing.ts";

interface Bench {
  rig: DeviceRig;
  fw: FirmwareUpdate;
  rx: TransferReceiver;
  committed: number[];
  /** A boot: the boot loader decides, the firmware's services start afresh over the same flash. */
  boot(): ReturnType<typeof bootDecision>;
}

function bench(): Bench {
  const rig = deviceRig({ pageSize: 1024, pages: 256 }); // firmware region: 64 pages, 31 per slot
  const b = { rig, committed: [] as number[] } as Bench;
  const services = (): void => {
    b.fw = new FirmwareUpdate({ flash: rig.regions.firmware, timers: rig.timers, trialMs: 60000 });
    b.fw.open();
    b.rx = new TransferReceiver(new CountingSink());
    installArtifactSinks(b.rx, {
      authority: rig.authority,
      store: rig.store,
      firmware: b.fw.staging(),
      committed: (kind, a) => {
        if (kind === ArtifactKind.FIRMWARE) b.committed.push(a.version ?? 0);
      },
    });
  };
  b.boot = () => {
    const choice = bootDecision(rig.regions.firmware, DEFAULT_TRIAL_BOOTS);
    rig.reboot();
    services();
    return choice;
  };
  services();
  return b;
}

const image = (commission: DeviceRig["commission"], version: number, size = 12000): { bytes: Uint8Array; body: Uint8Array } => {
  const body = new Uint8Array(randomBytes(size));
  return { body, bytes: signArtifact({ kind: ArtifactKind.FIRMWARE, version, body }, commission) };
};

function begin(b: Bench, data: Uint8Array): CommandResult {
  return b.rx.begin({ kind: TransferKind.FIRMWARE, totalBytes: data.length, sha256: new Uint8Array(createHash("sha256").update(data).digest()) }, "tech-x");
}

function chunks(b: Bench, data: Uint8Array, from: number, to: number): void {
  for (let at = from; at < to; at += 1000) assert.equal(b.rx.chunk({ offset: at, data: data.subarray(at, Math.min(to, at + 1000)) }).status, Status.OK);
}

function end(b: Bench): CommandResult {
  let out: CommandResult | null = null;
  b.rx.finish(new Uint8Array(0), (r) => (out = r));
  for (let t = 0; out === null && t < 60000; t += 20) b.rig.clock.advance(20);
  assert.ok(out !== null);
  return out;
}

function upload(b: Bench, data: Uint8Array): CommandResult {
  const r = begin(b, data);
  if (r.status !== Status.OK) return r;
  chunks(b, data, 0, data.length);
  return end(b);
}

test("an update is staged, boots on trial, confirms itself and stays; the next one goes to the other slot", () => {
  const b = bench();
  const v2 = image(b.rig.commission, 2);
  const r = upload(b, v2.bytes);
  assert.equal(r.status, Status.OK, r.message);
  assert.match(r.message ?? "", /accepted firmware version 2/);
  assert.deepEqual(b.committed, [2], "the integrator is told: it reboots with FIRMWARE_UPDATE");
  assert.equal(b.fw.state().mode, FW_PENDING);
  assert.equal(b.rig.store.floor(ArtifactKind.FIRMWARE, "")?.version, 2, "the version floor moved");

  const first = b.boot();
  assert.equal(first.trial, true);
  assert.equal(first.slot, 0);
  assert.equal(first.version, 2);
  assert.deepEqual(slotBundle(b.rig.regions.firmware, first), v2.body, "the loader gets the bundle back");
  assert.equal(b.fw.inTrial(), true);
  assert.equal(b.fw.state().boots, 1);
  assert.equal(upload(b, image(b.rig.commission, 3).bytes).status, Status.BUSY, "no new image while one is on trial");
  assert.equal(b.fw.confirm(), true);
  assert.equal(b.fw.confirm(), false, "confirming twice does nothing");

  const second = b.boot();
  assert.deepEqual([second.slot, second.trial, second.version], [0, false, 2]);
  assert.equal(readFirmwareState(b.rig.regions.firmware).mode, FW_CONFIRMED);

  const v3 = image(b.rig.commission, 3);
  assert.equal(upload(b, v3.bytes).status, Status.OK);
  const third = b.boot();
  assert.deepEqual([third.slot, third.trial, third.version], [1, true, 3]);
  assert.equal(b.fw.confirm(), true);
  assert.deepEqual(slotBundle(b.rig.regions.firmware, b.boot()), v3.body);
});

test("a trial that never confirms is rolled back: after too many boots, or when its time runs out", () => {
  const b = bench();
  assert.equal(upload(b, image(b.rig.commission, 2).bytes).status, Status.OK);
  assert.equal(b.boot().trial, true);
  assert.equal(b.fw.confirm(), true);
  // v3 crashes before it can confirm, boot after boot.
  assert.equal(upload(b, image(b.rig.commission, 3).bytes).status, Status.OK);
  for (let i = 1; i <= DEFAULT_TRIAL_BOOTS; i++) {
    const c = b.boot();
    assert.deepEqual([c.slot, c.trial, c.version, b.fw.state().boots], [1, true, 3, i], `trial boot ${i}`);
  }
  const back = b.boot();
  assert.deepEqual([back.slot, back.trial, back.version, back.rolledBack], [0, false, 2, 3], "back on v2, v3 remembered as rolled back");
  assert.equal(b.fw.state().mode, FW_CONFIRMED);
  // v4 starts but never confirms: the trial timer gives up and asks for a reboot.
  assert.equal(upload(b, image(b.rig.commission, 4).bytes).status, Status.OK);
  assert.equal(b.boot().trial, true);
  let expired = 0;
  b.fw.startTrial(() => expired++);
  b.rig.clock.advance(59000);
  assert.equal(expired, 0);
  b.rig.clock.advance(2000);
  assert.equal(expired, 1);
  assert.equal(b.fw.inTrial(), false);
  const after = b.boot();
  assert.deepEqual([after.slot, after.version, after.rolledBack], [0, 2, 4]);
  // A first update that fails goes back to the built-in firmware.
  const fresh = bench();
  assert.equal(upload(fresh, image(fresh.rig.commission, 7).bytes).status, Status.OK);
  assert.equal(fresh.boot().trial, true);
  assert.equal(failTrial(fresh.rig.regions.firmware), true, "the loader could not start it");
  const builtIn = fresh.boot();
  assert.deepEqual([builtIn.slot, builtIn.trial, fresh.fw.state().mode], [FW_BUILT_IN, false, FW_NONE]);
  assert.equal(failTrial(fresh.rig.regions.firmware), false, "no trial to give up");
});

test("an update cut in the middle resumes where it stopped", () => {
  const b = bench();
  const v2 = image(b.rig.commission, 2, 20000);
  assert.equal(begin(b, v2.bytes).status, Status.OK);
  chunks(b, v2.bytes, 0, 9000);
  // The link drops; the host comes back and begins the same file again.
  const again = begin(b, v2.bytes);
  assert.equal(again.status, Status.OK);
  assert.equal(again.transfer?.receivedBytes, 9000);
  assert.match(again.message ?? "", /resume at 9000/);
  chunks(b, v2.bytes, 9000, v2.bytes.length);
  assert.equal(end(b).status, Status.OK);
  assert.deepEqual(slotBundle(b.rig.regions.firmware, b.boot()), v2.body);
});

test("a wrongly signed, an older and an oversized firmware are refused; nothing is staged", () => {
  const b = bench();
  const bad = upload(b, image(createCommissionKey(), 5).bytes);
  assert.equal(bad.status, Status.DENIED);
  assert.match(bad.message ?? "", /not signed by the commission/);
  assert.equal(b.fw.state().mode, FW_NONE);
  assert.equal(upload(b, image(b.rig.commission, 5).bytes).status, Status.OK);
  b.boot();
  b.fw.confirm();
  const older = upload(b, image(b.rig.commission, 4).bytes);
  assert.equal(older.status, Status.DENIED);
  assert.match(older.message ?? "", /version 4 is older than version 5/);
  const big = begin(b, new Uint8Array(40000));
  assert.equal(big.status, Status.BUSY);
  assert.match(big.message ?? "", /does not fit a slot/);
  const unsigned = upload(b, signArtifact({ kind: ArtifactKind.FIRMWARE, version: 9, body: new Uint8Array(10) }, b.rig.commission).subarray(0, 20));
  assert.equal(unsigned.status, Status.DENIED);
  assert.equal(b.fw.state().mode, FW_CONFIRMED);
  assert.equal(b.boot().version, 5);
});

test("power cuts in the update state: the loader always finds a whole image or the built-in firmware", () => {
  const geometry = { pageSize: 1024, pageCount: 256 };
  const commission = createCommissionKey();
  const v2 = signArtifact({ kind: ArtifactKind.FIRMWARE, version: 2, body: new Uint8Array(3000).fill(2) }, commission);
  // The state changes of one update, on a flash that already has the image staged.
  const script = (flash: SimFlash): void => {
    const rig = deviceRig({ dataFlash: flash, commission });
    const fw = new FirmwareUpdate({ flash: rig.regions.firmware, timers: rig.timers });
    fw.open();
    const st = fw.staging();
    assert.equal(st.begin(v2.length), null);
    assert.equal(st.write(0, v2), true);
    assert.equal(st.commit({ kind: 1, stationId: "", electionId: "", version: 2, digest: new Uint8Array(32), bodyOffset: v2.length - 3000 - 66, bodyLength: 3000 }), null);
    bootDecision(rig.regions.firmware, 3);
    fw.open();
    assert.equal(fw.confirm(), true);
    bootDecision(rig.regions.firmware, 3);
  };
  const clean = new SimFlash(geometry);
  script(clean);
  const total = clean.steps;
  const modes = new Set<number>();
  for (let k = 0; k <= total; k++) {
    const flash = new SimFlash({ ...geometry, seed: k + 1 });
    flash.armPowerCut(k);
    try {
      script(flash);
      flash.disarmPowerCut();
    } catch (e) {
      if (!(e instanceof PowerCut)) throw e;
      flash.restorePower();
    }
    const rig = deviceRig({ dataFlash: flash, commission });
    const c = bootDecision(rig.regions.firmware, 3);
    modes.add(readFirmwareState(rig.regions.firmware).mode);
    if (c.slot !== FW_BUILT_IN) {
      const bundle = slotBundle(rig.regions.firmware, c);
      assert.ok(bundle !== null && bundle.length === 3000 && bundle[0] === 2, `cut ${k}: slot ${c.slot} holds a whole image`);
    }
  }
  assert.ok(modes.has(FW_NONE) && modes.has(FW_TRIAL) && modes.has(FW_CONFIRMED), `states seen: ${[...modes]}`);
});
