// The engine test: one scenario (boot, hello, health, records, acknowledgements, a reboot, resend
// of what was unacknowledged, a malformed frame answered with an error) run by the same firmware
// bundle on XS (xsnap) and on Node, with every byte the device sends compared.

import { test } from "node:test";
import assert from "node:assert/strict";
import { buildTarget, TARGETS } from "../../device/build/build.ts";
import { BridgeHardware, bridgeMsg, nodeEngine, xsEngine, type BridgeEngine } from "./bridge_host.ts";
import { encodeFrame, FrameDecoder } from "../../protocol/framing.ts";
import { Envelope } from "../../protocol/node/schema.ts";
import { ErrorCode, RebootReason, RecordKind } from "../../protocol/generated/device_codec.ts";

type Env = Record<string, Record<string, unknown> | undefined>;

function frame(env: Record<string, unknown>): Uint8Array {
  return encodeFrame(Envelope.encode(Envelope.fromObject(env)).finish());
}

function decodeAll(bytes: Buffer): Env[] {
  const out: Env[] = [];
  const d = new FrameDecoder({
    onFrame: (p) => out.push(Envelope.toObject(Envelope.decode(p), { longs: Number, bytes: Array }) as Env),
    onConsole: () => {},
    onError: (c, m) => {
      throw new Error(`device sent a bad frame: ${c} ${m}`);
    },
  });
  d.pushBytes(bytes);
  return out;
}

const BOOT = { reset: RebootReason.POWER_ON, wallMs: 1795000000000, pages: 8, pageSize: 1024, role: 1, serial: "VVD-XS-0001" };

/** The scenario, step by step; returns a transcript (device output after each step). */
async function scenario(engine: BridgeEngine, hw: BridgeHardware): Promise<string[]> {
  const transcript: string[] = [];
  let mark = 0;
  const step = async (name: string, msgs: Uint8Array[], advanceMs: number): Promise<void> => {
    for (const m of msgs) await engine.send(m);
    for (let t = 0; t < advanceMs; t += 10) await engine.send(bridgeMsg.advance(10));
    const out = hw.linkOut.slice(mark);
    mark = hw.linkOut.length;
    transcript.push(`${name}: ${Buffer.concat(out).toString("latin1")}`);
  };
  await step("boot", [bridgeMsg.boot(BOOT)], 600);
  await step("host hello", [bridgeMsg.deliver(frame({ hello: { protocolVersion: 1, role: 3 } }))], 20);
  await step("ack boot record", [bridgeMsg.deliver(frame({ ack: { seq: 1 } }))], 20);
  await step("health", [bridgeMsg.health()], 10);
  await step(
    "three records, one signed",
    [bridgeMsg.record(RecordKind.TEST, new Uint8Array([1, 2, 3])), bridgeMsg.record(RecordKind.AUDIT, new Uint8Array([10, 3, 120, 121, 122])), bridgeMsg.record(RecordKind.TEST, new Uint8Array([4]))],
    600,
  );
  await step("ack up to 2 only", [bridgeMsg.deliver(frame({ ack: { seq: 2 } }))], 20);
  await step("resend timeout", [], 3100);
  await step("malformed frame", [bridgeMsg.deliver(encodeFrame(new Uint8Array([0x08])))], 20);
  await step("reboot command", [bridgeMsg.deliver(frame({ command: { id: 9, reboot: { delayMs: 100 } } }))], 1500);
  assert.deepEqual(hw.rebootRequests, [RebootReason.SOFTWARE], `${engine.name} asked for a software reboot`);
  await step("boot again", [bridgeMsg.boot({ ...BOOT, reset: RebootReason.SOFTWARE })], 600);
  await step("host hello after reboot", [bridgeMsg.deliver(frame({ hello: { protocolVersion: 1, role: 3 } }))], 20);
  return transcript;
}

test("the firmware scenario gives identical frames on XS and on Node", { timeout: 120000 }, async () => {
  const target = TARGETS.find((t) => t.name === "xs");
  assert.ok(target);
  const bundle = await buildTarget(target);
  assert.deepEqual(bundle.violations, [], "the bridge bundle passes the bundle check");

  const hwNode = new BridgeHardware({ seed: 42 });
  const node = nodeEngine(bundle.code, hwNode);
  const nodeTranscript = await scenario(node, hwNode);

  const hwXs = new BridgeHardware({ seed: 42 });
  const xs = await xsEngine(bundle.code, hwXs);
  try {
    const xsTranscript = await scenario(xs, hwXs);
    for (let i = 0; i < nodeTranscript.length; i++) assert.equal(xsTranscript[i], nodeTranscript[i], `step ${i}`);
  } finally {
    await xs.close();
  }
  assert.ok(hwXs.linkBytes().equals(hwNode.linkBytes()), "every byte out is the same");

  // And the output is what the protocol says.
  const envs = decodeAll(hwXs.linkBytes());
  const hellos = envs.filter((e) => e.hello).map((e) => e.hello as { deviceId: string; publicKey: number[]; bootId: number });
  assert.ok(hellos.length >= 3);
  assert.equal(hellos[0].deviceId, "VVD-XS-0001");
  assert.equal(hellos[0].publicKey.length, 64);
  const records = envs.filter((e) => e.record).map((e) => e.record as { seq: number; kind: number; signature?: number[] });
  const seqs = records.map((r) => r.seq);
  // boot record; then 2..4; resend of 3 and 4 after the timeout; after the reboot the host's
  // hello brings 3, 4, the reboot audit (5) and the second boot record (6).
  assert.deepEqual(seqs.slice(0, 4), [1, 2, 3, 4]);
  assert.deepEqual(seqs.slice(4, 6), [3, 4], "resend of what was not acknowledged");
  assert.deepEqual(seqs.slice(-4), [3, 4, 5, 6], "after the reboot: unacknowledged records again, then new ones");
  assert.equal(records.find((r) => r.seq === 3)?.signature?.length, 64, "the audit record is signed");
  const errors = envs.filter((e) => e.error).map((e) => (e.error as { code: number }).code);
  assert.deepEqual(errors, [ErrorCode.DECODE_FAILED]);
  assert.ok(envs.some((e) => e.health), "health reported");
  assert.notEqual(hellos[0].bootId, hellos[hellos.length - 1].bootId, "a new boot id after the reboot");
});
