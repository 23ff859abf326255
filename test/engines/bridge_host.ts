// The host side of the bridge target (device/targets/xs_bridge/main.ts): the chip models and the
// flash behind the firmware's issueCommand calls, and one driver API over two engines: XS through
// xsnap, and Node running the very same bundle in a vm context.

import { createContext, runInContext } from "node:vm";
import { SimFlash } from "../../simulator/models/flash.ts";
import { SimI2cBus } from "../../simulator/models/i2c_bus.ts";
import { Atecc608Model } from "../../simulator/models/atecc608.ts";
import { startXs, type XsMeter, type XsWorker } from "../helpers/xs_harness.ts";
import { mulberry32 } from "../../protocol/node/random_messages.ts";

export interface BridgeOptions {
  pages?: number;
  pageSize?: number;
  seed?: number;
}

/** The hardware outside the firmware: flash, the I2C bus with its secure element, the link. */
export class BridgeHardware {
  readonly flash: SimFlash;
  readonly bus = new SimI2cBus();
  readonly se: Atecc608Model;
  /** Everything the device wrote to its host link, in order. */
  readonly linkOut: Uint8Array[] = [];
  readonly logs: string[] = [];
  rebootRequests: number[] = [];
  time = 0;
  private readonly rand: () => number;

  constructor(readonly options: BridgeOptions = {}) {
    this.flash = new SimFlash({ pageSize: options.pageSize ?? 1024, pageCount: options.pages ?? 8 });
    this.rand = mulberry32(options.seed ?? 1);
    const rand = this.rand;
    this.se = new Atecc608Model({
      now: () => this.time,
      randomBytes: (n) => {
        const b = new Uint8Array(n);
        for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
        return b;
      },
    });
    this.bus.attach(0x60, this.se);
  }

  /** Answers one issueCommand from the firmware. */
  handle(msg: Uint8Array): Uint8Array {
    const op = msg[0];
    const b = msg.subarray(1);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    switch (op) {
      case 1:
        return new Uint8Array([this.bus.write(b[0], b.slice(1)) ? 1 : 0]);
      case 2: {
        const r = this.bus.read(b[0], b[1]);
        if (r === null) return new Uint8Array([0]);
        const out = new Uint8Array(r.length + 1);
        out[0] = 1;
        out.set(r, 1);
        return out;
      }
      case 3:
        return this.flash.read(dv.getUint16(0), dv.getUint32(2), dv.getUint32(6));
      case 4:
        try {
          this.flash.program(dv.getUint16(0), dv.getUint32(2), b.slice(6));
          return new Uint8Array([0]);
        } catch {
          return new Uint8Array([1]);
        }
      case 5:
        try {
          this.flash.erase(dv.getUint16(0));
          return new Uint8Array([0]);
        } catch {
          return new Uint8Array([1]);
        }
      case 6:
        this.linkOut.push(b.slice());
        return new Uint8Array(0);
      case 7:
        this.logs.push(Buffer.from(b).toString("latin1"));
        return new Uint8Array(0);
      case 8:
        this.rebootRequests.push(b[0]);
        this.se.powerCycle();
        return new Uint8Array(0);
      case 9: {
        const out = new Uint8Array(4);
        new DataView(out.buffer).setUint32(0, Math.floor(this.rand() * 4294967296));
        return out;
      }
      case 10:
        this.time = dv.getUint32(0) * 4294967296 + dv.getUint32(4);
        return new Uint8Array(0);
    }
    throw new Error(`bridge: unknown op ${op}`);
  }

  linkBytes(): Buffer {
    return Buffer.concat(this.linkOut);
  }
}

/** One engine running the bridge bundle. */
export interface BridgeEngine {
  readonly name: string;
  /** Sends a host->device command; resolves with the XS meter (zeros on Node). */
  send(msg: Uint8Array): Promise<XsMeter>;
  close(): Promise<void>;
}

function checkReply(name: string, reply: Uint8Array): void {
  if (reply.length > 0 && reply[0] === 1) throw new Error(`${name}: ${Buffer.from(reply.subarray(1)).toString("latin1")}`);
}

export async function xsEngine(code: string, hw: BridgeHardware): Promise<BridgeEngine & { worker: XsWorker; bootMeter: XsMeter }> {
  const worker = await startXs({ name: "bridge", onHostCommand: (m) => hw.handle(m) });
  const bootMeter = await worker.evaluate(code);
  return {
    name: "xs",
    worker,
    bootMeter,
    async send(msg) {
      const r = await worker.command(msg);
      checkReply("xs", r.reply);
      return r.meter;
    },
    close: () => worker.close(),
  };
}

export function nodeEngine(code: string, hw: BridgeHardware): BridgeEngine {
  const sandbox: Record<string, unknown> = {
    issueCommand: (ab: ArrayBuffer) => {
      const r = hw.handle(new Uint8Array(ab));
      return r.buffer.slice(r.byteOffset, r.byteOffset + r.byteLength);
    },
  };
  sandbox.globalThis = sandbox;
  const ctx = createContext(sandbox);
  runInContext(code, ctx);
  const handle = sandbox.handleCommand as (m: ArrayBuffer) => ArrayBuffer;
  const zero: XsMeter = { compute: 0, allocate: 0, currentHeapCount: 0 };
  return {
    name: "node",
    async send(msg) {
      const copy = msg.slice();
      checkReply("node", new Uint8Array(handle(copy.buffer)));
      return zero;
    },
    async close() {},
  };
}

// Host -> device messages of the bridge protocol.
export const bridgeMsg = {
  deliver: (bytes: Uint8Array): Uint8Array => Uint8Array.from([1, ...bytes]),
  advance(ms: number): Uint8Array {
    const b = new Uint8Array(5);
    b[0] = 2;
    new DataView(b.buffer).setUint32(1, ms);
    return b;
  },
  connection: (up: boolean): Uint8Array => Uint8Array.from([3, up ? 1 : 0]),
  boot(o: { reset: number; wallMs: number; pages: number; pageSize: number; role: number; serial: string }): Uint8Array {
    const serial = Buffer.from(o.serial, "latin1");
    const b = new Uint8Array(15 + serial.length);
    const dv = new DataView(b.buffer);
    b[0] = 4;
    b[1] = o.reset;
    dv.setUint32(2, Math.floor(o.wallMs / 4294967296));
    dv.setUint32(6, o.wallMs % 4294967296);
    dv.setUint16(10, o.pages);
    dv.setUint16(12, o.pageSize);
    b[14] = o.role;
    b.set(serial, 15);
    return b;
  },
  record: (kind: number, payload: Uint8Array): Uint8Array => Uint8Array.from([5, kind, ...payload]),
  health: (): Uint8Array => Uint8Array.from([6]),
};
