// The Espruino target's Platform: each part of the interface in device/platform/platform.ts mapped
// onto Espruino's own globals. Engine subset (ENGINES.md): this file ships in the Espruino bundle.
//
//   timers      setTimeout / clearTimeout (ids are numbers); now() from getTime() (seconds, float)
//   clock       an offset over now(): wall = ms set by the host + time since it was set. setTime()
//               is never called, because it would move getTime() and break the monotonic clock
//   hostLink    Serial1 (a UART to a USB-serial bridge, or a tty `path` on the Linux build), USB
//               (boards with native USB CDC) or Bluetooth (Nordic UART, nRF52 boards). Its `data`
//               events give strings: each char code is one byte
//   i2c         I2C1.writeTo / readFrom; Espruino throws on NACK: caught, returned as false / null
//   flash       one Storage file per journal page (see createStorageFlash)
//   system      E.reboot with the reason kept in a Storage file, E.enableWatchdog / kickWatchdog,
//               process.memory(), E.hwRand
//   display     none (no screen on the reference board); buttons: BTN1 as "ok" where it exists
//   log         console.log, which goes nowhere once the console is detached from the host link

import { createWallClock } from "../../platform/wall_clock.ts";
import type { ButtonId, ByteLink, DeviceIdentity, Flash, I2cBus, Platform, Timers } from "../../platform/platform.ts";
import type {
  EspruinoConsole,
  EspruinoE,
  EspruinoI2C,
  EspruinoNRF,
  EspruinoPin,
  EspruinoProcess,
  EspruinoSerial,
  EspruinoStorage,
} from "./espruino.d.ts";

// Espruino's globals, for this module only (see espruino.d.ts). Those that a board may lack are
// only touched behind `typeof X !== "undefined"`.
declare const E: EspruinoE;
declare const Serial1: EspruinoSerial;
declare const USB: EspruinoSerial;
declare const Bluetooth: EspruinoSerial;
declare const I2C1: EspruinoI2C;
declare const NRF: EspruinoNRF;
declare const BTN1: EspruinoPin;
declare const process: EspruinoProcess;
declare const console: EspruinoConsole;
/**
 * Espruino's global object. `global.require` finds the built-in `require` (built-in functions are
 * looked up on the root scope). A bare `require(...)` cannot be written: esbuild rewrites every
 * free `require` of a non-Node bundle into a helper built on Proxy, which Espruino lacks.
 */
declare const global: { require(name: "Storage"): EspruinoStorage };
declare function getTime(): number;
declare function setTimeout(cb: () => void, ms: number): number;
declare function clearTimeout(id: number): void;
declare function setWatch(cb: () => void, pin: EspruinoPin, options: { repeat: boolean; edge: string; debounce: number }): number;
declare function getSerial(): string;

/** RebootReason values (protocol/pollkit.proto) this file needs. */
const REASON_POWER_ON = 1;

export interface EspruinoTargetConfig {
  /** "Serial1" (default), "USB" or "Bluetooth". */
  hostLink: string;
  /** Linux build: the tty that Serial1 opens (e.g. a pseudo-terminal); "" on boards. */
  serialPath: string;
  baud: number;
  /** Serial1 pins ("" = leave the board's default). */
  rx: string;
  tx: string;
  /** I2C1 pins ("" = board default) and bit rate. */
  scl: string;
  sda: string;
  i2cBitrate: number;
  /** Journal geometry: pageCount Storage files of pageSize bytes. */
  pageSize: number;
  pageCount: number;
  /** Storage file names: filePrefix + page number ("pkj0", "pkj1"...). */
  filePrefix: string;
  /** Settings (charge mode...): two Storage files of 256 bytes, settingsPrefix + 0 and + 1. */
  settingsPrefix: string;
  /** Storage file holding the identity written at manufacture (JSON {serial, model, role}). */
  identityFile: string;
  /** Storage file holding the reason of a reboot the firmware asked for (one byte). */
  reasonFile: string;
  /** Identity used when the identity file is missing or unreadable. */
  defaultModel: string;
  defaultRole: number;
  watchdog: boolean;
}

/** The last error caught by the glue (for diagnostics; also keeps every catch binding used). */
let lastError = "";

function noteError(e: unknown): void {
  lastError = String(e);
}

/** The bytes of a string whose char codes are bytes (Serial `data`, Storage.read). */
function bytesOfString(s: string, out: Uint8Array): void {
  const n = s.length < out.length ? s.length : out.length;
  for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i) & 255;
}

// ---------------------------------------------------------------------------------------------
// Timers and clocks

function createTimers(): Timers {
  let base = getTime();
  let last = 0;
  // Ids still pending: Espruino throws "Unknown Timeout" when clearTimeout gets a spent id.
  const live: { [id: string]: boolean } = {};
  return {
    now: function (): number {
      let t = (getTime() - base) * 1000;
      // getTime() moves if something calls setTime(): never let the monotonic clock go back.
      if (t < last) {
        base = base - (last - t) / 1000;
        t = last;
      }
      last = t;
      return Math.floor(t);
    },
    setTimeout: function (cb: () => void, ms: number): number {
      let id = -1;
      id = setTimeout(function () {
        delete live[String(id)];
        cb();
      }, ms);
      live[String(id)] = true;
      return id;
    },
    clearTimeout: function (id: number): void {
      if (live[String(id)] !== true) return;
      delete live[String(id)];
      try {
        clearTimeout(id);
      } catch (e) {
        noteError(e);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Host link

function createHostLink(cfg: EspruinoTargetConfig): ByteLink {
  const ble = cfg.hostLink === "Bluetooth";
  let dev: EspruinoSerial | null = null;
  if (cfg.hostLink === "USB") {
    if (typeof USB !== "undefined") dev = USB;
  } else if (ble) {
    if (typeof Bluetooth !== "undefined") dev = Bluetooth;
  } else {
    dev = Serial1;
    if (cfg.serialPath !== "") Serial1.setup(cfg.baud, { path: cfg.serialPath });
    else {
      const pins: { rx?: EspruinoPin; tx?: EspruinoPin } = {};
      if (cfg.rx !== "") pins.rx = cfg.rx;
      if (cfg.tx !== "") pins.tx = cfg.tx;
      Serial1.setup(cfg.baud, pins);
    }
  }
  // A UART or USB CDC link cannot tell whether a host listens: it counts as connected from boot
  // (the host's own Hello starts the session whenever it comes). BLE knows.
  let connected = !ble;
  let dataCb: ((d: Uint8Array) => void) | null = null;
  let connCb: ((c: boolean) => void) | null = null;
  if (dev !== null) {
    dev.on("data", function (s: string) {
      if (dataCb === null || s.length === 0) return;
      const bytes = new Uint8Array(s.length);
      bytesOfString(s, bytes);
      dataCb(bytes);
    });
  }
  if (ble && typeof NRF !== "undefined") {
    connected = NRF.getSecurityStatus().connected === true;
    NRF.on("connect", function () {
      connected = true;
      if (connCb !== null) connCb(true);
    });
    NRF.on("disconnect", function () {
      connected = false;
      if (connCb !== null) connCb(false);
    });
  }
  return {
    write: function (data: Uint8Array): void {
      if (dev !== null && connected) dev.write(data);
    },
    onData: function (cb: (d: Uint8Array) => void): void {
      dataCb = cb;
    },
    onConnection: function (cb: (c: boolean) => void): void {
      connCb = cb;
      if (connected) cb(true);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// I2C

function createI2c(cfg: EspruinoTargetConfig): I2cBus {
  let bus: EspruinoI2C | null = typeof I2C1 !== "undefined" ? I2C1 : null;
  if (bus !== null) {
    const o: { scl?: EspruinoPin; sda?: EspruinoPin; bitrate?: number } = { bitrate: cfg.i2cBitrate };
    if (cfg.scl !== "") o.scl = cfg.scl;
    if (cfg.sda !== "") o.sda = cfg.sda;
    try {
      bus.setup(o);
    } catch (e) {
      // No usable I2C (e.g. the Linux build): every transaction NACKs; the chips show as faults.
      noteError(e);
      bus = null;
    }
  }
  return {
    write: function (address: number, data: Uint8Array): boolean {
      if (bus === null) return false;
      try {
        bus.writeTo(address, data);
        return true;
      } catch (e) {
        noteError(e);
        return false;
      }
    },
    read: function (address: number, length: number): Uint8Array | null {
      if (bus === null) return null;
      try {
        const r = bus.readFrom(address, length);
        return r.length === length ? r : null;
      } catch (e) {
        noteError(e);
        return null;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Flash on Storage

/** Bytes before the page data in each page file: the file is created by writing them at offset 0. */
const FILE_HEADER = 4;
const FILE_MAGIC = new Uint8Array([0x50, 0x4b, 0x4a, 0x50]); // "PKJP"

/**
 * One Storage file per journal page, `prefix + page` ("pkj0"...), of FILE_HEADER + pageSize bytes.
 * - A page with no file reads as erased (all 0xFF); erase(page) just erases the file, and the
 *   next program() creates it again: write(name, magic, 0, size) makes a file of `size` bytes
 *   whose unwritten part is 0xFF.
 * - program() is write(name, bytes, FILE_HEADER + offset): Storage writes in place, and only over
 *   bytes that still read 0xFF (the journal programs each byte once between erases, so it never
 *   asks for more). The page data starts at FILE_HEADER because a write at file offset 0
 *   RE-CREATES the file: a page header programmed there would wipe the page.
 * - Erased files stay in flash until Storage.compact(): it runs when a new file would not fit.
 *   It can take a second or more on a large Storage area.
 * - read() is Storage.read(name, offset, length), a string turned into bytes.
 */
export function createStorageFlash(storage: EspruinoStorage, prefix: string, pageSize: number, pageCount: number): Flash {
  const size = FILE_HEADER + pageSize;
  // Pages whose file is known to exist with the right size since boot.
  const ready: boolean[] = [];
  for (let i = 0; i < pageCount; i++) ready.push(false);

  function fileName(page: number): string {
    return prefix + page;
  }

  function checkPage(page: number, offset: number, length: number): void {
    if (page < 0 || page >= pageCount || offset < 0 || length < 0 || offset + length > pageSize || Math.floor(page) !== page) {
      throw new Error("flash: page " + page + " bytes " + offset + ".." + (offset + length) + " out of range");
    }
  }

  function ensureFile(page: number): void {
    if (ready[page]) return;
    const name = fileName(page);
    const head = storage.read(name, 0, FILE_HEADER);
    const tail = storage.read(name, size - 1, 1);
    if (head !== undefined && tail !== undefined && tail.length === 1) {
      ready[page] = true;
      return;
    }
    // Missing, or left by another geometry: start the page afresh (blank).
    if (head !== undefined) storage.erase(name);
    if (storage.getFree() < size + 64) storage.compact();
    if (!storage.write(name, FILE_MAGIC, 0, size)) throw new Error("flash: cannot create " + name);
    ready[page] = true;
  }

  return {
    pageSize: pageSize,
    pageCount: pageCount,
    read: function (page: number, offset: number, length: number): Uint8Array {
      checkPage(page, offset, length);
      const out = new Uint8Array(length);
      out.fill(0xff);
      if (length === 0) return out;
      const s = storage.read(fileName(page), FILE_HEADER + offset, length);
      if (s !== undefined) bytesOfString(s, out);
      return out;
    },
    program: function (page: number, offset: number, data: Uint8Array): void {
      checkPage(page, offset, data.length);
      if (data.length === 0) return;
      ensureFile(page);
      if (!storage.write(fileName(page), data, FILE_HEADER + offset)) {
        throw new Error("flash: write to " + fileName(page) + " at " + offset + " failed");
      }
    },
    erase: function (page: number): void {
      checkPage(page, 0, 0);
      storage.erase(fileName(page));
      ready[page] = false;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Identity and reboot reason

interface IdentityFile {
  serial?: unknown;
  model?: unknown;
  role?: unknown;
}

function readIdentity(storage: EspruinoStorage, cfg: EspruinoTargetConfig): DeviceIdentity {
  let serial = "";
  let model = cfg.defaultModel;
  let role = cfg.defaultRole;
  const text = storage.read(cfg.identityFile);
  if (text !== undefined) {
    try {
      const o = JSON.parse(text) as IdentityFile;
      if (typeof o.serial === "string") serial = o.serial;
      if (typeof o.model === "string") model = o.model;
      if (typeof o.role === "number") role = o.role;
    } catch (e) {
      noteError(e);
    }
  }
  if (serial === "") serial = "PK-" + (typeof getSerial === "function" ? getSerial() : "UNPROVISIONED");
  return { serial: serial, hardwareModel: model, role: role };
}

/**
 * The cause of this boot. A reboot the firmware asks for stores its reason in a one-byte Storage
 * file first; at boot the file is read and erased. Without it the boot is taken as POWER_ON:
 * Espruino's JavaScript API gives no reset cause, so a watchdog reset, a brown-out, the reset
 * pin and a cold start look the same (E.getErrorFlags() describes the current session only).
 */
function takeRebootReason(storage: EspruinoStorage, file: string): number {
  const s = storage.read(file);
  if (s === undefined) return REASON_POWER_ON;
  storage.erase(file);
  return s.length > 0 ? s.charCodeAt(0) : REASON_POWER_ON;
}

// ---------------------------------------------------------------------------------------------

export interface EspruinoPlatform extends Platform {
  /** The last error the glue caught (a NACK, a failed clearTimeout), for diagnostics. */
  lastError(): string;
}

export function createEspruinoPlatform(cfg: EspruinoTargetConfig): EspruinoPlatform {
  const storage = global.require("Storage");
  // The console (the REPL and console.log) must not share the host link: it would echo the
  // host's frames and try to run them as code. On boards it is detached from every device; on
  // the Linux build it stays on the terminal, which is not the link (Serial1 opens `path`).
  if (cfg.serialPath === "") E.setConsole(null, { force: true });
  const timers = createTimers();
  const clock = createWallClock(timers);
  const resetCause = takeRebootReason(storage, cfg.reasonFile);
  const identity = readIdentity(storage, cfg);
  let buttonCb: ((b: ButtonId) => void) | null = null;
  if (typeof BTN1 !== "undefined") {
    setWatch(
      function () {
        if (buttonCb !== null) buttonCb("ok");
      },
      BTN1,
      { repeat: true, edge: "rising", debounce: 50 },
    );
  }
  return {
    identity: identity,
    timers: timers,
    clock: clock,
    hostLink: createHostLink(cfg),
    i2c: createI2c(cfg),
    flash: createStorageFlash(storage, cfg.filePrefix, cfg.pageSize, cfg.pageCount),
    settingsFlash: createStorageFlash(storage, cfg.settingsPrefix, 256, 2),
    uarts: {},
    display: {
      show: function (): void {
        // No screen on the reference board.
      },
    },
    buttons: {
      onPress: function (cb: (b: ButtonId) => void): void {
        buttonCb = cb;
      },
    },
    system: {
      resetCause: function (): number {
        return resetCause;
      },
      reboot: function (reason: number): void {
        storage.write(cfg.reasonFile, String.fromCharCode(reason & 255));
        E.reboot();
      },
      enableWatchdog: function (timeoutMs: number): void {
        if (cfg.watchdog) E.enableWatchdog(timeoutMs / 1000, false);
      },
      kickWatchdog: function (): void {
        if (cfg.watchdog) E.kickWatchdog();
      },
      freeMemory: function (): number {
        const m = process.memory();
        return m.free * (m.blocksize ?? 14);
      },
      random32: function (): number {
        return E.hwRand() >>> 0;
      },
    },
    log: function (text: string): void {
      console.log(text);
    },
    lastError: function (): string {
      return lastError;
    },
  };
}
