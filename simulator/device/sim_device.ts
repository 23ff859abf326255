// One simulated device: the real firmware core on the Node target, its chip models (flash, secure
// element on an I2C bus), a wall clock, and power: reboot, power cut and power on. Flash and the
// secure element's keys survive a reboot and, when a state directory is given, a simulator
// restart.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Firmware } from "../../device/core/firmware.ts";
import { createNodePlatform, type NodePlatform } from "../../device/targets/node/node_platform.ts";
import type { ByteLink, Screen } from "../../device/platform/platform.ts";
import { SimFlash } from "../models/flash.ts";
import { SimI2cBus } from "../models/i2c_bus.ts";
import { Atecc608Model, type Atecc608State } from "../models/atecc608.ts";
import { realTimers, type SimTimers, type VirtualClock } from "../clock/timers.ts";
import { RebootReason, Role } from "../../protocol/generated/device_codec.ts";

export const FIRMWARE_VERSION = "1.0.0";

export interface SimDeviceOptions {
  serial: string;
  role: "verification" | "result";
  hostLink: ByteLink;
  /** Keeps flash and the secure element's state here across simulator restarts. */
  stateDir?: string;
  /** A virtual clock (tests, accelerated runs); real time when absent. */
  clock?: VirtualClock;
  /** Wall clock at power-on, Unix ms (0: unset until the host sets it). */
  wallMs?: number;
  flashPages?: number;
  flashPageSize?: number;
  healthIntervalMs?: number;
  linkResendMs?: number;
  /** Deterministic randomness for reproducible runs. */
  random32?: () => number;
  randomBytes?: (n: number) => Uint8Array;
  onLog?: (line: string) => void;
  onScreen?: (s: Screen) => void;
  /** The firmware to run: the TypeScript source by default, or a built bundle's Firmware. */
  firmwareClass?: typeof Firmware;
}

/** A link view for one boot: callbacks of an earlier boot are dropped on reboot. */
class BootLink implements ByteLink {
  private dataCb: ((d: Uint8Array) => void) | null = null;
  private connCb: ((c: boolean) => void) | null = null;
  constructor(
    private readonly inner: ByteLink,
    private readonly connected: () => boolean,
  ) {}
  write(data: Uint8Array): void {
    if (this.dataCb !== null || this.connCb !== null) this.inner.write(data);
  }
  onData(cb: (d: Uint8Array) => void): void {
    this.dataCb = cb;
  }
  onConnection(cb: (c: boolean) => void): void {
    this.connCb = cb;
    if (this.connected()) cb(true);
  }
  deliver(d: Uint8Array): void {
    this.dataCb?.(d);
  }
  connection(c: boolean): void {
    this.connCb?.(c);
  }
  detach(): void {
    this.dataCb = null;
    this.connCb = null;
  }
}

export class SimDevice {
  readonly flash: SimFlash;
  readonly bus = new SimI2cBus();
  readonly se: Atecc608Model;
  firmware: Firmware | null = null;
  platform: NodePlatform | null = null;
  boots = 0;
  private timers: SimTimers | null = null;
  private bootLink: BootLink | null = null;
  private linkUp = false;
  private wallBase: number;
  private wallSetAt: number;
  private readonly start = performance.now();

  constructor(readonly options: SimDeviceOptions) {
    const pageSize = options.flashPageSize ?? 4096;
    const pages = options.flashPages ?? 16;
    const flashFile = options.stateDir ? join(options.stateDir, "flash.bin") : null;
    this.flash = flashFile && existsSync(flashFile) ? SimFlash.loadFrom(flashFile) : new SimFlash({ pageSize, pageCount: pages });
    let seState: Atecc608State | undefined;
    const seFile = options.stateDir ? join(options.stateDir, "secure_element.json") : null;
    if (seFile && existsSync(seFile)) seState = JSON.parse(readFileSync(seFile, "utf8")) as Atecc608State;
    this.se = new Atecc608Model({ now: () => this.monoNow(), state: seState, randomBytes: options.randomBytes });
    this.bus.attach(0x60, this.se);
    this.wallBase = options.wallMs ?? 0;
    this.wallSetAt = this.monoNow();
    options.hostLink.onData((d) => this.bootLink?.deliver(d));
    options.hostLink.onConnection((c) => {
      this.linkUp = c;
      this.bootLink?.connection(c);
    });
  }

  /** Milliseconds since the simulator started this device (virtual or real). */
  monoNow(): number {
    return this.options.clock ? this.options.clock.now() : performance.now() - this.start;
  }

  wallMs(): number {
    return this.wallBase === 0 ? 0 : this.wallBase + (this.monoNow() - this.wallSetAt);
  }

  get running(): boolean {
    return this.firmware !== null;
  }

  /** Powers the device on: a fresh firmware instance boots with the given reset cause. */
  powerOn(reason: number = RebootReason.POWER_ON, cb?: () => void): void {
    if (this.firmware) throw new Error(`${this.options.serial} is already running`);
    const o = this.options;
    this.boots++;
    this.timers = o.clock ? o.clock.timers() : realTimers();
    this.bootLink = new BootLink(o.hostLink, () => this.linkUp);
    this.platform = createNodePlatform({
      identity: {
        serial: o.serial,
        hardwareModel: o.role === "verification" ? "pollkit-vvd-sim" : "pollkit-rad-sim",
        role: o.role === "verification" ? Role.VERIFICATION : Role.RESULT_ACCELERATION,
      },
      timers: this.timers,
      clock: {
        wallMs: () => this.wallMs(),
        setWallMs: (ms: number) => {
          this.wallBase = ms;
          this.wallSetAt = this.monoNow();
        },
      },
      hostLink: this.bootLink,
      i2c: this.bus,
      flash: this.flash,
      resetCause: reason,
      onReboot: (r) => {
        this.powerOff();
        // The chip restarts a moment later.
        setImmediate(() => this.powerOn(r));
      },
      onLog: o.onLog,
      onScreen: o.onScreen,
      random32: o.random32,
    });
    const FirmwareClass = o.firmwareClass ?? Firmware;
    this.firmware = new FirmwareClass({
      platform: this.platform,
      firmwareVersion: FIRMWARE_VERSION,
      healthIntervalMs: o.healthIntervalMs,
      linkResendMs: o.linkResendMs,
    });
    this.firmware.start(() => {
      this.persist();
      cb?.();
    });
  }

  /** Cuts power: timers stop, the link goes quiet, RAM is lost; flash keeps what was written. */
  powerOff(): void {
    this.timers?.cancelAll();
    this.bootLink?.detach();
    this.se.powerCycle();
    this.firmware = null;
    this.platform = null;
    this.timers = null;
    this.bootLink = null;
    this.persist();
  }

  /** Saves flash and the secure element's keys to the state directory, if there is one. */
  persist(): void {
    const dir = this.options.stateDir;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    this.flash.saveTo(join(dir, "flash.bin"));
    writeFileSync(join(dir, "secure_element.json"), JSON.stringify(this.se.exportState()));
  }
}
