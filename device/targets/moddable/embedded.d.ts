// Types of the Moddable SDK modules the Moddable target imports: ECMA-419 IO (`embedded:io/*`, as
// implemented in $MODDABLE/modules/io) and Moddable's own `timer` and `flash` modules. Only what
// the target uses, as the Moddable sources (ESP32 ports) behave.
//
// A script of ambient MODULE declarations only: it adds module names to the program, no global
// values, so the Node code of the repo sees nothing new.

declare module "embedded:io/serial" {
  export interface SerialOptions {
    /** UART number (ESP32: 0..2). */
    port?: number;
    /** GPIO numbers. */
    receive?: number;
    transmit?: number;
    baud: number;
    /** "number" (one byte per call) or "buffer" (ArrayBuffers). */
    format?: "number" | "buffer";
    /** Bytes are waiting: `count` of them. `this` is the Serial instance. */
    onReadable?: (count: number) => void;
    /** The transmit FIFO has room for `count` bytes. */
    onWritable?: (count: number) => void;
  }
  export default class Serial {
    constructor(options: SerialOptions);
    /** "buffer" format: an ArrayBuffer of up to `count` bytes, or undefined when none wait. */
    read(count?: number): ArrayBuffer | undefined;
    /**
     * "buffer" format: an ArrayBuffer (ESP32 takes its byteLength whole). Throws "output full" when
     * it does not fit in the transmit FIFO (128 bytes on ESP32): wait for onWritable.
     */
    write(data: ArrayBuffer): void;
    close(): void;
    format: "number" | "buffer";
  }
}

declare module "embedded:io/i2c" {
  export interface I2COptions {
    /** GPIO numbers of SDA and SCL. */
    data: number;
    clock: number;
    hz: number;
    /** 7-bit address: one instance per device (ESP32 refuses a duplicate pins + address). */
    address: number;
    port?: number;
    /** Milliseconds. */
    timeout?: number;
  }
  export default class I2C {
    constructor(options: I2COptions);
    /** An ArrayBuffer of `count` bytes. Throws on NACK ("read failed"). */
    read(count: number, stop?: boolean): ArrayBuffer;
    /** Throws on NACK ("write failed"). */
    write(data: ArrayBuffer | ArrayBufferView, stop?: boolean): void;
    close(): void;
  }
}

declare module "timer" {
  /** A host object identifying a timer (not a number). */
  export interface TimerId {
    readonly __timerBrand?: never;
  }
  const Timer: {
    /** One-shot after `ms`; the callback gets the timer's id. */
    set(callback: (id: TimerId) => void, ms?: number): TimerId;
    repeat(callback: (id: TimerId) => void, ms: number): TimerId;
    clear(id: TimerId): void;
  };
  export default Timer;
}

declare module "flash" {
  /** A flash partition (ESP32: a data partition by name, e.g. "storage"). */
  export default class Flash {
    constructor(partition: string);
    /** Erases sector `sector` (blockSize bytes) to 0xFF. */
    erase(sector: number): void;
    read(offset: number, byteLength: number): ArrayBuffer;
    /** Programs `byteLength` bytes of `buffer` (an ArrayBuffer) at `offset`: bits can only be cleared. */
    write(offset: number, byteLength: number, buffer: ArrayBuffer): void;
    readonly byteLength: number;
    /** The erase sector size (4096 on ESP32). */
    readonly blockSize: number;
  }
}
