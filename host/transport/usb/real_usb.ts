/// <reference types="w3c-web-usb" />
// Loads the real `usb` package (3.x, node-usb-rs) on demand. Its typings lean on the global WebUSB
// types of @types/w3c-web-usb, which the project's tsconfig does not load by itself; the reference
// above brings them in so that the assignment below is checked: usb 3.x's `usb` object (a WebUSB
// instance with every device allowed) must satisfy UsbHotplugBus, and its devices DfuUsbDevice.
//
// Measured on a machine without a USB bus: the import itself succeeds; getDevices() rejects with
// "getDevices error: /sys/bus/usb/devices/ not found (errno 2)"; and adding a "connect" listener
// starts an internal getDevices() whose rejection usb 3.x leaves unhandled (Node 20 exits on it).
// So the transport lists devices first and subscribes only when listing works.

import type { UsbHotplugBus } from "./usb_bus.ts";

export async function loadRealUsb(): Promise<UsbHotplugBus> {
  const mod = await import("usb");
  const bus: UsbHotplugBus = mod.usb;
  return bus;
}
