// A model of NOR flash for the simulator and the tests: erase sets a page to 0xFF, program can only
// clear bits, wear is counted per page, and a power cut can be injected at any byte of any write.
// Node code (not firmware): it implements the platform's `Flash` interface for the Node target.
//
// Power-cut accounting ("steps"): every programmed byte is one step and every page erase is ONE
// step. `armPowerCut(k)` lets exactly k more steps complete; the next step is interrupted:
//   - inside program(): the bytes before it are programmed, the byte at the cut is, at random
//     (seeded): untouched (1 in 4), fully programmed (1 in 4), or left with a random subset of
//     the bits it should clear cleared (1 in 2); later bytes are untouched;
//   - inside erase(): the page is left in an undefined mix. A random progress P = u * u (u uniform
//     in 0..1, so early cuts are common) is drawn; each byte independently becomes 0xFF with
//     probability P, else has a random subset of its bits set (a half-erased cell) with
//     probability (1 - P) / 16, else keeps its old value. An early cut can thus leave a page
//     header intact over damaged data, or damage only a few bytes anywhere.
// The call then throws `PowerCut`, and every further read/program/erase throws `PowerCut` until
// `restorePower()` (the reboot).

import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Flash } from "../../device/platform/platform.ts";

/** Thrown from program/erase/read when the simulated supply is cut. */
export class PowerCut extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PowerCut";
  }
}

export interface SimFlashOptions {
  pageSize: number;
  pageCount: number;
  /** Seed of the generator that decides partial programming and half-erased bytes. */
  seed?: number;
}

/** A copy of the flash contents and its wear, independent of the original. */
export interface FlashSnapshot {
  pageSize: number;
  pageCount: number;
  data: Uint8Array;
  eraseCounts: Uint32Array;
}

const FILE_MAGIC = 0x46534b50; // "PKSF" little-endian
const FILE_VERSION = 1;
const FILE_HEADER = 16;

export class SimFlash implements Flash {
  readonly pageSize: number;
  readonly pageCount: number;
  private readonly mem: Uint8Array;
  private readonly erases: Uint32Array;
  private rng: number;
  /** Steps left before the cut, or -1 when no cut is armed. */
  private cutIn = -1;
  private powered = true;
  /** Steps (programmed bytes + erases) completed since construction. */
  steps = 0;
  programmedBytes = 0;
  eraseOps = 0;
  /** Bytes programmed over a byte that was not 0xFF (a second write without an erase). */
  reprogrammedBytes = 0;
  /** How many power cuts have fired. */
  cuts = 0;
  /** Where the last power cut struck: the operation, page and byte offset (0 for an erase). */
  lastCut: { kind: "program" | "erase"; page: number; offset: number } | null = null;

  constructor(options: SimFlashOptions) {
    const { pageSize, pageCount } = options;
    if (!Number.isInteger(pageSize) || pageSize <= 0 || !Number.isInteger(pageCount) || pageCount <= 0) {
      throw new RangeError(`SimFlash: bad geometry ${pageSize} x ${pageCount}`);
    }
    this.pageSize = pageSize;
    this.pageCount = pageCount;
    this.mem = new Uint8Array(pageSize * pageCount).fill(0xff);
    this.erases = new Uint32Array(pageCount);
    this.rng = (options.seed ?? 0x9e3779b9) >>> 0 || 1;
  }

  read(page: number, offset: number, length: number): Uint8Array {
    this.checkPower();
    const at = this.locate(page, offset, length, "read");
    return this.mem.slice(at, at + length);
  }

  program(page: number, offset: number, data: Uint8Array): void {
    this.checkPower();
    const at = this.locate(page, offset, data.length, "program");
    for (let i = 0; i < data.length; i++) {
      const old = this.mem[at + i];
      if (this.cutIn === 0) {
        const toClear = old & ~data[i] & 0xff;
        const how = this.random8() & 3;
        const cleared = how === 0 ? 0 : how === 1 ? toClear : toClear & this.random8();
        this.mem[at + i] = old & ~cleared;
        this.lastCut = { kind: "program", page, offset: offset + i };
        this.cut(`power cut while programming page ${page} offset ${offset + i}`);
      }
      if (this.cutIn > 0) this.cutIn--;
      if (old !== 0xff) this.reprogrammedBytes++;
      this.mem[at + i] = old & data[i];
      this.steps++;
      this.programmedBytes++;
    }
  }

  erase(page: number): void {
    this.checkPower();
    const at = this.locate(page, 0, this.pageSize, "erase");
    this.erases[page]++;
    if (this.cutIn === 0) {
      const u = this.random8() / 255;
      const progress = u * u;
      for (let i = 0; i < this.pageSize; i++) {
        const r = (this.random8() + 0.5) / 256;
        if (r < progress) this.mem[at + i] = 0xff;
        else if (r < progress + (1 - progress) / 16) this.mem[at + i] |= this.random8();
      }
      this.lastCut = { kind: "erase", page, offset: 0 };
      this.cut(`power cut while erasing page ${page}`);
    }
    if (this.cutIn > 0) this.cutIn--;
    this.mem.fill(0xff, at, at + this.pageSize);
    this.steps++;
    this.eraseOps++;
  }

  /** After `steps` more steps (bytes programmed, erases) complete, the next one is cut. */
  armPowerCut(steps: number, seed?: number): void {
    if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`armPowerCut: bad step count ${steps}`);
    this.cutIn = steps;
    if (seed !== undefined) this.rng = seed >>> 0 || 1;
  }

  disarmPowerCut(): void {
    this.cutIn = -1;
  }

  /** True while the supply is cut (after a PowerCut, before restorePower). */
  get powerLost(): boolean {
    return !this.powered;
  }

  restorePower(): void {
    this.powered = true;
    this.cutIn = -1;
  }

  /** Erase cycles of one page (interrupted erases count: they stress the cells too). */
  eraseCount(page: number): number {
    this.locate(page, 0, 0, "eraseCount");
    return this.erases[page];
  }

  /** Erase cycles of every page, as a copy. */
  eraseCounts(): Uint32Array {
    return this.erases.slice();
  }

  snapshot(): FlashSnapshot {
    return {
      pageSize: this.pageSize,
      pageCount: this.pageCount,
      data: this.mem.slice(),
      eraseCounts: this.erases.slice(),
    };
  }

  static fromSnapshot(snap: FlashSnapshot, seed?: number): SimFlash {
    if (snap.data.length !== snap.pageSize * snap.pageCount || snap.eraseCounts.length !== snap.pageCount) {
      throw new RangeError("SimFlash.fromSnapshot: snapshot sizes do not match its geometry");
    }
    const f = new SimFlash({ pageSize: snap.pageSize, pageCount: snap.pageCount, seed });
    f.mem.set(snap.data);
    f.erases.set(snap.eraseCounts);
    return f;
  }

  /**
   * Writes the contents and wear to a file (atomically: temp file then rename), for the device
   * runner to keep a device's flash across simulator restarts. Layout, little-endian:
   * "PKSF" magic u32, version u32, pageSize u32, pageCount u32, data, erase counts (u32 each).
   */
  saveTo(path: string): void {
    const out = new Uint8Array(FILE_HEADER + this.mem.length + 4 * this.pageCount);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, FILE_MAGIC, true);
    dv.setUint32(4, FILE_VERSION, true);
    dv.setUint32(8, this.pageSize, true);
    dv.setUint32(12, this.pageCount, true);
    out.set(this.mem, FILE_HEADER);
    const wearAt = FILE_HEADER + this.mem.length;
    for (let p = 0; p < this.pageCount; p++) dv.setUint32(wearAt + 4 * p, this.erases[p], true);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, out);
    renameSync(tmp, path);
  }

  static loadFrom(path: string, seed?: number): SimFlash {
    const raw = readFileSync(path);
    const buf = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    if (buf.length < FILE_HEADER) throw new Error(`SimFlash.loadFrom: ${path} is too short`);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    if (dv.getUint32(0, true) !== FILE_MAGIC) throw new Error(`SimFlash.loadFrom: ${path} is not a flash image`);
    const version = dv.getUint32(4, true);
    if (version !== FILE_VERSION) throw new Error(`SimFlash.loadFrom: ${path} has unknown version ${version}`);
    const pageSize = dv.getUint32(8, true);
    const pageCount = dv.getUint32(12, true);
    const size = pageSize * pageCount;
    if (buf.length !== FILE_HEADER + size + 4 * pageCount) {
      throw new Error(`SimFlash.loadFrom: ${path} has ${buf.length} bytes, expected ${FILE_HEADER + size + 4 * pageCount}`);
    }
    const eraseCounts = new Uint32Array(pageCount);
    for (let p = 0; p < pageCount; p++) eraseCounts[p] = dv.getUint32(FILE_HEADER + size + 4 * p, true);
    return SimFlash.fromSnapshot(
      { pageSize, pageCount, data: buf.slice(FILE_HEADER, FILE_HEADER + size), eraseCounts },
      seed,
    );
  }

  private checkPower(): void {
    if (!this.powered) throw new PowerCut("flash accessed while the power is cut");
  }

  private cut(message: string): never {
    this.powered = false;
    this.cutIn = -1;
    this.cuts++;
    throw new PowerCut(message);
  }

  private locate(page: number, offset: number, length: number, what: string): number {
    if (!Number.isInteger(page) || page < 0 || page >= this.pageCount) {
      throw new RangeError(`SimFlash.${what}: page ${page} out of range 0..${this.pageCount - 1}`);
    }
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.pageSize) {
      throw new RangeError(`SimFlash.${what}: bytes ${offset}..${offset + length} cross page ${page} (size ${this.pageSize})`);
    }
    return page * this.pageSize + offset;
  }

  /** xorshift32: deterministic for a given seed. */
  private random8(): number {
    let x = this.rng;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.rng = x || 1;
    return x & 0xff;
  }
}
