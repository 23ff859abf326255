// The Moddable target's Platform (XS on ESP32, ECMA-419 IO). Engine subset (ENGINES.md): the
// Moddable bundle is checked against it like every firmware bundle.
//
//   timers    Timer.set / Timer.clear from "timer" (its ids are host objects: mapped to numbers);
//             now() from Date.now() since boot (the target never sets the system time)
//   clock     an offset over now(), as on Espruino
//   hostLink  ECMA-419 Serial ("embedded:io/serial", format "buffer"): onReadable -> read() all;
//             write() through a queue fed to the transmit FIFO in onWritable(count), because the
//             ESP32 write throws "output full" for more than the FIFO's free bytes
//   i2c       ECMA-419 I2C ("embedded:io/i2c"): one instance per 7-bit address, made on first
//             use and kept; write/read throw on NACK: caught, returned as false / null
//   flash     Moddable's "flash" module on a data partition: page = sector (blockSize bytes),
//             program = write(offset, length, ArrayBuffer), erase = erase(sector). The last two
//             sectors are kept out of the journal: identity (last) and reboot reasons (before it)
//   system    reboot through the global `System.restart()` that Moddable's IO manifest installs
//             (its "system" module, preloaded); watchdog and free memory have no JavaScript API
//             in the modules this bundle may import (see createModdablePlatform)

import Serial from "embedded:io/serial";
import { createWallClock } from "../../platform/wall_clock.ts";
import I2C from "embedded:io/i2c";
import Timer, { type TimerId } from "timer";
import Flash from "flash";
import type { ButtonId, ByteLink, DeviceIdentity, Flash as PlatformFlash, I2cBus, Platform, Timers } from "../../platform/platform.ts";

const REASON_POWER_ON = 1;

export interface ModdableTargetConfig {
  /** Host link UART: port number and GPIO pins (ESP32 UART0 on a dev kit's USB bridge: 3 / 1). */
  serialPort: number;
  receive: number;
  transmit: number;
  baud: number;
  /** I2C pins (GPIO numbers) and clock. */
  sda: number;
  scl: number;
  i2cHz: number;
  /** The data partition that holds the journal, the reboot reasons and the identity. */
  partition: string;
  /** At most this many journal pages (sectors). */
  maxPages: number;
  defaultModel: string;
  defaultRole: number;
  /** Bytes the host link queues at most while the UART drains (beyond, writes are dropped). */
  maxQueued: number;
}

let lastError = "";

function noteError(e: unknown): void {
  lastError = String(e);
}

/** An ArrayBuffer holding exactly these bytes (the IO write calls take a whole ArrayBuffer). */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer as ArrayBuffer;
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy.buffer;
}

// ---------------------------------------------------------------------------------------------
// Timers and clocks

function createTimers(): Timers {
  let base = Date.now();
  let last = 0;
  let nextId = 1;
  const live: { [id: string]: TimerId } = {};
  return {
    now: function (): number {
      let t = Date.now() - base;
      // Date.now() jumps if something sets the system time: the monotonic clock never goes back.
      if (t < last) {
        base = base - (last - t);
        t = last;
      }
      last = t;
      return t;
    },
    setTimeout: function (cb: () => void, ms: number): number {
      const n = nextId++;
      live[String(n)] = Timer.set(function () {
        delete live[String(n)];
        cb();
      }, ms);
      return n;
    },
    clearTimeout: function (id: number): void {
      const t = live[String(id)];
      if (t === undefined) return;
      delete live[String(id)];
      Timer.clear(t);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Host link

function createHostLink(cfg: ModdableTargetConfig): ByteLink {
  let dataCb: ((d: Uint8Array) => void) | null = null;
  const queue: Uint8Array[] = [];
  let queued = 0;
  /** Free bytes in the transmit FIFO, as the last onWritable said, less what was written since. */
  let room = 0;
  let serial: Serial | null = null;

  function pump(): void {
    while (serial !== null && queue.length > 0 && room > 0) {
      const head = queue[0];
      const n = head.length <= room ? head.length : room;
      try {
        serial.write(ownBuffer(head.subarray(0, n)));
      } catch (e) {
        // "output full": the FIFO has less room than we thought; onWritable says when.
        noteError(e);
        room = 0;
        return;
      }
      room -= n;
      queued -= n;
      if (n === head.length) queue.shift();
      else queue[0] = head.subarray(n);
    }
  }

  serial = new Serial({
    port: cfg.serialPort,
    receive: cfg.receive,
    transmit: cfg.transmit,
    baud: cfg.baud,
    format: "buffer",
    onReadable: function (): void {
      for (;;) {
        const ab = serial !== null ? serial.read() : undefined;
        if (ab === undefined) return;
        if (dataCb !== null && ab.byteLength > 0) dataCb(new Uint8Array(ab));
      }
    },
    onWritable: function (count: number): void {
      room = count;
      pump();
    },
  });

  return {
    write: function (data: Uint8Array): void {
      if (data.length === 0) return;
      if (queued + data.length > cfg.maxQueued) {
        noteError("host link queue full: " + data.length + " bytes dropped");
        return;
      }
      // Copied: the caller may reuse its buffer once write() returns.
      queue.push(data.slice());
      queued += data.length;
      pump();
    },
    onData: function (cb: (d: Uint8Array) => void): void {
      dataCb = cb;
    },
    onConnection: function (cb: (c: boolean) => void): void {
      // A UART cannot tell whether a host listens: connected from boot.
      cb(true);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// I2C

function createI2c(cfg: ModdableTargetConfig): I2cBus {
  const devices: { [address: string]: I2C } = {};

  function deviceAt(address: number): I2C | null {
    const key = String(address);
    const known = devices[key];
    if (known !== undefined) return known;
    try {
      const d = new I2C({ data: cfg.sda, clock: cfg.scl, hz: cfg.i2cHz, address: address });
      devices[key] = d;
      return d;
    } catch (e) {
      noteError(e);
      return null;
    }
  }

  return {
    write: function (address: number, data: Uint8Array): boolean {
      const d = deviceAt(address);
      if (d === null) return false;
      try {
        d.write(data);
        return true;
      } catch (e) {
        noteError(e);
        return false;
      }
    },
    read: function (address: number, length: number): Uint8Array | null {
      const d = deviceAt(address);
      if (d === null) return null;
      try {
        const r = new Uint8Array(d.read(length));
        return r.length === length ? r : null;
      } catch (e) {
        noteError(e);
        return null;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Flash

/** pageCount sectors of the partition from firstSector on, as pages 0.. of a PlatformFlash. */
function createPartitionFlash(flash: Flash, pageSize: number, firstSector: number, pageCount: number): PlatformFlash {
  function at(page: number, offset: number, length: number): number {
    if (page < 0 || page >= pageCount || offset < 0 || length < 0 || offset + length > pageSize || Math.floor(page) !== page) {
      throw new Error("flash: page " + page + " bytes " + offset + ".." + (offset + length) + " out of range");
    }
    return (firstSector + page) * pageSize + offset;
  }
  return {
    pageSize: pageSize,
    pageCount: pageCount,
    read: function (page: number, offset: number, length: number): Uint8Array {
      const a = at(page, offset, length);
      if (length === 0) return new Uint8Array(0);
      return new Uint8Array(flash.read(a, length));
    },
    program: function (page: number, offset: number, data: Uint8Array): void {
      const a = at(page, offset, data.length);
      if (data.length === 0) return;
      flash.write(a, data.length, ownBuffer(data));
    },
    erase: function (page: number): void {
      at(page, 0, 0);
      flash.erase(firstSector + page);
    },
  };
}

interface IdentityRecord {
  serial?: unknown;
  model?: unknown;
  role?: unknown;
}

/** The identity sector: JSON {serial, model, role} in ASCII written at manufacture, then 0xFF. */
function readIdentity(flash: Flash, sector: number, blockSize: number, cfg: ModdableTargetConfig): DeviceIdentity {
  const bytes = new Uint8Array(flash.read(sector * blockSize, 512));
  let text = "";
  for (let i = 0; i < bytes.length && bytes[i] !== 0xff; i++) text += String.fromCharCode(bytes[i]);
  let serial = "PK-UNPROVISIONED";
  let model = cfg.defaultModel;
  let role = cfg.defaultRole;
  if (text !== "") {
    try {
      const o = JSON.parse(text) as IdentityRecord;
      if (typeof o.serial === "string") serial = o.serial;
      if (typeof o.model === "string") model = o.model;
      if (typeof o.role === "number") role = o.role;
    } catch (e) {
      noteError(e);
    }
  }
  return { serial: serial, hardwareModel: model, role: role };
}

/**
 * Reboot reasons, one byte each, appended in a sector of their own (wear: one erase per
 * blockSize / 2 reboots). reboot(reason) programs reason + 1 at the first 0xFF byte; the next
 * boot takes the last byte before it and, if it is a reason, programs 0x00 after it (consumed).
 * No reason pending means POWER_ON: ECMA-419 gives JavaScript no reset cause, so a watchdog
 * reset, a brown-out and a cold start look the same.
 */
function createReasonLog(flash: Flash, sector: number, blockSize: number): { take(): number; put(reason: number): void } {
  const base = sector * blockSize;
  function firstFree(): number {
    const bytes = new Uint8Array(flash.read(base, blockSize));
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0xff) return i;
    return blockSize;
  }
  function append(value: number): void {
    let p = firstFree();
    if (p >= blockSize) {
      flash.erase(sector);
      p = 0;
    }
    const one = new Uint8Array(1);
    one[0] = value;
    flash.write(base + p, 1, one.buffer);
  }
  return {
    take: function (): number {
      const p = firstFree();
      if (p === 0) return REASON_POWER_ON;
      const last = new Uint8Array(flash.read(base + p - 1, 1))[0];
      if (last === 0) return REASON_POWER_ON;
      append(0);
      return last - 1;
    },
    put: function (reason: number): void {
      append((reason & 0xff) === 0xff ? 0xfe : (reason & 0xff) + 1);
    },
  };
}

// ---------------------------------------------------------------------------------------------

interface SystemGlobal {
  System?: { restart?: () => void };
}

export interface ModdablePlatform extends Platform {
  lastError(): string;
}

/**
 * Not available to this bundle, by design of its imports (`embedded:*`, `timer`, `flash`):
 * - a watchdog: enableWatchdog / kickWatchdog do nothing (the ESP-IDF task watchdog of the build's
 *   sdkconfig still resets a firmware that blocks the event loop);
 * - free memory: reported as 0 (unknown);
 * - reset causes other than our own reboots (see createReasonLog).
 */
export function createModdablePlatform(cfg: ModdableTargetConfig): ModdablePlatform {
  const flash = new Flash(cfg.partition);
  const blockSize = flash.blockSize;
  const sectors = Math.floor(flash.byteLength / blockSize);
  if (sectors < 6) throw new Error("partition " + cfg.partition + " has " + sectors + " sectors: too small");
  // From the top: identity, reboot reasons, two sectors of settings; the journal from sector 0.
  const identitySector = sectors - 1;
  const reasons = createReasonLog(flash, sectors - 2, blockSize);
  const settingsSector = sectors - 4;
  const pages = settingsSector < cfg.maxPages ? settingsSector : cfg.maxPages;
  const timers = createTimers();
  const resetCause = reasons.take();
  return {
    identity: readIdentity(flash, identitySector, blockSize, cfg),
    timers: timers,
    clock: createWallClock(timers),
    hostLink: createHostLink(cfg),
    i2c: createI2c(cfg),
    flash: createPartitionFlash(flash, blockSize, 0, pages),
    settingsFlash: createPartitionFlash(flash, blockSize, settingsSector, 2),
    uarts: {},
    display: {
      show: function (): void {
        // No screen on the reference board.
      },
    },
    buttons: {
      onPress: function (cb: (b: ButtonId) => void): void {
        // No buttons on the reference board.
        if (cb === null) noteError("no button callback");
      },
    },
    system: {
      resetCause: function (): number {
        return resetCause;
      },
      reboot: function (reason: number): void {
        reasons.put(reason);
        const sys = (globalThis as unknown as SystemGlobal).System;
        if (sys !== undefined && typeof sys.restart === "function") sys.restart();
        else noteError("no System.restart: reboot not possible");
      },
      enableWatchdog: function (): void {},
      kickWatchdog: function (): void {},
      freeMemory: function (): number {
        return 0;
      },
      random32: function (): number {
        return Math.floor(Math.random() * 4294967296) >>> 0;
      },
    },
    log: function (): void {
      // The core already sends each log line to the host as console text. `trace` would write
      // to the console UART, which is the host link here, and could split a frame's line.
    },
    lastError: function (): string {
      return lastError;
    },
  };
}
