// The part of the `usb` package the USB transport uses, as the smallest interfaces it needs: the
// WebUSB-style `usb` object of usb 3.x (getDevices(), "connect"/"disconnect" events) and, per
// device, its ids, its active configuration's interface classes and the DFU device methods.
// usb 3.x's `usb` object satisfies UsbHotplugBus (checked by the compiler in real_usb.ts); the
// simulator's SimUsb implements it for tests.

import type { DfuUsbDevice } from "../../dfu/dfu_usb_device.ts";

export interface UsbAlternateInfo {
  readonly alternateSetting: number;
  readonly interfaceClass: number;
  readonly interfaceSubclass: number;
  readonly interfaceProtocol: number;
}

export interface UsbInterfaceInfo {
  readonly interfaceNumber: number;
  readonly alternates: readonly UsbAlternateInfo[];
}

export interface UsbConfigurationInfo {
  readonly interfaces: readonly UsbInterfaceInfo[];
}

export interface UsbBusDevice extends DfuUsbDevice {
  readonly vendorId: number;
  readonly productId: number;
  /** May need the device opened on some platforms; read it defensively. */
  readonly serialNumber: string | null;
  /** The active configuration; null while the device is unconfigured. */
  readonly configuration: UsbConfigurationInfo | null;
}

export interface UsbConnectionEventLike {
  readonly device: UsbBusDevice;
}

export type UsbHotplugEvent = "connect" | "disconnect";

export interface UsbHotplugBus {
  getDevices(): Promise<UsbBusDevice[]>;
  addEventListener(type: UsbHotplugEvent, listener: (event: UsbConnectionEventLike) => void): void;
  removeEventListener(type: UsbHotplugEvent, listener: (event: UsbConnectionEventLike) => void): void;
}
