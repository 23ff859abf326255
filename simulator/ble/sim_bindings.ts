// A noble bindings object (what `@abandonware/noble/with-bindings` takes) that stands in for the
// radio: simulated peripherals, each a Nordic UART Service whose far end is a ByteLink handed to
// the firmware (SimDevice's hostLink). The host runs the real noble above it, so the agent's noble
// code path is what the tests exercise. Node side only.
//
// Behaviour modelled on noble's own HCI bindings (lib/hci-socket/bindings.js):
// - every event is delivered later (setImmediate, FIFO), never inside the call that caused it;
// - ids are the lowercase address without colons, UUIDs lowercase without dashes;
// - 'connect' then 'onMtu' (the ATT MTU exchange noble starts on every connection);
// - notifications are 'read' events with isNotification = true;
// - a Write Command (write without response) longer than ATT_MTU - 3 is discarded by the
//   peripheral's ATT server; a command has no response that could carry the error, so noble's
//   write callback still fires, exactly as with the HCI stack. The simulator reports it instead
//   (errors, onError).
// The device learns of a host (onConnection(true)) when a central has connected and subscribed
// to TX, and of its loss (false) on disconnect, unsubscribe or radio loss.

import { EventEmitter } from "node:events";
import type { ByteLink } from "../../device/platform/platform.ts";

export const NUS_SERVICE = "6e400001b5a3f393e0a9e50e24dcca9e";
/** Host writes (write, write without response). */
export const NUS_RX = "6e400002b5a3f393e0a9e50e24dcca9e";
/** Device notifies. */
export const NUS_TX = "6e400003b5a3f393e0a9e50e24dcca9e";
const CCCD = "2902";

/** ATT_MTU before (or without) an exchange. */
export const DEFAULT_ATT_MTU = 23;

/** HCI disconnect reasons, as noble's HCI bindings pass them in 'disconnect'. */
export const HCI_CONNECTION_TIMEOUT = 0x08;
export const HCI_REMOTE_USER_TERMINATED = 0x13;
export const HCI_LOCAL_HOST_TERMINATED = 0x16;

/** States noble knows; "unsupported" models a machine with no usable adapter. */
export type AdapterState = "poweredOn" | "poweredOff" | "unsupported" | "unauthorized" | "resetting";

export interface SimBleError {
  peripheralId: string;
  op: string;
  message: string;
}

export interface SimBindingsOptions {
  /** Adapter state reported at init. Default "poweredOn". */
  state?: AdapterState;
  /** How often an unconnected peripheral advertises while the central scans. Default 50 ms. */
  advertisingIntervalMs?: number;
  onError?: (e: SimBleError) => void;
}

export interface AddPeripheralOptions<D> {
  /** noble's peripheral id: the address, lowercase, without colons. */
  id: string;
  address: string;
  localName: string;
  rssi?: number;
  /** Negotiated ATT MTU (payload per packet is MTU - 3). Default 23. */
  mtu?: number;
  /** Builds what sits behind the peripheral (e.g. a SimDevice) on its end of the link. */
  device: (hostLink: ByteLink) => D;
}

export interface SimPeripheralStats {
  /** Host writes that reached the device, their largest size, and the total bytes. */
  writes: number;
  maxWrite: number;
  writeBytes: number;
  /** Writes the peripheral discarded (longer than MTU - 3). */
  rejectedWrites: number;
  notifications: number;
  maxNotification: number;
  connections: number;
}

export interface SimPeripheral<D> {
  readonly id: string;
  readonly device: D;
  /** The device's end (also what `device` was given). */
  readonly link: ByteLink;
  readonly connected: boolean;
  /** Connected and subscribed to TX: the device sees a host. */
  readonly hostPresent: boolean;
  readonly mtu: number;
  readonly stats: SimPeripheralStats;
}

type Data = (d: Uint8Array) => void;
type Conn = (c: boolean) => void;

class Peripheral<D> implements SimPeripheral<D> {
  device!: D;
  readonly link: ByteLink;
  inRange = true;
  connected = false;
  subscribed = false;
  /** Bumped on every connect and disconnect: events of an older connection are dropped. */
  gen = 0;
  rssi: number;
  readonly mtu: number;
  readonly stats: SimPeripheralStats = {
    writes: 0,
    maxWrite: 0,
    writeBytes: 0,
    rejectedWrites: 0,
    notifications: 0,
    maxNotification: 0,
    connections: 0,
  };
  dataCb: Data | null = null;
  connCb: Conn | null = null;

  constructor(
    readonly o: AddPeripheralOptions<D>,
    notify: (p: Peripheral<D>, data: Uint8Array) => void,
  ) {
    this.rssi = o.rssi ?? -60;
    this.mtu = o.mtu ?? DEFAULT_ATT_MTU;
    this.link = {
      write: (d) => notify(this, d),
      onData: (cb) => {
        this.dataCb = cb;
      },
      onConnection: (cb) => {
        this.connCb = cb;
        if (this.hostPresent) cb(true);
      },
    };
  }

  get id(): string {
    return this.o.id;
  }

  get hostPresent(): boolean {
    return this.connected && this.subscribed;
  }

  get advertising(): boolean {
    return this.inRange && !this.connected;
  }
}

export class SimBleBindings extends EventEmitter {
  readonly errors: SimBleError[] = [];
  private state: AdapterState;
  private initialized = false;
  private readonly peripherals = new Map<string, Peripheral<unknown>>();
  private scanFilter: string[] | null = null;
  private scanTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: SimBindingsOptions = {}) {
    super();
    this.state = options.state ?? "poweredOn";
  }

  // ---- simulator side ------------------------------------------------------------------------

  addPeripheral<D>(o: AddPeripheralOptions<D>): SimPeripheral<D> {
    if (this.peripherals.has(o.id)) throw new Error(`peripheral ${o.id} already exists`);
    const p = new Peripheral<D>(o, (q, d) => this.deviceWrite(q, d));
    this.peripherals.set(o.id, p as Peripheral<unknown>);
    p.device = o.device(p.link);
    return p;
  }

  /** Radio loss: the link supervision timeout ends the connection; the device advertises again. */
  dropConnection(id: string): void {
    const p = this.get(id, "dropConnection");
    if (p?.connected) this.endConnection(p, HCI_CONNECTION_TIMEOUT);
  }

  /** Out of range: no advertising, and a connection is lost. Back in range: advertises again. */
  setInRange(id: string, inRange: boolean): void {
    const p = this.get(id, "setInRange");
    if (!p) return;
    p.inRange = inRange;
    if (!inRange && p.connected) this.endConnection(p, HCI_CONNECTION_TIMEOUT);
  }

  setRssi(id: string, rssi: number): void {
    const p = this.get(id, "setRssi");
    if (p) p.rssi = rssi;
  }

  /** The adapter changes state (powered off, unplugged...): connections and scanning end. */
  setAdapterState(state: AdapterState): void {
    if (state === this.state) return;
    this.state = state;
    if (state !== "poweredOn") {
      this.stopScan();
      for (const p of this.peripherals.values()) if (p.connected) this.endConnection(p, HCI_LOCAL_HOST_TERMINATED);
    }
    if (this.initialized) this.later(() => this.emit("stateChange", state));
  }

  // ---- what noble calls ----------------------------------------------------------------------

  init(): void {
    this.initialized = true;
    this.later(() => this.emit("stateChange", this.state));
  }

  /** (interval, window): nothing to tune in a simulated radio. */
  setScanParameters(): void {
    this.later(() => this.emit("scanParametersSet"));
  }

  startScanning(serviceUuids?: string[], allowDuplicates?: boolean): void {
    if (this.state !== "poweredOn") {
      this.fail("", "startScanning", `adapter is ${this.state}`);
      return;
    }
    // Compared as given, as noble's HCI bindings do: lowercase without dashes, like NUS_SERVICE.
    this.scanFilter = serviceUuids ?? [];
    if (this.scanTimer === null) {
      this.scanTimer = setInterval(() => this.advertise(), this.options.advertisingIntervalMs ?? 50);
      this.scanTimer.unref();
    }
    this.later(() => {
      this.emit("scanStart", !allowDuplicates);
      this.advertise();
    });
  }

  stopScanning(): void {
    this.stopScan();
    this.later(() => this.emit("scanStop"));
  }

  connect(id: string): void {
    const p = this.peripherals.get(id);
    if (!p || !p.advertising || this.state !== "poweredOn") {
      // HCI status 0x3e, as noble's HCI bindings report a connection that never came up.
      this.later(() => this.emit("connect", id, new Error("Connection Failed to be Established (0x3e)")));
      return;
    }
    p.connected = true;
    p.subscribed = false;
    p.gen++;
    p.stats.connections++;
    const gen = p.gen;
    this.later(() => {
      this.emit("connect", id, null);
      if (p.gen === gen) this.emit("onMtu", id, p.mtu);
    });
  }

  cancelConnect(): void {
    // Connections here complete at once: there is never one pending to cancel.
  }

  disconnect(id: string): void {
    const p = this.peripherals.get(id);
    if (p?.connected) this.endConnection(p, HCI_LOCAL_HOST_TERMINATED);
  }

  reset(): void {
    this.stopScan();
    for (const p of this.peripherals.values()) if (p.connected) this.endConnection(p, HCI_LOCAL_HOST_TERMINATED);
  }

  updateRssi(id: string): void {
    const p = this.connectedPeripheral(id, "updateRssi");
    if (p) this.later(() => this.emit("rssiUpdate", id, p.rssi));
  }

  discoverServices(id: string, uuids?: string[]): void {
    const p = this.connectedPeripheral(id, "discoverServices");
    if (!p) return;
    const all = [NUS_SERVICE];
    const want = uuids ?? [];
    this.at(p, () => this.emit("servicesDiscover", id, want.length ? all.filter((u) => want.includes(u)) : all));
  }

  discoverIncludedServices(id: string, serviceUuid: string): void {
    const p = this.connectedPeripheral(id, "discoverIncludedServices");
    if (p) this.at(p, () => this.emit("includedServicesDiscover", id, serviceUuid, []));
  }

  discoverCharacteristics(id: string, serviceUuid: string, uuids?: string[]): void {
    const p = this.connectedPeripheral(id, "discoverCharacteristics");
    if (!p) return;
    const all =
      serviceUuid === NUS_SERVICE
        ? [
            { uuid: NUS_RX, properties: ["writeWithoutResponse", "write"] },
            { uuid: NUS_TX, properties: ["notify"] },
          ]
        : [];
    const want = uuids ?? [];
    const found = want.length ? all.filter((c) => want.includes(c.uuid)) : all;
    this.at(p, () => this.emit("characteristicsDiscover", id, serviceUuid, found));
  }

  discoverDescriptors(id: string, serviceUuid: string, characteristicUuid: string): void {
    const p = this.connectedPeripheral(id, "discoverDescriptors");
    const descriptors = characteristicUuid === NUS_TX ? [CCCD] : [];
    if (p) this.at(p, () => this.emit("descriptorsDiscover", id, serviceUuid, characteristicUuid, descriptors));
  }

  write(id: string, serviceUuid: string, characteristicUuid: string, data: Uint8Array, withoutResponse: boolean): void {
    const p = this.connectedPeripheral(id, "write");
    if (!p) return;
    if (serviceUuid !== NUS_SERVICE || characteristicUuid !== NUS_RX) {
      this.fail(id, "write", `${characteristicUuid} is not writable (ATT: Write Not Permitted)`);
      return;
    }
    const copy = new Uint8Array(data);
    const max = p.mtu - 3;
    this.at(p, () => {
      // A write with response longer than MTU - 3 is a long write (prepare + execute) in noble:
      // the value arrives whole. A write command that long is discarded by the peripheral.
      if (withoutResponse && copy.length > max) {
        p.stats.rejectedWrites++;
        this.fail(id, "write", `write without response of ${copy.length} bytes exceeds ATT_MTU - 3 = ${max}: discarded`);
      } else {
        p.stats.writes++;
        p.stats.writeBytes += copy.length;
        if (copy.length > p.stats.maxWrite) p.stats.maxWrite = copy.length;
        p.dataCb?.(copy);
      }
      this.emit("write", id, serviceUuid, characteristicUuid);
    });
  }

  notify(id: string, serviceUuid: string, characteristicUuid: string, enable: boolean): void {
    const p = this.connectedPeripheral(id, "notify");
    if (!p) return;
    if (characteristicUuid !== NUS_TX) {
      this.fail(id, "notify", `${characteristicUuid} does not notify`);
      return;
    }
    this.at(p, () => {
      const was = p.hostPresent;
      p.subscribed = enable;
      this.emit("notify", id, serviceUuid, characteristicUuid, enable);
      if (p.hostPresent !== was) p.connCb?.(p.hostPresent);
    });
  }

  read(id: string, _serviceUuid: string, characteristicUuid: string): void {
    this.fail(id, "read", `${characteristicUuid} is not readable (ATT: Read Not Permitted)`);
  }

  broadcast(id: string): void {
    this.fail(id, "broadcast", "not supported by the Nordic UART Service");
  }

  readValue(id: string): void {
    this.fail(id, "readValue", "descriptor reads are not modelled");
  }

  writeValue(id: string): void {
    this.fail(id, "writeValue", "descriptor writes are not modelled (use notify)");
  }

  readHandle(id: string): void {
    this.fail(id, "readHandle", "handle access is not modelled");
  }

  writeHandle(id: string): void {
    this.fail(id, "writeHandle", "handle access is not modelled");
  }

  // ---- internals -----------------------------------------------------------------------------

  /** The device writes: notifications of at most MTU - 3 bytes, only while a host is subscribed. */
  private deviceWrite(p: Peripheral<unknown>, data: Uint8Array): void {
    if (!p.hostPresent) return; // nobody listening: a NUS peripheral drops it
    const max = p.mtu - 3;
    for (let off = 0; off < data.length; off += max) {
      const chunk = Buffer.from(data.subarray(off, Math.min(off + max, data.length)));
      this.at(p, () => {
        if (!p.hostPresent) return;
        p.stats.notifications++;
        if (chunk.length > p.stats.maxNotification) p.stats.maxNotification = chunk.length;
        this.emit("read", p.id, NUS_SERVICE, NUS_TX, chunk, true);
      });
    }
  }

  private endConnection(p: Peripheral<unknown>, reason: number): void {
    const hadHost = p.hostPresent;
    p.connected = false;
    p.subscribed = false;
    p.gen++;
    this.later(() => {
      if (hadHost) p.connCb?.(false);
      this.emit("disconnect", p.id, reason);
    });
  }

  private advertise(): void {
    if (this.scanFilter === null) return;
    for (const p of this.peripherals.values()) {
      if (!p.advertising) continue;
      if (this.scanFilter.length > 0 && !this.scanFilter.includes(NUS_SERVICE)) continue;
      const advertisement = {
        localName: p.o.localName,
        txPowerLevel: undefined,
        manufacturerData: undefined,
        serviceData: [],
        serviceUuids: [NUS_SERVICE],
        serviceSolicitationUuids: [],
      };
      this.emit("discover", p.id, p.o.address, "random", true, advertisement, p.rssi, true);
    }
  }

  private stopScan(): void {
    this.scanFilter = null;
    if (this.scanTimer !== null) clearInterval(this.scanTimer);
    this.scanTimer = null;
  }

  private get(id: string, op: string): Peripheral<unknown> | undefined {
    const p = this.peripherals.get(id);
    if (!p) this.fail(id, op, "unknown peripheral");
    return p;
  }

  /** Like noble's HCI bindings: GATT calls on a peripheral that is not connected go nowhere. */
  private connectedPeripheral(id: string, op: string): Peripheral<unknown> | undefined {
    const p = this.get(id, op);
    if (!p) return undefined;
    if (!p.connected) {
      this.fail(id, op, "not connected");
      return undefined;
    }
    return p;
  }

  /** Runs later, only if the connection that asked is still the current one. */
  private at(p: Peripheral<unknown>, fn: () => void): void {
    const gen = p.gen;
    this.later(() => {
      if (p.gen === gen && p.connected) fn();
    });
  }

  private later(fn: () => void): void {
    setImmediate(fn);
  }

  private fail(peripheralId: string, op: string, message: string): void {
    const e = { peripheralId, op, message };
    this.errors.push(e);
    this.options.onError?.(e);
  }
}
