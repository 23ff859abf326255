// The simulator's boot loader: built-in firmware when the slots are empty, the staged bundle on
// trial, the confirmed one after, and a rollback when a trial image does not load or crashes.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { SimFlash } from "../models/flash.ts";
import { dataRegions } from "../../device/platform/flash_partition.ts";
import { FirmwareUpdate, FW_BUILT_IN, FW_CONFIRMED, readFirmwareState } from "../../device/services/firmware_update.ts";
import { parseArtifactHeader } from "../../device/services/authority.ts";
import { memorySource } from "../../device/services/artifact_store.ts";
import { Firmware } from "../../device/core/firmware.ts";
import { ArtifactKind } from "../../protocol/generated/device_codec.ts";
import { signArtifact } from "../../host/commission/artifacts.ts";
import { createCommissionKey } from "../../host/commission/keys.ts";
import { VirtualClock } from "../clock/timers.ts";
import { createMemoryLink } from "../links/memory_link.ts";
import { SimDevice } from "./sim_device.ts";
import { chooseFirmware, markBootAttempt } from "./boot_loader.ts";

const commission = createCommissionKey();
const builtIn = { firmwareClass: Firmware, version: "1.0.0" };
const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "utf8"));

/** A tiny firmware module: a Firmware class marked with `tag`. */
const fakeBundle = (tag: string): Uint8Array => text(`export class Firmware { static tag = ${JSON.stringify(tag)}; constructor(o) { this.o = o; } start(cb) { if (cb) cb(); } }\n`);

/** Stages a firmware artifact the way the transfer does (the signature is checked elsewhere). */
function stage(dataFlash: SimFlash, bundle: Uint8Array, version: number): void {
  const fw = new FirmwareUpdate({ flash: dataRegions(dataFlash).firmware, timers: new VirtualClock().timers() });
  fw.open();
  const bytes = signArtifact({ kind: ArtifactKind.FIRMWARE, version, body: bundle }, commission);
  const h = parseArtifactHeader(memorySource(bytes));
  assert.ok(typeof h !== "string");
  const st = fw.staging();
  assert.equal(st.begin(bytes.length), null);
  assert.equal(st.write(0, bytes), true);
  assert.equal(st.commit(h), null);
}

function confirm(dataFlash: SimFlash): void {
  const fw = new FirmwareUpdate({ flash: dataRegions(dataFlash).firmware, timers: new VirtualClock().timers() });
  fw.open();
  assert.equal(fw.confirm(), true);
}

const tagOf = (cls: unknown): string | undefined => (cls as { tag?: string }).tag;

test("empty slots or no data flash: the built-in firmware", () => {
  assert.equal(chooseFirmware(undefined, builtIn).firmwareClass, Firmware);
  const c = chooseFirmware(new SimFlash({ pageSize: 1024, pageCount: 64 }), builtIn);
  assert.deepEqual([c.firmwareClass, c.version, c.slot, c.trial], [Firmware, "1.0.0", FW_BUILT_IN, false]);
});

test("a staged bundle runs on trial until it confirms, then for good", () => {
  const flash = new SimFlash({ pageSize: 1024, pageCount: 64 });
  stage(flash, fakeBundle("v2"), 2);
  const first = chooseFirmware(flash, builtIn);
  assert.deepEqual([tagOf(first.firmwareClass), first.version, first.slot, first.trial], ["v2", "2", 0, true]);
  const second = chooseFirmware(flash, builtIn);
  assert.equal(second.trial, true, "not confirmed yet: still a trial (boot 2)");
  confirm(flash);
  const third = chooseFirmware(flash, builtIn);
  assert.deepEqual([tagOf(third.firmwareClass), third.trial], ["v2", false]);
  assert.equal(readFirmwareState(dataRegions(flash).firmware).mode, FW_CONFIRMED);
});

test("a trial image that does not load, exports no Firmware or crashes at start is rolled back", () => {
  const flash = new SimFlash({ pageSize: 1024, pageCount: 64 });
  stage(flash, fakeBundle("good"), 2);
  chooseFirmware(flash, builtIn);
  confirm(flash);
  stage(flash, text("export const Firmware = ;\n"), 3);
  const broken = chooseFirmware(flash, builtIn);
  assert.deepEqual([tagOf(broken.firmwareClass), broken.slot, broken.trial, broken.rolledBack], ["good", 0, false, 3]);
  assert.match(broken.notes[0] ?? "", /firmware 3 in slot 1 does not load/);
  stage(flash, text("export const Other = 1;\n"), 4);
  const noClass = chooseFirmware(flash, builtIn);
  assert.equal(tagOf(noClass.firmwareClass), "good");
  assert.match(noClass.notes[0] ?? "", /exports no Firmware class/);
  // Loads, but its Firmware throws while starting: SimDevice reports it and reboots.
  stage(flash, fakeBundle("crashy"), 5);
  const crashy = chooseFirmware(flash, builtIn);
  assert.deepEqual([tagOf(crashy.firmwareClass), crashy.trial], ["crashy", true]);
  assert.equal(markBootAttempt(flash, false), true, "rolled back");
  const after = chooseFirmware(flash, builtIn);
  assert.deepEqual([tagOf(after.firmwareClass), after.trial, after.rolledBack], ["good", false, 5]);
  assert.equal(markBootAttempt(flash, false), false, "a confirmed image is not rolled back");
  assert.equal(markBootAttempt(flash, true), false);
});

const NODE_BUNDLE = new URL("../../artifacts/firmware/node/pollkit_node.mjs", import.meta.url).pathname;

test("the real Node firmware bundle, staged in a slot, boots a simulated device", { skip: !existsSync(NODE_BUNDLE) && "no built bundle (npm run build:firmware)" }, () => {
  const flash = new SimFlash({ pageSize: 4096, pageCount: 1024 });
  stage(flash, new Uint8Array(readFileSync(NODE_BUNDLE)), 7);
  const c = chooseFirmware(flash, builtIn);
  assert.equal(c.trial, true);
  assert.notEqual(c.firmwareClass, Firmware, "not the built-in class");
  const clock = new VirtualClock();
  const link = createMemoryLink();
  const dev = new SimDevice({ serial: "VVD-LOADER-1", role: "verification", hostLink: link.device, clock, wallMs: 1795000000000, firmwareClass: c.firmwareClass });
  dev.powerOn();
  clock.advance(600);
  assert.ok(dev.firmware instanceof c.firmwareClass);
  assert.equal(dev.firmware?.started, true);
});
