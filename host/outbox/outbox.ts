// The host agent's durable outbox: everything a device sends is stored here (SQLite through
// better-sqlite3 12) BEFORE the device is acknowledged, and leaves only when the MQTT broker has
// acknowledged it (QoS 1 PUBACK). A killed agent or a broker down for a day loses nothing.
//
// Durability. The database runs in WAL mode. A commit in WAL mode appends the transaction's pages
// to the -wal file; with `synchronous=NORMAL` that write is NOT fsynced at commit (only at
// checkpoints). The bytes are then in the kernel's page cache, so they survive the agent process
// being killed (SIGKILL, OOM, crash): the kernel writes them later. They do NOT survive power loss
// or a kernel panic: the most recent commits can be rolled back on the next open (the database stays
// consistent, it just forgets them). The device, though, has already been told "stored" and may
// have compacted those records from its journal, so NORMAL breaks "durable before ack" exactly in
// the case a polling station is most likely to meet (a laptop or charging rack losing power).
// `synchronous=FULL` fsyncs the WAL at every commit, so a committed put() survives power loss too
// (as far as the disk honours flushes). FULL is the default; NORMAL is an option for tests and for
// hosts on a UPS where throughput matters more. Batching many records into one put() (one
// transaction, one fsync) keeps FULL cheap.
//
// Dedupe. Every receiver drops duplicates by (device, sequence) (DESIGN.md); the outbox does too, so
// a device resending after a lost ack, or after reconnecting to this agent, does not double anything
// downstream. What has been accepted is kept per (device, channel) as a set of closed intervals of
// sequence numbers (table `seq_ranges`, rows (device, channel, lo, hi), merged when they touch):
//
// - devices send their journal in order, so a device that talks to this agent has ONE row, whose
//   `hi` grows by one per record (`UPDATE ... SET hi = seq`): the high-water mark, kept after the
//   rows themselves are sent and deleted, and across restarts (it is in the same file and the same
//   transaction as the rows);
// - a record arriving out of order (a lost frame, a resend window) opens a second interval, which
//   merges with the first as soon as the gap fills;
// - a gap that never fills (the device was acknowledged by another agent in between, e.g. the
//   technician used another laptop) costs one row per gap, forever; nothing is ever dropped as a
//   duplicate that was not actually stored: unlike "everything at or below the high-water mark is a
//   duplicate", a device first seen at seq 5000 does not make 1..4999 duplicates, and a record that
//   was skipped is still accepted when it comes.
//
// So the set is exact and compact, and lookups are one index probe. A device whose sequence numbers
// start again from 1 (which the journal guarantees never to do) would see them dropped as duplicates:
// such a device must come back under a new identity.
//
// Acknowledging a device: the device's Ack is cumulative (everything up to seq may be compacted), so
// the session must acknowledge the top of the stored run that starts at the device's lowest
// unacknowledged record, `storedThrough(device, firstUnacked)`, not `highestSeq()` when a gap exists.
//
// Group commit. With FULL, every commit costs an fsync (about 5 ms on the 2-core bench machine,
// BENCHMARKS.md "Agent"), and it blocks the agent's event loop: one transaction per device session
// per batch (256 devices x a health report every 100 ms) is far more than a disk can sync. Inside
// `commitTogether(fn)`, every put() made by fn, from any number of sessions, joins ONE transaction
// per outbox, committed (one fsync) when fn returns; the caller acknowledges only after that (the
// session's flush group does, host/session/device_session.ts). A put() that throws inside the
// group rolls back its own items only (a savepoint).
//
// Removing sent rows (markSent) and counting attempts do not need an fsync of their own: losing
// them to a power cut only makes the bridge publish those rows again, which receivers drop as
// duplicates. They commit without one (synchronous=NORMAL for that transaction); the next put's
// fsync (the WAL is one file) or a checkpoint makes them durable.
import Database from "better-sqlite3";

/** Outboxes with a transaction open in the current commitTogether() call. */
let group: Set<Outbox> | null = null;

/**
 * Runs fn; every Outbox.put() it makes joins one transaction per outbox, committed when fn
 * returns (one fsync each with FULL). Returns true when every commit succeeded; false means
 * nothing put inside fn was stored (rolled back), although those put() calls returned. Nothing
 * put inside fn is durable before this returns: acknowledge after it. Nested calls join the
 * outer group (and return true: the outer call decides).
 */
export function commitTogether(fn: () => void): boolean {
  if (group !== null) {
    fn();
    return true;
  }
  const open = new Set<Outbox>();
  group = open;
  try {
    fn();
  } catch (e) {
    group = null;
    for (const o of open) o._endGroup(false);
    throw e;
  }
  group = null;
  let ok = true;
  for (const o of open) if (!o._endGroup(true)) ok = false;
  return ok;
}

export interface OutboxItem {
  deviceId: string;
  channel: string;
  /** The device's journal sequence number (records), or null (health, hello, log: no dedupe). */
  seq: number | null;
  payload: Uint8Array;
  receivedMs: number;
}

export interface OutboxRow extends OutboxItem {
  id: number;
  /** Publishes of this row that were never acknowledged (the connection was lost first). */
  attempts: number;
}

export interface OutboxOptions {
  path: string;
  /** FULL (default): every commit is fsynced, durable against power loss. See the file comment. */
  synchronous?: "FULL" | "NORMAL";
  /** Largest payload accepted, in bytes (default 64 KiB). */
  maxPayloadBytes?: number;
}

export interface OutboxStats {
  /** Rows stored and not yet acknowledged by the broker. */
  pending: number;
  /** Rows acknowledged by the broker since the file was created. */
  sent: number;
  /** Items dropped by put() as already stored, since the file was created. */
  duplicatesDropped: number;
}

export const DEFAULT_MAX_PAYLOAD = 64 * 1024;
/** The channel whose sequence numbers highestSeq() reports. */
export const RECORD_CHANNEL = "record";
const MAX_NAME = 128;
const SCHEMA_VERSION = 1;

interface RangeRow {
  lo: number;
  hi: number;
}

interface RawRow {
  id: number;
  device: string;
  channel: string;
  seq: number | null;
  payload: Buffer;
  received_ms: number;
  attempts: number;
}

/** Device ids and channels become MQTT topic levels: no '/', no wildcards, no control characters. */
// eslint-disable-next-line no-control-regex
const BAD_NAME = /[/+#\u0000-\u001f\u007f]/;

function checkName(what: string, value: unknown, index: number): void {
  if (typeof value !== "string" || value.length === 0) {
    throw new Error(`outbox: item ${index}: ${what} must be a non-empty string`);
  }
  if (value.length > MAX_NAME) {
    throw new Error(`outbox: item ${index}: ${what} is longer than ${MAX_NAME} characters`);
  }
  if (BAD_NAME.test(value)) {
    throw new Error(`outbox: item ${index}: ${what} ${JSON.stringify(value)} contains '/', '+', '#' or a control character`);
  }
}

function toBuffer(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export class Outbox {
  private readonly db: Database.Database;
  private readonly maxPayload: number;
  private readonly stmt: {
    insert: Database.Statement<[string, string, number | null, Buffer, number]>;
    rangeAtOrBelow: Database.Statement<[string, string, number], RangeRow>;
    rangeStartingAt: Database.Statement<[string, string, number], RangeRow>;
    setHi: Database.Statement<[number, string, string, number]>;
    setLo: Database.Statement<[number, string, string, number]>;
    deleteRange: Database.Statement<[string, string, number]>;
    insertRange: Database.Statement<[string, string, number, number]>;
    highest: Database.Statement<[string, string], { hi: number | null }>;
    pending: Database.Statement<[number, number], RawRow>;
    deleteRow: Database.Statement<[number]>;
    attempt: Database.Statement<[number]>;
    count: Database.Statement<[], { n: number }>;
    addCounter: Database.Statement<[number, string]>;
    counter: Database.Statement<[string], { value: number }>;
  };
  private readonly sync: "FULL" | "NORMAL";
  private readonly putTx: (items: OutboxItem[]) => number;
  private readonly sentTx: (ids: number[]) => void;
  private readonly attemptTx: (ids: number[]) => void;

  constructor(options: OutboxOptions) {
    const sync = options.synchronous ?? "FULL";
    if (sync !== "FULL" && sync !== "NORMAL") throw new Error(`outbox: synchronous must be FULL or NORMAL, not ${String(sync)}`);
    this.sync = sync;
    this.maxPayload = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD;
    this.db = new Database(options.path);
    try {
      this.db.pragma("journal_mode = WAL");
      this.db.pragma(`synchronous = ${sync}`);
      this.db.pragma("busy_timeout = 5000");
      this.migrate();
    } catch (e) {
      this.db.close();
      throw e;
    }
    const db = this.db;
    this.stmt = {
      insert: db.prepare("INSERT INTO outbox (device, channel, seq, payload, received_ms) VALUES (?, ?, ?, ?, ?)"),
      rangeAtOrBelow: db.prepare(
        "SELECT lo, hi FROM seq_ranges WHERE device = ? AND channel = ? AND lo <= ? ORDER BY lo DESC LIMIT 1",
      ),
      rangeStartingAt: db.prepare("SELECT lo, hi FROM seq_ranges WHERE device = ? AND channel = ? AND lo = ?"),
      setHi: db.prepare("UPDATE seq_ranges SET hi = ? WHERE device = ? AND channel = ? AND lo = ?"),
      setLo: db.prepare("UPDATE seq_ranges SET lo = ? WHERE device = ? AND channel = ? AND lo = ?"),
      deleteRange: db.prepare("DELETE FROM seq_ranges WHERE device = ? AND channel = ? AND lo = ?"),
      insertRange: db.prepare("INSERT INTO seq_ranges (device, channel, lo, hi) VALUES (?, ?, ?, ?)"),
      highest: db.prepare("SELECT MAX(hi) AS hi FROM seq_ranges WHERE device = ? AND channel = ?"),
      pending: db.prepare(
        "SELECT id, device, channel, seq, payload, received_ms, attempts FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
      ),
      deleteRow: db.prepare("DELETE FROM outbox WHERE id = ?"),
      attempt: db.prepare("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?"),
      count: db.prepare("SELECT COUNT(*) AS n FROM outbox"),
      addCounter: db.prepare("UPDATE counters SET value = value + ? WHERE name = ?"),
      counter: db.prepare("SELECT value FROM counters WHERE name = ?"),
    };
    this.putTx = db.transaction((items: OutboxItem[]) => this.putInTx(items));
    this.sentTx = db.transaction((ids: number[]) => {
      let n = 0;
      for (const id of ids) n += this.stmt.deleteRow.run(id).changes;
      if (n > 0) this.stmt.addCounter.run(n, "sent");
    });
    this.attemptTx = db.transaction((ids: number[]) => {
      for (const id of ids) this.stmt.attempt.run(id);
    });
  }

  private migrate(): void {
    const version = this.db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`outbox: file schema version ${version} is newer than this agent (${SCHEMA_VERSION})`);
    }
    if (version === SCHEMA_VERSION) return;
    this.db.exec(`
      BEGIN;
      CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device TEXT NOT NULL,
        channel TEXT NOT NULL,
        seq INTEGER,
        payload BLOB NOT NULL,
        received_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE IF NOT EXISTS seq_ranges (
        device TEXT NOT NULL,
        channel TEXT NOT NULL,
        lo INTEGER NOT NULL,
        hi INTEGER NOT NULL,
        PRIMARY KEY (device, channel, lo)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
      INSERT OR IGNORE INTO counters (name, value) VALUES ('sent', 0), ('duplicates', 0);
      PRAGMA user_version = ${SCHEMA_VERSION};
      COMMIT;
    `);
  }

  private validate(items: OutboxItem[]): void {
    if (!Array.isArray(items)) throw new Error("outbox: put() takes an array of items");
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      if (typeof it !== "object" || it === null) throw new Error(`outbox: item ${i} is not an object`);
      checkName("deviceId", it.deviceId, i);
      checkName("channel", it.channel, i);
      if (it.seq !== null && (!Number.isSafeInteger(it.seq) || it.seq < 1)) {
        throw new Error(`outbox: item ${i}: seq must be null or a positive safe integer, not ${String(it.seq)}`);
      }
      if (!(it.payload instanceof Uint8Array)) throw new Error(`outbox: item ${i}: payload must be a Uint8Array`);
      if (it.payload.byteLength > this.maxPayload) {
        throw new Error(`outbox: item ${i}: payload of ${it.payload.byteLength} bytes is over the ${this.maxPayload}-byte limit`);
      }
      if (!Number.isFinite(it.receivedMs)) throw new Error(`outbox: item ${i}: receivedMs must be a finite number`);
    }
  }

  /** Records (device, channel, seq) as stored; false when it already was (a duplicate). */
  private accept(device: string, channel: string, seq: number): boolean {
    const s = this.stmt;
    const below = s.rangeAtOrBelow.get(device, channel, seq);
    if (below && below.hi >= seq) return false;
    const above = s.rangeStartingAt.get(device, channel, seq + 1);
    if (below && below.hi === seq - 1) {
      if (above) {
        s.deleteRange.run(device, channel, above.lo);
        s.setHi.run(above.hi, device, channel, below.lo);
      } else {
        s.setHi.run(seq, device, channel, below.lo);
      }
    } else if (above) {
      s.setLo.run(seq, device, channel, above.lo);
    } else {
      s.insertRange.run(device, channel, seq, seq);
    }
    return true;
  }

  private putInTx(items: OutboxItem[]): number {
    let added = 0;
    let dropped = 0;
    for (const it of items) {
      if (it.seq !== null && !this.accept(it.deviceId, it.channel, it.seq)) {
        dropped++;
        continue;
      }
      this.stmt.insert.run(it.deviceId, it.channel, it.seq, toBuffer(it.payload), Math.round(it.receivedMs));
      added++;
    }
    if (dropped > 0) this.stmt.addCounter.run(dropped, "duplicates");
    return added;
  }

  /**
   * Stores a batch in ONE transaction (one fsync with FULL); items whose (deviceId, channel, seq)
   * was already stored (seq not null), sent or not, are dropped as duplicates, including repeats
   * inside the batch. Returns how many were new. When it returns, they are durable. Bad input
   * (empty or topic-unsafe deviceId/channel, payload over the limit, bad seq) throws and stores
   * nothing of the batch.
   */
  put(items: OutboxItem[]): number {
    this.validate(items);
    if (items.length === 0) return 0;
    if (group !== null && !group.has(this) && !this.db.inTransaction) {
      this.db.exec("BEGIN IMMEDIATE");
      group.add(this);
    }
    // Inside a group the transaction is open: this one becomes a savepoint.
    return this.putTx(items);
  }

  /** Ends this outbox's commitTogether() transaction; false when it could not commit. */
  _endGroup(commit: boolean): boolean {
    if (!this.db.open || !this.db.inTransaction) return false;
    try {
      this.db.exec(commit ? "COMMIT" : "ROLLBACK");
      return commit;
    } catch {
      try {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
      } catch {
        // the connection rolled back already
      }
      return false;
    }
  }

  /** Runs a transaction that needs no fsync of its own (see the file comment). */
  private withoutSync(fn: () => void): void {
    if (this.sync !== "FULL" || this.db.inTransaction) {
      fn();
      return;
    }
    this.db.pragma("synchronous = NORMAL");
    try {
      fn();
    } finally {
      this.db.pragma("synchronous = FULL");
    }
  }

  /** Highest seq ever stored for a device on channel "record" (0 if none), sent or not. */
  highestSeq(deviceId: string): number {
    return this.stmt.highest.get(deviceId, RECORD_CHANNEL)?.hi ?? 0;
  }

  /**
   * The highest h such that every seq in [fromSeq, h] has been stored for the device on `channel`
   * (default "record"); fromSeq - 1 when fromSeq itself has not. This is what a session may
   * acknowledge to a device whose lowest unacknowledged record is fromSeq (the Ack is cumulative).
   */
  storedThrough(deviceId: string, fromSeq: number, channel: string = RECORD_CHANNEL): number {
    const r = this.stmt.rangeAtOrBelow.get(deviceId, channel, fromSeq);
    return r && r.hi >= fromSeq ? r.hi : fromSeq - 1;
  }

  /**
   * Oldest unsent rows first, up to limit, skipping ids in `exclude` (in flight) and, with
   * `afterId`, every id at or below it (rows already handed out: the caller need not read them
   * again to skip them).
   */
  pending(limit: number, exclude?: Set<number>, afterId = 0): OutboxRow[] {
    if (!Number.isSafeInteger(limit) || limit <= 0) return [];
    // The excluded rows are among the oldest (they were handed out first), so reading
    // limit + (excluded ids above afterId) rows in id order and dropping them yields `limit` rows
    // when there are.
    let skip = 0;
    if (exclude !== undefined) {
      if (afterId <= 0) skip = exclude.size;
      else for (const id of exclude) if (id > afterId) skip++;
    }
    const raw = this.stmt.pending.all(afterId, limit + skip);
    const out: OutboxRow[] = [];
    for (const r of raw) {
      if (exclude?.has(r.id)) continue;
      out.push({
        id: r.id,
        deviceId: r.device,
        channel: r.channel,
        seq: r.seq,
        payload: r.payload,
        receivedMs: r.received_ms,
        attempts: r.attempts,
      });
      if (out.length === limit) break;
    }
    return out;
  }

  /** Counts one more unacknowledged delivery attempt for each row (one transaction). */
  recordAttempts(ids: number[]): void {
    if (ids.length > 0) this.withoutSync(() => this.attemptTx(ids));
  }

  /**
   * The broker acknowledged these rows: removes them in one transaction. The (device, seq)
   * intervals stay, so a replayed record is still dropped later; unknown ids are ignored.
   * Committed without an fsync of its own: a power cut can bring the rows back (published again).
   */
  markSent(ids: number[]): void {
    if (ids.length > 0) this.withoutSync(() => this.sentTx(ids));
  }

  /** Rows not yet acknowledged by the broker. */
  count(): number {
    return this.stmt.count.get()?.n ?? 0;
  }

  stats(): OutboxStats {
    return {
      pending: this.count(),
      sent: this.stmt.counter.get("sent")?.value ?? 0,
      duplicatesDropped: this.stmt.counter.get("duplicates")?.value ?? 0,
    };
  }

  /** For tests and diagnostics: a PRAGMA's value (e.g. "journal_mode", "synchronous"). */
  pragma(name: string): unknown {
    return this.db.pragma(name, { simple: true });
  }

  /** The number of (device, channel) sequence intervals kept for dedupe (diagnostics). */
  rangeCount(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM seq_ranges").get() as { n: number }).n;
  }

  get open(): boolean {
    return this.db.open;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
