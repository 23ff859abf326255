// The verification device as the host sees it (the whole firmware on a SimDevice, its real PN532
// and fingerprint module models, a host speaking the protocol with protobufjs): a card reader or
// fingerprint module that stops answering sets its bit in Health.peripheral_faults and clears it
// when it answers again, and the self-test (Diagnostics) lists both parts with a verdict from a
// probe, a part missing at boot included. Virtual time.

import { test } from "node:test";
import assert from "node:assert/strict";
import { SimDevice } from "../../simulator/device/sim_device.ts";
import { VirtualClock } from "../../simulator/clock/timers.ts";
import { createMemoryLink } from "../../simulator/links/memory_link.ts";
import { PN532_I2C_ADDRESS } from "../../simulator/models/pn532.ts";
import { HostPeer } from "../../test/helpers/host_peer.ts";
import { Peripheral, PollsState, Verdict } from "../../protocol/generated/device_codec.ts";

const NOW = 1795000000000;
const READER_BIT = 1 << Peripheral.CARD_READER;
const FINGER_BIT = 1 << Peripheral.FINGERPRINT;

interface HealthSeen {
  at: number;
  faults: number;
}

function vvd(before?: (dev: SimDevice) => void) {
  const clock = new VirtualClock();
  const link = createMemoryLink();
  const host = new HostPeer(link.host);
  const logs: string[] = [];
  const dev = new SimDevice({
    serial: "VVD-000777",
    role: "verification",
    hostLink: link.device,
    clock,
    wallMs: NOW,
    healthIntervalMs: 60000,
    flashPages: 8,
    flashPageSize: 1024,
    onLog: (line) => logs.push(line),
  });
  before?.(dev);
  const seen: HealthSeen[] = [];
  dev.powerOn();
  clock.advance(500);
  host.send({ hello: { protocolVersion: 1, role: 3 } });
  clock.advance(10);
  const collect = (): HealthSeen[] => {
    const all = host.of("health") as { peripheralFaults?: number }[];
    for (let i = seen.length; i < all.length; i++) seen.push({ at: clock.now(), faults: all[i].peripheralFaults ?? 0 });
    return seen;
  };
  /** Advances in steps so each Health is stamped with (about) when it came. */
  const run = (ms: number): void => {
    for (let t = 0; t < ms; t += 1000) {
      clock.advance(Math.min(1000, ms - t));
      collect();
    }
  };
  return { clock, host, dev, run, collect, logs };
}

function diagnostics(h: ReturnType<typeof vvd>, id: number): Map<number, { verdict: number; detail: string }> {
  h.host.send({ command: { id, diagnostics: {} } });
  h.run(6000);
  const r = (h.host.of("commandResult") as { id: number; diagnostics?: { parts: { part: number; verdict?: number; detail?: string }[] } }[]).find(
    (x) => x.id === id,
  );
  assert.ok(r?.diagnostics, "diagnostics answered");
  return new Map(r.diagnostics.parts.map((p) => [p.part, { verdict: p.verdict ?? 0, detail: p.detail ?? "" }]));
}

test("a card reader, then a fingerprint module, that stops answering: its Health bit comes, and goes when it answers again", () => {
  const h = vvd();
  assert.equal(h.dev.firmware?.pollsState(), PollsState.NOT_LOADED, "as in storage: no register, no card search");
  h.run(5000);
  assert.ok(h.collect().every((x) => x.faults === 0));

  for (const part of ["card reader", "fingerprint module"] as const) {
    const bit = part === "card reader" ? READER_BIT : FINGER_BIT;
    const connect = (on: boolean): void => {
      if (part === "card reader") h.dev.bus.setConnected(PN532_I2C_ADDRESS, on);
      else h.dev.fingerprint?.setConnected(on);
    };
    const at = h.clock.now();
    connect(false);
    h.run(60000);
    const after = h.collect().filter((x) => x.at > at);
    assert.ok(after.some((x) => (x.faults & bit) !== 0), `${part}: a Health with its bit after the fault`);
    assert.equal(after.at(-1)?.faults, bit, `${part}: only its own bit`);
    const back = h.clock.now();
    connect(true);
    h.run(90000);
    const later = h.collect().filter((x) => x.at > back);
    assert.ok(later.length > 0 && (later.at(-1)!.faults & bit) === 0, `${part}: a Health without the bit once it answers`);
    assert.equal(h.dev.firmware?.health().peripheralFaults, 0);
  }
  assert.equal(h.logs.filter((l) => l.includes("does not answer")).length, 2, "one log line per fault");
  assert.equal(h.logs.filter((l) => l.includes("answers again")).length, 2);
  assert.equal(h.dev.cardReader?.stats.byCommand[0x4a] ?? 0, 0, "no card search all along (no register)");
});

test("self-test at boot: both parts listed with a probe's verdict; a part missing at boot fails and its bit is set", () => {
  const ok = vvd();
  ok.run(3000);
  const good = diagnostics(ok, 1);
  assert.equal(good.get(Peripheral.CARD_READER)?.verdict, Verdict.PASS);
  assert.match(good.get(Peripheral.CARD_READER)?.detail ?? "", /PN532 firmware/);
  assert.equal(good.get(Peripheral.FINGERPRINT)?.verdict, Verdict.PASS);
  assert.equal(good.get(Peripheral.PRINTER)?.verdict, Verdict.ABSENT, "not fitted on this device");

  const missing = vvd((dev) => {
    dev.fingerprint?.setConnected(false);
    dev.bus.setConnected(PN532_I2C_ADDRESS, false);
  });
  missing.run(3000);
  assert.ok(
    missing.collect().some((x) => x.faults === (READER_BIT | FINGER_BIT)),
    "a Health with both bits right after boot",
  );
  const bad = diagnostics(missing, 2);
  assert.equal(bad.get(Peripheral.CARD_READER)?.verdict, Verdict.FAIL);
  assert.match(bad.get(Peripheral.CARD_READER)?.detail ?? "", /no PN532 answers/);
  assert.equal(bad.get(Peripheral.FINGERPRINT)?.verdict, Verdict.FAIL);
  assert.match(bad.get(Peripheral.FINGERPRINT)?.detail ?? "", /does not answer/);
  assert.equal(bad.get(Peripheral.SECURE_ELEMENT)?.verdict, Verdict.PASS);
  const log = missing.logs.join("\n");
  assert.match(log, /card reader does not answer/);
  assert.match(log, /fingerprint module does not answer/);
});
