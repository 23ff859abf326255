// A model of a Suprema UniFinger (SFM3000-class) fingerprint module at the UART packet level
// (Node side), so that device/drivers/fingerprint_module.ts is tested against the module's
// protocol, not against a mock of itself. It serves real ISO/IEC 19794-2 records (e.g. the
// FVC2002 records of simulator/data/fingerprints) as the templates it "extracts".
//
// What it follows (UniFinger packet protocol, see the driver's header for the sources):
// - 13-byte packets: 0x40, command, param (LE32), size (LE32), flag/error, checksum (sum of the
//   first 11 bytes mod 256), 0x0A; binary data after a packet whose size gives its length, closed
//   by 0x0A. Requests with a bad checksum or end code are ignored (counted in stats).
// - Commands: SR 0x03 / SW 0x01 (system parameters: flag = id, size = value), SF 0x02 (save),
//   ST 0x21 (scan template), CA 0x60 (cancel), GW 0x37 (GPIO configuration: param = GPIO 0..7,
//   flag = mode, size = bytes of 8-byte entries that follow). Anything else: UNSUPPORTED.
// - ST waits for a finger up to the Timeout parameter (0x62: 0x30 infinite, 0x31..0x44 = 1..20 s,
//   default 10 s), scans (scanMs), sends SCAN_SUCCESS if parameter 0x75 is 0x31 (the default),
//   extracts (extractMs) and sends SUCCESS with size = template length, the template, 0x0A. The
//   template is the presented ISO record when the Template Type parameter (0x96) is 0x31; the
//   module ships with 0x30 (Suprema's own format), for which it sends a proprietary-looking blob
//   of Template Size (0x64) bytes that is not an ISO record. ANSI 378 (0x32) is not modelled
//   (SW answers UNSUPPORTED).
// - While ST runs, any command but CA answers BUSY. CA ends a running ST with CANCELED, then
//   answers SUCCESS.
// - Parameters written with SW live in RAM; SF saves them. A power cycle (setConnected(false),
//   the module is powered through its connector) restores the saved ones and drops any scan.
//
// Presentations (what the next ST sees, in order): { iso } a finger whose template is `iso`;
// { fault: "no-finger" } nobody touches the sensor (TIME_OUT after the module's timeout);
// "poor-image" (SCAN_SUCCESS, then TRY_AGAIN); "scan-fail" (SCAN_FAIL); "busy" (BUSY at once);
// "timeout" (the module hangs: ST never answers, CA still does); "garbled" (the result packet
// arrives with a damaged checksum). With nothing queued, ST waits for a present() call.

import type { Timers, Uart } from "../../device/platform/platform.ts";
import { UartPair } from "./uart_pair.ts";

export const SFM_START = 0x40;
export const SFM_END = 0x0a;

export const SFM_CMD = {
  SW: 0x01,
  SF: 0x02,
  SR: 0x03,
  ST: 0x21,
  GW: 0x37,
  CA: 0x60,
} as const;

export const SFM_RET = {
  SUCCESS: 0x61,
  SCAN_SUCCESS: 0x62,
  SCAN_FAIL: 0x63,
  NOT_FOUND: 0x69,
  TRY_AGAIN: 0x6b,
  TIME_OUT: 0x6c,
  UNSUPPORTED: 0x75,
  BUSY: 0x80,
  CANCELED: 0x81,
} as const;

export const SFM_PARAM = {
  TIMEOUT: 0x62,
  TEMPLATE_SIZE: 0x64,
  ENROLL_MODE: 0x65,
  SECURITY_LEVEL: 0x66,
  FIRMWARE_VERSION: 0x6e,
  SERIAL_NUMBER: 0x6f,
  BAUDRATE: 0x71,
  ENROLLED_FINGER: 0x73,
  AVAILABLE_FINGER: 0x74,
  SEND_SCAN_SUCCESS: 0x75,
  IMAGE_QUALITY: 0x81,
  TEMPLATE_TYPE: 0x96,
} as const;

const READ_ONLY = new Set<number>([
  SFM_PARAM.FIRMWARE_VERSION,
  SFM_PARAM.SERIAL_NUMBER,
  SFM_PARAM.ENROLLED_FINGER,
  SFM_PARAM.AVAILABLE_FINGER,
]);

export type FpFault = "no-finger" | "poor-image" | "scan-fail" | "busy" | "timeout" | "garbled";
export type FpPresentation = { iso: Uint8Array } | { fault: FpFault };

export interface FingerprintModuleModelOptions {
  /** The simulation's timers (the same clock as the firmware's). */
  timers: Timers;
  /** UART speed (bit/s), default 115200; see UartPair. */
  baud?: number;
  latencyMs?: number;
  chunkBytes?: number;
  /** Time from the finger on the sensor to SCAN_SUCCESS (ms). Default 300. */
  scanMs?: number;
  /** Time from SCAN_SUCCESS to the template (ms). Default 200. */
  extractMs?: number;
  /** Time to answer a simple command (ms). Default 2. */
  commandMs?: number;
  /** Four characters reported as parameter 0x6E. Default "1.9A". */
  firmwareVersion?: string;
  /** The GPIO the LED is wired to (for `ledArmed` / `ledLit`). Default 0. */
  ledGpio?: number;
}

export interface FpModelStats {
  commands: { [cmd: number]: number };
  /** Requests dropped for a bad checksum or end code. */
  badRequests: number;
  scans: number;
  templatesSent: number;
  saves: number;
}

interface GpioConfig {
  mode: number;
  entries: { event: number; level: number; interval: number; blink: number }[];
}

function checksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < 11; i++) s += b[i]!;
  return s & 0xff;
}

function le32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** One response packet (13 bytes), optionally followed by data and 0x0A. */
export function sfmPacket(cmd: number, param: number, size: number, flag: number, data?: Uint8Array): Uint8Array {
  const out = new Uint8Array(13 + (data ? data.length + 1 : 0));
  const dv = new DataView(out.buffer);
  out[0] = SFM_START;
  out[1] = cmd;
  dv.setUint32(2, param >>> 0, true);
  dv.setUint32(6, size >>> 0, true);
  out[10] = flag;
  out[11] = checksum(out);
  out[12] = SFM_END;
  if (data) {
    out.set(data, 13);
    out[out.length - 1] = SFM_END;
  }
  return out;
}

function defaultParams(firmware: string): Map<number, number> {
  const fw = (firmware + "    ").slice(0, 4);
  let fwValue = 0;
  for (let i = 3; i >= 0; i--) fwValue = fwValue * 256 + (fw.charCodeAt(i) & 0xff);
  return new Map<number, number>([
    [SFM_PARAM.TIMEOUT, 0x3a],
    [SFM_PARAM.TEMPLATE_SIZE, 384],
    [SFM_PARAM.ENROLL_MODE, 0x41],
    [SFM_PARAM.SECURITY_LEVEL, 0x50],
    [SFM_PARAM.FIRMWARE_VERSION, fwValue],
    [SFM_PARAM.SERIAL_NUMBER, 0x00012345],
    [SFM_PARAM.BAUDRATE, 0x35],
    [SFM_PARAM.ENROLLED_FINGER, 0],
    [SFM_PARAM.AVAILABLE_FINGER, 1000],
    [SFM_PARAM.SEND_SCAN_SUCCESS, 0x31],
    [SFM_PARAM.IMAGE_QUALITY, 0x31],
    [SFM_PARAM.TEMPLATE_TYPE, 0x30],
  ]);
}

function validValue(id: number, v: number): boolean {
  switch (id) {
    case SFM_PARAM.TIMEOUT:
      return v >= 0x30 && v <= 0x44;
    case SFM_PARAM.TEMPLATE_SIZE:
      return v >= 256 && v <= 384;
    case SFM_PARAM.SEND_SCAN_SUCCESS:
      return v === 0x30 || v === 0x31;
    case SFM_PARAM.TEMPLATE_TYPE:
      return v === 0x30 || v === 0x31; // ANSI 378 (0x32) is not modelled
    case SFM_PARAM.IMAGE_QUALITY:
      return v >= 0x30 && v <= 0x33;
    default:
      return true;
  }
}

export class FingerprintModuleModel {
  /** The device's end of the UART: give it to the driver. */
  readonly uart: Uart;
  /** The line itself (fault injection: noise, bit flips, tracing). */
  readonly line: UartPair;
  readonly stats: FpModelStats = { commands: {}, badRequests: 0, scans: 0, templatesSent: 0, saves: 0 };

  private readonly timers: Timers;
  private readonly scanMs: number;
  private readonly extractMs: number;
  private readonly commandMs: number;
  private readonly firmware: string;
  private readonly ledGpio: number;

  private saved: Map<number, number>;
  private params: Map<number, number>;
  private gpio: (GpioConfig | null)[] = [null, null, null, null, null, null, null, null];
  private queue: FpPresentation[] = [];
  private rx: number[] = [];
  /** ST in progress: "wait" for a finger, "scan" (finger down), "hung" (never answers). */
  private scan: "idle" | "wait" | "scan" | "hung" = "idle";
  private scanTimers: number[] = [];
  private corruptNext = 0;

  constructor(options: FingerprintModuleModelOptions) {
    this.timers = options.timers;
    this.scanMs = options.scanMs ?? 300;
    this.extractMs = options.extractMs ?? 200;
    this.commandMs = options.commandMs ?? 2;
    this.firmware = options.firmwareVersion ?? "1.9A";
    this.ledGpio = options.ledGpio ?? 0;
    this.saved = defaultParams(this.firmware);
    this.params = new Map(this.saved);
    this.line = new UartPair({
      timers: options.timers,
      baud: options.baud,
      latencyMs: options.latencyMs,
      chunkBytes: options.chunkBytes,
    });
    this.uart = this.line.device;
    this.line.chip.onData((d) => this.receive(d));
  }

  // ---- host side: presentations and faults ----

  /** What the next capture sees (queued in order). */
  present(p: FpPresentation): void {
    if ("iso" in p) this.queue.push({ iso: new Uint8Array(p.iso) });
    else this.queue.push({ fault: p.fault });
    if (this.scan === "wait") this.fingerDown();
  }

  /** Presentations not consumed yet. */
  get pending(): number {
    return this.queue.length;
  }

  /** Plugs or unplugs the module; unplugging powers it off (RAM parameters, scans, GPIOs lost). */
  setConnected(on: boolean): void {
    if (!on && this.line.isConnected) this.powerCycle();
    this.line.setConnected(on);
  }

  get connected(): boolean {
    return this.line.isConnected;
  }

  /** Line noise towards the host, now. */
  injectNoise(bytes: Uint8Array): void {
    this.line.inject("toDevice", bytes);
  }

  /** Damages the checksum of the next `count` response packets. */
  corruptNextResponse(count?: number): void {
    this.corruptNext += count ?? 1;
  }

  /** A system parameter's current (RAM) value. */
  parameter(id: number): number | undefined {
    return this.params.get(id);
  }

  /** True while the LED GPIO is configured as an output bound to "wait for finger". */
  get ledArmed(): boolean {
    const g = this.gpio[this.ledGpio];
    return !!g && g.mode === 2 && g.entries.some((e) => e.event === 0x85 || e.event === 0x81);
  }

  /** True while the LED is lit: armed and the module waiting for a finger. */
  get ledLit(): boolean {
    return this.ledArmed && this.scan === "wait";
  }

  /** The module's state for a scan: idle, waiting for a finger, scanning, or hung. */
  get scanState(): string {
    return this.scan;
  }

  // ---- the UART side ----

  private receive(data: Uint8Array): void {
    for (const b of data) this.rx.push(b);
    for (;;) {
      while (this.rx.length > 0 && this.rx[0] !== SFM_START) this.rx.shift();
      if (this.rx.length < 13) return;
      const h = Uint8Array.from(this.rx.slice(0, 13));
      if (h[12] !== SFM_END || h[11] !== checksum(h)) {
        this.stats.badRequests++;
        this.rx.shift();
        continue;
      }
      const cmd = h[1]!;
      const size = le32(h, 6);
      let data: Uint8Array | null = null;
      if (cmd === SFM_CMD.GW && size > 0) {
        if (size > 8 * 24) {
          // More than the module's GPIO table: not a request it can take.
          this.rx.splice(0, 13);
          this.respond(sfmPacket(cmd, 0, 0, SFM_RET.UNSUPPORTED));
          continue;
        }
        if (this.rx.length < 13 + size + 1) return;
        if (this.rx[13 + size] !== SFM_END) {
          this.stats.badRequests++;
          this.rx.shift();
          continue;
        }
        data = Uint8Array.from(this.rx.slice(13, 13 + size));
        this.rx.splice(0, 13 + size + 1);
      } else {
        this.rx.splice(0, 13);
      }
      this.stats.commands[cmd] = (this.stats.commands[cmd] ?? 0) + 1;
      this.command(cmd, le32(h, 2), size, h[10]!, data);
    }
  }

  private respond(bytes: Uint8Array, delayMs?: number): void {
    this.later(() => this.line.chip.write(this.maybeCorrupt(bytes)), delayMs ?? this.commandMs, false);
  }

  private later(fn: () => void, ms: number, scanTimer: boolean): void {
    const id = this.timers.setTimeout(() => {
      const i = this.scanTimers.indexOf(id);
      if (i >= 0) this.scanTimers.splice(i, 1);
      fn();
    }, ms);
    if (scanTimer) this.scanTimers.push(id);
  }

  private command(cmd: number, param: number, size: number, flag: number, data: Uint8Array | null): void {
    if (this.scan !== "idle" && cmd !== SFM_CMD.CA) {
      this.respond(sfmPacket(cmd, 0, 0, SFM_RET.BUSY));
      return;
    }
    switch (cmd) {
      case SFM_CMD.SR: {
        const v = this.params.get(flag);
        if (v === undefined) this.respond(sfmPacket(cmd, 0, 0, SFM_RET.NOT_FOUND));
        else this.respond(sfmPacket(cmd, 0, v, SFM_RET.SUCCESS));
        return;
      }
      case SFM_CMD.SW: {
        if (!this.params.has(flag)) {
          this.respond(sfmPacket(cmd, 0, 0, SFM_RET.NOT_FOUND));
        } else if (READ_ONLY.has(flag) || !validValue(flag, size)) {
          this.respond(sfmPacket(cmd, 0, 0, SFM_RET.UNSUPPORTED));
        } else {
          this.params.set(flag, size);
          this.respond(sfmPacket(cmd, 0, size, SFM_RET.SUCCESS));
        }
        return;
      }
      case SFM_CMD.SF:
        this.saved = new Map(this.params);
        this.stats.saves++;
        this.respond(sfmPacket(cmd, 0, 0, SFM_RET.SUCCESS), 50);
        return;
      case SFM_CMD.GW:
        this.writeGpio(param, size, flag, data);
        return;
      case SFM_CMD.CA:
        this.cancel();
        return;
      case SFM_CMD.ST:
        this.startScan();
        return;
      default:
        this.respond(sfmPacket(cmd, 0, 0, SFM_RET.UNSUPPORTED));
    }
  }

  private writeGpio(gpio: number, size: number, mode: number, data: Uint8Array | null): void {
    const cmd = SFM_CMD.GW;
    if (gpio > 7 || mode > 6 || size % 8 !== 0 || (mode === 2 && size === 0)) {
      this.respond(sfmPacket(cmd, gpio, 0, SFM_RET.UNSUPPORTED));
      return;
    }
    const entries: GpioConfig["entries"] = [];
    if (data) {
      const dv = new DataView(data.buffer, data.byteOffset, data.length);
      for (let at = 0; at < data.length; at += 8) {
        entries.push({
          event: dv.getUint16(at, true),
          level: dv.getUint16(at + 2, true),
          interval: dv.getUint16(at + 4, true),
          blink: dv.getUint16(at + 6, true),
        });
      }
    }
    this.gpio[gpio] = mode === 0 ? null : { mode, entries };
    this.respond(sfmPacket(cmd, gpio, size, SFM_RET.SUCCESS));
  }

  private cancel(): void {
    const cmd = SFM_CMD.CA;
    if (this.scan === "wait" || this.scan === "scan") {
      this.clearScan();
      this.respond(sfmPacket(SFM_CMD.ST, 0, 0, SFM_RET.CANCELED));
    } else if (this.scan === "hung") {
      this.clearScan(); // a hung ST stays silent; CA still answers
    }
    this.respond(sfmPacket(cmd, 0, 0, SFM_RET.SUCCESS), this.commandMs + 1);
  }

  private clearScan(): void {
    for (const id of this.scanTimers) this.timers.clearTimeout(id);
    this.scanTimers = [];
    this.scan = "idle";
  }

  private powerCycle(): void {
    this.clearScan();
    this.params = new Map(this.saved);
    this.gpio = [null, null, null, null, null, null, null, null];
    this.rx = [];
    this.corruptNext = 0;
  }

  private startScan(): void {
    this.stats.scans++;
    if (this.queue.length > 0) {
      this.scan = "wait";
      this.fingerDown();
      return;
    }
    this.waitForFinger();
  }

  private waitForFinger(): void {
    this.scan = "wait";
    const t = this.params.get(SFM_PARAM.TIMEOUT)!;
    if (t === 0x30) return; // infinite
    this.later(() => this.finish(sfmPacket(SFM_CMD.ST, 0, 0, SFM_RET.TIME_OUT)), (t - 0x30) * 1000, true);
  }

  private fingerDown(): void {
    const p = this.queue.shift()!;
    for (const id of this.scanTimers) this.timers.clearTimeout(id);
    this.scanTimers = [];
    const cmd = SFM_CMD.ST;
    if ("fault" in p) {
      switch (p.fault) {
        case "no-finger":
          // Nobody touches the sensor: the wait runs its full course.
          this.waitForFinger();
          return;
        case "busy":
          this.finish(sfmPacket(cmd, 0, 0, SFM_RET.BUSY), this.commandMs);
          return;
        case "timeout":
          this.scan = "hung";
          return;
        case "scan-fail":
          this.scan = "scan";
          this.finish(sfmPacket(cmd, 0, 0, SFM_RET.SCAN_FAIL), this.scanMs);
          return;
        case "poor-image":
          this.scan = "scan";
          this.scanSuccess();
          this.finish(sfmPacket(cmd, 0, 0, SFM_RET.TRY_AGAIN), this.scanMs + this.extractMs);
          return;
        case "garbled":
          this.scan = "scan";
          this.scanSuccess();
          this.finishTemplate(this.templateFor(null), this.scanMs + this.extractMs, true);
          return;
      }
    }
    this.scan = "scan";
    this.scanSuccess();
    this.finishTemplate(this.templateFor(p.iso), this.scanMs + this.extractMs, false);
  }

  private scanSuccess(): void {
    if (this.params.get(SFM_PARAM.SEND_SCAN_SUCCESS) !== 0x31) return;
    this.later(() => this.line.chip.write(this.maybeCorrupt(sfmPacket(SFM_CMD.ST, 0, 0, SFM_RET.SCAN_SUCCESS))), this.scanMs, true);
  }

  private templateFor(iso: Uint8Array | null): Uint8Array {
    if (iso && this.params.get(SFM_PARAM.TEMPLATE_TYPE) === 0x31) return iso;
    // Suprema's own format: a fixed-size blob that is not an ISO record.
    const n = this.params.get(SFM_PARAM.TEMPLATE_SIZE)!;
    const out = new Uint8Array(n);
    let x = 0x5eed;
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = (x >>> 16) & 0xff;
    }
    out[0] = 0x53; // never "FMR"
    if (iso) for (let i = 0; i < Math.min(n - 1, iso.length); i++) out[i + 1] ^= iso[i]!;
    return out;
  }

  private finishTemplate(t: Uint8Array, ms: number, damage: boolean): void {
    const pkt = sfmPacket(SFM_CMD.ST, 0, t.length, SFM_RET.SUCCESS, t);
    if (damage) pkt[11] ^= 0x01;
    this.stats.templatesSent++;
    this.finish(pkt, ms);
  }

  private finish(bytes: Uint8Array, ms?: number): void {
    this.later(
      () => {
        this.scan = "idle";
        this.line.chip.write(this.maybeCorrupt(bytes));
      },
      ms ?? 0,
      true,
    );
  }

  private maybeCorrupt(bytes: Uint8Array): Uint8Array {
    if (this.corruptNext > 0) {
      this.corruptNext--;
      bytes[11] ^= 0x10;
    }
    return bytes;
  }
}
