// Runs one simulated device (real firmware core, chip models) on a real pseudo-terminal: the host
// agent, or a person with picocom, opens the printed path with the real serialport bindings.

import { mkdirSync } from "node:fs";
import { createPtyPair, type PtyPair } from "../pty/pty_pair.ts";
import { openSerialByteLink, type SerialByteLink, type SerialByteLinkOptions } from "../pty/serial_link.ts";
import { SimDevice, type SimDeviceOptions } from "../device/sim_device.ts";
import type { ByteLink } from "../../device/platform/platform.ts";

export interface RunningDevice {
  device: SimDevice;
  pty: PtyPair;
  /** What a host opens. */
  hostPath: string;
  stop(): Promise<void>;
  /** Pulls the USB cable out (the port disappears) and, with `replug`, puts it back. */
  unplug(): Promise<void>;
  replug(): Promise<void>;
}

export interface DeviceRunnerOptions {
  serial: string;
  role: "verification" | "result";
  /** Stable path for the host end (a symlink to the pty), kept across unplug and replug. */
  link?: string;
  stateDir?: string;
  healthIntervalMs?: number;
  wallMs?: number;
  onLog?: (line: string) => void;
  /** More SimDevice options (commission key, battery, data flash size...). */
  device?: Partial<SimDeviceOptions>;
  /** Options for the device end's serial link (e.g. UART pacing: bytesPerSecond, receiveBytesPerSecond). */
  linkOptions?: SerialByteLinkOptions;
}

/** A link that follows the device end of the pty across unplug/replug. */
class SwitchableLink implements ByteLink {
  private dataCb: ((d: Uint8Array) => void) | null = null;
  private connCb: ((c: boolean) => void) | null = null;
  inner: SerialByteLink | null = null;
  write(d: Uint8Array): void {
    this.inner?.write(d);
  }
  onData(cb: (d: Uint8Array) => void): void {
    this.dataCb = cb;
  }
  onConnection(cb: (c: boolean) => void): void {
    this.connCb = cb;
  }
  attach(inner: SerialByteLink): void {
    this.inner = inner;
    inner.onData((d) => this.dataCb?.(d));
    inner.onConnection((c) => this.connCb?.(c));
  }
  async detach(): Promise<void> {
    const i = this.inner;
    this.inner = null;
    this.connCb?.(false);
    await i?.close();
  }
}

export async function runDevice(o: DeviceRunnerOptions): Promise<RunningDevice> {
  const pty = await createPtyPair({ link: o.link });
  const link = new SwitchableLink();
  link.attach(await openSerialByteLink(pty.devicePath, o.linkOptions));
  if (o.stateDir) mkdirSync(o.stateDir, { recursive: true });
  const device = new SimDevice({
    serial: o.serial,
    role: o.role,
    hostLink: link,
    stateDir: o.stateDir,
    healthIntervalMs: o.healthIntervalMs,
    wallMs: o.wallMs ?? Date.now(),
    onLog: o.onLog,
    ...o.device,
  });
  await new Promise<void>((resolve) => device.powerOn(undefined, resolve));
  return {
    device,
    pty,
    hostPath: pty.hostPath,
    async stop() {
      device.powerOff();
      await link.detach();
      await pty.close();
    },
    async unplug() {
      await link.detach();
      await pty.unplug();
    },
    async replug() {
      await pty.replug();
      link.attach(await openSerialByteLink(pty.devicePath, o.linkOptions));
    },
  };
}
