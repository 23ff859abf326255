// The operations console's default store: one SQLite file (better-sqlite3 12), WAL, prepared
// statements, one transaction per batch call. Node only.
//
// Tables
//   devices       the registry (as provisioned), one row per device
//   records       verified journal records, PRIMARY KEY (device_id, seq), WITHOUT ROWID; bytes as
//                 received (what the device signed); indexes by received time and by kind
//   health        every health sample (history), index (device_id, received_ms)
//   device_state  one row per device: online, last seen, firmware, record count, chain top, the
//                 latest health sample (JSON)
//   quarantine    everything that did not verify or parse, with reason, detail, topic, payload
//   elections     imported election definitions, PRIMARY KEY (election_id, station_id)
//
// records(filter).sinceMs and healthHistory(sinceMs) filter on the time the console RECEIVED the
// item (receivedMs), not the device's clock; records come back in (receivedMs, deviceId, seq) order
// for a filter without deviceId, in seq order for one device.
//
// chainTop: the highest seq such that every record up to it (following prev_seq) is stored. It
// starts at 0 and a record whose prevSeq <= chainTop and seq > chainTop extends it. putRecords
// advances it inside its transaction, also over records that arrived earlier out of order.

import Database from "better-sqlite3";
import type { DeviceState, HealthSample, OpsStore, PutResult, QuarantineEntry, RegisteredDevice, Role, StoredElection, StoredRecord } from "./store.ts";

export interface SqliteOpsStoreOptions {
  /** synchronous=FULL instead of NORMAL (WAL: NORMAL loses at most the last commits on power loss, never corrupts). */
  durable?: boolean;
}

interface DeviceRow {
  device_id: string;
  public_key_hex: string;
  role: string;
  governorate: string;
  office: string;
  station_id: string;
  site: string;
}

interface RecordRow {
  device_id: string;
  seq: number;
  prev_seq: number;
  time_ms: number;
  kind: number;
  bytes: Buffer;
  received_ms: number;
  site: string;
}

interface HealthRow {
  device_id: string;
  received_ms: number;
  site: string;
  health: string;
}

interface StateRow {
  device_id: string;
  online: number;
  last_seen_ms: number;
  firmware_version: string;
  records: number;
  chain_top: number;
  last_health: string | null;
}

interface ElectionRow {
  election_id: string;
  station_id: string;
  sha256: string;
  definition: Buffer;
  artifact: Buffer | null;
  signature_checked: number;
  version: number;
  imported_ms: number;
  source: string;
}

interface QuarantineRow {
  received_ms: number;
  topic: string;
  device_id: string;
  reason: string;
  detail: string;
  payload: Buffer;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY,
  public_key_hex TEXT NOT NULL,
  role TEXT NOT NULL,
  governorate TEXT NOT NULL,
  office TEXT NOT NULL,
  station_id TEXT NOT NULL,
  site TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
  device_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  prev_seq INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  received_ms INTEGER NOT NULL,
  site TEXT NOT NULL,
  PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_received ON records (received_ms);
CREATE INDEX IF NOT EXISTS records_kind ON records (kind, received_ms);
CREATE TABLE IF NOT EXISTS health (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  site TEXT NOT NULL,
  health TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS health_device_time ON health (device_id, received_ms);
CREATE TABLE IF NOT EXISTS device_state (
  device_id TEXT PRIMARY KEY,
  online INTEGER NOT NULL DEFAULT 0,
  last_seen_ms INTEGER NOT NULL DEFAULT 0,
  firmware_version TEXT NOT NULL DEFAULT '',
  records INTEGER NOT NULL DEFAULT 0,
  chain_top INTEGER NOT NULL DEFAULT 0,
  last_health TEXT
);
CREATE TABLE IF NOT EXISTS quarantine (
  id INTEGER PRIMARY KEY,
  received_ms INTEGER NOT NULL,
  topic TEXT NOT NULL,
  device_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine (reason, id);
CREATE TABLE IF NOT EXISTS elections (
  election_id TEXT NOT NULL,
  station_id TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  definition BLOB NOT NULL,
  artifact BLOB,
  signature_checked INTEGER NOT NULL,
  version INTEGER NOT NULL,
  imported_ms INTEGER NOT NULL,
  source TEXT NOT NULL,
  PRIMARY KEY (election_id, station_id)
);
`;

const ROLES: readonly Role[] = ["verification", "result", "unknown"];

function toRole(s: string): Role {
  return (ROLES as readonly string[]).includes(s) ? (s as Role) : "unknown";
}

function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function buf(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function deviceFromRow(r: DeviceRow): RegisteredDevice {
  return {
    deviceId: r.device_id,
    publicKeyHex: r.public_key_hex,
    role: toRole(r.role),
    governorate: r.governorate,
    office: r.office,
    stationId: r.station_id,
    site: r.site,
  };
}

function recordFromRow(r: RecordRow): StoredRecord {
  return {
    deviceId: r.device_id,
    seq: r.seq,
    prevSeq: r.prev_seq,
    timeMs: r.time_ms,
    kind: r.kind,
    bytes: u8(r.bytes),
    receivedMs: r.received_ms,
    site: r.site,
  };
}

function healthFromRow(r: HealthRow): HealthSample {
  return { deviceId: r.device_id, receivedMs: r.received_ms, site: r.site, health: JSON.parse(r.health) as Record<string, number> };
}

export class SqliteOpsStore implements OpsStore {
  readonly db: Database.Database;
  private readonly st: {
    upsertDevice: Database.Statement;
    device: Database.Statement<[string], DeviceRow>;
    devices: Database.Statement<[], DeviceRow>;
    insertRecord: Database.Statement;
    recordBytes: Database.Statement<[string, number], { bytes: Buffer }>;
    maxSeq: Database.Statement<[string], { m: number | null }>;
    nextLink: Database.Statement<[string, number, number], { seq: number }>;
    ensureState: Database.Statement<[string]>;
    stateTop: Database.Statement<[string], { chain_top: number }>;
    addRecords: Database.Statement<[number, number, number, string]>;
    insertHealth: Database.Statement;
    lastHealth: Database.Statement;
    setOnline: Database.Statement;
    setOnlineFirmware: Database.Statement;
    states: Database.Statement<[], StateRow>;
    insertQuarantine: Database.Statement;
    quarantineCounts: Database.Statement<[], { reason: string; n: number }>;
    healthHistory: Database.Statement<[string, number, number], HealthRow>;
  };
  private readonly putRecordsTx: (records: StoredRecord[]) => PutResult;
  private readonly putHealthTx: (samples: HealthSample[]) => void;
  private readonly quarantineTx: (entries: QuarantineEntry[]) => void;
  private readonly upsertDevicesTx: (devices: RegisteredDevice[]) => void;
  private readonly putElectionsTx: (elections: StoredElection[]) => void;
  private closed = false;
  private readonly afterStatements = new Map<string, Database.Statement>();
  /** Per device: the highest seq stored, as far as this instance knows (loaded on first use, raised by putRecords). */
  private readonly maxSeqKnown = new Map<string, number>();

  /** `path`: a file, or ":memory:" (tests). */
  constructor(readonly path: string, options: SqliteOpsStoreOptions = {}) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${options.durable ? "FULL" : "NORMAL"}`);
    this.db.pragma("busy_timeout = 5000");
    this.db.pragma("cache_size = -32000");
    this.db.exec(SCHEMA);
    const db = this.db;
    this.st = {
      upsertDevice: db.prepare(
        `INSERT INTO devices (device_id, public_key_hex, role, governorate, office, station_id, site)
         VALUES (@deviceId, @publicKeyHex, @role, @governorate, @office, @stationId, @site)
         ON CONFLICT (device_id) DO UPDATE SET public_key_hex = excluded.public_key_hex, role = excluded.role,
           governorate = excluded.governorate, office = excluded.office, station_id = excluded.station_id, site = excluded.site`,
      ),
      device: db.prepare("SELECT * FROM devices WHERE device_id = ?"),
      devices: db.prepare("SELECT * FROM devices ORDER BY device_id"),
      insertRecord: db.prepare(
        `INSERT OR IGNORE INTO records (device_id, seq, prev_seq, time_ms, kind, bytes, received_ms, site)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      recordBytes: db.prepare("SELECT bytes FROM records WHERE device_id = ? AND seq = ?"),
      maxSeq: db.prepare("SELECT max(seq) AS m FROM records WHERE device_id = ?"),
      nextLink: db.prepare("SELECT seq FROM records WHERE device_id = ? AND seq > ? AND prev_seq <= ? ORDER BY seq LIMIT 1"),
      ensureState: db.prepare("INSERT OR IGNORE INTO device_state (device_id) VALUES (?)"),
      stateTop: db.prepare("SELECT chain_top FROM device_state WHERE device_id = ?"),
      addRecords: db.prepare("UPDATE device_state SET records = records + ?, chain_top = ?, last_seen_ms = max(last_seen_ms, ?) WHERE device_id = ?"),
      insertHealth: db.prepare("INSERT INTO health (device_id, received_ms, site, health) VALUES (?, ?, ?, ?)"),
      lastHealth: db.prepare(
        `UPDATE device_state SET last_health = ?, last_seen_ms = max(last_seen_ms, ?)
         WHERE device_id = ? AND (last_health IS NULL OR json_extract(last_health, '$.receivedMs') <= ?)`,
      ),
      setOnline: db.prepare("UPDATE device_state SET online = ?, last_seen_ms = max(last_seen_ms, ?) WHERE device_id = ?"),
      setOnlineFirmware: db.prepare(
        "UPDATE device_state SET online = ?, last_seen_ms = max(last_seen_ms, ?), firmware_version = ? WHERE device_id = ?",
      ),
      states: db.prepare("SELECT * FROM device_state ORDER BY device_id"),
      insertQuarantine: db.prepare(
        "INSERT INTO quarantine (received_ms, topic, device_id, reason, detail, payload) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      quarantineCounts: db.prepare("SELECT reason, count(*) AS n FROM quarantine GROUP BY reason"),
      healthHistory: db.prepare(
        "SELECT device_id, received_ms, site, health FROM health WHERE device_id = ? AND received_ms >= ? ORDER BY received_ms, id LIMIT ?",
      ),
    };

    this.upsertDevicesTx = db.transaction((devices: RegisteredDevice[]) => {
      for (const d of devices) {
        this.st.upsertDevice.run(d);
        this.st.ensureState.run(d.deviceId);
      }
    });

    this.putRecordsTx = db.transaction((records: StoredRecord[]): PutResult => {
      let inserted = 0;
      let duplicates = 0;
      // Per device: new records in seq order, to advance the chain top.
      const byDevice = new Map<string, StoredRecord[]>();
      for (const r of records) {
        const info = this.st.insertRecord.run(r.deviceId, r.seq, r.prevSeq, r.timeMs, r.kind, buf(r.bytes), r.receivedMs, r.site);
        if (info.changes === 0) {
          duplicates++;
          continue;
        }
        inserted++;
        const known = this.maxSeqKnown.get(r.deviceId);
        if (known !== undefined && r.seq > known) this.maxSeqKnown.set(r.deviceId, r.seq);
        let list = byDevice.get(r.deviceId);
        if (!list) byDevice.set(r.deviceId, (list = []));
        list.push(r);
      }
      for (const [deviceId, list] of byDevice) {
        this.st.ensureState.run(deviceId);
        let top = this.st.stateTop.get(deviceId)?.chain_top ?? 0;
        list.sort((a, b) => a.seq - b.seq);
        let lastSeen = 0;
        let contiguous = true;
        for (const r of list) {
          if (r.receivedMs > lastSeen) lastSeen = r.receivedMs;
          if (contiguous && r.seq > top && r.prevSeq <= top) top = r.seq;
          else if (r.seq > top) contiguous = false;
        }
        // Records stored earlier (out of order) may continue the chain now.
        for (;;) {
          const next = this.st.nextLink.get(deviceId, top, top);
          if (!next) break;
          top = next.seq;
        }
        this.st.addRecords.run(list.length, top, lastSeen, deviceId);
      }
      return { inserted, duplicates };
    });

    this.putHealthTx = db.transaction((samples: HealthSample[]) => {
      for (const s of samples) {
        const json = JSON.stringify(s.health);
        this.st.insertHealth.run(s.deviceId, s.receivedMs, s.site, json);
        this.st.ensureState.run(s.deviceId);
        this.st.lastHealth.run(JSON.stringify(s), s.receivedMs, s.deviceId, s.receivedMs);
      }
    });

    const putElection = db.prepare(
      `INSERT OR REPLACE INTO elections (election_id, station_id, sha256, definition, artifact, signature_checked, version, imported_ms, source)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.putElectionsTx = db.transaction((elections: StoredElection[]) => {
      for (const e of elections) {
        putElection.run(
          e.electionId,
          e.stationId,
          e.sha256,
          buf(e.definition),
          e.artifact ? buf(e.artifact) : null,
          e.signatureChecked ? 1 : 0,
          e.version,
          e.importedMs,
          e.source,
        );
      }
    });

    this.quarantineTx = db.transaction((entries: QuarantineEntry[]) => {
      for (const q of entries) {
        this.st.insertQuarantine.run(q.receivedMs, q.topic, q.deviceId, q.reason, q.detail, buf(q.payload));
      }
    });
  }

  upsertDevices(devices: RegisteredDevice[]): void {
    this.upsertDevicesTx(devices);
  }

  device(deviceId: string): RegisteredDevice | null {
    const r = this.st.device.get(deviceId);
    return r ? deviceFromRow(r) : null;
  }

  devices(): RegisteredDevice[] {
    return this.st.devices.all().map(deviceFromRow);
  }

  putRecords(records: StoredRecord[]): PutResult {
    if (records.length === 0) return { inserted: 0, duplicates: 0 };
    return this.putRecordsTx(records);
  }

  recordBytes(deviceId: string, seq: number): Uint8Array | null {
    const r = this.st.recordBytes.get(deviceId, seq);
    return r ? u8(r.bytes) : null;
  }

  /**
   * False only when (deviceId, seq) is certainly not stored: seq is above the device's highest
   * stored seq as this instance knows it (read once per device, then raised by putRecords; a
   * rolled-back batch only leaves it too high, which answers true). Exact as long as no other
   * process writes records to the same file. Ingest uses it to skip recordBytes on the hot path.
   */
  mayHaveRecord(deviceId: string, seq: number): boolean {
    let m = this.maxSeqKnown.get(deviceId);
    if (m === undefined) {
      m = this.st.maxSeq.get(deviceId)?.m ?? 0;
      this.maxSeqKnown.set(deviceId, m);
    }
    return seq <= m;
  }

  records(filter: { deviceId?: string; kind?: number; sinceMs?: number; limit?: number }): StoredRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.deviceId !== undefined) {
      where.push("device_id = ?");
      args.push(filter.deviceId);
    }
    if (filter.kind !== undefined) {
      where.push("kind = ?");
      args.push(filter.kind);
    }
    if (filter.sinceMs !== undefined) {
      where.push("received_ms >= ?");
      args.push(filter.sinceMs);
    }
    const order = filter.deviceId !== undefined ? "seq" : "received_ms, device_id, seq";
    const sql =
      `SELECT * FROM records${where.length ? " WHERE " + where.join(" AND ") : ""} ORDER BY ${order}` +
      (filter.limit !== undefined ? " LIMIT ?" : "");
    if (filter.limit !== undefined) args.push(filter.limit);
    return (this.db.prepare(sql).all(...args) as RecordRow[]).map(recordFromRow);
  }

  latestRecordPerDevice(kinds: number[], deviceIds?: Iterable<string>): StoredRecord[] {
    const list = kinds.filter((k) => Number.isInteger(k));
    if (list.length === 0) return [];
    const marks = list.map(() => "?").join(", ");
    if (deviceIds !== undefined) {
      const st = this.db.prepare(`SELECT * FROM records WHERE device_id = ? AND kind IN (${marks}) ORDER BY seq DESC LIMIT 1`);
      const out: StoredRecord[] = [];
      for (const id of deviceIds) {
        const r = st.get(id, ...list) as RecordRow | undefined;
        if (r) out.push(recordFromRow(r));
      }
      return out;
    }
    // The kind index holds (kind, received_ms, device_id, seq): the inner query reads only it.
    const sql =
      `SELECT r.* FROM records r JOIN (SELECT device_id, max(seq) AS seq FROM records WHERE kind IN (${marks}) GROUP BY device_id) m ` +
      "ON r.device_id = m.device_id AND r.seq = m.seq ORDER BY r.device_id";
    return (this.db.prepare(sql).all(...list) as RecordRow[]).map(recordFromRow);
  }

  recordsAfter(deviceId: string, afterSeq: number, kinds: number[]): StoredRecord[] {
    const list = kinds.filter((k) => Number.isInteger(k));
    if (list.length === 0) return [];
    const key = list.join(",");
    let st = this.afterStatements.get(key);
    if (!st) {
      st = this.db.prepare(`SELECT * FROM records WHERE device_id = ? AND seq > ? AND kind IN (${list.map(() => "?").join(", ")}) ORDER BY seq`);
      this.afterStatements.set(key, st);
    }
    return (st.all(deviceId, afterSeq, ...list) as RecordRow[]).map(recordFromRow);
  }

  putElections(elections: StoredElection[]): void {
    if (elections.length) this.putElectionsTx(elections);
  }

  elections(): StoredElection[] {
    const rows = this.db.prepare("SELECT * FROM elections ORDER BY election_id, station_id").all() as ElectionRow[];
    return rows.map((r) => ({
      electionId: r.election_id,
      stationId: r.station_id,
      sha256: r.sha256,
      definition: u8(r.definition),
      artifact: r.artifact ? u8(r.artifact) : null,
      signatureChecked: r.signature_checked !== 0,
      version: r.version,
      importedMs: r.imported_ms,
      source: r.source,
    }));
  }

  putHealth(samples: HealthSample[]): void {
    if (samples.length) this.putHealthTx(samples);
  }

  healthHistory(deviceId: string, sinceMs: number, limit: number): HealthSample[] {
    return this.st.healthHistory.all(deviceId, sinceMs, limit).map(healthFromRow);
  }

  setOnline(deviceId: string, online: boolean, atMs: number, firmwareVersion?: string): void {
    this.st.ensureState.run(deviceId);
    if (firmwareVersion !== undefined) this.st.setOnlineFirmware.run(online ? 1 : 0, atMs, firmwareVersion, deviceId);
    else this.st.setOnline.run(online ? 1 : 0, atMs, deviceId);
  }

  deviceStates(): DeviceState[] {
    return this.st.states.all().map((r) => ({
      deviceId: r.device_id,
      online: r.online !== 0,
      lastSeenMs: r.last_seen_ms,
      lastHealth: r.last_health ? (JSON.parse(r.last_health) as HealthSample) : null,
      firmwareVersion: r.firmware_version,
      records: r.records,
      chainTop: r.chain_top,
    }));
  }

  quarantine(entries: QuarantineEntry[]): void {
    if (entries.length) this.quarantineTx(entries);
  }

  quarantined(filter: { reason?: string; limit?: number }): QuarantineEntry[] {
    const limit = filter.limit ?? -1;
    const rows =
      filter.reason !== undefined
        ? (this.db
            .prepare("SELECT received_ms, topic, device_id, reason, detail, payload FROM quarantine WHERE reason = ? ORDER BY id LIMIT ?")
            .all(filter.reason, limit) as QuarantineRow[])
        : (this.db
            .prepare("SELECT received_ms, topic, device_id, reason, detail, payload FROM quarantine ORDER BY id LIMIT ?")
            .all(limit) as QuarantineRow[]);
    return rows.map((r) => ({
      receivedMs: r.received_ms,
      topic: r.topic,
      deviceId: r.device_id,
      reason: r.reason,
      detail: r.detail,
      payload: u8(r.payload),
    }));
  }

  quarantineCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.st.quarantineCounts.all()) out[r.reason] = r.n;
    return out;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
