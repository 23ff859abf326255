// XS side of the target tests: the Moddable modules the Moddable target imports (ECMA-419
// `embedded:io/serial`, `embedded:io/i2c`, Moddable's `timer` and `flash`) plus the global
// `System` of Moddable's IO manifest, built on the Node test (issueCommand) and a virtual clock.
// Not shipped; runs in xsnap only. The test build of the Moddable bundle resolves each import to
// `globalThis.__pkModdable.<Class>` (see targets_host.ts).
// Fidelity points, from the Moddable ESP32 sources (modules/io/serial/esp32/serial.c,
// modules/io/i2c/esp32/_i2c.c, modules/files/flash/esp32/flash.c):
// - Serial "buffer" write takes an ArrayBuffer and throws "output full" if it does not fit in the
//   128-byte transmit FIFO; onWritable(count) comes once after construction and again when the
//   FIFO has drained (here at 115200 baud of virtual time); read() returns all waiting bytes or
//   undefined; onReadable(count) when bytes arrive;
// - I2C: one instance per (pins, address), a duplicate throws; read / write throw on NACK;
// - Timer.set returns a host object, not a number;
// - Flash: erase(sector), read(offset, length) -> ArrayBuffer, write(offset, length, ArrayBuffer).
// Date.now() is replaced by the virtual clock (plus a fixed epoch).

import { OP, clock, haltForReboot, host, installShim, textOf, u32 } from "./targets_shim_common.ts";

const FIFO = 128;
const BYTES_PER_MS = 115200 / 10 / 1000;
const EPOCH_MS = 1790000000000;

const state = {
  serials: [] as { port?: number; receive?: number; transmit?: number; baud: number; format?: string }[],
  i2c: [] as number[],
  outputFull: 0,
  restarts: 0,
};

interface SerialOptions {
  port?: number;
  receive?: number;
  transmit?: number;
  baud: number;
  format?: string;
  onReadable?: (count: number) => void;
  onWritable?: (count: number) => void;
}

let liveSerials: Serial[] = [];

class Serial {
  format: string;
  private readonly o: SerialOptions;
  private rx: number[] = [];
  private inFifo = 0;
  private drainTimer = -1;
  private closed = false;

  constructor(options: SerialOptions) {
    this.o = options;
    this.format = options.format ?? "number";
    state.serials.push({ port: options.port, receive: options.receive, transmit: options.transmit, baud: options.baud, format: options.format });
    liveSerials.push(this);
    if (options.onWritable) this.later(0);
  }

  read(count?: number): ArrayBuffer | undefined {
    if (this.rx.length === 0) return undefined;
    const n = count === undefined || count > this.rx.length ? this.rx.length : count;
    const out = new Uint8Array(this.rx.splice(0, n));
    return out.buffer;
  }

  write(data: ArrayBuffer): void {
    if (this.closed) throw new Error("closed");
    if (!(data instanceof ArrayBuffer)) throw new TypeError("shim: Serial.write wants an ArrayBuffer in format buffer");
    if (data.byteLength > FIFO - this.inFifo) {
      state.outputFull++;
      throw new Error("output full");
    }
    host(OP.SERIAL_OUT, new Uint8Array(data));
    this.inFifo += data.byteLength;
    if (this.o.onWritable) this.later(Math.ceil(this.inFifo / BYTES_PER_MS));
    else this.inFifo = 0;
  }

  close(): void {
    this.closed = true;
  }

  /** The UART has sent everything in `ms`: onWritable with the whole FIFO free. */
  private later(ms: number): void {
    if (this.drainTimer >= 0) clock.clear(this.drainTimer);
    this.drainTimer = clock.set(() => {
      this.drainTimer = -1;
      this.inFifo = 0;
      if (!this.closed && this.o.onWritable) this.o.onWritable.call(this, FIFO);
    }, ms);
  }

  deliver(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) this.rx.push(bytes[i]);
    if (!this.closed && this.o.onReadable) this.o.onReadable.call(this, this.rx.length);
  }
}

function timeTag(view: DataView): void {
  view.setFloat64(0, clock.now, true);
}

let liveI2c: string[] = [];

class I2C {
  private readonly address: number;
  private readonly key: string;
  constructor(options: { data: number; clock: number; hz: number; address: number }) {
    if (!(options.hz > 0)) throw new RangeError("invalid hz");
    if (!(options.address >= 0 && options.address <= 127)) throw new RangeError("invalid address");
    this.key = options.data + "/" + options.clock + "/" + options.address;
    if (liveI2c.includes(this.key)) throw new RangeError("duplicate address");
    liveI2c.push(this.key);
    this.address = options.address;
    state.i2c.push(options.address);
  }

  write(data: ArrayBuffer | ArrayBufferView): void {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const body = new Uint8Array(9 + bytes.length);
    timeTag(new DataView(body.buffer));
    body[8] = this.address;
    body.set(bytes, 9);
    if (host(OP.I2C_WRITE, body)[0] !== 1) throw new Error("write failed");
  }

  read(count: number): ArrayBuffer {
    const body = new Uint8Array(11);
    const view = new DataView(body.buffer);
    timeTag(view);
    body[8] = this.address;
    view.setUint16(9, count, true);
    const reply = host(OP.I2C_READ, body);
    if (reply[0] !== 1) throw new Error("read failed");
    return reply.slice(1).buffer;
  }

  close(): void {
    liveI2c = liveI2c.filter((k) => k !== this.key);
  }
}

interface TimerId {
  n: number;
}

const Timer = {
  set(callback: (id: TimerId) => void, ms?: number): TimerId {
    const id: TimerId = { n: -1 };
    id.n = clock.set(() => callback(id), ms ?? 0);
    return id;
  },
  repeat(): never {
    throw new Error("shim: Timer.repeat is not used by the target");
  },
  clear(id: TimerId): void {
    clock.clear(id.n);
  },
};

// ---- Flash: each call goes to the Node side (status 1 ok, 2 throws)

const SUB = { READ: 1, WRITE: 2, ERASE: 3, INFO: 4 } as const;

function flashCall(sub: number, a: number, b: number, data: Uint8Array | null): Uint8Array {
  const payload = data ?? new Uint8Array(0);
  const body = new Uint8Array(9 + payload.length);
  const view = new DataView(body.buffer);
  body[0] = sub;
  u32(view, 1, a);
  u32(view, 5, b);
  body.set(payload, 9);
  const reply = host(OP.FLASH, body);
  if (reply[0] !== 1) throw new Error(textOf(reply.subarray(1)));
  return reply.subarray(1);
}

class Flash {
  readonly blockSize: number;
  readonly byteLength: number;
  constructor(partition: string) {
    if (partition !== "storage") throw new Error("can't find partition");
    const info = flashCall(SUB.INFO, 0, 0, null);
    const view = new DataView(info.buffer, info.byteOffset, 8);
    this.blockSize = view.getUint32(0, true);
    this.byteLength = view.getUint32(4, true);
  }
  erase(sector: number): void {
    flashCall(SUB.ERASE, sector, 0, null);
  }
  read(offset: number, byteLength: number): ArrayBuffer {
    return flashCall(SUB.READ, offset, byteLength, null).slice().buffer;
  }
  write(offset: number, byteLength: number, buffer: ArrayBuffer): void {
    if (!(buffer instanceof ArrayBuffer)) throw new TypeError("shim: Flash.write wants an ArrayBuffer");
    flashCall(SUB.WRITE, offset, byteLength, new Uint8Array(buffer, 0, byteLength));
  }
}

const g = globalThis as unknown as Record<string, unknown>;
g.__pkModdable = { Serial, I2C, Timer, Flash };
g.System = {
  restart(): never {
    state.restarts++;
    return haltForReboot();
  },
};
Date.now = (): number => EPOCH_MS + clock.now;

installShim({
  deliver(bytes: Uint8Array): void {
    for (const s of liveSerials) s.deliver(bytes);
  },
  reset(): void {
    for (const s of liveSerials) s.close();
    liveSerials = [];
    liveI2c = [];
  },
  state: () => state,
});

