// A simulated device on a real pseudo-terminal, opened by the real serialport bindings: hello,
// health and journal records, resend after the cable is pulled and put back, and every kind of
// bad input the issue names, sent over the tty.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SerialPortStream } from "@serialport/stream";
import { autoDetect } from "@serialport/bindings-cpp";
import { ReadlineParser } from "@serialport/parser-readline";
import { runDevice, type RunningDevice } from "../../simulator/cli/device_runner.ts";
import { encodeFrame, crc16Xmodem, FrameDecoder } from "../../protocol/framing.ts";
import { Envelope } from "../../protocol/node/schema.ts";
import { ErrorCode, RecordKind } from "../../protocol/generated/device_codec.ts";

type Env = Record<string, Record<string, unknown> | undefined>;

/** The host end of the tty: frames in (protobufjs), raw bytes out. */
class TtyHost {
  readonly got: Env[] = [];
  readonly log: string[] = [];
  private waiters: { pred: (e: Env) => boolean; resolve: (e: Env) => void }[] = [];
  private constructor(readonly port: SerialPortStream) {}

  static open(path: string): Promise<TtyHost> {
    return new Promise((resolve, reject) => {
      const port = new SerialPortStream({ binding: autoDetect(), path, baudRate: 115200 });
      const host = new TtyHost(port);
      const dec = new FrameDecoder({
        onFrame: (p) => host.frame(Envelope.toObject(Envelope.decode(p), { longs: Number, bytes: Array }) as Env),
        onConsole: (t) => host.log.push(t),
        onError: (c, m) => host.log.push(`BAD FRAME FROM DEVICE ${c} ${m}`),
      });
      port.pipe(new ReadlineParser({ delimiter: "\n", encoding: "latin1" })).on("data", (l: string) => dec.pushLine(l));
      port.on("error", () => {});
      port.once("open", () => resolve(host));
      port.once("error", reject);
    });
  }

  private frame(e: Env): void {
    this.got.push(e);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(e)) return true;
      w.resolve(e);
      return false;
    });
  }

  wait(pred: (e: Env) => boolean, what: string, ms = 5000): Promise<Env> {
    const seen = this.got.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.got.map((g) => Object.keys(g)[0]))}`)), ms);
      this.waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
    });
  }

  raw(bytes: Uint8Array | string): void {
    this.port.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : Buffer.from(bytes));
  }

  send(env: Record<string, unknown>): void {
    this.raw(encodeFrame(Envelope.encode(Envelope.fromObject(env)).finish()));
  }

  records(): { seq: number; kind: number }[] {
    return this.got.filter((e) => e.record).map((e) => e.record as { seq: number; kind: number });
  }

  close(): Promise<void> {
    return new Promise((r) => (this.port.isOpen ? this.port.close(() => r()) : r()));
  }
}

const isErr = (code: number) => (e: Env) => (e.error as { code?: number } | undefined)?.code === code;

async function started(): Promise<{ dev: RunningDevice; host: TtyHost }> {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-pty-"));
  const dev = await runDevice({ serial: "VVD-PTY-01", role: "verification", link: join(dir, "dev.tty"), healthIntervalMs: 1000 });
  const host = await TtyHost.open(dev.hostPath);
  return { dev, host };
}

test("over a real tty: hello, health, records, and resend after the cable comes back", { timeout: 30000 }, async () => {
  const { dev, host } = await started();
  try {
    host.send({ hello: { protocolVersion: 1, deviceId: "pty-host", role: 3 } });
    const hello = (await host.wait((e) => !!e.hello, "hello")).hello as { deviceId: string; publicKey: number[] };
    assert.equal(hello.deviceId, "VVD-PTY-01");
    assert.equal(hello.publicKey.length, 64);
    await host.wait((e) => (e.record as { seq?: number } | undefined)?.seq === 1, "boot record");
    await host.wait((e) => !!e.health, "health");
    host.send({ ack: { seq: 1 } });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(dev.device.firmware?.journal.ackedSeq(), 1);

    // Cable out: records made meanwhile come when it is back and the host says hello.
    await host.close();
    await dev.unplug();
    const fw = dev.device.firmware;
    assert.ok(fw);
    fw.record(RecordKind.TEST, new Uint8Array([1]));
    fw.record(RecordKind.TEST, new Uint8Array([2]));
    await dev.replug();
    const host2 = await TtyHost.open(dev.hostPath);
    try {
      host2.send({ hello: { protocolVersion: 1, role: 3 } });
      await host2.wait((e) => (e.record as { seq?: number } | undefined)?.seq === 3, "record 3 after replug");
      assert.deepEqual(host2.records().map((r) => r.seq), [2, 3], "exactly the unacknowledged records, in order");
    } finally {
      await host2.close();
    }
  } finally {
    await host.close();
    await dev.stop();
  }
});

test("over a real tty: bad input gets defined answers and loses nothing", { timeout: 30000 }, async () => {
  const { dev, host } = await started();
  try {
    host.send({ hello: { protocolVersion: 1, role: 3 } });
    await host.wait((e) => (e.record as { seq?: number } | undefined)?.seq === 1, "boot record");

    // Garbage between frames: no answer needed, but the device must still work afterwards.
    host.raw("\x00\xff\xfe line noise \x13\x11 here\n");
    // A bit flip inside a good frame: a CRC error.
    const ack = Buffer.from(encodeFrame(Envelope.encode(Envelope.fromObject({ ack: { seq: 1 } })).finish()));
    ack[6] = ack[6] === 65 ? 66 : 65; // another valid base64 letter: the bits change, the CRC catches it
    host.raw(ack);
    await host.wait(isErr(ErrorCode.BAD_CRC), "BAD_CRC", 3000);
    await new Promise((r) => setTimeout(r, 1100)); // errors are reported at most once a second
    // A truncated line (half a frame, then a new frame): the half is reported as cut short.
    const big = Buffer.from(encodeFrame(new Uint8Array(300)));
    host.raw(big.subarray(0, 60));
    host.raw("\n");
    host.send({ command: { id: 5, info: {} } });
    await host.wait((e) => (e.commandResult as { id?: number } | undefined)?.id === 5, "info after truncated frame");
    await new Promise((r) => setTimeout(r, 1100));
    // An oversized line.
    host.raw("!" + "A".repeat(400) + "\n");
    await host.wait(isErr(ErrorCode.MALFORMED_FRAME), "MALFORMED_FRAME for an overlong line", 3000);
    await new Promise((r) => setTimeout(r, 1100));
    // A frame too large for the device's limit.
    const body = new Uint8Array(4 + 3000);
    body[0] = 3000 >> 8;
    body[1] = 3000 & 255;
    const crc = crc16Xmodem(body, 0, body.length - 2);
    body[body.length - 2] = crc >> 8;
    body[body.length - 1] = crc & 255;
    host.raw("!" + Buffer.from(body.subarray(0, 93)).toString("base64") + "\n");
    await host.wait(isErr(ErrorCode.FRAME_TOO_LARGE), "FRAME_TOO_LARGE", 3000);
    await new Promise((r) => setTimeout(r, 1100));
    // An unknown message (an envelope field the device does not know: number 15).
    host.raw(encodeFrame(new Uint8Array([0x7a, 0x01, 0x00])));
    await host.wait(isErr(ErrorCode.UNKNOWN_MESSAGE), "UNKNOWN_MESSAGE", 3000);
    await new Promise((r) => setTimeout(r, 1100));
    // An acknowledgement for a sequence never sent.
    host.send({ ack: { seq: 1000 } });
    await host.wait(isErr(ErrorCode.BAD_ACK), "BAD_ACK", 3000);
    assert.equal(dev.device.firmware?.journal.ackedSeq(), 0, "nothing acknowledged by the bad acks");

    // Records acknowledged out of order: 3 then 2 then 1; the journal ends at 3, nothing lost.
    const fw = dev.device.firmware;
    assert.ok(fw);
    fw.record(RecordKind.TEST, new Uint8Array([2]));
    fw.record(RecordKind.TEST, new Uint8Array([3]));
    await host.wait((e) => (e.record as { seq?: number } | undefined)?.seq === 3, "record 3");
    host.send({ ack: { seq: 3 } });
    host.send({ ack: { seq: 2 } });
    host.send({ ack: { seq: 1 } });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fw.journal.ackedSeq(), 3);
    assert.ok(!host.log.some((l) => l.startsWith("BAD FRAME FROM DEVICE")), "every frame the device sent was well formed");
    const h = fw.health();
    assert.ok((h.errorCount ?? 0) >= 5, "errors counted in health");
  } finally {
    await host.close();
    await dev.stop();
  }
});
