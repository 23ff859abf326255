// The hardware seen by the firmware core: one Platform object per device, built by each engine's
// target (Espruino, Moddable XS, Node simulator). The core touches no engine global, only this.
// Engine subset: plain interfaces, callbacks (no promises), ECMA-419 style options objects.

/** Milliseconds on a monotonic clock that starts at boot. */
export type MonoMs = number;
/** Milliseconds since the Unix epoch (wall clock, settable by the host). */
export type WallMs = number;

export interface Timers {
  /** Monotonic milliseconds since boot. */
  now(): MonoMs;
  setTimeout(cb: () => void, ms: number): number;
  clearTimeout(id: number): void;
}

/** Wall-clock time: unset (0) until the host or a real-time clock sets it. */
export interface WallClock {
  wallMs(): WallMs;
  setWallMs(ms: WallMs): void;
}

/** A byte stream to the host (USB CDC serial, BLE Nordic UART) or to a chip (UART). */
export interface ByteLink {
  write(data: Uint8Array): void;
  /** Installs the receiver; bytes arrive in chunks of any size. */
  onData(cb: (data: Uint8Array) => void): void;
  /**
   * Called with true when a host connects (cable, BLE central) and false when it goes. A target
   * calls it at once with the current state when it is installed, if a host is already there.
   */
  onConnection(cb: (connected: boolean) => void): void;
}

/** A UART to a chip (fingerprint module, thermal printer, ballot scanner): bytes both ways. */
export interface Uart {
  write(data: Uint8Array): void;
  /** Installs the receiver; bytes arrive in chunks of any size. */
  onData(cb: (data: Uint8Array) => void): void;
}

/** The UARTs a device has fitted; a part that is not fitted is absent. */
export interface Uarts {
  /** Fingerprint module (verification device). */
  fingerprint?: Uart;
  /** Thermal receipt printer, ESC/POS (result acceleration device). */
  printer?: Uart;
  /** Ballot scanner subsystem (result acceleration device). */
  scanner?: Uart;
}

/** An I2C bus master. Returns false / null when the addressed chip does not acknowledge (NACK). */
export interface I2cBus {
  write(address: number, data: Uint8Array): boolean;
  read(address: number, length: number): Uint8Array | null;
}

/**
 * Flash with real flash semantics: erase sets a whole page to 0xFF, program can only clear bits.
 * The journal is the only user. Addresses are (page, offset) so that the Espruino target can map
 * each page to a Storage file.
 */
export interface Flash {
  readonly pageSize: number;
  readonly pageCount: number;
  read(page: number, offset: number, length: number): Uint8Array;
  program(page: number, offset: number, data: Uint8Array): void;
  erase(page: number): void;
}

/** A screen for polling staff: a message key with parameters, rendered by the target. */
export interface Screen {
  key: string;
  params: { [name: string]: string | number };
}

export interface Display {
  show(screen: Screen): void;
}

export type ButtonId = "ok" | "cancel" | "up" | "down" | "supervisor";

export interface Buttons {
  onPress(cb: (button: ButtonId) => void): void;
}

/** Why the device last started. Numbers match RebootReason in protocol/pollkit.proto. */
export interface SystemControl {
  /** The cause of the current boot, as a RebootReason value. */
  resetCause(): number;
  /** Reboots now; `reason` is kept across the reset so the next boot can report it. */
  reboot(reason: number): void;
  enableWatchdog(timeoutMs: number): void;
  kickWatchdog(): void;
  /** Free heap, in the engine's own units turned into bytes (estimate on Espruino). */
  freeMemory(): number;
  /** A 32-bit random value from hardware (used only where the secure element is not needed). */
  random32(): number;
}

export interface DeviceIdentity {
  /** Serial number burnt in at manufacture, e.g. "VVD-000123". */
  serial: string;
  hardwareModel: string;
  /** 1 = verification device, 2 = result acceleration device (Role in the schema). */
  role: number;
  /**
   * The commission's P-256 public key (X || Y, 64 bytes), written at provisioning. Commission-
   * signed artifacts and technician tokens verify against it; without it nothing signed is
   * accepted.
   */
  commissionKey?: Uint8Array;
}

export interface Platform {
  identity: DeviceIdentity;
  timers: Timers;
  clock: WallClock;
  /** The link to the host agent (USB serial, or BLE where there is no cable). */
  hostLink: ByteLink;
  /** The bus carrying the secure element, charger, fuel gauge and card reader (PN532 at 0x24). */
  i2c: I2cBus;
  /** The journal's flash region. */
  flash: Flash;
  /**
   * A second flash region for commission-signed data (station register, election definition,
   * firmware application slots) and the register's voted marks. Absent on a device without it.
   */
  dataFlash?: Flash;
  /**
   * A small flash region (2 pages or more) for settings a technician sets, such as the charge
   * mode, kept across reboots and power cuts (device/services/settings.ts). Absent: such settings
   * last until the next reboot.
   */
  settingsFlash?: Flash;
  uarts: Uarts;
  display: Display;
  buttons: Buttons;
  system: SystemControl;
  /** Console text for the device log (sent to the host as non-frame lines). */
  log(text: string): void;
}
