// The command service with the real authority (secure element model, artifact store): commands
// that change the device run only with a technician's authority and are journalled with the
// technician's id; refusals answer DENIED and change nothing; read-only commands need none.

import { test } from "node:test";
import assert from "node:assert/strict";
import { CommandService, type CommandContext } from "./commands.ts";
import { TransferReceiver, CountingSink } from "./transfer.ts";
import {
  ChargeMode,
  RecordKind,
  Status,
  decodeAuditEvent,
  type AuditEvent,
  type Command,
  type CommandResult,
} from "../../protocol/generated/device_codec.ts";
import { authorize } from "../../host/commission/authorize.ts";
import { RIG_NOW, deviceRig, technicianRig, type DeviceRig, type TechnicianRig } from "../../host/commission/testing.ts";

interface Bench {
  rig: DeviceRig;
  tech: TechnicianRig;
  svc: CommandService;
  results: CommandResult[];
  audits: AuditEvent[];
  changes: string[];
  backlog: number;
  send(cmd: Command): CommandResult;
  signed(cmd: Command, issuedMs?: number): Command;
  /** A reboot: the command service and the authority start afresh over the same flash. */
  restart(): void;
}

function bench(o: { withAuthority?: boolean; charger?: boolean; clear?: boolean } = {}): Bench {
  const rig = deviceRig();
  const tech = technicianRig(rig.commission, { technicianId: "tech-noor" });
  const b = { rig, tech, results: [], audits: [], changes: [], backlog: 0 } as unknown as Bench;
  let issued = RIG_NOW;
  const ctx: CommandContext = {
    info: () => ({ deviceId: rig.deviceId, technicianId: rig.authority.technicianId() }),
    selfTest: (parts, cb) => cb([]),
    setTime: (ms) => b.changes.push(`time ${ms}`),
    reboot: (delay) => b.changes.push(`reboot ${delay}`),
    logLines: () => ["line"],
    record: (kind, payload) => {
      assert.equal(kind, RecordKind.COMMAND);
      b.audits.push(decodeAuditEvent(payload));
    },
    send: (r) => b.results.push(r),
    transfer: new TransferReceiver(new CountingSink()),
    authority: o.withAuthority === false ? undefined : rig.authority,
    backlog: () => b.backlog,
  };
  if (o.charger !== false) {
    ctx.setChargeMode = (mode) => {
      b.changes.push(`charge ${mode}`);
      return null;
    };
  }
  if (o.clear !== false) {
    ctx.clearElection = (cb) => {
      b.changes.push("cleared");
      cb(null);
    };
  }
  b.svc = new CommandService(ctx);
  b.restart = () => {
    rig.reboot();
    if (ctx.authority !== undefined) ctx.authority = rig.authority;
    b.svc = new CommandService(ctx);
  };
  b.send = (cmd) => {
    const before = b.results.length;
    b.svc.handle(cmd);
    for (let t = 0; b.results.length === before && t < 60000; t += 20) rig.clock.advance(20);
    assert.equal(b.results.length, before + 1, "one answer per command");
    return b.results[b.results.length - 1];
  };
  b.signed = (cmd, issuedMs) => authorize(cmd, rig.deviceId, tech.token, tech.key, issuedMs ?? ++issued);
  return b;
}

test("read-only commands need no authority; changing commands without it are denied and change nothing", () => {
  const b = bench();
  assert.equal(b.send({ id: 1, info: {} }).status, Status.OK);
  assert.equal(b.send({ id: 2, readLog: { maxLines: 3 } }).log?.lines?.[0], "line");
  assert.equal(b.send({ id: 3, diagnostics: {} }).status, Status.OK);
  const denied: Command[] = [
    { id: 10, setTime: { unixMs: RIG_NOW } },
    { id: 11, reboot: { delayMs: 0 } },
    { id: 12, setChargeMode: { mode: ChargeMode.STORAGE } },
    { id: 13, clearElection: {} },
    { id: 14, transferBegin: { kind: 2, totalBytes: 10 } },
  ];
  for (const cmd of denied) {
    const r = b.send(cmd);
    assert.equal(r.status, Status.DENIED, JSON.stringify(cmd));
    assert.match(r.message ?? "", /needs a technician's authority/);
    assert.equal(r.id, cmd.id);
  }
  assert.equal(b.send({ id: 15, transferChunk: { offset: 0, data: new Uint8Array(4) } }).status, Status.BAD_ARGUMENT, "no chunk without a begun transfer");
  assert.equal(b.send({ id: 16, transferEnd: {} }).status, Status.BAD_ARGUMENT);
  assert.deepEqual(b.changes, [], "nothing changed");
  assert.deepEqual(b.audits, [], "nothing journalled");
});

test("with authority each changing command runs once and its audit record names the technician", () => {
  const b = bench();
  assert.equal(b.send(b.signed({ id: 0x80000001, setTime: { unixMs: RIG_NOW + 5000 } })).status, Status.OK);
  assert.equal(b.send(b.signed({ id: 0x80000002, setChargeMode: { mode: ChargeMode.STORAGE } })).status, Status.OK);
  assert.equal(b.send(b.signed({ id: 0x80000003, reboot: { delayMs: 0 } })).status, Status.OK);
  assert.deepEqual(b.changes, [`time ${RIG_NOW + 5000}`, `charge ${ChargeMode.STORAGE}`, "reboot 100"]);
  assert.deepEqual(
    b.audits.map((a) => [a.event, a.actor]),
    [
      ["clock.set", "tech-noor"],
      ["charge.mode", "tech-noor"],
      ["device.reboot", "tech-noor"],
    ],
  );
  assert.equal(b.send({ id: 4, info: {} }).info?.technicianId, "tech-noor");
});

test("a replayed authority is denied; the same command id is answered from the cache without running again", () => {
  const b = bench();
  const cmd = b.signed({ id: 0x80000100, reboot: { delayMs: 0 } });
  assert.equal(b.send(cmd).status, Status.OK);
  assert.equal(b.send(cmd).status, Status.OK, "a retry of the same id gets the same answer");
  assert.deepEqual(b.changes, ["reboot 100"], "and is not run twice");
  // After a reboot the answer cache is gone: the authority itself must not be accepted again.
  b.restart();
  const replay = b.send(cmd);
  assert.equal(replay.status, Status.DENIED);
  assert.match(replay.message ?? "", /replay/);
  assert.deepEqual(b.changes, ["reboot 100"]);
  // The same authority moved onto another command id fails its signature.
  assert.equal(b.send({ ...cmd, id: 0x80000101 }).status, Status.DENIED);
});

test("clear election: only when every record is acknowledged, and only with authority", () => {
  const b = bench();
  b.backlog = 3;
  const busy = b.send(b.signed({ id: 0x80000200, clearElection: {} }));
  assert.equal(busy.status, Status.BUSY);
  assert.match(busy.message ?? "", /3 record\(s\) not yet acknowledged/);
  b.backlog = 0;
  assert.equal(b.send(b.signed({ id: 0x80000201, clearElection: {} })).status, Status.OK);
  assert.deepEqual(b.changes, ["cleared"]);
  assert.deepEqual(b.audits.map((a) => [a.event, a.actor, a.detail]), [["election.clear", "tech-noor", "cleared"]]);
  const none = bench({ clear: false, charger: false });
  assert.equal(none.send(none.signed({ id: 0x80000202, clearElection: {} })).status, Status.UNSUPPORTED);
  assert.equal(none.send(none.signed({ id: 0x80000203, setChargeMode: { mode: 2 } })).status, Status.UNSUPPORTED);
  assert.equal(b.send(b.signed({ id: 0x80000204, setChargeMode: { mode: 9 } })).status, Status.BAD_ARGUMENT);
});

test("without an authority in the context (development build) commands run as before, as the host", () => {
  const b = bench({ withAuthority: false });
  assert.equal(b.send({ id: 1, setTime: { unixMs: RIG_NOW } }).status, Status.OK);
  assert.equal(b.send({ id: 2, setTime: { unixMs: 5 } }).status, Status.BAD_ARGUMENT);
  assert.deepEqual(b.audits.map((a) => a.actor), ["host"]);
});
