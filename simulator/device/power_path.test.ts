// A simulated device's power across reboots: the charge mode a technician sets survives a power
// cut, a reboot and a simulator restart, and damaged settings fall back to normal with the reason;
// a device shut down on a flat cell stays off until a charger is plugged in (no boot loop), and a
// firmware whose shutdown was only a reset holds at boot until input power comes. Real firmware,
// real chip models, virtual time.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimDevice, type SimDeviceOptions } from "./sim_device.ts";
import { VirtualClock } from "../clock/timers.ts";
import { createMemoryLink } from "../links/memory_link.ts";
import { PowerCut } from "../models/flash.ts";
import { HostPeer } from "../../test/helpers/host_peer.ts";
import { createCommissionKey } from "../../host/commission/keys.ts";
import { technicianRig, DAY_MS } from "../../host/commission/testing.ts";
import { authorize } from "../../host/commission/authorize.ts";
import {
  ChargeMode,
  ChargeState,
  PowerAlarmKind,
  RebootReason,
  RecordKind,
  Status,
  decodeBootInfo,
  decodePowerAlarm,
  decodeRecord,
  type Command,
} from "../../protocol/generated/device_codec.ts";
import type { Journal } from "../../device/services/journal.ts";
import { RESTART_POLL_MS } from "../../device/services/power.ts";

const NOW = 1795000000000;
const SERIAL = "VVD-000001";
const commission = createCommissionKey();
const tech = technicianRig(commission, { notBefore: NOW - DAY_MS });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** What a journal holds, oldest first: "boot <reason>" and "critical" (the CRITICAL_BATTERY alarm). */
function story(j: Journal): string[] {
  const out: string[] = [];
  for (let seq = j.firstSeq(); seq < j.nextSeq(); seq++) {
    const b = j.read(seq);
    if (b === null) continue;
    const rec = decodeRecord(b);
    const payload = rec.payload ?? new Uint8Array(0);
    if (rec.kind === RecordKind.BOOT) out.push(`boot ${decodeBootInfo(payload).reason}`);
    if (rec.kind === RecordKind.POWER_ALARM && decodePowerAlarm(payload).kind === PowerAlarmKind.CRITICAL_BATTERY) out.push("critical");
  }
  return out;
}

function rig(extra: Partial<SimDeviceOptions> = {}) {
  const clock = new VirtualClock();
  const link = createMemoryLink();
  const host = new HostPeer(link.host);
  const logs: string[] = [];
  const dev = new SimDevice({
    serial: SERIAL,
    role: "verification",
    hostLink: link.device,
    clock,
    wallMs: NOW,
    commissionKey: commission.publicKey,
    healthIntervalMs: 60000,
    flashPages: 8,
    flashPageSize: 1024,
    dataFlashPages: 16,
    dataFlashPageSize: 1024,
    onLog: (l) => logs.push(l),
    ...extra,
  });
  let issued = NOW;
  let id = 100;
  /** A command signed by the technician, each one issued later than the one before. */
  const signed = (cmd: Command): Command => authorize(cmd, SERIAL, tech.token, tech.key, (issued += 1000));
  /** Sends a technician-signed SetChargeMode and returns its result status. */
  const setMode = (mode: number): number | undefined => {
    host.send({ command: signed({ id: ++id, setChargeMode: { mode } }) });
    clock.advance(1500);
    const r = (host.of("commandResult") as { id: number; status?: number }[]).find((x) => x.id === id);
    assert.ok(r, `an answer to command ${id}`);
    return r.status ?? Status.OK;
  };
  /** Says hello as a host and returns the charge mode of the health report that follows. */
  const healthMode = (): number => {
    host.clear();
    host.send({ hello: { protocolVersion: 1, role: 3 } });
    clock.advance(2000);
    const h = host.of("health").at(-1) as { chargeMode?: number } | undefined;
    assert.ok(h, "a health report");
    return h.chargeMode ?? ChargeMode.UNSPECIFIED;
  };
  const boot = (reason: number): void => {
    dev.powerOn(reason);
    clock.advance(1500);
  };
  return { clock, host, dev, logs, signed, setMode, healthMode, boot };
}

test("the charge mode set by a technician survives a power cut, a reboot and a simulator restart", async () => {
  const stateDir = mkdtempSync(join(tmpdir(), "pollkit-power-"));
  try {
    const r = rig({ stateDir });
    r.boot(RebootReason.POWER_ON);
    assert.equal(r.healthMode(), ChargeMode.NORMAL, "a new device charges normally");
    assert.equal(r.setMode(ChargeMode.STORAGE), Status.OK);
    assert.equal(r.dev.firmware?.power?.mode, ChargeMode.STORAGE);

    // Power cut: RAM is lost, the board comes back with a brown-out.
    r.dev.powerOff();
    r.boot(RebootReason.BROWN_OUT);
    assert.equal(r.dev.firmware?.rebootReason, RebootReason.BROWN_OUT);
    assert.equal(r.dev.firmware?.power?.mode, ChargeMode.STORAGE, "PowerService runs in storage mode");
    assert.equal(r.healthMode(), ChargeMode.STORAGE, "health reports storage mode");
    assert.ok(!r.logs.some((l) => l.startsWith("settings:")), "nothing to complain about");

    // A reboot the technician asks for, then a change to maintain.
    r.host.send({ command: r.signed({ id: 7, reboot: { delayMs: 10 } }) });
    r.clock.advance(1000);
    await tick();
    r.clock.advance(1500);
    assert.equal(r.dev.boots, 3);
    assert.equal(r.dev.firmware?.power?.mode, ChargeMode.STORAGE);
    assert.equal(r.setMode(ChargeMode.MAINTAIN), Status.OK);

    // The simulator itself restarts: a new SimDevice from the same state directory.
    r.dev.powerOff();
    const again = rig({ stateDir });
    again.boot(RebootReason.POWER_ON);
    assert.equal(again.dev.firmware?.power?.mode, ChargeMode.MAINTAIN);
    assert.equal(again.healthMode(), ChargeMode.MAINTAIN);
    again.dev.powerOff();
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});

test("a settings write torn by a power cut, or damaged settings, fall back to normal with the reason and lose nothing else", () => {
  const r = rig();
  r.boot(RebootReason.POWER_ON);
  r.healthMode();
  const settings = r.dev.settingsFlash;
  assert.ok(settings);

  // The cut strikes inside the first settings write (the command's own handling throws it).
  settings.armPowerCut(10, 5);
  assert.throws(() => r.setMode(ChargeMode.STORAGE), PowerCut);
  assert.equal(settings.cuts, 1);
  r.dev.powerOff();
  settings.restorePower();
  r.boot(RebootReason.BROWN_OUT);
  assert.equal(r.dev.firmware?.power?.mode, ChargeMode.NORMAL);
  assert.equal(r.healthMode(), ChargeMode.NORMAL);
  const why = r.logs.filter((l) => l.startsWith("settings:"));
  assert.equal(why.length, 1, why.join(" | "));
  assert.match(why[0], /cut by power loss/);

  // The journal lost nothing: both boot records are there, in order.
  const j = r.dev.firmware?.journal;
  assert.ok(j);
  assert.deepEqual(story(j), [`boot ${RebootReason.POWER_ON}`, `boot ${RebootReason.BROWN_OUT}`]);

  // The technician sets the mode again: it holds this time.
  assert.equal(r.setMode(ChargeMode.STORAGE), Status.OK);
  r.dev.powerOff();
  r.logs.length = 0;
  r.boot(RebootReason.BROWN_OUT);
  assert.equal(r.dev.firmware?.power?.mode, ChargeMode.STORAGE);
  assert.deepEqual(r.logs.filter((l) => l.startsWith("settings:")), []);

  // Bit rot in the saved record while the device is off: normal again, with the reason.
  r.dev.powerOff();
  const image = settings.snapshot();
  let page = -1;
  for (let p = 0; p < settings.pageCount && page < 0; p++) if (settings.read(p, 0, 1)[0] !== 0xff) page = p;
  assert.ok(page >= 0);
  const bytes = settings.read(page, 0, settings.pageSize);
  for (let i = 24; i < settings.pageSize; i++) bytes[i] = bytes[i] === 0xff ? 0xff : bytes[i] ^ 0x5a;
  settings.erase(page);
  settings.program(page, 0, bytes);
  r.logs.length = 0;
  r.boot(RebootReason.POWER_ON);
  assert.equal(r.dev.firmware?.power?.mode, ChargeMode.NORMAL);
  assert.equal(r.healthMode(), ChargeMode.NORMAL);
  assert.equal(r.logs.filter((l) => l.startsWith("settings:")).length, 1);
  assert.ok(image.data.some((b) => b !== 0xff));
  assert.equal(r.setMode(ChargeMode.MAINTAIN), Status.OK, "the damaged area is written over");
  r.dev.powerOff();
  r.boot(RebootReason.POWER_ON);
  assert.equal(r.dev.firmware?.power?.mode, ChargeMode.MAINTAIN);
});

/** Parameters of a device running from a nearly flat cell, unplugged. */
const FLAT: Partial<SimDeviceOptions> = {
  dataFlashPages: 0,
  power: { battery: { capacityMah: 3000, socPercent: 5.4, temperatureC: 25 }, vbus: false },
};

test("a flat cell without input power shuts the device down once and it stays off; a charger brings it back once and it charges", async () => {
  const r = rig(FLAT);
  r.boot(RebootReason.POWER_ON);
  const plant = r.dev.power;
  assert.ok(plant);
  // Two days of virtual time, a minute at a time (a restart a moment after a shutdown would show).
  for (let i = 0; i < 2 * 24 * 60; i++) {
    r.clock.advance(60_000);
    await tick();
  }
  assert.equal(r.dev.boots, 1, "one boot, no loop");
  assert.equal(r.dev.lowBatteryShutdowns, 1);
  assert.equal(r.dev.running, false);
  assert.equal(r.dev.waitingForInput, true);
  assert.ok(r.logs.some((l) => l.includes("battery critical")));
  const steps = r.dev.flash.steps;
  const soc = plant.battery.socPercent;
  assert.ok(soc < 5 && soc > 3, `the cell rests at ${soc.toFixed(2)} %: only self-discharge while off`);

  // Off: nothing more is written, however long it stays there.
  for (let i = 0; i < 10; i++) {
    r.clock.advance(3_600_000);
    await tick();
  }
  assert.equal(r.dev.boots, 1);
  assert.equal(r.dev.flash.steps, steps);

  // A charger: the board comes back once, with the reason, and charges.
  plant.setCharger(true);
  await tick();
  assert.equal(r.dev.boots, 2);
  assert.equal(r.dev.waitingForInput, false);
  assert.equal(r.dev.firmware?.rebootReason, RebootReason.LOW_BATTERY);
  for (let i = 0; i < 120; i++) {
    r.clock.advance(60_000);
    await tick();
  }
  assert.equal(r.dev.boots, 2, "booted once");
  assert.equal(r.dev.firmware?.started, true);
  const m = r.dev.firmware?.power?.metrics();
  assert.equal(m?.chargeState, ChargeState.FAST_CHARGE);
  assert.ok(m?.externalPower);
  assert.ok(plant.battery.socPercent > soc + 20, `charged to ${plant.battery.socPercent.toFixed(1)} %`);

  // The journal tells the story: the critical alarm before the shutdown, then the LOW_BATTERY boot.
  const j = r.dev.firmware?.journal;
  assert.ok(j);
  assert.deepEqual(story(j), [`boot ${RebootReason.POWER_ON}`, "critical", `boot ${RebootReason.LOW_BATTERY}`]);
});

test("a firmware restarted by a plain reset after its low-battery shutdown holds until input power comes", () => {
  const r = rig(FLAT);
  const plant = r.dev.power;
  assert.ok(plant);
  plant.battery.socPercent = 3;
  // What a target whose shutdown is E.reboot() does: the firmware starts again at once.
  r.dev.powerOn(RebootReason.LOW_BATTERY);
  r.clock.advance(30 * RESTART_POLL_MS);
  assert.equal(r.dev.firmware?.started, false, "held: not started");
  assert.equal(r.dev.flash.steps, 0, "nothing written on a flat cell");
  assert.ok(r.logs.some((l) => l.includes("waiting for input power")));
  plant.setCharger(true);
  r.clock.advance(RESTART_POLL_MS + 2000);
  assert.equal(r.dev.firmware?.started, true, "started once the charger is there");
  assert.equal(r.dev.boots, 1, "the same boot, resumed");
  assert.ok(r.dev.flash.steps > 0, "the boot record is written");
});
