// The DFU downloader against the simulated DFU 1.1 device: a full flash, poll timeouts honoured
// in real time, device errors, stalls, a pulled cable, a cancel, recovery from dfuERROR, and
// both kinds of manifestation.

import { test } from "node:test";
import assert from "node:assert/strict";
import { downloadFirmware, type DfuResult } from "./dfu.ts";
import { runDfu, DfuError } from "./dfu_cli.ts";
import { DfuRequest, DfuState, DfuStatus, findDfuInterfaces, parseStatusReply, encodeStatusReply } from "./dfu_protocol.ts";
import { SimDfuDevice } from "../../simulator/usb/dfu_device.ts";
import type { UsbControlSetup } from "./dfu_usb_device.ts";

const KB = 1024;

function image(size: number, seed = 7): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function failure(r: DfuResult): Extract<DfuResult, { ok: false }>["error"] {
  assert.equal(r.ok, false, "expected the download to fail");
  if (r.ok) throw new Error("unreachable");
  return r.error;
}

function success(r: DfuResult): Extract<DfuResult, { ok: true }>["value"] {
  if (!r.ok) assert.fail(`download failed: ${r.error.message}`);
  return r.value;
}

test("flashes a 100 KB image: bytes equal, progress to 100 %, one DNLOAD per transfer, poll timeouts honoured", async () => {
  const size = 100 * KB + 123; // a short last block
  const transferSize = 2048;
  // Longer waits where a block starts a new 4 KiB page (the device erases it first).
  const sim = new SimDfuDevice({ transferSize, pollTimeoutMs: (b) => (b % 2 === 0 ? 6 : 2), manifestTimeoutMs: 15, manifestationTolerant: true });
  const img = image(size);
  const progress: [number, number][] = [];
  const t0 = performance.now();
  const r = success(await downloadFirmware(sim, { image: img, onProgress: (d, t) => progress.push([d, t]) }));
  const elapsed = performance.now() - t0;

  assert.deepEqual(sim.readFlash(size), img);
  assert.deepEqual(sim.firmware, img);
  assert.equal(r.transferSize, transferSize, "wTransferSize read from the functional descriptor");
  assert.equal(r.blocks, Math.ceil(size / transferSize));
  assert.equal(sim.session.blocks, Math.ceil(size / transferSize));
  assert.equal(sim.counters.zeroLengthDnload, 1);
  assert.equal(r.manifest, "idle");
  assert.equal(sim.currentState(), DfuState.dfuIDLE);

  assert.deepEqual(progress[0], [0, size]);
  assert.deepEqual(progress.at(-1), [size, size]);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] >= progress[i - 1][0], "progress never goes back");

  assert.ok(sim.session.announcedPollMs > 0);
  assert.ok(elapsed >= sim.session.announcedPollMs, `elapsed ${elapsed.toFixed(1)} ms < announced ${sim.session.announcedPollMs} ms`);
  assert.equal(r.pollWaitMs, sim.session.announcedPollMs);
  assert.equal(sim.counters.earlyRequests, 0, "no request reached the device while it was busy");
  assert.equal(sim.counters.stalls, 0);
  assert.equal(sim.opened, false, "closed again");
});

test("errWRITE at block 12: a clear error naming block and status; the next attempt clears dfuERROR and succeeds", async () => {
  const sim = new SimDfuDevice({ transferSize: 1024, pollTimeoutMs: 1 });
  sim.injectFault({ kind: "status", block: 12, status: "errWRITE" });
  const img = image(40 * KB);
  const e = failure(await downloadFirmware(sim, { image: img }));
  assert.equal(e.kind, "device-status");
  assert.equal(e.block, 12);
  assert.equal(e.status, "errWRITE");
  assert.match(e.message, /errWRITE/);
  assert.match(e.message, /block 12\b/);
  assert.match(e.message, /run `pollkit dfu` again to retry from the start/);
  assert.equal(sim.currentState(), DfuState.dfuERROR);
  assert.equal(sim.currentStatus(), DfuStatus.errWRITE);

  const clearsBefore = sim.counters.clrStatus;
  const r = success(await downloadFirmware(sim, { image: img }));
  assert.equal(sim.counters.clrStatus, clearsBefore + 1, "CLRSTATUS sent once");
  assert.equal(r.blocks, 40);
  assert.deepEqual(sim.readFlash(img.length), img);
});

test("runDfu throws a DfuError with the same message", async () => {
  const sim = new SimDfuDevice({ transferSize: 512, pollTimeoutMs: 0 });
  sim.injectFault({ kind: "status", block: 3, status: "errPROG" });
  await assert.rejects(
    runDfu({ device: sim, image: image(4 * KB) }),
    (err: unknown) => err instanceof DfuError && /errPROG/.test(err.message) && /block 3\b/.test(err.message) && err.failure.block === 3,
  );
  const ok = await runDfu({ device: sim, image: image(4 * KB) });
  assert.equal(ok.blocks, 8);
});

test("the device leaves the bus mid-transfer: a clear error", async () => {
  const sim = new SimDfuDevice({ transferSize: 1024, pollTimeoutMs: 1 });
  sim.injectFault({ kind: "disconnect", block: 20 });
  const e = failure(await downloadFirmware(sim, { image: image(50 * KB) }));
  assert.equal(e.kind, "disconnected");
  assert.equal(e.block, 20);
  assert.match(e.message, /stopped answering in block 20 of 50/);
  assert.match(e.message, /unplugged/);
  assert.match(e.message, /retry from the start/);
  assert.equal(sim.isConnected, false);
});

test("a stalled block is reported with the device's status; works whether the stack resolves or rejects a stall", async () => {
  for (const stallAs of ["status", "reject"] as const) {
    const sim = new SimDfuDevice({ transferSize: 1024, pollTimeoutMs: 0, stallAs });
    sim.injectFault({ kind: "stall", block: 5 });
    const e = failure(await downloadFirmware(sim, { image: image(10 * KB) }));
    assert.equal(e.kind, "stalled", stallAs);
    assert.equal(e.block, 5);
    assert.equal(e.status, "errSTALLEDPKT");
    assert.match(e.message, /refused DFU_DNLOAD of block 5 .*errSTALLEDPKT/);
    const r = success(await downloadFirmware(sim, { image: image(10 * KB) }));
    assert.equal(r.blocks, 10);
  }
});

test("cancel through an AbortSignal: DFU_ABORT, the device ends in dfuIDLE", async () => {
  const sim = new SimDfuDevice({ transferSize: 1024, pollTimeoutMs: 3 });
  const controller = new AbortController();
  const r = await downloadFirmware(sim, {
    image: image(64 * KB),
    signal: controller.signal,
    onProgress: (done) => {
      if (done >= 10 * KB) controller.abort();
    },
  });
  const e = failure(r);
  assert.equal(e.kind, "aborted");
  assert.match(e.message, /cancelled after 10240 of 65536 bytes/);
  assert.match(e.message, /back in dfuIDLE/);
  assert.ok(sim.counters.abort >= 1, "DFU_ABORT sent");
  assert.equal(sim.currentState(), DfuState.dfuIDLE);
  assert.equal(sim.counters.earlyRequests, 0);
  assert.equal(sim.counters.zeroLengthDnload, 0, "never finished");
});

test("cancel while the device is busy waits out its poll timeout before DFU_ABORT", async () => {
  const sim = new SimDfuDevice({ transferSize: 1024, pollTimeoutMs: 40 });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 60);
  const e = failure(await downloadFirmware(sim, { image: image(20 * KB), signal: controller.signal }));
  assert.equal(e.kind, "aborted");
  assert.equal(sim.counters.earlyRequests, 0, "no request while busy");
  assert.equal(sim.counters.stalls, 0);
  assert.equal(sim.currentState(), DfuState.dfuIDLE);
});

test("a device that starts in dfuERROR (errPOR) is cleared first", async () => {
  const sim = new SimDfuDevice({ transferSize: 1024, pollTimeoutMs: 0, startError: "errPOR" });
  assert.equal(sim.currentState(), DfuState.dfuERROR);
  const r = success(await downloadFirmware(sim, { image: image(8 * KB) }));
  assert.equal(sim.counters.clrStatus, 1);
  assert.equal(r.blocks, 8);
});

test("a device left in dfuDNLOAD-IDLE by an earlier run is aborted back to dfuIDLE first", async () => {
  const sim = new SimDfuDevice({ transferSize: 1024, pollTimeoutMs: 0 });
  await sim.open();
  await sim.claimInterface(0);
  const setup = (request: number, value = 0): UsbControlSetup => ({ requestType: "class", recipient: "interface", request, value, index: 0 });
  await sim.controlTransferOut(setup(DfuRequest.DNLOAD, 0), image(1024));
  const st = await sim.controlTransferIn(setup(DfuRequest.GETSTATUS), 6);
  assert.equal(st.data && parseStatusReply(st.data)?.state, DfuState.dfuDNLOAD_IDLE);
  await sim.close();
  const r = success(await downloadFirmware(sim, { image: image(3 * KB) }));
  assert.equal(sim.counters.abort, 1);
  assert.equal(r.blocks, 3);
  assert.deepEqual(sim.readFlash(3 * KB), image(3 * KB));
});

test("a non-tolerant device that reboots after manifestation: success", async () => {
  const sim = new SimDfuDevice({ transferSize: 1024, pollTimeoutMs: 1, manifestTimeoutMs: 20, manifestationTolerant: false, rebootAfterManifest: true });
  const detached: string[] = [];
  sim.onBusEvent((e) => detached.push(e));
  const img = image(16 * KB);
  const r = success(await downloadFirmware(sim, { image: img }));
  assert.equal(r.manifest, "device-reset");
  assert.deepEqual(sim.firmware, img);
  assert.deepEqual(detached.slice(0, 1), ["detach"], "the device left the bus by itself");
});

test("a non-tolerant device waiting in dfuMANIFEST-WAIT-RESET gets a USB reset and boots the new image", async () => {
  const sim = new SimDfuDevice({ transferSize: 1024, pollTimeoutMs: 1, manifestTimeoutMs: 10, manifestationTolerant: false, appProductId: 0x0001 });
  const img = image(6 * KB);
  const r = success(await downloadFirmware(sim, { image: img }));
  assert.equal(r.manifest, "device-reset");
  assert.equal(sim.counters.resets, 1);
  assert.equal(sim.productId, 0x0001, "re-enumerated in application mode");
  assert.equal(sim.currentState(), DfuState.appIDLE);
});

test("a failing manifestation (errVERIFY) is reported as such", async () => {
  const sim = new SimDfuDevice({ transferSize: 1024, pollTimeoutMs: 0, manifestTimeoutMs: 5, manifestationTolerant: true });
  sim.injectFault({ kind: "manifest", status: "errVERIFY" });
  const e = failure(await downloadFirmware(sim, { image: image(4 * KB) }));
  assert.equal(e.kind, "device-status");
  assert.equal(e.status, "errVERIFY");
  assert.match(e.message, /errVERIFY .* during manifestation/);
});

test("an image larger than the device's flash ends in errADDRESS", async () => {
  const sim = new SimDfuDevice({ transferSize: 4096, pollTimeoutMs: 0 });
  const e = failure(await downloadFirmware(sim, { image: image(sim.flash.pageSize * sim.flash.pageCount + 1) }));
  assert.equal(e.status, "errADDRESS");
  assert.equal(e.block, 64);
});

test("without a functional descriptor the transfer size comes from the options, or a clear error", async () => {
  const sim = new SimDfuDevice({ transferSize: 1024, omitFunctionalDescriptor: true, pollTimeoutMs: 0 });
  const e = failure(await downloadFirmware(sim, { image: image(2 * KB) }));
  assert.equal(e.kind, "setup");
  assert.match(e.message, /no DFU functional descriptor/);
  const r = success(await downloadFirmware(sim, { image: image(2 * KB), transferSize: 256 }));
  assert.equal(r.blocks, 8);
});

test("a device running its application is refused with advice", async () => {
  const sim = new SimDfuDevice({ mode: "app", transferSize: 1024 });
  const e = failure(await downloadFirmware(sim, { image: image(KB) }));
  assert.equal(e.kind, "not-dfu-mode");
  assert.match(e.message, /not its DFU bootloader/);
});

test("the simulated device answers wrong-state requests as DFU 1.1 says", async () => {
  const sim = new SimDfuDevice({ transferSize: 64, pollTimeoutMs: 30 });
  await sim.open();
  await sim.claimInterface(0);
  const setup = (request: number, value = 0): UsbControlSetup => ({ requestType: "class", recipient: "interface", request, value, index: 0 });
  const status = async (): Promise<{ state: number; status: number; pollTimeoutMs: number } | "stall"> => {
    const r = await sim.controlTransferIn(setup(DfuRequest.GETSTATUS), 6);
    if (r.status !== "ok" || !r.data) return "stall";
    const p = parseStatusReply(r.data);
    assert.ok(p);
    return p;
  };

  // CLRSTATUS in dfuIDLE: stall, dfuERROR / errSTALLEDPKT; CLRSTATUS then clears it.
  assert.equal((await sim.controlTransferOut(setup(DfuRequest.CLRSTATUS), new Uint8Array(0))).status, "stall");
  assert.deepEqual(await status(), { status: DfuStatus.errSTALLEDPKT, pollTimeoutMs: 0, state: DfuState.dfuERROR, iString: 0 });
  assert.equal((await sim.controlTransferOut(setup(DfuRequest.CLRSTATUS), new Uint8Array(0))).status, "ok");

  // A zero-length DNLOAD in dfuIDLE: stall.
  assert.equal((await sim.controlTransferOut(setup(DfuRequest.DNLOAD), new Uint8Array(0))).status, "stall");
  await sim.controlTransferOut(setup(DfuRequest.CLRSTATUS), new Uint8Array(0));

  // A block larger than wTransferSize: stall.
  assert.equal((await sim.controlTransferOut(setup(DfuRequest.DNLOAD), new Uint8Array(65))).status, "stall");
  await sim.controlTransferOut(setup(DfuRequest.CLRSTATUS), new Uint8Array(0));

  // GETSTATUS while dfuDNBUSY (before bwPollTimeout): stall, dfuERROR / errSTALLEDPKT.
  await sim.controlTransferOut(setup(DfuRequest.DNLOAD), new Uint8Array(64));
  const busy = await status();
  assert.ok(busy !== "stall");
  assert.equal(busy.state, DfuState.dfuDNBUSY);
  assert.equal(busy.pollTimeoutMs, 30);
  assert.equal(await status(), "stall");
  assert.equal(sim.counters.earlyRequests, 1);
  const after = await status();
  assert.ok(after !== "stall");
  assert.equal(after.state, DfuState.dfuERROR);
  assert.equal(after.status, DfuStatus.errSTALLEDPKT);

  // In dfuERROR, anything but GETSTATUS, GETSTATE and CLRSTATUS stalls and the status stays.
  assert.equal((await sim.controlTransferOut(setup(DfuRequest.ABORT), new Uint8Array(0))).status, "stall");
  const still = await status();
  assert.ok(still !== "stall");
  assert.equal(still.state, DfuState.dfuERROR);

  // Class requests need the interface claimed (as WebUSB requires).
  await sim.releaseInterface(0);
  await assert.rejects(sim.controlTransferIn(setup(DfuRequest.GETSTATUS), 6), /must be claimed/);
  await sim.close();
});

test("protocol tables: GETSTATUS encoding round-trips, descriptors parse", () => {
  const bytes = encodeStatusReply({ status: DfuStatus.errVERIFY, pollTimeoutMs: 0x123456, state: DfuState.dfuERROR, iString: 3 });
  assert.deepEqual([...bytes], [7, 0x56, 0x34, 0x12, 10, 3]);
  assert.deepEqual(parseStatusReply(new DataView(bytes.buffer)), { status: 7, pollTimeoutMs: 0x123456, state: 10, iString: 3 });
  // A DFU-mode interface followed by its functional descriptor (wTransferSize 2048, tolerant).
  const config = Uint8Array.of(9, 2, 27, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 0, 0xfe, 1, 2, 0, 9, 0x21, 0x05, 0xe8, 0x03, 0x00, 0x08, 0x10, 0x01);
  assert.deepEqual(findDfuInterfaces(config), [
    {
      interfaceNumber: 0,
      alternateSetting: 0,
      protocol: 2,
      functional: { canDownload: true, canUpload: false, manifestationTolerant: true, willDetach: false, detachTimeoutMs: 1000, transferSize: 2048, dfuVersion: 0x0110 },
    },
  ]);
});
