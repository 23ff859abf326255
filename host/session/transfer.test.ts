// Chunked transfer to a simulated device on a real pseudo-terminal: the device receives every
// byte once and in order, a transfer resumes after the cable is pulled, bad chunks are refused.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { runDevice } from "../../simulator/cli/device_runner.ts";
import { SerialTransport } from "../transport/serial/serial_transport.ts";
import { DeviceSession, type SessionStore } from "./device_session.ts";
import { sendTransfer } from "./transfer.ts";
import { CountingSink } from "../../device/services/transfer.ts";
import { crc32 } from "../../device/services/journal.ts";

const store: SessionStore = { put: (items) => items.length, highestSeq: () => 0 };

async function connected(serial: string) {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-xfer-"));
  // A bare rig without data flash: no signed-artifact sinks, so any bytes can be sent (the transfer
  // protocol is under test here, not the authority).
  const dev = await runDevice({ serial, role: "verification", link: join(dir, "d.tty"), device: { dataFlashPages: 0 } });
  const transport = new SerialTransport({ paths: [dev.hostPath], scanIntervalMs: 100 });
  const sessions: DeviceSession[] = [];
  const ready = (): Promise<DeviceSession> =>
    new Promise((resolve) => {
      transport.onLink((link) => {
        const s = new DeviceSession({ link, agentId: "t", site: "s", store, timeSync: false });
        sessions.push(s);
        s.on("hello", () => resolve(s));
      });
    });
  const first = ready();
  transport.start();
  return { dev, transport, session: await first, sessions };
}

test("a 60 KB transfer arrives whole, in order, once", { timeout: 60000 }, async () => {
  const { dev, transport, session } = await connected("VVD-XFER-1");
  try {
    const data = new Uint8Array(randomBytes(60 * 1024));
    let progress = 0;
    const out = await sendTransfer(session, { kind: 2, data, name: "station.bin", chunkSize: 1024, window: 4, onProgress: (d) => (progress = d) });
    assert.equal(out.bytes, data.length);
    assert.equal(progress, data.length);
    const sink = dev.device.firmware?.transfer._fallback as CountingSink;
    assert.equal(sink.bytes, data.length);
    assert.equal(sink.digest(), crc32(data, 0, data.length), "the device saw exactly these bytes");
    // A chunk out of order is refused with the offset to resume from.
    const r = (await session.command({ transferBegin: { kind: 2, totalBytes: 100 } })) as { status?: number };
    assert.equal(r.status ?? 0, 0);
    const bad = (await session.command({ transferChunk: { offset: 50, data: new Uint8Array(10) } })) as { status?: number; transfer?: { receivedBytes?: number } };
    assert.equal(bad.status, 4, "BAD_ARGUMENT");
    assert.equal(bad.transfer?.receivedBytes ?? 0, 0);
    const past = (await session.command({ transferChunk: { offset: 0, data: new Uint8Array(200) } })) as { status?: number };
    assert.equal(past.status, 4, "a chunk past the announced size is refused");
  } finally {
    await transport.close();
    await dev.stop();
  }
});

test("a transfer cut by an unplugged cable resumes where the device is", { timeout: 60000 }, async () => {
  const { dev, transport, session, sessions } = await connected("VVD-XFER-2");
  try {
    const data = new Uint8Array(randomBytes(40 * 1024));
    let pulled: Promise<void> | null = null;
    const err = await sendTransfer(session, {
      kind: 2,
      data,
      chunkSize: 1024,
      window: 2,
      timeoutMs: 2000,
      onProgress: (done) => {
        if (done >= 8192 && pulled === null) pulled = dev.unplug();
      },
    }).catch((e: Error) => e);
    await pulled;
    assert.ok(err instanceof Error, "the first attempt fails when the cable goes");
    const sink = dev.device.firmware?.transfer._fallback as CountingSink;
    const before = sink.bytes;
    assert.ok(before > 0 && before < data.length, `part of it arrived (${before})`);
    await dev.replug();
    const deadline = Date.now() + 10000;
    while (sessions.length < 2 || sessions[1].info().state !== "ready") {
      if (Date.now() > deadline) throw new Error("no new session after replug");
      await new Promise((r) => setTimeout(r, 50));
    }
    const again = await sendTransfer(sessions[1], { kind: 2, data, chunkSize: 1024, window: 2 });
    assert.ok(again.chunks < Math.ceil(data.length / 1024), `resumed: ${again.chunks} chunks the second time`);
    assert.equal(sink.bytes, data.length);
    assert.equal(sink.digest(), crc32(data, 0, data.length));
  } finally {
    await transport.close();
    await dev.stop();
  }
});
