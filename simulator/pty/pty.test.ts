// Real pseudo-terminals through socat: the device end through openSerialByteLink, the host end
// through a plain SerialPortStream + ReadlineParser, the way the host agent opens a device.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SerialPortStream } from "@serialport/stream";
import { autoDetect } from "@serialport/bindings-cpp";
import { ReadlineParser } from "@serialport/parser-readline";
import { createPtyPair, type PtyPair } from "./pty_pair.ts";
import { openSerialByteLink, type SerialByteLink } from "./serial_link.ts";
import { waitFor } from "../../test/helpers/wait.ts";

const Binding = autoDetect();

interface Host {
  port: SerialPortStream;
  lines: string[];
  /** Every byte received, in order. */
  received(): Buffer;
  receivedLength(): number;
  errors: Error[];
  closedWith: { err: (Error & { disconnected?: boolean }) | undefined } | null;
  close(): Promise<void>;
}

/** Every host port a test opened: closed by withPair whatever happened (a port left open on a
 *  vanished pty keeps its poller busy and would hold the test file open). */
const openHosts = new Set<Host>();

function openHost(path: string): Promise<Host> {
  return new Promise((resolve, reject) => {
    const port = new SerialPortStream({ binding: Binding, path, baudRate: 115200, autoOpen: false });
    const parser = port.pipe(new ReadlineParser({ delimiter: "\n" }));
    const chunks: Buffer[] = [];
    let length = 0;
    const host: Host = {
      port,
      lines: [],
      received: () => Buffer.concat(chunks),
      receivedLength: () => length,
      errors: [],
      closedWith: null,
      close: () =>
        new Promise<void>((done) => {
          if (!port.isOpen) return done();
          port.close(() => done());
        }),
    };
    parser.on("data", (line: string) => host.lines.push(line));
    port.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
    });
    port.on("error", (err) => {
      if (host.errors.length < 100) host.errors.push(err);
    });
    port.on("close", (err?: Error & { disconnected?: boolean }) => (host.closedWith = { err }));
    port.open((err) => {
      if (err) return reject(err);
      openHosts.add(host);
      resolve(host);
    });
  });
}

/** A device end that records what it receives and its connection changes. */
async function openDevice(path: string, bytesPerSecond?: number) {
  const link = await openSerialByteLink(path, bytesPerSecond === undefined ? {} : { bytesPerSecond });
  const chunks: Uint8Array[] = [];
  let length = 0;
  const connection: boolean[] = [];
  link.onData((d) => {
    chunks.push(d.slice());
    length += d.length;
  });
  link.onConnection((c) => connection.push(c));
  await new Promise((r) => setImmediate(r)); // the microtask with onConnection(true)
  return {
    link,
    connection,
    received: () => Buffer.concat(chunks),
    receivedLength: () => length,
  };
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function allBytes(): Buffer {
  const b = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) b[i] = i;
  return b;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

async function withPair(
  fn: (pair: PtyPair, dir: string) => Promise<void>,
  options: { link?: boolean } = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-pty-"));
  const pair = await createPtyPair(options.link ? { link: join(dir, "ttyPOLLKIT0") } : {});
  try {
    await fn(pair, dir);
  } finally {
    for (const h of openHosts) {
      if (h.port.isOpen) await Promise.race([h.close(), new Promise((r) => setTimeout(r, 1000))]);
      h.port.destroy();
    }
    openHosts.clear();
    await pair.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("lines both ways, and all 256 byte values pass unchanged in both directions", { timeout: 20000 }, async () => {
  await withPair(async (pair) => {
    assert.match(pair.devicePath, /^\/dev\/pts\/\d+$/);
    assert.match(pair.hostPath, /^\/dev\/pts\/\d+$/);
    assert.notEqual(pair.devicePath, pair.hostPath);
    const host = await openHost(pair.hostPath);
    const dev = await openDevice(pair.devicePath);
    try {
      assert.deepEqual(dev.connection, [true]);
      dev.link.write(Buffer.from("hello host\nsecond line\n"));
      host.port.write("hello device\n");
      await waitFor("host lines", () => host.lines.length >= 2);
      await waitFor("device line", () => dev.receivedLength() >= 13);
      assert.deepEqual(host.lines, ["hello host", "second line"]);
      assert.equal(dev.received().toString("latin1"), "hello device\n");

      // Binary: 0x0D/0x0A (no CR/LF mapping), 0x11/0x13 (no XON/XOFF), 0x03/0x1A/0x1C (no signals),
      // 0x04 (no EOF), 0x7F/0x15/0x17 (no line editing), 0xFF (no parity marking), nothing echoed.
      const block = Buffer.concat([allBytes(), allBytes().reverse(), Buffer.from([0x0d, 0x0a, 0x0d, 0x11, 0x13, 0xff, 0x00])]);
      const hostBefore = host.receivedLength();
      const devBefore = dev.receivedLength();
      dev.link.write(block);
      host.port.write(block);
      await waitFor("device→host binary", () => host.receivedLength() >= hostBefore + block.length);
      await waitFor("host→device binary", () => dev.receivedLength() >= devBefore + block.length);
      await new Promise((r) => setTimeout(r, 100)); // anything extra (echo, expansion) would show now
      assert.deepEqual(host.received().subarray(hostBefore), block);
      assert.deepEqual(dev.received().subarray(devBefore), block);
      assert.deepEqual(host.errors, []);
    } finally {
      await dev.link.close();
      await host.close();
    }
    assert.deepEqual(dev.connection, [true, false]);
  });
});

test("200 KB each way arrives complete and in order; round-trip latency", { timeout: 30000 }, async (t) => {
  await withPair(async (pair) => {
    const host = await openHost(pair.hostPath);
    const dev = await openDevice(pair.devicePath);
    try {
      const size = 200 * 1024;
      const down = pattern(size, 1);
      let start = performance.now();
      for (let i = 0; i < size; i += 1000) dev.link.write(down.subarray(i, i + 1000)); // frame-sized writes
      await waitFor("200 KB device→host", () => host.receivedLength() >= size, 20000);
      const downMs = performance.now() - start;
      assert.equal(host.receivedLength(), size);
      assert.ok(host.received().equals(down), "device→host bytes differ");

      const up = pattern(size, 2);
      start = performance.now();
      host.port.write(up);
      await waitFor("200 KB host→device", () => dev.receivedLength() >= size, 20000);
      const upMs = performance.now() - start;
      assert.equal(dev.receivedLength(), size);
      assert.ok(dev.received().equals(up), "host→device bytes differ");

      // Round trip: host writes a line, the device echoes it back. First end the binary's last
      // partial line, which the readline parser still holds.
      const linesNow = host.lines.length;
      dev.link.write(Buffer.from("\n"));
      await waitFor("end of binary line", () => host.lines.length > linesNow);
      dev.link.onData((d) => dev.link.write(d));
      const rtts: number[] = [];
      for (let i = 0; i < 50; i++) {
        const n = host.lines.length;
        const t0 = performance.now();
        host.port.write(`ping ${i}\n`);
        await new Promise<void>((resolve) => {
          const check = () => (host.lines.length > n ? resolve() : setImmediate(check));
          check();
        });
        rtts.push(performance.now() - t0);
        assert.equal(host.lines[n], `ping ${i}`);
      }
      rtts.sort((a, b) => a - b);
      const kbps = (bytes: number, ms: number) => ((bytes / 1024) * 1000) / ms;
      t.diagnostic(
        `device→host ${kbps(size, downMs).toFixed(0)} KiB/s (${downMs.toFixed(1)} ms), ` +
          `host→device ${kbps(size, upMs).toFixed(0)} KiB/s (${upMs.toFixed(1)} ms), ` +
          `echo RTT median ${rtts[25]!.toFixed(2)} ms, max ${rtts[49]!.toFixed(2)} ms`,
      );
      assert.deepEqual(host.errors, []);
    } finally {
      await dev.link.close();
      await host.close();
    }
  });
});

test("bytesPerSecond paces a 23 KB transfer like a 115200-baud UART", { timeout: 20000 }, async (t) => {
  await withPair(async (pair) => {
    const host = await openHost(pair.hostPath);
    const dev = await openDevice(pair.devicePath, 11520);
    try {
      const size = 23 * 1024;
      const data = pattern(size, 3);
      const start = performance.now();
      for (let i = 0; i < size; i += 512) dev.link.write(data.subarray(i, i + 512));
      assert.ok(dev.link.pendingBytes > 0);
      await waitFor("23 KB", () => host.receivedLength() >= size, 10000);
      const ms = performance.now() - start;
      const ideal = (size / 11520) * 1000; // 2044 ms
      t.diagnostic(`23 KiB at 11520 B/s: ${ms.toFixed(0)} ms (ideal ${ideal.toFixed(0)} ms)`);
      assert.ok(host.received().equals(data), "bytes differ");
      assert.ok(ms >= 1900, `too fast: ${ms.toFixed(0)} ms`);
      assert.ok(ms <= ideal * 1.6, `too slow: ${ms.toFixed(0)} ms`);
      assert.equal(dev.link.pendingBytes, 0);
      await dev.link.drain();

      // A small frame after idle arrives after its wire time (20 B ≈ 1.7 ms), not before.
      const before = host.receivedLength();
      const t0 = performance.now();
      dev.link.write(pattern(20, 4));
      await waitFor("20 bytes", () => host.receivedLength() >= before + 20);
      assert.ok(performance.now() - t0 >= 1.7);
    } finally {
      await dev.link.close();
      await host.close();
    }
  });
});

test("the host can close and reopen its end without unplugging", { timeout: 20000 }, async () => {
  await withPair(async (pair) => {
    const dev = await openDevice(pair.devicePath);
    let host = await openHost(pair.hostPath);
    try {
      dev.link.write(Buffer.from("one\n"));
      await waitFor("first line", () => host.lines.length === 1);
      await host.close();
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(pair.plugged, "socat survived the host closing its end");
      host = await openHost(pair.hostPath);
      dev.link.write(Buffer.from("two\n"));
      host.port.write("back\n");
      await waitFor("second line", () => host.lines.includes("two"));
      await waitFor("device gets data", () => dev.received().toString().includes("back\n"));
      assert.deepEqual(dev.connection, [true]);
    } finally {
      await dev.link.close();
      await host.close();
    }
  });
});

test("unplug hangs up the host's port; replug brings the device back at the same link path", { timeout: 60000 }, async () => {
  await withPair(
    async (pair) => {
      const linkPath = pair.hostPath;
      assert.ok(linkPath.endsWith("ttyPOLLKIT0"));
      assert.ok(existsSync(linkPath));
      const dev = await openDevice(pair.devicePath);
      const host = await openHost(linkPath);
      dev.link.write(Buffer.from("before\n"));
      await waitFor("line before unplug", () => host.lines.includes("before"));
      const oldPid = pair.pid;

      await pair.unplug();
      assert.equal(pair.plugged, false);
      assert.equal(pair.pid, -1);
      assert.equal(pidAlive(oldPid), false);
      // The bindings notice a vanished pty on their next poll: slow on a loaded machine.
      await waitFor("host port closed", () => host.closedWith !== null, 20000);
      assert.equal(host.port.isOpen, false);
      assert.equal(host.closedWith!.err?.disconnected, true, "close carries a disconnected error");
      await waitFor("device sees the cable go", () => dev.connection.length === 2, 20000);
      assert.deepEqual(dev.connection, [true, false]);
      assert.equal(existsSync(linkPath), false, "the link path vanished, as /dev/serial/by-id would");
      await assert.rejects(openHost(linkPath), /No such file or directory|ENOENT/);
      dev.link.write(Buffer.from("into the void\n"));
      assert.ok(dev.link.droppedBytes > 0);

      await pair.replug();
      assert.equal(pair.plugged, true);
      assert.notEqual(pair.pid, oldPid);
      assert.equal(pair.hostPath, linkPath);
      await dev.link.reopen(pair.devicePath);
      await waitFor("device sees the cable back", () => dev.connection.length === 3);
      assert.deepEqual(dev.connection, [true, false, true]);
      const host2 = await openHost(linkPath);
      try {
        dev.link.write(Buffer.from("after\n"));
        host2.port.write("hello again\n");
        await waitFor("line after replug", () => host2.lines.includes("after"));
        await waitFor("device gets data after replug", () => dev.received().toString().includes("hello again\n"));
        assert.deepEqual(host2.errors, []);
      } finally {
        await dev.link.close();
        await host2.close();
      }
    },
    { link: true },
  );
});

test("close() kills socat, reaps it and removes the link; unplug needs a link", { timeout: 20000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-pty-"));
  try {
    const link = join(dir, "ttyPOLLKIT1");
    const log: string[] = [];
    const pair = await createPtyPair({ link, log: (l) => log.push(l) });
    const pid = pair.pid;
    assert.ok(pid > 0 && pidAlive(pid));
    assert.ok(existsSync(link));
    assert.ok(log.some((l) => l.includes("PTY is")));
    await pair.close();
    await pair.close(); // idempotent
    assert.equal(pidAlive(pid), false, "socat is gone (not even a zombie)");
    assert.equal(existsSync(link), false);
    assert.equal(pair.pid, -1);
    await assert.rejects(pair.replug(), /closed/);

    const plain = await createPtyPair();
    try {
      await assert.rejects(plain.unplug(), /needs createPtyPair\(\{ link \}\)/);
    } finally {
      await plain.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a missing socat is reported with the Debian package to install", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-nopath-"));
  const saved = process.env.PATH;
  process.env.PATH = dir;
  try {
    await assert.rejects(createPtyPair(), /Debian package 'socat'/);
  } finally {
    process.env.PATH = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

test("opening a missing port rejects; writes while closed are dropped, not thrown", async () => {
  await assert.rejects(openSerialByteLink("/dev/pts/does-not-exist"), /cannot open serial port/);
  await withPair(async (pair) => {
    const link: SerialByteLink = await openSerialByteLink(pair.devicePath);
    await link.close();
    await link.close();
    link.write(new Uint8Array([1, 2, 3]));
    assert.equal(link.droppedBytes, 3);
    assert.equal(link.connected, false);
  });
});
