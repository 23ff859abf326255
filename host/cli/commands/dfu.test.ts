// `pollkit dfu` against the simulator's USB bus and DFU bootloader: progress to the end and the
// image in the device, device choice, and each failure mapped to its exit code.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { SimUsb } from "../../../simulator/usb/sim_usb.ts";
import { SimDfuDevice } from "../../../simulator/usb/dfu_device.ts";
import type { CliContext } from "../context.ts";
import { ControlClient } from "../client.ts";
import { CliError, EXIT, setLang } from "../messages.ts";
import { dfuCommand } from "./dfu.ts";

function fakeContext(json = false): CliContext & { out: string[]; notes: string[] } {
  const out: string[] = [];
  const notes: string[] = [];
  return {
    agentUrl: "http://127.0.0.1:1",
    json,
    tty: false,
    now: () => 0,
    client: () => new ControlClient("http://127.0.0.1:1"),
    print: (s) => void out.push(s),
    printJson: (v) => void out.push(JSON.stringify(v)),
    note: (s) => void notes.push(s),
    out,
    notes,
  };
}

function imageFile(bytes: number): { path: string; image: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-dfu-"));
  const image = randomBytes(bytes);
  const path = join(dir, "fw.bin");
  writeFileSync(path, image);
  return { path, image };
}

async function exitOf(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
    return { code: EXIT.ok, message: "" };
  } catch (e) {
    assert.ok(e instanceof CliError, `a CliError, not ${String(e)}`);
    return { code: e.exitCode, message: e.message };
  }
}

test("writes the image into the one device in DFU mode", async () => {
  setLang("en");
  const bus = new SimUsb();
  const dev = new SimDfuDevice({ serialNumber: "VVD-DFU-1", transferSize: 1024, pollTimeoutMs: 0, manifestationTolerant: true });
  bus.plug(dev);
  const { path, image } = imageFile(10 * 1024 + 17);
  const ctx = fakeContext();
  assert.equal(await dfuCommand(ctx, { image: path }, { usb: bus }), EXIT.ok);
  assert.match(ctx.out.join("\n"), /Firmware written: 11 blocks/);
  assert.deepEqual(Buffer.from(dev.firmware ?? []), image);
});

test("--json prints the report; --device picks one of several", async () => {
  const bus = new SimUsb();
  const a = new SimDfuDevice({ serialNumber: "A1", pollTimeoutMs: 0, manifestationTolerant: true });
  // B announces no transfer size: --transfer-size is what the download uses.
  const b = new SimDfuDevice({ serialNumber: "B2", pollTimeoutMs: 0, manifestationTolerant: true, omitFunctionalDescriptor: true });
  bus.plug(a);
  bus.plug(b);
  const { path, image } = imageFile(3000);
  const several = await exitOf(dfuCommand(fakeContext(), { image: path }, { usb: bus }));
  assert.equal(several.code, EXIT.usage);
  assert.match(several.message, /2 devices are in DFU mode/);
  const ctx = fakeContext(true);
  assert.equal(await dfuCommand(ctx, { image: path, device: "B2", transferSize: 512 }, { usb: bus }), EXIT.ok);
  const report = JSON.parse(ctx.out[0]) as { blocks: number; device: string };
  assert.equal(report.blocks, 6);
  assert.match(report.device, /B2$/);
  assert.deepEqual(Buffer.from(b.firmware ?? []), image);
  assert.equal(a.firmware, null);
  assert.equal((await exitOf(dfuCommand(fakeContext(), { image: path, device: "C3" }, { usb: bus }))).code, EXIT.unknownDevice);
});

test("no USB access, no device, no image, a device that leaves mid-way, a cancel", async () => {
  const { path } = imageFile(4096);
  const noBus = await exitOf(dfuCommand(fakeContext(), { image: path }, { usb: new SimUsb({ failure: "getDevices error: /sys/bus/usb/devices/ not found" }) }));
  assert.equal(noBus.code, EXIT.notAvailable);
  assert.match(noBus.message, /not available: no USB access/);
  assert.equal((await exitOf(dfuCommand(fakeContext(), { image: path }, { usb: new SimUsb() }))).code, EXIT.unknownDevice);
  assert.equal((await exitOf(dfuCommand(fakeContext(), { image: "/nonexistent/fw.bin" }, { usb: new SimUsb() }))).code, EXIT.error);

  const bus = new SimUsb();
  const dev = new SimDfuDevice({ pollTimeoutMs: 0, transferSize: 1024 });
  dev.injectFault({ kind: "disconnect", block: 2 });
  bus.plug(dev);
  const gone = await exitOf(dfuCommand(fakeContext(), { image: path }, { usb: bus }));
  assert.equal(gone.code, EXIT.noAnswer, gone.message);

  const bus2 = new SimUsb();
  bus2.plug(new SimDfuDevice({ pollTimeoutMs: 0, transferSize: 1024 }));
  const cancel = new AbortController();
  cancel.abort();
  const cancelled = await exitOf(dfuCommand(fakeContext(), { image: path }, { usb: bus2, signal: cancel.signal }));
  assert.equal(cancelled.code, EXIT.error);
  assert.match(cancelled.message, /cancelled/);
});
