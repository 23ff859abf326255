// XS side of the target tests: Espruino's globals, as far as the Espruino target uses them, built
// on the Node test (issueCommand) and a virtual clock. Not shipped; runs in xsnap only.
// Fidelity points that the target relies on, taken from Espruino's behaviour:
// - Serial `data` events give strings (here in chunks of at most 32 characters);
// - I2C1.writeTo / readFrom THROW on NACK;
// - clearTimeout of an id that is not pending throws "Unknown Timeout";
// - Storage (on the Node side, targets_host.ts) follows jsfWriteFile: offset 0 re-creates a file,
//   in-place writes need the bytes to read 0xFF, erased files use space until compact();
// - E.reboot never returns (a reset): the shim unwinds the stack and stops every timer.

import { OP, ascii, clock, haltForReboot, host, installShim, textOf, u32 } from "./targets_shim_common.ts";

type Bytes = Uint8Array | string | number[];

function bytesOf(data: Bytes): Uint8Array {
  if (typeof data === "string") return ascii(data);
  if (data instanceof Uint8Array) return data.slice();
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] & 255;
  return out;
}

function timeTag(view: DataView): void {
  view.setFloat64(0, clock.now, true);
}

const state = {
  serialSetup: [] as unknown[],
  i2cSetup: [] as unknown[],
  console: "default" as unknown,
  consoleForced: false,
  watchdogS: 0,
  watchdogAuto: null as boolean | null,
  kicks: 0,
  random: 0x2545f491,
};

let serialListeners: ((s: string) => void)[] = [];

const Serial1 = {
  setup(baud: number, options: unknown): void {
    state.serialSetup.push({ baud, options });
  },
  on(event: string, cb: (s: string) => void): void {
    if (event === "data") serialListeners.push(cb);
  },
  write(data: Bytes): void {
    host(OP.SERIAL_OUT, bytesOf(data));
  },
};

const I2C1 = {
  setup(options: unknown): void {
    state.i2cSetup.push(options);
  },
  writeTo(address: number, data: Bytes): void {
    const bytes = bytesOf(data);
    const body = new Uint8Array(9 + bytes.length);
    timeTag(new DataView(body.buffer));
    body[8] = address;
    body.set(bytes, 9);
    if (host(OP.I2C_WRITE, body)[0] !== 1) throw new Error("I2C Error: got NACK");
  },
  readFrom(address: number, quantity: number): Uint8Array {
    const body = new Uint8Array(11);
    const view = new DataView(body.buffer);
    timeTag(view);
    body[8] = address;
    view.setUint16(9, quantity, true);
    const reply = host(OP.I2C_READ, body);
    if (reply[0] !== 1) throw new Error("I2C Error: got NACK");
    return reply.slice(1);
  },
};

const E = {
  enableWatchdog(timeout: number, isAuto: boolean): void {
    state.watchdogS = timeout;
    state.watchdogAuto = isAuto;
  },
  kickWatchdog(): void {
    state.kicks++;
  },
  reboot(): never {
    return haltForReboot();
  },
  getErrorFlags(): string[] {
    return [];
  },
  hwRand(): number {
    // xorshift32: deterministic.
    let x = state.random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    state.random = x >>> 0;
    return x | 0;
  },
  setConsole(device: unknown, options?: { force?: boolean }): void {
    state.console = device;
    state.consoleForced = options !== undefined && options.force === true;
  },
};

// ---- Storage: each call goes to the Node side (status 0: false/undefined, 1: ok, 2: throws)

const SUB = { WRITE: 1, READ: 2, ERASE: 3, LIST: 4, COMPACT: 5, GET_FREE: 6 } as const;

function storageCall(sub: number, name: string, a: number, b: number, data: Uint8Array | null): Uint8Array | null {
  const n = ascii(name);
  const payload = data ?? new Uint8Array(0);
  const body = new Uint8Array(2 + n.length + 8 + payload.length);
  const view = new DataView(body.buffer);
  body[0] = sub;
  body[1] = n.length;
  body.set(n, 2);
  u32(view, 2 + n.length, a);
  u32(view, 6 + n.length, b);
  body.set(payload, 10 + n.length);
  const reply = host(OP.STORAGE, body);
  if (reply[0] === 2) throw new Error(textOf(reply.subarray(1)));
  return reply[0] === 1 ? reply.subarray(1) : null;
}

const Storage = {
  write(name: string, data: Bytes, offset?: number, size?: number): boolean {
    return storageCall(SUB.WRITE, name, offset ?? 0, size ?? 0, bytesOf(data)) !== null;
  },
  read(name: string, offset?: number, length?: number): string | undefined {
    const r = storageCall(SUB.READ, name, offset ?? 0, length ?? 0, null);
    return r === null ? undefined : textOf(r);
  },
  readArrayBuffer(name: string): ArrayBuffer | undefined {
    const r = storageCall(SUB.READ, name, 0, 0, null);
    return r === null ? undefined : r.slice().buffer;
  },
  erase(name: string): void {
    storageCall(SUB.ERASE, name, 0, 0, null);
  },
  list(): string[] {
    const r = storageCall(SUB.LIST, "", 0, 0, null);
    const text = r === null ? "" : textOf(r);
    return text === "" ? [] : text.split("\n");
  },
  compact(): void {
    storageCall(SUB.COMPACT, "", 0, 0, null);
  },
  getFree(): number {
    const r = storageCall(SUB.GET_FREE, "", 0, 0, null);
    return r === null ? 0 : new DataView(r.buffer, r.byteOffset, 4).getUint32(0, true);
  },
};

// ---- the globals

const g = globalThis as unknown as Record<string, unknown>;
g.global = globalThis;
g.Serial1 = Serial1;
g.I2C1 = I2C1;
g.E = E;
g.getTime = (): number => clock.now / 1000;
g.setTimeout = (cb: () => void, ms: number): number => clock.set(cb, ms);
g.clearTimeout = (id: number): void => {
  if (!clock.clear(id)) throw new Error("Unknown Timeout");
};
g.require = (name: string): unknown => {
  if (name === "Storage") return Storage;
  throw new Error('Module "' + name + '" not found');
};
g.process = {
  memory(): { free: number; usage: number; total: number; blocksize: number } {
    return { free: 9000, usage: 3000, total: 12000, blocksize: 14 };
  },
};
g.console = {
  log(text: unknown): void {
    host(OP.LOG, ascii(String(text)));
  },
};

installShim({
  deliver(bytes: Uint8Array): void {
    // Espruino hands serial input to `data` listeners as strings, in chunks.
    for (let at = 0; at < bytes.length; at += 32) {
      const chunk = textOf(bytes.subarray(at, at + 32));
      for (const cb of serialListeners) cb(chunk);
    }
  },
  reset(): void {
    serialListeners = [];
  },
  state: () => state,
});
