// The host agent: finds devices on every transport, runs one session per device, stores what they
// send in the outbox before acknowledging it, forwards it over MQTT, and serves the local control
// API that the technician CLI talks to.

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { HostLink } from "../link/host_link.ts";
import { Outbox } from "../outbox/outbox.ts";
import { MqttBridge } from "../mqtt/bridge.ts";
import { SerialTransport } from "../transport/serial/serial_transport.ts";
import { DeviceSession, type SessionStore } from "../session/device_session.ts";
import type { AgentStatus, DeviceDetail, DeviceRole, DeviceSummary, HealthJson, TransportState } from "../control/api.ts";
import { startControlServer, type ControlServer } from "./control_server.ts";
import type { AgentConfig } from "./config.ts";

export { loadAgentConfig, parseAgentConfig, type AgentConfig } from "./config.ts";

interface Attached {
  session: DeviceSession;
  link: HostLink;
  deviceId: string | null;
  lastSeenMs: number;
  logListeners: Set<(line: string) => void>;
}

/** Optional extra transports (BLE, USB) plug in through this shape. */
export interface LinkSource {
  onLink(cb: (link: HostLink) => void): void;
  state(): TransportState;
  close(): Promise<void> | void;
}

export class Agent {
  readonly outbox: Outbox;
  readonly bridge: MqttBridge;
  readonly serial: SerialTransport;
  readonly startedAtMs = Date.now();
  private readonly attached = new Set<Attached>();
  private readonly extra: { ble?: LinkSource; usb?: LinkSource } = {};

  constructor(readonly config: AgentConfig) {
    mkdirSync(dirname(config.outbox.path), { recursive: true });
    this.outbox = new Outbox({ path: config.outbox.path });
    this.bridge = new MqttBridge({
      url: config.mqtt.url,
      site: config.site,
      agentId: config.agentId,
      outbox: this.outbox,
      username: config.mqtt.username,
      password: config.mqtt.password,
      ca: config.mqtt.ca,
      cert: config.mqtt.cert,
      key: config.mqtt.key,
      rejectUnauthorized: config.mqtt.rejectUnauthorized,
    });
    this.serial = new SerialTransport({
      paths: config.serial.paths,
      globs: config.serial.globs,
      vendorIds: config.serial.vendorIds,
      productIds: config.serial.productIds,
      scanIntervalMs: config.serial.scanIntervalMs,
    });
    this.serial.onLink((link) => this.attach(link));
  }

  /** Adds a transport (BLE, USB hotplug) after construction. */
  addSource(kind: "ble" | "usb", source: LinkSource): void {
    this.extra[kind] = source;
    source.onLink((link) => this.attach(link));
  }

  start(): void {
    this.bridge.start();
    this.serial.start();
  }

  private store(): SessionStore {
    return {
      put: (items) => {
        const n = this.outbox.put(items);
        this.bridge.notify();
        return n;
      },
      highestSeq: (deviceId) => this.outbox.highestSeq(deviceId),
    };
  }

  /** A new connection: a session of its own; the device id is known after its hello. */
  attach(link: HostLink): void {
    const session = new DeviceSession({
      link,
      agentId: this.config.agentId,
      site: this.config.site,
      store: this.store(),
      timeSync: this.config.timeSync,
    });
    const a: Attached = { session, link, deviceId: null, lastSeenMs: Date.now(), logListeners: new Set() };
    this.attached.add(a);
    const seen = (): void => {
      a.lastSeenMs = Date.now();
    };
    session.on("hello", (h) => {
      seen();
      // The same device on a new connection replaces its old session.
      for (const other of this.attached) {
        if (other !== a && other.deviceId === h.deviceId) {
          this.attached.delete(other);
          void other.session.close();
        }
      }
      a.deviceId = h.deviceId;
      this.bridge.setDeviceStatus(h.deviceId, true);
    });
    session.on("health", seen);
    session.on("record", seen);
    session.on("log", (line) => {
      seen();
      for (const l of a.logListeners) l(line);
    });
    session.on("close", () => {
      this.attached.delete(a);
      if (a.deviceId !== null && ![...this.attached].some((o) => o.deviceId === a.deviceId)) this.bridge.setDeviceStatus(a.deviceId, false);
    });
  }

  private find(deviceId: string): Attached | null {
    for (const a of this.attached) if (a.deviceId === deviceId) return a;
    return null;
  }

  session(deviceId: string): DeviceSession | null {
    return this.find(deviceId)?.session ?? null;
  }

  /** Subscribes to a device's log lines; returns the unsubscribe function, or null. */
  followLog(deviceId: string, cb: (line: string) => void): (() => void) | null {
    const a = this.find(deviceId);
    if (!a) return null;
    a.logListeners.add(cb);
    return () => a.logListeners.delete(cb);
  }

  private summary(a: Attached): DeviceSummary {
    const i = a.session.info();
    const role: DeviceRole = i.role === 1 ? "verification" : i.role === 2 ? "result" : "unknown";
    return {
      deviceId: a.deviceId ?? "",
      role,
      transport: a.link.kind,
      address: a.link.address,
      state: i.state,
      firmwareVersion: i.firmwareVersion ?? "",
      lastSeenMs: a.lastSeenMs,
      health: (i.health ?? null) as HealthJson | null,
      counters: { records: i.counters.records, duplicates: i.counters.duplicates, errors: i.counters.errors },
    };
  }

  devices(): DeviceSummary[] {
    return [...this.attached].filter((a) => a.deviceId !== null).map((a) => this.summary(a)).sort((x, y) => x.deviceId.localeCompare(y.deviceId));
  }

  device(deviceId: string): DeviceDetail | null {
    const a = this.find(deviceId);
    if (!a) return null;
    const i = a.session.info();
    const key = i.publicKey ?? new Uint8Array(0);
    return {
      ...this.summary(a),
      hardwareModel: i.hardwareModel ?? "",
      bootId: i.bootId ?? 0,
      publicKeyHex: Buffer.from(key).toString("hex"),
      log: a.session.logLines(50),
    };
  }

  status(): AgentStatus {
    const b = this.bridge.stats();
    const o = this.outbox.stats();
    const none: TransportState = { available: false, reason: "disabled in the configuration" };
    const listing = this.serial.listingState();
    return {
      agentId: this.config.agentId,
      site: this.config.site,
      startedAtMs: this.startedAtMs,
      mqtt: { url: this.config.mqtt.url, connected: b.connected, published: b.published, inFlight: b.inFlight, lastError: b.lastError ?? undefined },
      outbox: { pending: o.pending, sent: o.sent, duplicatesDropped: o.duplicatesDropped },
      transports: {
        serial: { available: true, reason: listing.available ? undefined : listing.reason },
        ble: this.extra.ble?.state() ?? none,
        usb: this.extra.usb?.state() ?? none,
      },
      devices: this.devices().length,
    };
  }

  async stop(): Promise<void> {
    await this.serial.close();
    for (const s of Object.values(this.extra)) await s?.close();
    for (const a of this.attached) await a.session.close();
    this.attached.clear();
    await this.bridge.close();
    this.outbox.close();
  }
}

export interface RunningAgent {
  agent: Agent;
  controlUrl: string;
  stop(): Promise<void>;
}

export async function startAgent(config: AgentConfig): Promise<RunningAgent> {
  const agent = new Agent(config);
  if (config.ble.enabled) {
    const { BleTransport } = await import("../transport/ble/ble_transport.ts");
    const ble = new BleTransport({});
    agent.addSource("ble", ble);
    await ble.start();
  }
  if (config.usb.enabled) {
    const { UsbTransport, usbIdFilters } = await import("../transport/usb/usb_transport.ts");
    const usb = new UsbTransport({ appIds: usbIdFilters(config.serial.vendorIds, config.serial.productIds) });
    usb.onSerialHint(() => void agent.serial.scanNow());
    await usb.start();
    agent.addSource("usb", { onLink: () => {}, state: () => usb.state(), close: () => usb.close() });
  }
  agent.start();
  let control: ControlServer;
  try {
    control = await startControlServer(agent, config.control.host, config.control.port);
  } catch (e) {
    await agent.stop();
    throw e;
  }
  return {
    agent,
    controlUrl: control.url,
    async stop() {
      await control.close();
      await agent.stop();
    },
  };
}
