// USB hotplug for the host agent, through the `usb` package (3.x: the WebUSB-style `usb` object):
// a pollkit device attaching in application mode is a hint to rescan serial ports at once (its
// CDC port is about to appear); a device in its DFU bootloader is kept in dfuDevices() for
// `pollkit dfu` until it detaches. The real package is imported only in start(), and a machine
// without USB access (no /sys/bus/usb, no permission) becomes a state, not a crash.

import { loadRealUsb } from "./real_usb.ts";
import type { UsbBusDevice, UsbConfigurationInfo, UsbConnectionEventLike, UsbHotplugBus } from "./usb_bus.ts";
import { DFU_PROTOCOL_DFU_MODE, DFU_SUBCLASS, USB_CLASS_APPLICATION_SPECIFIC } from "../../dfu/dfu_protocol.ts";

/** USB class of a CDC communications interface: the application's serial port. */
const USB_CLASS_CDC = 0x02;

/** A vendor id, and a product id unless any product of the vendor matches. */
export interface UsbIdFilter {
  vendorId: number;
  productId?: number;
}

export interface UsbTransportOptions {
  /** pollkit devices in application mode; empty or absent: any device with a CDC serial interface. */
  appIds?: readonly UsbIdFilter[];
  /** Bootloader ids; a device with a DFU-mode interface (0xFE/0x01/0x02) is recognised without them. */
  dfuIds?: readonly UsbIdFilter[];
  /** A `usb`-like object to use instead of the real package (tests: the simulator's SimUsb). */
  usb?: UsbHotplugBus;
  /** How to load the real package; default: a lazy `import("usb")`. */
  loadUsb?: () => Promise<UsbHotplugBus>;
}

/** Same shape as the other transports' state: available, or why not (for people). */
export interface UsbState {
  available: boolean;
  reason?: string;
}

export interface UsbDeviceInfo {
  vendorId: number;
  productId: number;
  serialNumber: string | null;
}

export interface DfuDeviceEntry extends UsbDeviceInfo {
  /** The device, for the DFU downloader (it satisfies DfuUsbDevice). */
  readonly device: UsbBusDevice;
  /** Recognised by its DFU-mode interface or by a configured bootloader id. */
  readonly recognisedBy: "interface" | "ids";
  /** "1209:0002 SIMDFU0001" */
  readonly label: string;
}

export type UsbDeviceKind = "dfu" | "app" | null;

type Phase = "idle" | "loading" | "listening" | "unavailable" | "closed";

export class UsbTransport {
  private phase: Phase = "idle";
  private reason = "not started";
  private bus: UsbHotplugBus | null = null;
  private readonly dfu = new Map<UsbBusDevice, DfuDeviceEntry>();
  private readonly hintCbs = new Set<(device: UsbDeviceInfo) => void>();
  private readonly dfuCbs = new Set<(devices: DfuDeviceEntry[]) => void>();

  constructor(private readonly options: UsbTransportOptions = {}) {}

  state(): UsbState {
    return this.phase === "listening" ? { available: true } : { available: false, reason: this.reason };
  }

  /** A pollkit device attached in application mode: rescan serial ports. Returns an unsubscribe. */
  onSerialHint(cb: (device: UsbDeviceInfo) => void): () => void {
    this.hintCbs.add(cb);
    return () => this.hintCbs.delete(cb);
  }

  /** The list of devices in DFU mode changed. Returns an unsubscribe. */
  onDfuChange(cb: (devices: DfuDeviceEntry[]) => void): () => void {
    this.dfuCbs.add(cb);
    return () => this.dfuCbs.delete(cb);
  }

  /** Devices attached in their DFU bootloader, in attach order. */
  dfuDevices(): DfuDeviceEntry[] {
    return [...this.dfu.values()];
  }

  /** Loads `usb` if needed, lists the devices, then follows attach/detach. Resolves either way (see state()). */
  async start(): Promise<UsbState> {
    if (this.phase !== "idle") return this.state();
    this.phase = "loading";
    this.reason = "loading the usb package";
    let bus = this.options.usb;
    if (bus === undefined) {
      try {
        bus = await (this.options.loadUsb ?? loadRealUsb)();
      } catch (e) {
        return this.unavailable(`cannot load the usb package: ${errorText(e)}`);
      }
    }
    if (this.isClosed()) return this.state();
    // List before subscribing: usb 3.x starts an unguarded listing of its own when the first
    // listener is added, and on a machine without USB access that rejection would be unhandled.
    let devices: UsbBusDevice[];
    try {
      devices = await bus.getDevices();
    } catch (e) {
      return this.unavailable(errorText(e));
    }
    if (this.isClosed()) return this.state();
    this.bus = bus;
    bus.addEventListener("connect", this.onConnect);
    bus.addEventListener("disconnect", this.onDisconnect);
    this.phase = "listening";
    this.reason = "";
    // Devices already present: the serial scan that runs at start-up finds their ports, so only
    // bootloaders are recorded here.
    let changed = false;
    for (const d of devices) changed = this.addIfDfu(d) || changed;
    if (changed) this.dfuChanged();
    return this.state();
  }

  async close(): Promise<void> {
    if (this.phase === "closed") return;
    this.phase = "closed";
    this.reason = "closed";
    if (this.bus !== null) {
      this.bus.removeEventListener("connect", this.onConnect);
      this.bus.removeEventListener("disconnect", this.onDisconnect);
      this.bus = null;
    }
    this.dfu.clear();
  }

  private readonly onConnect = (event: UsbConnectionEventLike): void => {
    const device = event.device;
    switch (classifyUsbDevice(device, this.options)) {
      case "dfu":
        if (this.addIfDfu(device)) this.dfuChanged();
        return;
      case "app": {
        const info = deviceInfo(device);
        for (const cb of [...this.hintCbs]) cb(info);
        return;
      }
      case null:
        return;
    }
  };

  private readonly onDisconnect = (event: UsbConnectionEventLike): void => {
    if (this.dfu.delete(event.device)) this.dfuChanged();
  };

  private addIfDfu(device: UsbBusDevice): boolean {
    if (this.dfu.has(device) || classifyUsbDevice(device, this.options) !== "dfu") return false;
    const info = deviceInfo(device);
    const hex = (n: number): string => n.toString(16).padStart(4, "0");
    this.dfu.set(device, {
      ...info,
      device,
      recognisedBy: hasDfuModeInterface(readConfiguration(device)) ? "interface" : "ids",
      label: `${hex(info.vendorId)}:${hex(info.productId)}${info.serialNumber ? ` ${info.serialNumber}` : ""}`,
    });
    return true;
  }

  private dfuChanged(): void {
    const list = this.dfuDevices();
    for (const cb of [...this.dfuCbs]) cb(list);
  }

  /** A method, not an inline test: close() may run while start() awaits. */
  private isClosed(): boolean {
    return this.phase === "closed";
  }

  private unavailable(reason: string): UsbState {
    if (!this.isClosed()) {
      this.phase = "unavailable";
      this.reason = `no USB access: ${reason}`;
    }
    return this.state();
  }
}

/** "dfu" for a bootloader, "app" for a pollkit device running its application, null otherwise. */
export function classifyUsbDevice(device: UsbBusDevice, options: Pick<UsbTransportOptions, "appIds" | "dfuIds">): UsbDeviceKind {
  const config = readConfiguration(device);
  if (hasDfuModeInterface(config) || matchesAny(device, options.dfuIds)) return "dfu";
  const appIds = options.appIds ?? [];
  if (appIds.length > 0) return matchesAny(device, appIds) ? "app" : null;
  const cdc = config?.interfaces.some((i) => i.alternates.some((a) => a.interfaceClass === USB_CLASS_CDC)) ?? false;
  return cdc ? "app" : null;
}

/** Filters from the agent's configuration style: hex vendor ids, each with every hex product id (or any). */
export function usbIdFilters(vendorIds: readonly string[], productIds: readonly string[] = []): UsbIdFilter[] {
  const hex = (s: string): number => {
    const n = Number.parseInt(s.replace(/^0x/i, ""), 16);
    if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`not a USB id: "${s}"`);
    return n;
  };
  const out: UsbIdFilter[] = [];
  for (const v of vendorIds) {
    if (productIds.length === 0) out.push({ vendorId: hex(v) });
    else for (const p of productIds) out.push({ vendorId: hex(v), productId: hex(p) });
  }
  return out;
}

function hasDfuModeInterface(config: UsbConfigurationInfo | null): boolean {
  return (
    config?.interfaces.some((i) =>
      i.alternates.some(
        (a) => a.interfaceClass === USB_CLASS_APPLICATION_SPECIFIC && a.interfaceSubclass === DFU_SUBCLASS && a.interfaceProtocol === DFU_PROTOCOL_DFU_MODE,
      ),
    ) ?? false
  );
}

function matchesAny(device: UsbBusDevice, filters: readonly UsbIdFilter[] | undefined): boolean {
  return (filters ?? []).some((f) => f.vendorId === device.vendorId && (f.productId === undefined || f.productId === device.productId));
}

/** The active configuration; a native getter can throw for an unconfigured or vanished device. */
function readConfiguration(device: UsbBusDevice): UsbConfigurationInfo | null {
  try {
    return device.configuration;
  } catch {
    return null;
  }
}

function deviceInfo(device: UsbBusDevice): UsbDeviceInfo {
  let serialNumber: string | null;
  try {
    serialNumber = device.serialNumber;
  } catch {
    serialNumber = null; // some platforms need the device opened to read its string descriptors
  }
  return { vendorId: device.vendorId, productId: device.productId, serialNumber };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
