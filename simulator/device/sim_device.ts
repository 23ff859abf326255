// One simulated device: the real firmware core on the Node target, its chip models (flash, secure
// element on an I2C bus), a wall clock, and power: reboot, power cut and power on. Flash and the
// secure element's keys survive a reboot and, when a state directory is given, a simulator
// restart.
//
// The power path: a reboot the firmware asks for restarts the chip a moment later, except a
// LOW_BATTERY shutdown without good input power. Then the board stays off, as a real one does
// (the charger's ship mode: the cell is disconnected, nothing draws from it), until a charger is
// plugged in: the system then runs from the input even on a flat cell, and the firmware boots with
// reason LOW_BATTERY and charges. Nothing else restarts it, so a flat cell cannot boot-loop.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Firmware } from "../../device/core/firmware.ts";
import { DeviceFirmware } from "../../device/roles/all_roles.ts";
import { chooseFirmware, markBootAttempt } from "./boot_loader.ts";
import { createNodePlatform, type NodePlatform } from "../../device/targets/node/node_platform.ts";
import type { ByteLink, Screen } from "../../device/platform/platform.ts";
import { SimFlash } from "../models/flash.ts";
import { SimI2cBus } from "../models/i2c_bus.ts";
import { Atecc608Model, type Atecc608State } from "../models/atecc608.ts";
import { realTimers, type SimTimers, type VirtualClock } from "../clock/timers.ts";
import { RebootReason, Role } from "../../protocol/generated/device_codec.ts";
import { PowerPlant, type PowerPlantOptions } from "../models/power_plant.ts";
import { FingerprintModuleModel } from "../models/fingerprint_module.ts";
import { Pn532Model, PN532_I2C_ADDRESS } from "../models/pn532.ts";
import { ThermalPrinterModel } from "../models/thermal_printer.ts";
import { BallotScannerModel } from "../models/ballot_scanner.ts";

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
  /** The cell and the charger (false: no power hardware fitted, as on a bench supply). */
  power?: Omit<PowerPlantOptions, "now"> | false;
  /** Data flash size (0: none fitted: no signed data, no authority checks, as on a bare test rig). */
  dataFlashPages?: number;
  dataFlashPageSize?: number;
  /** Settings flash pages of 256 bytes (charge mode across reboots; 0: none fitted). Default 2. */
  settingsFlashPages?: number;
  /** The commission's public key (X || Y) written at provisioning. */
  commissionKey?: Uint8Array;
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
  /** Commission-signed data, the role's log, firmware slots (null: none fitted). */
  readonly dataFlash: SimFlash | null;
  /** Technician settings kept across reboots, e.g. the charge mode (null: none fitted). */
  readonly settingsFlash: SimFlash | null;
  readonly bus = new SimI2cBus();
  readonly se: Atecc608Model;
  /** Battery, charger and fuel gauge; null when not fitted. */
  readonly power: PowerPlant | null;
  /** Verification device: the fingerprint module on its UART and the card reader on I2C. */
  readonly fingerprint: FingerprintModuleModel | null = null;
  readonly cardReader: Pn532Model | null = null;
  /** Result acceleration device: the ballot scanner and the receipt printer on their UARTs. */
  readonly scanner: BallotScannerModel | null = null;
  readonly printer: ThermalPrinterModel | null = null;
  /** Timers of the chip models: they keep running across the firmware's reboots. */
  private readonly modelTimers: SimTimers;
  firmware: Firmware | null = null;
  platform: NodePlatform | null = null;
  boots = 0;
  /** Shutdowns on a flat cell without input power (the device then stays off until a charger). */
  lowBatteryShutdowns = 0;
  /** Off after a LOW_BATTERY shutdown: only input power brings it back. */
  waitingForInput = false;
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
    const dataFile = options.stateDir ? join(options.stateDir, "data_flash.bin") : null;
    this.dataFlash =
      options.dataFlashPages === 0
        ? null
        : dataFile && existsSync(dataFile)
          ? SimFlash.loadFrom(dataFile)
          : new SimFlash({ pageSize: options.dataFlashPageSize ?? 4096, pageCount: options.dataFlashPages ?? 1024 });
    const settingsFile = options.stateDir ? join(options.stateDir, "settings_flash.bin") : null;
    this.settingsFlash =
      options.settingsFlashPages === 0
        ? null
        : settingsFile && existsSync(settingsFile)
          ? SimFlash.loadFrom(settingsFile)
          : new SimFlash({ pageSize: 256, pageCount: options.settingsFlashPages ?? 2 });
    this.modelTimers = options.clock ? options.clock.timers() : realTimers();
    this.power = options.power === false ? null : new PowerPlant({ ...options.power, now: () => this.monoNow() });
    this.power?.attach(this.bus);
    this.power?.onInputChange((present) => {
      if (!present || !this.waitingForInput || this.firmware) return;
      // Plugging a charger in takes the board out of its ship mode: it starts a moment later.
      setImmediate(() => {
        if (!this.waitingForInput || this.firmware || !this.power?.inputGood()) return;
        this.powerOn(RebootReason.LOW_BATTERY);
      });
    });
    if (options.role === "verification") {
      this.fingerprint = new FingerprintModuleModel({ timers: this.modelTimers });
      this.cardReader = new Pn532Model({ now: () => this.monoNow() });
      this.bus.attach(PN532_I2C_ADDRESS, this.cardReader);
    } else {
      this.scanner = new BallotScannerModel({ timers: this.modelTimers });
      this.printer = new ThermalPrinterModel({ timers: this.modelTimers });
    }
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
    this.waitingForInput = false;
    this.boots++;
    this.timers = o.clock ? o.clock.timers() : realTimers();
    this.bootLink = new BootLink(o.hostLink, () => this.linkUp);
    this.platform = createNodePlatform({
      identity: {
        serial: o.serial,
        hardwareModel: o.role === "verification" ? "pollkit-vvd-sim" : "pollkit-rad-sim",
        role: o.role === "verification" ? Role.VERIFICATION : Role.RESULT_ACCELERATION,
        commissionKey: o.commissionKey,
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
      dataFlash: this.dataFlash ?? undefined,
      settingsFlash: this.settingsFlash ?? undefined,
      uarts: {
        fingerprint: this.fingerprint?.uart,
        scanner: this.scanner?.uart,
        printer: this.printer?.uart,
      },
      resetCause: reason,
      onReboot: (r) => {
        this.powerOff();
        if (r === RebootReason.LOW_BATTERY && this.power !== null && !this.power.inputGood()) {
          this.lowBatteryShutdowns++;
          this.waitingForInput = true;
          o.onLog?.("power: shut down on a flat cell; off until a charger is plugged in");
          return;
        }
        // The chip restarts a moment later.
        setImmediate(() => this.powerOn(r));
      },
      onLog: o.onLog,
      onScreen: o.onScreen,
      random32: o.random32,
    });
    this.power?.setLoad(120);
    // The boot loader: the built-in firmware, or an application image from a firmware slot (on
    // trial after an update, rolled back if it fails to start or never confirms itself).
    const choice = chooseFirmware(this.dataFlash ?? undefined, { firmwareClass: o.firmwareClass ?? DeviceFirmware, version: FIRMWARE_VERSION });
    for (const n of choice.notes) o.onLog?.(`boot loader: ${n}`);
    try {
      this.firmware = new choice.firmwareClass({
        platform: this.platform,
        firmwareVersion: choice.version,
        healthIntervalMs: o.healthIntervalMs,
        linkResendMs: o.linkResendMs,
      });
      this.firmware.start(() => {
        this.persist();
        cb?.();
      });
    } catch (e) {
      // An image that cannot start is a failed trial: back to the previous firmware.
      if (this.dataFlash !== null && markBootAttempt(this.dataFlash, false)) {
        o.onLog?.(`boot loader: firmware ${choice.version} failed to start (${e instanceof Error ? e.message : String(e)}): rolled back`);
        this.powerOff();
        setImmediate(() => this.powerOn(RebootReason.FIRMWARE_UPDATE, cb));
        return;
      }
      throw e;
    }
  }

  /** Cuts power: timers stop, the link goes quiet, RAM is lost; flash keeps what was written. */
  powerOff(): void {
    this.power?.setLoad(0);
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
    this.dataFlash?.saveTo(join(dir, "data_flash.bin"));
    this.settingsFlash?.saveTo(join(dir, "settings_flash.bin"));
    writeFileSync(join(dir, "secure_element.json"), JSON.stringify(this.se.exportState()));
  }
}
