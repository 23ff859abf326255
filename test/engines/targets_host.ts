// Node side of the target tests (test/engines/targets_xs.test.ts): the hardware behind the engine
// shims that run in XS (targets_espruino_shim.ts, targets_moddable_shim.ts), and the builds of
// the scripts that XS evaluates.
//
// Calls from XS (issueCommand; first byte = op, see targets_shim_common.ts), all little-endian:
//   1 SERIAL_OUT  bytes                                  -> the host's frame decoder; reply empty
//   2 I2C_WRITE   f64 time | u8 address | bytes          -> [1 ACK | 0 NACK]
//   3 I2C_READ    f64 time | u8 address | u16 length     -> [1, bytes] | [0] (NACK)
//   4 LOG         text (console.log)                     -> kept in `logs`
//   5 STORAGE     u8 sub | u8 name length | name | u32 a | u32 b | data   (Espruino Storage)
//                 sub 1 write(name, data, offset a, size b), 2 read(name, offset a, length b),
//                 3 erase, 4 list, 5 compact, 6 getFree
//                 -> [0] false / undefined, [1, bytes] ok, [2, text] the call throws `text`
//   6 FLASH       u8 sub | u32 a | u32 b | data          (Moddable flash, offsets in the partition)
//                 sub 1 read(offset a, length b), 2 write(offset a, length b, data), 3 erase(sector a),
//                 4 info -> [1, u32 blockSize, u32 byteLength]; errors [2, text]
//   7 REBOOT      the device reset itself
//   8 ERROR       text: an exception escaped device code (the engine would print it and go on)
// The time in the I2C calls is the shim's virtual clock: it is the secure element model's `now`.

import { build, type Plugin } from "esbuild";
import { fileURLToPath } from "node:url";
import { encodeFrame, FrameDecoder } from "../../protocol/framing.ts";
import { Envelope } from "../../protocol/node/schema.ts";
import { mulberry32 } from "../../protocol/node/random_messages.ts";
import { SimFlash } from "../../simulator/models/flash.ts";
import { SimI2cBus } from "../../simulator/models/i2c_bus.ts";
import { Atecc608Model } from "../../simulator/models/atecc608.ts";
import { PowerPlant } from "../../simulator/models/power_plant.ts";
import type { XsWorker } from "../helpers/xs_harness.ts";

export type Env = Record<string, Record<string, unknown> | undefined>;

const OP = { SERIAL_OUT: 1, I2C_WRITE: 2, I2C_READ: 3, LOG: 4, STORAGE: 5, FLASH: 6, REBOOT: 7, ERROR: 8 } as const;

const latin1 = (b: Uint8Array): string => Buffer.from(b).toString("latin1");
const ok = (bytes?: Uint8Array): Uint8Array => {
  const out = new Uint8Array(1 + (bytes?.length ?? 0));
  out[0] = 1;
  if (bytes) out.set(bytes, 1);
  return out;
};
const fail = (message: string): Uint8Array => new Uint8Array(Buffer.concat([Buffer.of(2), Buffer.from(message, "latin1")]));

// ---------------------------------------------------------------------------------------------
// Espruino Storage, as jsfWriteFile / jsfReadFile behave (Espruino src/jsflash.c)

/** Bytes of flash a file takes: its header (size + 28-byte name) and its data, word-aligned. */
const fileCost = (size: number): number => 32 + ((size + 3) & ~3);

export class SimEspruinoStorage {
  readonly files = new Map<string, Uint8Array>();
  /** Bytes of erased or replaced files, reclaimed by compact(). */
  trash = 0;
  compactions = 0;

  constructor(readonly capacity: number) {}

  private used(): number {
    let n = 0;
    for (const f of this.files.values()) n += fileCost(f.length);
    return n;
  }

  getFree(): number {
    return this.capacity - this.used() - this.trash;
  }

  write(name: string, data: Uint8Array, offset: number, sizeArg: number): boolean {
    if (name.length === 0 || name.length > 28) throw new Error(`Storage: bad file name "${name}"`);
    if (offset < 0 || sizeArg < 0 || data.length === 0) return false;
    const size = sizeArg === 0 ? data.length : sizeArg;
    let file = this.files.get(name);
    if (offset === 0 && (!file || file.length !== size || !file.every((b) => b === 0xff))) {
      // A write at offset 0 (re-)creates the file, unless it is the same data once more.
      if (file && file.length === size && data.length === size && file.every((b, i) => b === data[i])) return true;
      if (file) {
        this.trash += fileCost(file.length);
        this.files.delete(name);
      }
      if (this.getFree() < fileCost(size)) throw new Error("Unable to find or create file");
      file = new Uint8Array(size).fill(0xff);
      this.files.set(name, file);
    }
    if (!file) throw new Error("Unable to find or create file");
    if (offset + data.length > file.length) throw new Error("Too much data for file size");
    for (let i = 0; i < data.length; i++) {
      if (file[offset + i] !== 0xff) throw new Error("File already written with different data");
    }
    file.set(data, offset);
    return true;
  }

  read(name: string, offsetArg: number, lengthArg: number): Uint8Array | undefined {
    const file = this.files.get(name);
    if (!file) return undefined;
    const offset = Math.min(offsetArg, file.length);
    let length = lengthArg <= 0 ? file.length : lengthArg;
    if (offset + length > file.length) length = file.length - offset;
    return file.slice(offset, offset + Math.max(0, length));
  }

  erase(name: string): void {
    const file = this.files.get(name);
    if (!file) return;
    this.trash += fileCost(file.length);
    this.files.delete(name);
  }

  compact(): void {
    this.trash = 0;
    this.compactions++;
  }
}

// ---------------------------------------------------------------------------------------------

export interface TargetsHostOptions {
  /** Deterministic keys and random numbers in the secure element model. */
  seed: number;
  storageBytes?: number;
  flashPageSize?: number;
  flashPages?: number;
}

export class TargetsHost {
  /** Virtual milliseconds, as last reported by the shim in an I2C call. */
  now = 0;
  readonly bus = new SimI2cBus();
  readonly se: Atecc608Model;
  /** Charger (BQ25895), fuel gauge (MAX17048) and cell on the bus, on the shim's virtual clock. */
  readonly power: PowerPlant;
  readonly storage: SimEspruinoStorage;
  readonly flash: SimFlash;
  readonly received: Env[] = [];
  readonly consoles: string[] = [];
  readonly frameErrors: { code: number; detail: string }[] = [];
  readonly logs: string[] = [];
  /** Exceptions that escaped device code in XS: a passing run has none. */
  readonly deviceErrors: string[] = [];
  /** Host-side failures while answering XS. */
  readonly hostErrors: string[] = [];
  serialBytesOut = 0;
  reboots = 0;
  private readonly decoder: FrameDecoder;

  constructor(options: TargetsHostOptions) {
    const rnd = mulberry32(options.seed);
    this.se = new Atecc608Model({
      now: () => this.now,
      randomBytes: (n) => {
        const out = new Uint8Array(n);
        for (let i = 0; i < n; i++) out[i] = Math.floor(rnd() * 256);
        return out;
      },
    });
    this.bus.attach(0x60, this.se);
    this.power = new PowerPlant({ now: () => this.now });
    this.power.attach(this.bus);
    this.storage = new SimEspruinoStorage(options.storageBytes ?? 64 * 1024);
    this.flash = new SimFlash({ pageSize: options.flashPageSize ?? 4096, pageCount: options.flashPages ?? 12, seed: options.seed });
    this.decoder = new FrameDecoder({
      onFrame: (p) => {
        const msg = Envelope.decode(p);
        this.received.push(Envelope.toObject(msg, { longs: Number, bytes: Array, defaults: false }) as Env);
      },
      onConsole: (t) => this.consoles.push(t),
      onError: (code, detail) => this.frameErrors.push({ code, detail }),
    });
  }

  /** The xsnap onHostCommand handler. */
  readonly handle = (message: Uint8Array): Uint8Array => {
    try {
      return this.dispatch(message);
    } catch (e) {
      this.hostErrors.push(String(e));
      throw e;
    }
  };

  private dispatch(m: Uint8Array): Uint8Array {
    const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
    const body = m.subarray(1);
    switch (m[0]) {
      case OP.SERIAL_OUT:
        this.serialBytesOut += body.length;
        this.decoder.pushBytes(body);
        return new Uint8Array(0);
      case OP.I2C_WRITE: {
        this.now = Math.max(this.now, view.getFloat64(1, true));
        return Uint8Array.of(this.bus.write(m[9], m.subarray(10)) ? 1 : 0);
      }
      case OP.I2C_READ: {
        this.now = Math.max(this.now, view.getFloat64(1, true));
        const r = this.bus.read(m[9], view.getUint16(10, true));
        return r ? ok(r) : Uint8Array.of(0);
      }
      case OP.LOG:
        this.logs.push(latin1(body));
        return new Uint8Array(0);
      case OP.STORAGE:
        return this.storageCall(body);
      case OP.FLASH:
        return this.flashCall(body);
      case OP.REBOOT:
        this.reboots++;
        return new Uint8Array(0);
      case OP.ERROR:
        this.deviceErrors.push(latin1(body));
        return new Uint8Array(0);
      default:
        throw new Error(`unknown op ${m[0]} from XS`);
    }
  }

  private storageCall(b: Uint8Array): Uint8Array {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const sub = b[0];
    const n = b[1];
    const name = latin1(b.subarray(2, 2 + n));
    const a = view.getUint32(2 + n, true);
    const c = view.getUint32(6 + n, true);
    const data = b.subarray(10 + n);
    const s = this.storage;
    try {
      switch (sub) {
        case 1:
          return s.write(name, data, a, c) ? ok() : Uint8Array.of(0);
        case 2: {
          const r = s.read(name, a, c);
          return r ? ok(r) : Uint8Array.of(0);
        }
        case 3:
          s.erase(name);
          return ok();
        case 4:
          return ok(new Uint8Array(Buffer.from([...s.files.keys()].join("\n"), "latin1")));
        case 5:
          s.compact();
          return ok();
        case 6: {
          const out = new Uint8Array(4);
          new DataView(out.buffer).setUint32(0, s.getFree(), true);
          return ok(out);
        }
        default:
          throw new Error(`unknown storage call ${sub}`);
      }
    } catch (e) {
      return fail(e instanceof Error ? e.message : String(e));
    }
  }

  private flashCall(b: Uint8Array): Uint8Array {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const sub = b[0];
    const a = view.getUint32(1, true);
    const c = view.getUint32(5, true);
    const f = this.flash;
    try {
      switch (sub) {
        case 1: {
          const out = new Uint8Array(c);
          for (let i = 0; i < c; ) {
            const page = Math.floor((a + i) / f.pageSize);
            const off = (a + i) % f.pageSize;
            const n = Math.min(c - i, f.pageSize - off);
            out.set(f.read(page, off, n), i);
            i += n;
          }
          return ok(out);
        }
        case 2: {
          const data = b.subarray(9, 9 + c);
          if (data.length !== c) throw new Error("write failed: short buffer");
          for (let i = 0; i < c; ) {
            const page = Math.floor((a + i) / f.pageSize);
            const off = (a + i) % f.pageSize;
            const n = Math.min(c - i, f.pageSize - off);
            f.program(page, off, data.subarray(i, i + n));
            i += n;
          }
          return ok();
        }
        case 3:
          f.erase(a);
          return ok();
        case 4: {
          const out = new Uint8Array(8);
          const v = new DataView(out.buffer);
          v.setUint32(0, f.pageSize, true);
          v.setUint32(4, f.pageSize * f.pageCount, true);
          return ok(out);
        }
        default:
          throw new Error(`unknown flash call ${sub}`);
      }
    } catch (e) {
      return fail(e instanceof Error ? e.message : String(e));
    }
  }

  // ---- driving the device

  of(kind: string): Record<string, unknown>[] {
    return this.received.filter((e) => e[kind] !== undefined).map((e) => e[kind] as Record<string, unknown>);
  }

  records(): { seq: number; kind: number }[] {
    return this.of("record") as { seq: number; kind: number }[];
  }

  clear(): void {
    this.received.length = 0;
    this.consoles.length = 0;
  }

  async advance(xs: XsWorker, ms: number): Promise<void> {
    const m = new Uint8Array(5);
    m[0] = 0x41;
    new DataView(m.buffer).setUint32(1, ms, true);
    await xs.command(m);
  }

  async deliver(xs: XsWorker, bytes: Uint8Array): Promise<void> {
    const m = new Uint8Array(1 + bytes.length);
    m[0] = 0x44;
    m.set(bytes, 1);
    await xs.command(m);
  }

  async send(xs: XsWorker, env: Record<string, unknown>): Promise<void> {
    const err = Envelope.verify(env);
    if (err) throw new Error(`bad test envelope: ${err}`);
    await this.deliver(xs, encodeFrame(Envelope.encode(Envelope.fromObject(env)).finish()));
  }

  async powerOn(xs: XsWorker): Promise<void> {
    await xs.command(Uint8Array.of(0x50));
  }

  async shimState(xs: XsWorker): Promise<{ now: number; pendingTimers: number; shim: Record<string, unknown> }> {
    const r = await xs.command(Uint8Array.of(0x53));
    return JSON.parse(latin1(r.reply)) as { now: number; pendingTimers: number; shim: Record<string, unknown> };
  }
}

// ---------------------------------------------------------------------------------------------
// Scripts for XS

const HERE = fileURLToPath(new URL(".", import.meta.url));

/** The shim prelude of one engine as one script (XS only: modern syntax is fine). */
export async function buildShim(engine: "espruino" | "moddable"): Promise<string> {
  const result = await build({
    entryPoints: [`${HERE}targets_${engine}_shim.ts`],
    bundle: true,
    write: false,
    format: "iife",
    target: "es2022",
    platform: "neutral",
    logLevel: "silent",
  });
  return result.outputFiles[0].text;
}

const MODDABLE_MODULES: Record<string, string> = {
  "embedded:io/serial": "Serial",
  "embedded:io/i2c": "I2C",
  timer: "Timer",
  flash: "Flash",
};

/**
 * The shipped Moddable bundle (an ES module importing the SDK's modules) as a script XS can
 * evaluate: the same code, with each SDK import bound to the shim's class. Test only.
 */
export async function moddableBundleForXs(esm: string): Promise<string> {
  const shimModules: Plugin = {
    name: "pollkit-moddable-shim",
    setup(b) {
      b.onResolve({ filter: /^(embedded:.*|timer|flash)$/ }, (args) => ({ path: args.path, namespace: "moddable-shim" }));
      b.onLoad({ filter: /.*/, namespace: "moddable-shim" }, (args) => {
        const name = MODDABLE_MODULES[args.path];
        if (name === undefined) return { errors: [{ text: `no shim for the Moddable module "${args.path}"` }] };
        return { contents: `export default globalThis.__pkModdable.${name};`, loader: "js" };
      });
    },
  };
  const result = await build({
    stdin: { contents: esm, loader: "js", sourcefile: "moddable/main.js" },
    bundle: true,
    write: false,
    format: "iife",
    target: "esnext",
    platform: "neutral",
    logLevel: "silent",
    plugins: [shimModules],
  });
  return result.outputFiles[0].text;
}
