// A pool of worker_threads verifying device signatures (ECDSA P-256, SHA-256, r || s) with
// node:crypto, so verification (about 11,600/s per core here, DESIGN.md) uses every core while
// the main thread keeps the broker connection and the store. Node only.
//
// verify(items) packs a batch into one buffer (transferred, not copied), sends it to the worker
// with the fewest items in flight, and resolves with one boolean per item, in item order. Each
// public key is sent to a worker once and kept there as a KeyObject; a batch of more than
// `splitAbove` items is split across workers. Workers are plain .mjs (verify_worker.mjs) so they
// start without a TypeScript loader.

import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

export interface VerifyItem {
  /** P-256 public key X || Y as 128 hex characters (RegisteredDevice.publicKeyHex). */
  publicKeyHex: string;
  /** The signed bytes (SHA-256 is applied in the worker). */
  data: Uint8Array;
  /** r || s, 64 bytes; anything else fails without reaching a worker. */
  signature: Uint8Array;
}

export interface VerifyPoolOptions {
  /** Workers (default: available cores). */
  size?: number;
  /** Batches above this many items are split across workers (default 64). */
  splitAbove?: number;
}

interface Job {
  resolve: (ok: Uint8Array) => void;
  reject: (e: Error) => void;
  n: number;
}

interface Slot {
  worker: Worker;
  keysSent: Set<number>;
  jobs: Map<number, Job>;
  inFlight: number;
}

const WORKER_URL = new URL("./verify_worker.mjs", import.meta.url);

export class VerifyPool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly keyIds = new Map<string, number>();
  private readonly keyJwk: { x: string; y: string }[] = [];
  private readonly splitAbove: number;
  private nextJob = 1;
  private closed = false;
  /** Signatures checked by the workers since start. */
  verified = 0;

  constructor(options: VerifyPoolOptions = {}) {
    this.size = Math.max(1, options.size ?? availableParallelism());
    this.splitAbove = Math.max(1, options.splitAbove ?? 64);
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(WORKER_URL);
      const slot: Slot = { worker, keysSent: new Set(), jobs: new Map(), inFlight: 0 };
      worker.on("message", (m: { id: number; ok: Uint8Array }) => {
        const job = slot.jobs.get(m.id);
        if (!job) return;
        slot.jobs.delete(m.id);
        slot.inFlight -= job.n;
        this.verified += job.n;
        if (slot.inFlight === 0) worker.unref();
        job.resolve(m.ok);
      });
      const fail = (e: Error): void => {
        for (const job of slot.jobs.values()) job.reject(e);
        slot.jobs.clear();
        slot.inFlight = 0;
      };
      worker.on("error", (e) => fail(e));
      worker.on("exit", (code) => {
        if (!this.closed) fail(new Error(`verify worker exited (${code})`));
      });
      // Idle workers do not keep the process alive; a worker with jobs in flight does (ref in send).
      worker.unref();
      this.slots.push(slot);
    }
  }

  private keyId(hex: string): number {
    let id = this.keyIds.get(hex);
    if (id === undefined) {
      id = this.keyJwk.length;
      const xy = Buffer.from(hex, "hex");
      this.keyJwk.push({ x: xy.subarray(0, 32).toString("base64url"), y: xy.subarray(32, 64).toString("base64url") });
      this.keyIds.set(hex, id);
    }
    return id;
  }

  /** One boolean per item, in order. */
  async verify(items: readonly VerifyItem[]): Promise<boolean[]> {
    if (this.closed) throw new Error("verify pool is closed");
    const out = new Array<boolean>(items.length).fill(false);
    // Items that can be checked at all go to the workers; the rest stay false.
    const idx: number[] = [];
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      if (it.signature.length === 64 && it.publicKeyHex.length === 128) idx.push(i);
    }
    if (idx.length === 0) return out;
    const parts = idx.length > this.splitAbove ? Math.min(this.size, Math.ceil(idx.length / this.splitAbove)) : 1;
    const per = Math.ceil(idx.length / parts);
    const runs: Promise<void>[] = [];
    for (let p = 0; p < parts; p++) {
      const chunk = idx.slice(p * per, (p + 1) * per);
      if (chunk.length === 0) continue;
      runs.push(
        this.send(chunk.map((i) => items[i])).then((ok) => {
          for (let k = 0; k < chunk.length; k++) out[chunk[k]] = ok[k] === 1;
        }),
      );
    }
    await Promise.all(runs);
    return out;
  }

  private send(items: VerifyItem[]): Promise<Uint8Array> {
    let slot = this.slots[0];
    for (const s of this.slots) if (s.inFlight < slot.inFlight) slot = s;
    const n = items.length;
    const keys = new Uint32Array(n);
    const offs = new Uint32Array(n + 1);
    let total = 0;
    for (let i = 0; i < n; i++) total += items[i].data.length + 64;
    const buf = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const it = items[i];
      const id = this.keyId(it.publicKeyHex);
      if (!slot.keysSent.has(id)) {
        slot.worker.postMessage({ t: "key", id, ...this.keyJwk[id] });
        slot.keysSent.add(id);
      }
      keys[i] = id;
      offs[i] = at;
      buf.set(it.data, at);
      at += it.data.length;
      buf.set(it.signature, at);
      at += 64;
    }
    offs[n] = at;
    const id = this.nextJob++;
    return new Promise<Uint8Array>((resolve, reject) => {
      slot.jobs.set(id, { resolve, reject, n });
      if (slot.inFlight === 0) slot.worker.ref();
      slot.inFlight += n;
      slot.worker.postMessage({ t: "verify", id, keys, offs, buf }, [keys.buffer, offs.buffer, buf.buffer]);
    });
  }

  /** Items handed to workers and not yet answered. */
  get inFlight(): number {
    let n = 0;
    for (const s of this.slots) n += s.inFlight;
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error("verify pool closed");
    for (const s of this.slots) {
      for (const job of s.jobs.values()) job.reject(err);
      s.jobs.clear();
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
