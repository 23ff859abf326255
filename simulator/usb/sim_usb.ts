// A stand-in for the part of the `usb` package (3.x) the USB transport uses: the WebUSB-style
// `usb` object with getDevices() and "connect"/"disconnect" events. Devices are simulated ones
// (SimDfuDevice); plugging, unplugging and a device's own re-enumeration raise the events.

import type { UsbBusDevice, UsbConnectionEventLike, UsbHotplugBus, UsbHotplugEvent } from "../../host/transport/usb/usb_bus.ts";
import type { SimDfuDevice } from "./dfu_device.ts";

type Listener = (event: UsbConnectionEventLike) => void;

export class SimUsb implements UsbHotplugBus {
  private readonly present = new Set<SimDfuDevice>();
  private readonly watched = new Map<SimDfuDevice, () => void>();
  private readonly listeners: Record<UsbHotplugEvent, Set<Listener>> = { connect: new Set(), disconnect: new Set() };

  /** `failure`: getDevices() rejects with it, as usb 3.x does on a machine without a USB bus. */
  constructor(private readonly options: { failure?: string } = {}) {}

  async getDevices(): Promise<UsbBusDevice[]> {
    if (this.options.failure !== undefined) throw new Error(this.options.failure);
    return [...this.present];
  }

  addEventListener(type: UsbHotplugEvent, listener: Listener): void {
    this.listeners[type].add(listener);
  }

  removeEventListener(type: UsbHotplugEvent, listener: Listener): void {
    this.listeners[type].delete(listener);
  }

  /** Connects a device to the bus (plugging its cable in if it was out). */
  plug(device: SimDfuDevice): void {
    if (!this.watched.has(device)) {
      this.watched.set(
        device,
        device.onBusEvent((event) => (event === "attach" ? this.appeared(device) : this.left(device))),
      );
    }
    if (device.isConnected) this.appeared(device);
    else device.plug(); // raises "attach", which calls appeared()
  }

  /** Pulls the device's cable. */
  unplug(device: SimDfuDevice): void {
    device.unplug(); // raises "detach", which calls left()
  }

  listenerCount(): number {
    return this.listeners.connect.size + this.listeners.disconnect.size;
  }

  private appeared(device: SimDfuDevice): void {
    if (this.present.has(device)) return;
    this.present.add(device);
    this.dispatch("connect", device);
  }

  private left(device: SimDfuDevice): void {
    if (!this.present.delete(device)) return;
    this.dispatch("disconnect", device);
  }

  private dispatch(type: UsbHotplugEvent, device: SimDfuDevice): void {
    for (const listener of [...this.listeners[type]]) listener({ device });
  }
}
