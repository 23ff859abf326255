// The Espruino and Moddable firmware bundles, built exactly as device/build/build.ts builds them,
// running on XS (xsnap) over a shim of each engine's own globals / modules:
// - targets_espruino_shim.ts: Serial1, I2C1, E, getTime, setTimeout/clearTimeout, require("Storage"),
//   process.memory, console; targets_moddable_shim.ts: embedded:io/serial, embedded:io/i2c, timer,
//   flash and the global System. Both keep a virtual clock that only the test advances.
// - targets_host.ts (Node): the hardware behind them: the real secure element model (Atecc608Model
//   on a SimI2cBus) whose `now` is the shim's virtual clock, Espruino Storage with jsfWriteFile's
//   rules, SimFlash for the Moddable partition, and a host speaking the protocol with protobufjs.
// The shipped Moddable bundle is an ES module; for XS it is re-bundled as a script with its SDK
// imports bound to the shim (test only). Each device boots, says Hello with its 64-byte public
// key, answers the host's Hello with the BOOT record (seq 1) and a Health, runs an info command
// after an Ack, and reboots on command with its reason and journal kept.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TARGETS, buildTarget, type BuiltBundle } from "../../device/build/build.ts";
import { ChargeMode, RebootReason, RecordKind, Role } from "../../protocol/generated/device_codec.ts";
import { startXs, type XsWorker } from "../helpers/xs_harness.ts";
import { TargetsHost, buildShim, moddableBundleForXs } from "./targets_host.ts";

interface EngineCase {
  name: "espruino" | "moddable";
  identity: { serial: string; model: string; role: number };
  /** Writes the identity where the target reads it (as manufacture would). */
  provision(host: TargetsHost, identityJson: Uint8Array): void;
  /** The script XS evaluates, from the shipped bundle. */
  forXs(bundle: BuiltBundle): Promise<string>;
}

const CASES: EngineCase[] = [
  {
    name: "espruino",
    identity: { serial: "VVD-E00001", model: "pollkit-vvd-e1", role: Role.VERIFICATION },
    provision(host, json) {
      host.storage.write("pkident", json, 0, 0);
    },
    forXs: (b) => Promise.resolve(b.code),
  },
  {
    name: "moddable",
    identity: { serial: "RAD-M00001", model: "pollkit-rad-m1", role: Role.RESULT_ACCELERATION },
    provision(host, json) {
      host.flash.program(host.flash.pageCount - 1, 0, json);
    },
    forXs: (b) => moddableBundleForXs(b.code),
  },
];

const HOST_HELLO = { hello: { protocolVersion: 1, deviceId: "test-host", role: Role.HOST } };

for (const c of CASES) {
  describe(`${c.name} bundle on XS`, () => {
    let built: BuiltBundle;
    let script: string;
    let host: TargetsHost;
    let xs: XsWorker | undefined;
    let firstBootId = 0;

    const noErrors = (): void => {
      assert.deepEqual(host.deviceErrors, [], "no exception escaped device code");
      assert.deepEqual(host.hostErrors, [], "every call from XS was answered");
      assert.deepEqual(host.frameErrors, [], "every frame from the device decodes");
    };

    before(async () => {
      const target = TARGETS.find((t) => t.name === c.name);
      assert.ok(target, `device/build/build.ts has a ${c.name} target`);
      built = await buildTarget(target);
      script = await c.forXs(built);
      host = new TargetsHost({ seed: c.name === "espruino" ? 11 : 12 });
      c.provision(host, new Uint8Array(Buffer.from(JSON.stringify(c.identity), "latin1")));
      xs = await startXs({ name: `target-${c.name}`, onHostCommand: host.handle });
      await xs.evaluate(await buildShim(c.name));
      await xs.evaluate(script);
    });

    after(async () => {
      await xs?.close();
    });

    test("the shipped bundle passes the engine-subset bundle check", () => {
      assert.deepEqual(
        built.violations.map((v) => `${v.line}:${v.column} ${v.rule} ${v.source.slice(0, 120)}`),
        [],
      );
      assert.ok(built.bytes > 0);
    });

    test("boots on the virtual clock and says Hello with its 64-byte public key", async () => {
      assert.ok(xs);
      await host.advance(xs, 2000);
      noErrors();
      const hellos = host.of("hello") as { deviceId: string; role: number; hardwareModel: string; publicKey: number[]; bootId: number }[];
      assert.equal(hellos.length, 1, "one Hello once the link is up");
      assert.equal(hellos[0].deviceId, c.identity.serial);
      assert.equal(hellos[0].role, c.identity.role);
      assert.equal(hellos[0].hardwareModel, c.identity.model);
      assert.equal(hellos[0].publicKey.length, 64, "P-256 public key from the secure element model");
      assert.equal(host.records().length, 0, "no records before the host says hello");
      assert.ok(host.se.stats.commands > 0, "the driver talked to the chip model over the shim's I2C");
      firstBootId = hellos[0].bootId;

      const state = await host.shimState(xs);
      if (c.name === "espruino") {
        assert.deepEqual(state.shim.serialSetup, [{ baud: 115200, options: {} }], "Serial1.setup on a board (no tty path)");
        assert.equal(state.shim.console, null, "the console is detached from the host link");
        assert.equal(state.shim.consoleForced, true);
        assert.equal(state.shim.watchdogS, 20, "watchdog of 20 s, kicked by the firmware");
        assert.equal(state.shim.watchdogAuto, false);
        assert.ok((state.shim.kicks as number) >= 1);
        assert.ok(host.storage.files.has("pkj0"), "journal page 0 is a Storage file");
        assert.equal(host.storage.files.get("pkj0")?.length, 4 + 2048);
      } else {
        assert.deepEqual(state.shim.serials, [{ port: 0, receive: 3, transmit: 1, baud: 115200, format: "buffer" }]);
      }
    });

    test("answers the host's Hello with its Hello, a Health and the BOOT record (seq 1)", async () => {
      assert.ok(xs);
      await host.send(xs, HOST_HELLO);
      await host.advance(xs, 300);
      noErrors();
      assert.equal(host.of("hello").length, 2, "the device answers the host's Hello");
      const health = host.of("health") as { rebootReason?: number; journalBacklog?: number }[];
      assert.ok(health.length >= 1, "a Health at once");
      assert.equal(health[0].rebootReason, RebootReason.POWER_ON);
      const recs = host.records();
      assert.deepEqual(recs.map((r) => r.seq), [1]);
      assert.equal(recs[0].kind, RecordKind.BOOT);
    });

    test("after an Ack, an info command gets a CommandResult with the device id", async () => {
      assert.ok(xs);
      host.clear();
      await host.send(xs, { ack: { seq: 1 } });
      await host.send(xs, { command: { id: 1, info: {} } });
      await host.advance(xs, 300);
      noErrors();
      const results = host.of("commandResult") as { id: number; status?: number; info?: { deviceId: string; journalNextSeq: number } }[];
      assert.equal(results.length, 1);
      assert.equal(results[0].id, 1);
      assert.equal(results[0].status ?? 0, 0, "status OK");
      assert.equal(results[0].info?.deviceId, c.identity.serial);
      assert.equal(host.of("error").length, 0);
      await host.advance(xs, 5000);
      assert.equal(host.records().length, 0, "acknowledged: the BOOT record is not resent");
    });

    test("a reboot command: the device resets, reports SOFTWARE and its journal goes on", async () => {
      assert.ok(xs);
      host.clear();
      await host.send(xs, { command: { id: 2, reboot: { delayMs: 100 } } });
      await host.advance(xs, 1000);
      noErrors();
      assert.equal(host.reboots, 1, "the firmware reset the device");
      const done = host.of("commandResult") as { id: number }[];
      assert.deepEqual(done.map((r) => r.id), [2]);

      // Power comes back: the same bundle boots again on the same storage and chip.
      host.clear();
      await host.powerOn(xs);
      await xs.evaluate(script);
      await host.advance(xs, 2000);
      const hello = host.of("hello")[0] as { bootId: number; journalNextSeq: number } | undefined;
      assert.ok(hello, "a Hello after the reboot");
      assert.notEqual(hello.bootId, firstBootId, "a new boot id");
      await host.send(xs, HOST_HELLO);
      await host.advance(xs, 300);
      noErrors();
      const recs = host.records();
      assert.deepEqual(recs.map((r) => r.seq), [2, 3], "unacknowledged records only, sequence numbers go on");
      assert.deepEqual(recs.map((r) => r.kind), [RecordKind.COMMAND, RecordKind.BOOT]);
      const health = host.of("health") as { rebootReason?: number }[];
      assert.equal(health[0].rebootReason, RebootReason.SOFTWARE, "the reason survived the reset");
      if (c.name === "espruino") {
        assert.equal(host.storage.files.has("pkreason"), false, "the reason file is consumed at boot");
      } else {
        const sector = host.flash.read(host.flash.pageCount - 2, 0, 4);
        assert.deepEqual([...sector], [RebootReason.SOFTWARE + 1, 0, 0xff, 0xff], "reason log: reason, then consumed");
      }
    });

    test("a charge mode set by command is kept in the settings flash across a reboot", async () => {
      assert.ok(xs);
      host.clear();
      await host.send(xs, { command: { id: 3, setChargeMode: { mode: ChargeMode.STORAGE } } });
      await host.advance(xs, 500);
      noErrors();
      const set = host.of("commandResult") as { id: number; status?: number; message?: string }[];
      assert.deepEqual(set.map((r) => [r.id, r.status ?? 0]), [[3, 0]], JSON.stringify(set));
      if (c.name === "espruino") assert.equal(host.storage.files.get("pks0")?.length, 4 + 256, "settings in Storage file pks0");
      await host.send(xs, { command: { id: 4, reboot: { delayMs: 100 } } });
      await host.advance(xs, 1000);
      host.clear();
      await host.powerOn(xs);
      await xs.evaluate(script);
      await host.advance(xs, 2000);
      await host.send(xs, HOST_HELLO);
      await host.advance(xs, 300);
      noErrors();
      const health = host.of("health") as { chargeMode?: number }[];
      assert.ok(health.length > 0, "a Health after the reboot");
      assert.equal(health[health.length - 1].chargeMode, ChargeMode.STORAGE, "storage mode after the reboot");
    });
  });
}

describe("espruino bundle on XS, as on Espruino's Linux build (tty path, no I2C1)", () => {
  let host: TargetsHost;
  let xs: XsWorker | undefined;

  before(async () => {
    const target = TARGETS.find((t) => t.name === "espruino");
    assert.ok(target);
    const built = await buildTarget(target);
    host = new TargetsHost({ seed: 13 });
    xs = await startXs({ name: "target-espruino-linux", onHostCommand: host.handle });
    await xs.evaluate(await buildShim("espruino"));
    // What a define (or a global set before the bundle) gives on the Linux build; and a board
    // file without an I2C1.
    await xs.evaluate('globalThis.POLLKIT_SERIAL_PATH = "/dev/pts/9"; delete globalThis.I2C1;');
    await xs.evaluate(built.code);
  });

  after(async () => {
    await xs?.close();
  });

  test("Serial1 opens the tty, the console stays on the terminal, the missing chip is a fault", async () => {
    assert.ok(xs);
    await host.advance(xs, 2000);
    const state = await host.shimState(xs);
    assert.deepEqual(state.shim.serialSetup, [{ baud: 115200, options: { path: "/dev/pts/9" } }]);
    assert.equal(state.shim.console, "default", "E.setConsole is not called on the Linux build");
    assert.deepEqual(host.deviceErrors, []);
    const hello = host.of("hello")[0] as { deviceId: string; publicKey?: number[] } | undefined;
    assert.ok(hello, "it boots and says Hello without a secure element");
    assert.match(hello.deviceId, /^PK-/, "unprovisioned: a fallback serial");
    assert.equal((hello.publicKey ?? []).length, 0);
    await host.send(xs, HOST_HELLO);
    await host.advance(xs, 300);
    const health = host.of("health") as { peripheralFaults?: number }[];
    assert.ok(health.length >= 1);
    assert.notEqual(health[0].peripheralFaults ?? 0, 0, "the secure element is reported as a fault");
    assert.deepEqual(host.records().map((r) => r.seq), [1], "the BOOT record is journalled all the same");
  });
});
