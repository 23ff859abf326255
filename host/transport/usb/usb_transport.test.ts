// USB hotplug over the simulator's `usb` stand-in: application-mode attach hints a serial rescan,
// bootloaders are listed until they detach, a re-enumeration into DFU mode is followed, and the
// real `usb` package reports its state on this machine without throwing.

import { test } from "node:test";
import assert from "node:assert/strict";
import { UsbTransport, classifyUsbDevice, usbIdFilters, type UsbDeviceInfo } from "./usb_transport.ts";
import { SimUsb } from "../../../simulator/usb/sim_usb.ts";
import { SimDfuDevice } from "../../../simulator/usb/dfu_device.ts";
import { DfuRequest } from "../../dfu/dfu_protocol.ts";
import { downloadFirmware } from "../../dfu/dfu.ts";

const VID = 0x1209;
const APP_PID = 0x7001;
const DFU_PID = 0x7002;

function appDevice(serial: string): SimDfuDevice {
  return new SimDfuDevice({ mode: "app", vendorId: VID, appProductId: APP_PID, dfuProductId: DFU_PID, serialNumber: serial, transferSize: 512, pollTimeoutMs: 0 });
}

test("attach in application mode hints a serial rescan; DFU devices are listed until they detach", async () => {
  const bus = new SimUsb();
  const already = new SimDfuDevice({ vendorId: VID, dfuProductId: DFU_PID, serialNumber: "EARLY" });
  bus.plug(already);
  const usb = new UsbTransport({ usb: bus, appIds: [{ vendorId: VID, productId: APP_PID }] });
  const hints: UsbDeviceInfo[] = [];
  usb.onSerialHint((d) => hints.push(d));
  let changes = 0;
  usb.onDfuChange(() => changes++);
  assert.deepEqual(usb.state(), { available: false, reason: "not started" });

  assert.deepEqual(await usb.start(), { available: true });
  assert.deepEqual(
    usb.dfuDevices().map((d) => d.label),
    ["1209:7002 EARLY"],
    "a bootloader present at start is listed",
  );
  assert.equal(hints.length, 0);

  const app = appDevice("VVD-0042");
  bus.plug(app);
  assert.deepEqual(hints, [{ vendorId: VID, productId: APP_PID, serialNumber: "VVD-0042" }]);
  assert.equal(usb.dfuDevices().length, 1, "an application-mode device is not a DFU device");

  const stranger = new SimDfuDevice({ mode: "app", vendorId: 0x0483, appProductId: 0x5740 });
  bus.plug(stranger);
  assert.equal(hints.length, 1, "devices of other vendors are ignored");

  const boot = new SimDfuDevice({ vendorId: 0x0483, dfuProductId: 0xdf11, serialNumber: "STM" });
  bus.plug(boot);
  const entry = usb.dfuDevices().find((d) => d.serialNumber === "STM");
  assert.ok(entry, "listed by its DFU-mode interface (0xFE/0x01/0x02), whatever its ids");
  assert.equal(entry.recognisedBy, "interface");
  assert.equal(entry.device, boot);

  bus.unplug(boot);
  assert.equal(usb.dfuDevices().some((d) => d.serialNumber === "STM"), false, "removed on detach");
  bus.unplug(already);
  assert.equal(usb.dfuDevices().length, 0);
  assert.ok(changes >= 4);

  await usb.close();
  assert.equal(bus.listenerCount(), 0, "close() removes its listeners");
  assert.deepEqual(usb.state(), { available: false, reason: "closed" });
});

test("DFU_DETACH and a USB reset: the device re-enumerates into its bootloader, is listed, flashed, and boots", async () => {
  const bus = new SimUsb();
  const usb = new UsbTransport({ usb: bus, appIds: [{ vendorId: VID, productId: APP_PID }] });
  await usb.start();
  const hints: UsbDeviceInfo[] = [];
  usb.onSerialHint((d) => hints.push(d));
  const dev = appDevice("RAD-0007");
  bus.plug(dev);
  assert.equal(hints.length, 1);

  // The host asks the application to detach (DFU run-time interface 2), then resets the bus.
  await dev.open();
  await dev.claimInterface(2);
  const r = await dev.controlTransferOut({ requestType: "class", recipient: "interface", request: DfuRequest.DETACH, value: 1000, index: 2 }, new Uint8Array(0));
  assert.equal(r.status, "ok");
  await dev.reset();
  assert.equal(dev.productId, DFU_PID);
  const [entry] = usb.dfuDevices();
  assert.ok(entry);
  assert.equal(entry.label, "1209:7002 RAD-0007");

  const img = new Uint8Array(3000).map((_, i) => (i * 31) & 0xff);
  const done = await downloadFirmware(entry.device, { image: img });
  assert.ok(done.ok, done.ok ? "" : done.error.message);
  assert.equal(done.value.manifest, "device-reset");
  // It booted the new image: gone from the DFU list, back as an application (a second hint).
  assert.equal(usb.dfuDevices().length, 0);
  assert.equal(hints.length, 2);
  assert.deepEqual(dev.firmware, img);
  await usb.close();
});

test("configured bootloader ids list a device without a DFU-mode interface descriptor match", () => {
  const dev = new SimDfuDevice({ mode: "app", vendorId: VID, appProductId: 0x7003 });
  assert.equal(classifyUsbDevice(dev, { appIds: [{ vendorId: VID, productId: APP_PID }] }), null);
  assert.equal(classifyUsbDevice(dev, { dfuIds: [{ vendorId: VID, productId: 0x7003 }] }), "dfu");
  assert.equal(classifyUsbDevice(dev, {}), "app", "no configured ids: any CDC serial device hints");
  assert.deepEqual(usbIdFilters(["1209", "0x0483"], ["7001"]), [
    { vendorId: 0x1209, productId: 0x7001 },
    { vendorId: 0x0483, productId: 0x7001 },
  ]);
  assert.deepEqual(usbIdFilters(["1209"]), [{ vendorId: 0x1209 }]);
  assert.throws(() => usbIdFilters(["xyz"]), /not a USB id/);
});

test("no USB access is a state: a failing listing, a failing import", async () => {
  const noBus = new UsbTransport({ usb: new SimUsb({ failure: "getDevices error: /sys/bus/usb/devices/ not found (errno 2)" }) });
  assert.deepEqual(await noBus.start(), { available: false, reason: "no USB access: getDevices error: /sys/bus/usb/devices/ not found (errno 2)" });
  const noPackage = new UsbTransport({ loadUsb: () => Promise.reject(new Error("Cannot find native binding")) });
  const s = await noPackage.start();
  assert.equal(s.available, false);
  assert.equal(s.reason, "no USB access: cannot load the usb package: Cannot find native binding");
});

test("the real usb package on this machine: start() reports a state and never throws", async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  try {
    const usb = new UsbTransport({ appIds: usbIdFilters(["1209"]) });
    const state = await usb.start();
    // Here (no /sys/bus/usb): unavailable with the package's own reason; on a machine with a bus: available.
    if (!state.available) assert.match(state.reason ?? "", /^no USB access: /);
    assert.deepEqual(usb.state(), state);
    await usb.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(unhandled, [], "usb left no rejection unhandled");
    t.diagnostic(`real usb: ${JSON.stringify(state)}`);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});
