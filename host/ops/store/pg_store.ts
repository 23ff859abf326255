// PostgreSQL as the operations console's store, for where one machine is outgrown: several console
// instances (sharing the broker's stream through MQTT shared subscriptions) write and read one
// database. Same tables and semantics as the SQLite store (sqlite_store.ts): records stored once per
// (device, seq) with the same PutResult counts, the chain top, health history and the latest health
// by receive time, device states, quarantine, election definitions. Node only.
//
// Why synchronous. OpsStore is synchronous: it was shaped on better-sqlite3, and ingest, the views,
// the alerts and the reports call it without awaiting. `pg` is asynchronous, so each call runs in a
// worker thread that owns the `pg` client (pg_worker.mjs) and this thread blocks on the answer
// (synckit: postMessage, then Atomics.wait until the worker has answered). transaction(fn) holds a
// BEGIN on the worker's client while fn's calls run, then COMMIT (or ROLLBACK when fn throws);
// nested transactions are savepoints. One worker serves every PgStore of a thread (synckit keeps one
// per file), each store with its own connection; it runs without a TypeScript loader (.mjs).
//
// What it costs. Every call is a thread hop plus its round trips to the server, and this thread
// does nothing else meanwhile: no MQTT, no HTTP. Measured here (2 cores, server on the same
// machine): recordBytes about 0.3 ms a call against a few microseconds on SQLite; 15,000 records in
// batches of 500 about 1 s against 0.3 s. So calls are batched: putRecords is one INSERT of every
// row (unnest of column arrays, ON CONFLICT DO NOTHING ... RETURNING), putHealth and quarantine one
// INSERT each, and an ingest batch (records, health, quarantine, device states) is one transaction.
// What stays per item is ingest's replay check (recordBytes, one hop and one indexed read per
// record message; skipped through mayHaveRecord for new seqs when the console is the only writer)
// and the station views' per-device reads at a full reload. Hot statements are
// prepared once per connection (named statements; a pooler in front must support them, e.g.
// PgBouncer 1.21+ with max_prepared_statements). A server that does not answer blocks this thread
// until CALL_TIMEOUT_MS, then the call throws; a connection that drops is opened again by the next
// call outside a transaction (inside one, the transaction fails and says so).
//
// Several consoles on one database. The device_state rows are what their batches contend for, so
// within a transaction the calls only note their effect on the states, and the worker applies it
// just before COMMIT: it locks every touched state row in one statement, in device id order, then
// computes the chain tops (seeing every record another console committed before) and updates the
// rows. Consoles' batches thus never deadlock on state rows. Two consoles inserting the same
// (device, seq) at once (an agent's resend delivered to the other one) can still deadlock on the
// records' key: PostgreSQL aborts one, and transaction(fn) runs fn again (up to TX_ATTEMPTS times,
// after a short random wait), so fn must be safe to repeat (ingest's batch write is: it writes what
// it was given).
//
// The chain top follows prev_seq from the stored top over every stored record of the device (the
// SQLite store's loop, as one recursive query); for a journal's records (each prev_seq the seq of an
// earlier record) this is the same top the SQLite store computes.
//
// Schema: CREATE TABLE IF NOT EXISTS at open, under an advisory lock (consoles starting together).
// Text keys use the "C" collation so lists sort by bytes, as in SQLite. Times and seqs are int8,
// health JSON is jsonb, bytes are bytea.

import { fileURLToPath } from "node:url";
import { createSyncFn } from "synckit";
import type { DeviceState, HealthSample, OpsStore, PutResult, QuarantineEntry, RegisteredDevice, StoredElection, StoredRecord } from "./store.ts";

/** A call that gets no answer within this long throws (the server or the worker is stuck). */
export const CALL_TIMEOUT_MS = 60_000;
/** Attempts of a transaction that PostgreSQL aborts for a deadlock or a serialization failure. */
export const TX_ATTEMPTS = 10;

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Before attempt n (2, 3, ...): a random wait that grows, so two consoles that collided do not collide again in step. */
function backoff(attempt: number): void {
  Atomics.wait(pause, 0, 0, Math.random() * Math.min(200, 10 * 2 ** attempt));
}

const WORKER = fileURLToPath(new URL("./pg_worker.mjs", import.meta.url));

type WorkerCall = (op: string, handle: number, args: unknown[]) => Promise<unknown>;
let bridge: ((op: string, handle: number, args: unknown[]) => unknown) | null = null;

function call(op: string, handle: number, args: unknown[]): unknown {
  // One worker per thread (synckit keeps one per file); no TypeScript loader in it.
  bridge ??= createSyncFn<WorkerCall>(WORKER, { timeout: CALL_TIMEOUT_MS, execArgv: [] });
  return bridge(op, handle, args);
}

export interface PgStoreOptions {
  /** application_name on the server (default "pollkit-ops"). */
  applicationName?: string;
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * The tables' schema (created if missing; lower-case letters, digits, _). Default: the user's
   * search_path, normally "public". Lets one database hold several stores (tests, staging).
   */
  schema?: string;
}

/** A URL for messages and logs: the password replaced by "***". */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ":***@");
  }
}

/** The bytes alone: a view into a bigger buffer would be copied whole to the worker. */
function own(u: Uint8Array): Uint8Array {
  return u.byteOffset === 0 && u.byteLength === u.buffer.byteLength ? u : u.slice();
}

function isDeadlockOrSerialization(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "40P01" || code === "40001";
}

export class PgStore implements OpsStore {
  /** The connection URL without its password. */
  readonly url: string;
  private readonly handle: number;
  private closed = false;
  private depth = 0;
  /** Transactions run again after a deadlock or a serialization failure, since open. */
  txRetries = 0;
  /** Per device: the highest seq stored, as far as this instance knows (see mayHaveRecord). */
  private readonly maxSeqKnown = new Map<string, number>();

  /** `url`: postgres://user:password@host:port/database (a unix socket: ?host=/dir). Creates the tables. */
  constructor(url: string, options: PgStoreOptions = {}) {
    if (!/^postgres(ql)?:\/\//.test(url)) throw new Error(`not a PostgreSQL URL: ${redactUrl(url)} (postgres://user@host:port/database)`);
    this.url = redactUrl(url);
    this.handle = call("open", 0, [url, options]) as number;
  }

  private run<T>(op: string, ...args: unknown[]): T {
    if (this.closed) throw new Error(`PostgreSQL store ${op}: the store is closed`);
    return call(op, this.handle, args) as T;
  }

  upsertDevices(devices: RegisteredDevice[]): void {
    if (devices.length) this.run("upsertDevices", devices);
  }

  device(deviceId: string): RegisteredDevice | null {
    return this.run("device", deviceId);
  }

  devices(): RegisteredDevice[] {
    return this.run("devices");
  }

  putRecords(records: StoredRecord[]): PutResult {
    if (records.length === 0) return { inserted: 0, duplicates: 0 };
    const res = this.run<PutResult>("putRecords", records.map((r) => ({ ...r, bytes: own(r.bytes) })));
    // Inserted or already there: stored either way.
    for (const r of records) {
      const known = this.maxSeqKnown.get(r.deviceId);
      if (known !== undefined && r.seq > known) this.maxSeqKnown.set(r.deviceId, r.seq);
    }
    return res;
  }

  recordBytes(deviceId: string, seq: number): Uint8Array | null {
    return this.run("recordBytes", deviceId, seq);
  }

  /**
   * False only when (deviceId, seq) is certainly not stored: seq is above the device's highest
   * stored seq as this instance knows it (read once per device, then raised by putRecords; a
   * rolled-back batch only leaves it too high, which answers true). Exact as long as no other
   * console writes records to the same database; ingest uses it (to skip recordBytes, one round
   * trip per message) only when it has no shared subscription. As SqliteOpsStore.mayHaveRecord.
   */
  mayHaveRecord(deviceId: string, seq: number): boolean {
    let m = this.maxSeqKnown.get(deviceId);
    if (m === undefined) {
      m = this.run<number>("maxSeq", deviceId);
      this.maxSeqKnown.set(deviceId, m);
    }
    return seq <= m;
  }

  records(filter: { deviceId?: string; kind?: number; sinceMs?: number; limit?: number }): StoredRecord[] {
    return this.run("records", { deviceId: filter.deviceId, kind: filter.kind, sinceMs: filter.sinceMs, limit: filter.limit });
  }

  latestRecordPerDevice(kinds: number[], deviceIds?: Iterable<string>): StoredRecord[] {
    return this.run("latestRecordPerDevice", kinds, deviceIds === undefined ? null : [...deviceIds]);
  }

  recordsAfter(deviceId: string, afterSeq: number, kinds: number[]): StoredRecord[] {
    return this.run("recordsAfter", deviceId, afterSeq, kinds);
  }

  putHealth(samples: HealthSample[]): void {
    if (samples.length) this.run("putHealth", samples);
  }

  healthHistory(deviceId: string, sinceMs: number, limit: number): HealthSample[] {
    return this.run("healthHistory", deviceId, sinceMs, limit);
  }

  setOnline(deviceId: string, online: boolean, atMs: number, firmwareVersion?: string): void {
    this.run("setOnline", deviceId, online, atMs, firmwareVersion ?? null);
  }

  deviceStates(): DeviceState[] {
    return this.run("deviceStates");
  }

  putElections(elections: StoredElection[]): void {
    if (elections.length) {
      this.run(
        "putElections",
        elections.map((e) => ({ ...e, definition: own(e.definition), artifact: e.artifact ? own(e.artifact) : null })),
      );
    }
  }

  elections(): StoredElection[] {
    return this.run("elections");
  }

  quarantine(entries: QuarantineEntry[]): void {
    if (entries.length) this.run("quarantine", entries.map((q) => ({ ...q, payload: own(q.payload) })));
  }

  quarantined(filter: { reason?: string; limit?: number }): QuarantineEntry[] {
    return this.run("quarantined", { reason: filter.reason, limit: filter.limit });
  }

  quarantineCounts(): Record<string, number> {
    return this.run("quarantineCounts");
  }

  /**
   * Runs fn in one transaction on the server (nested: a savepoint). fn must be synchronous. An
   * outermost transaction that PostgreSQL aborts for a deadlock or a serialization failure (another
   * console writing the same devices) is run again, up to TX_ATTEMPTS times.
   */
  transaction<T>(fn: () => T): T {
    const outermost = this.depth === 0;
    for (let attempt = 1; ; attempt++) {
      this.run("begin");
      this.depth++;
      let result: T;
      try {
        result = fn();
        if (result !== null && typeof result === "object" && typeof (result as { then?: unknown }).then === "function") {
          throw new TypeError("PostgreSQL store transaction: fn returned a promise; transactions run synchronous functions only");
        }
      } catch (e) {
        this.depth--;
        try {
          this.run("rollback");
        } catch {
          // the first error is the one to report
        }
        if (outermost && attempt < TX_ATTEMPTS && isDeadlockOrSerialization(e)) {
          this.txRetries++;
          backoff(attempt + 1);
          continue;
        }
        throw e;
      }
      this.depth--;
      try {
        this.run("commit");
      } catch (e) {
        if (outermost && attempt < TX_ATTEMPTS && isDeadlockOrSerialization(e)) {
          this.txRetries++;
          backoff(attempt + 1);
          continue;
        }
        throw e;
      }
      return result;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    call("close", this.handle, []);
  }
}
