// Types of the Espruino globals that the Espruino target uses (Espruino 2v29 reference:
// https://www.espruino.com/Reference). Only what the target calls is typed, and only as far as the
// reference promises.
//
// This file is a MODULE of types only (it exports interfaces and declares no globals), so it
// does not pollute the global scope of the rest of the repo: tsconfig includes device/, and a
// global script .d.ts here would give Node code an `E`, a `Serial1` and a `setTimeout` returning
// a number. The values themselves are declared at module scope in platform.ts (`declare const
// E: EspruinoE;` ...), where they shadow Node's globals for that file only.

/** A pin: a Pin object on the device, or its name ("D8", "A5"), which Espruino also accepts. */
export type EspruinoPin = string | number;

/** Serial1, USB and Bluetooth are all instances of Espruino's `Serial` class. */
export interface EspruinoSerial {
  /**
   * Serial1 / Serial2 only. `rx`/`tx` pick the pins; on Espruino's Linux build `path` opens a
   * tty (a pseudo-terminal) instead of a UART.
   */
  setup(baud: number, options?: { rx?: EspruinoPin; tx?: EspruinoPin; path?: string }): void;
  /** `data` gives a STRING whose char codes are the bytes received (0..255). */
  on(event: "data", cb: (data: string) => void): void;
  /** Takes strings, arrays of bytes or typed arrays; it blocks (idles) while its buffer is full. */
  write(data: Uint8Array | string): void;
}

export interface EspruinoI2C {
  setup(options: { scl?: EspruinoPin; sda?: EspruinoPin; bitrate?: number }): void;
  /** Throws (on hardware I2C) when the addressed chip does not acknowledge. */
  writeTo(address: number, data: Uint8Array): void;
  /** Throws on NACK or timeout. */
  readFrom(address: number, quantity: number): Uint8Array;
}

/** The parts of the `E` object used here. */
export interface EspruinoE {
  /** `timeout` in SECONDS; `isAuto` false = the script must call kickWatchdog(). Cannot be undone. */
  enableWatchdog(timeout: number, isAuto?: boolean): void;
  kickWatchdog(): void;
  /** Hard reset of the microcontroller; does not return. */
  reboot(): void;
  /** Error flags raised since boot (e.g. "FIFO_FULL", "BUFFER_FULL", "LOW_MEMORY", "MEMORY"), cleared by the call. */
  getErrorFlags(): string[];
  /** 32 random bits from the hardware generator. */
  hwRand(): number;
  /** Moves the REPL/console; `null` + force detaches it from every device. */
  setConsole(device: string | null, options?: { force?: boolean }): void;
}

export interface EspruinoStorage {
  /**
   * Writes `data`. offset 0 (or omitted) CREATES the file (of `size` bytes, the rest 0xFF),
   * replacing any file of that name; offset > 0 writes in place into an existing file, and only
   * over bytes that still read 0xFF (else it throws "File already written with different
   * data"). Names have at most 28 characters.
   */
  write(name: string, data: Uint8Array | string, offset?: number, size?: number): boolean;
  /** The bytes as a string (char code = byte), or undefined when there is no such file. */
  read(name: string, offset?: number, length?: number): string | undefined;
  readArrayBuffer(name: string): ArrayBuffer | undefined;
  /** Marks the file deleted; its flash is reclaimed only by compact(). */
  erase(name: string): void;
  list(): string[];
  compact(): void;
  /** Bytes free for new files (without a compact). */
  getFree(): number;
}

/** process.memory(): `free`, `usage` and `total` count variable blocks of `blocksize` bytes. */
export interface EspruinoMemory {
  free: number;
  usage: number;
  total: number;
  blocksize?: number;
}

export interface EspruinoProcess {
  memory(): EspruinoMemory;
}

/** The nRF52 radio (Puck.js, Pixl.js, MDBT42Q, nRF52840 boards). */
export interface EspruinoNRF {
  on(event: "connect", cb: (address: string) => void): void;
  on(event: "disconnect", cb: (reason: number) => void): void;
  getSecurityStatus(): { connected: boolean };
}

export interface EspruinoConsole {
  log(text: string): void;
}
